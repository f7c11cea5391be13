#!/bin/bash
# Blob GET/HEAD on S3 with redirects off, counted through regfs-registry's own storage
# metrics (registry_storage_action_seconds_count per action): with the seed config's
# storage.cache.blobdescriptor: inmemory a GET after the push is only the data Reader (the
# push noted link and size), so is a second GET, a HEAD is nothing, and no request ever
# LISTs; after a restart a cold GET is one link Stat plus the Reader (no Stat of the data); a missing blob is two link Stats and no List. The cache never
# answers for another repository, and DELETE of the blob and of a manifest make the next
# GET 404 at once. With the key off every GET asks for the link again. Bytes are checked
# against the files pushed (cmp) and ranges against dd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin jq
s3_start bdbucket

PROM=$REGFS_SRC/tests/integration/tools/promtext.py
B=$WORK/body
req() { curl -s -o "$B" -w '%{http_code}' -X "$1" -m 60 "${@:3}" "$URL$2"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
OCT=(-H 'Content-Type: application/octet-stream')

# registry DPORT — the seed config on bdbucket, redirect off, metrics on DPORT
registry() {
  local port cfg dport=$1
  port=$(free_port); cfg=$WORK/r-$port.yml
  s3_config "$cfg" bdbucket "$port"
  sed -i 's/^  delete:/  redirect:\n    disable: true\n  delete:/' "$cfg"
  sed -i "s|^\(\s*addr: 127.0.0.1:$port\)$|\1\n  debug:\n    addr: 127.0.0.1:$dport\n    prometheus:\n      enabled: true\n      path: /metrics|" "$cfg"
  grep -q "127.0.0.1:$dport" "$cfg" || bail "debug listener configured"
  start_regfs_registry "$cfg" || bail "regfs-registry did not start"
  URL=$REGISTRY_URL
  wait_http "http://127.0.0.1:$dport/metrics" || bail "debug listener answers"
  # storage accounting lists the bucket once at startup: counted after it, never inside
  local i
  for ((i = 0; i < 300; i++)); do
    grep -q 'storage accounting built' "$REGISTRY_LOG" && return 0
    sleep 0.1
  done
  bail "storage accounting was not built within 30 s ($REGISTRY_LOG)"
}
N=0
scrape() { N=$((N + 1)); curl -s -m 10 -o "$WORK/m$N" "http://127.0.0.1:$DPORT/metrics"; }
# actions ACTION — how many times the S3 driver ran ACTION between the last two scrapes
actions() {
  local s="registry_storage_action_seconds_count{action=\"$1\",driver=\"s3\"}"
  echo $(( $(python3 "$PROM" get "$WORK/m$N" "$s") - $(python3 "$PROM" get "$WORK/m$((N - 1))" "$s") ))
}
# counted NAME STATS READERS — the Stat, Reader and List counts of the requests just made
counted() {
  scrape
  check_eq "$1: storage Stat requests" "$2" "$(actions Stat)"
  check_eq "$1: storage Reader requests" "$3" "$(actions Reader)"
  check_eq "$1: no storage List" 0 "$(actions List)"
}

head -c 700000 /dev/urandom >"$WORK/l1"; d1=sha256:$(sha "$WORK/l1")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/cfg"
dc=sha256:$(sha "$WORK/cfg")
missing=sha256:$(printf 'never pushed' | sha256sum | cut -d' ' -f1)

DPORT=$(free_port)
registry "$DPORT"
check_eq "blob pushed" 201 "$(req POST "/v2/a/x/blobs/uploads/?digest=$d1" "${OCT[@]}" --data-binary @"$WORK/l1")"
scrape
check_eq "GET after the push (200)" 200 "$(req GET "/v2/a/x/blobs/$d1")"
check "GET after the push: the bytes pushed" cmp -s "$B" "$WORK/l1"
counted "GET after the push" 0 1
check_eq "warm GET (200)" 200 "$(req GET "/v2/a/x/blobs/$d1")"
check "warm GET: the bytes pushed" cmp -s "$B" "$WORK/l1"
counted "warm GET" 0 1
st=$(curl -s -I -m 30 -o /dev/null -D "$WORK/h" -w '%{http_code}' "$URL/v2/a/x/blobs/$d1")
check_eq "warm HEAD: 200 with the size" "200 700000" "$st $(tr -d '\r' <"$WORK/h" | sed -n 's/^Content-Length: //Ip')"
counted "warm HEAD" 0 0
check_eq "ranged GET (206)" 206 "$(req GET "/v2/a/x/blobs/$d1" -H 'Range: bytes=1000-2999')"
dd if="$WORK/l1" of="$WORK/r" bs=1000 skip=1 count=2 status=none
check "ranged GET: the bytes of the range" cmp -s "$B" "$WORK/r"
counted "ranged GET (size cached)" 0 1
check_eq "another repository does not link it (404)" 404 "$(req GET "/v2/a/y/blobs/$d1")"
counted "GET in a repository without the link" 2 0
check_eq "missing blob (404)" 404 "$(req GET "/v2/a/x/blobs/$missing")"
check_eq "… BLOB_UNKNOWN" BLOB_UNKNOWN "$(jq -r '.errors[0].code' "$B")"
counted "GET of a missing blob" 2 0
check_eq "missing blob HEAD (404)" 404 "$(curl -s -I -m 30 -o /dev/null -w '%{http_code}' "$URL/v2/a/x/blobs/$missing")"
counted "HEAD of a missing blob" 2 0

# invalidation: DELETE of the blob, DELETE of a manifest
check_eq "DELETE blob (202)" 202 "$(req DELETE "/v2/a/x/blobs/$d1")"
check_eq "GET after DELETE (404)" 404 "$(req GET "/v2/a/x/blobs/$d1")"
check_eq "HEAD after DELETE (404)" 404 "$(curl -s -I -m 30 -o /dev/null -w '%{http_code}' "$URL/v2/a/x/blobs/$d1")"
check_eq "config pushed" 201 "$(req POST "/v2/a/m/blobs/uploads/?digest=$dc" "${OCT[@]}" --data-binary @"$WORK/cfg")"
MT=application/vnd.oci.image.manifest.v1+json
jq -cn --arg c "$dc" --argjson cs "$(stat -c %s "$WORK/cfg")" --arg mt "$MT" \
  '{schemaVersion:2, mediaType:$mt, config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs}, layers:[]}' >"$WORK/man"
dm=sha256:$(sha "$WORK/man")
check_eq "manifest pushed" 201 "$(req PUT "/v2/a/m/manifests/v1" -H "Content-Type: $MT" --data-binary @"$WORK/man")"
check_eq "the manifest as a blob (200)" 200 "$(req GET "/v2/a/m/blobs/$dm")"
check "… its bytes" cmp -s "$B" "$WORK/man"
check_eq "… again (200, cached)" 200 "$(req GET "/v2/a/m/blobs/$dm")"
check_eq "DELETE manifest (202)" 202 "$(req DELETE "/v2/a/m/manifests/$dm")"
check_eq "the manifest as a blob after its DELETE (404)" 404 "$(req GET "/v2/a/m/blobs/$dm")"
check_eq "blob pushed again" 201 "$(req POST "/v2/a/x/blobs/uploads/?digest=$d1" "${OCT[@]}" --data-binary @"$WORK/l1")"
stop_pid "$REGISTRY_PID"

# a restarted registry: nothing cached, a cold GET finds the link and takes the size from
# the data GET itself
DPORT=$(free_port)
registry "$DPORT"
scrape
check_eq "cold GET (200)" 200 "$(req GET "/v2/a/x/blobs/$d1")"
check "cold GET: the bytes pushed" cmp -s "$B" "$WORK/l1"
counted "cold GET" 1 1
check_eq "HEAD after the cold GET: 200 with the size" "200 700000" \
  "$(curl -s -I -m 30 -o /dev/null -D "$WORK/h" -w '%{http_code}' "$URL/v2/a/x/blobs/$d1") $(tr -d '\r' <"$WORK/h" | sed -n 's/^Content-Length: //Ip')"
counted "HEAD after the cold GET" 0 0
stop_pid "$REGISTRY_PID"

# the cache off: every GET asks for the link again (the data is never stat'ed either)
DPORT=$(free_port)
REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR= registry "$DPORT"
scrape
check_eq "GET without the cache (200)" 200 "$(req GET "/v2/a/x/blobs/$d1")"
check_eq "GET without the cache again (200)" 200 "$(req GET "/v2/a/x/blobs/$d1")"
check "… the bytes pushed" cmp -s "$B" "$WORK/l1"
counted "two GETs without the cache" 2 2
stop_pid "$REGISTRY_PID"
done_testing
