#!/usr/bin/env python3
"""Reproducible, offline-after-download scenario for delta bundles.

Release v1 -> v2 of one image, three layers:
  base    real Debian bookworm packages; only libssl3 and openssl move,
          3.0.20-1~deb12u2 -> 3.0.22-1~deb12u2
  app     the ruff binary from PyPI's manylinux wheels, 0.17.4 -> 0.17.5
  config  a small file that does not change
each layer compressed seven ways, as one image per compression: GNU gzip -6,
Go compress/gzip level 1 and default (scripts/gogzip), and the real tools of
the containers/image and umoci world: `umoci raw add-layer` (klauspost pgzip),
`skopeo copy --dest-compress` with gzip (pgzip), zstd and zstd:chunked
(klauspost zstd; zstd:chunked adds per-file frames, a table of contents in a
skippable frame and a footer).

    scripts/delta-scenario.py OUT
    scripts/delta-scenario.py --registry-pull OUT COMPRESSION   (bench helper)
    scripts/delta-scenario.py --check-store OUT COMPRESSION STORE   (bench helper)

writes (and reuses what is already there):
  OUT/downloads/                  the .deb files and wheels (pinned versions)
  OUT/tars/{base,app,config}-v{1,2}.tar   uncompressed, reproducible layer tars
  OUT/images/                     OCI layout: registry.scenario.example/
                                  scenario/<compression>:v1 and :v2
  OUT/fleet-<compression>-v{1,2}/ a fleet running that image
  OUT/scenario.json               layer digests and sizes per compression

Needs apt-get (Debian's archive), pip (PyPI), dpkg-deb, GNU tar, gzip, go
(scripts/gogzip), skopeo and umoci; scripts/install-deps.sh installs them.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "registry.scenario.example"
BASE_PACKAGES = [
    "libc6=2.36-9+deb12u14",
    "libgcc-s1=12.2.0-14+deb12u1",
    "zlib1g=1:1.2.13.dfsg-1",
    "libzstd1=1.5.4+dfsg2-5",
    "coreutils=9.1-1",
    "bash=5.2.15-2+b13",
]
OPENSSL = {1: "3.0.20-1~deb12u2", 2: "3.0.22-1~deb12u2"}
RUFF = {1: "0.17.4", 2: "0.17.5"}
# Compressed here layer by layer.
COMPRESSIONS = ["gnu-gzip-6", "go-gzip-1", "go-gzip-default"]
# Whole images written by a real tool from the uncompressed image.
TOOL_COMPRESSIONS = ["pgzip-umoci", "pgzip-skopeo", "zstd-skopeo", "zstd-chunked-skopeo"]
ALL_COMPRESSIONS = COMPRESSIONS + TOOL_COMPRESSIONS
MTIME = "@1700000000"


def log(msg):
    print(f"delta-scenario: {msg}", file=sys.stderr)


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def deb_name(spec):
    name, version = spec.split("=")
    return f"{name}_{version.replace(':', '%3a')}_amd64.deb"


def download(out):
    debs = out / "downloads"
    debs.mkdir(parents=True, exist_ok=True)
    specs = BASE_PACKAGES + [
        f"{p}={v}" for v in OPENSSL.values() for p in ("libssl3", "openssl")
    ]
    missing = [s for s in specs if not (debs / deb_name(s)).exists()]
    if missing:
        log(f"apt-get download {' '.join(missing)}")
        run(["apt-get", "download", "-q", *missing], cwd=debs)
    pip = os.environ.get("TENDER_VENV", str(REPO / ".venv")) + "/bin/pip"
    for version in RUFF.values():
        if not list(debs.glob(f"ruff-{version}-*.whl")):
            log(f"pip download ruff=={version}")
            run([pip, "download", "-q", "--no-deps", "--only-binary=:all:",
                 "--platform", "manylinux_2_17_x86_64", "--python-version", "3.11",
                 f"ruff=={version}", "-d", str(debs)])
    return debs


def reproducible_tar(src, dest):
    run(["tar", "--sort=name", f"--mtime={MTIME}", "--owner=0", "--group=0",
         "--numeric-owner", "--format=gnu", "-C", str(src), "-cf", str(dest), "."])


def make_tars(out, debs):
    tars = out / "tars"
    tars.mkdir(exist_ok=True)
    scratch = out / "scratch"
    for version in (1, 2):
        base = tars / f"base-v{version}.tar"
        if not base.exists():
            root = scratch / f"base-v{version}"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            for spec in BASE_PACKAGES + [f"{p}={OPENSSL[version]}" for p in ("libssl3", "openssl")]:
                run(["dpkg-deb", "-x", str(debs / deb_name(spec)), str(root)])
            reproducible_tar(root, base)
        app = tars / f"app-v{version}.tar"
        if not app.exists():
            root = scratch / f"app-v{version}"
            shutil.rmtree(root, ignore_errors=True)
            (root / "usr/local/bin").mkdir(parents=True)
            wheel = next(debs.glob(f"ruff-{RUFF[version]}-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                name = next(n for n in z.namelist() if n.endswith("/scripts/ruff"))
                (root / "usr/local/bin/ruff").write_bytes(z.read(name))
            os.chmod(root / "usr/local/bin/ruff", 0o755)
            reproducible_tar(root, app)
        config = tars / f"config-v{version}.tar"
        if not config.exists():
            root = scratch / "config"
            shutil.rmtree(root, ignore_errors=True)
            (root / "etc/app").mkdir(parents=True)
            (root / "etc/app/app.toml").write_text('line-length = 100\n[lint]\nselect = ["E", "F"]\n')
            reproducible_tar(root, config)
    shutil.rmtree(scratch, ignore_errors=True)
    return tars


def gogzip():
    out = REPO / "target/gogzip/gogzip"
    if not out.exists():
        env = dict(os.environ, GOCACHE=str(REPO / "target/gogzip/cache"),
                   GOPATH=str(REPO / "target/gogzip/gopath"), GOFLAGS="-mod=mod",
                   GOTOOLCHAIN="local")
        run(["go", "build", "-o", str(out), "."], cwd=REPO / "scripts/gogzip", env=env)
    return out


def compress(data_path, how):
    cmd = {
        "gnu-gzip-6": ["gzip", "-6", "-n", "-c"],
        "go-gzip-1": [str(gogzip()), "1"],
        "go-gzip-default": [str(gogzip())],
    }[how]
    with open(data_path, "rb") as f:
        return subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, check=True).stdout


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def trimmed(tar):
    """The tar without GNU tar's record padding: what Go's archive/tar (and
    so every containers/image or umoci build) writes, two zero blocks at the
    end. skopeo 1.9's zstd:chunked writer fails with "short write" on
    padded tars."""
    data = tar.read_bytes()
    end = len(data)
    while end >= 512 and data[end - 512:end] == bytes(512):
        end -= 512
    return data[:end + 1024]


def plain_layout(dir, tars, version):
    """An OCI layout holding the image with uncompressed layers (tag v)."""
    shutil.rmtree(dir, ignore_errors=True)
    (dir / "blobs/sha256").mkdir(parents=True)
    (dir / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data):
        digest = sha256(data)
        (dir / "blobs/sha256" / digest[7:]).write_bytes(data)
        return digest, len(data)

    layers = []
    for name in ("base", "app", "config"):
        digest, size = put(trimmed(tars / f"{name}-v{version}.tar"))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": digest, "size": size})
    config_digest, config_size = put(image_config(version, [l["digest"] for l in layers]))
    manifest_digest, manifest_size = put(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": layers,
    }, sort_keys=True).encode())
    (dir / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": "v"}}]}))


def image_config(version, diff_ids):
    return json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"release": f"v{version}"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()


def tool_image(out, tars, how, version):
    """Runs the real tool; returns the OCI layout directory it wrote."""
    work = out / "scratch" / f"{how}-v{version}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if how == "pgzip-umoci":
        run(["umoci", "init", "--layout", str(work / "out")])
        run(["umoci", "new", "--image", f"{work / 'out'}:v"])
        for name in ("base", "app", "config"):
            layer = work / f"{name}.tar"
            layer.write_bytes(trimmed(tars / f"{name}-v{version}.tar"))
            run(["umoci", "raw", "add-layer", "--image", f"{work / 'out'}:v",
                 "--history.created", "2023-11-14T22:13:20Z", "--history.created_by", name,
                 str(layer)], stderr=subprocess.DEVNULL)
        return work / "out"
    plain_layout(work / "in", tars, version)
    fmt = {"pgzip-skopeo": "gzip", "zstd-skopeo": "zstd",
           "zstd-chunked-skopeo": "zstd:chunked"}[how]
    run(["skopeo", "copy", "-q", "--dest-compress", "--dest-compress-format", fmt,
         f"oci:{work / 'in'}:v", f"oci:{work / 'out'}:v"])
    return work / "out"


def make_images(out, tars, summary):
    """Adds every compression missing from `summary` to OUT/images."""
    layout = out / "images"
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data):
        digest = sha256(data)
        path = blobs / digest.split(":")[1]
        if not path.exists():
            path.write_bytes(data)
        return digest, len(data)

    index_path = layout / "index.json"
    index = (json.loads(index_path.read_text()) if index_path.exists() and summary
             else {"schemaVersion": 2, "manifests": []})
    for how in TOOL_COMPRESSIONS:
        if how in summary:
            continue
        log(f"building the {how} images with the real tool")
        summary[how] = {}
        for version in (1, 2):
            made = tool_image(out, tars, how, version)
            made_index = json.loads((made / "index.json").read_text())
            entry = made_index["manifests"][0]
            manifest_bytes = (made / "blobs/sha256" / entry["digest"][7:]).read_bytes()
            manifest = json.loads(manifest_bytes)
            all_blobs = {entry["digest"]: entry["size"],
                         manifest["config"]["digest"]: manifest["config"]["size"],
                         **{l["digest"]: l["size"] for l in manifest["layers"]}}
            for digest in all_blobs:
                put((made / "blobs/sha256" / digest[7:]).read_bytes())
            reference = f"{HOST}/scenario/{how}:v{version}"
            index["manifests"].append({
                "mediaType": entry["mediaType"], "digest": entry["digest"],
                "size": entry["size"],
                "annotations": {"org.opencontainers.image.ref.name": reference},
            })
            sizes = {name: {"digest": l["digest"], "size": l["size"],
                            "tar": str(tars / f"{name}-v{version}.tar")}
                     for name, l in zip(("base", "app", "config"), manifest["layers"])}
            summary[how][f"v{version}"] = {"reference": reference, "layers": sizes,
                                           "blobs": all_blobs}
            write_fleet(out / f"fleet-{how}-v{version}", reference, out / "images")
    shutil.rmtree(out / "scratch", ignore_errors=True)
    for how in COMPRESSIONS:
        if how in summary:
            continue
        summary[how] = {}
        for version in (1, 2):
            layers, diff_ids, sizes = [], [], {}
            for name in ("base", "app", "config"):
                tar = tars / f"{name}-v{version}.tar"
                diff_ids.append(file_sha256(tar))
                digest, size = put(compress(tar, how))
                layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": digest, "size": size})
                sizes[name] = {"digest": digest, "size": size, "tar": str(tar),
                               "tar_size": tar.stat().st_size}
            config = image_config(version, diff_ids)
            config_digest, config_size = put(config)
            manifest = json.dumps({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config_digest, "size": config_size},
                "layers": layers,
            }, sort_keys=True).encode()
            manifest_digest, manifest_size = put(manifest)
            reference = f"{HOST}/scenario/{how}:v{version}"
            index["manifests"].append({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": reference},
            })
            summary[how][f"v{version}"] = {
                "reference": reference, "layers": sizes,
                "blobs": {manifest_digest: manifest_size, config_digest: config_size,
                          **{l["digest"]: l["size"] for l in layers}},
            }
            write_fleet(out / f"fleet-{how}-v{version}", reference, out / "images")
    (layout / "index.json").write_text(json.dumps(index, sort_keys=True))
    return summary


def write_fleet(dir, reference, images):
    (dir / "manifests").mkdir(parents=True, exist_ok=True)
    (dir / "manifests/app.yaml").write_text(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: line
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
        - name: app
          image: {reference}
""")
    (dir / "fleet.yaml").write_text(f"""apiVersion: tender.dev/v1alpha1
kind: Fleet
name: scenario
channel: stable
clusters:
  - name: line-a
    site: plant-001
    tier: production
sources:
  - name: app
    manifests: {{ path: manifests }}
mirrors:
  {HOST}: oci-layout:{images}
""")


def registry_pull(out, how):
    """Bytes of v2 blobs not in v1: what a registry mirror would move."""
    s = json.loads((out / "scenario.json").read_text())[how]
    return sum(n for d, n in s["v2"]["blobs"].items() if d not in s["v1"]["blobs"])


def check_store(out, how, store):
    """Whether every v2 blob is in the store byte for byte."""
    import filecmp
    s = json.loads((out / "scenario.json").read_text())[how]["v2"]["blobs"]
    return all(
        filecmp.cmp(out / "images/blobs/sha256" / d[7:], Path(store) / "blobs/sha256" / d[7:],
                    shallow=False)
        if (Path(store) / "blobs/sha256" / d[7:]).exists() else False
        for d in s)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--registry-pull":
        print(registry_pull(Path(sys.argv[2]), sys.argv[3]))
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--check-store":
        print("yes" if check_store(Path(sys.argv[2]), sys.argv[3], sys.argv[4]) else "NO")
        return
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    debs = download(out)
    tars = make_tars(out, debs)
    summary_path = out / "scenario.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if not summary:
        shutil.rmtree(out / "images", ignore_errors=True)
    if any(how not in summary for how in ALL_COMPRESSIONS):
        make_images(out, tars, summary)
        summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True))
    log(f"scenario ready in {out}")


if __name__ == "__main__":
    main()
