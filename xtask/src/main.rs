//! Developer tasks for tender, run as `cargo xtask TASK` (alias in
//! .cargo/config.toml). An xtask rather than a `[[bench]] harness = false`
//! target: the rows time the release binary against external tools and need
//! their own flags (`--quick`, `--only`, `--json`), which `cargo bench`
//! would mix with libtest's; and it keeps bench inputs out of the test build.

mod bench;
mod schema;

use anyhow::{Result, bail};

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--only ROW] [--keep] [--json FILE] | cargo xtask schema";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("bench") => bench::main(args.collect()),
        Some("schema") => schema::main(args.collect()),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task '{other}' ({USAGE})"),
    }
}
