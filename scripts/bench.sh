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

ROWS=(verify export import volumes delta)

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
    stop_registries # before the work dir holding their storage goes
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

# --- registries and images (export, import) ------------------------------------

registry_pids=()
reg_host=""
reg_pid=""

# start_registry NAME: a docker-registry (distribution) on a free loopback
# port speaking plain HTTP, storage under $work/registry.NAME (wiped first).
# Sets reg_host (127.0.0.1:PORT) and reg_pid. Retried on a new port if another
# process takes the probed one first, as crates/test-support does.
start_registry() {
    local dir="$work/registry.$1" port pid attempt i
    [[ -x /usr/bin/docker-registry ]] || die "missing /usr/bin/docker-registry: run scripts/install-deps.sh"
    for attempt in 1 2 3 4 5; do
        rm -rf "$dir"
        mkdir -p "$dir/storage"
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: tender-bench-registry
EOF
        /usr/bin/docker-registry serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
        pid=$!
        registry_pids+=("$pid")
        for ((i = 0; i < 400; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
                reg_host="127.0.0.1:$port" reg_pid=$pid
                return 0
            fi
            sleep 0.025
        done
        log "registry $1 did not come up on port $port (attempt $attempt): $(tail -n3 "$dir/registry.log")"
        stop_registry "$pid"
    done
    die "docker-registry did not start after 5 attempts"
}

# stop_registry PID: kill and reap one registry started above.
stop_registry() {
    local pid=$1 kept=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${registry_pids[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    registry_pids=("${kept[@]}")
}

# stop_registries: on exit, whatever is still running.
stop_registries() {
    local pid
    for pid in "${registry_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    registry_pids=()
}

# make_images DIR COUNT LAYERS LAYER_BYTES: an OCI layout of COUNT images
# (refs img0..img{COUNT-1}), each LAYERS uncompressed tar layers holding one
# file of LAYER_BYTES random bytes, and a config whose diff_ids match.
make_images() {
    python3 "$repo/xtask/src/bench/make_images.py" "$@"
}

# skopeo_each COUNT SRC DST SKOPEO_ARGS...: the baseline, `skopeo copy` of
# COUNT images one by one; "{}" in SRC and DST is replaced by the image number.
# A script for bash -c, so that measure times the whole loop as one command.
# shellcheck disable=SC2016 # expanded by the inner bash
skopeo_each='n=$1 src=$2 dst=$3
shift 3
for ((i = 0; i < n; i++)); do
    skopeo copy --quiet "$@" "${src//"{}"/$i}" "${dst//"{}"/$i}" || exit
done'

export_images=20
export_layers=2
export_layer_bytes=0
export_src=""

# export_inputs: once per run, the images (generated), a source registry
# holding them as 127.0.0.1:PORT/bench/imgN:1, and a fleet.yaml listing them.
export_inputs() {
    [[ -n $export_src ]] && return 0
    if ((quick)); then
        export_layer_bytes=$((100 * MIB / export_images / export_layers))
    else
        export_layer_bytes=$((GIB / export_images / export_layers))
    fi
    local total=$((export_images * export_layers * export_layer_bytes)) i
    # images + source registry + bundle + baseline copy + 2 target registries
    need_space $((6 * total + total / 2))
    ensure_keys
    log "generating $export_images images, $export_layers random tar layers of $(human_bytes "$export_layer_bytes") each"
    make_images "$work/images" "$export_images" "$export_layers" "$export_layer_bytes"
    start_registry source
    export_src=$reg_host
    log "pushing them to the source registry $export_src"
    bash -c "$skopeo_each" _ "$export_images" "oci:$work/images:img{}" \
        "docker://$export_src/bench/img{}:1" --dest-tls-verify=false
    mkdir -p "$work/fleet"
    {
        cat <<'EOF'
apiVersion: tender.dev/v1alpha1
kind: Fleet
name: bench
clusters:
  - { name: edge-1, site: bench, tier: production }
images:
EOF
        for ((i = 0; i < export_images; i++)); do
            echo "  - $export_src/bench/img$i:1"
        done
        echo "registries:"
        echo "  \"$export_src\": { plainHttp: true }"
    } >"$work/fleet/fleet.yaml"
}

# export_cmd HUB_STATE OUT: the tender export command line (as an array in
# the caller's "cmd").
export_cmd() {
    cmd=("$tender" export "$work/fleet/fleet.yaml" -o "$2" --key "$work/bench.key"
        --state-dir "$1" --no-progress)
}

kib_mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# export: `tender export` of a fleet listing 20 images (1 GiB; quick 100 MiB)
# from a loopback docker-registry, against `skopeo copy` of the same images
# one by one into one OCI layout. Target: tender at most half skopeo's time,
# peak RSS at most 128 MiB.
row_export() {
    local runs i cmd=()
    runs=5
    ((quick)) && runs=3
    export_inputs
    local out="$work/export-run.tender" oci="$work/skopeo-export"

    warn_if_busy
    local load_before
    load_before="$(loadavg)"
    local s_wall=() s_cpu=() s_rss=() t_wall=() t_cpu=() t_rss=() f_wall=()
    local size=$((export_images * export_layers * export_layer_bytes))
    for ((i = 1; i <= runs; i++)); do
        log "export: run $i/$runs"
        rm -rf "$oci"
        sync # no one's writeback left over for the next command
        measure bash -c "$skopeo_each" _ "$export_images" \
            "docker://$export_src/bench/img{}:1" "oci:$oci:img{}" --src-tls-verify=false
        s_wall+=("$m_wall") s_cpu+=("$m_cpu") s_rss+=("$m_rss_kib")
        # Both tools fsync what they write, so the disk bounds both: its
        # floor now is writing the bundle's bytes and syncing them.
        rm -f "$work/disk-floor"
        sync
        measure dd if=/dev/zero of="$work/disk-floor" bs=1M count=$(((size + MIB - 1) / MIB)) conv=fdatasync status=none
        f_wall+=("$m_wall")
        rm -f "$work/disk-floor"
        # A fresh hub state each run: every run is sequence 1 of a new hub.
        rm -rf "$work/hub.export" "$out"
        sync
        export_cmd "$work/hub.export" "$out"
        measure "${cmd[@]}"
        t_wall+=("$m_wall") t_cpu+=("$m_cpu") t_rss+=("$m_rss_kib")
    done
    size="$(stat -c %s "$out")"
    # The last run's bundle is the import row's input.
    mv "$out" "$work/export.tender"
    rm -rf "$oci" "$work/hub.export"

    local sw tw sc tc fw ratio rss s_rss_max
    sw="$(stat_of "${s_wall[@]}")"
    tw="$(stat_of "${t_wall[@]}")"
    sc="$(stat_of "${s_cpu[@]}")"
    tc="$(stat_of "${t_cpu[@]}")"
    fw="$(stat_of "${f_wall[@]}")"
    rss="$(max_of "${t_rss[@]}")"
    s_rss_max="$(max_of "${s_rss[@]}")"
    ratio="$(awk -v s="$sw" -v t="$tw" 'BEGIN { printf "%.3f", s / t }')"

    local how="median of $runs"
    ((quick)) && how="best of $runs"
    table_add export "wall, $how, $export_images images" \
        "$(printf '%.3f s' "$sw")" "$(printf '%.3f s' "$tw")" \
        "$(printf '%.2f' "$ratio")" ">= 2.0"
    table_add "" "disk floor: dd + fdatasync of $(human_bytes "$size")" \
        "$(printf '%.3f s' "$fw")" "" "" ""
    table_add "" "CPU user+sys, $how" \
        "$(printf '%.2f s' "$sc")" "$(printf '%.2f s' "$tc")" "" ""
    table_add "" "peak RSS, bundle $(human_bytes "$size")" \
        "$(kib_mib "$s_rss_max")" "$(kib_mib "$rss")" "" "<= 128 MiB"
    notes+=("export: baseline = skopeo copy of each image, one by one, from the loopback registry into one OCI layout")
    notes+=("export: both fsync what they write (skopeo each blob, tender its bundle), so neither beats the disk floor for long")

    json_row export \
        "baseline=$(json_str "skopeo copy docker:// -> oci:, one image at a time")" \
        "images=$export_images" "layers_per_image=$export_layers" \
        "layer_bytes=$export_layer_bytes" "bundle_bytes=$size" "runs=$runs" \
        "stat=$(json_str "$( ((quick)) && echo min || echo median)")" \
        "baseline_s=$sw" "tender_s=$tw" "ratio=$ratio" "ratio_target=2.0" \
        "baseline_cpu_s=$sc" "tender_cpu_s=$tc" \
        "disk_floor_s=$fw" \
        "baseline_wall_samples_s=$(json_array "${s_wall[@]}")" \
        "tender_wall_samples_s=$(json_array "${t_wall[@]}")" \
        "tender_peak_rss_kib=$rss" "baseline_peak_rss_kib=$s_rss_max" \
        "rss_target_kib=$((128 * 1024))" \
        "loadavg_before=$load_before" "loadavg_after=$(loadavg)"
}

# write_site FILE STATE_DIR [REGISTRY_HOST]: a site file for the bench bundle;
# without REGISTRY_HOST, images go to the site's embedded store.
write_site() {
    cat >"$1" <<EOF
apiVersion: tender.dev/v1alpha1
kind: Site
name: bench
clusters: [edge-1]
trustPolicy: $work/policy.yaml
stateDir: $2
EOF
    if [[ -n ${3:-} ]]; then
        echo "registry: { url: \"$3\", plainHttp: true }" >>"$1"
    fi
}

# import: `tender import` of the export bundle into a fresh loopback registry
# against `skopeo copy` of the same images one by one from the OCI layout into
# another fresh one (target: at most skopeo's time), then the re-import of the
# same bundle into the same site, a no-op (target: at most 5% of the import).
# Peak RSS at most 128 MiB.
row_import() {
    local runs i cmd=()
    runs=5
    ((quick)) && runs=3
    export_inputs
    local bundle="$work/export.tender"
    if [[ ! -f $bundle ]]; then
        log "import: exporting the bundle"
        export_cmd "$work/hub.import" "$bundle"
        "${cmd[@]}" >/dev/null
    fi
    local size
    size="$(stat -c %s "$bundle")"
    page_cache "$bundle"

    warn_if_busy
    local load_before
    load_before="$(loadavg)"
    local s_wall=() s_cpu=() s_rss=() t_wall=() t_cpu=() t_rss=() r_wall=() r_rss=()
    local site="$work/site.yaml" state="$work/site-state"
    for ((i = 1; i <= runs; i++)); do
        log "import: run $i/$runs"
        # Fresh registries and site state each run; started outside the timing.
        start_registry import-baseline
        measure bash -c "$skopeo_each" _ "$export_images" \
            "oci:$work/images:img{}" "docker://$reg_host/bench/img{}:1" --dest-tls-verify=false
        s_wall+=("$m_wall") s_cpu+=("$m_cpu") s_rss+=("$m_rss_kib")
        stop_registry "$reg_pid"
        rm -rf "$work/registry.import-baseline"

        start_registry import-tender
        rm -rf "$state"
        write_site "$site" "$state" "$reg_host"
        cmd=("$tender" import "$bundle" --site "$site" --operator bench --no-progress)
        measure "${cmd[@]}"
        t_wall+=("$m_wall") t_cpu+=("$m_cpu") t_rss+=("$m_rss_kib")
        measure "${cmd[@]}"
        r_wall+=("$m_wall") r_rss+=("$m_rss_kib")
        stop_registry "$reg_pid"
        rm -rf "$work/registry.import-tender" "$state"
    done

    local sw tw sc tc rw ratio reimport_pct rss s_rss_max
    sw="$(stat_of "${s_wall[@]}")"
    tw="$(stat_of "${t_wall[@]}")"
    sc="$(stat_of "${s_cpu[@]}")"
    tc="$(stat_of "${t_cpu[@]}")"
    rw="$(stat_of "${r_wall[@]}")"
    rss="$(max_of "${t_rss[@]}" "${r_rss[@]}")"
    s_rss_max="$(max_of "${s_rss[@]}")"
    read -r ratio reimport_pct < <(awk -v s="$sw" -v t="$tw" -v r="$rw" \
        'BEGIN { printf "%.3f %.2f\n", s / t, 100 * r / t }')

    local how="median of $runs"
    ((quick)) && how="best of $runs"
    table_add import "wall, $how, $export_images images" \
        "$(printf '%.3f s' "$sw")" "$(printf '%.3f s' "$tw")" \
        "$(printf '%.2f' "$ratio")" ">= 1.0"
    table_add "" "re-import (no-op), $how" "-" \
        "$(printf '%.3f s = %.1f%%' "$rw" "$reimport_pct")" "" "<= 5% of import"
    table_add "" "CPU user+sys, $how" \
        "$(printf '%.2f s' "$sc")" "$(printf '%.2f s' "$tc")" "" ""
    table_add "" "peak RSS, bundle $(human_bytes "$size")" \
        "$(kib_mib "$s_rss_max")" "$(kib_mib "$rss")" "" "<= 128 MiB"
    notes+=("import: baseline = skopeo copy of each image, one by one, from the OCI layout into a fresh loopback registry")

    json_row import \
        "baseline=$(json_str "skopeo copy oci: -> docker://, one image at a time")" \
        "images=$export_images" "bundle_bytes=$size" "runs=$runs" \
        "stat=$(json_str "$( ((quick)) && echo min || echo median)")" \
        "baseline_s=$sw" "tender_s=$tw" "ratio=$ratio" "ratio_target=1.0" \
        "reimport_s=$rw" "reimport_pct=$reimport_pct" "reimport_pct_target=5" \
        "baseline_cpu_s=$sc" "tender_cpu_s=$tc" \
        "baseline_wall_samples_s=$(json_array "${s_wall[@]}")" \
        "tender_wall_samples_s=$(json_array "${t_wall[@]}")" \
        "reimport_wall_samples_s=$(json_array "${r_wall[@]}")" \
        "tender_peak_rss_kib=$rss" "baseline_peak_rss_kib=$s_rss_max" \
        "rss_target_kib=$((128 * 1024))" \
        "loadavg_before=$load_before" "loadavg_after=$(loadavg)"

    ((keep)) || rm -f "$bundle"
}

# --- volumes ---------------------------------------------------------------------

# volumes: what it costs to carry a bundle as volumes rather than one file.
# The baseline is tender's own single-file path; volumes should cost at most
# 10% more (ratio >= 0.91). Three measures: `tender pack` of one layout into
# a file and into 64 MiB volumes (`--volume-size 64M`); `tender verify` of
# that file and of the volume directory; `tender import` into a fresh
# embedded-store site of the export row's bundle (20 images) as one file and
# cut by `tender split` (16 MiB volumes in quick mode, 64 MiB in full). Also
# peak RSS of verify and import over the volumes.
row_volumes() {
    local total blobs=20 runs i vsize=64M import_vsize=64M cmd=()
    if ((quick)); then
        total=$((200 * MIB)) runs=3 import_vsize=16M
    else
        total=$((2 * GIB)) runs=5
    fi
    export_inputs
    # The layout, the single file and the volumes side by side, then the
    # import bundle, its volumes and two site stores.
    need_space $((3 * total + 64 * MIB + 4 * export_images * export_layers * export_layer_bytes))

    local layout="$work/layout.volumes" single="$work/single.tender" vdir="$work/volumes"
    log "generating $(human_bytes "$total") in $blobs random blobs"
    make_layout "$layout" "$total" "$blobs"
    ensure_keys
    mkdir -p "$vdir"
    local pack=("$tender" pack "$layout" --key "$work/bench.key" --sequence 1 --site bench
        --no-progress)
    local pack_single=("${pack[@]}" -o "$single")
    local pack_volumes=("${pack[@]}" -o "$vdir/bench.tender" --volume-size "$vsize")
    local verify_single=("$tender" verify "$single" --trust "$work/policy.yaml" --no-progress)
    local verify_volumes=("$tender" verify "$vdir" --trust "$work/policy.yaml" --no-progress)

    # The import bundle: exported once, then split (the same bytes).
    local ibundle="$work/volumes-import.tender" idir="$work/volumes-import"
    log "volumes: exporting the import bundle, splitting it into $import_vsize volumes"
    export_cmd "$work/hub.volumes" "$ibundle"
    "${cmd[@]}" >/dev/null
    rm -rf "$work/hub.volumes" "$idir"
    "$tender" split "$ibundle" --volume-size "$import_vsize" -o "$idir" >/dev/null
    local site_single="$work/site-single.yaml" site_volumes="$work/site-volumes.yaml"
    local state_single="$work/site-state-single" state_volumes="$work/site-state-volumes"
    write_site "$site_single" "$state_single"
    write_site "$site_volumes" "$state_volumes"
    local import_single=("$tender" import "$ibundle" --site "$site_single" --operator bench
        --no-progress)
    local import_volumes=("$tender" import "$idir" --site "$site_volumes" --operator bench
        --no-progress)

    warn_if_busy
    local load_before
    load_before="$(loadavg)"
    cat "$layout"/blobs/sha256/* >/dev/null
    # Interleaved, so drift in machine load hits both sides alike.
    local ps_wall=() pv_wall=() vs_wall=() vv_wall=() vv_rss=() is_wall=() iv_wall=() iv_rss=()
    for ((i = 1; i <= runs; i++)); do
        log "volumes: pack run $i/$runs"
        measure "${pack_single[@]}"
        ps_wall+=("$m_wall")
        measure "${pack_volumes[@]}"
        pv_wall+=("$m_wall")
    done
    local size count isize icount
    size="$(stat -c %s "$single")"
    count="$(find "$vdir" -name 'bench.tender.[0-9][0-9][0-9]' | wc -l)"
    isize="$(stat -c %s "$ibundle")"
    icount="$(find "$idir" -name '*.tender.[0-9][0-9][0-9]' | wc -l)"
    page_cache "$single"
    cat "$vdir"/bench.tender.[0-9][0-9][0-9] >/dev/null
    for ((i = 1; i <= runs; i++)); do
        log "volumes: verify run $i/$runs"
        measure "${verify_single[@]}"
        vs_wall+=("$m_wall")
        measure "${verify_volumes[@]}"
        vv_wall+=("$m_wall") vv_rss+=("$m_rss_kib")
    done
    page_cache "$ibundle"
    cat "$idir"/*.tender.[0-9][0-9][0-9] >/dev/null
    for ((i = 1; i <= runs; i++)); do
        log "volumes: import run $i/$runs"
        # A fresh site each run, cleared outside the timing.
        rm -rf "$state_single" "$state_volumes"
        measure "${import_single[@]}"
        is_wall+=("$m_wall")
        measure "${import_volumes[@]}"
        iv_wall+=("$m_wall") iv_rss+=("$m_rss_kib")
    done
    rm -rf "$state_single" "$state_volumes"

    local ps pv vs vv is iv pack_ratio verify_ratio import_ratio rss irss
    ps="$(stat_of "${ps_wall[@]}")"
    pv="$(stat_of "${pv_wall[@]}")"
    vs="$(stat_of "${vs_wall[@]}")"
    vv="$(stat_of "${vv_wall[@]}")"
    is="$(stat_of "${is_wall[@]}")"
    iv="$(stat_of "${iv_wall[@]}")"
    rss="$(max_of "${vv_rss[@]}")"
    irss="$(max_of "${iv_rss[@]}")"
    read -r pack_ratio verify_ratio import_ratio < <(awk -v ps="$ps" -v pv="$pv" \
        -v vs="$vs" -v vv="$vv" -v is="$is" -v iv="$iv" \
        'BEGIN { printf "%.3f %.3f %.3f\n", ps / pv, vs / vv, is / iv }')

    local how="median of $runs"
    ((quick)) && how="best of $runs"
    table_add volumes "pack wall, $how, $(human_bytes "$size")" \
        "$(printf '%.3f s' "$ps")" "$(printf '%.3f s' "$pv")" \
        "$(printf '%.2f' "$pack_ratio")" ">= 0.91 (1.1x)"
    table_add "" "verify wall, $how, $count x $vsize" \
        "$(printf '%.3f s' "$vs")" "$(printf '%.3f s' "$vv")" \
        "$(printf '%.2f' "$verify_ratio")" ">= 0.91 (1.1x)"
    table_add "" "import wall, $how, $icount x $import_vsize" \
        "$(printf '%.3f s' "$is")" "$(printf '%.3f s' "$iv")" \
        "$(printf '%.2f' "$import_ratio")" ">= 0.91 (1.1x)"
    table_add "" "verify peak RSS, volumes" "-" "$(kib_mib "$rss")" "" "<= 64 MiB"
    table_add "" "import peak RSS, volumes" "-" "$(kib_mib "$irss")" "" "<= 128 MiB"
    notes+=("volumes: baseline = tender on one file; TENDER column = the same bundle as volumes")
    notes+=("volumes: import = the export row's $export_images images ($(human_bytes "$isize") bundle) into a fresh embedded-store site")

    json_row volumes \
        "baseline=$(json_str "tender, single file")" \
        "bundle_bytes=$size" "blobs=$blobs" "volume_size=$(json_str "$vsize")" \
        "volumes=$count" "runs=$runs" \
        "stat=$(json_str "$( ((quick)) && echo min || echo median)")" \
        "pack_single_s=$ps" "pack_volumes_s=$pv" "pack_ratio=$pack_ratio" \
        "verify_single_s=$vs" "verify_volumes_s=$vv" "verify_ratio=$verify_ratio" \
        "import_bundle_bytes=$isize" "import_volume_size=$(json_str "$import_vsize")" \
        "import_volumes=$icount" \
        "import_single_s=$is" "import_volumes_s=$iv" "import_ratio=$import_ratio" \
        "ratio_target=0.91" \
        "pack_single_samples_s=$(json_array "${ps_wall[@]}")" \
        "pack_volumes_samples_s=$(json_array "${pv_wall[@]}")" \
        "verify_single_samples_s=$(json_array "${vs_wall[@]}")" \
        "verify_volumes_samples_s=$(json_array "${vv_wall[@]}")" \
        "import_single_samples_s=$(json_array "${is_wall[@]}")" \
        "import_volumes_samples_s=$(json_array "${iv_wall[@]}")" \
        "verify_volumes_peak_rss_kib=$rss" "rss_target_kib=$((64 * 1024))" \
        "import_volumes_peak_rss_kib=$irss" "import_rss_target_kib=$((128 * 1024))" \
        "loadavg_before=$load_before" "loadavg_after=$(loadavg)"

    ((keep)) || rm -rf "$layout" "$single" "$vdir" "$ibundle" "$idir"
}

# --- main ----------------------------------------------------------------------


# delta: the scenario of scripts/delta-scenario.py (Debian base layer where
# only libssl3/openssl move 3.0.20 -> 3.0.22, the ruff binary 0.17.4 ->
# 0.17.5, an unchanged config layer), one image per layer encoder: GNU gzip
# -6, Go compress/gzip level 1 and default, klauspost pgzip as umoci and as
# skopeo write it, zstd and zstd:chunked as skopeo writes them. For each:
# export v1 whole and import it at an embedded site, then export v2 with
# --base v1 and import that. Baselines in the same run: registry-pull (bytes
# of v2 blobs not in v1: what a registry mirror moves) and patch-from (`zstd
# -19 --long=27 --patch-from=v1.tar v2.tar` over the changed layers'
# uncompressed tars). Targets: every blob byte-exact; delta <= 0.2 x
# registry-pull and <= 1.0 x patch-from (stage bar 1.3); delta export >= 20
# MB/s of changed uncompressed layer, <= 256 MiB peak RSS. The scenario
# (about 35 MB of downloads) is cached in target/delta-scenario; --quick
# changes nothing here (one run each).
row_delta() {
    local scenario="$repo/target/delta-scenario"
    python3 "$repo/scripts/delta-scenario.py" "$scenario" >&2
    ensure_keys
    local patch_from=0 layer
    for layer in base app; do
        patch_from=$((patch_from + $(zstd -q -19 --long=27 \
            --patch-from="$scenario/tars/$layer-v1.tar" "$scenario/tars/$layer-v2.tar" -c \
            2>/dev/null | wc -c)))
    done
    # Changed uncompressed layer bytes: what delta export has to work through.
    local changed=0
    for layer in base app; do
        changed=$((changed + $(stat -c %s "$scenario/tars/$layer-v2.tar")))
    done
    local how
    for how in gnu-gzip-6 go-gzip-1 go-gzip-default pgzip-umoci pgzip-skopeo zstd-skopeo \
        zstd-chunked-skopeo; do
        local hub="$work/delta-$how" pull
        rm -rf "$hub"
        mkdir -p "$hub"
        pull="$(python3 "$repo/scripts/delta-scenario.py" --registry-pull "$scenario" "$how")"
        local export_v=("$tender" export --key "$work/bench.key" --state-dir "$hub/state"
            --no-progress)
        log "delta ($how): export v1 whole, import it"
        "${export_v[@]}" "$scenario/fleet-$how-v1/fleet.yaml" -o "$hub/v1.tender" >/dev/null
        printf '%s\n' "apiVersion: tender.dev/v1alpha1" "kind: Site" "name: plant-001" \
            "clusters: [line-a]" "trustPolicy: $work/policy.yaml" "stateDir: $hub/site" \
            >"$hub/site.yaml"
        "$tender" import "$hub/v1.tender" --site "$hub/site.yaml" --no-progress >/dev/null
        log "delta ($how): export v2 against v1"
        measure "${export_v[@]}" "$scenario/fleet-$how-v2/fleet.yaml" -o "$hub/v2.tender" \
            --base "$hub/v1.tender"
        local e_wall=$m_wall e_rss=$m_rss_kib size
        size="$(stat -c %s "$hub/v2.tender")"
        log "delta ($how): import v2"
        measure "$tender" import "$hub/v2.tender" --site "$hub/site.yaml" --no-progress
        local i_wall=$m_wall i_rss=$m_rss_kib exact
        # Every v2 blob in the site store, byte for byte as in the source layout.
        exact="$(python3 "$repo/scripts/delta-scenario.py" --check-store "$scenario" "$how" \
            "$hub/site/store")"
        local r_pull r_patch rate
        read -r r_pull r_patch rate < <(awk -v t="$size" -v p="$pull" -v f="$patch_from" \
            -v c="$changed" -v w="$e_wall" \
            'BEGIN { printf "%.3f %.3f %.1f\n", t / p, t / f, c / 1e6 / (w > 0 ? w : 1e-9) }')
        table_add delta "$how: bytes vs registry-pull" "$(human_bytes "$pull")" \
            "$(human_bytes "$size")" "$r_pull" "<= 0.2"
        table_add "" "$how: bytes vs patch-from" "$(human_bytes "$patch_from")" \
            "$(human_bytes "$size")" "$r_patch" "<= 1.0 (bar 1.3)"
        table_add "" "$how: export / import wall" "-" \
            "$(printf '%.1f s / %.1f s' "$e_wall" "$i_wall")" "$rate MB/s" ">= 20 MB/s"
        table_add "" "$how: peak RSS export / import" "-" \
            "$(kib_mib "$e_rss") / $(kib_mib "$i_rss")" "" "<= 256 MiB; byte-exact: $exact"
        json_row delta "compression=$(json_str "$how")" "registry_pull_bytes=$pull" \
            "patch_from_bytes=$patch_from" "delta_bytes=$size" \
            "ratio_registry_pull=$r_pull" "ratio_patch_from=$r_patch" \
            "export_s=$e_wall" "import_s=$i_wall" "export_mb_per_s=$rate" \
            "changed_plain_bytes=$changed" "export_peak_rss_kib=$e_rss" \
            "import_peak_rss_kib=$i_rss" "byte_exact=$(json_str "$exact")"
        if [[ $how == pgzip-skopeo ]]; then
            # The fast diff level, for the speed/bytes trade-off.
            log "delta ($how): export v2 against v1 at --delta-level 12"
            measure "${export_v[@]}" "$scenario/fleet-$how-v2/fleet.yaml" \
                -o "$hub/v2-fast.tender" --base "$hub/v1.tender" --delta-level 12
            local f_size f_rate f_patch
            f_size="$(stat -c %s "$hub/v2-fast.tender")"
            read -r f_patch f_rate < <(awk -v t="$f_size" -v f="$patch_from" -v c="$changed" \
                -v w="$m_wall" 'BEGIN { printf "%.3f %.1f\n", t / f, c / 1e6 / w }')
            table_add "" "$how --delta-level 12: bytes vs patch-from" \
                "$(human_bytes "$patch_from")" "$(human_bytes "$f_size")" "$f_patch" ""
            table_add "" "$how --delta-level 12: export wall, RSS" "-" \
                "$(printf '%.1f s, %s' "$m_wall" "$(kib_mib "$m_rss_kib")")" "$f_rate MB/s" \
                ">= 20 MB/s"
            json_row delta "compression=$(json_str "$how")" "delta_level=12" \
                "delta_bytes=$f_size" "ratio_patch_from=$f_patch" "export_s=$m_wall" \
                "export_mb_per_s=$f_rate" "export_peak_rss_kib=$m_rss_kib"
            # And with memory for both layers at once (both cores).
            measure "${export_v[@]}" "$scenario/fleet-$how-v2/fleet.yaml" \
                -o "$hub/v2-fast.tender" --base "$hub/v1.tender" --delta-level 12 \
                --delta-parallel-memory 1GiB
            f_rate="$(awk -v c="$changed" -v w="$m_wall" 'BEGIN { printf "%.1f\n", c / 1e6 / w }')"
            table_add "" "$how --delta-level 12, 1GiB parallel: export wall, RSS" "-" \
                "$(printf '%.1f s, %s' "$m_wall" "$(kib_mib "$m_rss_kib")")" "$f_rate MB/s" \
                ">= 20 MB/s"
            json_row delta "compression=$(json_str "$how")" "delta_level=12" \
                "parallel_memory_bytes=1073741824" "export_s=$m_wall" \
                "export_mb_per_s=$f_rate" "export_peak_rss_kib=$m_rss_kib"
        fi
    done
    notes+=("delta: per-blob choices: tender inspect $work/delta-<compression>/v2.tender (run with --keep)")
}

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
