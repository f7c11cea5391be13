#!/bin/bash
# Tag times a cleanup policy can trust.
#  docker-registry (no Last-Modified): a tag's mtime is its image's `created`, and the xattr
#    user.regfs.mtime-source (read through the tag symlink, and on _tags/) says "created";
#    a reproducible build's 1970-01-01T00:00:01Z or a future date is "unknown", never
#    ancient (find -mtime +7 does not pick it); .regfs/status says the registry gives build
#    times; regfs-cleanup --older-than refuses (naming the tags) unless
#    --trust-created-time, and then deletes only the tags with a plausible old build time
#    (checked with skopeo list-tags).
#  regfs-registry (Last-Modified = push time): source "pushed", mtime = the tag link file's
#    mtime in the storage root (backdated here), and regfs-cleanup needs no flag.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_mount
need_regfs_registry
need_bin skopeo jq python3

CLEANUP=$REGFS_SRC/tools/regfs-cleanup
OCI=$WORK/oci

# img_created DIR < "TAG CREATED" lines — one small image per line in the OCI layout DIR
# whose config's `created` is CREATED ("-": no created field). Prints "TAG DIGEST".
img_created() {
  local prog
  IFS= read -r -d '' prog <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
d = sys.argv[1]; os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
index = {"schemaVersion": 2, "manifests": []}
for line in sys.stdin:
    tag, created = line.split()
    t = io.BytesIO()
    with tarfile.open(fileobj=t, mode="w") as tf:
        data = os.urandom(300); ti = tarfile.TarInfo("f-" + tag); ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    raw = t.getvalue()
    layer = dict(put(gzip.compress(raw, mtime=0)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
           "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    if created != "-": cfg["created"] = created
    c = dict(put(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": c, "layers": [layer]}
    m = put(json.dumps(man).encode())
    index["manifests"].append(dict(m, mediaType=man["mediaType"],
                                   annotations={"org.opencontainers.image.ref.name": tag}))
    print(tag, m["digest"])
json.dump(index, open(d + "/index.json", "w"))
PY
  python3 -c "$prog" "$1"
}
img_created "$OCI" >/dev/null <<'EOF' || bail "could not build the images"
repro 1970-01-01T00:00:01Z
old 2020-06-01T12:00:00Z
future 2099-01-01T00:00:00Z
none -
EOF
OLD_T=$(date -u -d 2020-06-01T12:00:00Z +%s)

# src PATH — the xattr user.regfs.mtime-source of PATH (following a symlink), or the error
src() { python3 -c 'import os,sys
try: print(os.getxattr(sys.argv[1], "user.regfs.mtime-source").decode())
except OSError as e: print("error:", e.strerror)' "$1"; }
tags_of() { list_tags "$REGISTRY_HOST" "$1" | xargs; }

# --- docker-registry: build times only ------------------------------------------------------
start_docker_registry "$WORK/d-data" || bail "docker-registry did not start"
for t in repro old future none; do
  skopeo_copy "oci:$OCI:$t" "docker://$REGISTRY_HOST/team/app:$t" || bail "push $t"
done
skopeo_copy "oci:$OCI:old" "docker://$REGISTRY_HOST/other/svc:retagged" || bail "push retagged"
T0=$(date +%s)
M=$WORK/mnt-d
start_regfs_mount "$REGISTRY_URL" "$M" --ttl 1 || bail "regfs did not mount docker-registry"

check_eq "docker: an image created 2020-06-01 gives its tag that mtime" "$OLD_T" "$(stat -c %Y "$M/team/app/_tags/old")"
check_eq "docker: ... and the tag says its time is the image's build time" created "$(src "$M/team/app/_tags/old")"
check_eq "docker: a re-tagged old image: the new tag shows the build time too, and says so" \
  "$OLD_T created" "$(stat -c %Y "$M/other/svc/_tags/retagged") $(src "$M/other/svc/_tags/retagged")"
for t in repro future none; do
  mt=$(stat -c %Y "$M/team/app/_tags/$t")
  check "docker: $t: an implausible or missing build time is not used (mount start $T0 <= mtime $mt <= tomorrow)" \
    test "$mt" -ge "$T0" -a "$mt" -le $(( $(date +%s) + 86400 ))
  check_eq "docker: $t: its time source is unknown" unknown "$(src "$M/team/app/_tags/$t")"
done
check_eq "docker: _tags/ gives the least trustworthy source of its tags" unknown "$(src "$M/team/app/_tags")"
check_eq "docker: find -mtime +7 picks only the tags with a plausible old build time" \
  "other/svc:retagged team/app:old" \
  "$(cd "$M" && find . -path '*/_tags/*' -mtime +7 | sed 's|^\./||; s|/_tags/|:|' | sort | xargs)"
check "docker: .regfs/status says the registry gives build times, not push times" \
  grep -q '^tag times: created' "$M/.regfs/status"

out=$("$CLEANUP" --older-than 7 "$M" 2>&1); rc=$?
check_eq "docker: regfs-cleanup --older-than 7 refuses (exit 2) on build times" 2 "$rc"
check "docker: ... naming the tags with only a build time" \
  grep -q 'team/app:old' <<<"$out"
check "docker: ... and how to go on" grep -q -- '--trust-created-time' <<<"$out"
out=$("$CLEANUP" --keep-last 1 "$M" 2>&1); rc=$?
check_eq "docker: --keep-last 1 (ranks by time) refuses too" 2 "$rc"
check_eq "docker: nothing was deleted (skopeo list-tags)" "future none old repro|retagged" \
  "$(tags_of team/app)|$(tags_of other/svc)"
out=$("$CLEANUP" --older-than 7 --trust-created-time --apply "$M" 2>&1); rc=$?
check_eq "docker: --trust-created-time --apply succeeds" 0 "$rc" || diag "$out"
check_eq "docker: it deleted the tags with an old build time, kept those of unknown time" \
  "future none repro|" "$(tags_of team/app)|$(tags_of other/svc)"
unmount "$M"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"

# --- regfs-registry: push times ----------------------------------------------------------------
start_regfs_registry "$WORK/r-data" || bail "regfs-registry did not start"
CFG=$REGISTRY_CONFIG
for t in repro old; do
  skopeo_copy "oci:$OCI:$t" "docker://$REGISTRY_HOST/team/app:$t" || bail "push $t"
done
stop_pid "$REGISTRY_PID"
AGO=$(( $(date +%s) - 10 * 86400 ))
touch -m -d "@$AGO" "$(tag_link "$WORK/r-data" team/app repro)" || bail "backdate"
start_regfs_registry "$CFG" || bail "regfs-registry did not restart"
M=$WORK/mnt-r
start_regfs_mount "$REGISTRY_URL" "$M" --ttl 1 || bail "regfs did not mount regfs-registry"
check_eq "regfs: a tag pushed 10 days ago (link file mtime) has that mtime, whatever its build time" \
  "$AGO" "$(stat -c %Y "$M/team/app/_tags/repro")"
check_eq "regfs: the other tag's mtime is its link file's" \
  "$(stat -c %Y "$(tag_link "$WORK/r-data" team/app old)")" "$(stat -c %Y "$M/team/app/_tags/old")"
check_eq "regfs: both say their time is the push time" "pushed pushed pushed" \
  "$(src "$M/team/app/_tags/repro") $(src "$M/team/app/_tags/old") $(src "$M/team/app/_tags")"
check "regfs: .regfs/status says the registry gives push times" grep -q '^tag times: pushed' "$M/.regfs/status"
out=$("$CLEANUP" --older-than 7 "$M" 2>&1); rc=$?
check_eq "regfs: regfs-cleanup --older-than 7 needs no flag on push times" 0 "$rc" || diag "$out"
check_eq "regfs: ... and would delete the tag pushed 10 days ago only" "team/app:repro" \
  "$(sed -n 's/^would delete \([^ ]*\) .*/\1/p' <<<"$out" | xargs)"
check_daemon_logs
done_testing
