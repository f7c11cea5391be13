#!/bin/bash
# regfs-cleanup's byte estimate is exact, on docker-registry and regfs-registry, with an
# image index (children pushed by digest, skopeo copy --all) and layers shared inside and
# across repositories: the bytes and blobs it predicts equal what deleting those tags leaves
# unreferenced (computed here from the storage root), and its du figure equals what
# `du -s -B1` of the mount drops after --apply and `garbage-collect --delete-untagged`
# (the blobs that collection removed from disk are exactly the predicted ones).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_mount
need_bin skopeo jq python3 umoci

CLEANUP=$REGFS_SRC/tools/regfs-cleanup
OCI=$WORK/oci
oci_build "$OCI" >/dev/null <<'EOF' || bail "oci_build"
layer base 6000
layer a1 3000
layer a2 3100
layer o1 2900
layer l1 2000
image v1 base a1
image v2 base a2
image old1 base a1 o1
image keep1 base l1
EOF
IDX=$(make_index "$WORK/idx" multi) || bail "make_index"

# expected DATA DOOMED_FILE — "BYTES BLOBS DU_BYTES" that deleting the listed "REPO TAG"s
# leaves unreferenced, from the storage root (tag links, manifests, blob files); the
# digests go to $WORK/expected.blobs.
expected() {
  python3 - "$1" "$2" "$WORK/expected.blobs" <<'PY'
import glob, json, os, sys
v2 = sys.argv[1] + "/docker/registry/v2"; rp = v2 + "/repositories/"
doomed = {tuple(l.split()) for l in open(sys.argv[2]) if l.strip()}
def blob(d): h = d.split(":", 1)[1]; return f"{v2}/blobs/sha256/{h[:2]}/{h}/data"
def reach(roots):
    out, todo = set(), list(roots)
    while todo:
        d = todo.pop()
        if d in out: continue
        out.add(d)
        m = json.load(open(blob(d))) if d.startswith("sha256:") and os.path.exists(blob(d)) else {}
        if not isinstance(m, dict): continue
        if isinstance(m.get("config"), dict): out.add(m["config"]["digest"])
        out.update(l["digest"] for l in m.get("layers") or [])
        todo += [c["digest"] for c in m.get("manifests") or []]
    return out
gone, kept = [], []
for f in glob.glob(rp + "**/_manifests/tags/*/current/link", recursive=True):
    repo = f[len(rp):f.index("/_manifests/")]; tag = f.split("/")[-3]
    (gone if (repo, tag) in doomed else kept).append(open(f).read().strip())
freed = reach(gone) - reach(kept)
sizes = [os.stat(blob(d)).st_size for d in freed]
open(sys.argv[3], "w").write("".join(d + "\n" for d in sorted(freed)))
print(sum(sizes), len(freed), sum((s + 511) // 512 * 512 for s in sizes))
PY
}
du_of() { du -s -B1 "$1" | cut -f1; }

for k in $(registry_kinds); do
  D=$WORK/data-$k
  start_registry "$k" "$D" || bail "$k registry did not start"
  CFG=$REGISTRY_CONFIG H=$REGISTRY_HOST
  for t in v1 v2 old1; do skopeo_copy "oci:$OCI:$t" "docker://$H/team/app:$t" || bail "push $t"; done
  skopeo_copy "oci:$OCI:v2" "docker://$H/team/app:latest" &&
    skopeo_copy "oci:$OCI:keep1" "docker://$H/team/lib:keep1" &&
    skopeo_copy --all "$IDX" "docker://$H/multi:old" || bail "push"
  printf '%s\n' "multi old" "team/app old1" "team/app v1" >"$WORK/doomed"
  read -r want_bytes want_blobs want_du < <(expected "$D" "$WORK/doomed")
  log "$k: deleting multi:old team/app:old1 team/app:v1 must free $want_bytes bytes in $want_blobs blobs (du: $want_du)"
  check "$k: the index's children and the unshared layers are among them (test sanity)" test "$want_blobs" -ge 10

  M=$WORK/mnt-$k
  start_regfs_mount "$REGISTRY_URL" "$M" --ttl 1 --cache-dir "$WORK/cache-$k" || bail "regfs did not mount ($k)"
  stored_blobs "$D" >"$WORK/$k.stored0"
  before=$(du_of "$M")
  check_eq "$k: du -s -B1 of the mount = every stored blob rounded up to 512" \
    "$(du_total "$D" "$WORK/$k.stored0")" "$before"
  out=$("$CLEANUP" --keep-last 0 --keep 'v2,latest,keep*' "$M" 2>&1); rc=$?
  check_eq "$k: dry run succeeds" 0 "$rc" || diag "$out"
  check_eq "$k: it would delete exactly the three tags" "multi:old team/app:old1 team/app:v1" \
    "$(sed -n 's/^would delete \([^ ]*\) .*/\1/p' <<<"$out" | sort | xargs)"
  got_bytes=$(sed -n 's/.*; \([0-9]*\) bytes (.*/\1/p' <<<"$out")
  got_blobs=$(sed -n 's/.* bytes ([^,]*, \([0-9]*\) blobs).*/\1/p' <<<"$out")
  got_du=$(sed -n 's/.*drops by \([0-9]*\) .*/\1/p' <<<"$out")
  check_eq "$k: predicted bytes and blobs = computed from the storage root" \
    "$want_bytes $want_blobs" "$got_bytes $got_blobs" || diag "$out"
  check_eq "$k: predicted du drop = those blobs rounded up to 512" "$want_du" "$got_du"

  out=$("$CLEANUP" --keep-last 0 --keep 'v2,latest,keep*' --apply "$M" 2>&1); rc=$?
  check_eq "$k: --apply succeeds" 0 "$rc" || diag "$out"
  check_eq "$k: the registry keeps exactly the other tags" "latest v2|keep1|" \
    "$(list_tags "$H" team/app | xargs)|$(list_tags "$H" team/lib | xargs)|$(list_tags "$H" multi 2>/dev/null | xargs)"
  unmount "$M"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
  if [ "$k" = docker ]; then
    gc=("$DOCKER_REGISTRY" garbage-collect --delete-untagged "$CFG")
  else
    gc=("$REGFS_REGISTRY" garbage-collect --delete-untagged "$CFG")
  fi
  gcout=$(env -u AWS_CA_BUNDLE "${gc[@]}" 2>&1) || { fail "$k: garbage-collect --delete-untagged"; diag "$(tail -n 5 <<<"$gcout")"; }
  stored_blobs "$D" >"$WORK/$k.stored1"
  check_files "$k: the collection removed exactly the predicted blobs" "$WORK/expected.blobs" \
    <(comm -23 "$WORK/$k.stored0" "$WORK/$k.stored1")
  start_registry "$k" "$CFG" || bail "$k registry did not restart"
  start_regfs_mount "$REGISTRY_URL" "$M-2" --ttl 1 --cache-dir "$WORK/cache-$k-2" || bail "regfs did not remount ($k)"
  after=$(du_of "$M-2")
  check_eq "$k: du -s -B1 dropped by the predicted figure ($before -> $after)" "$got_du" "$((before - after))"
  unmount "$M-2"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
done
check_daemon_logs
done_testing
