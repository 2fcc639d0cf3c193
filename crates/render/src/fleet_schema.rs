//! The JSON Schema of the fleet spec, `bundle-spec/fleet.schema.json`,
//! generated from the spec types in `fleet.rs` (their serde attributes and
//! doc comments) with schemars, so the schema cannot drift from the loader.
//! `cargo xtask schema` writes the file; an integration test fails when the
//! committed file differs from what [`fleet_schema_json`] makes.
//!
//! What serde cannot say about a field (a token, a duration, exactly one
//! source kind) is added here, as the loader checks it in `Fleet::validate`.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use serde_json::Value;

pub use crate::field_schemas::{SOAK_PATTERN, TOKEN_PATTERN};
use crate::fleet::{API_VERSION, FleetSpec, KIND};

/// Where the schema says it lives (`$id`): a name, not a download address.
pub const SCHEMA_ID: &str = "https://example.invalid/tender/bundle-spec/fleet.schema.json";

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
