#!/bin/bash
# bench/s3.sh — push and pull of a 300 MB+ image with skopeo, regfs-registry vs
# Debian's docker-registry 2.8.2 on the same Ceph RGW (tests/integration/ceph.sh),
# same run, in both redirect modes (storage.redirect.disable false: blob GETs
# answer 307 to presigned RGW URLs; true: blobs stream through the registry).
#
# Prints seconds per operation (best of REPS, default 2) and the ratio
# docker-registry time / regfs-registry time (>= 1.0: regfs is as fast or faster),
# plus the S3 requests each registry made per push and pull (from RGW's request
# log), which is where the time goes besides moving bytes.
# Every pull is checked byte-identical to the source, and each redirect mode is
# checked to be in force (a blob GET answers 307 with redirects, 200 without).
#
# Cached upstream images (the pull-through cache): an upstream docker-registry on
# loopback (filesystem) holds the same image; regfs-registry on the bucket with a
# `regfs.proxies` entry (prefix "up") and docker-registry in proxy mode
# (`proxy.remoteurl`) on the same bucket, each under its own fresh rootdirectory,
# pull it cold (empty cache) then warm, in each redirect mode of PROXY_MODES.
# Prints the same figures plus the upstream's requests (its access log): a warm pull
# should make no blob GET upstream.
# Env: REPS (2), MEMSTORE_BYTES (OSD size, 8 GiB), SIZES ("250M 60M 1M": one layer per size), CHUNKSIZE (registry
# storage.s3.chunksize, default unset = 10 MiB), PROXY_MODES ("off on": redirect
# disabled / enabled for the cached case; "" skips it), REGFS_BUILD,
# PROFILE=1: after the first round's timed pulls with redirects disabled (pushed image,
# and the cached image warm), one more pull of each registry under `perf record -g`
# (not timed); the reports go to PROFILE_DIR (/var/tmp/regfs-bench-s3-profile).
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
. "$BENCH_DIR/../tests/integration/s3_lib.sh"
. "$BENCH_DIR/progress.sh"
log() { progress_clear; printf '# %s\n' "$*"; }   # lib.sh's, erasing the progress line first
need_regfs_registry
need_bin skopeo umoci "$DOCKER_REGISTRY"
# shellcheck disable=SC2034 # read by lib.sh's write_registry_config (the upstream)
REGISTRY_LOG_LEVEL=error
REPS=${REPS:-2}
read -r -a SIZES <<<"${SIZES:-250M 60M 1M}"
# Room for the runs' data on the RAM-backed OSD (each run is deleted after it).
export MEMSTORE_BYTES=${MEMSTORE_BYTES:-8589934592}
s3_start benchbucket
RGWLOG=$S3_CEPH_DIR/log/rgw.a.log

log "building the image (${SIZES[*]}) ..."
img=$(make_image "$WORK/oci" big "${#SIZES[@]}" "${SIZES[@]}") || bail "make_image"
skopeo_copy "$img" "dir:$WORK/src" || bail "skopeo oci->dir"
total=$(du -sb "$WORK/src" | cut -f1)
log "image: $(( total / 1000000 )) MB in ${#SIZES[@]} layers"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
s3reqs() { wc -l < <(grep -a 'beast:' "$RGWLOG" 2>/dev/null) ; }
best() { printf '%s\n' "$@" | sort -g | head -n1; }
# cpu PID — the CPU seconds (user + system) PID has used so far.
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The digests a registry stores for the image: its blobs and the manifest.
STORE_EXPECT=$( { find "$WORK/src" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{64}' -printf '%f\n'
  sha256sum "$WORK/src/manifest.json" | cut -d' ' -f1; } | sed 's/^/sha256:/' | sort -u)

declare -A T N U C S
PROFILE_DIR=${PROFILE_DIR:-/var/tmp/regfs-bench-s3-profile}
[ "${PROFILE:-0}" = 1 ] && { need_bin perf; mkdir -p "$PROFILE_DIR"; }
# profiled_pull NAME REF — when PROFILE=1: one more pull of REF from $REGISTRY_PID (the
# image verified) with perf sampling that process; the report in $PROFILE_DIR/NAME.txt.
profiled_pull() {
  [ "${PROFILE:-0}" = 1 ] || return 0
  local perf t0 t1
  rm -rf "$WORK/pull"; sync
  perf record -F 999 -g -p "$REGISTRY_PID" -o "$PROFILE_DIR/$1.data" >/dev/null 2>&1 &
  perf=$!; sleep 0.5; t0=$(now)
  skopeo_copy "docker://$2" "dir:$WORK/pull" || log "$1: profiled pull failed"
  t1=$(now); kill -INT "$perf"; wait "$perf"
  diff -r "$WORK/src" "$WORK/pull" >/dev/null || log "$1: profiled pull differs"
  perf report -i "$PROFILE_DIR/$1.data" --stdio --no-children --sort comm,dso,symbol \
    --percent-limit 0.5 >"$PROFILE_DIR/$1.txt" 2>/dev/null
  log "$1: profiled pull $(secs "$t0" "$t1") s under perf, CPU $(cpu "$REGISTRY_PID") s total so far: $PROFILE_DIR/$1.txt"
}
read -r -a PMODES <<<"${PROXY_MODES-off on}"
run=0
progress_begin bench "push+pull runs" $((2 * 2 * REPS + 2 * ${#PMODES[@]} * REPS))

# registry_config FILE KIND MODE RUN [EXTRA_YAML] — the seed's config on benchbucket under
# rootdirectory /bench-RUN, redirects per MODE (on/off), CHUNKSIZE if set, EXTRA appended.
registry_config() {
  local cfg=$1 mode=$3 run=$4
  s3_config "$cfg" benchbucket "$(free_port)" "${5:-}"
  # A fresh rootdirectory per run: nothing to deduplicate against.
  sed -i "s|^\(\s*rootdirectory:\).*|\1 /bench-$run|" "$cfg"
  [ "$mode" = off ] && sed -i 's/^  delete:/  redirect:\n    disable: true\n  delete:/' "$cfg"
  [ -n "${CHUNKSIZE:-}" ] && sed -i "s/^\(\s*\)bucket:\(.*\)/\1bucket:\2\n\1chunksize: $CHUNKSIZE/" "$cfg"
  return 0
}
# check_redirect KIND MODE URL REPO — a blob GET answers 307 (mode on) or 200 (off);
# else a warning (printed again under the table: that run's figures are not that mode's).
WARN=""
check_redirect() {
  local want=200 code dig
  [ "$2" = on ] && want=307
  dig=$(jq -r '.layers[0].digest' "$WORK/src/manifest.json")
  code=$(curl -s -o /dev/null -m 60 -w '%{http_code}' "$3/v2/$4/blobs/$dig")
  [ "$code" = "$want" ] && return 0
  WARN+="WARNING: $1 redirect-$2 ($4): a blob GET answered $code, not $want"$'\n'
  log "WARNING: $1 redirect-$2 ($4): a blob GET answered $code, not $want"
}
for mode in on off; do
  for ((i = 1; i <= REPS; i++)); do
    kinds="docker regfs"; ((i % 2)) || kinds="regfs docker"   # alternate who goes first
    for kind in $kinds; do
      run=$((run + 1))
      cfg=$WORK/$kind-$mode-$i.yml
      registry_config "$cfg" "$kind" "$mode" "$run"
      start_registry "$kind" "$cfg" || bail "$kind did not start"
      R=$REGISTRY_HOST
      r0=$(s3reqs); c0=$(cpu "$REGISTRY_PID"); t0=$(now)
      skopeo_copy "$img" "docker://$R/bench/img:v1" || bail "$kind push failed"
      t1=$(now); r1=$(s3reqs); c1=$(cpu "$REGISTRY_PID")
      rm -rf "$WORK/pull"; sync
      c1b=$(cpu "$REGISTRY_PID"); t1b=$(now)
      skopeo_copy "docker://$R/bench/img:v1" "dir:$WORK/pull" || bail "$kind pull failed"
      t2=$(now); r2=$(s3reqs); c2=$(cpu "$REGISTRY_PID")
      diff -r "$WORK/src" "$WORK/pull" >/dev/null || bail "$kind: pulled image differs"
      check_redirect "$kind" "$mode" "$REGISTRY_URL" bench/img
      [ "$mode" = off ] && [ "$i" = 1 ] && profiled_pull "$kind-pushed-pull" "$R/bench/img:v1"
      T[$kind-$mode-push]+="$(secs "$t0" "$t1") "; T[$kind-$mode-pull]+="$(secs "$t1b" "$t2") "
      N[$kind-$mode-push]=$((r1 - r0)); N[$kind-$mode-pull]=$((r2 - r1))
      C[$kind-$mode-push]+="$(secs "$c0" "$c1") "; C[$kind-$mode-pull]+="$(secs "$c1b" "$c2") "
      log "$kind redirect-$mode run $i: push $(secs "$t0" "$t1") s ($((r1 - r0)) S3 requests, registry CPU $(secs "$c0" "$c1") s), pull $(secs "$t1b" "$t2") s ($((r2 - r1)), CPU $(secs "$c1b" "$c2") s)"
      stop_pid "$REGISTRY_PID"
      s3tool rmrf benchbucket "bench-$run/" || log "could not empty bench-$run/"
      progress_step $((2 * total))
    done
  done
done

# --- cached upstream images -------------------------------------------------------------
# up_blob_gets — blob GETs answered with the bytes (200/206) in the upstream's access log
# so far (combined log format).
up_blob_gets() { grep -acE '"GET /v2/[^ ]*/blobs/sha256:[^ ]* HTTP/[0-9.]*" 20[06] ' "$UPLOG"; }
# cached_pull KIND MODE WHICH REF I — one timed pull through a cache; 1 when skopeo
# failed and the upstream saw nothing (a regfs-registry without the cache).
cached_pull() {
  local kind=$1 mode=$2 which=$3 ref=$4 i=$5 t0 t1 r0 r1 u0 u1 c0 c1 k=$1-$2-$3 w
  rm -rf "$WORK/pull"; sync
  r0=$(s3reqs); u0=$(up_blob_gets); c0=$(cpu "$REGISTRY_PID"); t0=$(now)
  if ! skopeo_copy "docker://$ref" "dir:$WORK/pull" 2>"$WORK/skopeo.err"; then
    sleep 0.2; [ "$(up_blob_gets)" = "$u0" ] && [ "$kind" = regfs ] && [ "$which" = cold ] && return 1
    bail "$k: pull of $ref failed: $(tail -c 600 "$WORK/skopeo.err")"
  fi
  t1=$(now); c1=$(cpu "$REGISTRY_PID"); sleep 0.2; r1=$(s3reqs); u1=$(up_blob_gets)
  diff -r "$WORK/src" "$WORK/pull" >/dev/null || bail "$k: pulled image differs"
  T[$k]+="$(secs "$t0" "$t1") "; N[$k]=$((r1 - r0)); U[$k]=$((u1 - u0)); C[$k]+="$(secs "$c0" "$c1") "
  w=""
  # A cache may still be storing what it streamed (registry:2 fetches the blob a second
  # time in the background): the warm pull starts once everything is in the bucket.
  if [ "$which" = cold ]; then
    w=$(wait_stored "bench-$run" "$t1") || log "$k: not all blobs stored $w s after the pull"
    S[$k]+="$w "; w=", all stored ${w} s after the pull"
  fi
  log "$kind cached redirect-$mode run $i, $which pull: $(secs "$t0" "$t1") s ($((r1 - r0)) S3 requests, $((u1 - u0)) upstream blob GETs, CPU $(secs "$c0" "$c1") s$w)"
  progress_step "$total"
}
# wait_stored ROOT T — polls (up to 120 s) until every blob of the image is in the bucket
# under ROOT; prints the seconds since T (a time from now()); 1 when it timed out.
wait_stored() {
  local k
  for ((k = 0; k < 240; k++)); do
    if [ "$(s3tool ls benchbucket "$1/docker/registry/v2/blobs/" |
            sed -n 's|.*/blobs/sha256/../\([0-9a-f]*\)/data$|sha256:\1|p' | sort -u)" = "$STORE_EXPECT" ]; then
      secs "$2" "$(now)"; return 0
    fi
    sleep 0.5
  done
  secs "$2" "$(now)"; return 1
}
HAVE_CACHE=1
if [ ${#PMODES[@]} -gt 0 ]; then
  # Filesystem storage, level error (write_registry_config); its access log counts requests.
  start_docker_registry "$WORK/upstream" || bail "upstream did not start"
  UP=$REGISTRY_HOST UPLOG=$REGISTRY_LOG
  skopeo_copy "$img" "docker://$UP/bench/img:v1" || bail "push to the upstream failed"
  log "upstream docker-registry (filesystem) at $UP holds the image"
fi
for mode in "${PMODES[@]}"; do
  for ((i = 1; i <= REPS; i++)); do
    kinds="regfs docker"; ((i % 2)) || kinds="docker regfs"   # alternate who goes first
    for kind in $kinds; do
      run=$((run + 1))
      cfg=$WORK/proxy-$kind-$mode-$i.yml
      if [ "$kind" = regfs ]; then
        registry_config "$cfg" "$kind" "$mode" "$run" "regfs:
  proxies:
    - prefix: up
      remoteurl: http://$UP"
        ref=up/bench/img:v1
      else
        registry_config "$cfg" "$kind" "$mode" "$run" "proxy:
  remoteurl: http://$UP"
        ref=bench/img:v1
      fi
      start_registry "$kind" "$cfg" || bail "$kind (cache) did not start"
      if ! cached_pull "$kind" "$mode" cold "$REGISTRY_HOST/$ref" "$i"; then
        [ "$HAVE_CACHE" = 1 ] && log "regfs-registry ($REGFS_BUILD) does not serve up/bench/img from the upstream: no pull-through cache in this build"
        HAVE_CACHE=0; progress_step; progress_step
      else
        cached_pull "$kind" "$mode" warm "$REGISTRY_HOST/$ref" "$i"
        [ "$mode" = off ] && [ "$i" = 1 ] && profiled_pull "$kind-cached-warm-pull" "$REGISTRY_HOST/$ref"
        check_redirect "$kind" "$mode" "$REGISTRY_URL" "${ref%:v1}"
      fi
      stop_pid "$REGISTRY_PID"
      s3tool rmrf benchbucket "bench-$run/" || log "could not empty bench-$run/"
    done
  done
done
progress_end
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "best of $REPS; load average at the end: $LOAD"
printf '%-26s %10s %10s %8s   %s\n' "$(( total / 1000000 )) MB image" docker-reg regfs ratio "S3 requests, registry CPU s (docker / regfs)"
for mode in on off; do
  for op in push pull; do
    # shellcheck disable=SC2086 # the lists of times are words
    d=$(best ${T[docker-$mode-$op]}); r=$(best ${T[regfs-$mode-$op]})
    printf '%-26s %9ss %9ss %7sx   %s / %s, %s / %s\n' "$op (redirect $mode)" "$d" "$r" \
      "$(awk -v a="$d" -v b="$r" 'BEGIN { printf "%.2f", a / b }')" "${N[docker-$mode-$op]}" "${N[regfs-$mode-$op]}" \
      "$(best ${C[docker-$mode-$op]})" "$(best ${C[regfs-$mode-$op]})"
  done
done
for mode in "${PMODES[@]}"; do
  for which in cold warm; do
    # shellcheck disable=SC2086
    d=$(best ${T[docker-$mode-$which]}); r=$(best ${T[regfs-$mode-$which]:-})
    sd=""; [ "$which" = cold ] && sd="; stored after $(best ${S[docker-$mode-$which]}) / $(best ${S[regfs-$mode-$which]:-}) s"
    printf '%-26s %9ss %9ss %7sx   %s / %s, %s / %s; upstream blob GETs %s / %s%s\n' "cached $which (redirect $mode)" "$d" "${r:--}" \
      "$(awk -v a="$d" -v b="$r" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
      "${N[docker-$mode-$which]}" "${N[regfs-$mode-$which]:--}" "$(best ${C[docker-$mode-$which]})" "$(best ${C[regfs-$mode-$which]:-})" \
      "${U[docker-$mode-$which]}" "${U[regfs-$mode-$which]:--}" "$sd"
  done
done
printf %s "$WARN"
