#!/bin/bash
# zstd layers browse the same as gzip: the 4-layer image copied with
# `skopeo copy --dest-compress-format zstd` to regfs-registry; its rootfs must equal
# `umoci unpack` of the gzip original, each layers/N must list what `tar -tvf` (GNU tar
# with zstd) lists for the zstd blob the registry serves.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/layers_lib.sh"
layers_need
need_bin zstd jq

OCI=$WORK/oci
MNT=$WORK/mnt
layers_build_rich "${LAYERS_ZSTD_BIG_MB:-16}" || bail "layer_image rich failed"
check "umoci unpacks the gzip original (the reference)" umoci_rootfs rich "$WORK/ref" || bail "umoci unpack failed"
start_indexing_registry "$WORK/data" || bail "regfs-registry did not start"
check "skopeo copies it as zstd" skopeo_copy --dest-compress-format zstd "oci:$OCI:rich" \
  "docker://$REGISTRY_HOST/team/zst:v1" || bail "push failed"
raw=$(skopeo_x inspect --raw "docker://$REGISTRY_HOST/team/zst:v1")
dg=$(printf '%s' "$raw" | sha256sum | sed 's/^/sha256:/; s/ .*//')
check_eq "every layer of the pushed manifest is zstd" "zstd zstd zstd zstd" \
  "$(printf '%s' "$raw" | jq -r '[.layers[].mediaType | sub(".*\\+"; "")] | join(" ")')"
# shellcheck disable=SC2046
check "regfs-registry serves the push-time index of every zstd layer" \
  wait_layer_index "$REGISTRY_URL" team/zst $(printf '%s' "$raw" | jq -r '.layers[].digest')
start_regfs_mount "$REGISTRY_URL" "$MNT" --cache-dir "$WORK/cache" || bail "mount failed"

check "the zstd rootfs equals umoci's rootfs of the gzip image" compare_trees "$WORK/ref/rootfs" \
  "$MNT/team/zst/_tags/v1/rootfs/"
i=0
for l in $(printf '%s' "$raw" | jq -r '.layers[].digest'); do
  curl -s -o "$WORK/blob$i" "$REGISTRY_URL/v2/team/zst/blobs/$l"
  check "zstd layers/$i lists what tar -tvf lists" compare_layer_listing "$WORK/blob$i" "$MNT/team/zst/_tags/v1/layers/$i/"
  i=$((i + 1))
done
check_eq "the manifest directory is the pushed digest's" "$dg" "$(basename "$(readlink "$MNT/team/zst/_tags/v1")")"
check_daemon_logs
done_testing
