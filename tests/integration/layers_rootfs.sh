#!/bin/bash
# The layer and rootfs views of the mount against independent unpackers: a 4-layer image
# (tools/layer_image.py: GNU and pax headers, long and UTF-8 names, hard links, symlinks,
# a device, a fifo, an xattr, a 50 MiB file, whiteouts, an opaque directory) pushed with
# skopeo to regfs-registry with push-time indexing on (so the mount fetches the indexes).
# The mount's _tags/<t>/rootfs must equal `umoci unpack`'s rootfs
# (diff -r --no-dereference plus type/mode/owner/link/device/xattr/mtime/hard links),
# each _tags/<t>/layers/N must list what `tar -tvf` lists for that blob.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/layers_lib.sh"
layers_need

OCI=$WORK/oci
MNT=$WORK/mnt
start_indexing_registry "$WORK/data" || bail "regfs-registry did not start"
layers_build_rich || bail "layer_image rich failed"
check "skopeo pushes the 4-layer image" skopeo_copy "oci:$OCI:rich" "docker://$REGISTRY_HOST/team/app:v1" ||
  bail "push failed"
check "and to a repository three levels deep" skopeo_copy "oci:$OCI:rich" "docker://$REGISTRY_HOST/a/b/deep:v1"
check "umoci unpacks it (the reference)" umoci_rootfs rich "$WORK/ref" || bail "umoci unpack failed"
check "regfs-registry serves the push-time index of every layer" \
  wait_layer_index "$REGISTRY_URL" team/app "${RICH_LAYER[@]}"
start_regfs_mount "$REGISTRY_URL" "$MNT" --cache-dir "$WORK/cache" || bail "mount failed"

check_eq "the root's .layers lists nothing" "" "$(ls -A "$MNT/.layers" 2>&1)"
check_eq "the root's .rootfs lists nothing" "" "$(ls -A "$MNT/.rootfs" 2>&1)"
m=$MNT/team/app/_manifests/$RICH_DIGEST
# team/app/_manifests/<d>/rootfs climbs 4 levels to the mount's root, layers/N one more
check_eq "rootfs is a relative link into .rootfs" "../../../../.rootfs/$RICH_DIGEST" "$(readlink "$m/rootfs")"
check_eq "layers/0 is a relative link into .layers" "../../../../../.layers/${RICH_LAYER[0]}" "$(readlink "$m/layers/0")"
check_eq "the deep repository's rootfs link climbs one level more" "../../../../../.rootfs/$RICH_DIGEST" \
  "$(readlink "$MNT/a/b/deep/_manifests/$RICH_DIGEST/rootfs")"
check_eq "the links resolve inside the mount" "$MNT/.rootfs/$RICH_DIGEST $MNT/.layers/${RICH_LAYER[3]}" \
  "$(readlink -f "$m/rootfs") $(readlink -f "$m/layers/3")"

check "rootfs equals umoci's rootfs" compare_trees "$WORK/ref/rootfs" "$MNT/team/app/_tags/v1/rootfs/"
check_eq "the 50 MiB file reads back whole (sha256)" "$(sha256sum <"$WORK/ref/rootfs/big/file.bin")" \
  "$(sha256sum <"$MNT/team/app/_tags/v1/rootfs/big/file.bin" 2>&1)"
check_eq "the deep repository's rootfs resolves to the same files" "$(cat "$WORK/ref/rootfs/etc/os-release")" \
  "$(cat "$MNT/a/b/deep/_tags/v1/rootfs/etc/os-release" 2>&1)"
for i in 0 1 2 3; do
  check "layers/$i lists what tar -tvf lists" compare_layer_listing "$(rich_blob $i)" \
    "$MNT/team/app/_tags/v1/layers/$i/"
done
# A single layer shows whiteouts as they are; the rootfs never does.
check "layers/1 shows its whiteout file" test -e "$MNT/team/app/_tags/v1/layers/1/var/.wh.to-delete.txt"
check "layers/2 shows the opaque marker" test -e "$MNT/team/app/_tags/v1/layers/2/opaque/.wh..wh..opq"
check_eq "no whiteout file in the rootfs" "" "$(find "$MNT/team/app/_tags/v1/rootfs/" -name '.wh.*' 2>&1)"
check_eq "views count no blocks: du of the rootfs" "0" "$(du -s --block-size=1 "$MNT/team/app/_tags/v1/rootfs/" | cut -f1)"
check "the mount still serves its storage view" test -s "$m/manifest.json"
check_daemon_logs
done_testing
