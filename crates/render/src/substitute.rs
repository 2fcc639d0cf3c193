//! Variable substitution as Flux's `postBuild.substitute` does it:
//! `${VAR}`, `${VAR:=default}` (also `${VAR:-default}` and
//! `${VAR=default}`), `$${VAR}` for a literal `${VAR}`, and an error for a
//! variable with neither value nor default. A `$` not followed by `{` is
//! left alone, so shell snippets in ConfigMaps survive.
//!
//! Rendered output is substituted one document (object) at a time, as
//! kustomize-controller does, so that an object annotated or labelled
//! `kustomize.toolkit.fluxcd.io/substitute: disabled` is kept as rendered.

use std::collections::BTreeMap;

use serde_json::Value;

/// The Flux annotation (or label) key; the value `disabled` opts an object
/// out of substitution.
pub const OPT_OUT_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// A variable the text uses but nobody defined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error("variable {name} is not set and has no default (line {line})")]
    Missing { name: String, line: usize },
    #[error("unterminated ${{...}} at line {line}")]
    Unterminated { line: usize },
    #[error("invalid variable name {name:?} at line {line}")]
    BadName { name: String, line: usize },
}

impl SubstituteError {
    /// The same error, `lines` further down (for a part of a larger text).
    fn shifted(self, lines: usize) -> Self {
        match self {
            SubstituteError::Missing { name, line } => SubstituteError::Missing {
                name,
                line: line + lines,
            },
            SubstituteError::Unterminated { line } => {
                SubstituteError::Unterminated { line: line + lines }
            }
            SubstituteError::BadName { name, line } => SubstituteError::BadName {
                name,
                line: line + lines,
            },
        }
    }
}

/// Substitutes into a whole text (values files, paths).
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, SubstituteError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let line_of = |rest: &str| text[..text.len() - rest.len()].matches('\n').count() + 1;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(escaped) = after.strip_prefix("$${") {
            // `$${X}` → literal `${X}`.
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let line = line_of(after);
        let end = body_start
            .find('}')
            .ok_or(SubstituteError::Unterminated { line })?;
        let body = &body_start[..end];
        let (name, default) = split_default(body);
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || name.as_bytes()[0].is_ascii_digit()
        {
            return Err(SubstituteError::BadName {
                name: name.to_string(),
                line,
            });
        }
        match (vars.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(SubstituteError::Missing {
                    name: name.to_string(),
                    line,
                });
            }
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitutes into each document of a YAML stream, except documents whose
/// object opts out with the Flux annotation or label. Items of a `List`
/// document that opt out keep their rendered form. Error lines count from
/// the start of the stream.
pub fn substitute_documents(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, SubstituteError> {
    let mut out = String::with_capacity(text.len());
    let mut line = 0;
    for doc in documents(text) {
        let lines = doc.matches('\n').count();
        if doc.contains(OPT_OUT_KEY) {
            // Only a document that parses can carry the annotation; one
            // that does not parse yet is substituted (and checked later).
            if let Ok(rendered) = serde_saphyr::from_str::<Value>(doc) {
                if opts_out(&rendered) {
                    out.push_str(doc);
                    line += lines;
                    continue;
                }
                if let Some(items) = rendered["items"].as_array()
                    && items.iter().any(opts_out)
                {
                    let text = substitute(doc, vars).map_err(|e| e.shifted(line))?;
                    out.push_str(&keep_opted_out_items(items, &text));
                    line += lines;
                    continue;
                }
            }
        }
        out.push_str(&substitute(doc, vars).map_err(|e| e.shifted(line))?);
        line += lines;
    }
    Ok(out)
}

/// A substituted `List` document with its opted-out items put back as
/// rendered (re-serialized: the manifest set re-serializes every object
/// anyway).
fn keep_opted_out_items(rendered: &[Value], substituted: &str) -> String {
    let Ok(mut list) = serde_saphyr::from_str::<Value>(substituted) else {
        return substituted.to_string();
    };
    let Some(items) = list["items"].as_array_mut() else {
        return substituted.to_string();
    };
    if items.len() != rendered.len() {
        return substituted.to_string();
    }
    for (item, before) in items.iter_mut().zip(rendered) {
        if opts_out(before) {
            *item = before.clone();
        }
    }
    let yaml = serde_saphyr::to_string(&list).expect("JSON values serialize to YAML");
    format!("---\n{yaml}\n")
}

/// Whether an object carries `kustomize.toolkit.fluxcd.io/substitute:
/// disabled` as an annotation or a label (Flux honours both).
pub fn opts_out(object: &Value) -> bool {
    let meta = &object["metadata"];
    [&meta["annotations"], &meta["labels"]]
        .iter()
        .any(|m| m[OPT_OUT_KEY].as_str() == Some("disabled"))
}

/// The documents of a YAML stream, as slices that join back into `text`:
/// each starts at a `---` marker line (the first may be a preamble without
/// one). A marker is `---` at the start of a line followed by the line's
/// end or a space; YAML forbids it inside a document's content.
pub fn documents(text: &str) -> Vec<&str> {
    let mut starts = vec![0];
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let rest = line.strip_prefix("---");
        if at > 0
            && let Some(rest) = rest
            && (rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        {
            starts.push(at);
        }
        at += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| &text[w[0]..w[1]])
        .filter(|d| !d.is_empty())
        .collect()
}

/// Every `${...}` in a text, as written (with a leading `$` when escaped),
/// once each: what substitution would have acted on.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find("${") {
        let start = from + pos;
        let begin = if start > 0 && text.as_bytes()[start - 1] == b'$' {
            start - 1
        } else {
            start
        };
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = text[start..line_end]
            .find('}')
            .map_or(line_end, |i| start + i + 1);
        let p = text[begin..end].to_string();
        if !found.contains(&p) {
            found.push(p);
        }
        from = end.max(start + 2);
    }
    found
}

fn split_default(body: &str) -> (&str, Option<&str>) {
    for op in [":=", ":-", "="] {
        if let Some(i) = body.find(op) {
            return (&body[..i], Some(&body[i + op.len()..]));
        }
    }
    (body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("REGION", "eu-north"), ("TIER", "canary")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_defaults_and_escapes() {
        let t = "region: ${REGION}\nline: ${LINE:=shared}\nep: ${EP:=opc.tcp://plc:4840}\ncmd: echo $${HOME} $PATH $\n";
        assert_eq!(
            substitute(t, &vars()).unwrap(),
            "region: eu-north\nline: shared\nep: opc.tcp://plc:4840\ncmd: echo ${HOME} $PATH $\n"
        );
        assert_eq!(substitute("${TIER:=x}", &vars()).unwrap(), "canary");
    }

    #[test]
    fn documents_split_at_marker_lines_and_join_back() {
        let text = "# preamble\n---\na: 1\n--- # two\nb: |\n  ---not a marker\n---\n";
        let docs = documents(text);
        assert_eq!(
            docs,
            [
                "# preamble\n",
                "---\na: 1\n",
                "--- # two\nb: |\n  ---not a marker\n",
                "---\n"
            ]
        );
        assert_eq!(docs.concat(), text);
        assert_eq!(documents("a: ---\n----\n"), ["a: ---\n----\n"]);
    }

    #[test]
    fn objects_that_opt_out_are_kept_as_rendered() {
        let text = "---\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {x: \"${REGION}\"}\n\
            ---\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata: {x: \"${NOPE} ${REGION}\"}\n\
            ---\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {kustomize.toolkit.fluxcd.io/substitute: disabled}\ndata: {x: \"${NOPE}\"}\n\
            ---\nkind: ConfigMap\nmetadata:\n  name: d\n  annotations: {kustomize.toolkit.fluxcd.io/substitute: enabled}\ndata: {x: \"${TIER}\"}\n";
        let out = substitute_documents(text, &vars()).unwrap();
        let docs = documents(&out);
        assert!(docs[0].contains("x: \"eu-north\""), "{out}");
        assert_eq!(docs[1], documents(text)[1]);
        assert_eq!(docs[2], documents(text)[2]);
        assert!(docs[3].contains("x: \"canary\""), "{out}");
        // Errors count lines from the start of the stream.
        let bad = "---\nkind: A\n---\nkind: B\nx: ${NOPE}\n";
        assert_eq!(
            substitute_documents(bad, &vars()),
            Err(SubstituteError::Missing {
                name: "NOPE".into(),
                line: 5
            })
        );
    }

    #[test]
    fn list_items_that_opt_out_keep_their_text() {
        let text = "apiVersion: v1\nkind: List\nitems:\n\
            - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {x: \"${REGION}\"}}\n\
            - {apiVersion: v1, kind: ConfigMap, metadata: {name: b, annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}}, data: {x: \"${REGION:-d}\"}}\n";
        let out = substitute_documents(text, &vars()).unwrap();
        let list: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(list["items"][0]["data"]["x"], "eu-north");
        assert_eq!(list["items"][1]["data"]["x"], "${REGION:-d}");
    }

    #[test]
    fn placeholders_are_listed_as_written() {
        assert_eq!(
            placeholders("A=${X:-0} $${HOME} ${X:-0} $PATH ${open\n${Y}"),
            ["${X:-0}", "$${HOME}", "${open", "${Y}"]
        );
        assert!(placeholders("no $ braces {here}").is_empty());
    }

    #[test]
    fn missing_variable_is_an_error_with_its_line() {
        assert_eq!(
            substitute("a: 1\nb: ${NOPE}\n", &vars()),
            Err(SubstituteError::Missing {
                name: "NOPE".into(),
                line: 2
            })
        );
        assert!(matches!(
            substitute("${OPEN", &vars()),
            Err(SubstituteError::Unterminated { .. })
        ));
        assert!(matches!(
            substitute("${a b}", &vars()),
            Err(SubstituteError::BadName { .. })
        ));
    }
}
