#!/bin/bash
# A dangling index child does not break the mount. An index is pushed with skopeo copy
# --all (children by digest, untagged); then
#   docker-registry: `garbage-collect --delete-untagged` removes its children (what
#     registry:2 does in the field);
#   regfs-registry: the arm64 child's revision link is removed from the storage root.
# Afterwards, on a mount that was running before (once the ttl passed) and on a fresh one:
# du -s -B1 and df report the total of what is still reachable (computed here from the
# storage root: tag links, manifests, revision links, blob sizes), `ls -lR` succeeds with
# no unreadable entries and lists the same names twice in a row (across a ttl), the index
# is listed and the missing child is not (its platforms/ link dangles), and the log names
# the missing child exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_mount
need_bin skopeo jq python3 umoci

OCI=$WORK/oci
oci_build "$OCI" >/dev/null <<'EOF' || bail "oci_build"
layer l1 5000
image v1 l1
EOF
IDX=$(make_index "$WORK/idx" multi) || bail "make_index"
TTL=2

# visible_total DATA — du -B1 of what the registry still serves: blobs reachable from the
# tag links, following an index's child only where the repository still has the child's
# revision link and its blob; each blob once, rounded up to 512.
visible_total() {
  python3 - "$1" <<'PY'
import glob, json, os, sys
v2 = sys.argv[1] + "/docker/registry/v2"; rp = v2 + "/repositories/"
def blob(d): h = d.split(":", 1)[1]; return f"{v2}/blobs/sha256/{h[:2]}/{h}/data"
def rev(repo, d): return f"{rp}{repo}/_manifests/revisions/sha256/{d.split(':', 1)[1]}/link"
seen, todo = set(), []
for f in glob.glob(rp + "**/_manifests/tags/*/current/link", recursive=True):
    todo.append((f[len(rp):f.index("/_manifests/")], open(f).read().strip()))
while todo:
    repo, d = todo.pop()
    if d in seen: continue
    seen.add(d)
    m = json.load(open(blob(d)))
    if isinstance(m.get("config"), dict): seen.add(m["config"]["digest"])
    seen.update(l["digest"] for l in m.get("layers") or [])
    todo += [(repo, c["digest"]) for c in m.get("manifests") or []
             if os.path.exists(rev(repo, c["digest"])) and os.path.exists(blob(c["digest"]))]
print(sum((os.stat(blob(d)).st_size + 511) // 512 * 512 for d in seen))
PY
}
du_of() { du -s -B1 "$1" | cut -f1; }
df_of() { df -B1 --output=used "$1" | tail -n 1 | tr -d ' '; }

for k in $(registry_kinds); do
  D=$WORK/data-$k
  start_registry "$k" "$D" || bail "$k registry did not start"
  CFG=$REGISTRY_CONFIG H=$REGISTRY_HOST
  skopeo_copy "oci:$OCI:v1" "docker://$H/team/app:v1" &&
    skopeo_copy --all "$IDX" "docker://$H/multi:v1" || bail "push"
  skopeo_x inspect --raw "docker://$H/multi:v1" >"$WORK/index.json" || bail "inspect"
  INDEX=sha256:$(sha256sum <"$WORK/index.json" | cut -d' ' -f1)
  read -r AMD ARM < <(jq -r '[.manifests[].digest] | join(" ")' "$WORK/index.json")
  M1=$WORK/long-$k
  start_regfs_mount "$REGISTRY_URL" "$M1" --ttl $TTL --cache-dir "$WORK/cache-$k" || bail "regfs did not mount ($k)"
  LONG_PID=$MOUNT_PID
  all=$(visible_total "$D")
  check_eq "$k: before: du -s -B1 = what the storage root holds" "$all" "$(du_of "$M1")"
  check_eq "$k: before: df = the same" "$all" "$(df_of "$M1")"

  if [ "$k" = docker ]; then
    stop_pid "$REGISTRY_PID"
    out=$(env -u AWS_CA_BUNDLE "$DOCKER_REGISTRY" garbage-collect --delete-untagged "$CFG" 2>&1) ||
      { fail "docker: garbage-collect --delete-untagged"; diag "$(tail -n 5 <<<"$out")"; }
    GONE=$ARM
  else
    stop_pid "$REGISTRY_PID"
    rm -f "$D/docker/registry/v2/repositories/multi/_manifests/revisions/sha256/${ARM#sha256:}/link"
    GONE=$ARM
  fi
  start_registry "$k" "$CFG" || bail "$k registry did not restart"
  check_eq "$k: the registry no longer serves the child (test sanity)" "inspect-failed" \
    "$(raw_digest "$H" "multi@$GONE")"
  want=$(visible_total "$D")
  check "$k: something became unreachable (test sanity: $all -> $want)" test "$want" -lt "$all"

  sleep $((TTL + 1))   # the ttl of the long-running mount's names passes
  check_eq "$k: long-running mount: du -s -B1 drops what is gone" "$want" "$(du_of "$M1")"
  check_eq "$k: long-running mount: df reports the new total" "$want" "$(df_of "$M1")"
  unmount "$M1"; stop_pid "$LONG_PID"

  M2=$WORK/fresh-$k
  start_regfs_mount "$REGISTRY_URL" "$M2" --ttl $TTL --cache-dir "$WORK/cache2-$k" || bail "regfs did not mount ($k, fresh)"
  check_eq "$k: fresh mount: df reports the total" "$want" "$(df_of "$M2")"
  check_eq "$k: fresh mount: du -s -B1 = the same" "$want" "$(du_of "$M2")"
  ls -lR "$M2" >"$WORK/lsl-$k" 2>&1; rc=$?
  check_eq "$k: ls -lR succeeds" 0 "$rc" || diag "$(grep -v '^ *$' "$WORK/lsl-$k" | grep -iE 'cannot|\?' | head -n 5)"
  check_eq "$k: ls -lR shows no unreadable entry" "" "$(grep -E '^[-dl]\?|\?\?\?\?' "$WORK/lsl-$k")"
  ls -R "$M2" >"$WORK/ls1-$k" 2>&1
  sleep $((TTL + 1))
  ls -R "$M2" >"$WORK/ls2-$k" 2>&1
  check_files "$k: ls -R lists the same names again after the ttl" "$WORK/ls1-$k" "$WORK/ls2-$k"
  check_eq "$k: _manifests lists the index, not the missing child" "yes no" \
    "$(test -d "$M2/multi/_manifests/$INDEX" && echo yes || echo no) $(ls "$M2/multi/_manifests" | grep -qF "$GONE" && echo yes || echo no)"
  plat=$(cd "$M2/multi/_manifests/$INDEX/platforms" && for l in *; do [ "$(readlink "$l")" = "../../$GONE" ] && echo "$l"; done)
  check "$k: the index's platforms/ link to the missing child is there and dangles ($plat)" \
    test -n "$plat" -a -L "$M2/multi/_manifests/$INDEX/platforms/$plat" -a ! -e "$M2/multi/_manifests/$INDEX/platforms/$plat"
  check_eq "$k: the log names the missing child once" 1 "$(grep -F "$GONE" "$MOUNT_LOG" | grep -c 'no longer has')"
  unmount "$M2"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
done
check_daemon_logs
done_testing
