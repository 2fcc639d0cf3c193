#!/usr/bin/env bash
# Scale bench (issue #16 part 1): the sample fleet generated at 10, 100 and
# 1,000 clusters (scripts/gen-fleet.py), then for each size
#   export --dry-run   and   a real export (signed bundle)
# and, over the largest fleet's receipts (one per site, 4 clusters each, made
# by a real `tender import` at every site, signed with the site's own key),
#   hub ingest, hub status, hub report.
# Each step is timed with /usr/bin/time: wall and CPU (user+sys) seconds and
# peak RSS (the largest of tender and its helm/kustomize children, as
# getrusage reports it). Prints a table; --json prints the rows as JSON.
#
# Usage: scripts/bench-scale.sh [--json] [SIZES...]   (default: 10 100 1000)
# Env: TENDER (binary; default: cargo build --release), BENCH_DIR (work dir;
# default: a temp dir, removed at the end; it reaches ~2.4 GB at 1,000 clusters:
# 250 site states), TENDER_HELM and PATH as for tests. Takes ~8 min at 1,000.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
json=0
if [[ "${1:-}" == --json ]]; then json=1; shift; fi
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(10 100 1000)

if [[ -z "${TENDER:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet --bin tender)
    TENDER="${CARGO_TARGET_DIR:-$repo/target}/release/tender"
fi
work="${BENCH_DIR:-$(mktemp -d)}"
[[ -n "${BENCH_DIR:-}" ]] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
cd "$work"
export TENDER_HUB_STATE="$work/hub"
log() { printf '%s\n' "$*" >&2; }

# One row: NAME CLUSTERS then the command. Output of the command goes to
# $work/last.out / last.err; the row to rows.tsv.
rows="$work/rows.tsv"
: >"$rows"
measure() {
    local name="$1" clusters="$2" extra="$3"
    shift 3
    log "bench-scale: $name ($clusters clusters)"
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/last.out" 2>"$work/last.err" ||
        { cat "$work/last.err" >&2; exit 1; }
    read -r wall user sys rss <"$work/time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$clusters" "$wall" "$cpu" "$((rss / 1024))" "$extra" >>"$rows"
}

"$TENDER" keygen hub-release >/dev/null 2>&1
cat >trust-policy.yaml <<'POLICY'
version: 1
keys:
  - name: hub-release
    public_key_file: hub-release.pub
    roles: [release]
thresholds:
  release: 1
POLICY

largest=0
for n in "${sizes[@]}"; do
    python3 "$here/gen-fleet.py" "$n" "fleet-$n"
    measure "export --dry-run" "$n" "" "$TENDER" export "fleet-$n/fleet.yaml" --dry-run --json
    sets=$(python3 -c 'import json,sys; p=json.load(sys.stdin); p=p.get("plan",p); print(len({c["manifests"] for c in p["clusters"]}))' <"$work/last.out")
    rm -rf "$work/hub"
    measure "export" "$n" "" "$TENDER" export "fleet-$n/fleet.yaml" -o "fleet-$n.tender" --key hub-release.key \
        --override-gate "scale bench: no site has reported"
    size=$(stat -c %s "fleet-$n.tender")
    # The real export's row gets bundle size and distinct manifest sets.
    sed -i '$ s/\t$/\t'"bundle $((size / 1024)) KiB, $sets distinct manifest sets"'/' "$rows"
    ((n > largest)) && largest=$n
done

# The largest fleet's sites: keys, real imports, receipts.
n=$largest
log "bench-scale: importing fleet-$n.tender at every site (receipts for the hub)"
mkdir -p sites receipts
while read -r site clusters; do
    (cd sites && "$TENDER" keygen "$site" >/dev/null 2>&1)
    "$TENDER" hub add-site "$site" --key "sites/$site.pub" >/dev/null
    list=$(echo "$clusters" | sed 's/ /, /g')
    cat >"sites/$site.yaml" <<SITE
apiVersion: tender.dev/v1alpha1
kind: Site
name: $site
clusters: [$list]
trustPolicy: ../trust-policy.yaml
stateDir: $site-state
siteKey: $site.key
SITE
    "$TENDER" import "fleet-$n.tender" --site "sites/$site.yaml" --operator bench >/dev/null 2>&1 ||
        { echo "bench-scale: import at $site failed" >&2; exit 1; }
    cp "sites/$site-state"/receipts/*.receipt.json receipts/
done <"fleet-$n/sites.txt"
count=$(ls receipts | wc -l)
measure "hub ingest" "$n" "$count receipts" "$TENDER" hub ingest receipts/*.receipt.json
measure "hub status" "$n" "" "$TENDER" hub status
measure "hub report" "$n" "" "$TENDER" hub report -o report --fleet "fleet-$n/fleet.yaml"

python3 - "$rows" "$json" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    name, clusters, wall, cpu, rss, extra = line.rstrip("\n").split("\t")
    rows.append({"step": name, "clusters": int(clusters), "wall_s": float(wall),
                 "cpu_s": float(cpu), "peak_rss_mib": int(rss), "notes": extra})
if sys.argv[2] == "1":
    print(json.dumps({"bench": "scale", "rows": rows}, indent=2))
else:
    print(f"{'STEP':<17} {'CLUSTERS':>8} {'WALL s':>8} {'CPU s':>8} {'RSS MiB':>8}  NOTES")
    for r in rows:
        print(f"{r['step']:<17} {r['clusters']:>8} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f}"
              f" {r['peak_rss_mib']:>8}  {r['notes']}")
PY
