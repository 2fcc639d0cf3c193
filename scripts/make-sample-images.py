#!/usr/bin/env python3
"""Write the sample fleet's container images as a reproducible OCI image layout.

Usage: scripts/make-sample-images.py [OUT_DIR]   (default: testdata/fleet/images)

Python 3 standard library only. The output is byte-identical on every run:
tar entries are sorted with mtime 0, uid/gid 0 (root/root) and fixed modes;
gzip streams carry mtime 0, no file name and compresslevel 9; every JSON
document is serialised with sorted keys and no insignificant whitespace.
(The one outside dependency is zlib's deflate output at level 9, which has been
stable across zlib 1.2.x/1.3.x; a zlib-ng build would compress differently.)

Images written (index.json `org.opencontainers.image.ref.name` holds the FULL
reference, e.g. `registry.plant.example/plant/opcua-gateway:1.4.2`, which
skopeo/containers-image accept as `oci:DIR:FULL-REFERENCE`):

  registry.plant.example/plant/opcua-gateway:1.4.2   3 layers (base, app, config)
  registry.plant.example/plant/historian:2.1.0       2 layers (same base blob, app)
  registry.plant.example/plant/diag-tools:1.0.0      1 layer
  registry.plant.example/plant/opcua-gateway:sha256-<opcua manifest hex>.sig
      cosign-style signature artifact for opcua-gateway:1.4.2
"""

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

REGISTRY = "registry.plant.example"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_COSIGN = "application/vnd.dev.cosign.simplesigning.v1+json"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
ANN_COSIGN_SIG = "dev.cosignproject.cosign/signature"
EPOCH = "1970-01-01T00:00:00Z"


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class Layout:
    """Collects blobs (deduplicated by digest) and index entries."""

    def __init__(self):
        self.blobs = {}  # hex -> bytes
        self.entries = []  # index.json descriptors

    def add_blob(self, data, media_type, annotations=None):
        hexd = sha256_hex(data)
        self.blobs[hexd] = data
        desc = {"mediaType": media_type, "digest": "sha256:" + hexd, "size": len(data)}
        if annotations:
            desc["annotations"] = annotations
        return desc

    def tag(self, ref, manifest_desc, platform=None):
        entry = dict(manifest_desc)
        entry["annotations"] = {ANN_REF_NAME: ref}
        if platform:
            entry["platform"] = platform
        self.entries.append(entry)

    def write(self, out):
        if os.path.exists(out):
            # Only ever replace an earlier layout (or an empty dir), never a random path.
            if os.listdir(out) and not os.path.exists(os.path.join(out, "oci-layout")):
                raise SystemExit("refusing to overwrite %s: not an OCI layout" % out)
            shutil.rmtree(out)
        blob_dir = os.path.join(out, "blobs", "sha256")
        os.makedirs(blob_dir)
        for hexd in sorted(self.blobs):
            with open(os.path.join(blob_dir, hexd), "wb") as f:
                f.write(self.blobs[hexd])
        with open(os.path.join(out, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
        index = {
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": sorted(self.entries, key=lambda e: e["annotations"][ANN_REF_NAME]),
        }
        with open(os.path.join(out, "index.json"), "wb") as f:
            f.write(canonical_json(index))


def make_tar(files):
    """files: {path: (mode, bytes)} for regular files; parent dirs are implied.

    Returns the uncompressed tar bytes (sorted entries, all metadata fixed)."""
    dirs = set()
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = [(d, None) for d in dirs] + [(p, files[p]) for p in files]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, spec in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if spec is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                mode, data = spec
                info.type = tarfile.REGTYPE
                info.mode = mode
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of run-dependent bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def add_layer(layout, files):
    """Returns (layer descriptor, diff_id)."""
    raw = make_tar(files)
    desc = layout.add_blob(gzip_bytes(raw), MT_LAYER_GZIP)
    return desc, "sha256:" + sha256_hex(raw)


def add_image(layout, repo, tag, layers, config, created_by):
    """layers: list of file dicts. Tags `REGISTRY/repo:tag`; returns manifest descriptor."""
    layer_descs, diff_ids = [], []
    for files in layers:
        d, diff = add_layer(layout, files)
        layer_descs.append(d)
        diff_ids.append(diff)
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": EPOCH, "created_by": c} for c in created_by],
    }
    cfg_desc = layout.add_blob(canonical_json(cfg), MT_CONFIG)
    ref = "%s/%s:%s" % (REGISTRY, repo, tag)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": cfg_desc,
        "layers": layer_descs,
        "annotations": {
            "org.opencontainers.image.created": EPOCH,
            "org.opencontainers.image.title": repo.split("/")[-1],
            "org.opencontainers.image.version": tag,
        },
    }
    man_desc = layout.add_blob(canonical_json(manifest), MT_MANIFEST)
    layout.tag(ref, man_desc, platform={"architecture": "amd64", "os": "linux"})
    return man_desc


def add_cosign_signature(layout, repo, signed_desc):
    """Attach a cosign-style signature artifact to REGISTRY/repo@signed_desc.

    Mirrors what `cosign sign` pushes: a manifest tagged `sha256-<hex>.sig` in the
    same repository whose single layer is the simple-signing payload and whose
    layer annotation carries the base64 signature.

    NOTE: the signature is NOT cryptographically valid. It is base64 of a fixed
    marker plus the payload's sha256, so it is deterministic and obviously fake;
    tests must not expect it to verify against any key.
    """
    docker_ref = "%s/%s" % (REGISTRY, repo)
    payload = canonical_json({
        "critical": {
            "identity": {"docker-reference": docker_ref},
            "image": {"docker-manifest-digest": signed_desc["digest"]},
            "type": "cosign container image signature",
        },
        "optional": None,
    })
    fake_sig = base64.b64encode(
        b"tender-sample-UNVERIFIABLE-signature:" + hashlib.sha256(payload).digest()
    ).decode()
    layer_desc = layout.add_blob(payload, MT_COSIGN, annotations={ANN_COSIGN_SIG: fake_sig})
    # cosign's config: the payload layer is uncompressed, so its diff_id == its digest.
    cfg = {
        "architecture": "",
        "os": "",
        "created": EPOCH,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created": EPOCH}],
    }
    cfg_desc = layout.add_blob(canonical_json(cfg), MT_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": cfg_desc,
        "layers": [layer_desc],
    }
    man_desc = layout.add_blob(canonical_json(manifest), MT_MANIFEST)
    sig_tag = signed_desc["digest"].replace("sha256:", "sha256-") + ".sig"
    layout.tag("%s:%s" % (docker_ref, sig_tag), man_desc)
    return man_desc


# ---------------------------------------------------------------------------
# Image contents

BASE_LAYER = {
    "etc/os-release": (0o644, b'NAME="Plant Base"\nID=plantbase\nVERSION_ID="1.0"\n'
                              b'PRETTY_NAME="Plant Base Linux 1.0 (sample)"\n'),
    "etc/passwd": (0o644, b"root:x:0:0:root:/root:/bin/sh\n"
                          b"app:x:10001:10001:app:/home/app:/sbin/nologin\n"),
    "etc/group": (0o644, b"root:x:0:\napp:x:10001:\n"),
    "etc/hostname": (0o644, b"plant\n"),
    "usr/share/plant/VERSION": (0o644, b"base 1.0\n"),
}

OPCUA_APP_LAYER = {
    "opt/opcua-gateway/bin/opcua-gateway": (0o755, (
        b"#!/bin/sh\n"
        b"# Sample OPC UA gateway: polls the PLC endpoint and serves the line HMI.\n"
        b'echo "opcua-gateway 1.4.2 endpoint=${OPCUA_ENDPOINT:-unset}"\n'
        b"exec sleep infinity\n")),
    "opt/opcua-gateway/bin/wait-for-plc": (0o755, (
        b"#!/bin/sh\n"
        b'echo "waiting for ${OPCUA_ENDPOINT:-unset}"\n')),
    "opt/opcua-gateway/bin/plc-backup": (0o755, (
        b"#!/bin/sh\n"
        b'echo "backing up PLC programs from ${OPCUA_ENDPOINT:-unset}"\n')),
}

OPCUA_CONFIG_LAYER = {
    "etc/opcua-gateway/gateway.conf": (0o644, (
        b"[gateway]\nlisten = 0.0.0.0:8080\nsecurity_policy = Basic256Sha256\n"
        b"poll_interval_ms = 500\n")),
}

HISTORIAN_APP_LAYER = {
    "opt/historian/bin/historian": (0o755, (
        b"#!/bin/sh\n"
        b"# Sample process historian: stores line time series.\n"
        b'echo "historian 2.1.0 retention=${RETENTION_DAYS:-30}d"\n'
        b"exec sleep infinity\n")),
    "etc/historian/historian.conf": (0o644, b"[storage]\npath = /var/lib/historian\n"),
}

DIAG_LAYER = {
    "usr/local/bin/plant-diag": (0o755, (
        b"#!/bin/sh\n"
        b"# Sample diagnostics toolbox used by site engineers.\n"
        b'echo "plant-diag 1.0.0"\n')),
    "etc/os-release": (0o644, b'NAME="Plant Diag"\nID=plantdiag\nVERSION_ID="1.0.0"\n'),
}


def build(out):
    layout = Layout()
    opcua = add_image(
        layout, "plant/opcua-gateway", "1.4.2",
        [BASE_LAYER, OPCUA_APP_LAYER, OPCUA_CONFIG_LAYER],
        {
            "User": "10001",
            "Env": ["PATH=/opt/opcua-gateway/bin:/usr/bin:/bin"],
            "Entrypoint": ["/opt/opcua-gateway/bin/opcua-gateway"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "opcua-gateway"},
        },
        ["plant-base 1.0", "COPY opcua-gateway /opt/opcua-gateway", "COPY gateway.conf /etc/opcua-gateway"],
    )
    add_image(
        layout, "plant/historian", "2.1.0",
        [BASE_LAYER, HISTORIAN_APP_LAYER],
        {
            "User": "10001",
            "Env": ["PATH=/opt/historian/bin:/usr/bin:/bin"],
            "Entrypoint": ["/opt/historian/bin/historian"],
            "ExposedPorts": {"8086/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "historian"},
        },
        ["plant-base 1.0", "COPY historian /opt/historian"],
    )
    add_image(
        layout, "plant/diag-tools", "1.0.0",
        [DIAG_LAYER],
        {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "Cmd": ["/usr/local/bin/plant-diag"],
            "Labels": {"org.opencontainers.image.title": "diag-tools"},
        },
        ["COPY plant-diag /usr/local/bin"],
    )
    add_cosign_signature(layout, "plant/opcua-gateway", opcua)
    layout.write(out)
    return layout


def main(argv):
    if len(argv) > 2:
        sys.stderr.write(__doc__)
        return 2
    if len(argv) == 2:
        out = argv[1]
    else:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "fleet", "images")
    layout = build(os.path.normpath(out))
    for e in sorted(layout.entries, key=lambda e: e["annotations"][ANN_REF_NAME]):
        print("%s  %s" % (e["digest"], e["annotations"][ANN_REF_NAME]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
