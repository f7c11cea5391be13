#!/bin/bash
# Uploads racing on shared digests across two instances on one bucket (Ceph
# RGW): the clients of upload_race.sh (20 for 15 s: same contents in many
# sessions, two PATCHes at once on one session, PUT against a held PATCH,
# DELETE mid-PATCH), each request sent to either instance at random. Then
# every blob object (read with boto3) hashes to its key's digest, every blob a
# 201 answer announced is served intact by both instances, no session lock is
# left behind, and neither instance answered 5xx.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
. "$(dirname "$0")/upload_lib.sh"
need_regfs_registry
s3_start race
s3_registry race || bail "instance 1 did not start"; R1=$REGISTRY_HOST
s3_registry race || bail "instance 2 did not start"; R2=$REGISTRY_HOST

out=$(uploadrace race "$R1,$R2" 15 20 "$WORK/created")
log "status counts: $out"
check "the racing clients got 201 answers" test -s "$WORK/created"
check_fails "no 5xx answer and no client error" grep -Eq '(:5[0-9][0-9]|error:)' <<<"$out"
check "every blob object hashes to its key's digest" check_s3_blobs race
sort -u "$WORK/created" >"$WORK/created.u"
check "instance 1 serves every blob answered 201, intact" check_api_blobs "$R1" "$WORK/created.u"
check "instance 2 serves every blob answered 201, intact" check_api_blobs "$R2" "$WORK/created.u"
layer_links_s3 race >"$WORK/links"
check "every repository's blobs, through the API, hash to their digests" check_api_blobs "$R1" "$WORK/links"
check_eq "no session lock left in the bucket" "" "$(s3tool ls race | grep '\.lock$')"
check_daemon_logs
done_testing
