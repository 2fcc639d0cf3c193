//! `cargo xtask schema`: writes `bundle-spec/fleet.schema.json` from the
//! fleet spec types (`tender_render::fleet_schema`). The integration test
//! `fleet_schema::committed_schema_matches_the_types` fails until the
//! committed file is rewritten after a change to those types.

use std::fs;

use anyhow::{Context, Result, bail};
use tender_render::fleet_schema::fleet_schema_json;
use tender_test_support::repo_root;

pub const USAGE: &str = "cargo xtask schema";

pub fn main(args: Vec<String>) -> Result<()> {
    if !args.is_empty() {
        bail!("schema takes no arguments (usage: {USAGE})");
    }
    let path = repo_root().join("bundle-spec/fleet.schema.json");
    let text = fleet_schema_json();
    let unchanged = fs::read_to_string(&path).is_ok_and(|old| old == text);
    if !unchanged {
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let what = if unchanged { "unchanged" } else { "written" };
    eprintln!("{}: {what}", path.display());
    Ok(())
}
