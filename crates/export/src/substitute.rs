//! Variable substitution after rendering, as Flux's
//! `postBuild.substitute` does it: `${VAR}`, `${VAR:=default}` (also
//! `${VAR:-default}` and `${VAR=default}`), `$${VAR}` for a literal
//! `${VAR}`, and an error for a variable with neither value nor default.
//! A `$` not followed by `{` is left alone, so shell snippets in
//! ConfigMaps survive.

use std::collections::BTreeMap;

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
