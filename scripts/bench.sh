#!/usr/bin/env bash
# The benchmark harness of the project. Builds tender (cargo build --release),
# then runs one or more rows; each row times tender against a real baseline
# tool measured in the same run on the same input, and prints the ratio.
# Nothing here asserts on timings: it reports, a human judges.
#
#   scripts/bench.sh [--quick] [--only ROW] [--keep] [--json FILE]
#
#   --quick      smoke-sized inputs and best of 3 (default: full sizes,
#                median of 5)
#   --only ROW   run just this row (see ROWS below)
#   --keep       keep the work dir ${TMPDIR:-/tmp}/tender-bench.XXXX
#   --json FILE  also write one JSON object per row (JSON lines) to FILE
#
# Needs what scripts/install-deps.sh installs (openssl, /usr/bin/time) plus
# coreutils and cargo. Timing uses bash's EPOCHREALTIME, so no hyperfine.
#
# Adding a row: write a function row_<name> that uses the helpers below
# (make_layout, pack_bundle, measure, stat_of, table_add, json_row) and add
# <name> to ROWS.
set -euo pipefail
# C locale: EPOCHREALTIME and printf/awk then all use '.' as decimal point.
export LC_ALL=C
shopt -s extglob # for +(...) patterns

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tender="$repo/target/release/tender"

ROWS=(verify)

MIB=$((1 << 20))
GIB=$((1 << 30))

quick=0
keep=0
only=""
json_file=""
work=""

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

usage() {
    # The header comment above is the usage text.
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

parse_args() {
    while (($#)); do
        case $1 in
        --quick) quick=1 ;;
        --keep) keep=1 ;;
        --only)
            (($# >= 2)) || die "--only needs a row name"
            only=$2
            shift
            ;;
        --json)
            (($# >= 2)) || die "--json needs a file name"
            json_file=$2
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    if [[ -n $only ]] && ! declare -F "row_$only" >/dev/null; then
        die "unknown row '$only' (rows: ${ROWS[*]})"
    fi
}

check_tools() {
    local tool missing=()
    for tool in cargo openssl sha256sum awk; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    # The GNU time binary, not the shell keyword: only it reports peak RSS.
    [[ -x /usr/bin/time ]] || missing+=(/usr/bin/time)
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/install-deps.sh"
    [[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 needed (EPOCHREALTIME)"
}

# --- host description ---------------------------------------------------------

cpu_model=""
sha_ni=false
ncpu=0
git_rev=""

describe_host() {
    cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    # sha_ni is the x86 flag; "sha2" is the arm64 one. Either means hardware
    # sha256, which both openssl and the sha2 crate pick at run time.
    if grep -qwE 'sha_ni|sha2' /proc/cpuinfo; then sha_ni=true; fi
    ncpu="$(nproc)"
    git_rev="$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Other work on the machine skews every number; say so rather than hide it.
warn_if_busy() {
    local load
    load="$(loadavg)"
    if awk -v l="$load" -v n="$ncpu" 'BEGIN { exit !(l > n / 2) }'; then
        log "warning: load average $load on $ncpu CPUs: other work is running, numbers will be noisy"
    fi
}

# --- work dir ------------------------------------------------------------------

cleanup() {
    [[ -n $work && -d $work ]] || return 0
    if ((keep)); then
        log "kept work dir $work"
    else
        rm -rf "$work"
    fi
}

make_workdir() {
    work="$(mktemp -d "${TMPDIR:-/tmp}/tender-bench.XXXX")"
    trap cleanup EXIT
    # Turn fatal signals into a normal exit so the EXIT trap still cleans up.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    log "work dir $work"
}

# need_space BYTES: fail early instead of ENOSPC halfway through a 2 GiB write.
need_space() {
    local avail
    avail=$(($(df -Pk "$work" | awk 'NR == 2 { print $4 }') * 1024))
    ((avail >= $1)) || die "need $(human_bytes "$1") free under $work, have $(human_bytes "$avail")"
}

# --- inputs --------------------------------------------------------------------

human_bytes() {
    awk -v b="$1" 'BEGIN {
        if (b >= 2^30) printf "%.2f GiB", b / 2^30
        else printf "%.0f MiB", b / 2^20 }'
}

# make_layout DIR TOTAL_BYTES BLOBS: an OCI image layout holding BLOBS blobs of
# incompressible random bytes (openssl rand), TOTAL_BYTES in all. No image
# manifests: tender carries blobs, and random data keeps any compression or
# dedup from flattering the numbers.
make_layout() {
    local dir=$1 total=$2 count=$3 each i hex
    each=$((total / count))
    mkdir -p "$dir/blobs/sha256"
    printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    printf '%s' '{"schemaVersion":2,"manifests":[]}' >"$dir/index.json"
    for ((i = 0; i < count; i++)); do
        openssl rand -out "$dir/blob.tmp" "$each"
        # sha256sum, not openssl: an independent implementation names the
        # blobs, so a wrong digest in either would show up as a failed verify.
        hex="$(sha256sum "$dir/blob.tmp" | cut -d' ' -f1)"
        mv "$dir/blob.tmp" "$dir/blobs/sha256/$hex"
    done
}

# ensure_keys: one release key and a trust policy trusting it, shared by rows.
ensure_keys() {
    [[ -f $work/policy.yaml ]] && return 0
    "$tender" keygen bench --dir "$work" --no-progress >/dev/null
    cat >"$work/policy.yaml" <<'EOF'
version: 1
keys:
  - name: bench
    public_key_file: bench.pub
    roles: [release]
thresholds:
  release: 1
EOF
}

# pack_bundle LAYOUT OUT: seal LAYOUT into the bundle OUT, signed by the bench key.
pack_bundle() {
    ensure_keys
    "$tender" pack "$1" -o "$2" --key "$work/bench.key" --sequence 1 --site bench \
        --no-progress >/dev/null
}

# make_bundle OUT TOTAL_BYTES BLOBS: layout + pack; the layout is removed
# afterwards so that a full run needs disk for the bundles only.
make_bundle() {
    local out=$1 total=$2 count=$3 layout
    layout="$work/layout.$(basename "$out")"
    log "generating $(human_bytes "$total") in $count random blobs"
    make_layout "$layout" "$total" "$count"
    log "packing $(basename "$out")"
    pack_bundle "$layout" "$out"
    rm -rf "$layout"
}

# page_cache FILE: read it twice so every timed run reads from memory, not disk.
page_cache() {
    cat "$1" >/dev/null
    cat "$1" >/dev/null
}

# --- measuring -----------------------------------------------------------------

# measure CMD...: runs CMD once under /usr/bin/time -v. Sets m_wall (seconds,
# from EPOCHREALTIME: /usr/bin/time's own elapsed has only 10 ms resolution),
# m_cpu (user + sys seconds) and m_rss_kib (peak RSS). Fails loudly if CMD
# fails: a bench of a failing command is meaningless.
m_wall=0
m_cpu=0
m_rss_kib=0
measure() {
    local start end status=0
    start=$EPOCHREALTIME
    /usr/bin/time -v -o "$work/time.out" "$@" >/dev/null 2>"$work/cmd.err" || status=$?
    end=$EPOCHREALTIME
    if ((status != 0)); then
        cat "$work/cmd.err" >&2
        die "exit status $status from: $*"
    fi
    m_wall="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')"
    read -r m_cpu m_rss_kib < <(awk -F': ' '
        /User time \(seconds\)/ { u = $2 }
        /System time \(seconds\)/ { s = $2 }
        /Maximum resident set size/ { m = $2 }
        END { printf "%.2f %d\n", u + s, m }' "$work/time.out")
}

# stat_of VALUES...: the summary the mode asks for. Quick: best (minimum) of
# the runs. Full: median, less sensitive to one lucky or unlucky run.
stat_of() {
    printf '%s\n' "$@" | sort -g | awk -v quick="$quick" '
        { v[NR] = $1 }
        END {
            if (quick) print v[1]
            else if (NR % 2) print v[(NR + 1) / 2]
            else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

max_of() { printf '%s\n' "$@" | sort -g | tail -n1; }

# --- output --------------------------------------------------------------------

table=()
notes=()
table_fmt='%-7s  %-30s  %-13s  %-13s  %-6s  %s\n'

# table_add ROW METRIC BASELINE TENDER RATIO TARGET ("" for an empty cell)
table_add() {
    local line
    # shellcheck disable=SC2059 # the format is a fixed string defined above
    printf -v line "$table_fmt" "$1" "$2" "$3" "$4" "$5" "$6"
    line="${line%%+([[:space:]])}" # no trailing blanks from empty cells
    table+=("$line")
}

print_table() {
    local mode=full
    ((quick)) && mode=quick
    echo
    echo "tender bench ($mode), $git_rev"
    echo "host: $cpu_model; sha_ni: $sha_ni; nproc: $ncpu; load average now: $(loadavg)"
    echo
    # shellcheck disable=SC2059
    printf "$table_fmt" ROW METRIC BASELINE TENDER RATIO TARGET
    printf '%s\n' "${table[@]}"
    echo
    echo "ratio = baseline wall time / tender wall time (> 1: tender is faster)"
    if ((${#notes[@]})); then printf '%s\n' "${notes[@]}"; fi
}

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

json_array() {
    local IFS=,
    printf '[%s]' "$*"
}

# json_row ROW KEY=RAW_JSON...: one JSON line for ROW with the host fields
# first, so each line stands alone. Values must already be JSON.
json_row() {
    [[ -n $json_file ]] || return 0
    local row=$1 kv line
    shift
    line="{\"row\":$(json_str "$row"),\"mode\":$(json_str "$( ((quick)) && echo quick || echo full)")"
    line+=",\"git\":$(json_str "$git_rev"),\"cpu_model\":$(json_str "$cpu_model")"
    line+=",\"sha_ni\":$sha_ni,\"nproc\":$ncpu"
    for kv in "$@"; do
        line+=",\"${kv%%=*}\":${kv#*=}"
    done
    echo "$line}" >>"$json_file"
}

# --- rows ----------------------------------------------------------------------

# verify: `tender verify` (signature check + sha256 of every blob, streaming)
# against `openssl dgst -sha256` of the same bundle file: the floor for "read
# the file and hash every byte" on this machine. Also peak RSS of verify on
# the bundle and on one 4x smaller: it must stay flat (target 64 MiB).
row_verify() {
    local total small_total blobs=20 runs i
    if ((quick)); then
        total=$((200 * MIB)) runs=3
    else
        total=$((2 * GIB)) runs=5
    fi
    small_total=$((total / 4))
    need_space $((2 * total + small_total))

    local big="$work/bench.tender" small="$work/small.tender"
    make_bundle "$big" "$total" "$blobs"
    make_bundle "$small" "$small_total" "$blobs"
    local size small_size
    size="$(stat -c %s "$big")"
    small_size="$(stat -c %s "$small")"

    local verify_big=("$tender" verify "$big" --trust "$work/policy.yaml" --no-progress)
    local verify_small=("$tender" verify "$small" --trust "$work/policy.yaml" --no-progress)

    warn_if_busy
    local load_before
    load_before="$(loadavg)"
    page_cache "$big"
    # Interleaved, so drift in machine load hits both sides alike.
    local o_wall=() o_cpu=() o_rss=() t_wall=() t_cpu=() t_rss=()
    for ((i = 1; i <= runs; i++)); do
        log "verify: run $i/$runs"
        measure openssl dgst -sha256 "$big"
        o_wall+=("$m_wall") o_cpu+=("$m_cpu") o_rss+=("$m_rss_kib")
        measure "${verify_big[@]}"
        t_wall+=("$m_wall") t_cpu+=("$m_cpu") t_rss+=("$m_rss_kib")
    done

    page_cache "$small"
    local s_rss=()
    for ((i = 1; i <= runs; i++)); do
        measure "${verify_small[@]}"
        s_rss+=("$m_rss_kib")
    done

    local ow tw oc tc ratio o_gibs t_gibs rss_big rss_small o_rss_max
    ow="$(stat_of "${o_wall[@]}")"
    tw="$(stat_of "${t_wall[@]}")"
    oc="$(stat_of "${o_cpu[@]}")"
    tc="$(stat_of "${t_cpu[@]}")"
    # Peak RSS is a ceiling, so the worst run counts.
    rss_big="$(max_of "${t_rss[@]}")"
    rss_small="$(max_of "${s_rss[@]}")"
    o_rss_max="$(max_of "${o_rss[@]}")"
    read -r ratio o_gibs t_gibs < <(awk -v o="$ow" -v t="$tw" -v b="$size" \
        'BEGIN { printf "%.3f %.3f %.3f\n", o / t, b / 2^30 / o, b / 2^30 / t }')

    local how="median of $runs"
    ((quick)) && how="best of $runs"
    local mib='%.1f MiB'
    table_add verify "wall, $how, $(human_bytes "$size")" \
        "$(printf '%.3f s' "$ow")" "$(printf '%.3f s' "$tw")" \
        "$(printf '%.2f' "$ratio")" ">= 1.0 (aim 1.5)"
    table_add "" "throughput" \
        "$(printf '%.2f GiB/s' "$o_gibs")" "$(printf '%.2f GiB/s' "$t_gibs")" "" ""
    table_add "" "CPU user+sys, $how" \
        "$(printf '%.2f s' "$oc")" "$(printf '%.2f s' "$tc")" "" ""
    table_add "" "peak RSS, $(human_bytes "$size")" \
        "$(awk -v k="$o_rss_max" -v f="$mib" 'BEGIN { printf f, k / 1024 }')" \
        "$(awk -v k="$rss_big" -v f="$mib" 'BEGIN { printf f, k / 1024 }')" "" "<= 64 MiB"
    table_add "" "peak RSS, $(human_bytes "$small_size")" "-" \
        "$(awk -v k="$rss_small" -v f="$mib" 'BEGIN { printf f, k / 1024 }')" "" \
        "<= 64 MiB, flat"
    notes+=("verify: baseline = openssl dgst -sha256 of the same page-cached bundle file")

    json_row verify \
        "baseline=$(json_str "openssl dgst -sha256")" \
        "bundle_bytes=$size" "blobs=$blobs" "runs=$runs" \
        "stat=$(json_str "$( ((quick)) && echo min || echo median)")" \
        "baseline_s=$ow" "tender_s=$tw" "ratio=$ratio" \
        "ratio_target=1.0" "ratio_aim=1.5" \
        "baseline_gib_s=$o_gibs" "tender_gib_s=$t_gibs" \
        "baseline_cpu_s=$oc" "tender_cpu_s=$tc" \
        "baseline_wall_samples_s=$(json_array "${o_wall[@]}")" \
        "tender_wall_samples_s=$(json_array "${t_wall[@]}")" \
        "tender_peak_rss_kib=$rss_big" \
        "small_bundle_bytes=$small_size" "tender_peak_rss_small_kib=$rss_small" \
        "baseline_peak_rss_kib=$o_rss_max" "rss_target_kib=$((64 * 1024))" \
        "loadavg_before=$load_before" "loadavg_after=$(loadavg)"

    # --keep means "let me look at the inputs afterwards".
    ((keep)) || rm -f "$big" "$small"
}

# --- main ----------------------------------------------------------------------

main() {
    parse_args "$@"
    check_tools
    describe_host
    if [[ -n $json_file ]]; then
        : >"$json_file" # fresh file per run: one line per row of this run
    fi

    log "cargo build --release"
    (cd "$repo" && cargo build --release) >&2
    [[ -x $tender ]] || die "no $tender after cargo build --release"

    make_workdir
    local row
    for row in "${ROWS[@]}"; do
        [[ -z $only || $only == "$row" ]] || continue
        "row_$row"
    done
    print_table
    if [[ -n $json_file ]]; then log "JSON lines in $json_file"; fi
}

main "$@"
