#!/bin/bash
# The pull-through cache follows its upstream and outlives it. The upstream is Debian's
# docker-registry behind the tests' token issuer, seen through a counting faultproxy; the
# cache is regfs-registry with regfs.proxies [{prefix: hub, revalidate: 3s, …}].
#  - a tag pushed upstream after the cache was filled shows through the cache (and in its
#    tags list), and a tag
#    moved upstream to another image is served at its new digest after revalidation
#    (both polled with a bound, never timed);
#  - with the upstream stopped (connection refused), cached images still pull (skopeo by
#    tag and by digest, podman through its mirror) with the upstream's digests, the tags
#    list is the stored one, the cache
#    logs that it served a tag as last seen, and an image never cached fails with 502 or
#    504 and a registry error body; with the upstream back, that image pulls.
# PROXY_CACHE=docker runs the checks against registry:2's proxy mode (see proxy_lib.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/proxy_lib.sh"
proxy_needs

upstream_start
for n in a1 a2 a3 u; do
  eval "img_$n=\$(make_image \"\$WORK/oci\" $n 2 128K 32K)" || bail "make_image $n"
done
check "upstream: push lib/app:v1" up_push "$img_a1" lib/app:v1 "${UP_OCI[@]}"
check "upstream: push lib/other:v1 (never pulled through the cache)" up_push "$img_u" lib/other:v1 "${UP_V2S2[@]}"
cache_start || bail "the cache did not start"
diag "upstream $UP_HOST (registry $UP_REG_HOST), cache $CACHE_HOST ($PROXY_CACHE)"

# cache_digest NAME REF — the digest the cache answers for a manifest HEAD (empty if none)
cache_digest() {
  curl -s -m 20 -I -H "Accept: $ACCEPT_ALL" "$CACHE_URL/v2/$1/manifests/$2" | tr -d '\r' |
    awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
# digest_is NAME REF DIGEST — the cache answers DIGEST for NAME:REF (for wait_for)
digest_is() { [ "$(cache_digest "$1" "$2")" = "$3" ]; }
# pull_matches LABEL REF UPNAME UPREF — skopeo pull of the cache's REF equals the upstream's
pull_matches() {
  local d=$WORK/pull-$1
  rm -rf "$d"
  skopeo_copy --all "docker://$CACHE_HOST/$2" "dir:$d" || return 1
  verify_dir_blobs "$d" || return 1
  diff <(up_digests "$3" "$4") <(dir_digests "$d")
}

check "skopeo: pull ${CP}lib/app:v1 through the cache" pull_matches v1 "${CP}lib/app:v1" lib/app v1
V1_OLD=$(up_digest lib/app v1)

# --- a new tag upstream shows through the cache ------------------------------------------
check "upstream: push lib/app:v2 (a new tag)" up_push "$img_a2" lib/app:v2 "${UP_OCI[@]}"
V2=$(up_digest lib/app v2)
check "the cache answers ${CP}lib/app:v2 with the upstream's digest (polled up to 30 s)" \
  wait_for 30 digest_is "${CP}lib/app" v2 "$V2"
check "skopeo: pull ${CP}lib/app:v2: the upstream's digests" pull_matches v2 "${CP}lib/app:v2" lib/app v2
# cache_tags NAME — the cache's tags list of NAME, sorted, one line
cache_tags() { curl -sf -m 20 "$CACHE_URL/v2/$1/tags/list" | jq -r '.tags // [] | sort | join(" ")'; }
tags_are() { [ "$(cache_tags "$1")" = "$2" ]; }
check "the cache's tags list of ${CP}lib/app is the upstream's, v1 v2 (polled up to 30 s)" \
  wait_for 30 tags_are "${CP}lib/app" "v1 v2"

# --- a tag moved upstream is seen after revalidation --------------------------------------
check "upstream: move lib/app:v1 to another image" up_push "$img_a3" lib/app:v1 "${UP_OCI[@]}"
V1_NEW=$(up_digest lib/app v1)
check "... the upstream's v1 changed" test "$V1_NEW" != "$V1_OLD"
check "the cache answers ${CP}lib/app:v1 with the new digest (polled up to 30 s; revalidate is 3 s)" \
  wait_for 30 digest_is "${CP}lib/app" v1 "$V1_NEW"
check "skopeo: pull ${CP}lib/app:v1: the new image's digests" pull_matches v1-new "${CP}lib/app:v1" lib/app v1
check "the old v1 still pulls by digest" pull_matches v1-old "${CP}lib/app@$V1_OLD" lib/app "$V1_OLD"

# podman fills its store while the upstream is up (a baseline for the pull below)
if command -v podman >/dev/null 2>&1; then
  podman_setup "$FRONT_HOST${CP:+/${CP%/}}"
  { echo "$V1_NEW"; up_diff_ids lib/app v1; } >"$WORK/up-v1.facts"
fi

# --- the upstream stopped: cached content still served -----------------------------------
up_blobs lib/app v1 >"$WORK/up-v1.blobs"
up_digests lib/app v1 >"$WORK/up-v1.d"
up_digests lib/app v2 >"$WORK/up-v2.d"
up_digests lib/app "$V1_OLD" >"$WORK/up-v1-old.d"
upstream_stop
check_eq "upstream stopped: its address refuses connections" 000 \
  "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$UP_URL/v2/")"
# revalidate is 3 s: after 4 s the next pull by tag must ask the (stopped) upstream
sleep 4
down_pull() {
  local d=$WORK/down-$1
  skopeo_copy --all "docker://$CACHE_HOST/$2" "dir:$d" || return 1
  verify_dir_blobs "$d" || return 1
  diff "$3" <(dir_digests "$d")
}
check "upstream down: skopeo pulls ${CP}lib/app:v1 (tag as last seen), the upstream's digests" \
  down_pull v1 "${CP}lib/app:v1" "$WORK/up-v1.d"
check "upstream down: skopeo pulls ${CP}lib/app:v2" down_pull v2 "${CP}lib/app:v2" "$WORK/up-v2.d"
check_eq "upstream down: the tags list of ${CP}lib/app is the stored one" "v1 v2" "$(cache_tags "${CP}lib/app")"
check "upstream down: skopeo pulls the old v1 by digest" down_pull v1-old "${CP}lib/app@$V1_OLD" "$WORK/up-v1-old.d"
if command -v podman >/dev/null 2>&1; then
  check "upstream down: podman pulls $UP_HOST/lib/app:v1 through its mirror" \
    podman_x down pull -q "$UP_HOST/lib/app:v1"
  podman_facts down "$UP_HOST/lib/app:v1" >"$WORK/down.facts" 2>&1
  check_files "... the upstream's digest and diff IDs" "$WORK/up-v1.facts" "$WORK/down.facts"
fi
if [ "$PROXY_CACHE" = regfs ]; then
  check "the cache logged that it served lib/app's tag with the upstream down" \
    grep -qiE "hub/lib/app.*(upstream|last seen)|(upstream|last seen).*hub/lib/app" "$CACHE_LOG"
  grep -iE "upstream|last seen" "$CACHE_LOG" | tail -n 3 | cut -c1-300 | while IFS= read -r l; do diag "cache log: $l"; done
fi
code=$(curl -s -o "$WORK/down-body" -m 60 -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "$CACHE_URL/v2/${CP}lib/other/manifests/v1")
check "upstream down: a manifest never cached answers 502 or 504 (got $code)" grep -qxE '502|504' <<<"$code"
check "... with a registry error body" jq -e '.errors[0].code and .errors[0].message' "$WORK/down-body"
diag "body: $(head -c 300 "$WORK/down-body")"
check_fails "upstream down: skopeo cannot pull it" skopeo_copy "docker://$CACHE_HOST/${CP}lib/other:v1" "dir:$WORK/down-other"

# --- the upstream back ---------------------------------------------------------------------
# (not inside check: a process started in its $( … ) would escape the cleanup)
if upstream_restart; then ok "the upstream restarts"; else fail "the upstream restarts"; fi
check "upstream back: skopeo pulls ${CP}lib/other:v1, the upstream's digests" \
  pull_matches other "${CP}lib/other:v1" lib/other v1
check "the cache's stored blobs all hash to their digests" verify_store_blobs "$CACHE_DATA"
check_daemon_logs
done_testing
