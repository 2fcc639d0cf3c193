//! Schemas of single fields of the fleet spec that serde's types cannot
//! express (a token, a duration, exactly one source kind), used by the
//! spec types in `fleet.rs` and so by the generated schema
//! (`fleet_schema`). Each matches what `Fleet::validate` checks.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// `tender_format::manifest::is_token` as a regular expression.
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// `fleet::parse_duration` as a regular expression: number-unit pairs,
/// largest unit first, each unit at most once; "at least one" is the
/// field's `minLength`, so the pattern needs no lookahead, which RE2-style
/// engines (Go's, Rust's `regex`) lack.
pub const SOAK_PATTERN: &str = "^([0-9]{1,9}d)?([0-9]{1,9}h)?([0-9]{1,9}m)?([0-9]{1,9}s)?$";

/// A string the loader checks with `is_token`: names of clusters, sites,
/// tiers, sources, waves, and the channel.
pub(crate) struct Token;

impl JsonSchema for Token {
    fn schema_name() -> Cow<'static, str> {
        "Token".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A token: 1 to 128 ASCII letters, digits, '.', '_' or '-', not starting with '.'.",
            "type": "string",
            "pattern": TOKEN_PATTERN,
        })
    }
}

/// A string with something other than white space in it (a mirror target).
pub(crate) struct NonBlank;

impl JsonSchema for NonBlank {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "nonBlank".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "\\S" })
    }
}

/// A source has exactly one of `helm`, `kustomize` and `manifests` given
/// and not null (`Source::kind`); serde sees three optional fields.
pub(crate) fn exactly_one_kind(schema: &mut Schema) {
    let one_of: Vec<Value> = ["helm", "kustomize", "manifests"]
        .iter()
        .map(|kind| {
            json!({
                "required": [kind],
                "properties": {
                    *kind: { "description": "Given, and not null.", "type": "object" }
                }
            })
        })
        .collect();
    schema.insert("oneOf".into(), Value::Array(one_of));
}
