#!/bin/bash
# s3_usage.sh — the usage extension on S3 storage (Ceph RGW): two repositories
# sharing a base layer, an untagged manifest after a deletion; the figures
# equal sums of the pushed files' sizes computed here, and a restart (the
# startup walk over the bucket) gives the same figures.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin jq curl
s3_start usage
s3_registry usage || bail "regfs-registry on S3 did not start"
CFG=$REGISTRY_CONFIG
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/_regfs/usage")" = 200 ]; }
usage() { curl -sf "$REGISTRY_URL/v2/_regfs/usage" | jq -S -c .; }
check "the accounting is ready" wait_for 60 ready

cd "$WORK" || bail "cd"
sz() { stat -c %s "$1"; }
push() { # push REPO TAG CONFIG LAYER… — blobs, then the manifest (REPO-TAG.json)
  local r=$1 t=$2 f; shift 2
  for f in "$@"; do put_blob "$REGISTRY_URL" "$r" "$f" "sha256:$(sha256sum "$f" | cut -d' ' -f1)" || return 1; done
  oci_manifest "$@" >"${r//\//_}-$t.json" && put_manifest "$REGISTRY_URL" "$r" "$t" "${r//\//_}-$t.json"
}
head -c 300000 /dev/urandom >base; head -c 50000 /dev/urandom >l1; head -c 70000 /dev/urandom >l2
printf '{"architecture":"amd64","os":"linux","i":1}' >c1; printf '{"architecture":"amd64","os":"linux","i":2}' >c2
check "s/a:v1" push s/a v1 c1 base l1
check "s/b:v1" push s/b v1 c2 base l2
A=$(( $(sz c1) + $(sz base) + $(sz l1) + $(sz s_a-v1.json) ))
B=$(( $(sz c2) + $(sz base) + $(sz l2) + $(sz s_b-v1.json) ))
U=$(usage)
check_eq "stored = every pushed byte once" $((A + B - $(sz base))) "$(jq .stored <<<"$U")"
check_eq "s/a: bytes, exclusive (the base is shared)" "$A $((A - $(sz base)))" \
  "$(jq -r '.repositories[] | select(.name == "s/a") | "\(.bytes) \(.exclusive)"' <<<"$U")"
check_eq "s/b: bytes, exclusive" "$B $((B - $(sz base)))" \
  "$(jq -r '.repositories[] | select(.name == "s/b") | "\(.bytes) \(.exclusive)"' <<<"$U")"
DIG=sha256:$(sha256sum s_b-v1.json | cut -d' ' -f1)
check_eq "DELETE s/b's manifest" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/s/b/manifests/$DIG")"
U=$(usage)
check_eq "s/a owns the base alone now" "$A $A" \
  "$(jq -r '.repositories[] | select(.name == "s/a") | "\(.bytes) \(.exclusive)"' <<<"$U")"
check_eq "s/b's own blobs and manifest are garbage" $((B - $(sz base))) "$(jq .garbage.blobs <<<"$U")"
stop_pid "$REGISTRY_PID"
start_regfs_registry "$CFG" || bail "restart"
check "ready after the restart (walk over the bucket)" wait_for 60 ready
check_eq "the walk over S3 gives the same figures" "$U" "$(usage)"
done_testing
