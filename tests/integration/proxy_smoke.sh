#!/bin/bash
# The pull-through cache, quickly: an upstream docker-registry holding one image pushed
# by skopeo; regfs-registry caching it under the prefix "up" (regfs.proxies). Manifests
# by tag and by digest come through byte-identical to the upstream's (sha256sum), and
# land in our storage as ordinary repository files; skopeo pulls the image through the
# cache and every blob hashes to the upstream's digest; ?ns= (containerd's mirror
# parameter) names the upstream; a PUT under the prefix is refused 405; a push to a
# name outside it works; a tag the upstream does not have is 404 MANIFEST_UNKNOWN; the
# tags list is the upstream's; a tag moved upstream is seen once `revalidate` passed (and
# one moved back to a stored manifest is linked without a GET);
# 20 clients at once cause one upstream GET; an upstream that does not answer is 504, and
# is not asked again for a while; registry:2's `proxy:` caches every name; a stored tag
# the upstream deleted is 404;
# with the upstream stopped the stored tag is still served, and an unknown one is 502.
# The full suite (token auth, podman, containerd, upstream down, counting) is elsewhere.
. "$(dirname "$0")/lib.sh"

need_bin skopeo umoci curl jq "$DOCKER_REGISTRY"
need_regfs_registry

img=$(make_image "$WORK/oci" v1 2 100K 20K) || bail "make_image"
img2=$(make_image "$WORK/oci" v2 1 30K) || bail "make_image"

start_docker_registry "$WORK/upstream" || bail "upstream docker-registry did not start"
UP=$REGISTRY_HOST; UP_PID=$REGISTRY_PID; UP_LOG=$REGISTRY_LOG
check "skopeo pushes team/app:v1 to the upstream" skopeo_copy "$img" "docker://$UP/team/app:v1"

# an upstream that takes connections and never answers
HOLE=$(free_port)
start_bg blackhole python3 -c "import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $HOLE)); s.listen(64); time.sleep(300)"
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HOLE" || bail "the blackhole did not listen"

start_regfs_registry "$WORK/data" "regfs:
  proxies:
    - prefix: up
      remoteurl: http://$UP
      ns: [upstream.example]
      revalidate: 1s
    - prefix: hole
      remoteurl: http://127.0.0.1:$HOLE" || bail "regfs-registry did not start"
H=$REGISTRY_HOST; U=$REGISTRY_URL

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
sha() { sha256sum | cut -d' ' -f1; }
up_digest=$(curl -s -H "$ACCEPT" "http://$UP/v2/team/app/manifests/v1" | sha)

# --- manifests ---------------------------------------------------------------------------
got=$(curl -s -H "$ACCEPT" "$U/v2/up/team/app/manifests/v1" | sha)
check_eq "manifest by tag through the cache: the upstream's bytes" "$up_digest" "$got"
check_eq "Docker-Content-Digest of the cached tag" "sha256:$up_digest" \
  "$(curl -sI -H "$ACCEPT" "$U/v2/up/team/app/manifests/v1" | tr -d '\r' |
     sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')"
link=$WORK/data/docker/registry/v2/repositories/up/team/app/_manifests/tags/v1/current/link
check_eq "the tag is stored as a push stores it" "sha256:$up_digest" "$(cat "$link" 2>/dev/null)"
check_eq "the stored manifest blob hashes to its digest" "$up_digest" \
  "$(sha <"$(blob_path "$WORK/data" "sha256:$up_digest")")"
got=$(curl -s -H "$ACCEPT" "$U/v2/up/team/app/manifests/sha256:$up_digest" | sha)
check_eq "manifest by digest through the cache" "$up_digest" "$got"
check_eq "a tag the upstream lacks: 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" \
  "$(curl -s -o "$WORK/nf" -w '%{http_code}' "$U/v2/up/team/app/manifests/nope") $(jq -r '.errors[0].code' "$WORK/nf")"

# --- ?ns= ----------------------------------------------------------------------------------
got=$(curl -s -H "$ACCEPT" "$U/v2/team/app/manifests/v1?ns=$UP" | sha)
check_eq "?ns=<upstream host> maps team/app to up/team/app" "$up_digest" "$got"
got=$(curl -s -H "$ACCEPT" "$U/v2/team/app/manifests/v1?ns=upstream.example" | sha)
check_eq "?ns=<a configured ns host> too" "$up_digest" "$got"
check_eq "?ns=<an unknown host>: the local name (not there)" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "$U/v2/team/app/manifests/v1?ns=other.example")"

# --- the image through the cache -----------------------------------------------------------
skopeo_x inspect --raw "docker://$UP/team/app:v1" >"$WORK/up-manifest.json"
if check "skopeo copies up/team/app:v1 through the cache" \
     skopeo_copy "docker://$H/up/team/app:v1" "dir:$WORK/pulled"; then
  check "every pulled blob hashes to its digest" verify_dir_blobs "$WORK/pulled"
  check_files "the pulled manifest is the upstream's" "$WORK/up-manifest.json" "$WORK/pulled/manifest.json"
  want=$(jq -r '.config.digest, .layers[].digest' "$WORK/up-manifest.json" | sed 's/^sha256://' | sort)
  have=$(cd "$WORK/pulled" && ls | grep -E '^[0-9a-f]{64}$' | sort)
  check_eq "the pulled blobs are the upstream manifest's" "$want" "$have"
  check "a second pull (from storage)" skopeo_copy "docker://$H/up/team/app:v1" "dir:$WORK/pulled2"
  check "the second pull is byte-identical" diff -r "$WORK/pulled" "$WORK/pulled2"
fi

# --- writes -----------------------------------------------------------------------------------
code=$(curl -s -o "$WORK/put" -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @"$WORK/up-manifest.json" "$U/v2/up/team/app/manifests/mine")
check_eq "a manifest PUT under the prefix: 405 UNSUPPORTED naming the upstream" \
  "405 UNSUPPORTED yes" \
  "$code $(jq -r '.errors[0].code' "$WORK/put") $(grep -q "http://$UP" "$WORK/put" && echo yes)"
check_eq "an upload under the prefix: 405" 405 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/v2/up/team/app/blobs/uploads/")"
check "a push outside the prefix works" skopeo_copy "$img2" "docker://$H/local/app:v2"
check "and pulls back" skopeo_copy "docker://$H/local/app:v2" "dir:$WORK/local"

# --- tags list, a moved tag ----------------------------------------------------------------
check "skopeo pushes team/app:v2 to the upstream" skopeo_copy "$img2" "docker://$UP/team/app:v2"
check_eq "the tags list of a cached repository is the upstream's" '["v1","v2"]' \
  "$(curl -s "$U/v2/up/team/app/tags/list" | jq -c .tags)"
check_eq "paginated as asked" '["v1"] yes' \
  "$(curl -s -D "$WORK/th" "$U/v2/up/team/app/tags/list?n=1" | jq -c .tags) $(grep -qi '^link:.*last=v1' "$WORK/th" && echo yes)"
check "the upstream moves team/app:v1 to the v2 image" skopeo_copy "$img2" "docker://$UP/team/app:v1"
new_digest=$(curl -s -H "$ACCEPT" "http://$UP/v2/team/app/manifests/v1" | sha)
sleep 1.5 # past revalidate (1s): the next pull by tag asks the upstream
check_eq "the moved tag is seen after revalidate" "$new_digest" \
  "$(curl -s -H "$ACCEPT" "$U/v2/up/team/app/manifests/v1" | sha)"
check_eq "and stored" "sha256:$new_digest" "$(cat "$link" 2>/dev/null)"
check "the upstream moves team/app:v1 back" skopeo_copy "$img" "docker://$UP/team/app:v1"
before=$(grep -c '"GET /v2/team/app/manifests/v1 ' "$UP_LOG")
sleep 1.5
check_eq "a tag moved back to a stored manifest is seen" "$up_digest" \
  "$(curl -s -H "$ACCEPT" "$U/v2/up/team/app/manifests/v1" | sha)"
check_eq "and linked without a GET at the upstream" 0 \
  $(( $(grep -c '"GET /v2/team/app/manifests/v1 ' "$UP_LOG") - before ))
check_eq "the tag link names it" "sha256:$up_digest" "$(cat "$link" 2>/dev/null)"

# --- single flight --------------------------------------------------------------------------
check "skopeo pushes team/app:v3 to the upstream" skopeo_copy "$img" "docker://$UP/team/app:v3"
v3=$(curl -s -H "$ACCEPT" "http://$UP/v2/team/app/manifests/v3" | sha)
before=$(grep -c '"GET /v2/team/app/manifests/v3 ' "$UP_LOG")
pids=()
for i in $(seq 1 20); do
  curl -s -m 60 -H "$ACCEPT" -o "$WORK/sf.$i" "$U/v2/up/team/app/manifests/v3" & pids+=($!)
done
wait "${pids[@]}" # only the clients: a bare wait would wait for the registries too
check_eq "20 clients at once: each gets the upstream's bytes" "$(for i in $(seq 1 20); do echo "$v3"; done)" \
  "$(for i in $(seq 1 20); do sha <"$WORK/sf.$i"; done)"
check_eq "20 clients at once: one GET at the upstream" 1 \
  $(( $(grep -c '"GET /v2/team/app/manifests/v3 ' "$UP_LOG") - before ))

# --- an upstream that does not answer ---------------------------------------------------------
code=$(curl -s -m 60 -o "$WORK/hole1" -w '%{http_code}' "$U/v2/hole/x/manifests/v1")
check_eq "an upstream that does not answer: 504 naming it" "504 yes" \
  "$code $(grep -q "127.0.0.1:$HOLE" "$WORK/hole1" && echo yes)"
code=$(curl -s -m 60 -o "$WORK/hole2" -w '%{http_code}' "$U/v2/hole/y/manifests/v1")
check_eq "right after: 504 without asking it again" "504 yes" \
  "$code $(grep -q "not asked again" "$WORK/hole2" && echo yes)"

# --- registry:2's proxy: the whole namespace is the cache -------------------------------------
R2_URL=$U; R2_LOG=$REGISTRY_LOG
start_regfs_registry "$WORK/data-r2" "proxy:
  remoteurl: http://$UP" || bail "regfs-registry with proxy: did not start"
check_eq "proxy: the upstream's names, unchanged" "$v3" \
  "$(curl -s -H "$ACCEPT" "$REGISTRY_URL/v2/team/app/manifests/v3" | sha)"
check_eq "proxy: ?ns= naming another registry is 404, not the upstream's image" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "$REGISTRY_URL/v2/team/app/manifests/v3?ns=other.example")"
check_eq "proxy: every push is refused" 405 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$REGISTRY_URL/v2/local/app/blobs/uploads/")"
stop_pid "$REGISTRY_PID"
U=$R2_URL; REGISTRY_LOG=$R2_LOG

# --- a tag gone upstream -------------------------------------------------------------------------
v3link=${link%/v1/current/link}/v3/current/link
check "the upstream deletes team/app:v3's manifest" skopeo_x delete "docker://$UP/team/app:v3"
sleep 1.5 # past revalidate
check_eq "a stored tag the upstream no longer has: 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" \
  "$(curl -s -o "$WORK/gone" -w '%{http_code}' -H "$ACCEPT" "$U/v2/up/team/app/manifests/v3") $(jq -r '.errors[0].code' "$WORK/gone")"
check_eq "its stored manifest stays (until expiry)" "sha256:$v3" "$(cat "$v3link" 2>/dev/null)"

# --- the upstream stopped --------------------------------------------------------------------
stop_pid "$UP_PID"
sleep 1.5
check_eq "upstream down: the stored tag is served as last seen" "200 $up_digest" \
  "$(curl -s -o "$WORK/down" -w '%{http_code}' -H "$ACCEPT" "$U/v2/up/team/app/manifests/v1") $(sha <"$WORK/down")"
check "with a log line naming the upstream" grep -q "upstream http://$UP unavailable for up/team/app:v1" "$REGISTRY_LOG"
check_eq "upstream down: a stored digest is served" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "$U/v2/up/team/app/manifests/sha256:$up_digest")"
check_eq "upstream down: an uncached tag is 502 naming the upstream" "502 yes" \
  "$(curl -s -o "$WORK/e502" -w '%{http_code}' "$U/v2/up/team/app/manifests/v2") $(grep -q "http://$UP" "$WORK/e502" && echo yes)"
check_eq "upstream down: the tags list is the stored tags" '["v1","v3"]' \
  "$(curl -s "$U/v2/up/team/app/tags/list" | jq -c .tags)"
done_testing
