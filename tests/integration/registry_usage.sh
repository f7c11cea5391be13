#!/bin/bash
# registry_usage.sh — the usage extension (GET /v2/_regfs/usage) and the
# regfs_storage_* gauges against an accounting computed in the test
# (tools/usage_expect.py: the registry API plus the files of the storage root):
# images sharing a base layer in three repositories, an index, a tag moved
# (an untagged manifest, garbage with regfs.gc.deleteuntagged), an abandoned
# upload; then a tag deleted (figures change at once), a restart (the startup
# walk gives the same figures), offline garbage-collect (the stored blob bytes
# drop by exactly the garbage predicted, which becomes 0), online GC (same,
# through the registry's own hooks), and maxseries on /metrics.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin jq curl python3

EXPECT=$REGFS_SRC/tests/integration/tools/usage_expect.py
DATA=$WORK/data
DPORT=$(free_port)
# uploads older than 1 s count as abandoned (purging itself off: the test
# removes the upload by hand); maxseries 2 of 3 repositories
EXTRA="  debug:
    addr: 127.0.0.1:$DPORT
    prometheus:
      enabled: true
regfs:
  usage:
    maxseries: 2
  gc:
    deleteuntagged: true"
PURGE="  maintenance:
    uploadpurging:
      enabled: false
      age: 1s"

usage() { curl -sf "$REGISTRY_URL/v2/_regfs/usage" | jq -S -c .; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/_regfs/usage")" = 200 ]; }
expected() { python3 "$EXPECT" "$DATA" "$REGISTRY_URL" --delete-untagged --upload-age 1 | jq -S -c .; }
blob_bytes() { find "$DATA/docker/registry/v2/blobs" -type f -name data -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
garbage_of() { jq '.garbage.blobs + .garbage.manifests' <<<"$1"; }

mkdir -p "$WORK/f" "$DATA"
cd "$WORK/f" || bail "cd"
rand() { head -c "$2" /dev/urandom >"$1"; }
push_blobs() { # push_blobs REPO FILE…
  local r=$1 f; shift
  for f in "$@"; do put_blob "$REGISTRY_URL" "$r" "$f" "sha256:$(sha256sum "$f" | cut -d' ' -f1)" || return 1; done
}
push_image() { # push_image REPO REF CONFIG LAYER… — blobs, then the manifest (file REPO-REF.json)
  local r=$1 ref=$2 m; shift 2
  m=$WORK/f/$(tr / _ <<<"$r")-$ref.json
  push_blobs "$r" "$@" && oci_manifest "$@" >"$m" && put_manifest "$REGISTRY_URL" "$r" "$ref" "$m"
}
digest_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# the generated config, with the purging settings inserted under storage:
start_regfs_registry "$DATA" "$EXTRA" || bail "regfs-registry did not start"
stop_pid "$REGISTRY_PID"
awk -v purge="$PURGE" '{print} /^storage:/ {print purge}' "$REGISTRY_CONFIG" >"$WORK/config.yml"
start_regfs_registry "$WORK/config.yml" || bail "regfs-registry did not start with the config"
CONFIG=$WORK/config.yml
check "the usage extension answers once the startup walk is done" wait_for 30 ready
check "advertised in X-Regfs-Extensions" bash -c "curl -sI '$REGISTRY_URL/v2/' | grep -i '^X-Regfs-Extensions:.*usage'"

rand base 300000; rand l1 120000; rand l2 50000; rand l3 70000; rand l4 9000; rand l5 33000; rand l6 44000
for i in 1 2 3 4 5; do printf '{"architecture":"amd64","os":"linux","n":%d}' "$i" >"cfg$i"; done
check "team/app:v1 (shared base)" push_image team/app v1 cfg1 base l1
check "team/web:v1 (shared base)" push_image team/web v1 cfg2 base l2
check "other/tool:v1 (shared base, two own layers)" push_image other/tool v1 cfg3 base l3 l4
check "team/app:v2" push_image team/app v2 cfg1 base l5
check "team/app:v2 moved (the first v2 is untagged now)" push_image team/app v2b cfg4 base l6
check "tag v2 moved" put_manifest "$REGISTRY_URL" team/app v2 "$WORK/f/team_app-v2b.json"
# an index of two images pushed by digest, tagged
push_image team/web c1 cfg5 l2 l6 >/dev/null && push_image team/web c2 cfg2 base >/dev/null
for c in c1 c2; do
  curl -sf -X DELETE "$REGISTRY_URL/v2/team/web/manifests/$c" >/dev/null
done
jq -cn --arg a "$(digest_of "$WORK/f/team_web-c1.json")" --argjson asz "$(stat -c %s "$WORK/f/team_web-c1.json")" \
  --arg b "$(digest_of "$WORK/f/team_web-c2.json")" --argjson bsz "$(stat -c %s "$WORK/f/team_web-c2.json")" \
  '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json", manifests:[
     {mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$a, size:$asz, platform:{architecture:"amd64",os:"linux"}},
     {mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$b, size:$bsz, platform:{architecture:"arm64",os:"linux"}}]}' >index.json
check "an index tagged multi" test "$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @index.json \
  "$REGISTRY_URL/v2/team/web/manifests/multi")" = 201
# an abandoned upload: a session with one chunk, never finished
LOC=$(curl -sS -o /dev/null -D - -X POST "$REGISTRY_URL/v2/other/tool/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $LOC in http*) ;; *) LOC=$REGISTRY_URL$LOC ;; esac
rand chunk 25000
check "an upload with one chunk, left unfinished" test "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH \
  -H 'Content-Type: application/octet-stream' --data-binary @chunk "$LOC")" = 202
sleep 2 # the upload is now older than the configured age (1 s): abandoned

U=$(usage); E=$(expected)
check_eq "usage equals the independent computation" "$E" "$U"
check "there is garbage of every kind" jq -e '.garbage.blobs > 0 and .garbage.manifests > 0 and .garbage.uploads == 25000' <<<"$U"
check "a shared base layer: team/app has shared bytes" jq -e '.repositories[] | select(.name == "team/app") | .shared >= 300000' <<<"$U"
check_eq "?repository= gives that one" "$(jq -c '.repositories[] | select(.name == "team/web")' <<<"$E")" \
  "$(curl -sf "$REGISTRY_URL/v2/_regfs/usage?repository=team/web" | jq -S -c '.repositories[0]')"
check_eq "n/last page the repositories with a Link" "team/app" \
  "$(curl -sf "$REGISTRY_URL/v2/_regfs/usage?n=1&last=other/tool" | jq -r '.repositories | map(.name) | join(",")')"
check "a Link to the next page" bash -c "curl -sfI '$REGISTRY_URL/v2/_regfs/usage?n=1' | grep -i '^Link: .*last=other/tool'"

# metrics: the gauges equal the endpoint; maxseries 2 of 3 repositories
curl -sf "http://127.0.0.1:$DPORT/metrics" >metrics.txt
check "the metrics are valid Prometheus text" python3 "$REGFS_SRC/tests/integration/tools/promtext.py" check metrics.txt
PROM="python3 $REGFS_SRC/tests/integration/tools/promtext.py get metrics.txt"
check_eq "regfs_storage_stored_bytes equals stored" "$(jq .stored <<<"$U")" "$($PROM regfs_storage_stored_bytes)"
check_eq "regfs_storage_garbage_bytes equals garbage.total" "$(jq .garbage.total <<<"$U")" "$($PROM regfs_storage_garbage_bytes)"
read -r R1 R2 R3 < <(jq -r '.repositories | sort_by(-.bytes) | map(.name) | join(" ")' <<<"$U")
for r in "$R1" "$R2"; do
  check_eq "exclusive bytes of $r" "$(jq ".repositories[] | select(.name == \"$r\") | .exclusive" <<<"$U")" \
    "$($PROM "regfs_storage_bytes{repository=\"$r\",kind=\"exclusive\"}")"
done
check_eq "the smallest repository is summed under _other" "$(jq ".repositories[] | select(.name == \"$R3\") | .shared" <<<"$U")" \
  "$($PROM 'regfs_storage_bytes{repository="_other",kind="shared"}')"
check_eq "maxseries: 3 series of each kind" 3 "$(grep -c '^regfs_storage_bytes{kind="exclusive"' metrics.txt)"

# a tag deleted: the figures change at once
check "DELETE other/tool:v1" test "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/other/tool/manifests/v1")" = 202
U2=$(usage)
check_eq "after the deletion, usage equals the independent computation" "$(expected)" "$U2"
check "other/tool's layers became garbage" test "$(garbage_of "$U2")" -gt "$(garbage_of "$U")"

# restart: the startup walk gives the same figures
stop_pid "$REGISTRY_PID"
start_regfs_registry "$CONFIG" || bail "restart"
check "ready after the restart" wait_for 30 ready
check_eq "after a restart, the walk gives the same figures" "$U2" "$(usage)"
check "the walk's duration is logged" grep -q "storage accounting built in" "$REGISTRY_LOG"

# offline garbage-collect frees exactly the garbage predicted
PRED=$(garbage_of "$U2")
BEFORE=$(blob_bytes)
stop_pid "$REGISTRY_PID"
check "garbage-collect --delete-untagged" "$REGFS_REGISTRY" garbage-collect --delete-untagged "$CONFIG"
check_eq "stored blob bytes dropped by the predicted garbage ($PRED)" "$PRED" "$((BEFORE - $(blob_bytes)))"
start_regfs_registry "$CONFIG" || bail "restart after gc"
wait_for 30 ready
U3=$(usage)
check_eq "after gc, blob and manifest garbage is 0" 0 "$(garbage_of "$U3")"
check_eq "after gc, usage equals the independent computation" "$(expected)" "$U3"
check "cancel the abandoned upload" test "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$LOC")" = 204
check_eq "garbage total is 0" 0 "$(usage | jq .garbage.total)"

# online GC: the registry's own deletions update the figures
check "DELETE team/web:multi" test "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/team/web/manifests/multi")" = 202
U4=$(usage)
PRED=$(garbage_of "$U4")
check "the index and its children are garbage" test "$PRED" -gt 0
BEFORE=$(blob_bytes)
stop_pid "$REGISTRY_PID"
sed -i 's/^  gc:$/  gc:\n    enabled: true\n    interval: 1s\n    delay: 0s/' "$CONFIG"
start_regfs_registry "$CONFIG" || bail "restart with online gc"
wait_for 30 ready
gc_done() { [ "$(garbage_of "$(usage)")" = 0 ]; }
check "online gc brings the garbage to 0" wait_for 30 gc_done
check_eq "stored blob bytes dropped by the predicted garbage ($PRED)" "$PRED" "$((BEFORE - $(blob_bytes)))"
check_eq "after online gc, usage equals the independent computation" "$(expected)" "$(usage)"

# changes made while the startup walk runs are not lost: a registry written
# directly (30 x 10), the walk paused 200 ms after each repository, and pushes,
# deletions and uploads sent meanwhile
stop_pid "$REGISTRY_PID"
GEN=$WORK/gen
python3 "$REGFS_SRC/bench/mount_gen.py" "$GEN" 30 10 >/dev/null || bail "mount_gen.py"
REGFS_USAGE_WALK_PAUSE_MS=200 start_regfs_registry "$GEN" || bail "regfs-registry on the generated registry"
building() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/_regfs/usage")" = 503 ]; }
check "503 while the walk runs" building
check "503 names it" bash -c "curl -s '$REGISTRY_URL/v2/_regfs/usage' | jq -e '.errors[0].detail.building == true'"
push_image team00/app0000 fresh cfg1 base l1 >/dev/null; P1=$?
push_image team00/app0029 fresh cfg2 base l2 >/dev/null; P2=$?
DEL=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/team00/app0001/manifests/latest")
DIG=$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REGISTRY_URL/v2/team00/app0028/manifests/sha-001" |
  tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
DELM=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/team00/app0028/manifests/$DIG")
LOC=$(curl -sS -o /dev/null -D - -X POST "$REGISTRY_URL/v2/team00/app0015/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $LOC in http*) ;; *) LOC=$REGISTRY_URL$LOC ;; esac
UP=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @chunk "$LOC")
if building; then log "the changes were made while the walk ran"; else log "the walk ended before the changes were done"; fi
check_eq "two pushes, two deletions and an upload during the walk succeed" "0 0 202 202 202" "$P1 $P2 $DEL $DELM $UP"
check "ready" wait_for 60 ready
check_eq "after the walk, usage equals the independent computation" \
  "$(python3 "$EXPECT" "$GEN" "$REGISTRY_URL" --upload-age 604800 | jq -S -c .)" "$(usage)"

done_testing
