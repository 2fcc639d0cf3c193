#!/usr/bin/env bash
# THE test command of the project: installs what tests need, then runs the
# formatting check, clippy and the whole test suite. CI runs it via .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

scripts/install-deps.sh

# Tests find `helm` (the Helm v4 engine shim) and the venv behind it here.
export TENDER_VENV="${TENDER_VENV:-$repo/.venv}"
export TENDER_HELM="$repo/scripts/helm"
export PATH="$repo/scripts:$PATH"

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test" >&2
cargo test --workspace --all-targets
