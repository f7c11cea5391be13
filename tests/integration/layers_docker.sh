#!/bin/bash
# The layer and rootfs views against Debian's docker-registry, which has no push-time
# index: the mount builds each layer's index itself (one pass over the blob), stores it in
# its cache dir, and a second mount on the same cache dir browses without fetching the
# layers again. Same comparisons as layers_rootfs.sh (umoci unpack, tar -tvf).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/layers_lib.sh"
layers_need docker
need_bin "$DOCKER_REGISTRY"

OCI=$WORK/oci
MNT=$WORK/mnt
start_docker_registry "$WORK/data" || bail "docker-registry did not start"
layers_build_rich || bail "layer_image rich failed"
check "skopeo pushes the 4-layer image to docker-registry" skopeo_copy "oci:$OCI:rich" "docker://$REGISTRY_HOST/team/app:v1" ||
  bail "push failed"
check "umoci unpacks it (the reference)" umoci_rootfs rich "$WORK/ref" || bail "umoci unpack failed"
start_regfs_mount "$REGISTRY_URL" "$MNT" --cache-dir "$WORK/cache" || bail "mount failed"

check "rootfs equals umoci's rootfs" compare_trees "$WORK/ref/rootfs" "$MNT/team/app/_tags/v1/rootfs/"
for i in 0 1 2 3; do
  check "layers/$i lists what tar -tvf lists" compare_layer_listing "$(rich_blob $i)" \
    "$MNT/team/app/_tags/v1/layers/$i/"
done
big=${RICH_LAYER[1]}
big_size=$(stat -c %s "$(rich_blob 1)")
# The index of the big layer is somewhere in the cache dir, named by the layer's digest,
# and it is not the blob itself.
index_in_cache() {
  local f n=0
  while IFS= read -r f; do
    [ "$(stat -c %s "$f")" = "$big_size" ] && cmp -s "$f" "$(rich_blob 1)" && continue
    n=$((n + 1))
  done < <(find "$WORK/cache" -type f -path "*${big#sha256:}*")
  [ $n -gt 0 ] || { echo "no file other than the blob names ${big#sha256:} in the cache dir:"; find "$WORK/cache" -type f | head; return 1; }
}
check "the mount stored the layer's index in its cache dir" index_in_cache

unmount "$MNT"; stop_pid "$MOUNT_PID"
start_regfs_mount "$REGISTRY_URL" "$MNT" --cache-dir "$WORK/cache" || bail "second mount failed"
check_fetched "after a remount on the same cache dir, the rootfs is still umoci's" "$MNT" \
  compare_trees "$WORK/ref/rootfs" "$MNT/team/app/_tags/v1/rootfs/"
check "and browsing it fetched no layer again ($FETCHED bytes, under 1 MB)" test "$FETCHED" -lt 1000000
check_daemon_logs
done_testing
