#!/bin/bash
# bench/mount.sh [REPOS] [TAGS] — the regfs mount on a large registry.
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
ACCEPT_MF='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
reqs() { jq -r .requests.total "$1/.regfs/stats"; }
kreqs() { jq -r '.kernel.lookup + .kernel.getattr + .kernel.readdir + .kernel.opendir' "$1/.regfs/stats"; }
rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

bench_kind() {
  local kind=$1 url mnt=$WORK/mnt-$1 t0 t1 out
  # The storage in the page cache, as on a registry that has been serving
  # (the floor measurement below drops the caches, which would otherwise
  # leave the next registry reading 10,000 manifests from disk).
  find "$DATA/root" -type f -print0 | xargs -0 cat >/dev/null
  case $kind in
    docker) start_docker_registry "$DATA/root" || return 1 ;;
    regfs) need_regfs_registry; start_regfs_registry "$DATA/root" || return 1 ;;
  esac
  url=$REGISTRY_URL
  # The registry's own capacity here (wrk, 16 connections): what one tag's
  # manifest GET and one config blob GET cost it. A mount that needs both per
  # tag (registry:2: no Last-Modified, so a tag's time is its config's
  # `created`) cannot be faster than tags/rate_m + tags/rate_b.
  local r0 t0tag mf cfg rate_m rate_b
  r0=$(curl -s "$url/v2/_catalog?n=1" | jq -r '.repositories[0]')
  t0tag=$(curl -s "$url/v2/$r0/tags/list" | jq -r '.tags[0]')
  mf=$(curl -s -H "Accept: $ACCEPT_MF" "$url/v2/$r0/manifests/$t0tag")
  cfg=$(jq -r .config.digest <<<"$mf")
  rate_m=$(wrk -c16 -t2 -d3s -H "Accept: $ACCEPT_MF" "$url/v2/$r0/manifests/$t0tag" | awk '/Requests\/sec/ { print $2 }')
  rate_b=$(wrk -c16 -t2 -d3s "$url/v2/$r0/blobs/$cfg" | awk '/Requests\/sec/ { print $2 }')
  local floor_req; floor_req=$(awk -v n=$((REPOS * TAGS)) -v a="$rate_m" -v b="$rate_b" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", n / a + n / b; else print "-" }')


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
  local k0; k0=$(kreqs "$mnt")
  t0=$(now); out=$(du -s -B1 "$mnt" | cut -f1); t1=$(now)
  local warm=$(secs "$t0" "$t1") warm_req=$(( $(reqs "$mnt") - cold_req ))
  local warm_k=$(( $(kreqs "$mnt") - k0 ))
  check_eq "$kind: du -s -B1 (warm) = generator's total" "$EXPECTED" "$out"
  # Steady state: the first warm du still asks getattr once per directory
  # (the kernel forgets a directory's atime after its first, uncached
  # listing); from the second on, nothing reaches the daemon.
  k0=$(kreqs "$mnt")
  t0=$(now); du -s -B1 "$mnt" >/dev/null; t1=$(now)
  local warm2=$(secs "$t0" "$t1") warm2_k=$(( $(kreqs "$mnt") - k0 ))
  # Floors on this machine, same run: (a) du of a tree of the same shape on
  # tmpfs (the kernel's own cost per entry); (b) du with the kernel's caches
  # dropped but the daemon's memory warm (the FUSE round trips a cold du
  # cannot avoid: two readdirs per directory plus a getattr per ttl one).
  local shadow; shadow=$(mktemp -d /dev/shm/regfs-bench-shadow.XXXXXX)
  (cd "$mnt" && find . -mindepth 1 -printf '%y %p\n') | python3 -c '
import os, sys
root = sys.argv[1]
for line in sys.stdin:
    t, p = line.rstrip("\n").split(" ", 1)
    q = os.path.join(root, p)
    if t == "d": os.makedirs(q, exist_ok=True)
    elif t == "l": os.symlink("x", q)
    else: open(q, "w").close()
' "$shadow"
  du -s "$shadow" >/dev/null
  t0=$(now); du -s "$shadow" >/dev/null; t1=$(now)
  local tmpfs_du=$(secs "$t0" "$t1") entries; entries=$(find "$shadow" | wc -l)
  rm -rf "$shadow"
  sync; echo 2 >/proc/sys/vm/drop_caches
  k0=$(kreqs "$mnt"); local r0; r0=$(reqs "$mnt")
  t0=$(now); du -s -B1 "$mnt" >/dev/null; t1=$(now)
  local dropped=$(secs "$t0" "$t1") dropped_k=$(( $(kreqs "$mnt") - k0 )) dropped_r=$(( $(reqs "$mnt") - r0 ))
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
#   registry capacity:  ${rate_m} manifest GETs/s, ${rate_b} config blob GETs/s (wrk -c16)
#     => one manifest + one config GET per tag takes >= ${floor_req}s on this registry
#   du -s cold:         ${cold}s, $cold_req requests   ($(ratio "$b_full" "$cold") faster than baseline)
#   du -s warm:         ${warm}s, $warm_req requests, $warm_k kernel requests to the daemon
#   du -s warm again:   ${warm2}s, $warm2_k kernel requests
#     floor: same tree ($entries entries) on tmpfs: ${tmpfs_du}s
#     floor: kernel caches dropped, daemon warm: ${dropped}s, $dropped_k kernel requests, $dropped_r registry requests
#   du -s remount:      ${remount}s, $remount_req requests (disk cache warm)
#   ls -lR cold:        ${lsc}s, $lsc_req requests
#   ls -lR warm:        ${lsw}s
#   regfs peak RSS:     ${rss} MB
EOF
}

for k in ${KINDS:-docker regfs}; do bench_kind "$k" || fail "$k: bench ran"; done
done_testing
