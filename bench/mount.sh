#!/bin/bash
# bench/mount.sh [REPOS] [TAGS] — the regfs mount on a large registry (issue 3).
#
# Generates REPOS x TAGS (default 1000 x 10) as a registry:2 storage layout
# directly (bench/mount_gen.py; cached under /var/tmp between runs), serves it
# with docker-registry 2.8.2 and regfs-registry, and measures in the same run:
#   baseline   bench/mount_baseline.sh (curl + jq, how operators compute the
#              deduplicated total today); sampled on BASELINE_REPOS repositories
#              (default 50) and scaled linearly to REPOS — set BASELINE_REPOS=REPOS
#              for the full walk (~280 s against registry:2 at 1000 x 10).
#   regfs      cold `du -s` (fresh mount, empty disk cache), warm `du -s`,
#              `ls -lR` warm and cold (another fresh mount), HTTP requests from
#              .regfs/stats, peak RSS of the daemon.
# Prints one block per registry with the ratios against the baseline, and
# checks that every total equals the generator's independently computed one.
# Env: KINDS="docker regfs", REGFS_BUILD (default build), BASELINE_REPOS.
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
need_regfs_mount
REGISTRY_LOG_LEVEL=error
REPOS=${1:-1000} TAGS=${2:-10} BASELINE_REPOS=${BASELINE_REPOS:-50}
[ "$BASELINE_REPOS" -gt "$REPOS" ] && BASELINE_REPOS=$REPOS

DATA=/var/tmp/regfs-bench-mount-v2-${REPOS}x${TAGS}   # v2: a config per image
if [ ! -s "$DATA/expected" ]; then
  log "generating $REPOS x $TAGS into $DATA (once) ..."
  rm -rf "$DATA"; mkdir -p "$DATA"
  python3 "$BENCH_DIR/mount_gen.py" "$DATA/root" "$REPOS" "$TAGS" >"$DATA/expected.tmp" || bail "generator failed"
  mv "$DATA/expected.tmp" "$DATA/expected"
fi
EXPECTED=$(cat "$DATA/expected")
log "expected deduplicated total: $EXPECTED bytes"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0fx", a / b; else print "-" }'; }
reqs() { jq -r .requests.total "$1/.regfs/stats"; }
rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

bench_kind() {
  local kind=$1 url mnt=$WORK/mnt-$1 t0 t1 out
  case $kind in
    docker) start_docker_registry "$DATA/root" || return 1 ;;
    regfs) need_regfs_registry; start_regfs_registry "$DATA/root" || return 1 ;;
  esac
  url=$REGISTRY_URL


  # Baseline (sampled): its own total for the sample, time scaled to REPOS.
  t0=$(now)
  out=$(bash "$BENCH_DIR/mount_baseline.sh" "$url" "$BASELINE_REPOS" 2>"$WORK/baseline.err")
  t1=$(now)
  local b_t b_req b_full
  b_t=$(secs "$t0" "$t1"); b_req=$(sed -n 's/^requests: //p' "$WORK/baseline.err")
  b_full=$(awk -v t="$b_t" -v n="$BASELINE_REPOS" -v N="$REPOS" 'BEGIN { printf "%.1f", t * N / n }')
  [ "$BASELINE_REPOS" = "$REPOS" ] && { check_eq "$kind: baseline total = generator's" "$EXPECTED" "$out"; }

  # Cold du: a fresh mount with an empty disk cache.
  start_regfs_mount "$url" "$mnt" --cache-dir "$WORK/cache-$kind" --ttl 300 || return 1
  local pid=$MOUNT_PID
  t0=$(now); out=$(du -s -B1 "$mnt" | cut -f1); t1=$(now)
  local cold=$(secs "$t0" "$t1") cold_req; cold_req=$(reqs "$mnt")
  check_eq "$kind: du -s -B1 (cold) = generator's total" "$EXPECTED" "$out"
  t0=$(now); out=$(du -s -B1 "$mnt" | cut -f1); t1=$(now)
  local warm=$(secs "$t0" "$t1") warm_req=$(( $(reqs "$mnt") - cold_req ))
  check_eq "$kind: du -s -B1 (warm) = generator's total" "$EXPECTED" "$out"
  check_eq "$kind: df used = generator's total" "$EXPECTED" "$(df -B1 --output=used "$mnt" | tail -n1 | tr -d ' ')"
  t0=$(now); ls -lR "$mnt" >"$WORK/lsR-warm" 2>&1; t1=$(now)
  local lsw=$(secs "$t0" "$t1")
  local rss; rss=$(rss_mb "$pid")
  unmount "$mnt"

  # Cold ls -lR: another fresh mount, empty cache.
  start_regfs_mount "$url" "$mnt" --cache-dir "$WORK/cache2-$kind" --ttl 300 || return 1
  t0=$(now); ls -lR "$mnt" >"$WORK/lsR-cold" 2>&1; t1=$(now)
  local lsc=$(secs "$t0" "$t1") lsc_req; lsc_req=$(reqs "$mnt")
  check_eq "$kind: ls -lR lists every tag" "$((REPOS * TAGS))" "$(grep -c ' -> ../_manifests/' "$WORK/lsR-cold")"
  # Remount on the warm disk cache: manifests come from disk.
  unmount "$mnt"
  start_regfs_mount "$url" "$mnt" --cache-dir "$WORK/cache-$kind" --ttl 300 || return 1
  t0=$(now); du -s -B1 "$mnt" >/dev/null; t1=$(now)
  local remount=$(secs "$t0" "$t1") remount_req; remount_req=$(reqs "$mnt")
  unmount "$mnt"
  stop_pid "$REGISTRY_PID"

  cat <<EOF
# ---- $kind registry, $REPOS repositories x $TAGS tags ----
#   baseline curl+jq:   ${b_t}s for $BASELINE_REPOS repos ($b_req requests) => ~${b_full}s for $REPOS
#   du -s cold:         ${cold}s, $cold_req requests   ($(ratio "$b_full" "$cold") faster than baseline)
#   du -s warm:         ${warm}s, $warm_req requests
#   du -s remount:      ${remount}s, $remount_req requests (disk cache warm)
#   ls -lR cold:        ${lsc}s, $lsc_req requests
#   ls -lR warm:        ${lsw}s
#   regfs peak RSS:     ${rss} MB
EOF
}

for k in ${KINDS:-docker regfs}; do bench_kind "$k" || fail "$k: bench ran"; done
done_testing
