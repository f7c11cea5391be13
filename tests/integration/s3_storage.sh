#!/bin/bash
# The storage-driver conformance sequence (tools/storage-check.c) on the
# filesystem driver and on the S3 driver against a real Ceph RGW: the same
# operations, the same expected results; plus the S3-only checks (resume on a
# second instance, presigned URLs, batched deletes, rootdirectory layout,
# error messages for a wrong secret, a missing bucket, a dead endpoint).
# Afterwards the bucket must hold no leftover objects or multipart uploads,
# as seen by an independent client (boto3).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_ours "$STORAGE_CHECK"

check "storage-check on the filesystem driver" with_timeout 120 "$STORAGE_CHECK" fs "$WORK/fs"

s3_start conformance
export S3_BUCKET=conformance
out=$(with_timeout 240 env S3_DEAD_ENDPOINT="http://127.0.0.1:$(free_port)" "$STORAGE_CHECK" s3 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/# s3: /'
if [ $rc -eq 0 ]; then ok "storage-check on the S3 driver (RGW)"; else fail "storage-check on the S3 driver (RGW)" "$(printf '%s\n' "$out" | grep -A2 '^not ok')"; fi

# An upload distribution's driver left in progress (parts 6 MiB + 1000 B, so
# the small last part must be completed first) is continued by our writer.
head -c $((6 << 20)) /dev/urandom >"$WORK/p1"; head -c 1000 /dev/urandom >"$WORK/p2"
head -c 3000000 /dev/urandom >"$WORK/p3"
s3tool mpu conformance dist/_uploads/u/data "$WORK/p1" "$WORK/p2" >/dev/null
check_eq "a distribution-style upload in progress resumes with its size" $(( (6 << 20) + 1000 )) \
  "$(with_timeout 60 "$STORAGE_CHECK" s3-append /dist/_uploads/u/data "$WORK/p3")"
check_eq "… and commits with every byte" "$(cat "$WORK/p1" "$WORK/p2" "$WORK/p3" | sha256sum)" \
  "$(s3tool get conformance dist/_uploads/u/data | sha256sum)"
# A crashed session: an object (what a finished request left) plus a stale
# in-progress upload; the object is authoritative.
s3tool put conformance crash/data "$WORK/p2"
s3tool mpu conformance crash/data "$WORK/p1" >/dev/null
check_eq "after a crash the object, not the stale upload, is resumed" 1000 \
  "$(with_timeout 60 "$STORAGE_CHECK" s3-append /crash/data "$WORK/p3")"
check_eq "… and commits object + new bytes" "$(cat "$WORK/p2" "$WORK/p3" | sha256sum)" \
  "$(s3tool get conformance crash/data | sha256sum)"
s3tool rmrf conformance dist/ && s3tool rmrf conformance crash/

check_eq "no objects left in the bucket" "" "$(s3tool ls conformance)"
check_eq "no multipart uploads left in the bucket" "" "$(s3tool uploads conformance)"
done_testing
