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

step "hub: render the sample fleet per cluster, pull its images, write a signed bundle"
export TENDER_HUB_STATE="$work/hub-state"
"$tender" export "$repo/testdata/fleet/fleet.yaml" --list-images
"$tender" export "$repo/testdata/fleet/fleet.yaml" -o fleet.tender --key hub-release.key

step "anyone: inspect (unverified)"
"$tender" inspect fleet.tender

step "site plant-001: site file with the embedded store"
"$tender" keygen plant-001-site
git init -q --bare gitops.git
cat > site.yaml <<'SITE'
apiVersion: tender.dev/v1alpha1
kind: Site
name: plant-001
clusters: [plant-001-line-a, plant-001-line-b]
trustPolicy: trust-policy.yaml
stateDir: site-state
registryHost: 127.0.0.1:5055
siteKey: plant-001-site.key
delivery:
  plant-001-line-a:
    oci: { repository: gitops/plant-001-line-a }
  plant-001-line-b:
    git: { repo: gitops.git, branch: line-b }
SITE

step "site: import before approval (must be refused, exit 3)"
if "$tender" import fleet.tender --site site.yaml --operator field-engineer; then
    echo "demo: an unapproved bundle was imported" >&2
    exit 1
fi

step "site QA: approve in place"
"$tender" sign fleet.tender --key site-qa.key --role approver

step "site: import into the embedded store"
"$tender" import fleet.tender --site site.yaml --operator field-engineer

step "site: importing the same stick again is a no-op"
"$tender" import fleet.tender --site site.yaml --operator field-engineer

step "site: the audit trail"
"$tender" audit verify --site site.yaml

step "site: tender serve gives nodes the store; skopeo pulls an image and the Flux artifact"
"$tender" serve --site site.yaml --listen 127.0.0.1:5055 2>serve.log &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS http://127.0.0.1:5055/v2/ >/dev/null 2>&1 && break; sleep 0.1; done
skopeo inspect --tls-verify=false docker://127.0.0.1:5055/plant/opcua-gateway:1.4.2 | grep '"Digest"'
skopeo inspect --raw --tls-verify=false docker://127.0.0.1:5055/gitops/plant-001-line-a:stable | grep -o '"mediaType":"application/vnd.cncf.flux[^"]*"'
kill $serve_pid
git --git-dir=gitops.git log --oneline line-b

step "hub: ingest the site's receipt and show fleet status"
"$tender" hub add-site plant-001 --key plant-001-site.pub
"$tender" hub ingest site-state/receipts/*.receipt.json
"$tender" hub status

step "break-glass: plain tar gives an OCI layout skopeo reads"
mkdir -p extracted && tar -xf fleet.tender -C extracted
skopeo inspect --raw "oci:extracted:registry.plant.example/plant/opcua-gateway:1.4.2" >/dev/null
echo "skopeo reads the extracted layout" >&2
echo "demo finished in $work" >&2
