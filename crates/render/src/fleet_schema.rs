//! The JSON Schema of the fleet spec, `bundle-spec/fleet.schema.json`,
//! generated from the spec types in `fleet.rs` (their serde attributes and
//! doc comments) with schemars, so the schema cannot drift from the loader.
//! `cargo xtask schema` writes the file; an integration test fails when the
//! committed file differs from what [`fleet_schema_json`] makes.
//!
//! What serde cannot say about a field (a token, a duration, exactly one
//! source kind) is added here, as the loader checks it in `Fleet::validate`.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

use crate::fleet::{API_VERSION, FleetSpec, KIND};

/// Where the schema says it lives (`$id`): a name, not a download address.
pub const SCHEMA_ID: &str = "https://example.invalid/tender/bundle-spec/fleet.schema.json";

/// `tender_format::manifest::is_token` as a regular expression.
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// `fleet::parse_duration` as a regular expression: number-unit pairs,
/// largest unit first, each unit at most once; "at least one" is the
/// field's `minLength`, so the pattern needs no lookahead, which RE2-style
/// engines (Go's, Rust's `regex`) lack.
pub const SOAK_PATTERN: &str = "^([0-9]{1,9}d)?([0-9]{1,9}h)?([0-9]{1,9}m)?([0-9]{1,9}s)?$";

/// The fleet spec's schema (draft 2020-12).
pub fn fleet_schema() -> Schema {
    let generator = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(ReflowDescriptions))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<FleetSpec>();
    schema.insert("$id".into(), SCHEMA_ID.into());
    let title = format!("tender fleet spec ({API_VERSION}, kind {KIND})");
    schema.insert("title".into(), title.into());
    schema
}

/// The text of `bundle-spec/fleet.schema.json`: pretty JSON and a newline.
pub fn fleet_schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&fleet_schema()).expect("a schema is JSON");
    text.push('\n');
    text
}

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

/// Doc comments arrive with their line breaks; a description reads as
/// paragraphs, so lines are joined and only blank lines kept.
#[derive(Clone)]
struct ReflowDescriptions;

impl Transform for ReflowDescriptions {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(Value::String(text)) = schema.get_mut("description") {
            *text = text
                .split("\n\n")
                .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("\n\n");
        }
    }
}
