#!/bin/bash
# auth_token.sh — regfs-registry with auth.token (the Docker token spec): the
# issuer is tools/tokenserver.py with keys made here by openssl, one per alg
# (RS256, ES256, EdDSA: all three certificates in one rootcertbundle). skopeo
# push and pull and a regfs mount go through the Bearer flow (a pull-only user's
# rm of a tag through the mount is EACCES); cross-repository mounts need pull on
# the source; keys from a jwks file with signingalgorithms restricted; curl with bad
# tokens (expired, wrong audience, wrong issuer, another repository, alg none,
# a pull-only token pushing) gets 401/403 with the challenge naming the scope;
# the catalog needs registry:catalog:*; SIGHUP re-reads the bundle; and the
# same config file starts docker-registry, which skopeo uses with the same issuer.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin skopeo umoci jq python3 openssl curl
TOKSRV=$REGFS_SRC/tests/integration/tools/tokenserver.py

# --- keys: one per alg, their certificates in one bundle --------------------------
mkdir -p "$WORK/keys"
for a in RS256 ES256 EdDSA; do
  case $a in
    RS256) k=(-newkey rsa:2048) ;;
    ES256) k=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    EdDSA) k=(-newkey ed25519) ;;
  esac
  openssl req -x509 "${k[@]}" -nodes -days 2 -subj "/CN=issuer-$a" \
    -keyout "$WORK/keys/$a.key" -out "$WORK/keys/$a.crt" 2>/dev/null || bail "openssl req $a"
done
cat "$WORK/keys/"{RS256,ES256,EdDSA}.crt >"$WORK/keys/bundle.pem"

TPORT=$(free_port)
PORT=$(free_port)
CFG=$WORK/config.yml
write_registry_config "$CFG" "$WORK/data" "$PORT" "auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: regfs-test
    issuer: regfs-test-issuer
    rootcertbundle: $WORK/keys/bundle.pem
# the bad tokens below come from one address: above the default 10 failures a
# minute it would get 429 instead of the answers checked
regfs:
  auth:
    maxfailures: 100"

# tokserver ALG [OPTION…] — (re)start the issuer on TPORT signing with ALG's key.
# alice may do anything; bob may only pull team/* (and list the catalog).
tokserver() {
  local a=$1; shift
  [ -n "${TOKPID:-}" ] && stop_pid "$TOKPID"
  start_bg "tokenserver-$a" python3 "$TOKSRV" --port "$TPORT" --alg "$a" \
    --key "$WORK/keys/$a.key" --cert "$WORK/keys/$a.crt" --user alice:s3cret --user bob:pw \
    --grant 'alice:*:*' --grant 'alice:registry:catalog:*' --grant 'bob:team/*:pull' \
    --grant 'bob:registry:catalog:*' "$@"
  TOKPID=$BG_PID
  wait_http "http://127.0.0.1:$TPORT/token" || bail "tokenserver ($a) did not start"
}
# mint ALG [OPTION…] — one token from ALG's key (tokenserver.py --mint).
mint() {
  local a=$1; shift
  python3 "$TOKSRV" --mint --alg "$a" --key "$WORK/keys/$a.key" --cert "$WORK/keys/$a.crt" \
    --service regfs-test --issuer regfs-test-issuer "$@"
}
# req METHOD PATH TOKEN — the status code; the headers in $WORK/h, the body in $WORK/b.
req() {
  local auth=()
  [ -n "$3" ] && auth=(-H "Authorization: Bearer $3")
  curl -s -o "$WORK/b" -D "$WORK/h" -m 10 -X "$1" "${auth[@]}" -w '%{http_code}' "$REGISTRY_URL$2"
}
challenge() { tr -d '\r' <"$WORK/h" | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p'; }
errcode() { jq -r '.errors[0].code' "$WORK/b" 2>/dev/null; }

tokserver ES256
start_regfs_registry "$CFG" || bail "regfs-registry with auth.token did not start"
RL=$REGISTRY_LOG
REALM="realm=\"http://127.0.0.1:$TPORT/token\",service=\"regfs-test\""
M=/v2/team/app/manifests/v1

check_eq "GET /v2/ without a token: 401" 401 "$(req GET /v2/ "")"
check_eq "... Bearer challenge with realm and service, no scope" "Bearer $REALM" "$(challenge)"
check_eq "Basic credentials instead of a token: 401" 401 \
  "$(curl -s -o /dev/null -D "$WORK/h" -u alice:s3cret -w '%{http_code}' "$REGISTRY_URL/v2/")"
check_eq "... the same challenge (no error code: no token was sent)" "Bearer $REALM" "$(challenge)"

# --- skopeo through the Bearer flow ------------------------------------------------
make_image "$WORK/oci" v1 2 40K 8K >/dev/null || bail make_image
SRC_DIGEST=$(jq -r '.manifests[0].digest' "$WORK/oci/index.json")
check "skopeo push as alice (ES256 tokens)" skopeo_copy --dest-creds alice:s3cret \
  "oci:$WORK/oci:v1" "docker://$REGISTRY_HOST/team/app:v1"
tokserver EdDSA
skopeo_x inspect --creds alice:s3cret --raw "docker://$REGISTRY_HOST/team/app:v1" >"$WORK/raw.json"
check_eq "skopeo pull as alice (EdDSA tokens): the manifest pushed" "$SRC_DIGEST" \
  "sha256:$(sha256sum <"$WORK/raw.json" | cut -d' ' -f1)"
check "skopeo copy back to an OCI layout" skopeo_copy --src-creds bob:pw \
  "docker://$REGISTRY_HOST/team/app:v1" "oci:$WORK/back:v1"
check_eq "... bob (pull-only) pulled the same manifest" "$SRC_DIGEST" \
  "$(jq -r '.manifests[0].digest' "$WORK/back/index.json")"
check_fails "skopeo push as bob (pull-only) is refused" skopeo_copy --dest-creds bob:pw \
  "oci:$WORK/oci:v1" "docker://$REGISTRY_HOST/team/app:bob"
check_eq "... and tag bob does not exist" 404 "$(req GET /v2/team/app/manifests/bob "$(mint EdDSA --sub t --scope repository:team/app:pull)")"

# --- the mount through the Bearer flow (RS256, kid = libtrust key ID) ---------------
if [ -x "${REGFS_MOUNT:-}" ] && [ -e /dev/fuse ]; then
  tokserver RS256 --kid-libtrust
  MNT=$WORK/mnt
  if start_regfs_mount "$REGISTRY_URL" "$MNT" --user alice:s3cret --cache-dir "$WORK/cache"; then
    check_eq "mount: ls the tags" "v1" "$(ls "$MNT/team/app/_tags")"
    check_eq "mount: the manifest hashes to the pushed digest" "${SRC_DIGEST#sha256:}" \
      "$(sha256sum <"$MNT/team/app/_manifests/$SRC_DIGEST/manifest.json" | cut -d' ' -f1)"
    unmount "$MNT"
  else
    fail "regfs mounts the token registry"
  fi
  if start_regfs_mount "$REGISTRY_URL" "$WORK/mnt-bob" --user bob:pw --cache-dir "$WORK/cache-bob"; then
    OUT=$(rm "$WORK/mnt-bob/team/app/_tags/v1" 2>&1)
    check_eq "mount as bob (pull-only): rm of a tag is refused with EACCES" \
      "rm: cannot remove '$WORK/mnt-bob/team/app/_tags/v1': Permission denied" "$OUT"
    check_eq "... and the tag is still there" 200 "$(req GET $M "$(mint RS256 --scope repository:team/app:pull)")"
    unmount "$WORK/mnt-bob"
  else
    fail "regfs mounts the token registry as bob"
  fi
else
  log "mount checks skipped (no regfs or /dev/fuse)"
fi

# --- bad tokens: 401 invalid_token, with the scope the request needs -----------------
SC='scope="repository:team/app:pull"'
for a in RS256 ES256 EdDSA; do
  check_eq "$a: a good pull token reads the manifest" 200 "$(req GET $M "$(mint $a --sub t --scope repository:team/app:pull)")"
  check_eq "$a: expired: 401" 401 "$(req GET $M "$(mint $a --scope repository:team/app:pull --exp-offset -600)")"
  check_eq "... invalid_token challenge naming the scope" "Bearer $REALM,$SC,error=\"invalid_token\"" "$(challenge)"
done
check_eq "wrong audience: 401" 401 "$(req GET $M "$(mint ES256 --aud other-registry --scope repository:team/app:pull)")"
check "... the message says audience" grep -q audience "$WORK/b"
check_eq "wrong issuer: 401" 401 "$(req GET $M "$(mint EdDSA --iss evil --scope repository:team/app:pull)")"
check "... the message says issuer" grep -q issuer "$WORK/b"
check_eq "not yet valid (nbf in an hour): 401" 401 "$(req GET $M "$(mint RS256 --nbf-offset 3600 --scope repository:team/app:pull)")"
NONE="$(printf '{"alg":"none"}' | base64 -w0 | tr '+/' '-_' | tr -d =).$(mint RS256 --scope repository:team/app:pull | cut -d. -f2)."
check_eq "alg none: 401" 401 "$(req GET $M "$NONE")"
T=$(mint ES256 --scope repository:team/app:pull)
check_eq "a signature from another key: 401" 401 "$(req GET $M "${T%.*}.$(mint RS256 --scope x:y:pull | cut -d. -f3)")"

# --- valid tokens lacking the action: 403 DENIED ------------------------------------
check_eq "a token for another repository: 403" 403 "$(req GET $M "$(mint RS256 --scope repository:team/other:pull)")"
check_eq "... DENIED" DENIED "$(errcode)"
check_eq "... insufficient_scope challenge naming the scope" "Bearer $REALM,$SC,error=\"insufficient_scope\"" "$(challenge)"
PULL=$(mint EdDSA --sub bob --scope repository:team/app:pull)
check_eq "a pull-only token starting an upload: 403" 403 "$(req POST /v2/team/app/blobs/uploads/ "$PULL")"
check_eq "... the challenge asks for pull,push" "Bearer $REALM,scope=\"repository:team/app:pull,push\",error=\"insufficient_scope\"" "$(challenge)"
check_eq "a pull-only token deleting a manifest: 403" 403 "$(req DELETE "/v2/team/app/manifests/$SRC_DIGEST" "$PULL")"
check_eq "no token for an upload: 401 with the push scope" "Bearer $REALM,scope=\"repository:team/app:pull,push\"" \
  "$(req POST /v2/team/app/blobs/uploads/ "" >/dev/null; challenge)"

# --- cross-repository mount: needs pull on the source too ----------------------------
LAYER=$(jq -r '.layers[0].digest' "$WORK/raw.json")
UP="/v2/team/app2/blobs/uploads/?mount=$LAYER&from=team/app"
check_eq "mount from team/app with pull there: 201 (mounted)" 201 \
  "$(req POST "$UP" "$(mint ES256 --scope repository:team/app2:pull,push --scope repository:team/app:pull)")"
check_eq "... the blob is in team/app2" 200 "$(req HEAD "/v2/team/app2/blobs/$LAYER" "$(mint ES256 --scope repository:team/app2:pull)")"
check_eq "mount from team/app without pull there: 202 (an upload, nothing mounted)" 202 \
  "$(req POST "${UP/app2/app3}" "$(mint ES256 --scope repository:team/app3:pull,push)")"
check_eq "... the blob is not in team/app3" 404 "$(req HEAD "/v2/team/app3/blobs/$LAYER" "$(mint ES256 --scope repository:team/app3:pull)")"
check_eq "... no token: the challenge asks for the source's pull too" \
  "Bearer $REALM,scope=\"repository:team/app3:pull,push repository:team/app:pull\"" \
  "$(req POST "${UP/app2/app3}" "" >/dev/null; challenge)"

# --- the catalog: registry:catalog:* ----------------------------------------------
check_eq "catalog without a token: 401" 401 "$(req GET /v2/_catalog "")"
check_eq "... scope registry:catalog:*" "Bearer $REALM,scope=\"registry:catalog:*\"" "$(challenge)"
check_eq "catalog with a repository token: 403" 403 "$(req GET /v2/_catalog "$PULL")"
check_eq "catalog with registry:catalog:*: 200" 200 "$(req GET /v2/_catalog "$(mint ES256 --scope 'registry:catalog:*')")"
check_eq "... lists the repositories" "team/app team/app2 team/app3" "$(jq -r '.repositories | join(" ")' "$WORK/b")"

# --- no token in the logs --------------------------------------------------------------
SIG=$(cut -d. -f3 <<<"$PULL")
check_eq "no token signature in the registry log" 0 "$(grep -c -F -e "$SIG" -e "${NONE%%.*}" "$RL")"
check "refusals are logged with their reason" grep -q "expired" "$RL"

# --- SIGHUP re-reads the bundle ----------------------------------------------------------
GOOD=$(mint RS256 --scope repository:team/app:pull)
cp "$WORK/keys/ES256.crt" "$WORK/keys/bundle.pem"
kill -HUP "$REGISTRY_PID"
check "SIGHUP: logged" wait_for 10 grep -q "auth.token keys re-read" "$RL"
check_eq "after SIGHUP an RS256 token (its cert removed) is refused" 401 "$(req GET $M "$GOOD")"
check_eq "... an ES256 token still works" 200 "$(req GET $M "$(mint ES256 --scope repository:team/app:pull)")"
stop_pid "$REGISTRY_PID"

# --- keys from a JSON Web Key Set, algorithms restricted ----------------------------------
# The JWKs are written from the certificates' public keys (DER SubjectPublicKeyInfo:
# Ed25519's 32 bytes and P-256's 04||x||y end it; RSA's modulus from openssl).
python3 - "$WORK/keys" >"$WORK/keys/jwks.json" <<'PY' || bail "jwks"
import base64, json, subprocess, sys
d = sys.argv[1]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def spki(a):
    pub = subprocess.run(["openssl", "x509", "-in", f"{d}/{a}.crt", "-noout", "-pubkey"], check=True, capture_output=True).stdout
    return pub, subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True, capture_output=True).stdout
_, ed = spki("EdDSA")
_, ec = spki("ES256")
pub, _ = spki("RS256")
mod = subprocess.run(["openssl", "rsa", "-pubin", "-noout", "-modulus"], input=pub, check=True, capture_output=True).stdout
n = bytes.fromhex(mod.decode().strip().split("=", 1)[1])
print(json.dumps({"keys": [
    {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64(ed[-32:])},
    {"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": b64(ec[-64:-32]), "y": b64(ec[-32:])},
    {"kty": "RSA", "kid": "rsa-1", "n": b64(n), "e": "AQAB"}]}))
PY
JPORT=$(free_port)
write_registry_config "$WORK/jwks.yml" "$WORK/data" "$JPORT" "auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: regfs-test
    issuer: regfs-test-issuer
    jwks: $WORK/keys/jwks.json
    signingalgorithms:
      - EdDSA
      - ES256"
if start_regfs_registry "$WORK/jwks.yml"; then
  check_eq "jwks: an EdDSA token naming its kid: 200" 200 "$(req GET $M "$(mint EdDSA --kid ed-1 --scope repository:team/app:pull)")"
  check_eq "jwks: an ES256 token naming its kid: 200" 200 "$(req GET $M "$(mint ES256 --kid ec-1 --scope repository:team/app:pull)")"
  check_eq "jwks: an unknown kid: 401" 401 "$(req GET $M "$(mint ES256 --kid ec-2 --scope repository:team/app:pull)")"
  check_eq "jwks: a kid of another key type: 401" 401 "$(req GET $M "$(mint ES256 --kid ed-1 --scope repository:team/app:pull)")"
  check_eq "jwks: RS256 (a key in the set, not in signingalgorithms): 401" 401 \
    "$(req GET $M "$(mint RS256 --kid rsa-1 --scope repository:team/app:pull)")"
  check "... the message names signingalgorithms" grep -q signingalgorithms "$WORK/b"
  stop_pid "$REGISTRY_PID"
else
  fail "regfs-registry starts with auth.token.jwks"
fi
printf '{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"AAAA","y":"AAAA"}]}' >"$WORK/keys/bad.json"
sed "s#$WORK/keys/jwks.json#$WORK/keys/bad.json#" "$WORK/jwks.yml" >"$WORK/bad.yml"
OUT=$(with_timeout 10 "$REGFS_REGISTRY" serve "$WORK/bad.yml" 2>&1); RC=$?
check_eq "a broken jwks file: the registry does not start (exit 1)" 1 "$RC"
check "... and says which file and why" grep -q "bad.json: key 0: a malformed EC JWK" <<<"$OUT"

# --- the same config file starts docker-registry; skopeo works with the same issuer ------
# (registry:2 2.8 verifies RS256 and ES256 only: an Ed25519 root certificate stops
# its start, so its bundle holds the other two)
if [ -x "${DOCKER_REGISTRY:-}" ]; then
  cat "$WORK/keys/"{RS256,ES256}.crt >"$WORK/keys/bundle.pem"
  tokserver RS256
  if start_docker_registry "$CFG"; then
    check "docker-registry, same config: skopeo push as alice" skopeo_copy --dest-creds alice:s3cret \
      "oci:$WORK/oci:v1" "docker://$REGISTRY_HOST/team/app:v2"
    check "docker-registry: skopeo inspect as bob" skopeo_x inspect --creds bob:pw --raw \
      "docker://$REGISTRY_HOST/team/app:v2"
    check_eq "docker-registry: a token for another repository is refused too" 401 \
      "$(req GET $M "$(mint RS256 --scope repository:team/other:pull)")"
    stop_pid "$REGISTRY_PID"
  else
    fail "docker-registry starts with the same config file"
  fi
else
  log "docker-registry checks skipped (\$DOCKER_REGISTRY not installed)"
fi

done_testing
