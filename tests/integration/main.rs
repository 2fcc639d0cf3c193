//! tender's integration tests: one binary, real tools (the built `tender`,
//! GNU tar, skopeo, docker-registry), shared helpers in `util`.

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
