#!/usr/bin/env python3
"""mount_usage_push.py URL — pushes, over the registry's HTTP API, the registry the
storage accounting test (usage.sh) reads: base layers shared across
repositories, an image index of two platforms whose children share a base,
a manifest pushed by digest only (untagged), a tag re-pointed away from its
image, referrers (artifacts pushed by digest with a `subject`: one on a tag
the test keeps, one on that referrer, one on a tag it deletes), a blob no
manifest references and an abandoned upload. Layers are random bytes (their content is
never read); configs carry a "created" time, days ago as named, which
registry:2 reports as the tag's time. Prints the referrers' digests as JSON
{"kept": D, "chained": D, "dropped": D}; fails loudly."""
import hashlib, json, os, sys, time, urllib.request

URL = sys.argv[1]
OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"


def req(method, path, body=None, headers={}):
    r = urllib.request.Request(path if path.startswith("http") else URL + path, data=body,
                               method=method, headers=headers)
    return urllib.request.urlopen(r, timeout=30)


def put_blob(repo, b):
    d = "sha256:" + hashlib.sha256(b).hexdigest()
    loc = req("POST", f"/v2/{repo}/blobs/uploads/", b"").headers["Location"]
    if not loc.startswith("http"):
        loc = URL + loc
    req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, b,
        {"Content-Type": "application/octet-stream"}).read()
    return {"digest": d, "size": len(b)}


def put_manifest(repo, ref, m):
    b = json.dumps(m, separators=(",", ":")).encode()
    req("PUT", f"/v2/{repo}/manifests/{ref}", b, {"Content-Type": m["mediaType"]}).read()
    return {"mediaType": m["mediaType"], "digest": "sha256:" + hashlib.sha256(b).hexdigest(),
            "size": len(b)}


LAYERS = {n: os.urandom(s) for n, s in [("base", 6001), ("base2", 5003), ("a1", 3107),
                                        ("a2", 2999), ("l1", 2011), ("x1", 1789), ("u1", 1601),
                                        ("o1", 2203), ("o2", 2311), ("n1", 907)]}


def image(repo, ref, layers, days, arch="amd64"):
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days * 86400))
    cfg = json.dumps({"architecture": arch, "os": "linux", "created": created,
                      "config": {"Labels": {"test": f"{repo}:{ref}:{arch}"}},
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    m = {"schemaVersion": 2, "mediaType": OCI_M,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                    **put_blob(repo, cfg)},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     **put_blob(repo, LAYERS[n])} for n in layers]}
    return put_manifest(repo, ref, m) if ref else m


def by_digest(repo, m):
    b = json.dumps(m, separators=(",", ":")).encode()
    return put_manifest(repo, "sha256:" + hashlib.sha256(b).hexdigest(), m)


v1 = image("team/app", "v1", ["base", "a1"], 10)
v2 = image("team/app", "v2", ["base", "a2"], 3)
latest = image("team/app", "latest", ["base", "a2"], 3)  # distinct config: its own manifest
by_digest("team/app", image("team/app", None, ["base", "u1", "a1"], 1))  # untagged
image("team/lib", "1.0", ["base", "l1"], 40)
image("team/lib", "tmp", ["base", "x1"], 5)             # re-pointed below: untagged
image("team/lib", "tmp", ["base", "l1"], 40)
c1 = by_digest("other/multi", image("other/multi", None, ["base2", "o1"], 2))
c2 = by_digest("other/multi", image("other/multi", None, ["base2", "o2", "a2"], 2, "arm64"))
c1["platform"] = {"architecture": "amd64", "os": "linux"}
c2["platform"] = {"architecture": "arm64", "os": "linux"}
put_manifest("other/multi", "2024", {"schemaVersion": 2, "mediaType": OCI_I,
                                     "manifests": [c1, c2]})
image("solo", "only", ["n1", "base2"], 0)


def referrer(repo, subject, size):
    """An artifact (a signature, say) of subject, pushed by digest as
    oras attach does: the empty config, one layer of its own."""
    empty = put_blob(repo, b"{}")
    m = {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": "application/vnd.example.sig",
         "config": {"mediaType": "application/vnd.oci.empty.v1+json", **empty},
         "layers": [{"mediaType": "application/vnd.example.sig.v1", **put_blob(repo, os.urandom(size))}],
         "subject": {k: subject[k] for k in ("mediaType", "digest", "size")}}
    return by_digest(repo, m)


kept = referrer("team/app", latest, 1213)       # on a tag the test keeps
chained = referrer("team/app", kept, 1103)      # on that referrer
dropped = referrer("team/app", v1, 1009)        # on a tag the test deletes
print(json.dumps({"kept": kept["digest"], "chained": chained["digest"],
                  "dropped": dropped["digest"]}))
# a blob no manifest references (garbage to any collection)
put_blob("team/app", os.urandom(3001))
# an upload started and abandoned (some bytes sent, never committed)
loc = req("POST", "/v2/team/app/blobs/uploads/", b"").headers["Location"]
req("PATCH", loc if loc.startswith("http") else URL + loc, os.urandom(4096),
    {"Content-Type": "application/octet-stream"}).read()
