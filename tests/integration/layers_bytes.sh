#!/bin/bash
# Random access into a large gzip layer: with regfs-registry's push-time index, reading a
# 4 KiB file deep in a ~120 MB layer (~65 MB gzip) fetches under 5 MB (requests.bytes_fetched of
# .regfs/stats); against docker-registry (no index there) the mount fetches the whole
# blob once to build the index itself, and later files cost no more transfers.
# File contents are checked against the digests the generator computed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/layers_lib.sh"
layers_need
need_bin "$DOCKER_REGISTRY"
MB=${LAYERS_BYTES_MB:-120}
LIMIT=$((5 * 1000 * 1000))

OCI=$WORK/oci
layer_image big "$OCI" big --mb "$MB" >"$WORK/big.txt" || bail "layer_image big failed"
BLOB=$(awk '$1 == "layer" && $2 == 0 { print $3 }' "$WORK/big.txt")
BLOB_SIZE=$(awk '$1 == "layer" && $2 == 0 { print $4 }' "$WORK/big.txt")
mapfile -t SMALL < <(awk '$1 == "small" { print $2 " " $3 }' "$WORK/big.txt")
LAST=${SMALL[${#SMALL[@]} - 1]}   # near the end of the layer
FIRST=${SMALL[0]}
MID=${SMALL[$((${#SMALL[@]} / 2))]}
log "layer $BLOB: $BLOB_SIZE bytes; small files: ${#SMALL[@]}"

# read_small MNT "PATH SHA" — the file's bytes hash to SHA
read_small() {
  local f=$1/team/big/_tags/v1/rootfs/${2% *} got
  got=$(sha256sum <"$f" | cut -d' ' -f1) || return 1
  [ "$got" = "${2#* }" ] || { echo "$f hashes to $got, expected ${2#* }"; return 1; }
}
# --- with the push-time index (regfs-registry) -------------------------------------------
start_indexing_registry "$WORK/data-regfs" || bail "regfs-registry did not start"
check "skopeo pushes the ${MB} MB layer to regfs-registry" \
  skopeo_copy "oci:$OCI:big" "docker://$REGISTRY_HOST/team/big:v1" || bail "push failed"
check "regfs-registry builds and serves the layer's index" wait_layer_index "$REGISTRY_URL" team/big "$BLOB"
start_regfs_mount "$REGISTRY_URL" "$WORK/mnt-idx" --cache-dir "$WORK/cache-idx" || bail "mount failed"
check_fetched "with the index: the file at the end of the layer reads right" \
  "$WORK/mnt-idx" read_small "$WORK/mnt-idx" "$LAST"
first=$FETCHED
log "with the index: $first bytes fetched from a fresh mount for one 4 KiB file"
check "with the index: one 4 KiB file costs under 5 MB from a fresh mount ($first bytes)" test "$first" -lt $LIMIT
check_fetched "with the index: a second file in the middle reads right" \
  "$WORK/mnt-idx" read_small "$WORK/mnt-idx" "$MID"
check "with the index: and costs under 5 MB ($FETCHED bytes)" test "$FETCHED" -lt $LIMIT
unmount "$WORK/mnt-idx"

# --- without an index (docker-registry: the mount builds the index itself) ------------------
start_docker_registry "$WORK/data-docker" || bail "docker-registry did not start"
check "skopeo pushes the ${MB} MB layer to docker-registry" \
  skopeo_copy "oci:$OCI:big" "docker://$REGISTRY_HOST/team/big:v1" || bail "push failed"
start_regfs_mount "$REGISTRY_URL" "$WORK/mnt-noidx" --cache-dir "$WORK/cache-noidx" || bail "mount failed"
check_fetched "without an index: the file at the end of the layer reads right" \
  "$WORK/mnt-noidx" read_small "$WORK/mnt-noidx" "$LAST"
first=$FETCHED
log "without an index: $first bytes fetched for the first file (blob: $BLOB_SIZE)"
check "without an index: the whole blob is fetched ($first >= $BLOB_SIZE)" test "$first" -ge "$BLOB_SIZE"
check "without an index: and only once ($first < $BLOB_SIZE + 1 MB)" test "$first" -lt $((BLOB_SIZE + 1000000))
check_fetched "without an index: a file at the start reads right" \
  "$WORK/mnt-noidx" read_small "$WORK/mnt-noidx" "$FIRST"
# (names may be revalidated after the ttl: a tag list or manifest, a few KB; no layer bytes)
check "without an index: and fetches no layer bytes again ($FETCHED bytes)" test "$FETCHED" -lt 65536
check_fetched "without an index: a file in the middle reads right" \
  "$WORK/mnt-noidx" read_small "$WORK/mnt-noidx" "$MID"
check "without an index: nor does that one ($FETCHED bytes)" test "$FETCHED" -lt 65536
check_daemon_logs
done_testing
