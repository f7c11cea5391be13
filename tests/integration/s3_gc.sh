#!/bin/bash
# `regfs-registry garbage-collect CONFIG` on S3 frees exactly
# the unreferenced blobs. Image A is pushed to two repositories, image B to one;
# B's manifest is deleted; after GC the bucket holds exactly A's blobs (config,
# layers, manifest) — the expected sets come from the manifests skopeo wrote,
# the stored set from an independent S3 listing (boto3). --dry-run deletes
# nothing. A still pulls byte-identical afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin skopeo umoci jq
s3_start gcbucket

cfg=$WORK/config.yml
s3_config "$cfg" gcbucket "$(free_port)"
start_regfs_registry "$cfg" || bail "regfs-registry did not start"
R=$REGISTRY_HOST
imgA=$(make_image "$WORK/oci" a 2 6M 100K) || bail "make_image"
imgB=$(make_image "$WORK/oci" b 3 7M 200K 50K) || bail "make_image"
skopeo_copy "$imgA" "dir:$WORK/A" && skopeo_copy "$imgB" "dir:$WORK/B" || bail "skopeo oci->dir"
check "push A to gc/one:a" skopeo_copy "$imgA" "docker://$R/gc/one:a"
check "push A to gc/two:a" skopeo_copy "$imgA" "docker://$R/gc/two:a"
check "push B to gc/one:b" skopeo_copy "$imgB" "docker://$R/gc/one:b"

blobs_of() {  # the digests an image's dir: copy references, and its manifest's
  { jq -r '.config.digest, .layers[].digest' "$1/manifest.json"
    echo "sha256:$(sha256sum <"$1/manifest.json" | cut -d' ' -f1)"; } | sort -u
}
wantA=$(blobs_of "$WORK/A"); wantB=$(blobs_of "$WORK/B")
check_eq "before GC the bucket holds A's and B's blobs" "$(printf '%s\n%s\n' "$wantA" "$wantB" | sort -u)" "$(s3_blob_keys gcbucket)"

digB="sha256:$(sha256sum <"$WORK/B/manifest.json" | cut -d' ' -f1)"
check_eq "delete B's manifest" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$R/v2/gc/one/manifests/$digB")"
stop_pid "$REGISTRY_PID"

check "garbage-collect --dry-run runs" with_timeout 120 "$REGFS_REGISTRY" garbage-collect --dry-run "$cfg"
check_eq "--dry-run deletes nothing" "$(printf '%s\n%s\n' "$wantA" "$wantB" | sort -u)" "$(s3_blob_keys gcbucket)"
check "garbage-collect runs" with_timeout 120 "$REGFS_REGISTRY" garbage-collect "$cfg"
check_eq "after GC exactly A's blobs remain" "$wantA" "$(s3_blob_keys gcbucket)"

start_regfs_registry "$cfg" || bail "regfs-registry did not restart"
R=$REGISTRY_HOST
check "A still pulls from gc/one" skopeo_copy "docker://$R/gc/one:a" "dir:$WORK/gotA1"
check "A still pulls from gc/two" skopeo_copy "docker://$R/gc/two:a" "dir:$WORK/gotA2"
check "… byte-identical" diff -r "$WORK/A" "$WORK/gotA1"
check_eq "B is gone" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/gc/one/manifests/$digB")"
done_testing
