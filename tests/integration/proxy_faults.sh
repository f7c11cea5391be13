#!/bin/bash
# The pull-through cache against a lying upstream and a crowd of clients. The upstream is
# Debian's docker-registry behind the tests' token issuer, seen through tools/faultproxy.py;
# the cache is regfs-registry with regfs.proxies [{prefix: hub, …}].
#  - the upstream sends wrong bytes (same length, same headers) for one layer: the pull
#    fails, a client reading that blob never gets a complete 200 answer, nothing of it is
#    stored (no path under the root names its digest, no file holds the wrong bytes), the
#    cache logs why; with the fault cleared the same pull works. The same for a manifest
#    fetched by digest and by tag.
#  - 20 clients (10 skopeo, 10 curl) pull one uncached image at once while the upstream
#    answers each blob request late: every blob is fetched from the upstream once, and all
#    20 copies hash to the upstream's digests.
# PROXY_CACHE=docker runs the checks against registry:2's proxy mode (see proxy_lib.sh):
# registry:2 2.8.2 answers the wrong layer bytes as a complete 200 and leaves them in
# its _uploads, and of the 20 concurrent pulls most fail (500) while each blob is
# fetched several times.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/proxy_lib.sh"
proxy_needs

upstream_start
bad=$(make_image "$WORK/oci" bad 3 4M 64K 16K) || bail "make_image bad"
small=$(make_image "$WORK/oci" small 1 16K) || bail "make_image small"
badm=$(make_image "$WORK/oci" badm 2 64K 16K) || bail "make_image badm"
many=$(make_image "$WORK/oci" many 3 1M 256K 64K) || bail "make_image many"
check "upstream: push lib/bad:v1" up_push "$bad" lib/bad:v1 "${UP_OCI[@]}"
check "upstream: push lib/small:v1" up_push "$small" lib/small:v1 "${UP_OCI[@]}"
check "upstream: push lib/badm:v1" up_push "$badm" lib/badm:v1 "${UP_V2S2[@]}"
check "upstream: push lib/many:v1" up_push "$many" lib/many:v1 "${UP_OCI[@]}"
for n in bad small badm many; do up_digests "lib/$n" v1 >"$WORK/up-$n" || fail "upstream: read lib/$n:v1 back"; done
cache_start || bail "the cache did not start"
diag "upstream $UP_HOST (registry $UP_REG_HOST), cache $CACHE_HOST ($PROXY_CACHE)"

# pull_ok LABEL REF EXPECTED — skopeo pull of the cache's REF: blobs hash to their names,
# digests as listed in EXPECTED
pull_ok() {
  local d=$WORK/pull-$1
  rm -rf "$d"
  skopeo_copy --all "docker://$CACHE_HOST/$2" "dir:$d" || return 1
  verify_dir_blobs "$d" || return 1
  diff "$3" <(dir_digests "$d")
}
# paths_naming HEX — every path under the cache's root whose name holds HEX
paths_naming() { find "$CACHE_DATA" -name "*$1*" 2>/dev/null; }
# files_hashing SIZE HEX — files of SIZE bytes under the cache's root whose sha256 is HEX
files_hashing() {
  find "$CACHE_DATA" -type f -size "${1}c" -exec sha256sum {} + 2>/dev/null | awk -v h="$2" '$1 == h { print $2 }'
}

# --- wrong bytes for a layer ----------------------------------------------------------
# wrong_layer WHICH NAME — the first layer of lib/NAME comes with inverted bytes: the pull
# fails, a curl GET never ends as a complete 200, nothing of it is stored, the cache logs
# why. A 4 MB layer is streamed to the client before its hash is known (the answer must
# be cut), a 16 KB one may be refused before a byte is sent (a 502 saying why).
wrong_layer() {
  local which=$1 n=$2 L LHEX LSIZE WRONG code rc got TOK
  TOK=$(up_token "lib/$n")
  curl -sf -H "Authorization: Bearer $TOK" -H "Accept: $ACCEPT_ALL" "http://$UP_REG_HOST/v2/lib/$n/manifests/v1" \
    -o "$WORK/m-$n" || bail "read lib/$n's manifest upstream"
  L=$(jq -r ".layers[0].digest" "$WORK/m-$n"); LHEX=${L#sha256:}
  curl -sfL -H "Authorization: Bearer $TOK" "http://$UP_REG_HOST/v2/lib/$n/blobs/$L" -o "$WORK/layer" || bail "read a layer upstream"
  LSIZE=$(stat -c %s "$WORK/layer")
  # the bytes the faultproxy sends instead: each byte inverted
  WRONG=$(python3 -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha256(d.translate(bytes(255-i for i in range(256)))).hexdigest())' "$WORK/layer")
  check "faultproxy: corrupt GETs of lib/$n's $which layer" \
    up_rules "[{\"method\":\"GET\",\"path\":\"^/v2/lib/$n/blobs/$L\",\"action\":\"corrupt\"}]"
  check_fails "$which layer's bytes wrong: skopeo pull of ${CP}lib/$n:v1 fails" \
    skopeo_copy "docker://$CACHE_HOST/${CP}lib/$n:v1" "dir:$WORK/bad-$n"
  code=$(curl -s -m 60 -o "$WORK/bad-blob" -w '%{http_code}' "$CACHE_URL/v2/${CP}lib/$n/blobs/$L"); rc=$?
  got=$(sha256sum <"$WORK/bad-blob" | cut -d' ' -f1)
  diag "curl of the $which layer: exit $rc, status $code, $(stat -c %s "$WORK/bad-blob") of $LSIZE bytes, hashing to $got"
  check "... curl never gets a complete 200 answer (exit $rc, status $code)" test "$rc" != 0 -o "$code" != 200
  if [ "$code" = 502 ] || [ "$code" = 504 ]; then
    check "... the $code answer says why (the bytes' hash): $(jq -r '.errors[0].message' "$WORK/bad-blob" 2>/dev/null | cut -c1-160)" \
      grep -qiE "hash|corrupt|mismatch|altered" "$WORK/bad-blob"
  fi
  check "... the upstream was asked for the blob (the fault was hit)" test "$(up_count GET "^/v2/lib/$n/blobs/$L\$")" -gt 0
  check_eq "... no path under the root names the layer's digest (polled up to 10 s)" "" \
    "$(wait_for 10 test -z "$(paths_naming "$LHEX")"; paths_naming "$LHEX")"
  check_eq "... no file under the root holds the wrong bytes" "" "$(files_hashing "$LSIZE" "$WRONG")"
  if [ "$PROXY_CACHE" = regfs ]; then
    check "... the cache logged the mismatch, naming the digest" \
      grep -qiE "(${LHEX:0:12}|$L).*(match|verif|hash|digest)|(match|verif|hash|digest).*(${LHEX:0:12}|$L)" \
      <(grep -v " 200 \| 404 " "$CACHE_LOG")
    grep -F "${LHEX:0:12}" "$CACHE_LOG" | grep -v " 200 " | tail -n 2 | cut -c1-300 | while IFS= read -r l; do diag "cache log: $l"; done
  fi
  check "fault cleared" up_rules '[]'
}
wrong_layer "4 MB" bad
wrong_layer "16 KB" small
for n in bad small; do
  check "skopeo pull of ${CP}lib/$n:v1 now works, the upstream's digests" pull_ok "$n-2" "${CP}lib/$n:v1" "$WORK/up-$n"
  check "... its first layer is stored at its digest's path" test -f "$(blob_path "$CACHE_DATA" "$(jq -r '.layers[0].digest' "$WORK/m-$n")")"
done
check "... the stored blobs hash to their digests" verify_store_blobs "$CACHE_DATA"

# --- wrong bytes for a manifest ----------------------------------------------------------
M=$(head -n1 "$WORK/up-badm"); MHEX=${M#sha256:}
check "faultproxy: corrupt GETs of lib/badm's manifests" \
  up_rules '[{"method":"GET","path":"^/v2/lib/badm/manifests/","action":"corrupt"}]'
code=$(curl -s -m 60 -o "$WORK/badm-body" -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "$CACHE_URL/v2/${CP}lib/badm/manifests/$M")
check "wrong manifest bytes, by digest: the cache answers 502 (got $code)" test "$code" = 502
diag "body: $(head -c 300 "$WORK/badm-body")"
check_fails "wrong manifest bytes, by tag: skopeo pull fails" \
  skopeo_copy "docker://$CACHE_HOST/${CP}lib/badm:v1" "dir:$WORK/badm-1"
check_eq "... nothing stored names the manifest's digest" "" "$(paths_naming "$MHEX")"
check "fault cleared" up_rules '[]'
check "skopeo pull of ${CP}lib/badm:v1 now works, the upstream's digests" pull_ok badm-2 "${CP}lib/badm:v1" "$WORK/up-badm"

# --- 20 clients at once -------------------------------------------------------------------
# curl_pull DIR — lib/many:v1 from the cache with curl alone, as a skopeo dir: copy
# (manifest.json and one file per blob); 1 when a request fails or a blob does not hash
curl_pull() {
  local d=$1 b
  mkdir -p "$d" || return 1
  curl -sSf -m 120 -H "Accept: $ACCEPT_ALL" "$CACHE_URL/v2/${CP}lib/many/manifests/v1" -o "$d/manifest.json" || return 1
  for b in $(jq -r '.config.digest, .layers[].digest' "$d/manifest.json"); do
    curl -sSfL -m 120 "$CACHE_URL/v2/${CP}lib/many/blobs/$b" -o "$d/${b#sha256:}" || return 1
  done
}
up_reset
check "faultproxy: every lib/many blob answered 2 s late" \
  up_rules '[{"method":"GET","path":"^/v2/lib/many/blobs/","action":"delay","seconds":2}]'
pids=()
for i in $(seq 1 10); do
  skopeo_copy "docker://$CACHE_HOST/${CP}lib/many:v1" "dir:$WORK/many-s$i" >"$WORK/many-s$i.log" 2>&1 &
  pids+=($!)
  curl_pull "$WORK/many-c$i" >"$WORK/many-c$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
check_eq "20 concurrent pulls of ${CP}lib/many:v1 (10 skopeo, 10 curl): all succeed" 0 "$failed"
[ "$failed" = 0 ] || diag "$(cat "$WORK"/many-*.log | cut -c1-200 | sort | uniq -c | sort -rn | head -n 10)"
good=0
for d in "$WORK"/many-s* "$WORK"/many-c*; do
  [ -d "$d" ] || continue
  verify_dir_blobs "$d" >/dev/null 2>&1 && diff -q "$WORK/up-many" <(dir_digests "$d") >/dev/null 2>&1 && good=$((good + 1))
done
check_eq "... all 20 copies hash to the upstream's digests" 20 "$good"
counts=$(for b in $(tail -n +2 "$WORK/up-many"); do up_count GET "^/v2/lib/many/blobs/$b\$"; done | xargs)
check_eq "... each of the 4 blobs was fetched from the upstream once" "1 1 1 1" "$counts"
# the tag may be revalidated (HEAD) by a client that comes after revalidate; its bytes
# are fetched once
check_eq "... the manifest was fetched (GET) from the upstream once" 1 "$(up_count GET '^/v2/lib/many/manifests/')"
diag "upstream manifest requests for lib/many: $(up_log | grep '/v2/lib/many/manifests/' | paste -sd, -)"
up_rules '[]'
check "the cache's stored blobs all hash to their digests" verify_store_blobs "$CACHE_DATA"
check_daemon_logs
done_testing
