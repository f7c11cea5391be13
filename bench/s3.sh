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
# Every pull is checked byte-identical to the source.
# Env: REPS (2), MEMSTORE_BYTES (OSD size, 8 GiB), SIZES ("250M 60M 1M": one layer per size), CHUNKSIZE (registry
# storage.s3.chunksize, default unset = 10 MiB), REGFS_BUILD.
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
. "$BENCH_DIR/../tests/integration/s3_lib.sh"
. "$BENCH_DIR/progress.sh"
log() { progress_clear; printf '# %s\n' "$*"; }   # lib.sh's, erasing the progress line first
need_regfs_registry
need_bin skopeo umoci "$DOCKER_REGISTRY"
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

declare -A T N
run=0
progress_begin bench "push+pull runs" $((2 * 2 * REPS))
for mode in on off; do
  for kind in docker regfs; do
    for ((i = 1; i <= REPS; i++)); do
      run=$((run + 1))
      cfg=$WORK/$kind-$mode-$i.yml
      s3_config "$cfg" benchbucket "$(free_port)"
      # A fresh rootdirectory per run: nothing to deduplicate against.
      sed -i "s|^\(\s*rootdirectory:\).*|\1 /bench-$run|" "$cfg"
      [ "$mode" = off ] && sed -i 's/^  delete:/  redirect:\n    disable: true\n  delete:/' "$cfg"
      [ -n "${CHUNKSIZE:-}" ] && sed -i "s/^\(\s*\)bucket:\(.*\)/\1bucket:\2\n\1chunksize: $CHUNKSIZE/" "$cfg"
      start_registry "$kind" "$cfg" || bail "$kind did not start"
      R=$REGISTRY_HOST
      r0=$(s3reqs); t0=$(now)
      skopeo_copy "$img" "docker://$R/bench/img:v1" || bail "$kind push failed"
      t1=$(now); r1=$(s3reqs)
      rm -rf "$WORK/pull"
      skopeo_copy "docker://$R/bench/img:v1" "dir:$WORK/pull" || bail "$kind pull failed"
      t2=$(now); r2=$(s3reqs)
      diff -r "$WORK/src" "$WORK/pull" >/dev/null || bail "$kind: pulled image differs"
      T[$kind-$mode-push]+="$(secs "$t0" "$t1") "; T[$kind-$mode-pull]+="$(secs "$t1" "$t2") "
      N[$kind-$mode-push]=$((r1 - r0)); N[$kind-$mode-pull]=$((r2 - r1))
      log "$kind redirect-$mode run $i: push $(secs "$t0" "$t1") s ($((r1 - r0)) S3 requests), pull $(secs "$t1" "$t2") s ($((r2 - r1)))"
      stop_pid "$REGISTRY_PID"
      s3tool rmrf benchbucket "bench-$run/" || log "could not empty bench-$run/"
      progress_step $((2 * total))
    done
  done
done
progress_end

echo
printf '%-22s %10s %10s %8s   %s\n' "$(( total / 1000000 )) MB image" docker-reg regfs ratio "S3 requests (docker / regfs)"
for mode in on off; do
  for op in push pull; do
    # shellcheck disable=SC2086
    d=$(best ${T[docker-$mode-$op]}); r=$(best ${T[regfs-$mode-$op]})
    printf '%-22s %9ss %9ss %7sx   %s / %s\n' "$op (redirect $mode)" "$d" "$r" \
      "$(awk -v a="$d" -v b="$r" 'BEGIN { printf "%.2f", a / b }')" "${N[docker-$mode-$op]}" "${N[regfs-$mode-$op]}"
  done
done
