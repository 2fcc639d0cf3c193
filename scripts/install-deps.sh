#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian bookworm machine.
# Idempotent: whatever is already present is skipped, so a second run is a
# quick no-op. scripts/test.sh runs it first.
#
#   Debian packages  docker-registry (distribution 2.8: real OCI registry for
#                    tests), skopeo, git, zstd, time (/usr/bin/time -v), mtools,
#                    dosfstools, openssl, curl, kubectl, golang-go (builds
#                    scripts/gogzip: layers compressed as Go-built images are),
#                    golang-github-klauspost-pgzip-dev and
#                    golang-github-klauspost-compress-dev (Go sources that
#                    scripts/pgzip builds against: the exact encoder of
#                    containers/image and umoci layers),
#                    containerd (a private instance pulls through the mirror
#                    configuration import writes; the package's own service
#                    is kept from starting, like docker-registry's), umoci
#                    (writes klauspost pgzip layers, as real umoci builds do),
#                    chromium (headless: renders the hub's fleet page in
#                    tests/integration/fleet_page.rs, as an offline PC's
#                    browser would)
#   Python venv      $TENDER_VENV (default <repo>/.venv) with helm-python-sdk,
#                    the engine behind the scripts/helm shim, PyYAML, which
#                    reads rendered output as another YAML parser would, and
#                    prometheus-client, whose exposition-format parser reads
#                    the metrics textfile a site writes
#   Rust components  rustfmt and clippy, for the lint steps of scripts/test.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TENDER_VENV:-$repo/.venv}"
helm_sdk_version="0.2.2"
pyyaml_version="6.0.3"
prometheus_client_version="0.26.0"
export DEBIAN_FRONTEND=noninteractive

log() { echo "install-deps: $*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

apt_updated=0
apt_install() {
    if [[ $apt_updated -eq 0 ]]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    # The docker-registry package would start its own daemon on :5000; tests
    # start their own instances, so keep package scripts from starting any
    # service while installing (policy-rc.d exit 101 = "action forbidden").
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        own_policy=1
    fi
    local status=0
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    if [[ $own_policy -eq 1 ]]; then as_root rm -f "$policy"; fi
    return $status
}

# --- Debian packages -----------------------------------------------------------
packages=(docker-registry skopeo git zstd time mtools dosfstools openssl curl kubectl golang-go
    golang-github-klauspost-pgzip-dev golang-github-klauspost-compress-dev containerd umoci
    chromium)
missing=()
for pkg in "${packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
fi
if is_installed docker-registry && [[ -d /run/systemd/system ]] \
    && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
    # Tests never use the packaged service; keep it from holding :5000.
    log "disabling the packaged docker-registry service"
    as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# --- Python venv with the Helm engine --------------------------------------------
venv_ok() {
    [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c \
        "import helm_python, yaml, prometheus_client, sys; from importlib.metadata import version as v; sys.exit(helm_python.__version__ != '$helm_sdk_version' or v('PyYAML') != '$pyyaml_version' or v('prometheus-client') != '$prometheus_client_version')" \
        >/dev/null 2>&1
}
if ! venv_ok; then
    python=python3
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        is_installed python3-venv || apt_install python3 python3-venv
        python=/usr/bin/python3
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating venv at $venv"
        "$python" -m venv "$venv"
    fi
    log "pip install helm-python-sdk==$helm_sdk_version PyYAML==$pyyaml_version prometheus-client==$prometheus_client_version"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "helm-python-sdk==$helm_sdk_version" "PyYAML==$pyyaml_version" \
        "prometheus-client==$prometheus_client_version"
    venv_ok || { log "helm-python-sdk, PyYAML or prometheus-client does not import from $venv"; exit 1; }
fi

# --- Rust components -------------------------------------------------------------
cargo fmt --version >/dev/null 2>&1 || { log "rustup component add rustfmt"; rustup component add rustfmt; }
cargo clippy --version >/dev/null 2>&1 || { log "rustup component add clippy"; rustup component add clippy; }
