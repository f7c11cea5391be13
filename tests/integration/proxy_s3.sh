#!/bin/bash
# The pull-through cache on S3 storage: regfs-registry with the seed's production config
# (Ceph RGW, storage.redirect.disable: true so blobs stream through the registry) and
# regfs.proxies [{prefix: hub, …}] caches a token-protected upstream (Debian's
# docker-registry behind the tests' token issuer, seen through a counting faultproxy).
# skopeo pulls through it with the upstream's digests; every blob object in the bucket
# hashes to its key (read with boto3, not our driver); a second pull by digest makes no
# upstream request; a layer the upstream sends with wrong bytes fails the pull and leaves
# no object naming its digest, then pulls once the fault is cleared; a registry restarted
# on the bucket with the upstream stopped still serves the cached image.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
. "$(dirname "$0")/upload_lib.sh"   # check_s3_blobs
. "$(dirname "$0")/proxy_lib.sh"
proxy_needs
[ "$PROXY_CACHE" = regfs ] || skip_all "the S3 checks are about regfs-registry's cache"
B=proxycache
s3_start "$B"

upstream_start
app=$(make_image "$WORK/oci" app 3 2M 64K 16K) || bail "make_image app"
bad=$(make_image "$WORK/oci" bad 2 1M 16K) || bail "make_image bad"
check "upstream: push lib/app:v1" up_push "$app" lib/app:v1
check "upstream: push lib/bad:v1 (Docker schema 2)" up_push "$bad" lib/bad:v1 "${UP_V2S2[@]}"
up_digests lib/app v1 >"$WORK/up-app" && up_digests lib/bad v1 >"$WORK/up-bad" || fail "read the upstream's images back"

# s3_cache_start — the seed's config on bucket $B, redirect off, the cache's regfs: section
s3_cache_start() {
  local port cfg
  port=$(free_port) || return 1
  cfg=$WORK/s3-cache-$port.yml
  s3_config "$cfg" "$B" "$port" "$(cache_proxies_yaml)" || return 1
  sed -i 's/^  delete:/  redirect:\n    disable: true\n  delete:/' "$cfg"
  cache_serve "$cfg" "$B"
}
s3_cache_start || bail "the cache did not start on S3"

# pull_ok LABEL REF EXPECTED — skopeo pull of the cache's REF, blobs hashing to their names,
# the digests listed in EXPECTED
pull_ok() {
  local d=$WORK/pull-$1
  rm -rf "$d"
  skopeo_copy --all "docker://$CACHE_HOST/$2" "dir:$d" || return 1
  verify_dir_blobs "$d" || return 1
  diff "$3" <(dir_digests "$d")
}
up_reset
check "skopeo: pull hub/lib/app:v1 through the cache on S3, the upstream's digests" \
  pull_ok app "hub/lib/app:v1" "$WORK/up-app"
check_eq "... each of the 4 blobs fetched from the upstream once" "1 1 1 1" \
  "$(for b in $(tail -n +2 "$WORK/up-app"); do up_count GET "^/v2/lib/app/blobs/$b\$"; done | xargs)"
check "every blob object in the bucket hashes to its key (boto3)" check_s3_blobs "$B"
check_eq "the bucket holds the image's blobs (manifest, config, layers)" "" \
  "$(comm -23 <(sort -u "$WORK/up-app") <(s3_blob_keys "$B"))"
up_reset
check "second pull by digest" pull_ok app-2 "hub/lib/app@$(head -n1 "$WORK/up-app")" "$WORK/up-app"; pulled=$?
check_eq "... no upstream request (and the pull worked)" "0 0" "$(up_total) $pulled"

# --- wrong bytes for a layer --------------------------------------------------------------
TOK=$(up_token lib/bad)
L=$(curl -sf -H "Authorization: Bearer $TOK" -H "Accept: $ACCEPT_ALL" "http://$UP_REG_HOST/v2/lib/bad/manifests/v1" | jq -r '.layers[0].digest')
check "faultproxy: corrupt GETs of lib/bad's 1 MB layer" \
  up_rules "[{\"method\":\"GET\",\"path\":\"^/v2/lib/bad/blobs/$L\",\"action\":\"corrupt\"}]"
check_fails "wrong layer bytes: skopeo pull of hub/lib/bad:v1 fails" \
  skopeo_copy "docker://$CACHE_HOST/hub/lib/bad:v1" "dir:$WORK/bad-1"
check "... the upstream was asked for it" test "$(up_count GET "^/v2/lib/bad/blobs/$L\$")" -gt 0
naming() { s3tool ls "$B" | grep -F "${L#sha256:}"; }
check_eq "... no object in the bucket names the layer's digest (polled up to 10 s)" "" \
  "$(wait_for 10 test -z "$(naming)"; naming)"
check "fault cleared" up_rules '[]'
check "skopeo pull of hub/lib/bad:v1 now works, the upstream's digests" pull_ok bad-2 "hub/lib/bad:v1" "$WORK/up-bad"
check "... every blob object hashes to its key" check_s3_blobs "$B"

# --- a new instance on the bucket, the upstream stopped ----------------------------------
stop_pid "$CACHE_PID"
upstream_stop
s3_cache_start || bail "the cache did not restart on S3"
check "upstream stopped, cache restarted on the bucket: hub/lib/app:v1 still pulls, the upstream's digests" \
  pull_ok app-3 "hub/lib/app:v1" "$WORK/up-app"
check_daemon_logs
done_testing
