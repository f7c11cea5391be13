#!/bin/bash
# regfs-registry's Prometheus metrics on http.debug.addr: the text parses (a small
# parser, tools/promtext.py), and after a known push and pull made with curl (n blob
# uploads, one manifest, k manifest GETs, n blob GETs, one HEAD of a missing blob) the
# counters moved by exactly the requests made and the body bytes curl counted itself.
# The debug listener's own requests are not API requests and must not count. Then a mount
# with --metrics: its Prometheus text parses and agrees with its .regfs/stats.
. "$(dirname "$0")/lib.sh"
need_regfs_registry

PROM=$REGFS_SRC/tests/integration/tools/promtext.py
DPORT=$(free_port)
# EXTRA_YAML lands right after http.addr: indented, it extends the http: section
start_regfs_registry "$WORK/data" "$(printf '  debug:\n    addr: 127.0.0.1:%s\n    prometheus:\n      enabled: true\n      path: /metrics\n' "$DPORT")" \
  || bail "registry starts with the debug listener"
URL=$REGISTRY_URL
wait_http "http://127.0.0.1:$DPORT/metrics" || bail "debug listener answers"

scrape() { curl -s -m 10 -o "$1" "http://127.0.0.1:$DPORT/metrics"; }
get() { python3 "$PROM" get "$1" "$2"; }
# req METHOD URL [CURL_ARGS…] — prints the status; notes curl's own count of the body
# bytes it downloaded and uploaded in $WORK/bytes (req runs in $(…): no variables).
req() {
  local m=$1 u=$2 out; shift 2
  out=$(curl -s -o "$WORK/body" -D "$WORK/hdr" -X "$m" -m 30 -w '%{http_code} %{size_download} %{size_upload}' "$@" "$u")
  set -- $out
  echo "$2 $3" >>"$WORK/bytes"; echo "$1"
}

scrape "$WORK/m0"
check "the scrape parses as Prometheus text" python3 "$PROM" check "$WORK/m0"
check_eq "nothing is uploading at rest" 0 "$(get "$WORK/m0" regfs_http_uploads_in_flight)"

# --- the push: n blobs (POST then PUT with the body), a config, one manifest ---------
n=3; digests=(); sizes=()
for ((i = 0; i < n; i++)); do
  head -c $((1000 * (i + 1) + RANDOM % 500)) /dev/urandom >"$WORK/b$i"
  d=sha256:$(sha256sum "$WORK/b$i" | cut -d' ' -f1); digests+=("$d"); sizes+=("$(stat -c %s "$WORK/b$i")")
  st=$(req POST "$URL/v2/m/app/blobs/uploads/")
  [ "$st" = 202 ] || fail "upload $i starts (202)" "got $st"
  loc=$(tr -d '\r' <"$WORK/hdr" | sed -n 's/^Location: //Ip'); case $loc in http*) ;; *) loc=$URL$loc ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  st=$(req PUT "$loc${sep}digest=$d" -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/b$i")
  [ "$st" = 201 ] || fail "upload $i finishes (201)" "got $st"
done
# blob 0 serves as the config (any bytes: the registry does not parse configs)
layers=$(for ((i = 1; i < n; i++)); do printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}\n' "${digests[$i]}" "${sizes[$i]}"; done | jq -s -c .)
jq -n -c --arg cd "${digests[0]}" --argjson cs "${sizes[0]}" --argjson l "$layers" \
  '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$cd,size:$cs},layers:$l}' >"$WORK/manifest"
MT=application/vnd.oci.image.manifest.v1+json
st=$(req PUT "$URL/v2/m/app/manifests/v1" -H "Content-Type: $MT" --data-binary "@$WORK/manifest")
check_eq "the manifest is stored (201)" 201 "$st"

# --- the pull: k manifest GETs, every blob once, one HEAD of a missing blob ------------
k=4
for ((i = 0; i < k; i++)); do
  st=$(req GET "$URL/v2/m/app/manifests/v1" -H "Accept: $MT"); [ "$st" = 200 ] || fail "manifest GET $i (200)" "got $st"
done
for ((i = 0; i < n; i++)); do
  st=$(req GET "$URL/v2/m/app/blobs/${digests[$i]}" -L); [ "$st" = 200 ] || fail "blob GET $i (200)" "got $st"
  cmp -s "$WORK/body" "$WORK/b$i" || fail "blob $i comes back as pushed"
done
missing=sha256:$(printf 'not pushed' | sha256sum | cut -d' ' -f1)
st=$(req HEAD "$URL/v2/m/app/blobs/$missing" -I); check_eq "HEAD of a missing blob is 404" 404 "$st"

scrape "$WORK/m1"
check "the second scrape parses as Prometheus text" python3 "$PROM" check "$WORK/m1"
delta() { echo $(( $(get "$WORK/m1" "$1") - $(get "$WORK/m0" "$1") )); }
R=registry_http_requests_total
check_eq "POST uploads counted" "$n" "$(delta "$R{code=\"202\",handler=\"blob_upload\",method=\"POST\"}")"
check_eq "PUT upload ends counted" "$n" "$(delta "$R{code=\"201\",handler=\"blob_upload_chunk\",method=\"PUT\"}")"
check_eq "manifest PUT counted" 1 "$(delta "$R{code=\"201\",handler=\"manifest\",method=\"PUT\"}")"
check_eq "manifest GETs counted" "$k" "$(delta "$R{code=\"200\",handler=\"manifest\",method=\"GET\"}")"
check_eq "blob GETs counted" "$n" "$(delta "$R{code=\"200\",handler=\"blob\",method=\"GET\"}")"
check_eq "the 404 HEAD counted" 1 "$(delta "$R{code=\"404\",handler=\"blob\",method=\"HEAD\"}")"
D=registry_http_request_duration_seconds_count
check_eq "manifest durations observed once per request" $((k + 1)) "$(delta "$D{handler=\"manifest\"}")"
check_eq "blob durations observed once per request" $((n + 1)) "$(delta "$D{handler=\"blob\"}")"
bsum=0; for s in "${sizes[@]}"; do bsum=$((bsum + s)); done
check_eq "registry_http_response_size_bytes_sum{handler=blob} moved by the blob bytes" "$bsum" \
  "$(delta 'registry_http_response_size_bytes_sum{handler="blob"}')"
SENT=$(awk '{s += $1} END {print s + 0}' "$WORK/bytes"); RECV=$(awk '{s += $2} END {print s + 0}' "$WORK/bytes")
check_eq "sent bytes equal what curl downloaded" "$SENT" "$(delta regfs_http_sent_bytes_total)"
check_eq "received bytes equal what curl uploaded" "$RECV" "$(delta regfs_http_received_bytes_total)"
check_eq "no upload left in flight" 0 "$(get "$WORK/m1" regfs_http_uploads_in_flight)"
puts=$(get "$WORK/m1" 'registry_storage_action_seconds_count{action="PutContent",driver="filesystem"}')
[ "$puts" -gt 0 ] && ok "storage PutContent actions timed ($puts)" || fail "storage PutContent actions timed" "got $puts"

scrape "$WORK/m2"
check_eq "scrapes are not API requests" "$(grep -c '^registry_http_requests_total' "$WORK/m1")" \
  "$(grep -c '^registry_http_requests_total' "$WORK/m2")"
check_eq "the debug listener answers 404 elsewhere" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT/nothing")"

# --- the mount: --metrics ADDR serves the counters of .regfs/stats as Prometheus text ------
if [ ! -e /dev/fuse ] || [ ! -x "$REGFS_MOUNT" ]; then log "no FUSE or no regfs: the mount's metrics are not checked"; done_testing; fi
MPORT=$(free_port); MNT=$WORK/mnt
start_regfs_mount "$URL" "$MNT" --metrics "127.0.0.1:$MPORT" --cache-size 0 || bail "regfs mounts"
MM=http://127.0.0.1:$MPORT/metrics
wait_http "$MM" || bail "the mount's metrics listener answers"
curl -s -m 10 -o "$WORK/f0" "$MM"
check "the mount's scrape parses as Prometheus text" python3 "$PROM" check "$WORK/f0"
d=sha256:$(sha256sum "$WORK/manifest" | cut -d' ' -f1)
check "the manifest reads back through the mount" cmp "$WORK/manifest" "$MNT/m/app/_manifests/$d/manifest.json"
curl -s -m 10 -o "$WORK/f1" "$MM"
check "the second mount scrape parses" python3 "$PROM" check "$WORK/f1"
jq . "$MNT/.regfs/stats" >"$WORK/stats.json" || fail "the mount's .regfs/stats is JSON"
check_eq "Prometheus and .regfs/stats agree on requests" "$(jq .requests.total "$WORK/stats.json")" \
  "$(get "$WORK/f1" regfs_mount_requests_total)"
check_eq "Prometheus and .regfs/stats agree on manifest requests" "$(jq .requests.manifest "$WORK/stats.json")" \
  "$(get "$WORK/f1" 'regfs_mount_requests_by_kind_total{kind="manifest"}')"
mf=$(( $(get "$WORK/f1" 'regfs_mount_requests_by_kind_total{kind="manifest"}') - $(get "$WORK/f0" 'regfs_mount_requests_by_kind_total{kind="manifest"}') ))
[ "$mf" -ge 1 ] && ok "reading the manifest moved the mount's manifest requests ($mf)" || fail "reading the manifest moved the mount's manifest requests" "delta $mf"
check_eq "the mount's listener answers 404 elsewhere" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/x")"
done_testing
