#!/bin/bash
# bench/mount_scale.sh [REPOS…] — how the mount's memory and time grow with the registry.
#
# For each REPOS (default: 500 2000 10000, i.e. 5,000 / 20,000 / 100,000 tags at
# TAGS=10 per repository), generates the registry:2 storage layout directly with
# bench/mount_gen.py (cached under /var/tmp, shared with bench/mount.sh), serves it
# with regfs-registry (once its startup accounting walk is done, as on a registry
# that has been serving), and on a fresh mount with an empty disk cache measures:
#   cold `du -s -B1` (time; the total is checked against the generator's),
#   the daemon's peak RSS (VmHWM of /proc/PID/status) right after it,
#   the FUSE round-trip floor: `du -s` again with the kernel's caches dropped but
#   the daemon warm (what bench/mount.sh prints as "kernel caches dropped"),
# and prints one line per size with the time per tag beside the floor per tag,
# and the RSS ratio of each size against the first. A second table gives, per
# tag, the FUSE requests the kernel sent (lookup+getattr+opendir+readdir, the
# mount's own counters in .regfs/stats) in the cold and the floor run, the
# registry requests of the cold run (all of them, not per tag), and the CPU time (user+system, in ms per
# tag) of the daemon, of the registry and of du itself (its system time is the
# kernel's side of FUSE): on a shared machine CPU time is steadier than the
# elapsed time, which other processes' load stretches.
# Env: TAGS (default 10), REGFS_BUILD (default build), MOUNT_OPTS (extra regfs options),
# PROFILE=DIR: after each cold du, DIR/<tags>.smaps (the daemon's /proc/PID/smaps),
#   DIR/<tags>.stats (.regfs/stats) and a summary of the daemon's resident memory by
#   kind of mapping (main heap, other malloc arenas, thread stacks, other anonymous
#   mappings, files) printed as comments; with HEAPTRACK=1 the daemon also runs under
#   heaptrack (DIR/<tags>.heaptrack.zst; RSS then includes heaptrack's own memory) and
#   the heap at its peak is printed by component (bench/heap_components.py).
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
need_regfs_mount
need_regfs_registry
# shellcheck disable=SC2034 # read by lib.sh (write_registry_config)
REGISTRY_LOG_LEVEL=error
TAGS=${TAGS:-10}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(500 2000 10000)

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
per_tag_ms() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.3f", t * 1000 / n }'; }
per_tag() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.2f", a / n }'; }
# CPU seconds (user+system) a process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# kernel requests and registry requests so far (reading .regfs/stats costs a
# lookup and a few getattr: negligible)
kreqs() { jq '.kernel.lookup + .kernel.getattr + .kernel.opendir + .kernel.readdir' "$1/.regfs/stats"; }
rreqs() { jq '.requests.total' "$1/.regfs/stats"; }
# du -s -B1 MOUNT: prints the total; DU_CPU = its user+system seconds
DU_CPU=
timed_du() {
  local t out
  t=$(mktemp)
  out=$( { TIMEFORMAT='%U %S'; time du -s -B1 "$1" | cut -f1; } 2>"$t")
  DU_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$t"); rm -f "$t"
  echo "$out"
}

generate() {
  local repos=$1 data=/var/tmp/regfs-bench-mount-v2-${1}x${TAGS} t0 t1
  if [ ! -s "$data/expected" ]; then
    log "generating $repos x $TAGS into $data (once) ..."
    rm -rf "$data"; mkdir -p "$data"
    t0=$(now)
    python3 "$BENCH_DIR/mount_gen.py" "$data/root" "$repos" "$TAGS" >"$data/expected.tmp" || bail "generator failed"
    mv "$data/expected.tmp" "$data/expected"
    t1=$(now); log "generated in $(secs "$t0" "$t1") s"
  fi
  echo "$data"
}

# smaps_summary FILE — resident KB by kind of mapping. glibc's secondary malloc arenas
# are 64 MiB reservations (a rw- part and a --- rest, adjacent); thread stacks a rw-
# mapping right above a 4 KiB --- guard; anything else anonymous is a large malloc
# (mmap'd chunk) or a library's own mapping.
smaps_summary() {
  awk '
    function hex(s,   i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
    function flush() { if (name == "") return; kind[n] = k; rss[n] = r; n++ }
    /^[0-9a-f]+-[0-9a-f]+ / {
      flush(); split($1, a, "-"); lo = hex(a[1]); hi = hex(a[2])
      perm[n] = $2; start[n] = lo; end[n] = hi; path = $6
      name = "x"; k = path == "" ? "anon" : path ~ /^\[heap\]/ ? "heap" : path ~ /^\[stack\]/ ? "stack" : path ~ /^\[/ ? "other" : "file"; r = 0; next }
    /^Rss:/ { r = $2 }
    END {
      flush()
      for (i = 0; i < n; i++) {
        c = kind[i]
        if (c == "anon" && perm[i] ~ /^rw/) {
          if (i + 1 < n && kind[i + 1] == "anon" && perm[i + 1] ~ /^---/ && start[i + 1] == end[i] &&
              (end[i + 1] - start[i]) % 67108864 == 0) c = "arena"
          else if (i > 0 && kind[i - 1] == "anon" && perm[i - 1] ~ /^---/ && end[i - 1] == start[i] &&
                   end[i - 1] - start[i - 1] <= 65536) c = "thread stack"
          else c = "anon mmap"
        }
        if (c == "thread stack") nst++
        if (c == "arena") nar++
        tot[c] += rss[i]; all += rss[i]
      }
      for (c in tot) if (tot[c]) printf "#   %-14s %9.1f MB\n", c, tot[c] / 1024
      printf "#   %-14s %9.1f MB (%d thread stacks, %d secondary arenas)\n", "total", all / 1024, nst, nar
    }' "$1"
}

# daemon_pid PID — PID itself, or under heaptrack the descendant that runs fs/regfs.
daemon_pid() {
  local p=$1 c g i
  for ((i = 0; i < 50; i++)); do
    for c in $p $(pgrep -P "$p"); do
      [ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$(readlink -f "$REAL_MOUNT")" ] && { echo "$c"; return; }
      for g in $(pgrep -P "$c"); do
        [ "$(readlink "/proc/$g/exe" 2>/dev/null)" = "$(readlink -f "$REAL_MOUNT")" ] && { echo "$g"; return; }
      done
    done
    sleep 0.1
  done
  echo "$p"
}

REAL_MOUNT=$REGFS_MOUNT
if [ -n "${PROFILE:-}" ]; then
  mkdir -p "$PROFILE"
  if [ "${HEAPTRACK:-0}" = 1 ]; then
    need_bin heaptrack
    REGFS_MOUNT=$WORK/regfs-heaptrack
    # shellcheck disable=SC2016 # $HT_NAME and $@ are the wrapper's
    printf '#!/bin/sh\nexec heaptrack -o "%s/$HT_NAME.heaptrack" "%s" "$@"\n' "$PROFILE" "$REAL_MOUNT" >"$REGFS_MOUNT"
    chmod +x "$REGFS_MOUNT"
  fi
fi

LINES=()
PROFILES=()
REQ_LINES=()
FIRST_RSS=
bench_size() {
  local repos=$1 data tags=$(($1 * TAGS)) mnt=$WORK/mnt-$1 t0 t1 out i
  data=$(generate "$repos") || return 1
  local expected; expected=$(cat "$data/expected")
  # The storage in the page cache, as on a registry that has been serving.
  find "$data/root" -type f -print0 | xargs -0 cat >/dev/null
  start_regfs_registry "$data/root" || return 1
  # A registry that has been serving has built its storage accounting (the
  # usage extension answers 503 until then): that startup walk of the whole
  # storage is not part of a du, and would otherwise compete with it for CPU.
  wait_for 300 curl -sf -o /dev/null "$REGISTRY_URL/v2/_regfs/usage?n=1" ||
    log "$tags tags: the registry's storage accounting was not ready within 300 s"
  export HT_NAME=$tags # the heaptrack file's name
  # shellcheck disable=SC2086 # MOUNT_OPTS is a list of words
  start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-$repos" --ttl 300 ${MOUNT_OPTS:-} || return 1
  local pid k0 k1 k2 r1 c0 c1 c2 g0 g1 du1 du2
  pid=$(daemon_pid "$MOUNT_PID")
  k0=$(kreqs "$mnt"); c0=$(cpu_s "$pid"); g0=$(cpu_s "$REGISTRY_PID")
  t0=$(now); timed_du "$mnt" >"$WORK/du.out"; t1=$(now); out=$(cat "$WORK/du.out"); du1=$DU_CPU
  local cold; cold=$(secs "$t0" "$t1")
  local rss; rss=$(rss_mb "$pid")
  c1=$(cpu_s "$pid"); g1=$(cpu_s "$REGISTRY_PID")
  k1=$(kreqs "$mnt"); r1=$(rreqs "$mnt")
  if [ -n "${PROFILE:-}" ]; then
    cat "/proc/$pid/smaps" >"$PROFILE/$tags.smaps"
    cat "$mnt/.regfs/stats" >"$PROFILE/$tags.stats"
    PROFILES+=("# $tags tags: resident memory right after the cold du (VmHWM $rss MB):" \
      "$(smaps_summary "$PROFILE/$tags.smaps")")
  fi
  check_eq "$tags tags: du -s -B1 (cold) = generator's total" "$expected" "$out"
  check_eq "$tags tags: df used = generator's total" "$expected" "$(df -B1 --output=used "$mnt" | tail -n1 | tr -d ' ')"
  sync; echo 2 >/proc/sys/vm/drop_caches
  # the floor run counts from here (the checks above made a few requests)
  local kf cf; kf=$(kreqs "$mnt"); cf=$(cpu_s "$pid")
  t0=$(now); timed_du "$mnt" >"$WORK/du.out"; t1=$(now); out=$(cat "$WORK/du.out"); du2=$DU_CPU
  local floor; floor=$(secs "$t0" "$t1")
  check_eq "$tags tags: du -s -B1 (floor run) = generator's total" "$expected" "$out"
  c2=$(cpu_s "$pid"); k2=$(kreqs "$mnt")
  log "$tags tags: kernel requests so far $(jq -c .kernel "$mnt/.regfs/stats"), registry requests $r1"
  REQ_LINES+=("$(printf '%8d %8s %8s %8s %8s %8s %8s %8s %8s' "$tags" \
    "$(per_tag $((k1 - k0)) "$tags")" "$(per_tag $((k2 - kf)) "$tags")" "$r1" \
    "$(per_tag_ms "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" "$tags")" \
    "$(per_tag_ms "$(awk -v a="$g0" -v b="$g1" 'BEGIN { print b - a }')" "$tags")" \
    "$(per_tag_ms "$du1" "$tags")" \
    "$(per_tag_ms "$(awk -v a="$cf" -v b="$c2" 'BEGIN { print b - a }')" "$tags")" \
    "$(per_tag_ms "$du2" "$tags")")")
  local rss_end; rss_end=$(rss_mb "$pid")
  unmount "$mnt"
  # under heaptrack: let it write its file before the next size starts
  for ((i = 0; i < 600; i++)); do kill -0 "$MOUNT_PID" 2>/dev/null || break; sleep 0.1; done
  if [ "${HEAPTRACK:-0}" = 1 ] && [ -n "${PROFILE:-}" ]; then
    heaptrack_print -f "$PROFILE/$tags.heaptrack.zst" --print-peaks 0 --print-allocators 0 \
      --print-temporary 0 --print-leaks 0 --print-flamegraph "$PROFILE/$tags.peak" \
      --flamegraph-cost-type peak >"$PROFILE/$tags.heaptrack.txt" 2>&1
    PROFILES+=("# $tags tags: the heap at its peak by component (heaptrack, the whole run):" \
      "$(python3 "$BENCH_DIR/heap_components.py" "$PROFILE/$tags.peak")" \
      "$(sed -n 's/^peak heap memory consumption: /#   heaptrack: peak heap /p' "$PROFILE/$tags.heaptrack.txt")")
  fi
  stop_pid "$REGISTRY_PID"
  rm -rf "$WORK/cache-$repos"
  [ -n "$FIRST_RSS" ] || FIRST_RSS=$rss
  LINES+=("$(printf '%8d %9s %9s %10s %10s %9s %9s %7s' "$tags" "$cold" "$floor" \
    "$(per_tag_ms "$cold" "$tags")" "$(per_tag_ms "$floor" "$tags")" "$rss" "$rss_end" \
    "$(awk -v a="$rss" -v b="$FIRST_RSS" 'BEGIN { printf "%.2fx", a / b }')")")
}

for r in "${SIZES[@]}"; do bench_size "$r" || fail "$r x $TAGS: bench ran"; done
echo "# regfs-registry, cold du -s of a fresh mount (MOUNT_OPTS='${MOUNT_OPTS:-}'):"
echo "#     tags   cold(s)  floor(s) ms/tag    floor/tag  RSS(MB)   RSS-end  RSS/first"
for l in "${LINES[@]}"; do echo "# $l"; done
echo "#   floor = du -s with the kernel's caches dropped and the daemon warm (FUSE round trips)"
echo "#   RSS = VmHWM after the cold du; RSS-end = VmHWM after the floor run"
for l in "${PROFILES[@]}"; do echo "$l"; done
echo "#     tags  FUSE/tag FUSE/tag registry ---- cold, CPU ms/tag ---  -- floor, CPU --"
echo "#             cold    floor  requests   daemon registry   du(k)   daemon   du(k)"
for l in "${REQ_LINES[@]}"; do echo "# $l"; done
done_testing
