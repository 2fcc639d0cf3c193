#!/usr/bin/env bash
# The benchmark harness is `cargo xtask bench` (xtask/src/bench, one module
# per row); this keeps the old entry point. Same rows and flags:
#
#   scripts/bench.sh [--quick] [--only ROW] [--keep] [--json FILE]
#
# (`--help` lists them). `cargo run` builds the harness, and the harness
# builds tender in release before it times anything. Run from any directory:
# a relative --json FILE is relative to where you are, as before.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec cargo run --quiet --manifest-path "$repo/Cargo.toml" --package xtask -- bench "$@"
