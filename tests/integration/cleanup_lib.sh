# tests/integration/cleanup_lib.sh — helpers shared by the cleanup and tag-write scripts (cleanup_*.sh,
# tags_*.sh, gc_online.sh). Source it after lib.sh. Not a test itself (not listed in
# meson.build).
#
# Why not make_image: umoci takes over a second per image here, and on this loaded machine
# every process spawn (jq, sha256sum, stat) costs a few hundred ms. The seed scenario needs
# 60+ distinct images and walks ~200 blobs, so the builders and the on-disk accounting below
# are each one python3 process (stdlib only: tarfile, gzip, hashlib, json).

# oci_build DIR < SPEC — write an OCI image layout at DIR (created or extended) from SPEC
# lines on stdin:
#   layer NAME BYTES        a gzip'd tar layer holding one file NAME of BYTES random bytes
#   image TAG LAYER…        an image (config with a unique label, so never two alike) over
#                           those layers, added to index.json as TAG
#   index TAG IMAGE…        an OCI image index over those images (platforms linux/amd64,
#                           linux/arm64, … in order), added to index.json as TAG
# Prints "TAG sha256:HEX" for every image (the manifest digest), and with OCI_BUILD_LAYERS=1
# also "layer:NAME sha256:HEX" for every layer.
oci_build() {
  local prog   # the program comes from a heredoc, so stdin stays the SPEC
  IFS= read -r -d '' prog <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
d = sys.argv[1]; os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    with open(f"{d}/blobs/sha256/{h}", "wb") as f: f.write(b)
    return "sha256:" + h, len(b)
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
ip = d + "/index.json"
index = json.load(open(ip)) if os.path.exists(ip) else {"schemaVersion": 2, "manifests": []}
layers, images = {}, {}
for line in sys.stdin:
    w = line.split()
    if not w: continue
    if w[0] == "layer":
        name, n = w[1], int(w[2])
        t = io.BytesIO()
        with tarfile.open(fileobj=t, mode="w", format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo(name); ti.size = n; ti.mtime = 0; ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(os.urandom(n)))
        raw = t.getvalue()
        dig, size = put(gzip.compress(raw, compresslevel=1, mtime=0))
        layers[name] = (dig, size, "sha256:" + hashlib.sha256(raw).hexdigest())
        if os.environ.get("OCI_BUILD_LAYERS"): print("layer:" + name, dig)
    elif w[0] == "image":
        tag, ls = w[1], [layers[x] for x in w[2:]]
        cfg = {"architecture": "amd64", "os": "linux",
               "config": {"Cmd": ["/bin/true"], "Labels": {"regfs.test": tag + "-" + os.urandom(8).hex()}},
               "rootfs": {"type": "layers", "diff_ids": [l[2] for l in ls]}}
        cd, cs = put(json.dumps(cfg, separators=(",", ":")).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l[0], "size": l[1]} for l in ls]}
        md, ms = put(json.dumps(man, separators=(",", ":")).encode())
        index["manifests"] = [m for m in index["manifests"]
                              if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
        index["manifests"].append({"mediaType": man["mediaType"], "digest": md, "size": ms,
                                   "annotations": {"org.opencontainers.image.ref.name": tag}})
        images[tag] = (man["mediaType"], md, ms)
        print(tag, md)
    elif w[0] == "index":
        archs = ["amd64", "arm64", "ppc64le", "s390x", "riscv64", "386"]
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [{"mediaType": images[x][0], "digest": images[x][1], "size": images[x][2],
                              "platform": {"architecture": archs[i], "os": "linux"}}
                             for i, x in enumerate(w[2:])]}
        xd, xs = put(json.dumps(idx, separators=(",", ":")).encode())
        index["manifests"] = [m for m in index["manifests"]
                              if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != w[1]]
        index["manifests"].append({"mediaType": idx["mediaType"], "digest": xd, "size": xs,
                                   "annotations": {"org.opencontainers.image.ref.name": w[1]}})
        print(w[1], xd)
    else:
        sys.exit("oci_build: bad spec line: " + line)
json.dump(index, open(ip, "w"))
PY
  python3 -c "$prog" "$1"
}

# tag_link DATA REPO TAG — the tag's link file in a registry:2 storage root.
tag_link() { echo "$1/docker/registry/v2/repositories/$2/_manifests/tags/$3/current/link"; }

# list_tags HOST REPO — the repository's tags, sorted, one per line (skopeo list-tags).
list_tags() { skopeo_x list-tags "docker://$1/$2" | jq -r '.Tags[]' | sort; }

# freed_by DATA "REPO TAG"-FILE — what deleting those tags makes unreferenced, from the
# storage root: the blobs (manifests, configs, layers, index children) that the listed
# tags reach and no other tag of any repository reaches. Prints "BYTES BLOBS" (exact
# stored sizes, not rounded).
freed_by() {
  python3 - "$1" "$2" <<'PY'
import glob, json, os, sys
data = sys.argv[1]; v2 = data + "/docker/registry/v2"; rp = v2 + "/repositories/"
doomed = {tuple(l.split()) for l in open(sys.argv[2]) if l.strip()}
def blob(d): h = d.split(":", 1)[1]; return f"{v2}/blobs/sha256/{h[:2]}/{h}/data"
def reach(roots):
    out, queue = set(), list(roots)
    while queue:
        d = queue.pop()
        if d in out: continue
        out.add(d)
        try: m = json.load(open(blob(d)))
        except Exception: continue
        if isinstance(m.get("config"), dict): out.add(m["config"]["digest"])
        out.update(l["digest"] for l in m.get("layers") or [])
        queue += [c["digest"] for c in m.get("manifests") or []]
    return out
gone, kept = [], []
for f in glob.glob(rp + "**/_manifests/tags/*/current/link", recursive=True):
    repo = f[len(rp):f.index("/_manifests/")]; tag = f.split("/")[-3]
    (gone if (repo, tag) in doomed else kept).append(open(f).read().strip())
freed = reach(gone) - reach(kept)
print(sum(os.stat(blob(d)).st_size for d in freed), len(freed))
PY
}

# du_total DATA DIGEST_FILE — sum over the listed blobs of their stored size rounded up to
# 512 (what du -B1 reports when each blob has st_blocks = ceil(size/512)). Sizes are the
# blob files' on disk. Fails when a listed blob is missing.
du_total() {
  python3 - "$1" "$2" <<'PY'
import os, sys
v2 = sys.argv[1] + "/docker/registry/v2"; s = 0
for dg in open(sys.argv[2]).read().split():
    h = dg.split(":", 1)[1]
    s += (os.stat(f"{v2}/blobs/sha256/{h[:2]}/{h}/data").st_size + 511) // 512 * 512
print(s)
PY
}

# tag_digests URL < "REPO TAG" lines — prints "REPO TAG DIGEST" (Docker-Content-Digest of a
# manifest HEAD; "-" when it fails), one python3 process for all of them.
tag_digests() {
  local prog
  IFS= read -r -d '' prog <<'PY'
import sys, urllib.request
acc = ", ".join(["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                 "application/vnd.docker.distribution.manifest.v2+json",
                 "application/vnd.docker.distribution.manifest.list.v2+json"])
for line in sys.stdin:
    w = line.split()
    if len(w) != 2: continue
    req = urllib.request.Request(f"{sys.argv[1]}/v2/{w[0]}/manifests/{w[1]}", method="HEAD", headers={"Accept": acc})
    try:
        with urllib.request.urlopen(req, timeout=30) as r: d = r.headers.get("Docker-Content-Digest") or "-"
    except Exception:
        d = "-"
    print(w[0], w[1], d)
PY
  python3 -c "$prog" "$1"
}

# store_blobs_ok DATA — every stored blob (blobs/sha256/xx/HEX/data) hashes to HEX; like
# lib.sh's verify_store_blobs in one process. Prints the count and any mismatch.
store_blobs_ok() {
  python3 - "$1" <<'PY'
import glob, hashlib, sys
bad = 0; n = 0
for p in glob.glob(sys.argv[1] + "/docker/registry/v2/blobs/sha256/*/*/data"):
    h = p.split("/")[-2]; n += 1
    with open(p, "rb") as f: got = hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else hashlib.sha256(f.read()).hexdigest()
    if got != h: print(f"stored blob {h} hashes to {got}"); bad += 1
print(f"{n} blobs checked")
sys.exit(1 if bad or n == 0 else 0)
PY
}

# raw_digest HOST REF — sha256 of the manifest bytes skopeo inspect --raw returns for REF
# (repo:tag or repo@digest); "inspect-failed" (exit 1) when skopeo fails.
raw_digest() {
  local f=$WORK/raw-$BASHPID.json
  skopeo_x inspect --raw "docker://$1/$2" >"$f" 2>"$f.err" || { echo inspect-failed; return 1; }
  echo "sha256:$(sha256sum <"$f" | cut -d' ' -f1)"
}

# errno_of CMD… — run CMD and print the strerror text it reported (for EPERM/EROFS checks):
# "Operation not permitted", "Read-only file system", … or "succeeded".
errno_of() {
  local out
  if out=$("$@" 2>&1); then echo succeeded; return; fi
  case $out in
    *"Operation not permitted"*) echo "Operation not permitted" ;;
    *"Read-only file system"*) echo "Read-only file system" ;;
    *"Permission denied"*) echo "Permission denied" ;;
    *"Input/output error"*) echo "Input/output error" ;;
    *"Operation not supported"*) echo "Operation not supported" ;;
    *"Function not implemented"*) echo "Function not implemented" ;;
    *) echo "other error: $(printf '%s' "$out" | head -c 300)" ;;
  esac
}

# check_daemon_logs — stop every mount and process this script started (as stop_all will),
# then check their logs for sanitizer reports. Leaks are reported only when a daemon exits,
# after the last check, so without this an ASan build's leak in regfs or regfs-registry
# would go unnoticed. Call it right before done_testing.
check_daemon_logs() {
  local i hits
  for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do unmount "${_MOUNTS[$i]}"; done
  for ((i = ${#_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${_PIDS[$i]}"; done
  hits=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$WORK"/*.log 2>/dev/null)
  check_eq "no sanitizer reports in the daemons' logs" "" "$hits" ||
    for i in $hits; do diag "$(grep -A 15 -E 'ERROR: |runtime error:' "$i" | head -n 30)"; done
}
