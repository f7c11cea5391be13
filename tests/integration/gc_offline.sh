#!/bin/bash
# `regfs-registry garbage-collect` after deleting tags frees exactly the
# unreferenced blobs — the expected set is computed here from the manifests on disk —
# and `--dry-run` deletes nothing; `--delete-untagged` also frees what only untagged
# manifests reference, keeping the children of tagged indexes. Every image still
# referenced pulls byte-identical afterwards.
# GC_KIND=docker self-tests the script against docker-registry's garbage-collect.
. "$(dirname "$0")/lib.sh"

kind=${GC_KIND:-regfs}
if [ "$kind" = regfs ]; then need_regfs_registry; GCBIN=$REGFS_REGISTRY; else GCBIN=$DOCKER_REGISTRY; fi
gc() { if [ "$kind" = docker ]; then env -u AWS_CA_BUNDLE "$GCBIN" garbage-collect "$@"; else "$GCBIN" garbage-collect "$@"; fi; }

for t in img1 img2 img3 img4 img5; do make_image "$WORK/oci" "$t" 2 64K 16K >/dev/null || bail "make_image $t"; done
make_index "$WORK/oci" idx >/dev/null || bail "make_index"
DATA=$WORK/data; V2=$DATA/docker/registry/v2

# pull_same [--all] REF NEWDIR OLDDIR — pull REF from $h to NEWDIR, byte-identical to OLDDIR.
pull_same() {
  local o=(); [ "$1" = --all ] && { o=(--all); shift; }
  skopeo_copy "${o[@]}" "docker://$h/$1" "dir:$2" && diff -r "$3" "$2"
}
snapshot() { (cd "$DATA" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# --- fill the registry, then delete some tags --------------------------------------------
start_registry "$kind" "$DATA" || bail "$kind did not start"
h=$REGISTRY_HOST; CONFIG=$REGISTRY_CONFIG
check "push a:keep (img1)" skopeo_copy "oci:$WORK/oci:img1" "docker://$h/a:keep"
check "push a:keep2 (img1)" skopeo_copy "oci:$WORK/oci:img1" "docker://$h/a:keep2"
check "push a:gone (img2)" skopeo_copy "oci:$WORK/oci:img2" "docker://$h/a:gone"
check "push b:shared (img1, shares blobs with a:keep)" skopeo_copy "oci:$WORK/oci:img1" "docker://$h/b:shared"
check "push b:gone2 (img3)" skopeo_copy "oci:$WORK/oci:img3" "docker://$h/b:gone2"
check "push c:m (2-platform index)" skopeo_copy --all "oci:$WORK/oci:idx" "docker://$h/c:m"
check "push d:over (img4)" skopeo_copy "oci:$WORK/oci:img4" "docker://$h/d:over"
img4=$(skopeo_x inspect --raw "docker://$h/d:over" | sha256sum | cut -d' ' -f1)
check "push d:over again (img5; img4 now untagged)" skopeo_copy "oci:$WORK/oci:img5" "docker://$h/d:over"
check "delete a:gone" skopeo_x delete "docker://$h/a:gone"
check "delete b:gone2" skopeo_x delete "docker://$h/b:gone2"
for r in a:keep b:shared d:over; do skopeo_copy "docker://$h/$r" "dir:$WORK/before-${r/:/_}" || fail "baseline pull $r"; done
skopeo_copy --all "docker://$h/c:m" "dir:$WORK/before-c_m" || fail "baseline pull c:m"
skopeo_copy "docker://$h/d@sha256:$img4" "dir:$WORK/before-img4" || fail "baseline pull of untagged img4"
stop_pid "$REGISTRY_PID"

stored_blobs "$DATA" >"$WORK/blobs.before"
reachable "$DATA" all >"$WORK/expected.kept"
comm -23 "$WORK/blobs.before" "$WORK/expected.kept" >"$WORK/expected.freed"
log "$(wc -l <"$WORK/blobs.before") blobs stored, $(wc -l <"$WORK/expected.kept") referenced, $(wc -l <"$WORK/expected.freed") to free"
check "the scenario leaves blobs to free (test sanity)" test -s "$WORK/expected.freed"
check_eq "everything referenced is stored (test sanity)" "" "$(comm -13 "$WORK/blobs.before" "$WORK/expected.kept")"

# --- dry run ----------------------------------------------------------------------------------
snapshot >"$WORK/files.before"
check "garbage-collect --dry-run succeeds" gc --dry-run "$CONFIG"
snapshot >"$WORK/files.dry"
check_files "--dry-run deletes (and changes) nothing" "$WORK/files.before" "$WORK/files.dry"

# --- the real thing ----------------------------------------------------------------------------
out=$(gc "$CONFIG" 2>&1); rc=$?
check_eq "garbage-collect succeeds" 0 "$rc" || diag "$(printf '%s\n' "$out" | tail -n 20)"
stored_blobs "$DATA" >"$WORK/blobs.after"
check_files "garbage-collect keeps exactly the referenced blobs" "$WORK/expected.kept" "$WORK/blobs.after"
comm -23 "$WORK/blobs.before" "$WORK/blobs.after" >"$WORK/freed"
check_files "garbage-collect frees exactly the unreferenced blobs" "$WORK/expected.freed" "$WORK/freed"
if [ "$kind" = regfs ]; then
  n=$(wc -l <"$WORK/expected.freed")
  check "its report gives the count ($n)" grep -qw -- "$n" <<<"$out"
fi
check "kept blobs match their digests" verify_store_blobs "$DATA"
check "no empty blob directories left behind" bash -c '[ -z "$(find "$1/blobs" -mindepth 3 -type d -empty)" ]' _ "$V2"

start_registry "$kind" "$DATA" || bail "$kind did not restart"
h=$REGISTRY_HOST
for r in a:keep b:shared d:over; do
  check "$r pulls byte-identical after GC" pull_same "$r" "$WORK/after-${r/:/_}" "$WORK/before-${r/:/_}"
done
check "c:m (index) pulls byte-identical after GC" pull_same --all c:m "$WORK/after-c_m" "$WORK/before-c_m"
check "untagged img4 still pulls by digest (no --delete-untagged)" pull_same "d@sha256:$img4" "$WORK/after-img4" "$WORK/before-img4"
stop_pid "$REGISTRY_PID"

# --- --delete-untagged ----------------------------------------------------------------------------
reachable "$DATA" tagged >"$WORK/expected.kept2"
stored_blobs "$DATA" >"$WORK/blobs.before2"
comm -23 "$WORK/blobs.before2" "$WORK/expected.kept2" >"$WORK/expected.freed2"
check "img4's manifest is among what --delete-untagged must free (test sanity)" grep -qx "sha256:$img4" "$WORK/expected.freed2"
snapshot >"$WORK/files.before2"
check "garbage-collect --dry-run --delete-untagged succeeds" gc --dry-run --delete-untagged "$CONFIG"
snapshot >"$WORK/files.dry2"
check_files "--dry-run --delete-untagged changes nothing" "$WORK/files.before2" "$WORK/files.dry2"
check "garbage-collect --delete-untagged succeeds" gc --delete-untagged "$CONFIG"
stored_blobs "$DATA" >"$WORK/blobs.after2"
start_registry "$kind" "$DATA" || bail "$kind did not restart"
h=$REGISTRY_HOST
if [ "$kind" = docker ]; then
  # registry:2 2.8 treats the children of a tagged index as untagged and deletes them.
  log "docker-registry: not checked (known registry:2 bug): --delete-untagged keeps index children"
else
  check_files "--delete-untagged keeps exactly what tags reach (index children included)" "$WORK/expected.kept2" "$WORK/blobs.after2"
  check "c:m (index) still pulls byte-identical" pull_same --all c:m "$WORK/after2-c_m" "$WORK/before-c_m"
fi
check "d:over still pulls byte-identical" pull_same d:over "$WORK/after2-d" "$WORK/before-d_over"
check_fails "untagged img4 is gone" skopeo_x inspect --raw "docker://$h/d@sha256:$img4"
done_testing
