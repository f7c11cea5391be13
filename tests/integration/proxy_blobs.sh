#!/bin/bash
# The pull-through cache's blobs: an upstream docker-registry holding a 4-layer image of
# random data (one layer 24 MB), behind tools/blobgate.py (which counts the upstream's blob
# GETs and can slow, cut or spoil bodies); regfs-registry caching it under the prefix "up".
#  - 20 concurrent GETs of the big uncached layer (plus a Range GET): one upstream GET,
#    every client gets bytes hashing to the digest, the blob is stored and linked;
#  - a client hanging up half-way: the fetch goes on, the blob is stored complete;
#  - the upstream killed mid-transfer: the client gets an error, nothing is stored (no
#    blob file, no upload left), and the next GET with the upstream back works;
#  - an upstream sending other bytes under the digest: refused, no client gets a whole
#    body, nothing stored;
#  - HEAD asks the upstream and fetches nothing;
#  - a blob stored for one repository is linked in another only when the upstream has it
#    there (else 404), without a second fetch;
#  - with the upstream stopped the cached blob is served, an uncached one is 502.
# PROXY_BLOBS_STORAGE=s3 runs the same on S3 (Ceph RGW, tests/integration/s3_lib.sh).
. "$(dirname "$0")/lib.sh"

need_bin skopeo umoci curl jq python3 sha256sum "$DOCKER_REGISTRY"
need_regfs_registry

img=$(make_image "$WORK/oci" v1 4 24M 2M 2M 300K) || bail "make_image"
start_docker_registry "$WORK/upstream" || bail "upstream docker-registry did not start"
UPD=$REGISTRY_HOST
check "skopeo pushes team/app:v1 to the upstream" skopeo_copy "$img" "docker://$UPD/team/app:v1"

GPORT=$(free_port) || bail "no free port"
G=http://127.0.0.1:$GPORT
start_gate() {
  start_bg "blobgate-$GPORT" python3 "$REGFS_SRC/tests/integration/tools/blobgate.py" \
    --listen "127.0.0.1:$GPORT" --backend "http://$UPD"
  GATE_PID=$BG_PID
  wait_http "$G/_gate/counts" || bail "blobgate did not start"
}
gate_mode() { curl -sf -X PUT --data "$1" "$G/_gate/mode" >/dev/null; }
gate_count() { curl -sf "$G/_gate/counts" | jq -r --arg p "$1" '.[$p] // 0'; }
start_gate

PROXY_YAML="regfs:
  proxies:
    - prefix: up
      remoteurl: $G
  proxycache:
    spooldir: $WORK/spool"
sha() { sha256sum | cut -d' ' -f1; }
if [ "${PROXY_BLOBS_STORAGE:-filesystem}" = s3 ]; then
  # the same checks on S3 (Ceph RGW): the storage is read with boto3 (s3tool)
  . "$(dirname "$0")/s3_lib.sh"
  s3_start pblob
  port=$(free_port) || bail "no free port"
  s3_config "$WORK/r-s3.yml" pblob "$port" "$PROXY_YAML"
  start_regfs_registry "$WORK/r-s3.yml" || bail "regfs-registry did not start"
  key_of() { local h=${1#sha256:}; echo "docker/registry/v2/blobs/sha256/${h:0:2}/$h/data"; }
  stored() { s3tool ls pblob "$(key_of "$1")" | grep -q .; }
  stored_ok() { [ "$(s3tool get pblob "$(key_of "$1")" | sha)" = "${1#sha256:}" ]; }
  linked_in() { s3tool ls pblob "docker/registry/v2/repositories/$1/_layers/sha256/${2#sha256:}/link" | grep -q .; }
  no_uploads() { ! s3tool ls pblob docker/registry/v2/repositories/ | grep -q '/_uploads/.*/data$' &&
                 [ -z "$(s3tool uploads pblob)" ]; }
else
  start_regfs_registry "$WORK/data" "$PROXY_YAML" || bail "regfs-registry did not start"
  stored() { [ -f "$(blob_path "$WORK/data" "$1")" ]; }
  stored_ok() { stored "$1" && [ "$(sha <"$(blob_path "$WORK/data" "$1")")" = "${1#sha256:}" ]; }
  linked_in() { [ -f "$WORK/data/docker/registry/v2/repositories/$1/_layers/sha256/${2#sha256:}/link" ]; }
  no_uploads() { [ -z "$(find "$WORK/data" -path '*/_uploads/*' -name data 2>/dev/null)" ]; }
fi
U=$REGISTRY_URL
check_eq "the spool directory is private" 700 "$(stat -c %a "$WORK/spool")"

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
curl -s -H "$ACCEPT" "http://$UPD/v2/team/app/manifests/v1" >"$WORK/m.json"
mapfile -t L < <(jq -r '.layers | sort_by(-.size) | .[].digest' "$WORK/m.json")
BIG=${L[0]} A=${L[1]} B=${L[2]} C=${L[3]}
CFG=$(jq -r .config.digest "$WORK/m.json")
size_of() { jq -r --arg d "$1" '[.layers[], .config] | map(select(.digest == $d))[0].size' "$WORK/m.json"; }
[ "$(size_of "$BIG")" -ge 20000000 ] || bail "the big layer is $(size_of "$BIG") bytes"
curl -s "http://$UPD/v2/team/app/blobs/$BIG" >"$WORK/big.ref"
check_eq "the reference copy of the big layer hashes to its digest" "${BIG#sha256:}" "$(sha <"$WORK/big.ref")"

# --- 20 clients at once ---------------------------------------------------------------------
gate_mode "slow:16000000" # ~1.5 s for the big layer: the clients join one fetch
pids=()
for i in $(seq 1 20); do
  curl -sL -m 60 -o "$WORK/c$i" -w '%{http_code}' "$U/v2/up/team/app/blobs/$BIG" >"$WORK/c$i.code" &
  pids+=($!)
done
curl -sL -m 60 -r 1000000-1999999 -o "$WORK/range" -w '%{http_code}' \
  "$U/v2/up/team/app/blobs/$BIG" >"$WORK/range.code" &
pids+=($!)
wait "${pids[@]}"
good=0
for i in $(seq 1 20); do
  [ "$(cat "$WORK/c$i.code")" = 200 ] && [ "$(sha <"$WORK/c$i")" = "${BIG#sha256:}" ] && good=$((good + 1))
done
check_eq "20 concurrent GETs of the uncached layer: all 200 with the digest's bytes" 20 "$good"
check_eq "one upstream GET for them" 1 "$(gate_count "/v2/team/app/blobs/$BIG")"
check_eq "a Range GET meanwhile: 206 with those bytes" \
  "206 $(dd if="$WORK/big.ref" bs=1000000 skip=1 count=1 2>/dev/null | sha)" \
  "$(cat "$WORK/range.code") $(sha <"$WORK/range")"
check "the layer is stored (hashes to its digest)" wait_for 20 stored_ok "$BIG"
check "and linked in up/team/app" linked_in up/team/app "$BIG"
check "no upload is left behind" no_uploads
check "one log line for the fetch" grep -q "blob $BIG of up/team/app fetched from $G/team/app and stored" "$REGISTRY_LOG"
check_eq "then served from storage: no upstream GET" "200 ${BIG#sha256:} 1" \
  "$(curl -sL -o "$WORK/again" -w '%{http_code}' "$U/v2/up/team/app/blobs/$BIG") $(sha <"$WORK/again") $(gate_count "/v2/team/app/blobs/$BIG")"

# --- a client hanging up half-way ------------------------------------------------------------
gate_mode "slow:1000000" # ~2 s for A
curl -sL -m 30 "$U/v2/up/team/app/blobs/$A" | head -c 300000 >/dev/null
check "a client hanging up half-way: the blob is still stored complete" wait_for 20 stored_ok "$A"
check_eq "with one upstream GET" 1 "$(gate_count "/v2/team/app/blobs/$A")"

# --- the upstream killed mid-transfer --------------------------------------------------------
gate_mode "slow:400000" # ~5 s for B
# a failed transfer: curl failed, or the answer is not a 200 (the fetch may have failed
# before the request looked at it: then it is answered 502)
failed() { [ "$1" -ne 0 ] || [ "$(cat "$2")" != 200 ]; }
curl -sL -m 30 -o "$WORK/killed" -w '%{http_code}' "$U/v2/up/team/app/blobs/$B" >"$WORK/killed.code" &
cpid=$!
sleep 1.5
stop_pid "$GATE_PID" KILL
wait "$cpid"; crc=$?
check "the upstream killed mid-transfer: the client's transfer fails" failed "$crc" "$WORK/killed.code"
check "and it got less than the blob" [ "$(stat -c %s "$WORK/killed" 2>/dev/null || echo 0)" -lt "$(size_of "$B")" ]
check "the failure is logged (upstream, digest, nothing stored)" \
  wait_for 20 grep -q "blob $B of up/team/app from $G/team/app: nothing stored" "$REGISTRY_LOG"
check_fails "no blob file in storage" stored "$B"
check "no upload is left behind" no_uploads
start_gate
check_eq "the upstream back: the next GET works" "200 ${B#sha256:}" \
  "$(curl -sL -m 30 -o "$WORK/b2" -w '%{http_code}' "$U/v2/up/team/app/blobs/$B") $(sha <"$WORK/b2")"
check "and stores it" wait_for 20 stored_ok "$B"

# --- other bytes under the digest ------------------------------------------------------------
gate_mode wrong
curl -sL -m 30 -o "$WORK/wrong" -w '%{http_code}' "$U/v2/up/team/app/blobs/$C" >"$WORK/wrong.code"; crc=$?
check "wrong bytes from the upstream: the client's transfer fails" failed "$crc" "$WORK/wrong.code"
check "and it never got a whole body" [ "$(stat -c %s "$WORK/wrong" 2>/dev/null || echo 0)" -lt "$(size_of "$C")" ]
check "the mismatch is logged" wait_for 10 grep -q "blob $C of up/team/app from $G/team/app: nothing stored: .*hash to" "$REGISTRY_LOG"
check_fails "nothing stored" stored "$C"
check "no upload is left behind" no_uploads
gate_mode pass
check_eq "the next GET (right bytes) works" "200 ${C#sha256:}" \
  "$(curl -sL -m 30 -o "$WORK/c2" -w '%{http_code}' "$U/v2/up/team/app/blobs/$C") $(sha <"$WORK/c2")"

# --- HEAD ----------------------------------------------------------------------------------------
curl -sL -o /dev/null -D "$WORK/head" -I "$U/v2/up/team/app/blobs/$CFG"
check_eq "HEAD of an uncached blob: 200 with the upstream's size and the digest" \
  "200 $(size_of "$CFG") $CFG" \
  "$(tr -d '\r' <"$WORK/head" | awk 'NR==1{s=$2} tolower($1)=="content-length:"{l=$2} tolower($1)=="docker-content-digest:"{d=$2} END{print s, l, d}')"
check_eq "without an upstream GET" 0 "$(gate_count "/v2/team/app/blobs/$CFG")"
check_fails "nor anything stored" stored "$CFG"

# --- a blob stored for another repository ------------------------------------------------------
check_eq "a repository whose upstream lacks the blob: 404 though it is stored" 404 \
  "$(curl -sL -o /dev/null -w '%{http_code}' "$U/v2/up/team/other/blobs/$BIG")"
check_fails "and not linked there" linked_in up/team/other "$BIG"
check "skopeo pushes the image to team/app2 upstream" skopeo_copy "$img" "docker://$UPD/team/app2:v1"
check_eq "a repository whose upstream has it: served from storage" "200 ${BIG#sha256:}" \
  "$(curl -sL -o "$WORK/app2" -w '%{http_code}' "$U/v2/up/team/app2/blobs/$BIG") $(sha <"$WORK/app2")"
check_eq "without an upstream GET" 0 "$(gate_count "/v2/team/app2/blobs/$BIG")"
check "and linked there" linked_in up/team/app2 "$BIG"

# --- the upstream stopped ----------------------------------------------------------------------
stop_pid "$GATE_PID"
check_eq "upstream stopped: the cached blob is served" "200 ${BIG#sha256:}" \
  "$(curl -sL -o "$WORK/down" -w '%{http_code}' "$U/v2/up/team/app/blobs/$BIG") $(sha <"$WORK/down")"
check_eq "upstream stopped: an uncached blob is 502 naming the upstream" "502 yes" \
  "$(curl -sL -o "$WORK/e502" -w '%{http_code}' "$U/v2/up/team/app/blobs/$CFG") $(grep -q "$G" "$WORK/e502" && echo yes)"
done_testing
