#!/bin/bash
# mount_memory.sh — the mount within a small --memory: the manifest cache drops
# what no request uses past its budget (a sixteenth of --memory) and gets it back
# from the disk cache, and the walk's accounting keeps only its compact table.
#
#   - --memory 16M (1 MiB of manifests) over 1,500 manifests: .regfs/stats shows
#     manifests dropped from memory (written to the disk cache as they left, read
#     back from there, the cache within its budget), yet du -s -B1 and df equal the generator's
#     independently computed total, .regfs/usage's total bytes equal the sum of
#     the registry's stored blob files, no manifest was fetched one by one (those
#     dropped came back from the disk cache), and every manifest.json read through
#     the mount hashes to its digest;
#   - the same registry with the default --memory: the same .regfs/usage.
# The registry's storage is written directly by bench/mount_gen.py (150 x 10).
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_regfs_mount
need_bin python3 jq sha256sum

python3 "$(dirname "$0")/../../bench/mount_gen.py" "$WORK/data" 150 10 >"$WORK/expected" ||
  bail "mount_gen.py failed"
EXPECTED=$(cat "$WORK/expected")
V2=$WORK/data/docker/registry/v2
N_MANIFESTS=$(find "$V2/repositories" -path '*/_manifests/revisions/sha256/*/link' | wc -l)
BLOB_BYTES=$(find "$V2/blobs" -name data -printf '%s\n' | awk '{ s += $1 } END { print s }')
start_regfs_registry "$WORK/data" || bail "regfs-registry does not start"

stats() { jq -r "$1" "$2/.regfs/stats"; }

# --- a small budget ------------------------------------------------------------------
mnt=$WORK/mnt-small
start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-small" --ttl 300 \
  --memory 16M || bail "mount failed"
check_eq "--memory 16M: du -s -B1 of the root = generator's total" "$EXPECTED" \
  "$(du -s -B1 "$mnt" | cut -f1)"
check_eq "  df used = generator's total" "$EXPECTED" \
  "$(df -B1 --output=used "$mnt" | tail -n1 | tr -d ' ')"
jq .manifest_cache "$mnt/.regfs/stats" >"$WORK/mc.json" || fail "  .regfs/stats has manifest_cache"
mc() { jq -r ".$1" "$WORK/mc.json"; }
check "  manifests were dropped from memory ($(mc dropped)) and written to the disk cache as they left ($(mc written_to_disk))" \
  test "$(mc dropped)" -gt 0 -a "$(mc written_to_disk)" -gt 0
check_eq "  manifest cache budget = a sixteenth of --memory" $((16 * 1024 * 1024 / 16)) "$(mc budget)"
check "  manifest cache within its budget, once du is done ($(mc bytes) bytes, $(mc entries) entries)" \
  test "$(mc bytes)" -le "$(mc budget)" -a "$(mc entries)" -gt 0
check "  dropped manifests were read back from the disk cache ($(mc read_from_disk))" \
  test "$(mc read_from_disk)" -gt 0
jq -S 'del(.now)' "$mnt/.regfs/usage" >"$WORK/usage-small.json" || fail "  .regfs/usage is JSON"
check_eq "  .regfs/usage: total bytes = the registry's blob files" "$BLOB_BYTES" \
  "$(jq .total.bytes "$WORK/usage-small.json")"
check_eq "  .regfs/usage: total du_bytes = generator's total" "$EXPECTED" \
  "$(jq .total.du_bytes "$WORK/usage-small.json")"
bad=0; n=0
for f in "$mnt"/*/*/_manifests/sha256:*/manifest.json; do
  d=$(basename "$(dirname "$f")"); n=$((n + 1))
  [ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" = "$d" ] || { echo "$f hashes wrong"; bad=1; }
done
check_eq "  every manifest.json ($N_MANIFESTS) read back hashes to its digest" "$N_MANIFESTS 0" "$n $bad"
check_eq "  no manifest fetched one by one (dropped ones came from the disk cache)" 0 \
  "$(stats .requests.manifest "$mnt")"
unmount "$mnt"

# --- the default budget: the same figures ------------------------------------------------
mnt=$WORK/mnt-default
start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-default" --ttl 300 ||
  bail "mount failed"
check_eq "default --memory: du -s -B1 = generator's total" "$EXPECTED" "$(du -s -B1 "$mnt" | cut -f1)"
jq -S 'del(.now)' "$mnt/.regfs/usage" >"$WORK/usage-default.json"
check "  .regfs/usage equals the one with --memory 16M" \
  cmp -s "$WORK/usage-small.json" "$WORK/usage-default.json"
unmount "$mnt"

done_testing
