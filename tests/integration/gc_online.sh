#!/bin/bash
# Online GC in `regfs-registry serve` (regfs.gc: enabled, interval 1s,
# delay 2s, deleteuntagged) running during 20 concurrent skopeo pushes: afterwards every
# pushed image pulls byte-identical (skopeo copy to dir:, every blob hashes to its digest,
# and the copy equals a dir: copy of the source layout).
#
# The dangerous case is set up on purpose: the 20 images share layers with an image that
# was pushed more than `delay` ago and deleted just before the pushes start, so those
# blobs are garbage, old enough to sweep, and exactly what skopeo finds present (HEAD 200)
# and does not upload again. The registry must keep them (or fail the manifest PUT cleanly;
# such a push is retried once, as a client would). Also checked from the storage root: no
# manifest revision references a missing blob, every stored blob hashes to its name, and the
# deleted image's own blobs really were swept (so GC was running, not idle).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_registry
need_bin skopeo jq python3

N=20
OCI=$WORK/oci
# old: base + mid + its own layer. p00..p19: base + mid + (a layer shared by pairs) + own.
spec="layer base 40000"$'\n'"layer mid 20000"$'\n'"layer oldown 8000"$'\n'"image old base mid oldown"$'\n'
for ((i = 0; i < N; i++)); do
  n=$(printf 'p%02d' $i)
  [ $((i % 2)) -eq 0 ] && spec+="layer pair$i 6000"$'\n'
  spec+="layer own$i $((2000 + RANDOM % 6000))"$'\n'"image $n base mid pair$((i - i % 2)) own$i"$'\n'
done
declare -A DIGEST NAME_OF
while read -r t d; do DIGEST[$t]=$d; NAME_OF[$d]=$t; done < <(OCI_BUILD_LAYERS=1 oci_build "$OCI" <<<"$spec")
[ ${#DIGEST[@]} -eq $((N + 1 + N + N / 2 + 3)) ] || bail "oci_build made ${#DIGEST[@]} images and layers"

REGISTRY_LOG_LEVEL=debug start_regfs_registry "$WORK/data" "regfs:
  gc:
    enabled: true
    interval: 1s
    delay: 2s
    deleteuntagged: true" || bail "regfs-registry did not start"
H=$REGISTRY_HOST; DATA=$REGISTRY_DATA
gc_runs() { grep -c 'online gc' "$REGISTRY_LOG"; }
check "online gc runs (a log line per run at debug level)" wait_for 10 bash -c "[ \$(grep -c 'online gc' '$REGISTRY_LOG') -ge 2 ]"

# --- the garbage: an image pushed, aged past delay, deleted right before the pushes -----------
check "push old" skopeo_copy "oci:$OCI:old" "docker://$H/team/old:v1" || bail "push old"
old_blobs=$(jq -r '.config.digest, .layers[2].digest' "$OCI/blobs/sha256/${DIGEST[old]#sha256:}")
old_blobs+=$'\n'${DIGEST[old]}
# Age everything stored so far (old's blobs, links) by an hour, well past delay, instead of
# sleeping past it: once unreferenced, these blobs are fair game for the next run.
check "age the stored files by an hour (as touch -d would)" python3 -c '
import os, sys, time
t = time.time() - 3600
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs: os.utime(os.path.join(d, f), (t, t))' "$DATA"

# --- 20 concurrent pushes -----------------------------------------------------------------------
# old is deleted right after the pushes are launched (skopeo takes a moment to start), so
# that its blobs turn into garbage while the pushes are looking for them: some HEADs see
# them (200, not uploaded again), and a GC run may sweep them before the manifest PUT.
runs0=$(gc_runs)
pids=()
for ((i = 0; i < N; i++)); do
  n=$(printf 'p%02d' $i)
  skopeo_copy "oci:$OCI:$n" "docker://$H/team/app$((i % 4)):$n" 2>"$WORK/push-$n.err" &
  pids+=($!)
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/team/old/manifests/${DIGEST[old]}")
check_eq "delete old while the pushes start (its blobs become garbage)" 202 "$code"
failed=()
for ((i = 0; i < N; i++)); do wait "${pids[$i]}" || failed+=("$(printf 'p%02d' $i)"); done
log "gc runs during the pushes: $(($(gc_runs) - runs0)); pushes that failed: ${#failed[@]} ${failed[*]:-}"
# A push whose manifest PUT was refused (MANIFEST_BLOB_UNKNOWN: a blob it relied on was swept)
# failed cleanly, which is allowed (docs/registry.md); a client retries, and so do we (at most 3 times).
retry_push() {
  local k
  for k in 1 2 3; do skopeo_copy "$@" && return 0; echo "attempt $k failed"; done
  return 1
}
for n in "${failed[@]}"; do
  e=$(tail -n 3 "$WORK/push-$n.err")
  for d in $(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$e" | sort -u); do e+=" [$d is ${NAME_OF[$d]:-not one of ours}]"; done
  diag "$n: $e"
  i=$((10#${n#p}))
  check "$n failed cleanly and succeeds when retried" retry_push "oci:$OCI:$n" "docker://$H/team/app$((i % 4)):$n"
done
# let GC run a few more times, past delay, so a blob it wrongly considers garbage is gone
runs1=$(gc_runs)
check "online GC keeps running after the pushes (3 more runs)" wait_for 30 bash -c "[ \$(grep -c 'online gc' '$REGISTRY_LOG') -ge $((runs1 + 3)) ]"

# --- on disk: no dangling references; the real garbage was swept -------------------------------
dangling() {   # every blob that a stored manifest revision references but that is not stored
  comm -23 <(reachable "$DATA" all) <(stored_blobs "$DATA")
}
check_eq "no manifest revision references a missing blob (storage root)" "" "$(dangling)"
check "every stored blob hashes to its digest" store_blobs_ok "$DATA"
gone=""
for d in $old_blobs; do [ -e "$(blob_path "$DATA" "$d")" ] && gone+=" $d"; done
check_eq "the deleted image's own blobs (manifest, config, layer) were swept by online GC" "" "$gone"
check "the GC log reports what it freed" grep -qE 'online gc: [0-9]+ blobs marked, [1-9][0-9]* swept' "$REGISTRY_LOG"

# --- every pushed image pulls byte-identical ----------------------------------------------------
pull_same() {   # pull_same NAME REPO — pulled dir: = source dir:, blobs hash to their names
  skopeo_copy "oci:$OCI:$1" "dir:$WORK/src-$1" &&
  skopeo_copy "docker://$H/$2:$1" "dir:$WORK/pull-$1" &&
  verify_dir_blobs "$WORK/pull-$1" && diff -r "$WORK/src-$1" "$WORK/pull-$1"
}
bad=""
for ((i = 0; i < N; i++)); do
  n=$(printf 'p%02d' $i)
  out=$(pull_same "$n" "team/app$((i % 4))" 2>&1) || { bad+=" $n"; diag "$n: $(tail -n 5 <<<"$out")"; }
done
check_eq "all $N pushed images pull byte-identical (sha256 of every blob = its digest = the source's)" "" "$bad"
check "regfs-registry is still running" kill -0 "$REGISTRY_PID"
check_daemon_logs
done_testing
