#!/bin/bash
# bench/mount_usage.sh [REPOS] [TAGS] — the mount's storage accounting on a large registry.
#
# The registry of bench/mount.sh (REPOS x TAGS, default 1000 x 10, written as a
# registry:2 storage layout by bench/mount_gen.py, cached under /var/tmp), served by
# regfs-registry (KINDS="regfs docker" adds docker-registry, whose cold walk takes
# ~45 s). In the same run, per registry:
#   du cold      `du -s -B1` of a fresh mount (empty disk cache)
#   usage cold   `cat .regfs/usage` of another fresh mount (its own empty cache)
#   usage warm   the same file again within the ttl; du warm likewise
#   extension    `curl` of GET /v2/_regfs/usage when the registry advertises `usage`
# and checks that .regfs/usage's total and du equal the generator's total. The
# target: usage cold no slower than du cold + 20%.
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
need_regfs_mount
need_bin jq curl
# shellcheck disable=SC2034 # read by lib.sh (write_registry_config)
REGISTRY_LOG_LEVEL=error
REPOS=${1:-1000} TAGS=${2:-10} KINDS=${KINDS:-regfs}

DATA=/var/tmp/regfs-bench-mount-v2-${REPOS}x${TAGS}   # shared with bench/mount.sh
if [ ! -s "$DATA/expected" ]; then
  log "generating $REPOS x $TAGS into $DATA (once) ..."
  rm -rf "$DATA"; mkdir -p "$DATA"
  python3 "$BENCH_DIR/mount_gen.py" "$DATA/root" "$REPOS" "$TAGS" >"$DATA/expected.tmp" || bail "generator failed"
  mv "$DATA/expected.tmp" "$DATA/expected"
fi
EXPECTED=$(cat "$DATA/expected")
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%+.0f%%", (a - b) * 100 / b; else print "-" }'; }

bench_kind() {
  local kind=$1 t0 t1 out
  find "$DATA/root" -type f -print0 | xargs -0 cat >/dev/null   # storage in the page cache
  case $kind in
    docker) start_docker_registry "$DATA/root" || return 1 ;;
    regfs) need_regfs_registry; start_regfs_registry "$DATA/root" || return 1 ;;
  esac
  local url=$REGISTRY_URL
  start_regfs_mount "$url" "$WORK/du-$kind" --cache-dir "$WORK/cache-du-$kind" --ttl 600 || return 1
  t0=$(now); out=$(du -s -B1 "$WORK/du-$kind" | cut -f1); t1=$(now)
  local du_cold; du_cold=$(secs "$t0" "$t1")
  check_eq "$kind: du -s -B1 = generator's total" "$EXPECTED" "$out"
  t0=$(now); du -s -B1 "$WORK/du-$kind" >/dev/null; t1=$(now)
  local du_warm; du_warm=$(secs "$t0" "$t1")
  unmount "$WORK/du-$kind"; stop_pid "$MOUNT_PID"

  start_regfs_mount "$url" "$WORK/u-$kind" --cache-dir "$WORK/cache-u-$kind" --ttl 600 || return 1
  t0=$(now); cat "$WORK/u-$kind/.regfs/usage" >"$WORK/usage-$kind.json"; t1=$(now)
  local u_cold; u_cold=$(secs "$t0" "$t1")
  check_eq "$kind: .regfs/usage total = generator's total" "$EXPECTED" "$(jq .total.du_bytes "$WORK/usage-$kind.json")"
  check_eq "$kind: .regfs/usage lists every repository" "$REPOS" "$(jq '.repositories | length' "$WORK/usage-$kind.json")"
  t0=$(now); cat "$WORK/u-$kind/.regfs/usage" >/dev/null; t1=$(now)
  local u_warm; u_warm=$(secs "$t0" "$t1")
  t0=$(now); cat "$WORK/u-$kind/.regfs/usage.txt" >/dev/null; t1=$(now)
  local t_warm; t_warm=$(secs "$t0" "$t1")
  local ext="not offered"
  if curl -sI "$url/v2/" | grep -qi '^x-regfs-extensions:.*\busage\b'; then
    ext=$(curl -s -o /dev/null -w '%{time_total}' "$url/v2/_regfs/usage")" s"
  fi
  unmount "$WORK/u-$kind"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
  log "$kind ($REPOS x $TAGS): du -s cold $du_cold s, warm $du_warm s; .regfs/usage cold $u_cold s ($(pct "$u_cold" "$du_cold") vs du cold), warm $u_warm s; usage.txt warm $t_warm s; extension endpoint: $ext"
}

for k in $KINDS; do bench_kind "$k" || fail "$k: bench did not run"; done
done_testing
