#!/bin/bash
# tests/fuzz/run.sh BUILD SECONDS — run every libFuzzer target of BUILD (a build
# dir configured with CC=clang -Dfuzz=true: each executable tests/fuzz/fuzz_*)
# for SECONDS, REGFS_FUZZ_JOBS targets at a time (default 2: CI has two cores).
# Seed corpora: the layer targets get one made now from the unit tests' sample
# layers (small variant); the others read tests/fuzz/corpus/<target>/
# (committed, small) and use tests/fuzz/<name>.dict when there is one
# (fuzz_route -> route.dict). New units go to a scratch dir, never into the
# committed corpus. Crashes are written to BUILD/fuzz-crashes/<target>/; the
# exit status is non-zero when any target found one ("<target>: FAILED").
# Each crash becomes a regression unit test.
set -u -o pipefail
build=${1:?usage: run.sh BUILD SECONDS}
secs=${2:?usage: run.sh BUILD SECONDS}
jobs=${REGFS_FUZZ_JOBS:-2}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/regfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# the layer targets' corpora, from sample layers
layer_corpora() {
  python3 "$here/../unit/test_layer_samples.py" "$work/s" --small >/dev/null || return 1
  mkdir -p "$work/seed/fuzz_tar" "$work/seed/fuzz_gzip" "$work/seed/fuzz_index_decode"
  local t n
  for t in "$work"/s/*.tar; do
    n=$(basename "$t" .tar)
    cp "$t" "$work/seed/fuzz_tar/$n"
    gzip -c -6 "$t" >"$work/seed/fuzz_gzip/$n.gz"
    cp "$t" "$work/seed/fuzz_gzip/$n"
    "$build/tests/fuzz/mkindex" "$t" "$work/seed/fuzz_index_decode/$n" || return 1
    "$build/tests/fuzz/mkindex" "$work/seed/fuzz_gzip/$n.gz" "$work/seed/fuzz_index_decode/$n.gz" || return 1
  done
}

# run_one TARGET — runs it, then prints its summary in one piece (targets run
# in parallel; their output must not interleave)
run_one() {
  local target=$1 crashes=$build/fuzz-crashes/$1 seed=$work/seed/$1 log=$work/$1.log
  local dict=$here/${1#fuzz_}.dict args=() out
  [ -d "$seed" ] || seed=$here/corpus/$target
  [ -f "$dict" ] && args+=(-dict="$dict")
  mkdir -p "$crashes" "$work/new/$target"
  [ -d "$seed" ] || seed=
  out="== $target ($secs s)"$'\n'
  if ! "$build/tests/fuzz/$target" -max_total_time="$secs" -max_len=1048576 \
      -rss_limit_mb=2048 -timeout=20 -artifact_prefix="$crashes/" -print_final_stats=1 \
      "${args[@]}" "$work/new/$target" $seed 2>"$log"; then
    out+="$target: FAILED (artifacts in $crashes)"$'\n'
    out+=$(grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -20)$'\n'
  fi
  out+=$(grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log")
  printf '%s\n' "$out"
  [[ $out != *": FAILED"* ]]
}

targets=()
for f in "$build"/tests/fuzz/fuzz_*; do
  [ -f "$f" ] && [ -x "$f" ] && targets+=("$(basename "$f")")
done
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets in $build/tests/fuzz"; exit 1; }
layer_corpora || { echo "seed corpora of the layer targets: failed"; exit 1; }

status=0 running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_one "$target" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
