#!/bin/bash
# client_api.sh — the registry client (include/regfs/client.h, lib/client/) through
# tests/integration/tools/regfs-clientcheck, against:
#   (a) Debian's docker-registry 2.8.2 holding images pushed by skopeo (built with
#       umoci): answers compared with skopeo inspect --raw, sha256sum and jq;
#   (b) the same storage served by docker-registry with `auth: token`, trusting JWTs
#       from tests/integration/tools/tokenserver.py (RS256 via the openssl CLI, x5c
#       header) — the real Bearer flow, credentials from flags, env and docker config;
#   (c) tests/integration/tools/fakeregistry.py for what real registries do not do
#       on demand: 503s (retries), no answer (timeout), not a registry, a redirect
#       to another host (Authorization must not follow), Range ignored.
. "$(dirname "$0")/lib.sh"

CC=${REGFS_CLIENTCHECK:-$REGFS_BUILD/tests/integration/regfs-clientcheck}
TOOLS=$REGFS_SRC/tests/integration/tools
need_ours "$CC"
need_regfs_registry
need_bin "$DOCKER_REGISTRY" skopeo umoci jq openssl python3 curl
cc() { with_timeout 90 "$CC" "$@"; }
hex() { sha256sum "$@" | cut -d' ' -f1; }
# errno_of CMD… — the E-name the client reported (first word of stderr), "0" on success.
errno_of() {
  local out
  if out=$("$@" 2>&1 >/dev/null); then echo 0; else printf '%s\n' "${out%%:*}"; fi
}

# --- (a) docker-registry with skopeo-pushed images ------------------------------
OCI=$WORK/oci
IMG1=$(make_image "$OCI" one 3 300K 64K 1M) || bail "umoci could not build image one"
IMG2=$(make_image "$OCI" two 1 10K) || bail "umoci could not build image two"
IDX=$(make_index "$OCI" multi) || bail "could not build the index"

start_docker_registry "$WORK/data" || bail "docker-registry did not start"
R=$REGISTRY_URL; H=$REGISTRY_HOST; DATA=$REGISTRY_DATA
skopeo_copy "$IMG1" "docker://$H/team/app:v1" &&
  skopeo_copy "$IMG1" "docker://$H/team/app:latest" &&
  skopeo_copy "$IMG2" "docker://$H/team/app:v2" &&
  skopeo_copy "$IMG2" "docker://$H/team/app/worker:1.0" &&
  skopeo_copy "$IMG1" "docker://$H/lib:stable" &&
  skopeo_copy --all "$IDX" "docker://$H/multi:idx" || bail "skopeo could not push"
REFS="team/app:v1 team/app:latest team/app:v2 team/app/worker:1.0 lib:stable multi:idx"

check "ping a registry" cc "$R" ping
check_eq "catalog lists exactly the pushed repositories" \
  "$(printf '%s\n' lib multi team/app team/app/worker)" "$(cc "$R" catalog | sort)"
check_eq "tags of team/app" "$(printf '%s\n' latest v1 v2)" "$(cc "$R" tags team/app | sort)"
check_eq "tags of a nested repository" "1.0" "$(cc "$R" tags team/app/worker)"

mkdir -p "$WORK/m"
declare -A DIGEST
bad=""
for ref in $REFS; do
  repo=${ref%:*} tag=${ref##*:} f=$WORK/m/${ref//[\/:]/_}
  skopeo_x inspect --raw "docker://$H/$ref" >"$f.want" || { bad+=" $ref(skopeo)"; continue; }
  line=$(cc "$R" manifest "$repo" "$tag" "$f.got") || { bad+=" $ref(client)"; continue; }
  read -r dg ct lm <<<"$line"
  DIGEST[$ref]=$dg
  cmp -s "$f.want" "$f.got" || bad+=" $ref(bytes)"
  [ "$dg" = "sha256:$(hex "$f.want")" ] || bad+=" $ref(digest $dg)"
  # umoci leaves out mediaType in image manifests; OCI says that means an OCI manifest.
  [ "$ct" = "$(jq -r '.mediaType // "application/vnd.oci.image.manifest.v1+json"' "$f.want")" ] || bad+=" $ref(type $ct)"
done
check_eq "manifests: bytes = skopeo inspect --raw, digest = sha256sum, type = mediaType" "" "$bad"

# The index's children, by digest.
bad=""
for child in $(jq -r '.manifests[].digest' "$WORK/m/multi_idx.want"); do
  skopeo_x inspect --raw "docker://$H/multi@$child" >"$WORK/m/child.want"
  cc "$R" manifest multi "$child" "$WORK/m/child.got" >/dev/null || { bad+=" $child(client)"; continue; }
  cmp -s "$WORK/m/child.want" "$WORK/m/child.got" || bad+=" $child(bytes)"
done
check_eq "index children fetched by digest are byte-identical" "" "$bad"

# Batch: same answers as one by one, and one failure does not spoil the batch.
want=""
for ref in $REFS; do want+="$ref 0 ${DIGEST[$ref]}"$'\n'; done
want+="team/app:missing ENOENT"$'\n'"nope/nope:x ENOENT"
got=$(cc --parallel 3 "$R" manifests $REFS team/app:missing nope/nope:x | awk '{print $1, $2, ($2 == "0" ? $3 : "")}' | sed 's/ $//')
check_eq "manifests batch (3 in flight) = single fetches; missing items fail alone" "$want" "$got"
want="team/app 0 $(cc "$R" tags team/app | paste -sd,)"$'\n'"lib 0 stable"$'\n'"nope/nope ENOENT "
check_eq "tags_many batch" "$want" "$(cc "$R" tags-many team/app lib nope/nope)"

# Blobs of team/app:v1: config and every layer.
M1=$WORK/m/team_app_v1.want
bad=""
while read -r dg size; do
  h=${dg#sha256:}
  [ "$(cc "$R" blob-size team/app "$dg")" = "$size" ] || bad+=" $h(size)"
  cc "$R" blob-fetch team/app "$dg" "$WORK/blob" || { bad+=" $h(fetch)"; continue; }
  [ "$(hex "$WORK/blob")" = "$h" ] || bad+=" $h(fetch-hash)"
  [ "$(cc "$R" blob-chunks team/app "$dg" 65536 | hex)" = "$h" ] || bad+=" $h(ranges)"
  if [ "$size" -gt 6000 ]; then
    cmp -s <(cc "$R" blob-read team/app "$dg" 1000 5000) <(tail -c +1001 "$WORK/blob" | head -c 5000) || bad+=" $h(range@1000)"
    n=$(cc "$R" blob-read team/app "$dg" $((size - 7)) 100 | wc -c) && [ "$n" = 7 ] || bad+=" $h(short-read-at-end)"
  fi
  n=$(cc "$R" blob-read team/app "$dg" "$size" 10 | wc -c) && [ "$n" = 0 ] || bad+=" $h(read-past-end)"
done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$M1")
check_eq "blobs: size = manifest, fetch and Range reads hash to the digest" "" "$bad"
check_eq "blob fetch of an unknown digest is ENOENT" ENOENT \
  "$(errno_of cc "$R" blob-fetch team/app "sha256:$(printf nothing | hex)" "$WORK/none")"

check_eq "8 threads sharing one client agree with single fetches" ok \
  "$(cc "$R" threads 8 team/app:v1 team/app:v2 lib:stable multi:idx)"

stats=$(cc --stats "$R" manifest team/app v1 2>&1 >/dev/null)
check_eq "stats: one manifest GET = 1 request, its bytes counted" \
  "1 1 $(stat -c %s "$M1")" "$(jq -r '"\(.requests) \(.manifest_gets) \(.bytes_fetched)"' <<<"$stats")"

# Writes.
check_eq "put manifest returns its digest" "${DIGEST[team/app:v1]}" \
  "$(cc "$R" put team/app copied "$M1" application/vnd.oci.image.manifest.v1+json)"
check_eq "the put tag is listed" "$(printf '%s\n' copied latest v1 v2)" "$(cc "$R" tags team/app | sort)"
check_eq "docker-registry 2.8 cannot DELETE a tag: ENOTSUP (the mount's fallback cue)" ENOTSUP \
  "$(errno_of cc "$R" delete team/app copied | sed 's/EOPNOTSUPP/ENOTSUP/')"
bad=""
for dg in $(jq -r '.config.digest, .layers[].digest' "$M1"); do
  cc "$R" mount-blob mounted/repo team/app "$dg" || bad+=" $dg"
done
check_eq "cross-repository blob mount of every blob" "" "$bad"
check "a manifest can be put over the mounted blobs" \
  cc "$R" put mounted/repo v1 "$M1" application/vnd.oci.image.manifest.v1+json
check "mounted blob is served (and verified) in the new repository" \
  cc "$R" blob-fetch mounted/repo "$(jq -r '.layers[0].digest' "$M1")" "$WORK/mounted"
check "delete a manifest by digest" cc "$R" delete mounted/repo "${DIGEST[team/app:v1]}"
check_eq "the deleted manifest is gone" ENOENT "$(errno_of cc "$R" manifest mounted/repo v1)"

# Errors.
check_eq "unknown repository: ENOENT" ENOENT "$(errno_of cc "$R" tags no/such/repo)"
check_eq "invalid repository name: EINVAL" EINVAL "$(errno_of cc "$R" tags 'Bad Name')"
dead=$(free_port)
out=$(cc "http://127.0.0.1:$dead" ping 2>&1)
check_eq "nothing listening: ECONNREFUSED" ECONNREFUSED "${out%%:*}"
case $out in *"is the registry running at http://127.0.0.1:$dead"*) ok "the message says what to check" ;;
  *) fail "the message says what to check" "$out" ;; esac

# Catalog pagination: a registry configured with 2 repositories per page.
start_docker_registry "$DATA" "catalog:
  maxentries: 2" || bail "paginating docker-registry did not start"
P=$REGISTRY_URL
stats=$(cc --stats "$P" catalog 2>"$WORK/pstats" | sort)
check_eq "catalog follows every Link page" "$(cc "$R" catalog | sort)" "$stats"
pages=$(jq -r .catalog_pages <"$WORK/pstats")
[ "${pages:-0}" -ge 3 ] && ok "catalog used several pages ($pages)" || fail "catalog used several pages" "$(cat "$WORK/pstats")"

# --- (c) misbehaving fronts ------------------------------------------------------
fake() {  # fake ARGS… — start fakeregistry.py; sets F (URL) and FLOG
  local port; port=$(free_port)
  start_bg "fake-$port" python3 "$TOOLS/fakeregistry.py" --port "$port" "$@"
  F=http://127.0.0.1:$port; FLOG=$WORK/fake-$port.log
  wait_http "$F/v2/" || bail "fakeregistry did not start"
}
fake --fail-first 3   # wait_http in fake() takes the first 503
stats=$(cc --stats "$F" ping 2>&1 >/dev/null)
check_eq "503s are retried: ping succeeds after 2 retries" 2 "$(jq -r .retries <<<"$stats")"
fake --not-registry
out=$(cc "$F" ping 2>&1)
check_eq "a web server that is not a registry: EPROTO" EPROTO "${out%%:*}"
case $out in *"not a registry"*) ok "the message says it is not a registry" ;; *) fail "the message says it is not a registry" "$out" ;; esac
fake --basic bob:pw
check_eq "a request that takes longer than --timeout: ETIMEDOUT" ETIMEDOUT \
  "$(errno_of cc --timeout 2 --user bob --pass pw "$F" tags slow)"
check_eq "wrong Basic credentials: EACCES" EACCES "$(errno_of cc --user bob --pass nope "$F" ping)"
refs=$(for i in $(seq 1 12); do printf 'par:r%d ' "$i"; done)
check_eq "batch against a slow registry: 12 manifests, all fetched" 12 \
  "$(cc --parallel 3 --user bob --pass pw "$F" manifests $refs | grep -c ' 0 sha256:')"
check_eq "... with exactly --parallel 3 requests in flight at most" "max=3" \
  "$(grep -o 'max=[0-9]*' "$FLOG" | sort -t= -k2 -n | tail -n1)"
fake_digest=sha256:$(printf x | hex)
blob=$(python3 -c 'import sys; sys.stdout.write(("0123456789abcdefghijklmnopqrstuvwxyz" * 100)[10:30])')
check_eq "Range read through a redirect, from a server that ignores Range" "$blob" \
  "$(cc --user bob --pass pw "$F" blob-read redir "$fake_digest" 10 20)"
check_eq "Authorization went to the registry but not to the redirect's other host" \
  "GET /v2/redir/blobs/$fake_digest 307 auth=yes|GET /blob 200 auth=no" \
  "$(grep "^GET /v2/redir/blobs/" "$FLOG" | tail -n1)|$(grep '^GET /blob ' "$FLOG" | tail -n1)"
check_eq "blob fetch verifies the digest (the redirected bytes do not match)" EPROTO \
  "$(errno_of cc --user bob --pass pw "$F" blob-fetch redir "$fake_digest" "$WORK/fakeblob")"

# --- (b) token-protected docker-registry (Bearer flow) --------------------------
start_tokenserver tokenserver-1
start_token_registry "$DATA" || bail "token-protected docker-registry did not start"
T=$REGISTRY_URL; TH=$REGISTRY_HOST
AUTH=(--user alice --pass s3cret)

out=$(cc "$T" ping 2>&1)
check_eq "token registry, no credentials: EACCES" EACCES "${out%%:*}"
case $out in *--user*) ok "the EACCES message says how to give credentials" ;; *) fail "the EACCES message says how to give credentials" "$out" ;; esac
check_eq "token registry, wrong password: EACCES" EACCES "$(errno_of cc --user alice --pass wrong "$T" ping)"
check "token registry: ping with credentials" cc "${AUTH[@]}" "$T" ping
check_eq "token registry: catalog (registry:catalog:* scope)" "$(cc "$R" catalog | sort)" "$(cc "${AUTH[@]}" "$T" catalog | sort)"
check_eq "token registry: tags" "$(cc "$R" tags team/app | sort)" "$(cc "${AUTH[@]}" "$T" tags team/app | sort)"

before=$(grep -c '^token ' "$TOKLOG")
got=$(cc --stats "${AUTH[@]}" --parallel 4 "$T" manifests $REFS 2>"$WORK/tstats" | awk '{print $1, $2, $3}')
want=""; for ref in $REFS; do want+="$ref 0 ${DIGEST[$ref]}"$'\n'; done
check_eq "token registry: manifests batch = unprotected answers" "${want%$'\n'}" "$got"
# The /v2/ probe's token, then ONE token for the 4 repositories' pull scopes.
fetches=$(jq -r .token_fetches <"$WORK/tstats")
check_eq "batch: 2 token requests (the /v2/ probe, then all 4 repository scopes at once)" 2 "$fetches"
check_eq "the token server saw exactly those requests" 2 $(( $(grep -c '^token ' "$TOKLOG") - before ))
check_eq "the batch token covers the 4 scopes" \
  "repository:lib:pull repository:multi:pull repository:team/app/worker:pull repository:team/app:pull" \
  "$(grep '^token ' "$TOKLOG" | tail -n1 | sed 's/^token scopes=//; s/ user=.*//' | tr ' ' '\n' | sort | paste -sd' ')"
dg=$(jq -r '.layers[2].digest' "$M1")
check "token registry: blob fetch (verified)" cc "${AUTH[@]}" "$T" blob-fetch team/app "$dg" "$WORK/tblob"
check_eq "token registry: Range read" "$(tail -c +4097 "$WORK/tblob" | head -c 4096 | hex)" \
  "$(cc "${AUTH[@]}" "$T" blob-read team/app "$dg" 4096 4096 | hex)"

check "credentials from REGFS_USERNAME/REGFS_PASSWORD" env REGFS_USERNAME=alice REGFS_PASSWORD=s3cret "$CC" "$T" ping
mkdir -p "$WORK/home/.docker" "$WORK/dc"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$TH" "$(printf alice:s3cret | base64)" >"$WORK/home/.docker/config.json"
check "credentials from ~/.docker/config.json (auth, keyed host:port)" \
  env -u DOCKER_CONFIG -u REGFS_USERNAME HOME="$WORK/home" "$CC" "$T" ping
printf '{"auths":{"other:5000":{"auth":"%s"},"http://%s/v1/":{"username":"alice","password":"s3cret"}}}\n' \
  "$(printf eve:x | base64)" "$TH" >"$WORK/dc/config.json"
check "credentials from --docker-config (username/password, keyed by URL)" \
  env -u REGFS_USERNAME "$CC" --docker-config "$WORK/dc/config.json" "$T" ping

out=$(cc --debug "${AUTH[@]}" "$T" manifests $REFS 2>&1)
case $out in *"client: GET"*) ok "debug log shows requests" ;; *) fail "debug log shows requests" "$(head -5 <<<"$out")" ;; esac
check_eq "neither the password nor a token (eyJ…) is ever logged" 0 "$(grep -c -e s3cret -e eyJ <<<"$out")"

# Writes need push/delete scopes; the mount needs two repositories' scopes.
bad=""
for dg in $(jq -r '.config.digest, .layers[].digest' "$M1"); do
  cc "${AUTH[@]}" "$T" mount-blob tok/repo team/app "$dg" || bad+=" $dg"
done
check_eq "token registry: cross-repository mount (two scopes in one token)" "" "$bad"
check_eq "token registry: put manifest" "${DIGEST[team/app:v1]}" \
  "$(cc "${AUTH[@]}" "$T" put tok/repo v1 "$M1" application/vnd.oci.image.manifest.v1+json)"
check "token registry: delete manifest by digest" cc "${AUTH[@]}" "$T" delete tok/repo "${DIGEST[team/app:v1]}"
check_eq "token registry: deleted manifest is gone" ENOENT "$(errno_of cc "${AUTH[@]}" "$T" manifest tok/repo v1)"

# Token servers that answer "access_token" and no expires_in (default 60 s).
stop_pid "$TOKPID"
start_tokenserver tokenserver-2 --access-token-only --no-expires
check_eq "access_token without expires_in works" "${DIGEST[lib:stable]}" \
  "$(cc "${AUTH[@]}" "$T" manifest lib stable | cut -d' ' -f1)"

# --- (d) regfs-registry: its extensions, Last-Modified, OCI 1.1 tag delete -------------
start_regfs_registry "$WORK/rdata" || bail "regfs-registry did not start"
G=$REGISTRY_URL
skopeo_copy "$IMG1" "docker://$REGISTRY_HOST/team/app:v1" &&
  skopeo_copy "$IMG1" "docker://$REGISTRY_HOST/team/app:also" &&
  skopeo_copy "$IMG2" "docker://$REGISTRY_HOST/lib:stable" || bail "skopeo could not push to regfs-registry"
check_eq "regfs-registry advertises bulk-tags and repo-manifests" "yes yes" \
  "$(cc "$G" has-ext bulk-tags) $(cc "$G" has-ext repo-manifests)"
check_eq "docker-registry advertises neither" "no no" "$(cc "$R" has-ext bulk-tags) $(cc "$R" has-ext repo-manifests)"
check_eq "bulk-tags = every repository's tags with their digests" \
  "$(printf '%s\n' "lib stable ${DIGEST[team/app:v2]}" "team/app also ${DIGEST[team/app:v1]}" "team/app v1 ${DIGEST[team/app:v1]}")" \
  "$(cc "$G" bulk-tags | awk '{print $1, $2, $3}' | sort)"
now=$(date +%s)
check_eq "bulk-tags push times are within the last hour" ok \
  "$(cc "$G" bulk-tags | awk -v n="$now" '$4 < n - 3600 || $4 > n + 60 { bad = 1 } END { print bad ? "bad" : "ok" }')"
check_eq "bulk-tags on docker-registry: ENOTSUP" ENOTSUP "$(errno_of cc "$R" bulk-tags | sed 's/EOPNOTSUPP/ENOTSUP/')"
lm=$(cc "$G" manifest team/app v1 | cut -d' ' -f3)
[ "${lm:-0}" -gt $((now - 3600)) ] && ok "manifest Last-Modified is the push time ($lm)" || fail "manifest Last-Modified is the push time" "got '$lm'"
check "OCI 1.1 tag delete" cc "$G" delete team/app also
check_eq "repo-manifests: one manifest, its remaining tag" "${DIGEST[team/app:v1]} v1" \
  "$(cc "$G" repo-manifests team/app | awk '{print $1, $3}')"
check "delete the manifest by digest" cc "$G" delete team/app "${DIGEST[team/app:v1]}"
check_eq "repo-manifests after deleting: nothing" "" "$(cc "$G" repo-manifests team/app)"

done_testing
