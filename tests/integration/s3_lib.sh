# tests/integration/s3_lib.sh — sourced by the S3 scripts (s3_*.sh) after lib.sh.
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/s3_lib.sh"
#   s3_start BUCKET…            # Ceph + RGW on free loopback ports, buckets created;
#                               # exports S3_ENDPOINT S3_AK S3_SK S3_REGION; stopped by stop_all
#   s3_config FILE BUCKET PORT [EXTRA_YAML]   # the seed's config, 4 keys changed
#   s3_registry BUCKET          # start_regfs_registry on BUCKET (s3_config on a free port)
#   s3tool ls|lsl|uploads|get|rmrf BUCKET [PREFIX]   # boto3, independent of our driver
#
# One cluster per script (a few seconds with memstore); the scripts run one at a time.
# tests/integration/s3_suite.sh runs them all on one shared cluster instead
# (S3_CLUSTER_DIR set: s3_start reuses that cluster and only (re)creates the
# buckets, emptied first; the cluster is the suite's to stop).

S3_CEPH=$REGFS_SRC/tests/integration/ceph.sh
S3_SEED_CONFIG=$REGFS_SRC/tests/integration/data/seed-config.yml
S3_TOOL=$REGFS_SRC/tests/integration/tools/s3tool.py
STORAGE_CHECK=$REGFS_BUILD/tests/integration/storage-check

s3tool() { with_timeout 120 python3 "$S3_TOOL" "$@"; }

s3_start() {
  local b
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool uuidgen; do
    command -v "$b" >/dev/null 2>&1 || skip_all "$b not installed (tools/setup installs ceph)"
  done
  python3 -c 'import boto3' 2>/dev/null || skip_all "python3 boto3 missing (tools/setup installs python3-boto3)"
  if [ -n "${S3_CLUSTER_DIR:-}" ] && [ -f "$S3_CLUSTER_DIR/env" ]; then
    S3_CEPH_DIR=$S3_CLUSTER_DIR
    # shellcheck disable=SC1091
    . "$S3_CEPH_DIR/env"
    export S3_ENDPOINT S3_AK S3_SK S3_REGION RGW_PORT
    for b in "$@"; do
      s3tool mb "$b" >/dev/null 2>&1 || true
      s3tool rmrf "$b" || bail "cannot empty bucket $b on the shared cluster"
    done
    log "shared Ceph RGW at $S3_ENDPOINT (buckets: $*)"
    return 0
  fi
  S3_CEPH_DIR=$WORK/ceph
  add_cleanup "'$S3_CEPH' stop '$S3_CEPH_DIR' --wipe"
  if ! with_timeout 180 "$S3_CEPH" start "$S3_CEPH_DIR" "$@" >"$WORK/ceph-start.log" 2>&1; then
    diag "$(tail -n 30 "$WORK/ceph-start.log")"
    bail "could not start Ceph RGW"
  fi
  # shellcheck disable=SC1091
  . "$S3_CEPH_DIR/env"
  export S3_ENDPOINT S3_AK S3_SK S3_REGION RGW_PORT
  log "Ceph RGW at $S3_ENDPOINT (buckets: $*)"
}

s3_rgw_stop()  { "$S3_CEPH" rgw-stop "$S3_CEPH_DIR"; }
s3_rgw_start() { with_timeout 120 "$S3_CEPH" rgw-start "$S3_CEPH_DIR" >>"$WORK/ceph-start.log" 2>&1; }

# s3_config FILE BUCKET PORT [EXTRA_YAML] — the seed's config file
# (tests/integration/data/seed-config.yml, a copy of the users' production
# config) with only accesskey, secretkey, regionendpoint and bucket changed,
# and http.addr set to 127.0.0.1:PORT so the test owns its port.
# EXTRA_YAML replaces nothing: it is appended (top-level sections only).
s3_config() {
  local file=$1 bucket=$2 port=$3 extra=${4:-}
  sed -e "s|^\(\s*accesskey:\).*|\1 $S3_AK|" \
      -e "s|^\(\s*secretkey:\).*|\1 $S3_SK|" \
      -e "s|^\(\s*regionendpoint:\).*|\1 $S3_ENDPOINT|" \
      -e "s|^\(\s*bucket:\).*|\1 $bucket|" \
      -e "s|^\(\s*addr:\).*|\1 127.0.0.1:$port|" \
      "$S3_SEED_CONFIG" >"$file"
  [ -n "$extra" ] && printf '%s\n' "$extra" >>"$file"
  return 0
}

# s3_registry BUCKET — a regfs-registry on BUCKET with the seed's config (s3_config, a free
# port, the file in $WORK); sets what start_regfs_registry sets (REGISTRY_HOST …) and
# fails as it does. Instances on one bucket share its contents.
s3_registry() {
  local port cfg
  port=$(free_port) || return 1
  cfg=$WORK/r-$1-$port.yml
  s3_config "$cfg" "$1" "$port" && start_regfs_registry "$cfg"
}

# s3_blob_keys BUCKET — the blob digests stored in BUCKET (rootdirectory "/").
s3_blob_keys() {
  s3tool ls "$1" docker/registry/v2/blobs/ | sed -n 's|.*/blobs/sha256/../\([0-9a-f]*\)/data$|sha256:\1|p' | sort
}
