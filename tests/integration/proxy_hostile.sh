#!/bin/bash
# The pull-through cache against an upstream that lies or misbehaves
# (tools/hostile_upstream.py, behind Basic credentials): a manifest whose bytes are not
# its Docker-Content-Digest or not the digest asked, one over regfs.limits.manifestsize,
# one that never ends (the read stops at the limit: counted at the upstream), bytes that
# are not JSON, a media type we do not take: each is refused (502 naming the upstream)
# and nothing is stored. A redirect to another host gets no Authorization; one to file://
# is refused. A sha512 digest works. 20 clients by tag while the upstream moves it all
# get consistent answers. Tag names from the upstream that are not tags are not listed;
# a tags page linking to another host is asked of the upstream (the credentials go
# nowhere else); a tags list whose pages never end is cut off. A short or wrong blob is
# not handed over whole, nor stored; nor one that trickles (the stall timeout cuts it,
# the spool is emptied); a chunked one is fine. ?ns= with odd hosts stays local or is
# refused, never a 5xx. DELETE of a cached tag, then a pull: fetched again. Online GC
# runs all along: the cached manifest and blobs survive it. The upstream password
# appears in no log, error body or /v2/_regfs answer.
. "$(dirname "$0")/lib.sh"

need_bin curl jq python3 sha256sum
need_regfs_registry

PASS=hostile-S3cret-$RANDOM
UPORT=$(free_port)
start_bg hostile python3 "$(dirname "$0")/tools/hostile_upstream.py" --port "$UPORT" \
  --basic "bob:$PASS" --trickle 2
UP_PID=$BG_PID; HLOG=$WORK/hostile.log
wait_http "http://127.0.0.1:$UPORT/v2/" || bail "the hostile upstream did not start"

DATA=$WORK/data
# online GC runs every second all along: what the cache stores must survive it
REGISTRY_LOG_LEVEL=debug start_regfs_registry "$DATA" "regfs:
  gc:
    enabled: true
    interval: 1s
    delay: 2s
    deleteuntagged: true
  limits:
    manifestsize: 1MiB
    uploadsize: 8MiB
  proxycache:
    spooldir: $WORK/spool
  proxies:
    - prefix: h
      remoteurl: http://127.0.0.1:$UPORT
      username: bob
      password: $PASS
      revalidate: 1s" || bail "regfs-registry did not start"
U=$REGISTRY_URL
REPOS=$DATA/docker/registry/v2/repositories
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json'
sha() { sha256sum | cut -d' ' -f1; }
# blob files now; new blobs since a snapshot (online GC may remove others meanwhile)
blobs_now() { find "$DATA/docker/registry/v2/blobs" -name data 2>/dev/null | sort; }
snap() { blobs_now >"$WORK/blobs.before"; }
newblobs() { blobs_now | comm -13 "$WORK/blobs.before" - | wc -l; }
code_of() { curl -s -m 60 -H "$ACCEPT" -o "$WORK/body" -w '%{http_code}' "$@"; }

# refused REPO REF WHY — a manifest pull the cache must refuse, storing nothing
refused() {
  local got; snap
  got=$(code_of "$U/v2/h/$1/manifests/$2")
  check_eq "$3: 502 naming the upstream" "502 yes" \
    "$got $(grep -q "127.0.0.1:$UPORT" "$WORK/body" && echo yes)"
  check_eq "$3: nothing stored (no repository, no new blob)" "no 0" \
    "$([ -e "$REPOS/h/$1" ] && echo yes || echo no) $(newblobs)"
  cat "$WORK/body" >>"$WORK/bodies"
}

# --- manifests ---------------------------------------------------------------------------
good=$(curl -s -u "bob:$PASS" "http://127.0.0.1:$UPORT/v2/good/manifests/v1" | sha)
check_eq "a good manifest through the cache" "$good" \
  "$(curl -s -H "$ACCEPT" "$U/v2/h/good/manifests/v1" | sha)"
refused dcdlie v1 "Docker-Content-Digest naming other bytes"
refused bydigest "sha256:$good" "by digest, other bytes than the digest"
refused big v1 "a manifest over regfs.limits.manifestsize"
refused endless v1 "an endless manifest body"
sent=$(sed -n 's/^endless sent=//p' "$HLOG" | tail -n1)
check "the endless body was read only up to about the limit (sent ${sent:-?} of 64 MiB)" \
  test "${sent:-67108864}" -lt $((16 << 20))
refused badjson v1 "a manifest that is not JSON"
refused badtype v1 "a manifest of a media type that is not a manifest's"
check_eq "an index of 5000 children within the limit is taken" "200" "$(code_of "$U/v2/h/manykids/manifests/v1")"

s512=sha512:$(curl -s -u "bob:$PASS" "http://127.0.0.1:$UPORT/v2/good/manifests/v1" | sha512sum | cut -d' ' -f1)
check_eq "by a sha512 digest: the manifest, hashing to it" "200 ${s512#sha512:}" \
  "$(code_of "$U/v2/h/good/manifests/$s512") $(sha512sum <"$WORK/body" | cut -d' ' -f1)"
check_eq "by tag, a sha512 Docker-Content-Digest: stored under it" "$s512" \
  "$(curl -s -H "$ACCEPT" "$U/v2/h/sha512/manifests/v1" >/dev/null; cat "$REPOS/h/sha512/_manifests/tags/v1/current/link" 2>/dev/null)"

# 20 clients by tag while the upstream moves the tag at every GET: each answer is a
# manifest whose bytes hash to the digest it is served with (two waves: the second
# revalidates, past revalidate, and finds the tag moved)
bad=0
for wave in 1 2; do
  [ "$wave" = 2 ] && sleep 1.2
  pids=()
  for i in $(seq 1 20); do
    curl -s -m 60 -H "$ACCEPT" -D "$WORK/mh.$i" -o "$WORK/m.$i" "$U/v2/h/moving/manifests/v1" & pids+=($!)
  done
  wait "${pids[@]}"
  for i in $(seq 1 20); do
    d=$(tr -d '\r' <"$WORK/mh.$i" | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
    [ "$d" = "sha256:$(sha <"$WORK/m.$i")" ] && jq -e .layers "$WORK/m.$i" >/dev/null || bad=$((bad + 1))
  done
done
check_eq "20 clients while the tag moves: every answer hashes to its digest" 0 "$bad"

# --- redirects ---------------------------------------------------------------------------
check_eq "a manifest redirected to another host is fetched" "$good" \
  "$(curl -s -H "$ACCEPT" "$U/v2/h/redir/manifests/v1" | sha)"
check_eq "the Authorization header did not follow the redirect" "GET /elsewhere 200 auth=no" \
  "$(grep '^GET /elsewhere ' "$HLOG" | tail -n1 | cut -d' ' -f1-4)"
refused redirfile v1 "a redirect to file://"

# --- tags ----------------------------------------------------------------------------------
check_eq "upstream names that are not tags are not listed" '["v1","v2"]' \
  "$(curl -s "$U/v2/h/evil/tags/list" | jq -c .tags)"

check_eq "a tags list whose next page is on another host: both pages, from the upstream" \
  '["p1","p2"]' "$(curl -s "$U/v2/h/evilpage/tags/list" | jq -c .tags)"
check_eq "the credentials went to no other host" "" \
  "$(grep 'auth=yes' "$HLOG" | grep -v " host=127.0.0.1:$UPORT\$")"

code=$(code_of "$U/v2/h/endlesstags/tags/list")
pages=$(grep -c '^GET /v2/endlesstags/tags/list' "$HLOG")
check "a tags list whose pages never end: answered ($code, not a 5xx), after $pages pages" \
  test "$code" != 000 -a "$code" -lt 500 -a "$pages" -le 200
check "with a log line naming the upstream" \
  grep -q "tags of h/endlesstags from upstream http://127.0.0.1:$UPORT failed" "$REGISTRY_LOG"

# --- blobs ---------------------------------------------------------------------------------
layer=$(curl -s -H "$ACCEPT" "$U/v2/h/good/manifests/v1" | jq -r '.layers[0].digest')
for c in shortblob wrongblob; do
  snap
  curl -sf -m 60 -o "$WORK/$c" "$U/v2/h/$c/blobs/$layer"; rc=$? # 502 or a cut
  got=$(cat "$WORK/$c" 2>/dev/null | sha)
  check "$c: the client does not get a complete blob (curl $rc)" \
    test "$rc" -ne 0 -a "sha256:$got" != "$layer"
  check_eq "$c: nothing stored" "no 0" \
    "$([ -e "$REPOS/h/$c/_layers" ] && echo yes || echo no) $(newblobs)"
done
cfg=$(curl -s -H "$ACCEPT" "$U/v2/h/good/manifests/v1" | jq -r '.config.digest')
snap
curl -s -m 90 -o "$WORK/trickle" "$U/v2/h/trickleblob/blobs/$cfg"; rc=$?
check "a trickling upstream: the client is cut (curl $rc), not handed a short blob" test "$rc" -ne 0
check_eq "a trickling upstream: nothing stored, the spool is empty" "no 0 0" \
  "$([ -e "$REPOS/h/trickleblob/_layers" ] && echo yes || echo no) $(newblobs) $(ls -A "$WORK/spool" | wc -l)"
# with no Content-Length the answer waits for the end of the fetch: a failed
# fetch is a 502, or a cut if the answer had started
code=$(curl -s -m 90 -o "$WORK/endlessblob" -w '%{http_code}' "$U/v2/h/endlessblob/blobs/$cfg"); rc=$?
check "an endless blob with no Content-Length: refused (curl $rc, HTTP $code)" \
  test "$rc" -ne 0 -o "$code" = 502
sent=$(sed -n 's/^endlessblob sent=//p' "$HLOG" | tail -n1)
check "the endless blob was spooled only up to regfs.limits.uploadsize (sent ${sent:-?} of 64 MiB)" \
  test "${sent:-0}" -gt 0 -a "${sent:-0}" -lt $((32 << 20))
check_eq "an endless blob: nothing stored, the spool is empty" "no 0 0" \
  "$([ -e "$REPOS/h/endlessblob/_layers" ] && echo yes || echo no) $(newblobs) $(ls -A "$WORK/spool" | wc -l)"
check "the cut is logged naming regfs.limits.uploadsize" \
  grep -q "blob $cfg of h/endlessblob from .*over regfs.limits.uploadsize" "$REGISTRY_LOG"
check "a blob with no Content-Length (chunked) through the cache" \
  test "sha256:$(curl -s -m 60 "$U/v2/h/chunkblob/blobs/$layer" | sha)" = "$layer"
check_eq "a good config blob through the cache" "$cfg" \
  "sha256:$(curl -s -m 60 "$U/v2/h/good/blobs/$cfg" | sha)"
check_eq "a good blob through the cache" "$layer" \
  "sha256:$(curl -s -m 60 "$U/v2/h/good/blobs/$layer" | sha)"

# --- ?ns= ------------------------------------------------------------------------------------
check_eq "?ns=<upstream host:port> maps to the cache" "$good" \
  "$(curl -s -H "$ACCEPT" "$U/v2/good/manifests/v1?ns=127.0.0.1:$UPORT" | sha)"
long=$(printf 'a%.0s' $(seq 1 3000))
for ns in .. / %2f %2F..%2F HOST.EXAMPLE "127.0.0.1" "[::1]:5000" "%5B%3A%3A1%5D%3A5000" "$long"; do
  got=$(code_of "$U/v2/good/manifests/v1?ns=$ns")
  check "?ns=${ns:0:20}: a 4xx (a local name that is not here), not a 5xx (got $got)" \
    test "$got" -ge 400 -a "$got" -lt 500
done

# --- DELETE then pull --------------------------------------------------------------------------
check_eq "DELETE of a cached tag: 202" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$U/v2/h/good/manifests/v1")"
check "the tag is gone from storage" test ! -e "$REPOS/h/good/_manifests/tags/v1"
check_eq "a pull after it fetches it again" "$good" \
  "$(curl -s -H "$ACCEPT" "$U/v2/h/good/manifests/v1" | sha)"
check "and stores the tag again" test -e "$REPOS/h/good/_manifests/tags/v1/current/link"

# --- online GC ------------------------------------------------------------------------------
gc_runs() { grep -c 'online gc' "$REGISTRY_LOG"; }
runs=$(gc_runs)
check "online GC ran during the pulls, and runs 3 more times past its delay" \
  wait_for 30 bash -c "[ \$(grep -c 'online gc' '$REGISTRY_LOG') -ge $((runs + 3)) ]"
gdig=sha256:$good
check_eq "the cached manifest survived GC (stored; served with the upstream stopped)" \
  "200 $good" "$(stop_pid "$UP_PID"; code_of "$U/v2/h/good/manifests/$gdig") $(sha <"$WORK/body")"
for d in "$layer" "$cfg"; do
  check "its blob ${d:7:12} survived GC (served from storage, hashing to it)" \
    test "sha256:$(curl -s -m 30 "$U/v2/h/good/blobs/$d" | sha)" = "$d"
done

# --- credentials -------------------------------------------------------------------------------
for p in _regfs/usage _regfs/tags _regfs/manifests _catalog; do
  curl -s -m 30 "$U/v2/$p" >>"$WORK/bodies"
done
b64=$(printf 'bob:%s' "$PASS" | base64)
check "the upstream password is in no log line of the registry" \
  bash -c "! grep -qF -e '$PASS' -e '$b64' '$REGISTRY_LOG'"
check "nor in any error body or /v2/_regfs answer" \
  bash -c "! grep -qF -e '$PASS' -e '$b64' '$WORK/bodies'"
check "the registry is still up" test "$(code_of "$U/v2/")" = 200
done_testing
