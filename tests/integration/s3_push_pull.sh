#!/bin/bash
# regfs-registry on S3 (a real Ceph RGW).
#  1. The seed's config file, with only accesskey, secretkey, regionendpoint and
#     bucket changed (and http.addr, to own a free port), runs unchanged: skopeo
#     push and pull of a multi-layer image with a 110 MB layer (several parts of
#     the default 10 MiB chunksize) come back byte-identical; the blobs sit at
#     distribution's keys; no upload state or multipart upload is left behind.
#  2. Redirect on (the seed's default): blob GETs answer 307 to a presigned RGW
#     URL, which RGW serves (bytes hash to the digest) and skopeo pulls through;
#     a tampered presigned URL is refused by RGW. Redirect off
#     (storage.redirect.disable: true): blobs stream through the registry.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin skopeo umoci jq
s3_start registry

cfg=$WORK/config.yml
s3_config "$cfg" registry "$(free_port)"
changed=$(diff "$S3_SEED_CONFIG" "$cfg" | sed -n 's/^> *//p' | cut -d: -f1 | sort | tr '\n' ' ')
check_eq "the config differs from the seed's only in the four S3 keys and http.addr" \
  "accesskey addr bucket regionendpoint secretkey " "$changed"
start_regfs_registry "$cfg" || bail "regfs-registry did not start on S3"
R=$REGISTRY_HOST

img=$(make_image "$WORK/oci" v1 3 2M 110M 300K) || bail "make_image failed"
check "skopeo pushes a 3-layer image with a 110 MB layer" skopeo_copy "$img" "docker://$R/team/app:v1"
check "skopeo pulls it back (blobs via 307 to RGW)" skopeo_copy "docker://$R/team/app:v1" "dir:$WORK/pulled"
skopeo_copy "$img" "dir:$WORK/src" || bail "skopeo oci->dir failed"
check "what came back is byte-identical to what was pushed" diff -r "$WORK/src" "$WORK/pulled"
check "pulled blobs hash to their digests" verify_dir_blobs "$WORK/pulled"

big=$(jq -r '.layers | max_by(.size) | .digest' "$WORK/src/manifest.json")
bighex=${big#sha256:}
size=$(s3tool lsl registry "docker/registry/v2/blobs/sha256/${bighex:0:2}/$bighex/data" | cut -d' ' -f1)
check_eq "the big layer is one object at distribution's key" \
  "$(jq -r '.layers | max_by(.size) | .size' "$WORK/src/manifest.json")" "${size:-none}"
check_eq "the tag link is at distribution's key" \
  "sha256:$(sha256sum <"$WORK/src/manifest.json" | cut -d' ' -f1)" \
  "$(s3tool get registry docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link)"
check_eq "no upload state left under _uploads" "" "$(s3tool ls registry | grep /_uploads/)"
check_eq "no multipart upload left in the bucket" "" "$(s3tool uploads registry)"

# --- 2. redirect ------------------------------------------------------------
hdrs=$(curl -s -o /dev/null -D - "http://$R/v2/team/app/blobs/$big")
status=$(printf '%s' "$hdrs" | head -n1 | awk '{print $2}')
loc=$(printf '%s' "$hdrs" | sed -n 's/^[Ll]ocation: *//p' | tr -d '\r')
check_eq "a blob GET answers 307" 307 "$status"
case $loc in
  "$S3_ENDPOINT"/registry/docker/registry/v2/blobs/*X-Amz-Signature=*) ok "the Location is a presigned RGW URL for the blob's key" ;;
  *) fail "the Location is a presigned RGW URL for the blob's key" "Location: $loc" ;;
esac
got=$(curl -sf "$loc" | sha256sum | cut -d' ' -f1)
check_eq "RGW serves the presigned URL: the bytes hash to the digest" "$bighex" "$got"
sig=${loc##*X-Amz-Signature=}
bad=${loc%X-Amz-Signature=*}X-Amz-Signature=$(printf '%s' "$sig" | tr '0-9a-f' '1-9a-f0')
check_eq "a tampered presigned URL is refused by RGW" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$bad")"
longer=${loc/X-Amz-Expires=/X-Amz-Expires=9}
check_eq "a presigned URL with a longer expiry is refused by RGW" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$longer")"

# Redirect off: the same bucket through a second instance that streams blobs.
cfg2=$WORK/config-noredirect.yml
s3_config "$cfg2" registry "$(free_port)"
sed -i 's/^  delete:/  redirect:\n    disable: true\n  delete:/' "$cfg2"
start_regfs_registry "$cfg2" || bail "second regfs-registry did not start"
R2=$REGISTRY_HOST
check_eq "redirect off: a blob GET answers 200 from the registry" 200 \
  "$(curl -s -o "$WORK/blob" -w '%{http_code}' "http://$R2/v2/team/app/blobs/$big")"
check_eq "redirect off: the streamed bytes hash to the digest" "$bighex" "$(sha256sum <"$WORK/blob" | cut -d' ' -f1)"
check "redirect off: skopeo pulls through the registry" skopeo_copy "docker://$R2/team/app:v1" "dir:$WORK/pulled2"
check "redirect off: byte-identical" diff -r "$WORK/src" "$WORK/pulled2"
check_eq "a ranged blob GET (redirect off) returns the range" \
  "$(head -c 1000 "$WORK/blob" | tail -c 900 | sha256sum)" \
  "$(curl -s -H 'Range: bytes=100-999' "http://$R2/v2/team/app/blobs/$big" | sha256sum)"
check_eq "/v2/ answers 200 with storage healthy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/")"
done_testing
