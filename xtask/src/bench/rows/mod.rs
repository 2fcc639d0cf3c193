//! The rows, one module each. A row times tender against a baseline tool on
//! the same input and adds lines to the table and one JSON line.
//!
//! A new row is one module here and one entry in [`ROWS`].

mod delta;
pub mod export;
mod import;
mod scale;
mod verify;
mod volumes;

use anyhow::Result;

use super::Bench;

pub struct Row {
    pub name: &'static str,
    pub run: fn(&mut Bench) -> Result<()>,
}

/// Every row, in the order a full run runs them.
pub const ROWS: &[Row] = &[
    Row {
        name: "verify",
        run: verify::run,
    },
    Row {
        name: "export",
        run: export::run,
    },
    Row {
        name: "import",
        run: import::run,
    },
    Row {
        name: "volumes",
        run: volumes::run,
    },
    Row {
        name: "delta",
        run: delta::run,
    },
    Row {
        name: "scale",
        run: scale::run,
    },
];

pub fn names() -> String {
    ROWS.iter().map(|r| r.name).collect::<Vec<_>>().join(" ")
}
