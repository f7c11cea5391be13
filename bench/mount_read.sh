#!/bin/bash
# bench/mount_read.sh — reading one large blob through the regfs mount against
# `curl` of the same blob from the same registry, in one run (regfs-registry and
# docker-registry 2.8.2). Not a test: prints MB/s and the ratio mount/curl.
#
# Usage: bench/mount_read.sh [--size MB] [--reps N]
#   --size MB   size of the blob (default 1024; above 64 MiB the mount reads it by
#               Range requests instead of filling its disk cache first)
#   --reps N    best of N for each figure (default 3)
# Env: REGFS_BUILD (default ./build, use a release build), KINDS="regfs docker",
#      MOUNT_OPTS (extra regfs options, e.g. "--cache-size 0").
# Each mount read is a fresh mount (the kernel keeps a blob's pages once read),
# `cat FILE >/dev/null`, as a user copying a layer out would; the blob's file in
# the registry's storage is read into the page cache first, so both sides read
# the same warm bytes. One read per registry is checked against the blob's sha256.
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
SIZE_MB=1024 REPS=3
bench_options 2,16 size:SIZE_MB reps:REPS -- "$@"
. "$BENCH_DIR/progress.sh"
need_regfs_mount
need_bin curl jq sha256sum
export REGISTRY_LOG_LEVEL=error REGISTRY_LOG_ACCESSLOG_DISABLED=true
KINDS=${KINDS:-$(registry_kinds)}
say() { progress_clear; echo "bench: $*" >&2; }
REPO=bench/read

# --- the blob, a config and a manifest -------------------------------------------------
say "making a ${SIZE_MB} MiB blob of random bytes…"
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/blob"
BDIG=sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)
BSIZE=$(stat -c %s "$WORK/blob")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$BDIG" >"$WORK/config"
CDIG=sha256:$(sha256sum "$WORK/config" | cut -d' ' -f1)
oci_manifest "$WORK/config" "$WORK/blob" >"$WORK/manifest"
MDIG=sha256:$(sha256sum "$WORK/manifest" | cut -d' ' -f1)

push_all() {
  put_blob "$1" "$REPO" "$WORK/blob" "$BDIG" && put_blob "$1" "$REPO" "$WORK/config" "$CDIG" &&
    put_manifest "$1" "$REPO" v1 "$WORK/manifest"
}

now() { date +%s.%N; }
mbps() { awk -v b="$BSIZE" -v a="$1" -v c="$2" 'BEGIN { if (c > a) printf "%.0f", b / (c - a) / 1048576; else print 0 }'; }
best() { local b=0 v; for v in "$@"; do [ "$v" -gt "$b" ] && b=$v; done; echo "$b"; }

declare -A CURL MNT OKSUM
for kind in $KINDS; do
  start_registry "$kind" "$WORK/data-$kind" || { say "$kind did not start"; exit 1; }
  url=$REGISTRY_URL
  push_all "$url" || { say "push to $kind failed"; exit 1; }
  find "$WORK/data-$kind" -type f -print0 | xargs -0 cat >/dev/null   # storage in the page cache
  say "$kind: curl, $REPS reads…"
  progress_begin "$kind" reads $((2 * REPS + 1))
  vals=()
  for ((i = 0; i < REPS; i++)); do
    r=$(curl -sS -o /dev/null -w '%{size_download} %{time_total}' "$url/v2/$REPO/blobs/$BDIG" |
      awk -v s="$BSIZE" '$1 == s && $2 > 0 { printf "%.0f", $1 / $2 / 1048576 }')
    vals+=("${r:-0}")
    progress_step "$BSIZE"
  done
  CURL[$kind]=$(best "${vals[@]}")
  say "$kind: mount, $REPS reads (a fresh mount each)…"
  vals=()
  for ((i = 0; i <= REPS; i++)); do
    mnt=$WORK/mnt-$kind-$i
    # shellcheck disable=SC2086
    start_regfs_mount "$url" "$mnt" --cache-dir "$WORK/cache-$kind-$i" ${MOUNT_OPTS:-} || exit 1
    f=$mnt/$REPO/_manifests/$MDIG/layers/0.tar
    if [ "$i" -eq "$REPS" ]; then   # the last, untimed: the bytes are the blob's
      OKSUM[$kind]=$([ "sha256:$(sha256sum "$f" | cut -d' ' -f1)" = "$BDIG" ] && echo yes || echo NO)
    else
      stat "$f" >/dev/null || exit 1
      t0=$(now); cat "$f" >/dev/null || exit 1; t1=$(now)
      vals+=("$(mbps "$t0" "$t1")")
    fi
    unmount "$mnt"; stop_pid "$MOUNT_PID"; rm -rf "$WORK/cache-$kind-$i"
    progress_step "$BSIZE"
  done
  progress_end
  MNT[$kind]=$(best "${vals[@]}")
  stop_pid "$REGISTRY_PID"
done

echo
echo "reading a $((BSIZE / 1048576)) MiB blob: regfs mount (cat) vs curl -o /dev/null, $(date -u +%F), $(nproc) cores, loopback, best of $REPS"
printf '%-16s %12s %12s %12s %10s\n' registry "curl MiB/s" "mount MiB/s" mount/curl "sha256 ok"
for kind in $KINDS; do
  printf '%-16s %12s %12s %12s %10s\n' "$kind" "${CURL[$kind]}" "${MNT[$kind]}" \
    "$(awk -v a="${MNT[$kind]}" -v b="${CURL[$kind]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" "${OKSUM[$kind]}"
done
