#!/usr/bin/env bash
# The README's first command: build tender and run the main job on the
# sample fleet in testdata/, into a throwaway work directory (default
# ./out/demo). Installs what it needs first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"
work="${1:-$repo/out/demo}"

scripts/install-deps.sh
export TENDER_VENV="${TENDER_VENV:-$repo/.venv}"
export TENDER_HELM="$repo/scripts/helm"
export PATH="$repo/scripts:$PATH"

cargo build --release --quiet
tender="$repo/target/release/tender"

rm -rf "$work"
mkdir -p "$work"
cd "$work"
step() { printf '\n==> %s\n' "$*" >&2; }

step "hub: create the release key and the site's QA approver key"
"$tender" keygen hub-release
"$tender" keygen site-qa

step "site: trust policy (one release signature and one approval)"
cat > trust-policy.yaml <<'POLICY'
version: 1
keys:
  - name: hub-release
    public_key_file: hub-release.pub
    roles: [release]
  - name: site-qa
    public_key_file: site-qa.pub
    roles: [approver]
thresholds:
  release: 1
  approver: 1
POLICY

step "hub: seal the sample fleet's images into a signed bundle"
"$tender" pack "$repo/testdata/fleet/images" -o fleet.tender --key hub-release.key \
    --channel stable --sequence 1 --site plant-001 --site plant-002 \
    --cluster plant-001-line-a --cluster plant-001-line-b --cluster plant-002-assembly

step "anyone: inspect (unverified)"
"$tender" inspect fleet.tender

step "site: verify before approval (must be rejected, exit 3)"
if "$tender" verify fleet.tender --trust trust-policy.yaml; then
    echo "demo: an unapproved bundle was accepted" >&2
    exit 1
fi

step "site QA: approve in place"
"$tender" sign fleet.tender --key site-qa.key --role approver

step "site: verify"
"$tender" verify fleet.tender --trust trust-policy.yaml

step "break-glass: plain tar gives an OCI layout skopeo reads"
mkdir -p extracted && tar -xf fleet.tender -C extracted
skopeo inspect --raw "oci:extracted:registry.plant.example/plant/opcua-gateway:1.4.2" >/dev/null
echo "skopeo reads the extracted layout" >&2
echo "demo finished in $work" >&2
