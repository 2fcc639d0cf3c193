//! tender's integration tests: one binary, real tools (the built `tender`,
//! GNU tar, skopeo, docker-registry), shared helpers in `util`.

// A test reads as one scenario, top to bottom; the 100-line bar
// (clippy.toml, issue #15) is for the code under test.
#![allow(clippy::too_many_lines)]

mod bundle_vectors;
mod cli;
mod command;
mod delivery;
mod delta;
mod export;
mod fleet_page;
mod fleet_schema;
mod import;
mod messages;
mod metrics;
mod public_inputs;
mod receipts;
mod render;
mod roundtrip;
mod site_paths;
mod trust_lifecycle;
mod util;
mod volumes;
mod waves;
