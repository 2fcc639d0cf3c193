#!/usr/bin/env bash
# Checks the committed sample OCI layout testdata/fleet/images/:
#   1. regenerating it with scripts/make-sample-images.py gives byte-identical
#      files (diff -r), i.e. the generator is reproducible and the committed
#      copy is up to date;
#   2. the layout is self-consistent (blob digests/sizes, config diff_ids equal
#      the sha256 of the uncompressed layer tars, shared base layer, cosign
#      signature artifact shape), checked with the Python stdlib only;
#   3. skopeo reads every ref (`oci:DIR:FULL-REF`), reports the digest that
#      index.json records, and `skopeo copy`s each one to another OCI layout
#      without changing its manifest digest.
#
# Needs python3 and skopeo (apt-get install -y skopeo). Set
# TENDER_SKIP_SKOPEO=1 to run only steps 1-2 where skopeo is unavailable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LAYOUT="$ROOT/testdata/fleet/images"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- 1. reproducibility ------------------------------------------------------
python3 "$ROOT/scripts/make-sample-images.py" "$TMP/regen" >/dev/null
python3 "$ROOT/scripts/make-sample-images.py" "$TMP/regen2" >/dev/null
diff -r "$TMP/regen" "$TMP/regen2" || fail "two runs of make-sample-images.py differ"
diff -r "$TMP/regen" "$LAYOUT" \
  || fail "testdata/fleet/images is stale or not reproducible: run scripts/make-sample-images.py"
echo "ok: regenerated layout is byte-identical to testdata/fleet/images"

# --- 2. structural checks (stdlib only) --------------------------------------
python3 - "$LAYOUT" <<'EOF'
import gzip, hashlib, json, os, sys

root = sys.argv[1]
def blob(digest):
    algo, hexd = digest.split(":")
    assert algo == "sha256", digest
    data = open(os.path.join(root, "blobs", algo, hexd), "rb").read()
    assert hashlib.sha256(data).hexdigest() == hexd, "blob content does not match " + digest
    return data
def load(desc):
    data = blob(desc["digest"])
    assert len(data) == desc["size"], "size mismatch for " + desc["digest"]
    return data

assert json.load(open(os.path.join(root, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
index = json.load(open(os.path.join(root, "index.json")))
refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
R = "registry.plant.example/plant/"
want_layers = {R + "opcua-gateway:1.4.2": 3, R + "historian:2.1.0": 2, R + "diag-tools:1.0.0": 1}
layers_of = {}
for ref, n in want_layers.items():
    assert ref in refs, "missing ref " + ref
    man = json.loads(load(refs[ref]))
    assert man["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert man["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    cfg = json.loads(load(man["config"]))
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64"), ref
    assert len(man["layers"]) == n, ref
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(load(l))).hexdigest() for l in man["layers"]]
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": diff_ids}, "diff_ids wrong for " + ref
    layers_of[ref] = [l["digest"] for l in man["layers"]]
assert layers_of[R + "opcua-gateway:1.4.2"][0] == layers_of[R + "historian:2.1.0"][0], "base layer not shared"

opcua = refs[R + "opcua-gateway:1.4.2"]["digest"]
sig_ref = R + "opcua-gateway:" + opcua.replace(":", "-") + ".sig"
assert sig_ref in refs, "missing cosign signature " + sig_ref
sig = json.loads(load(refs[sig_ref]))
assert sig["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
(layer,) = sig["layers"]
assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
assert layer["annotations"]["dev.cosignproject.cosign/signature"]
payload = json.loads(load(layer))
assert payload["critical"]["image"]["docker-manifest-digest"] == opcua
assert payload["critical"]["identity"]["docker-reference"] == R + "opcua-gateway"
assert len(refs) == 4, sorted(refs)
print("ok: layout structure (%d refs, diff_ids, shared base layer, cosign signature)" % len(refs))
EOF

# --- 3. skopeo ---------------------------------------------------------------
if [[ "${TENDER_SKIP_SKOPEO:-}" == 1 ]]; then
  echo "SKIPPED: skopeo checks (TENDER_SKIP_SKOPEO=1)"
  exit 0
fi
command -v skopeo >/dev/null || fail "skopeo not found (apt-get install -y skopeo, or TENDER_SKIP_SKOPEO=1)"

# "ref digest" lines from index.json.
mapfile -t ENTRIES < <(python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    print(m["annotations"]["org.opencontainers.image.ref.name"], m["digest"])
' "$LAYOUT/index.json")
[[ ${#ENTRIES[@]} -eq 4 ]] || fail "expected 4 refs in index.json, got ${#ENTRIES[@]}"

# --insecure-policy: do not depend on /etc/containers/policy.json being present.
SKOPEO=(skopeo --insecure-policy)
for entry in "${ENTRIES[@]}"; do
  ref="${entry% *}"; want="${entry#* }"
  got="$("${SKOPEO[@]}" inspect --format '{{.Digest}}' "oci:$LAYOUT:$ref")"
  [[ "$got" == "$want" ]] || fail "skopeo inspect $ref: digest $got, index.json says $want"
  raw="sha256:$("${SKOPEO[@]}" inspect --raw "oci:$LAYOUT:$ref" | sha256sum | cut -d' ' -f1)"
  [[ "$raw" == "$want" ]] || fail "skopeo inspect --raw $ref hashes to $raw, want $want"
  "${SKOPEO[@]}" copy -q "oci:$LAYOUT:$ref" "oci:$TMP/copy:$ref"
  copied="$("${SKOPEO[@]}" inspect --format '{{.Digest}}' "oci:$TMP/copy:$ref")"
  [[ "$copied" == "$want" ]] || fail "skopeo copy $ref changed the digest: $copied, want $want"
  echo "ok: $ref $want (inspect, copy)"
done
# The copy holds every blob of the source (shared base layer stored once).
diff <(ls "$LAYOUT/blobs/sha256") <(ls "$TMP/copy/blobs/sha256") \
  || fail "skopeo copy produced a different blob set"
echo "PASS"
