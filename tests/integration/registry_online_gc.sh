#!/bin/bash
# regfs-registry online garbage collection (regfs.gc, docs/config.md):
#  1. GC every second with a long delay during 10 concurrent skopeo pushes: every push
#     succeeds and pulls back byte-identical.
#  2. After deleting manifests and backdating the blobs past the delay, GC frees exactly
#     the blobs no manifest references (expected set computed here from the files on
#     disk) and removes the _layers links to them; the kept images still pull identical.
#  3. delay 0 (no protection for fresh uploads) during concurrent pushes: pushes may fail,
#     but cleanly — afterwards no stored manifest references a missing blob.
. "$(dirname "$0")/lib.sh"
need_regfs_registry

DATA=$WORK/data; V2=$DATA/docker/registry/v2
N=10
log "building $N images"
for ((i = 0; i < N; i++)); do make_image "$WORK/oci" "img$i" 2 200K 50K >/dev/null || bail "make_image"; done
make_index "$WORK/oci" idx >/dev/null || bail "make_index"

gc_yaml() {  # gc_yaml DELAY — top-level regfs.gc section, GC every second, untagged too
  printf 'regfs:\n  gc:\n    enabled: true\n    interval: 1s\n    delay: %s\n    deleteuntagged: true\n' "$1"
}
# dangling — references of stored manifests whose blob is missing (prints them)
dangling() {
  local d
  for d in $(reachable "$DATA" all); do [ -f "$(blob_path "$DATA" "$d")" ] || echo "missing $d"; done
}
# push_images PREFIX — start the pushes of img0… to $h/PREFIX0/app:v1…, all at once, in the
# background; PUSH_PIDS are their pids
push_images() {
  local i
  PUSH_PIDS=()
  for ((i = 0; i < N; i++)); do
    skopeo_copy "oci:$WORK/oci:img$i" "docker://$h/$1$i/app:v1" 2>"$WORK/$1$i.err" & PUSH_PIDS+=($!)
  done
}
# pulls_same REF DIR REFDIR — REF from $h pulls (skopeo, to DIR) the same files as REFDIR
pulls_same() { rm -rf "$2"; skopeo_copy "docker://$h/$1" "dir:$2" && diff -r "$3" "$2" >/dev/null; }

# --- 1. pushes while GC runs every second ---------------------------------------------
mkdir -p "$DATA"
cfg=$WORK/gc.yml; port=$(free_port)
write_registry_config "$cfg" "$DATA" "$port"
gc_yaml 60s >>"$cfg"
start_regfs_registry "$cfg" || bail "regfs-registry does not start"
h=$REGISTRY_HOST
push_images r
# an index: its child manifests are untagged until the index arrives
skopeo_copy --all "oci:$WORK/oci:idx" "docker://$h/multi:v1" 2>"$WORK/pushidx.err" & PUSH_PIDS+=($!)
failed=0; for p in "${PUSH_PIDS[@]}"; do wait "$p" || failed=$((failed + 1)); done
check_eq "10 concurrent pushes and an index with GC every second (deleteuntagged): none failed" 0 "$failed"
check "the server runs GC (config accepted)" grep -q "listening" "$REGISTRY_LOG"
for ((i = 0; i < N; i++)); do
  skopeo_copy "oci:$WORK/oci:img$i" "dir:$WORK/ref$i" || fail "reference copy img$i"
done
ok_pulls=0
for ((i = 0; i < N; i++)); do pulls_same "r$i/app:v1" "$WORK/pull$i" "$WORK/ref$i" && ok_pulls=$((ok_pulls + 1)); done
check_eq "every pushed image pulls byte-identical" "$N" "$ok_pulls"
check "every stored blob matches its digest" verify_store_blobs "$DATA"
skopeo_copy --all "oci:$WORK/oci:idx" "dir:$WORK/refidx" || fail "reference copy idx"
sleep 2   # a few more GC runs: the index's children are untagged but reached
check "the index pulls byte-identical with both children (--all)" \
  bash -c "skopeo --insecure-policy copy -q --all --src-tls-verify=false docker://$h/multi:v1 dir:$WORK/pullidx && diff -r $WORK/refidx $WORK/pullidx"

# --- 2. delete half, backdate, GC frees exactly the unreferenced blobs -----------------
for ((i = 0; i < N; i += 2)); do skopeo_x delete "docker://$h/r$i/app:v1" >/dev/null || fail "delete r$i"; done
# an untagged manifest (r1's with an annotation added, pushed by digest): deleteuntagged drops it
mt=application/vnd.oci.image.manifest.v1+json
curl -s -H "Accept: $mt" "http://$h/v2/r1/app/manifests/v1" | jq -c '.annotations = {"x": "untagged"}' | tr -d '\n' >"$WORK/untagged.json"
du=sha256:$(sha256sum "$WORK/untagged.json" | cut -d' ' -f1)
check_eq "push an untagged manifest by digest" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $mt" --data-binary @"$WORK/untagged.json" "http://$h/v2/r1/app/manifests/$du")"
expected=$(reachable "$DATA" all | grep -vx "$du")
stored_before=$(stored_blobs "$DATA")
check "some blobs became unreferenced" test "$(comm -23 <(echo "$stored_before") <(echo "$expected") | wc -l)" -gt 0
check_eq "  but GC keeps them while younger than the delay" "$stored_before" "$(sleep 2; stored_blobs "$DATA")"
find "$V2/blobs" -name data -exec touch -d '2 hours ago' {} +
# revision links too: deleteuntagged now judges the index children (untagged, reached)
find "$V2/repositories" -path '*/_manifests/revisions/*/link' -exec touch -d '2 hours ago' {} +
# Backdating stands for the delay passing. The pushes' in-memory notes of blobs they
# referenced (HEAD, upload, mount) also live for the delay: a restart drops them.
stop_pid "$REGISTRY_PID"
start_regfs_registry "$cfg" || bail "restart failed"
settled() { [ "$(stored_blobs "$DATA")" = "$expected" ]; }
check "online GC frees exactly the unreferenced blobs" wait_for 30 settled
check_eq "  stored blobs = referenced blobs" "$expected" "$(stored_blobs "$DATA")"
logged_freed() { grep -q "bytes freed" "$REGISTRY_LOG"; }
check "  and logged what it freed" wait_for 10 logged_freed
check "  the untagged manifest's revision is gone" test ! -e "$V2/repositories/r1/app/_manifests/revisions/sha256/${du#sha256:}"
links_ok() {
  local l
  for l in $(find "$V2/repositories" -path '*/_layers/sha256/*/link' -exec awk 1 {} +); do
    [ -f "$(blob_path "$DATA" "$l")" ] || return 1
  done
}
check "no _layers link points at a swept blob" wait_for 10 links_ok
ok_pulls=0
for ((i = 1; i < N; i += 2)); do pulls_same "r$i/app:v1" "$WORK/pull$i" "$WORK/ref$i" && ok_pulls=$((ok_pulls + 1)); done
check_eq "kept images still pull byte-identical" $((N / 2)) "$ok_pulls"
rm -rf "$WORK/pullidx"
check "the index still pulls byte-identical (children untagged, reached through it)" \
  bash -c "skopeo --insecure-policy copy -q --all --src-tls-verify=false docker://$h/multi:v1 dir:$WORK/pullidx && diff -r $WORK/refidx $WORK/pullidx"
stop_pid "$REGISTRY_PID"

# --- 3. delay 0: pushes race the sweeper; failures must be clean -----------------------
sed -i 's/delay: 60s/delay: 0s/' "$cfg"
start_regfs_registry "$cfg" || bail "restart failed"
h=$REGISTRY_HOST
push_images race
done_n=0; for p in "${PUSH_PIDS[@]}"; do wait "$p" && done_n=$((done_n + 1)); done
log "delay 0: $done_n of $N pushes completed (the rest failed cleanly or not)"
sleep 2
check_eq "no stored manifest references a missing blob" "" "$(dangling)"
check "every stored blob matches its digest" verify_store_blobs "$DATA"
ok_pulls=0; want=0
for ((i = 0; i < N; i++)); do
  skopeo_x inspect --raw "docker://$h/race$i/app:v1" >/dev/null 2>&1 || continue
  want=$((want + 1))
  pulls_same "race$i/app:v1" "$WORK/rp$i" "$WORK/ref$i" && ok_pulls=$((ok_pulls + 1))
done
check_eq "every tag that exists pulls byte-identical" "$want" "$ok_pulls"

done_testing
