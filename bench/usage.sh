#!/bin/bash
# bench/usage.sh — the usage extension on REPOS repositories × TAGS tags (the storage
# layout written directly by bench/mount_gen.py): how long the startup walk takes to
# build the accounting (from the registry's log line), the peak RSS it leaves, and how
# long GET /v2/_regfs/usage takes to answer (whole registry, and one repository), warm,
# REQS requests each; then one push and the answer right after it (the figures follow
# without a walk). Not a test: it prints numbers, asserts nothing.
#
# Usage: bench/usage.sh [--repos N] [--tags N] [--reqs N]   (defaults 1000, 10, 200)
# Environment: REGFS_BUILD (default ./build; use a release build).
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=../tests/integration/lib.sh
. tests/integration/lib.sh
REPOS=1000; TAGS=10; REQS=200
bench_options 2,10 repos:REPOS tags:TAGS reqs:REQS -- "$@"
need_regfs_registry
say() { echo "bench: $*" >&2; }

say "writing $REPOS x $TAGS tags with bench/mount_gen.py…"
python3 bench/mount_gen.py "$WORK/data" "$REPOS" "$TAGS" >/dev/null || bail "generator failed"
export REGISTRY_LOG_ACCESSLOG_DISABLED=true
T0=$(date +%s%N)
start_regfs_registry "$WORK/data" || bail "regfs-registry did not start"
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/_regfs/usage")" = 200 ]; }
wait_for 600 ready || bail "the accounting was not built within 600 s"
T1=$(date +%s%N)
say "ready $(( (T1 - T0) / 1000000 )) ms after the start; the registry says: $(grep -o 'storage accounting built in.*' "$REGISTRY_LOG")"
say "RSS after the walk: $(awk '/VmRSS/ {print $2, $3}' "/proc/$REGISTRY_PID/status"), peak $(awk '/VmHWM/ {print $2, $3}' "/proc/$REGISTRY_PID/status")"

timed() { # timed URL — mean time_total over REQS requests, in ms, and the body size
  local i sum=0 t
  for ((i = 0; i < REQS; i++)); do
    t=$(curl -s -o "$WORK/body" -w '%{time_total}' "$1") || return 1
    sum=$(echo "$sum + $t" | bc -l)
  done
  printf '%.3f ms mean (%d bytes)' "$(echo "$sum * 1000 / $REQS" | bc -l)" "$(stat -c %s "$WORK/body")"
}
say "GET /v2/_regfs/usage (all $REPOS repositories): $(timed "$REGISTRY_URL/v2/_regfs/usage")"
say "GET /v2/_regfs/usage?repository=team00/app0000: $(timed "$REGISTRY_URL/v2/_regfs/usage?repository=team00/app0000")"

# one push: the next answer has it, no walk
head -c 5000 /dev/urandom >"$WORK/l"; printf '{"architecture":"amd64","os":"linux"}' >"$WORK/c"
for f in l c; do put_blob "$REGISTRY_URL" team00/app0000 "$WORK/$f" "sha256:$(sha256sum "$WORK/$f" | cut -d' ' -f1)"; done
oci_manifest "$WORK/c" "$WORK/l" >"$WORK/m.json"
B0=$(curl -s "$REGISTRY_URL/v2/_regfs/usage?repository=team00/app0000" | jq '.repositories[0].bytes')
T2=$(date +%s%N)
put_manifest "$REGISTRY_URL" team00/app0000 pushed "$WORK/m.json" || bail "push"
B1=$(curl -s "$REGISTRY_URL/v2/_regfs/usage?repository=team00/app0000" | jq '.repositories[0].bytes')
T3=$(date +%s%N)
say "push + next answer: $(( (T3 - T2) / 1000000 )) ms; team00/app0000 bytes $B0 -> $B1 (+$((B1 - B0)))"
