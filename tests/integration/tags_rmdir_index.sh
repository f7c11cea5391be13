#!/bin/bash
# rmdir of a manifest that an index of the repository still references is refused (EBUSY,
# and the log names the index); with --protect on the index's tag it is EPERM. The index
# stays complete: skopeo copy --all of it still works and the child is still there (skopeo
# inspect by digest). rmdir of the index itself still works. Against regfs-registry and
# Debian's docker-registry.
. "$(dirname "$0")/tags_lib.sh"
need_regfs_mount
need_bin skopeo jq umoci

make_index "$WORK/oci" multi >/dev/null || bail "make_index"
IDX=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "multi") | .digest' "$WORK/oci/index.json")
CH1=$(jq -r '.manifests[0].digest' "$WORK/oci/blobs/sha256/${IDX#sha256:}")
CH2=$(jq -r '.manifests[1].digest' "$WORK/oci/blobs/sha256/${IDX#sha256:}")
[ -n "$CH2" ] || bail "index children"
R=team/multi

run_kind() {
  local k=$1 H mnt M out before
  log "=== $k ==="
  tags_registry "$k" "$WORK/data-$k" || return
  check "$k: push the index as multi and as keep (skopeo copy --all)" \
    bash -c "$(declare -f skopeo_copy with_timeout); skopeo_copy --all oci:$WORK/oci:multi docker://$H/$R:multi &&
             skopeo_copy --all oci:$WORK/oci:multi docker://$H/$R:keep" || return
  before=$(registry_state "$H" "$R")

  mnt=$WORK/mnt-$k; M=$mnt/$R/_manifests
  tags_mount "$k" "$REGISTRY_URL" "$mnt" --ttl 1 --cache-dir "$WORK/cache-$k" || return
  out=$(rmdir "$M/$CH1" 2>&1)
  check "$k: rmdir _manifests/<amd64 child of the tagged index>: EBUSY" grep -q "Device or resource busy" <<<"$out"
  check "$k: ... the log names the index" grep -q "index $IDX .*references it" "$MOUNT_LOG"
  check_eq "$k: ... the child is still there (skopeo inspect by digest)" "$CH1" "$(raw_digest "$H" "$R@$CH1")"
  check_eq "$k: ... the tags did not change (curl)" "$before" "$(registry_state "$H" "$R")"
  check "$k: ... and skopeo copy --all of the index still works" skopeo_copy --all "docker://$H/$R:multi" "oci:$WORK/pull-$k:x"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  mnt=$WORK/mnt-p-$k; M=$mnt/$R/_manifests
  tags_mount "$k: --protect multi" "$REGISTRY_URL" "$mnt" --ttl 1 --cache-dir "$WORK/cache-p-$k" --protect multi || return
  check_eq "$k: --protect multi: rmdir of its child: EPERM" "Operation not permitted" "$(errno_of rmdir "$M/$CH2")"
  check_eq "$k: ... the child is still there" "$CH2" "$(raw_digest "$H" "$R@$CH2")"
  check_eq "$k: --protect multi: rmdir of the index itself: EPERM" "Operation not permitted" "$(errno_of rmdir "$M/$IDX")"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  mnt=$WORK/mnt-d-$k; M=$mnt/$R/_manifests
  tags_mount "$k" "$REGISTRY_URL" "$mnt" --ttl 1 --cache-dir "$WORK/cache-d-$k" || return
  check "$k: rmdir of the index itself works" rmdir "$M/$IDX"
  check_eq "$k: ... and its tags are gone (curl)" "" "$(registry_state "$H" "$R")"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
check_daemon_logs
done_testing
