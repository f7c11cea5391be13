#!/bin/bash
# quota.sh — regfs.quota: 10 concurrent pushes of distinct images into a
# repository with a bytes quota. The repository ends at or under its quota
# with exactly as many images as fit (computed here from the files' sizes:
# the base layer shared with another repository does not count), the refused
# pushes got 403 DENIED with a message naming the quota and the usage, and
# nothing partial is stored: the tags are the accepted ones, each fully
# pullable (every blob's sha256 checked), the refused manifests unknown, their
# blobs garbage. Then a tags quota: a new tag past it refused, a re-tag not;
# raised and lowered by SIGHUP, applied to the next push.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin jq curl python3

EXPECT=$REGFS_SRC/tests/integration/tools/usage_expect.py
DATA=$WORK/data
QUOTA=350000
start_regfs_registry "$DATA" "regfs:
  quota:
    - repository: \"team/*\"
      bytes: $QUOTA
    - repository: \"team/small\"
      tags: 2" || bail "regfs-registry did not start"
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/_regfs/usage")" = 200 ]; }
check "the accounting is ready" wait_for 30 ready

mkdir -p "$WORK/f"
cd "$WORK/f" || bail "cd"
digest_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
push_blobs() { # push_blobs REPO FILE…
  local r=$1 f; shift
  for f in "$@"; do put_blob "$REGISTRY_URL" "$r" "$f" "$(digest_of "$f")" || return 1; done
}

# the base layer, also in other/base: shared, so it costs team/app nothing
head -c 200000 /dev/urandom >base
printf '{"architecture":"amd64","os":"linux","base":1}' >cfgb
push_base() { push_blobs other/base cfgb base && oci_manifest cfgb base >mb.json && put_manifest "$REGISTRY_URL" other/base v1 mb.json; }
check "other/base:v1 holds the base layer" push_base

# 10 distinct images (config, own layer of 100000 bytes, the base), blobs uploaded first
for i in 0 1 2 3 4 5 6 7 8 9; do
  printf '{"architecture":"amd64","os":"linux","image":%d}' "$i" >"cfg$i"
  head -c 100000 /dev/urandom >"layer$i"
  push_blobs team/app "cfg$i" "layer$i" base || bail "blobs of image $i"
  oci_manifest "cfg$i" base "layer$i" >"m$i.json"
done
# what each image adds to team/app's exclusive bytes: its config, layer and manifest
EACH=$(( $(stat -c %s cfg0) + 100000 + $(stat -c %s m0.json) ))
for i in 1 2 3 4 5 6 7 8 9; do
  [ $(( $(stat -c %s "cfg$i") + 100000 + $(stat -c %s "m$i.json") )) = "$EACH" ] || bail "images differ in size"
done
FIT=$((QUOTA / EACH))
log "each image adds $EACH exclusive bytes: $FIT of 10 fit in $QUOTA"

# 10 concurrent manifest PUTs
PUTS=()
for i in 0 1 2 3 4 5 6 7 8 9; do
  curl -s -o "out$i" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"m$i.json" "$REGISTRY_URL/v2/team/app/manifests/t$i" >"code$i" &
  PUTS+=($!)
done
wait "${PUTS[@]}"
ACCEPTED=() REFUSED=()
for i in 0 1 2 3 4 5 6 7 8 9; do
  case $(cat "code$i") in
    201) ACCEPTED+=("t$i") ;;
    403) REFUSED+=("$i") ;;
    *) fail "push t$i answered $(cat "code$i")" "$(cat "out$i")" ;;
  esac
done
check_eq "exactly the images that fit were accepted" "$FIT" "${#ACCEPTED[@]}"
check_eq "the others were refused" $((10 - FIT)) "${#REFUSED[@]}"
for i in "${REFUSED[@]}"; do
  check "t$i: 403 DENIED naming the quota and the usage" jq -e --arg q "$QUOTA" \
    '.errors[0].code == "DENIED" and (.errors[0].message | contains("quota") and contains($q + " bytes") and contains("exclusive"))' "out$i"
done

U=$(curl -sf "$REGISTRY_URL/v2/_regfs/usage?repository=team/app")
check "team/app is at or under its quota" jq -e --argjson q "$QUOTA" '.repositories[0].exclusive <= $q' <<<"$U"
check_eq "usage equals the independent computation" \
  "$(python3 "$EXPECT" "$DATA" "$REGISTRY_URL" | jq -S -c '.repositories[] | select(.name == "team/app")')" \
  "$(jq -S -c '.repositories[0]' <<<"$U")"
check_eq "team/app's exclusive bytes are the accepted images'" $((FIT * EACH)) "$(jq '.repositories[0].exclusive' <<<"$U")"

# nothing partial: the tags are the accepted ones, each fully pullable
check_eq "the tags list is the accepted pushes" "$(printf '%s\n' "${ACCEPTED[@]}" | sort | paste -sd,)" \
  "$(curl -sf "$REGISTRY_URL/v2/team/app/tags/list" | jq -r '.tags | sort | join(",")')"
pull_ok() { # pull_ok TAG — the manifest and every blob it names, each hashing to its digest
  local m d
  m=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REGISTRY_URL/v2/team/app/manifests/$1") || return 1
  for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m"); do
    [ "sha256:$(curl -sf "$REGISTRY_URL/v2/team/app/blobs/$d" | sha256sum | cut -d' ' -f1)" = "$d" ] || return 1
  done
}
for t in "${ACCEPTED[@]}"; do check "$t pulls whole" pull_ok "$t"; done
for i in "${REFUSED[@]}"; do
  check_eq "refused t$i: its manifest is not linked" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/team/app/manifests/$(digest_of "m$i.json")")"
done
REFUSED_BLOBS=0
for i in "${REFUSED[@]}"; do REFUSED_BLOBS=$((REFUSED_BLOBS + $(stat -c %s "cfg$i") + 100000)); done
check_eq "the refused images' blobs are garbage" "$REFUSED_BLOBS" \
  "$(curl -sf "$REGISTRY_URL/v2/_regfs/usage" | jq .garbage.blobs)"

# a tags quota (the longest glob wins: team/small has tags 2 and no bytes limit)
push_blobs team/small cfg0 base layer0 || bail "team/small blobs"
code() { curl -s -o "$WORK/f/last" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @"$2" "$REGISTRY_URL/v2/team/small/manifests/$1"; }
check_eq "team/small: tag a" 201 "$(code a m0.json)"
check_eq "team/small: tag b" 201 "$(code b m0.json)"
check_eq "team/small: a third tag is refused" 403 "$(code c m0.json)"
check "the refusal names the tags quota" jq -e '.errors[0].code == "DENIED" and (.errors[0].message | contains("2 tags"))' "$WORK/f/last"
check_eq "team/small: re-pushing tag a is not a new tag" 201 "$(code a m0.json)"
check_eq "team/small has tags a and b" "a,b" "$(curl -sf "$REGISTRY_URL/v2/team/small/tags/list" | jq -r '.tags | sort | join(",")')"

# SIGHUP applies a changed quota list to the next push
reload_quota() { # reload_quota TAGS — team/small's tags limit becomes TAGS
  sed -i "/repository: \"team\/small\"/{n;s/tags: [0-9]*/tags: $1/}" "$REGISTRY_CONFIG"
  local before; before=$(grep -c "SIGHUP: reloaded" "$REGISTRY_LOG")
  kill -HUP "$REGISTRY_PID"
  reloaded() { [ "$(grep -c "SIGHUP: reloaded" "$REGISTRY_LOG")" -gt "$before" ]; }
  wait_for 10 reloaded
}
check "SIGHUP with team/small's quota raised to 3 tags" reload_quota 3
check "the reload names regfs.quota" grep -q "SIGHUP: reloaded .*regfs.quota (2 rules)" "$REGISTRY_LOG"
check "the reload does not ask for a restart for the quota" bash -c "! grep -q 'applied only by a restart.*quota' '$REGISTRY_LOG'"
check_eq "team/small: a third tag is accepted under the raised quota" 201 "$(code c m0.json)"
check_eq "team/small: a fourth tag is refused" 403 "$(code d m0.json)"
check "the refusal names the new quota" jq -e '.errors[0].message | contains("quota of 3 tags")' "$WORK/f/last"
check "SIGHUP with team/small's quota lowered to 1 tag" reload_quota 1
check_eq "team/small: re-pushing tag b over the lowered quota is not a new tag" 201 "$(code b m0.json)"
check_eq "team/small: a new tag over the lowered quota is refused" 403 "$(code e m0.json)"
check_eq "team/small has tags a, b and c" "a,b,c" "$(curl -sf "$REGISTRY_URL/v2/team/small/tags/list" | jq -r '.tags | sort | join(",")')"

done_testing
