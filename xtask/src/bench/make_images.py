# make_images OUT COUNT LAYERS LAYER_BYTES: an OCI layout of COUNT images
# (refs img0..img{COUNT-1}), each LAYERS uncompressed tar layers holding one
# file of LAYER_BYTES random bytes, and a config whose diff_ids match.
import hashlib, io, json, os, platform, sys, tarfile

out, count, layers, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def put(data):
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}


manifests = []
for i in range(count):
    descs = []
    for j in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(f"bench/img{i}-layer{j}.bin")
            info.size, info.mode, info.mtime = size, 0o644, 0
            tar.addfile(info, io.BytesIO(os.urandom(size)))
        descs.append(dict(put(buf.getvalue()), mediaType="application/vnd.oci.image.layer.v1.tar"))
    config = {"architecture": arch, "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
    cdesc = put(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(cdesc, mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": descs}
    mdesc = put(json.dumps(manifest).encode())
    manifests.append(dict(mdesc, mediaType="application/vnd.oci.image.manifest.v1+json",
                          annotations={"org.opencontainers.image.ref.name": f"img{i}"}))
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": manifests}, f)
