#!/usr/bin/env python3
"""mount_gen.py — write a registry:2 storage layout directly (no pushes), for
bench/mount.sh: REPOS repositories x TAGS tags, every tag its own image.

Each image: one base layer shared by every repository, one layer shared by
the tags of a repository, one layer of its own, a config of its own (with a
"created" time), and an OCI manifest. Blob contents are small (the benchmark
measures metadata operations: du, ls), deterministic from the names, so a
re-run produces the same digests.

Also prints the expected deduplicated total (sum of ceil(size/512)*512 over
unique blobs: manifests, configs, layers) — what `du -s -B1` of the mount and
the curl+jq baseline must both find.

usage: mount_gen.py ROOTDIR REPOS TAGS
"""
import hashlib
import json
import os
import sys


def main():
    root, nrepos, ntags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    v2 = os.path.join(root, "docker", "registry", "v2")
    seen = {}

    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        if h not in seen:
            d = os.path.join(v2, "blobs", "sha256", h[:2], h)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "data"), "wb") as f:
                f.write(data)
            seen[h] = len(data)
        return "sha256:" + h, len(data)

    def link(path, digest):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "link"), "w") as f:
            f.write(digest)

    def fill(seed, n):
        out = bytearray()
        i = 0
        while len(out) < n:
            out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
            i += 1
        return bytes(out[:n])

    base = blob(fill("base", 64 * 1024))
    gz = "application/vnd.oci.image.layer.v1.tar+gzip"
    for r in range(nrepos):
        name = f"team{r // 100:02d}/app{r:04d}"
        repo = os.path.join(v2, "repositories", name)
        shared = blob(fill(f"repo{r}", 8 * 1024))
        for t in range(ntags):
            own = blob(fill(f"repo{r}/tag{t}", 1024 + t))
            created = f"2026-11-{1 + t:02d}T{r % 24:02d}:00:00Z"
            # Unique per image (as real configs are: diff_ids differ), so a
            # registry:2 mount really fetches one config per tag for its mtime.
            cfg = blob(json.dumps({"created": created, "architecture": "amd64", "os": "linux",
                                   "config": {"Labels": {"bench.image": f"{name}:{t}"}},
                                   "rootfs": {"type": "layers", "diff_ids": []}},
                                  separators=(",", ":")).encode())
            layers = [base, shared, own]
            m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                            "digest": cfg[0], "size": cfg[1]},
                 "layers": [{"mediaType": gz, "digest": d, "size": s} for d, s in layers]}
            md, _ = blob(json.dumps(m, separators=(",", ":")).encode())
            for d, _ in layers + [cfg]:
                link(os.path.join(repo, "_layers", "sha256", d[7:]), d)
            link(os.path.join(repo, "_manifests", "revisions", "sha256", md[7:]), md)
            tag = f"sha-{t:03d}" if t else "latest"
            link(os.path.join(repo, "_manifests", "tags", tag, "current"), md)
            link(os.path.join(repo, "_manifests", "tags", tag, "index", "sha256", md[7:]), md)
    total = sum((s + 511) // 512 * 512 for s in seen.values())
    print(total)


if __name__ == "__main__":
    main()
