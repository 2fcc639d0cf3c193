#!/usr/bin/env bash
# Fuzzes tender's parsers of untrusted input with cargo-fuzz (libFuzzer):
# builds the targets in fuzz/, seeds each corpus from bundle-spec/vectors/
# and the docs, runs each target in turn for SECONDS (default 600), and
# reports executions and crashes per target. Not run in CI.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      all targets unless named
#
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Environment: FUZZ_SANITIZER (default none: Rust panics, overflow checks
# and debug assertions are what the targets look for; `address` also
# checks the C code, zstd, at about half the speed), FUZZ_NICE (default
# 19), FUZZ_RSS_MB (default 2048: a hostile input must not make the
# reader allocate more), FUZZ_TIMEOUT (default 10: seconds one input may
# take).
#
# A crash leaves its input in fuzz/artifacts/TARGET/; reproduce it with
#   cd fuzz && cargo +nightly fuzz run -a -s none TARGET artifacts/TARGET/crash-...
# The corpus grows in fuzz/corpus/TARGET/ (not committed) and is reused.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
seconds=${1:-600}
shift || true
case $seconds in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac
sanitizer=${FUZZ_SANITIZER:-none}
nice=${FUZZ_NICE:-19}
rss=${FUZZ_RSS_MB:-2048}
timeout=${FUZZ_TIMEOUT:-10}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh needs cargo-fuzz: cargo install cargo-fuzz" >&2
    exit 1
fi

cd "$fuzz"
all=$(cargo +nightly fuzz list)
if [ $# -gt 0 ]; then
    targets="$*"
    for t in $targets; do
        grep -qx "$t" <<<"$all" || {
            echo "no fuzz target $t; the targets are:" $all >&2
            exit 2
        }
    done
else
    targets=$all
fi

build=(-a -s "$sanitizer")
echo "building the fuzz targets (sanitizer $sanitizer)" >&2
nice -n "$nice" cargo +nightly fuzz build "${build[@]}" >&2
bin="$fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

# Copies the files `find` lists into a corpus directory, named by content.
copy_seeds() {
    local dir=$1
    shift
    find "$@" -type f 2>/dev/null | while read -r f; do
        cp "$f" "$dir/seed-$(sha256sum "$f" | cut -c1-16)"
    done
}

# Writes each ```yaml block of a Markdown file that holds `kind: KIND`.
yaml_blocks() {
    local dir=$1 kind=$2 doc=$3
    awk -v dir="$dir" -v kind="kind: $kind" -v name="$(basename "$doc" .md)" '
        /^```yaml/ { inside = 1; text = ""; next }
        /^```/ && inside {
            inside = 0
            if (index(text, kind)) { n++; file = dir "/doc-" name "-" n; printf "%s", text > file; close(file) }
            next
        }
        inside { text = text $0 "\n" }
    ' "$doc"
}

seed() {
    local t=$1 dir="$fuzz/corpus/$1"
    mkdir -p "$dir"
    # Seeds the target makes itself (see fuzz/src/seeds.rs).
    TENDER_FUZZ_SEEDS="$dir" "$bin/$t" >/dev/null 2>&1 || {
        echo "$t: could not write its generated seeds" >&2
        exit 1
    }
    local vectors="$root/bundle-spec/vectors"
    case $t in
    bundle_reader) copy_seeds "$dir" "$vectors" -name '*.tender' ;;
    canonical_json) copy_seeds "$dir" "$vectors" -name '*.json' ;;
    policy_update) copy_seeds "$dir" "$vectors" -name '*policy*.json' ;;
    trust_policy) copy_seeds "$dir" "$vectors" -name 'policy.yaml' ;;
    site_file) yaml_blocks "$dir" Site "$root/docs/site.md" ;;
    fleet_spec)
        copy_seeds "$dir" "$root/testdata" -name fleet.yaml
        yaml_blocks "$dir" Fleet "$root/docs/fleet-spec.md"
        ;;
    esac
    if [ -z "$(ls -A "$dir")" ]; then
        echo "$t: no seeds found" >&2
        exit 1
    fi
}

mkdir -p "$fuzz/logs"
summary=()
crashed=0
for t in $targets; do
    seed "$t"
    artifacts="$fuzz/artifacts/$t"
    mkdir -p "$artifacts"
    before=$(ls "$artifacts" | wc -l)
    log="$fuzz/logs/$t.log"
    echo "fuzzing $t for ${seconds}s (log: fuzz/logs/$t.log)" >&2
    # libFuzzer exits non-zero on a crash (and stops there); the count
    # below says so.
    start=$(date +%s)
    nice -n "$nice" "$bin/$t" "$fuzz/corpus/$t" \
        -artifact_prefix="$artifacts/" -max_total_time="$seconds" \
        -timeout="$timeout" -rss_limit_mb="$rss" -print_final_stats=1 \
        >"$log" 2>&1 || true
    elapsed=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    found=$(($(ls "$artifacts" | wc -l) - before))
    [ "$found" -eq 0 ] || crashed=1
    summary+=("$(printf '%-16s %6ss %12s runs  %d new crash(es)' "$t" "$elapsed" "${runs:-?}" "$found")")
done

echo >&2
printf '%s\n' "${summary[@]}"
if [ "$crashed" -ne 0 ]; then
    echo "crashes found: inputs in fuzz/artifacts/" >&2
    exit 1
fi
