#!/bin/bash
# regfs-registry under hostile HTTP: raw requests (tools/rawhttp.py, python sockets) with
# control characters in the decoded path, conflicting/repeated Content-Length,
# Content-Length with Transfer-Encoding, malformed header names, unsupported
# Transfer-Encoding, Content-Range that does not match the body, and the absolute-form
# request target; then the regfs.limits bounds (tools/limits_clients.py): random bytes and
# a TLS ClientHello on the plain port, an empty header name, header count/size and request
# line over the limits, manifest size and JSON depth, upload size, uploads in flight per
# client, connections per address, slowloris sockets while another client is served, a
# client half-closing mid-upload, and the resident memory after 200 GETs of a 1.5 MB
# manifest. Afterwards the blob and manifest stored before are unchanged (sha256sum of
# what the API serves, computed here) and the registry still serves.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"  # check_daemon_logs
need_regfs_registry
RAW=$REGFS_SRC/tests/integration/tools/rawhttp.py
raw() { with_timeout 30 python3 "$RAW" "$REGISTRY_HOST" "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# check_in NAME ACTUAL ALLOWED… — ok when ACTUAL is one of ALLOWED
check_in() {
  local n=$1 a=$2; shift 2
  case " $* " in *" $a "*) ok "$n" ;; *) fail "$n" "expected one of: $*"; diag "actual: $a" ;; esac
}

LIM=$REGFS_SRC/tests/integration/tools/limits_clients.py
lim() { with_timeout 60 python3 "$LIM" "$1" "$REGISTRY_HOST" "${@:2}"; }
start_regfs_registry "$WORK/data" "regfs:
  limits:
    uploadsize: 1MiB
    uploadsperclient: 2
    connsperclient: 64
    requesttimeout: 3s
    idletimeout: 3s" || bail "regfs-registry starts"
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$REGISTRY_PID/status"; }
RSS0=$(rss)
H=$REGISTRY_HOST; R=t/hostile
# --- stored before: a blob and a manifest tagged v1 ---------------------------------------
head -c 4096 /dev/urandom >"$WORK/blob"; BD=sha256:$(sha "$WORK/blob")
printf '{}' >"$WORK/cfg"; CD=sha256:$(sha "$WORK/cfg")
for f in blob cfg; do
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/$f" \
    "http://$H/v2/$R/blobs/uploads/?digest=sha256:$(sha "$WORK/$f")" || bail "blob push"
done
MT=application/vnd.oci.image.manifest.v1+json
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":4096}]}' \
  "$MT" "$CD" "$BD" >"$WORK/man"
MD=sha256:$(sha "$WORK/man"); ML=$(stat -c %s "$WORK/man")
curl -sf -o /dev/null -X PUT -H "Content-Type: $MT" --data-binary @"$WORK/man" "http://$H/v2/$R/manifests/v1" || bail "manifest push"
MAN=$(cat "$WORK/man")

# --- 1. control characters in the decoded path -------------------------------------------
for c in %00 %0a %1f %7f; do
  check_in "GET blob digest$c → 400/404" "$(raw "GET /v2/$R/blobs/$BD$c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | cut -d' ' -f1)" 400 404
  check_in "GET manifest v1${c}junk → 400/404" "$(raw "GET /v2/$R/manifests/v1${c}junk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | cut -d' ' -f1)" 400 404
done
check_in "PUT manifest a%00b → 400/404" "$(raw "PUT /v2/$R/manifests/a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: $MT\r\nContent-Length: $ML\r\n\r\n$MAN" | cut -d' ' -f1)" 400 404
check_eq "PUT a%00b created no tag a" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://$H/v2/$R/manifests/a")"

# --- 2. framing: Content-Length conflicts, CL with TE, header-name syntax ---------------
UP="POST /v2/$R/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
SMUG="GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
check_eq "conflicting Content-Length → 400, one response, closed" "400 1 closed" \
  "$(raw "${UP}Content-Length: 5\r\nContent-Length: 10\r\n\r\nAAAAA$SMUG")"
check_eq "repeated Content-Length → 400, closed" "400 1 closed" \
  "$(raw "${UP}Content-Length: 5\r\nContent-Length: 5\r\n\r\nAAAAA")"
# libmicrohttpd refuses this one itself, before any handler (its 400 comes with its
# header block written twice: the response count is not checked)
check_eq "Content-Length list '5, 5' → 400, closed" "400 closed" \
  "$(raw "${UP}Content-Length: 5, 5\r\n\r\nAAAAA" | cut -d' ' -f1,3)"
check_eq "Content-Length with Transfer-Encoding → 400, closed" "400 1 closed" \
  "$(raw "${UP}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nAAAAA\r\n0\r\n\r\n$SMUG")"
check_eq "'Name : value' (space before the colon) → 400, closed" "400 1 closed" \
  "$(raw "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Test : 1\r\n\r\n")"
check_eq "empty header name → 400, closed" "400 1 closed" \
  "$(raw "GET /v2/ HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n")"
# --- 3. Transfer-Encoding other than plain chunked → 501 at once ------------------------
check_eq "Transfer-Encoding: gzip, chunked → 501, closed" "501 1 closed" \
  "$(raw "${UP}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nAAAAA\r\n0\r\n\r\n")"

# --- 4. Content-Range must match the body exactly ----------------------------------------
LOC=$(curl -s -D - -o /dev/null -X POST "http://$H/v2/$R/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
LOC=${LOC#http://$H}
[ -n "$LOC" ] || bail "upload session starts"
check_eq "PATCH Content-Range 0-99 with 10 bytes → 416" 416 \
  "$(raw "PATCH $LOC HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Range: 0-99\r\nContent-Length: 10\r\n\r\n0123456789" | cut -d' ' -f1)"
LOC2=$(curl -s -D - -o /dev/null -X POST "http://$H/v2/$R/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
LOC2=${LOC2#http://$H}
check_eq "PATCH Content-Range 0-99999999999999999999999 → 416" 416 \
  "$(raw "PATCH $LOC2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Range: 0-99999999999999999999999\r\nContent-Length: 10\r\n\r\n0123456789" | cut -d' ' -f1)"
check_eq "PATCH Content-Range 0-9 with 10 bytes → 202" 202 \
  "$(raw "PATCH $LOC HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Range: 0-9\r\nContent-Length: 10\r\n\r\n0123456789" | cut -d' ' -f1)"
check_eq "upload holds exactly the accepted 10 bytes" "0-9" \
  "$(curl -s -D - -o /dev/null "http://$H$LOC" | tr -d '\r' | sed -n 's/^[Rr]ange: *//p')"

# --- 5. absolute-form request target --------------------------------------------------------
check_eq "GET http://host:port/v2/ (absolute form) → 200" 200 \
  "$(raw "GET http://$H/v2/ HTTP/1.1\r\nHost: $H\r\nConnection: close\r\n\r\n" | cut -d' ' -f1)"

# --- 6. not HTTP at all: answered 400 and closed at once, not when the client gives up --
garbage() { python3 -c 'import os,sys; b=bytearray(os.urandom(2048)); b[0]|=0x80; sys.stdout.buffer.write(b)' | od -An -v -tx1 | tr -s ' \n' '  ' | sed 's/ \([0-9a-f][0-9a-f]\)/\\x\1/g'; }
check_eq "2 KB of random bytes → 400, closed within 2 s" "400 1 closed" \
  "$(RAWHTTP_WAIT=2 raw "$(garbage)")"
HELLO='\x16\x03\x01\x00\xc4\x01\x00\x00\xc0\x03\x03'$(printf '\\x%02x' $(seq 1 32))'\x00\x00\x02\x13\x01\x01\x00'
check_eq "TLS ClientHello on the plain port → 400, closed within 2 s" "400 1 closed" \
  "$(RAWHTTP_WAIT=2 raw "$HELLO")"
check_eq "the ClientHello is logged" 1 "$(grep -c 'a client speaks TLS to the plain-HTTP port' "$REGISTRY_LOG")"

# --- 7. header count, header size, request line over regfs.limits ----------------------
many=$(for i in $(seq 1 150); do printf 'X-H%d: 1\\r\\n' "$i"; done)
check_eq "150 header fields (regfs.limits.headers 100) → 431" 431 \
  "$(raw "GET /v2/ HTTP/1.1\r\nHost: x\r\n${many}Connection: close\r\n\r\n" | cut -d' ' -f1)"
big=$(head -c 20000 /dev/zero | tr '\0' a)
check_eq "20 KB of header fields (regfs.limits.headersize 16KiB) → 431" 431 \
  "$(raw "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: $big\r\nConnection: close\r\n\r\n" | cut -d' ' -f1)"
long=$(head -c 9000 /dev/zero | tr '\0' a)
check_eq "9000-byte request target (regfs.limits.requestline 8KiB) → 414" 414 \
  "$(raw "GET /v2/$long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | cut -d' ' -f1)"
huge=$(head -c 40000 /dev/zero | tr '\0' a)
check_eq "40000-byte request target (beyond the whole header buffer) → 414, closed" "414 1 closed" \
  "$(raw "GET /v2/$huge HTTP/1.1\r\nHost: x\r\n\r\n")"
check_eq "the refusals name their limit keys" 4 \
  "$(grep -c 'regfs.limits.headers \|regfs.limits.headersize\|regfs.limits.requestline' "$REGISTRY_LOG")"

# --- 8. manifest size and JSON depth --------------------------------------------------------
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$WORK/huge"
check_eq "5 MB manifest (regfs.limits.manifestsize 4MiB) → 413" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $MT" --data-binary @"$WORK/huge" "http://$H/v2/$R/manifests/huge")"
check_eq "the 5 MB manifest stored no tag" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://$H/v2/$R/manifests/huge")"
python3 -c 'print("[" * 100000 + "]" * 100000)' >"$WORK/bomb"
check_eq "JSON bomb of 100k '[' → 400 MANIFEST_INVALID" "400 MANIFEST_INVALID" \
  "$(curl -s -o "$WORK/bomb.out" -w '%{http_code}' -X PUT -H "Content-Type: $MT" --data-binary @"$WORK/bomb" "http://$H/v2/$R/manifests/bomb") $(jq -r '.errors[0].code' "$WORK/bomb.out")"
deep=$(python3 -c 'print("{\"schemaVersion\":2,\"annotations\":{\"a\":\"b\"},\"x\":" + "[" * 65 + "]" * 65 + "}")')
check_eq "manifest nested 66 deep (regfs.limits.jsondepth 64) → 400 MANIFEST_INVALID" "400 MANIFEST_INVALID" \
  "$(curl -s -o "$WORK/deep.out" -w '%{http_code}' -X PUT -H "Content-Type: $MT" --data-binary "$deep" "http://$H/v2/$R/manifests/deep") $(jq -r '.errors[0].code' "$WORK/deep.out")"
check_eq "the manifest refusals are logged with their limit keys" 3 \
  "$(grep -c 'manifest PUT .* from 127.0.0.1 refused (4[01][03]): .*regfs.limits.\(manifestsize\|jsondepth\)' "$REGISTRY_LOG")"

# --- 9. upload size: refused, nothing stored ----------------------------------------------
uploads_stored() { find "$WORK/data" -path '*/_uploads/*' -name data | wc -l; }
U0=$(uploads_stored)
head -c $((2 * 1024 * 1024)) /dev/urandom >"$WORK/big2m"
BIGD=sha256:$(sha "$WORK/big2m")
check_eq "2 MiB monolithic upload (regfs.limits.uploadsize 1MiB) → 413" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/big2m" "http://$H/v2/$R/blobs/uploads/?digest=$BIGD")"
LOC3=$(curl -s -D - -o /dev/null -X POST "http://$H/v2/$R/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
LOC3=${LOC3#http://$H}
curl -s -o /dev/null -X PATCH -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
  --data-binary @"$WORK/big2m" "http://$H$LOC3"
check_eq "chunked 2 MiB PATCH over the limit: the upload is removed" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://$H$LOC3")"
check_eq "the 2 MiB blob is not stored" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://$H/v2/$R/blobs/$BIGD")"
check_eq "no upload data left behind by the refused uploads" "$U0" "$(uploads_stored)"

# --- 10. uploads in flight per client --------------------------------------------------------
new_upload() { curl -s -D - -o /dev/null -X POST "http://$H/v2/t/hold/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p' | sed "s#^http://$H##"; }
HU1=$(new_upload); HU2=$(new_upload)
check_eq "third upload while two are in flight (regfs.limits.uploadsperclient 2) → 429" 429 \
  "$(lim hold "$HU1,$HU2" 2)"
check_eq "an upload after they end → 202" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$H/v2/t/hold/blobs/uploads/")"

# --- 11. connections per address -------------------------------------------------------------
check_eq "65th keep-alive connection from one address (connsperclient 64) → closed unanswered" \
  "kept 64 extra none" "$(lim connlimit 127.0.0.3 64)"
check_eq "another address is still served" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://$H/v2/")"

# --- 12. slowloris: 500 sockets sending a byte a second, cut after requesttimeout --------
read -r _ OPENED _ CLOSED _ SERVED _ FAILED <<<"$(lim slowloris 500 12)"
diag "slowloris: opened $OPENED, closed by the server $CLOSED, loop served $SERVED, failed $FAILED"
check_eq "every slowloris socket was closed by the server (requesttimeout 3s)" "$OPENED" "$CLOSED"
check_eq "meanwhile every GET /v2/ from another address got 200" "0" "$FAILED"
check_eq "the cut is logged with its limit key" 1 \
  "$(grep -m1 -c 'did not arrive within regfs.limits.requesttimeout' "$REGISTRY_LOG")"

check_eq "a keep-alive connection sending its next request a byte a second is closed" closed \
  "$(lim slowkeep 12)"
check_eq "that cut is logged with its limit key" 1 \
  "$(grep -m1 -c 'keep-alive connection(s) that sent no complete request within regfs.limits.requesttimeout' "$REGISTRY_LOG")"

# --- 13. a client half-closing mid-body -------------------------------------------------------
LOC4=$(new_upload)
check_eq "PATCH half-closed after 10000 of 100000 bytes: the connection closes at once" closed \
  "$(lim halfclose "$LOC4" 100000 10000)"
check_eq "the cut is logged" 1 "$(grep -c "upload ${LOC4##*/} in t/hold: the request from 127.0.0.1 ended before its body did" "$REGISTRY_LOG")"
END=$(curl -s -D - -o /dev/null "http://$H$LOC4" | tr -d '\r' | sed -n 's/^[Rr]ange: *0-//p')
KEPT=$((END + 1))
diag "the upload kept $KEPT bytes"
head -c 10000 /dev/zero | tr '\0' h >"$WORK/hc"; head -c 5000 /dev/urandom >>"$WORK/hc"
HCD=sha256:$(sha "$WORK/hc")
tail -c +$((KEPT + 1)) "$WORK/hc" >"$WORK/hc.rest"
check_eq "the upload resumes at the offset it reports and finishes with the right digest" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/hc.rest" "http://$H$LOC4?digest=$HCD")"
check_eq "the finished blob has the content sent" "${HCD#sha256:}" "$(curl -sf "http://$H/v2/t/hold/blobs/$HCD" | sha256sum | cut -d' ' -f1)"
LOC5=$(new_upload)
check_eq "PATCH that stops sending mid-body is closed after regfs.limits.idletimeout" closed \
  "$(lim stall "$LOC5" 100000 1000 12)"
check_eq "that cut is logged" 1 "$(grep -c "upload ${LOC5##*/} in t/hold: the request from 127.0.0.1 ended before its body did" "$REGISTRY_LOG")"

# --- 14. memory: 200 GETs of a 1.5 MB manifest -----------------------------------------------
python3 -c 'import json,sys; print(json.dumps({"schemaVersion":2,"mediaType":sys.argv[1],"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":sys.argv[2],"size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":sys.argv[3],"size":4096}],"annotations":{"big":"b"*1500000}}, separators=(",",":")), end="")' "$MT" "$CD" "$BD" >"$WORK/bigman"
BMD=sha256:$(sha "$WORK/bigman")
check_eq "1.5 MB manifest pushed" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $MT" --data-binary @"$WORK/bigman" "http://$H/v2/$R/manifests/big")"
RSS1=$(rss)
read -r _ GOK _ GBUSY _ GBAD <<<"$(lim gets "/v2/$R/manifests/big" 200 32)"
diag "200 GETs: $GOK answered 200, $GBUSY 503 (regfs.limits.largereads), $GBAD otherwise"
check_eq "200 GETs of it, 32 at a time: each 200 or 503 Retry-After, nothing else" 0 "$GBAD"
RSS2=$(rss)
diag "VmRSS: at start ${RSS0} kB, before the GETs ${RSS1} kB, after ${RSS2} kB"
# 64 MB, or 256 MB for a sanitizer build (ASan's own allocator, shadow and quarantine;
# mallopt does not reach it) (ldd's output taken whole: pipefail and grep -q)
RSS_MAX=$(case $(ldd "$REGFS_REGISTRY" 2>/dev/null) in *libasan*) echo 256 ;; *) echo 64 ;; esac)
check_eq "VmRSS after the GETs stays under $RSS_MAX MB" yes "$([ "$RSS2" -lt $((RSS_MAX * 1024)) ] && echo yes || echo "no: $RSS2 kB")"
check_eq "the big manifest is served intact" "${BMD#sha256:}" "$(curl -sf -H "Accept: $MT" "http://$H/v2/$R/manifests/big" | sha256sum | cut -d' ' -f1)"

# --- afterwards: stored data unchanged, the registry still serves ------------------------
check_eq "blob unchanged" "${BD#sha256:}" "$(curl -sf "http://$H/v2/$R/blobs/$BD" | sha256sum | cut -d' ' -f1)"
check_eq "manifest v1 unchanged" "${MD#sha256:}" "$(curl -sf -H "Accept: $MT" "http://$H/v2/$R/manifests/v1" | sha256sum | cut -d' ' -f1)"
check_eq "tags are only v1 and big" '["big","v1"]' "$(curl -sf "http://$H/v2/$R/tags/list" | jq -c .tags)"
check_eq "GET /v2/ still 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://$H/v2/")"
check_daemon_logs
done_testing
