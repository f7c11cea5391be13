#!/bin/bash
# regfs-registry on S3 when the storage fails:
#  1. RGW stopped during a push: the push fails with a 5xx and a clear error,
#     nothing partial becomes visible (no tag, no blob); /v2/ goes 503 saying the
#     storage is unreachable (health.storagedriver, here interval 1s threshold 2);
#     with RGW back, /v2/ returns to 200 by itself and the same push succeeds.
#  2. A wrong secret key: `serve` reports the S3 rejection clearly (at start or
#     through health), and requests fail promptly instead of hanging.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin skopeo umoci jq
s3_start outage

cfg=$WORK/config.yml
s3_config "$cfg" outage "$(free_port)"
sed -i 's/^\(\s*interval:\).*/\1 1s/; s/^\(\s*threshold:\).*/\1 2/' "$cfg"
start_regfs_registry "$cfg" || bail "regfs-registry did not start"
R=$REGISTRY_HOST; RLOG=$REGISTRY_LOG
v2() { curl -s -o "$WORK/v2.body" -m 10 -w '%{http_code}' "http://$R/v2/"; }

img=$(make_image "$WORK/oci" big 2 200M 100K) || bail "make_image"
skopeo_copy "$img" "dir:$WORK/src" || bail "skopeo oci->dir"

# --- RGW stops while skopeo pushes a 200 MB layer ------------------------------------
skopeo_copy "$img" "docker://$R/out/app:v1" 2>"$WORK/push1.err" &
push=$!
# The push has begun once its upload session exists in the bucket.
wait_for 60 bash -c "python3 '$S3_TOOL' ls outage docker/registry/v2/repositories/out/app/_uploads/ | grep -q ." ||
  log "the upload session did not show up (the push may be over already)"
s3_rgw_stop
t0=$SECONDS
wait "$push"; rc=$?
check_fails "the push fails while RGW is down" test "$rc" -eq 0
[ $((SECONDS - t0)) -lt 120 ] && ok "… within bounded time ($((SECONDS - t0)) s)" || fail "… within bounded time" "$((SECONDS - t0)) s"
if grep -qE '(5[0-9][0-9])|unreachable|unavailable' "$WORK/push1.err"; then ok "skopeo reports a 5xx/storage error"; else
  fail "skopeo reports a 5xx/storage error" "$(tail -n 5 "$WORK/push1.err")"; fi

# A chunked upload hitting the dead storage: 5xx with a JSON error naming the problem.
st=$(curl -s -o "$WORK/post.body" -m 60 -w '%{http_code}' -X POST "http://$R/v2/out/app/blobs/uploads/")
case $st in 5*) ok "POST of an upload answers $st while RGW is down" ;; *) fail "POST of an upload answers 5xx while RGW is down" "got $st" ;; esac
msg=$(jq -r '.errors[0].message // empty' "$WORK/post.body" 2>/dev/null)
case $msg in *"$S3_ENDPOINT"*|*nreachable*|*torage*) ok "the error is clear: $msg" ;; *) fail "the error names the storage problem" "$(head -c 400 "$WORK/post.body")" ;; esac

wait_for 20 bash -c "[ \"\$(curl -s -o /dev/null -m 5 -w '%{http_code}' http://$R/v2/)\" = 503 ]"
check_eq "/v2/ answers 503 once health has failed twice" 503 "$(v2)"
if grep -qiE 'unreachable|storage' "$WORK/v2.body"; then ok "… saying the storage is unreachable"; else fail "… saying the storage is unreachable" "$(head -c 300 "$WORK/v2.body")"; fi

# --- RGW back ---------------------------------------------------------------------------
s3_rgw_start || bail "radosgw did not restart"
wait_for 30 bash -c "[ \"\$(curl -s -o /dev/null -m 5 -w '%{http_code}' http://$R/v2/)\" = 200 ]"
check_eq "/v2/ returns to 200 by itself with RGW back" 200 "$(v2)"
check_eq "nothing partial is visible: no tag" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/out/app/manifests/v1")"
big=$(jq -r '.layers | max_by(.size) | .digest' "$WORK/src/manifest.json")
check_eq "nothing partial is visible: no big blob" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -I "http://$R/v2/out/app/blobs/$big")"
check_eq "… and none in the bucket" "" "$(s3tool ls outage docker/registry/v2/blobs/ | grep "${big#sha256:}")"
check "the same push succeeds now" skopeo_copy "$img" "docker://$R/out/app:v1"
check "… and pulls back byte-identical" skopeo_copy "docker://$R/out/app:v1" "dir:$WORK/got"
check "… (diff)" diff -r "$WORK/src" "$WORK/got"
stop_pid "$REGISTRY_PID"

# --- 2. a wrong secret key ------------------------------------------------------------
bad=$WORK/bad.yml
s3_config "$bad" outage "$(free_port)"
sed -i 's/^\(\s*secretkey:\).*/\1 not-the-secret-key-0000000000000000000000/' "$bad"
port=$(sed -n 's/^\s*addr:.*:\([0-9]*\)$/\1/p' "$bad")
start_bg regfs-badsecret "$REGFS_REGISTRY" serve "$bad"
bpid=$BG_PID
# Either serve refuses to start, or it starts and reports through health.
for ((i = 0; i < 150; i++)); do
  kill -0 "$bpid" 2>/dev/null || break
  code=$(curl -s -o "$WORK/bad.body" -m 5 -w '%{http_code}' "http://127.0.0.1:$port/v2/")
  [ "$code" = 503 ] && break
  sleep 0.1
done
if grep -q "rejected the credentials for access key $S3_AK" "$WORK/regfs-badsecret.log" "$WORK/bad.body" 2>/dev/null; then
  ok "serve reports the S3 rejection naming the access key"
else
  fail "serve reports the S3 rejection naming the access key" "$(tail -n 5 "$WORK/regfs-badsecret.log"; head -c 300 "$WORK/bad.body" 2>/dev/null)"
fi
check_fails "the secret is never logged" grep -q not-the-secret-key "$WORK/regfs-badsecret.log" "$WORK/bad.body"
if kill -0 "$bpid" 2>/dev/null; then
  t0=$SECONDS
  st=$(curl -s -o /dev/null -m 60 -w '%{http_code}' -X POST "http://127.0.0.1:$port/v2/x/y/blobs/uploads/")
  case $st in [45]*) ok "a request fails promptly ($st in $((SECONDS - t0)) s), no hang" ;; *) fail "a request fails promptly" "got '$st' after $((SECONDS - t0)) s" ;; esac
  check_fails "a push fails (bounded)" with_timeout 90 skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$WORK/oci:big" "docker://127.0.0.1:$port/x/y:z"
else
  ok "serve exited at start-up (exit status reported the rejection)"
fi
done_testing
