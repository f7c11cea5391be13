#!/bin/bash
# Clients waiting for a cached blob that is still arriving hold no request thread, and a
# fetch has a deadline (tools/hostile_upstream.py, behind Basic credentials):
#  - 40 concurrent GETs of a blob whose upstream stalls half-way through the body, then 40
#    of one whose upstream stalls before its headers: meanwhile GET /v2/ and GET of a stored
#    manifest answer (curl --max-time 5: a registry whose threads all wait would not); when
#    the upstream goes on, all 40 get bytes hashing to the digest, and it is stored;
#  - an upstream trickling 2 bytes/s (above the stall limit) is cut once
#    regfs.proxycache.minrategrace is over, with a log line naming the upstream and the
#    rate; its client's transfer fails, nothing is stored, and the next GET, the upstream
#    healthy, gets the blob and stores it;
#  - SIGTERM with 20 clients waiting (10 in the body, 10 before the headers): after
#    http.draintimeout their answers are cut, and the registry stops cleanly (exit 0;
#    libmicrohttpd aborts when stopped with a connection still suspended).
. "$(dirname "$0")/lib.sh"

need_bin curl jq python3 sha256sum ss
need_regfs_registry

PASS=spool-S3cret-$RANDOM
UPORT=$(free_port) || bail "no free port"
mkdir -p "$WORK/release"
start_bg hostile python3 "$(dirname "$0")/tools/hostile_upstream.py" --port "$UPORT" \
  --basic "bob:$PASS" --trickle 0.5 --release "$WORK/release"
wait_http "http://127.0.0.1:$UPORT/v2/" || bail "the hostile upstream did not start"
HOSTILE=http://127.0.0.1:$UPORT

DATA=$WORK/data
# minrate 100 bytes/s after 3 s: the trickle (2 bytes/s) is far under it; the stalled
# fetches are not checked while no byte comes, and are far over it once they go on
start_regfs_registry "$DATA" "  draintimeout: 1s
regfs:
  proxycache:
    spooldir: $WORK/spool
    minrate: 100
    minrategrace: 3s
  proxies:
    - prefix: h
      remoteurl: $HOSTILE
      username: bob
      password: $PASS
      revalidate: 1h" || bail "regfs-registry did not start"
U=$REGISTRY_URL
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
sha() { sha256sum | cut -d' ' -f1; }
stored() { [ -f "$(blob_path "$DATA" "$1")" ]; }
stored_ok() { stored "$1" && [ "$(sha <"$(blob_path "$DATA" "$1")")" = "${1#sha256:}" ]; }

check_eq "a manifest through the cache (stored)" 200 \
  "$(curl -s -m 30 -H "$ACCEPT" -o "$WORK/m.json" -w '%{http_code}' "$U/v2/h/good/manifests/v1")"
# three layers nothing has fetched yet: one for each part below
curl -s -m 30 -H "$ACCEPT" -u "bob:$PASS" -o "$WORK/spool.json" "$HOSTILE/v2/spool/manifests/v1"
mapfile -t L < <(jq -r '.layers[].digest' "$WORK/spool.json")
[ "${#L[@]}" = 3 ] && [ "${#L[2]}" = 71 ] || bail "no layer digests from the upstream"

# conns_at_least N — the registry has N established client connections
conns_at_least() {
  [ "$(ss -Htn state established "( sport = :$REGISTRY_PORT )" | wc -l)" -ge "$1" ]
}
# cpu_ticks — user+system clock ticks of the registry so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$REGISTRY_PID/stat"; }
threads() { awk '/^Threads:/{print $2}' "/proc/$REGISTRY_PID/status"; }

# stalled CASE DIGEST — 40 clients of h/CASE's blob DIGEST while the upstream holds it back
stalled() {
  local c=$1 LAYER=$2 i pids=() good=0
  for i in $(seq 1 40); do
    curl -s -m 60 -o "$WORK/$c.$i" -w '%{http_code}' "$U/v2/h/$c/blobs/$LAYER" >"$WORK/$c.$i.code" &
    pids+=($!)
  done
  check "$c: the upstream got the fetch" wait_for 20 grep -q "GET /v2/$c/blobs/$LAYER" "$HOSTILE_LOG"
  check "$c: the 40 clients are connected" wait_for 20 conns_at_least 40
  sleep 1 # and their requests in
  local t0 c0; t0=$(date +%s%N); c0=$(cpu_ticks)
  check_eq "$c: 40 clients waiting, GET /v2/ answers" 200 \
    "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$U/v2/")"
  check_eq "$c: and a stored manifest" "200 $(sha <"$WORK/m.json")" \
    "$(curl -s -m 5 -H "$ACCEPT" -o "$WORK/m2.json" -w '%{http_code}' "$U/v2/h/good/manifests/v1") $(sha <"$WORK/m2.json")"
  sleep 2
  diag "$c: 40 clients waiting: registry threads $(threads), CPU $(( ($(cpu_ticks) - c0) * 1000 / $(getconf CLK_TCK) )) ms over $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  check_fails "$c: nothing stored yet" stored "$LAYER"
  touch "$WORK/release/$c"
  wait "${pids[@]}"
  for i in $(seq 1 40); do
    [ "$(cat "$WORK/$c.$i.code")" = 200 ] && [ "$(sha <"$WORK/$c.$i")" = "${LAYER#sha256:}" ] &&
      good=$((good + 1))
  done
  check_eq "$c: the upstream going on, all 40 get the digest's bytes" 40 "$good"
  check "$c: the blob is stored" wait_for 20 stored_ok "$LAYER"
}

HOSTILE_LOG=$WORK/hostile.log

# --- the deadline: a trickle is cut ------------------------------------------------------------
LAYER=${L[0]}
curl -s -m 60 -o "$WORK/trickle" -w '%{http_code}' "$U/v2/h/trickleblob/blobs/$LAYER" \
  >"$WORK/trickle.code"; crc=$?
check "a trickling upstream: the client's transfer fails" \
  [ "$crc" -ne 0 ] || [ "$(cat "$WORK/trickle.code")" != 200 ]
check "the cut is logged with the upstream and the rate" wait_for 10 grep -Eq \
  "blob $LAYER of h/trickleblob from $HOSTILE/trickleblob: [0-9.]+ bytes/s on average .*under regfs.proxycache.minrate \(100 bytes/s\)" \
  "$REGISTRY_LOG"
check "and the fetch stored nothing" wait_for 10 grep -q \
  "blob $LAYER of h/trickleblob from $HOSTILE/trickleblob: nothing stored" "$REGISTRY_LOG"
check_fails "no blob file in storage" stored "$LAYER"
check_eq "no upload left behind" "" "$(find "$DATA" -path '*/_uploads/*' -name data 2>/dev/null)"
touch "$WORK/release/trickleblob"
check_eq "the upstream healthy: the next GET gets the blob" "200 ${LAYER#sha256:}" \
  "$(curl -s -m 30 -o "$WORK/t2" -w '%{http_code}' "$U/v2/h/trickleblob/blobs/$LAYER") $(sha <"$WORK/t2")"
check "and stores it" wait_for 20 stored_ok "$LAYER"

# --- waiting clients hold no thread --------------------------------------------------------------
stalled stallblob "${L[1]}"
stalled stallhead "${L[2]}"

# --- SIGTERM with clients waiting ------------------------------------------------------------------
rm -f "$WORK/release/stallblob" "$WORK/release/stallhead"
GL=$(jq -r '.layers[0].digest' "$WORK/m.json") # fetched by nobody yet
pids=()
for i in $(seq 1 10); do
  curl -s -m 60 -o "$WORK/stop.$i" -w '%{http_code}' "$U/v2/h/stallblob/blobs/$GL" >"$WORK/stop.$i.code" &
  pids+=($!)
  curl -s -m 60 -o "$WORK/stoph.$i" -w '%{http_code}' "$U/v2/h/stallhead/blobs/$GL" >"$WORK/stoph.$i.code" &
  pids+=($!)
done
check "the upstream got both fetches" wait_for 20 \
  eval "grep -q 'GET /v2/stallblob/blobs/$GL' '$HOSTILE_LOG' && grep -q 'GET /v2/stallhead/blobs/$GL held' '$HOSTILE_LOG'"
sleep 1
kill -TERM "$REGISTRY_PID"
# the stalled fetches end when the upstream goes on (or after the upstream client's stall
# limit): release them once the drain is over, so that the stop does not wait for that
bash -c 'sleep 4; touch "$1/stallblob" "$1/stallhead"' _ "$WORK/release" &
# a separate bash for the watchdog: a ( ) subshell would run lib.sh's EXIT trap when killed
bash -c 'sleep 40; kill -KILL "$1" 2>/dev/null && : >"$2"' _ "$REGISTRY_PID" "$WORK/watchdog" \
  >/dev/null 2>&1 &
wd=$!
wait "$REGISTRY_PID"; rc=$?
kill -KILL "$wd" 2>/dev/null; wait "$wd" 2>/dev/null
[ -e "$WORK/watchdog" ] && rc=killed
check_eq "SIGTERM with 20 clients waiting: the registry stops cleanly" 0 "$rc"
check "and says so" grep -q "stopped: " "$REGISTRY_LOG"
wait "${pids[@]}"
whole=0
for f in "$WORK"/stop.* "$WORK"/stoph.*; do
  case $f in *.code) continue ;; esac
  [ "$(cat "$f.code")" = 200 ] && [ "$(sha <"$f")" = "${GL#sha256:}" ] && whole=$((whole + 1))
done
check_eq "no waiting client got a whole blob from the cut fetch" 0 "$whole"
check_fails "nor was anything stored" stored "$GL"
done_testing
