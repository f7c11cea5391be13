#!/bin/bash
# bench/layers_read.sh [DIR] — bytes transferred and time to the first byte of a
# small file deep in one gzip layer (made with umoci from DIR, default
# /usr/lib/python3), through the mount's layer view:
#   (c) regfs-registry with its push-time index, cold mount (fresh cache dir)
#   (d) warm (same mount, another small file)
#   (b) no index (regfs.layerindex off, the default): the mount builds it from the blob
# Figures from .regfs/stats (layer_views.bytes_fetched). Loopback only.
. "$(dirname "$0")/../tests/integration/lib.sh"
need_regfs_mount
need_regfs_registry
need_bin skopeo umoci jq
src=${1:-/usr/lib/python3}

oci=$WORK/oci
umoci init --layout "$oci" >&2 && umoci new --image "$oci:v1" >&2 &&
  umoci config --image "$oci:v1" --os linux --architecture amd64 >&2 || bail "umoci"
mkdir -p "$WORK/root/zz"   # an empty dir last: umoci does not pad its last file
cp -a "$src" "$WORK/root/data"
umoci insert --image "$oci:v1" "$WORK/root" /layer >&2 || bail "insert"
# a small file deep in the tree, near the end of the tar
f=$(cd "$WORK/root" && find data -type f -size -8k -size +1k | sort | tail -n 1)
log "file: $f ($(stat -c %s "$WORK/root/$f") bytes)"

run() { # run NAME EXTRA_YAML
  local name=$1 extra=$2
  start_regfs_registry "$WORK/data-$name" "$extra" || bail "registry"
  local t0=$(date +%s.%N)
  skopeo_copy "oci:$oci:v1" "docker://$REGISTRY_HOST/app:v1" || bail "push"
  local t1=$(date +%s.%N)
  local man=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REGISTRY_URL/v2/app/manifests/v1")
  local d=$(jq -r '.layers[0].digest' <<<"$man") size=$(jq -r '.layers[0].size' <<<"$man")
  if [ "$name" = index ]; then
    wait_for 60 curl -sf -o /dev/null "$REGISTRY_URL/v2/app/_regfs/layerindex/$d" || log "no index after 60 s"
    log "index size: $(curl -s "$REGISTRY_URL/v2/app/_regfs/layerindex/$d" | wc -c) bytes for a $size-byte layer"
  fi
  start_regfs_mount "$REGISTRY_URL" "$WORK/mnt-$name" --cache-dir "$WORK/cache-$name" || bail "mount"
  local m=$WORK/mnt-$name/app/_tags/v1/rootfs/layer
  local a=$(date +%s.%N)
  cmp "$m/$f" "$WORK/root/$f" || fail "$name: content"
  local b=$(date +%s.%N)
  local bytes=$(jq .layer_views.bytes_fetched "$WORK/mnt-$name/.regfs/stats")
  local g=$(cd "$WORK/root" && find data -type f -size -8k -size +1k | sort | head -n 1)
  local c=$(date +%s.%N)
  cmp "$m/$g" "$WORK/root/$g" || fail "$name: content 2"
  local e=$(date +%s.%N)
  local bytes2=$(jq .layer_views.bytes_fetched "$WORK/mnt-$name/.regfs/stats")
  printf '%-8s push %.2fs  first read %.3fs, %s bytes  | second file %.3fs, +%s bytes | layer %s bytes\n' \
    "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$b - $a" | bc)" "$bytes" "$(echo "$e - $c" | bc)" \
    "$((bytes2 - bytes))" "$size"
  jq -c .layer_views "$WORK/mnt-$name/.regfs/stats"
  unmount "$WORK/mnt-$name"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
}
run index "$(printf 'regfs:\n  layerindex:\n    enabled: true\n')"
run noindex ""
ok "bench ran"
done_testing
