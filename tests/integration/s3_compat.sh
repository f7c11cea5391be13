#!/bin/bash
# Cross-compatibility with Debian's docker-registry 2.8.2 on
# the same S3 bucket, both directions. Both registries read the same config
# file (the seed's, S3 keys pointed at the test RGW). An image pushed through
# one is pulled byte-identical through the other, tags and catalog agree, and
# a blob written by one is at the same key the other reads.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin skopeo umoci jq "$DOCKER_REGISTRY"
s3_start shared

cfg_r=$WORK/regfs.yml; cfg_d=$WORK/docker.yml
s3_config "$cfg_r" shared "$(free_port)"
s3_config "$cfg_d" shared "$(free_port)"
start_regfs_registry "$cfg_r" || bail "regfs-registry did not start on S3"
RR=$REGISTRY_HOST
start_docker_registry "$cfg_d" || bail "docker-registry did not start on S3"
RD=$REGISTRY_HOST

imgA=$(make_image "$WORK/oci" a 3 1M 12M 64K) || bail "make_image"
imgB=$(make_image "$WORK/oci" b 2 3M 40K) || bail "make_image"
skopeo_copy "$imgA" "dir:$WORK/srcA" && skopeo_copy "$imgB" "dir:$WORK/srcB" || bail "skopeo oci->dir"

# docker-registry writes, regfs-registry reads
check "docker-registry: push image a (12 MB layer)" skopeo_copy "$imgA" "docker://$RD/from-docker/app:v1"
check "regfs-registry pulls what docker-registry pushed" skopeo_copy "docker://$RR/from-docker/app:v1" "dir:$WORK/gotA"
check "… byte-identical" diff -r "$WORK/srcA" "$WORK/gotA"
check_eq "regfs-registry lists docker-registry's tag" '["v1"]' \
  "$(curl -s "http://$RR/v2/from-docker/app/tags/list" | jq -c .tags)"

# regfs-registry writes, docker-registry reads
check "regfs-registry: push image b" skopeo_copy "$imgB" "docker://$RR/from-regfs/app:v2"
check "docker-registry pulls what regfs-registry pushed" skopeo_copy "docker://$RD/from-regfs/app:v2" "dir:$WORK/gotB"
check "… byte-identical" diff -r "$WORK/srcB" "$WORK/gotB"
check_eq "docker-registry lists regfs-registry's tag" '["v2"]' \
  "$(curl -s "http://$RD/v2/from-regfs/app/tags/list" | jq -c .tags)"
check_eq "both catalogs agree" "$(curl -s "http://$RD/v2/_catalog" | jq -c .)" \
  "$(curl -s "http://$RR/v2/_catalog" | jq -c .)"

# A tag moved by one is seen by the other; a manifest deleted by one is gone on both.
check "regfs-registry tags docker-registry's image again" skopeo_copy "docker://$RD/from-docker/app:v1" "docker://$RR/from-docker/app:v1b"
check_eq "docker-registry sees the new tag" '["v1","v1b"]' \
  "$(curl -s "http://$RD/v2/from-docker/app/tags/list" | jq -c '.tags | sort')"
dig=$(curl -s -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$RR/v2/from-regfs/app/manifests/v2" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
check_eq "docker-registry deletes regfs-registry's manifest" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$RD/v2/from-regfs/app/manifests/$dig")"
check_eq "regfs-registry no longer serves it" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$RR/v2/from-regfs/app/manifests/$dig")"

# Same keys: every blob key in the bucket hashes to its name (read with boto3).
bad=0
for d in $(s3_blob_keys shared); do
  h=${d#sha256:}
  [ "$(s3tool get shared "docker/registry/v2/blobs/sha256/${h:0:2}/$h/data" | sha256sum | cut -d' ' -f1)" = "$h" ] || bad=$((bad + 1))
done
check_eq "every blob in the bucket is at distribution's key and hashes to it" 0 "$bad"
check_eq "no multipart upload left in the bucket" "" "$(s3tool uploads shared)"
done_testing
