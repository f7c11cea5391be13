#!/bin/bash
# The pull-through cache with real clients. The upstream is Debian's docker-registry
# behind the tests' token issuer (user alice), seen through a counting faultproxy;
# regfs-registry caches it under the prefix hub/ (regfs.proxies, alice's credentials)
# and takes pushes to its other names. skopeo (by tag), podman (a registries.conf
# mirror) and containerd (a hosts.toml mirror: ?ns=<upstream host>) each pull an image
# nobody pulled before: every manifest and blob digest equals the upstream's, read
# straight from it. Each client's second pull of the same digests (a fresh client store)
# makes no upstream request. The config file of registry:2's proxy mode (`proxy:`, the
# whole namespace) works on regfs-registry too. PROXY_CACHE=docker runs the same checks against
# registry:2's proxy mode (names without the prefix), which checks the script itself:
# there, podman's and containerd's first pulls by tag fail (registry:2 2.8 HEADs the
# upstream's tag without an Accept header, gets schema 1 back and answers 500), so
# their "second" pulls are first pulls, and each blob is fetched twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/proxy_lib.sh"
proxy_needs

# --- the upstream: three single-platform images, one 2-platform index, token-protected
upstream_start
check_eq "upstream: an anonymous request is refused (401: the token flow is needed)" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$UP_URL/v2/")"
for n in app pod ctr; do
  img=$(make_image "$WORK/oci" "$n" 3 256K 64K 16K) || bail "make_image $n"
  if [ $n = app ]; then fmt=("${UP_OCI[@]}"); else fmt=("${UP_V2S2[@]}"); fi
  check "upstream: push lib/$n:v1 (3 layers of random bytes; ${fmt[*]:-OCI})" up_push "$img" "lib/$n:v1" "${fmt[@]}"
  up_digests "lib/$n" v1 >"$WORK/up-$n" || fail "upstream: read lib/$n:v1 back"
done
idx=$(make_index "$WORK/oci" multi) || bail "make_index"
check "upstream: push lib/multi:m (an index of linux/amd64 and linux/arm64)" up_push "$idx" lib/multi:m --all "${UP_OCI[@]}"
up_digests lib/multi m >"$WORK/up-multi" || fail "upstream: read lib/multi:m back"
check_eq "upstream: the index lists 2 manifests, 4 layers, 2 configs" 8 "$(($(wc -l <"$WORK/up-multi") - 1))"

cache_start || bail "the cache did not start"
diag "upstream $UP_HOST (registry $UP_REG_HOST), cache $CACHE_HOST ($PROXY_CACHE), front $FRONT_HOST"

# --- a local repository on the same instance ---------------------------------------------
if [ "$PROXY_CACHE" = regfs ]; then
  loc=$(make_image "$WORK/oci" local 2 64K 16K) || bail "make_image local"
  check "cache instance: push team/local:v1 (an ordinary repository)" \
    skopeo_copy "$loc" "docker://$CACHE_HOST/team/local:v1"
  check "cache instance: pull team/local:v1 back" skopeo_copy "docker://$CACHE_HOST/team/local:v1" "dir:$WORK/local"
  check "... its blobs hash to their names" verify_dir_blobs "$WORK/local"
  check_eq "... its manifest digest is the pushed one" "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "local") | .digest' "$WORK/oci/index.json")" \
    "$(head -n1 <(dir_digests "$WORK/local"))"
  check_fails "cache instance: a push under hub/ is refused" \
    skopeo_copy "$loc" "docker://$CACHE_HOST/hub/lib/local:v1"
  check_eq "... the upstream got nothing" "" "$(up_raw lib/local v1 2>/dev/null)"
  check_eq "... a manifest PUT under hub/ answers 405 UNSUPPORTED" "405 UNSUPPORTED" \
    "$(curl -s -o "$WORK/put-body" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
      --data-binary '{"schemaVersion":2}' "$CACHE_URL/v2/hub/lib/local/manifests/v1") $(jq -r '.errors[0].code' "$WORK/put-body" 2>/dev/null)"
fi

# --- skopeo, by tag ------------------------------------------------------------------------
up_reset
check "skopeo: pull ${CP}lib/app:v1 through the cache" \
  skopeo_copy "docker://$CACHE_HOST/${CP}lib/app:v1" "dir:$WORK/sk-app"
dir_digests "$WORK/sk-app" >"$WORK/sk-app.d"
check_files "skopeo: the manifest and every blob digest equal the upstream's" "$WORK/up-app" "$WORK/sk-app.d"
check "skopeo: every blob's bytes hash to its digest" verify_dir_blobs "$WORK/sk-app"
check_eq "skopeo: the cache fetched each of the 4 blobs from the upstream once" \
  "1 1 1 1" "$(for b in $(tail -n +2 "$WORK/up-app"); do up_count GET "^/v2/lib/app/blobs/$b\$"; done | xargs)"
check "skopeo: pull ${CP}lib/multi:m --all (the index and both platforms)" \
  skopeo_copy --all "docker://$CACHE_HOST/${CP}lib/multi:m" "dir:$WORK/sk-multi"
dir_digests "$WORK/sk-multi" >"$WORK/sk-multi.d"
check_files "skopeo: the index, both manifests and every blob digest equal the upstream's" \
  "$WORK/up-multi" "$WORK/sk-multi.d"
check "skopeo: every blob's bytes hash to its digest (index)" verify_dir_blobs "$WORK/sk-multi"

# second pull, by digest: nothing asked upstream
for n in app multi; do
  dg=$(head -n1 "$WORK/up-$n")
  up_reset
  check "skopeo: second pull of lib/$n by digest" \
    skopeo_copy --all "docker://$CACHE_HOST/${CP}lib/$n@$dg" "dir:$WORK/sk-$n-2"; pulled=$?
  dir_digests "$WORK/sk-$n-2" >"$WORK/sk-$n-2.d"
  check_files "... the same digests" "$WORK/up-$n" "$WORK/sk-$n-2.d"
  check_eq "... no upstream request (and the pull worked)" "0 0" "$(up_total) $pulled"
  [ "$(up_total)" = 0 ] || diag "$(up_log)"
done

# --- podman, with a registries.conf mirror -----------------------------------------------
if command -v podman >/dev/null 2>&1; then
  mirror=$FRONT_HOST${CP:+/${CP%/}}
  podman_setup "$mirror"
  up_reset; front_reset
  check "podman: pull $UP_HOST/lib/pod:v1 (mirror $mirror)" podman_x p1 pull -q "$UP_HOST/lib/pod:v1"
  { head -n1 "$WORK/up-pod"; up_diff_ids lib/pod v1; } >"$WORK/up-pod.facts"
  podman_facts p1 "$UP_HOST/lib/pod:v1" >"$WORK/pod.facts" 2>&1
  check_files "podman: the image's digest and layer diff IDs equal the upstream's" "$WORK/up-pod.facts" "$WORK/pod.facts"
  check "podman: the manifest came from the mirror" \
    grep -qE "^GET /v2/${CP}lib/pod/manifests/v1 200\$" <(front_log)
  check_eq "podman: no request of its own reached the upstream (only the cache's, for lib/pod's manifest and 4 blobs)" \
    "" "$(up_log | grep -vE "^(GET|HEAD) /v2/(lib/pod/(manifests/v1|blobs/sha256:[0-9a-f]{64})|) [0-9]+\$")"
  dg=$(head -n1 "$WORK/up-pod")
  up_reset; front_reset
  check "podman: second pull by digest into an empty store" podman_x p2 pull -q "$UP_HOST/lib/pod@$dg"; pulled=$?
  podman_facts p2 "$UP_HOST/lib/pod@$dg" >"$WORK/pod2.facts" 2>&1
  check_files "... the same digest and diff IDs" "$WORK/up-pod.facts" "$WORK/pod2.facts"
  check "... its blobs came from the mirror" grep -qE "^GET /v2/${CP}lib/pod/blobs/sha256:[0-9a-f]{64} 200\$" <(front_log)
  check_eq "... no upstream request (and the pull worked)" "0 0" "$(up_total) $pulled"
  [ "$(up_total)" = 0 ] || diag "$(up_log)"
else
  log "podman checks skipped: podman not installed"
fi

# --- containerd, with a hosts.toml mirror (?ns=) ----------------------------------------
if command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1; then
  if ctr_start; then
    ns_rx="\\?ns=127\\.0\\.0\\.1(:|%3A)$UP_PORT"
    up_reset; front_reset
    check "containerd: ctr pull $UP_HOST/lib/ctr:v1 (mirror $FRONT_HOST)" ctr_pull cold "$UP_HOST/lib/ctr:v1"
    ctr_digests cold "$UP_HOST/lib/ctr:v1" >"$WORK/ctr-cold.d"
    { head -n1 "$WORK/up-ctr"; sort -u "$WORK/up-ctr"; } >"$WORK/up-ctr.d"
    check_files "containerd: the image's digest and its content store's digests equal the upstream's" \
      "$WORK/up-ctr.d" "$WORK/ctr-cold.d"
    check "containerd: the tag was resolved at the mirror with ?ns=$UP_HOST, and answered 200" \
      grep -qE "^(HEAD|GET) /v2/lib/ctr/manifests/v1$ns_rx 200\$" <(front_log)
    check "containerd: the blobs too" grep -qE "^GET /v2/lib/ctr/blobs/sha256:[0-9a-f]{64}$ns_rx 200\$" <(front_log)
    check "containerd: the cache logged the tag's request" \
      grep -qE "(HEAD|GET) /v2/(hub/)?lib/ctr/manifests/v1" "$CACHE_LOG"
    dg=$(head -n1 "$WORK/up-ctr")
    up_reset; front_reset
    check "containerd: second pull by digest in an empty namespace" ctr_pull warm "$UP_HOST/lib/ctr@$dg"; pulled=$?
    ctr_digests warm "$UP_HOST/lib/ctr@$dg" >"$WORK/ctr-warm.d"
    check_files "... the same digests" "$WORK/up-ctr.d" "$WORK/ctr-warm.d"
    check "... its blobs came from the mirror" grep -qE "^GET /v2/lib/ctr/blobs/sha256:[0-9a-f]{64}$ns_rx 200\$" <(front_log)
    check_eq "... no upstream request (and the pull worked)" "0 0" "$(up_total) $pulled"
    [ "$(up_total)" = 0 ] || diag "$(up_log)"
    # the index skopeo cached: containerd resolves it and picks its platform
    check "containerd: ctr pull $UP_HOST/lib/multi:m (cached index)" ctr_pull multi "$UP_HOST/lib/multi:m"
    check_eq "... the image is the upstream's index" "$(head -n1 "$WORK/up-multi")" \
      "$(ctr_x multi image ls | awk -v r="$UP_HOST/lib/multi:m" '$1 == r { print $3 }')"
    # ctr content ls holds the index, the amd64 manifest, its config and its 2 layers
    check_eq "... with the amd64 manifest, config and layers, all the upstream's" 5 \
      "$(ctr_x multi content ls -q | sort -u | comm -12 - <(sort -u "$WORK/up-multi") | wc -l)"
  else
    fail "containerd starts" "$(tail -n 20 "$WORK/containerd.log")"
  fi
else
  log "containerd checks skipped: containerd or ctr not installed"
fi

check "the cache's stored blobs all hash to their digests" verify_store_blobs "$CACHE_DATA"

# --- registry:2's form: the config file registry:2's proxy mode reads ---------------------
if [ "$PROXY_CACHE" = regfs ]; then
  p2=$(free_port)
  PROXY_CACHE=docker cache_yaml "$WORK/r2-data" "$p2" >"$WORK/r2.yml"
  if start_regfs_registry "$WORK/r2.yml"; then
    check "the config is registry:2's proxy mode's (a proxy: section)" grep -q "^proxy:" "$WORK/r2.yml"
    up_reset
    check "proxy: form: skopeo pulls lib/app:v1 (the upstream's name, no prefix)" \
      skopeo_copy "docker://$REGISTRY_HOST/lib/app:v1" "dir:$WORK/r2-app"
    dir_digests "$WORK/r2-app" >"$WORK/r2-app.d"
    check_files "... the upstream's digests" "$WORK/up-app" "$WORK/r2-app.d"
    check "... fetched from the upstream" test "$(up_count GET '^/v2/lib/app/blobs/')" -gt 0
    check_eq "proxy: form: a push answers 405 UNSUPPORTED" "405 UNSUPPORTED" \
      "$(curl -s -o "$WORK/put-body" -w '%{http_code}' -X POST "$REGISTRY_URL/v2/team/x/blobs/uploads/") $(jq -r '.errors[0].code' "$WORK/put-body" 2>/dev/null)"
    up_reset
    check "proxy: form: second pull by digest" \
      skopeo_copy "docker://$REGISTRY_HOST/lib/app@$(head -n1 "$WORK/up-app")" "dir:$WORK/r2-app-2"; pulled=$?
    check_eq "... no upstream request (and the pull worked)" "0 0" "$(up_total) $pulled"
  else
    fail "regfs-registry starts on registry:2's proxy config"
  fi
fi
check_daemon_logs
done_testing
