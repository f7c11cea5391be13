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
need_bin "$STORAGE_CHECK"

check "storage-check on the filesystem driver" with_timeout 120 "$STORAGE_CHECK" fs "$WORK/fs"

s3_start conformance
export S3_BUCKET=conformance
out=$(with_timeout 240 env S3_DEAD_ENDPOINT="http://127.0.0.1:$(free_port)" "$STORAGE_CHECK" s3 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/# s3: /'
if [ $rc -eq 0 ]; then ok "storage-check on the S3 driver (RGW)"; else fail "storage-check on the S3 driver (RGW)" "$(printf '%s\n' "$out" | grep -A2 '^not ok')"; fi

check_eq "no objects left in the bucket" "" "$(s3tool ls conformance)"
check_eq "no multipart uploads left in the bucket" "" "$(s3tool uploads conformance)"
done_testing
