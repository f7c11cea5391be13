#!/bin/bash
# Runs every S3 test (tests/integration/s3_*.sh) on one shared Ceph RGW
# cluster, started once here, instead of one cluster per script.
#   tests/integration/s3_suite.sh [NAME…]    (default: all s3_*.sh)
# Exit status: 0 when every script passed (or skipped), 1 otherwise.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d "${REGFS_TMPDIR:-/var/tmp}/regfs-s3-suite.XXXXXX") || exit 1
trap '"$HERE/ceph.sh" stop "$DIR/ceph" --wipe >/dev/null 2>&1; rm -rf "$DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "# starting the shared Ceph RGW ..."
timeout -k 5 180 "$HERE/ceph.sh" start "$DIR/ceph" >"$DIR/ceph-start.log" 2>&1 || {
  tail -n 30 "$DIR/ceph-start.log"; echo "Bail out! could not start Ceph RGW"; exit 1; }
export S3_CLUSTER_DIR=$DIR/ceph
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$HERE"/s3_*.sh; do
    n=$(basename "$f" .sh); case $n in s3_lib|s3_suite) continue ;; esac; names+=("$n")
  done
fi
failed=()
for n in "${names[@]}"; do
  t0=$SECONDS
  bash "$HERE/$n.sh" >"$DIR/$n.out" 2>&1; rc=$?
  case $rc in
    0) echo "ok - $n ($((SECONDS - t0)) s)" ;;
    77) echo "ok - $n # SKIP $(grep -m1 SKIP "$DIR/$n.out")" ;;
    *) echo "not ok - $n ($((SECONDS - t0)) s)"; grep -E '^not ok|^Bail' -A3 "$DIR/$n.out" | sed 's/^/#   /' | head -n 30
       failed+=("$n") ;;
  esac
done
[ ${#failed[@]} -eq 0 ] || { echo "# failed: ${failed[*]}"; exit 1; }
