#!/bin/bash
# bench/proxy.sh — the pull-through cache: a ~300 MB image pulled with skopeo straight
# from an upstream registry, through regfs-registry's cache (`regfs.proxies`, prefix
# "up"), and through Debian's docker-registry 2.8.2 in proxy mode (`proxy.remoteurl`),
# in one run, loopback only, filesystem storage. Not a test: it prints numbers.
#
# Usage: bench/proxy.sh [--size MB] [--reps N] [--auth 0|1] [--wrk S] [--clients N]
#   --size MB   image size (default 300): three layers of random bytes, 2/3, 4/15 and
#               the rest of it (200M 80M 20M); built once, cached under /var/tmp
#   --reps N    rounds (default 3); every figure is the best of N. Each round pulls
#               (a) straight from the upstream, (b) cold then warm through regfs-registry,
#               (c) cold then warm through docker-registry's proxy mode (b and c swap
#               order every other round); every cold pull starts from an empty cache
#               (a new storage root and a new process)
#   --auth 1    the upstream behind the tests' token issuer (the Docker Hub Bearer
#               flow; both caches get the credentials)
#   --wrk S     after the warm pull, S seconds (default 3; 0: none) of manifest GETs by
#               tag through each cache (wrk, 8 connections): the pulls by tag a CI fleet
#               makes, and how many of them reach the upstream
#   --clients N after the rounds, N clients (default 10; 0: none) GET the largest blob at
#               once from each cache, cold (a new empty cache each): the time until all
#               have it (each verified by sha256 as it arrives) and the upstream blob
#               GETs it took (one per blob with single flight)
# Every pull is verified: the manifest's digest, the set of blobs and each blob's sha256.
# Prints seconds, the ratio registry:2 time / regfs time (>= 1.0: regfs as fast or
# faster), the requests each pull made to the upstream (from its access log: a warm
# pull must make no blob GET) and the CPU seconds each cache process spent.
# Env: REGFS_BUILD (default ./build; use a release build).
set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/integration/lib.sh"
SIZE_MB=300 REPS=3 AUTH=0 WRK=3 CLIENTS=10
bench_options 2,28 size:SIZE_MB reps:REPS auth:AUTH wrk:WRK clients:CLIENTS -- "$@"
. "$BENCH_DIR/progress.sh"
log() { progress_clear; printf '# %s\n' "$*"; }   # lib.sh's, erasing the progress line first
need_regfs_registry
need_bin skopeo umoci jq python3 "$DOCKER_REGISTRY"
[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 3 && $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $WRK =~ ^[0-9]+$ && $CLIENTS =~ ^[0-9]+$ ]] ||
  { echo "bench/proxy.sh: --size (>= 3), --reps (>= 1), --wrk and --clients take whole numbers" >&2; exit 2; }
[ "$WRK" = 0 ] || command -v wrk >/dev/null || { log "wrk not installed: no manifest GET rates"; WRK=0; }
bt=$(meson introspect --buildoptions "$REGFS_BUILD" 2>/dev/null | jq -r '.[] | select(.name == "buildtype") | .value' 2>/dev/null)
[ "$bt" = release ] || log "note: $REGFS_BUILD is buildtype '${bt:-?}', not release"
# Request logging off in the caches (logging every request would measure the logger);
# the in-memory blob descriptor cache is what our users configure (the seed's config).
export REGISTRY_LOG_LEVEL=error REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=inmemory

# --- the image, built once (umoci gzips 300 MB: tens of seconds) -----------------------
L1=$((SIZE_MB * 2 / 3)) L2=$((SIZE_MB * 4 / 15)); L3=$((SIZE_MB - L1 - L2))
IMG=/var/tmp/regfs-bench-proxy-${L1}M-${L2}M-${L3}M
if [ ! -s "$IMG/oci/index.json" ]; then
  log "building the image (${L1}M ${L2}M ${L3}M) into $IMG (once) ..."
  rm -rf "$IMG.tmp"; mkdir -p "$IMG.tmp"
  make_image "$IMG.tmp/oci" v1 3 "${L1}M" "${L2}M" "${L3}M" >/dev/null || bail "make_image failed"
  rm -rf "$IMG"; mv "$IMG.tmp" "$IMG" || bail "mv $IMG.tmp"
fi
MDIG=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v1") | .digest' "$IMG/oci/index.json")
MFILE=$IMG/oci/blobs/sha256/${MDIG#sha256:}
[ -s "$MFILE" ] || bail "no manifest for v1 in $IMG (rm -rf $IMG and run again)"
EXPECT=$(jq -r '.config.digest, .layers[].digest' "$MFILE" | sed 's/^sha256://' | sort)
TOTAL=$(jq '[.config.size, .layers[].size] | add' "$MFILE")
MT=$(jq -r '.mediaType // "application/vnd.oci.image.manifest.v1+json"' "$MFILE")
BIG=$(jq -r '[.layers[]] | max_by(.size) | .digest' "$MFILE")
BIGSIZE=$(jq -r '[.layers[]] | max_by(.size) | .size' "$MFILE")
NBLOBS=$(wc -l <<<"$EXPECT")
STORE_EXPECT=$(printf '%s\n' $EXPECT "${MDIG#sha256:}" | sed 's/^/sha256:/' | sort -u)  # blobs + manifest

# verify DIR — a skopeo dir: copy holds the image: the manifest's digest, exactly the
# expected blobs, each hashing to its name (lib.sh's verify_dir_blobs).
verify() {
  local got
  got=$(sha256sum "$1/manifest.json" | cut -d' ' -f1)
  [ "sha256:$got" = "$MDIG" ] || { echo "manifest.json hashes to $got, not $MDIG"; return 1; }
  got=$(find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{64}' -printf '%f\n' | sort)
  [ "$got" = "$EXPECT" ] || { echo "blobs: $(tr '\n' ' ' <<<"$got"), expected $(tr '\n' ' ' <<<"$EXPECT")"; return 1; }
  verify_dir_blobs "$1"
}

# --- the upstream (logs at level error like the caches, but its access log stays on:
# it is how requests are counted) ------------------------------------------------------
CREDS=() UPCREDS=""
if [ "$AUTH" = 1 ]; then
  start_tokenserver tok
  start_token_registry "$WORK/up" || bail "upstream did not start"
  CREDS=(--src-creds alice:s3cret) UPCREDS=$'\n      username: alice\n      password: s3cret'
else
  start_docker_registry "$WORK/up" || bail "upstream did not start"
fi
UP=$REGISTRY_HOST UPLOG=$REGISTRY_LOG
log "upstream docker-registry at $UP$([ "$AUTH" = 1 ] && echo ", token auth at 127.0.0.1:$TPORT")"
skopeo_copy ${CREDS:+--dest-creds alice:s3cret} "oci:$IMG/oci:v1" "docker://$UP/bench/img:v1" || bail "push to the upstream failed"
log "image: $MDIG, $((TOTAL / 1000000)) MB in $NBLOBS blobs (${L1}M ${L2}M ${L3}M layers + config)"

# up_counts — "blob GETs manifest-requests all" in the upstream's access log so far
# (combined log format: `"GET /v2/bench/img/blobs/sha256:… HTTP/1.1" 200 …`). Blob GETs
# are those answered with the bytes (200/206), not the 401s of the token flow.
up_counts() {
  awk '/"(GET|HEAD|POST|PUT|PATCH|DELETE) \/v2\// { all++ }
       /"GET \/v2\/[^ ]*\/blobs\/sha256:[^ ]* HTTP\/[0-9.]*" 20[06] / { b++ }
       /"(GET|HEAD) \/v2\/[^ ]*\/manifests\// { m++ }
       END { printf "%d %d %d\n", b, m, all }' "$UPLOG"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }

# pull NAME SRC [PID] — one timed skopeo pull of SRC into a fresh dir, verified; records
# the time in T[NAME], the upstream requests it caused in N[NAME] (the largest seen over
# the rounds) and the CPU of PID (the cache) in C[NAME]. Bails on a wrong image; returns
# 1 when skopeo failed without the upstream seeing a blob GET (a build whose cache does
# not serve blobs, or has no cache).
declare -A T N C
pull() {
  local name=$1 src=$2 pid=${3:-} dst=$WORK/pull t0 t1 c0=0 c1=0 u0 u1 d s cpu msg rc=0
  rm -rf "$dst"; sync
  u0=$(up_counts); [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
  t0=$(now)
  skopeo_copy "${CREDS[@]}" "docker://$src" "dir:$dst" 2>"$WORK/skopeo.err" || rc=1
  t1=$(now)
  [ -n "$pid" ] && c1=$(cpu_ticks "$pid")
  sleep 0.2   # the access log line is written after the response
  u1=$(up_counts)
  d=$(awk -v a="$u0" -v b="$u1" 'BEGIN { split(a, x, " "); split(b, y, " ");
        printf "%d %d %d", y[1] - x[1], y[2] - x[2], y[3] - x[3] }')
  if [ $rc != 0 ]; then
    [ "${d%% *}" = 0 ] && return 1
    bail "$name: skopeo pull of $src failed: $(tail -c 600 "$WORK/skopeo.err")"
  fi
  msg=$(verify "$dst") || bail "$name: the pulled image is wrong: $msg"
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  T[$name]+="$s "
  N[$name]=$(awk -v a="${N[$name]:-0 0 0}" -v b="$d" 'BEGIN { split(a, x, " "); split(b, y, " ");
        for (i = 1; i <= 3; i++) printf "%d ", (y[i] > x[i] ? y[i] : x[i]) }')
  cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
  C[$name]+="$cpu "
  log "$name: $s s, upstream requests (blob GETs, manifest, all): $d${pid:+, cache CPU $cpu s}"
  progress_step "$TOTAL"
}

# wait_stored ROOT NAME — after a cold pull, polls (up to 120 s) until the cache under ROOT
# has stored every blob and the manifest (registry:2 stores in the background, fetching
# each blob a second time): the warm pull must find everything. Records the seconds
# it took in S[NAME].
declare -A S
wait_stored() {
  local t0 k
  t0=$(now)
  for ((k = 0; k < 1200; k++)); do
    [ "$(stored_blobs "$1")" = "$STORE_EXPECT" ] && break
    sleep 0.1
  done
  S[$2]+="$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') "
  [ "$k" -lt 1200 ] || log "$2: not everything stored 120 s after the pull"
}

# manifest_rate KIND URL — WRK seconds of manifest GETs by tag (wrk -c8 -t2) at URL:
# req/s in M[KIND] (the best round), the upstream requests they caused in MU[KIND]
# (the most). Nothing when any answer was not 2xx (logged).
declare -A M MU
manifest_rate() {
  [ "$WRK" = 0 ] && return 0
  local u0 u1 out r
  u0=$(up_counts)
  out=$(wrk -c8 -t2 -d"${WRK}s" -H "Accept: $MT" "$2" 2>&1)
  sleep 0.2; u1=$(up_counts)
  if grep -q 'Non-2xx' <<<"$out"; then log "$1: non-2xx manifest answers: $(grep Non-2xx <<<"$out")"; return 0; fi
  r=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  [ "${r:-0}" -gt "${M[$1]:-0}" ] && M[$1]=$r
  u1=$(( ${u1##* } - ${u0##* } )); [ "$u1" -ge "${MU[$1]:-0}" ] && MU[$1]=$u1
  log "$1: $r manifest GETs/s by tag, $u1 upstream requests"
}

# A cache of KIND on a new, empty storage root: cold pull, then warm pull, then stopped.
HAVE_REGFS=1
cache_round() {
  local kind=$1 i=$2 root=$WORK/$1-$2 extra
  rm -rf "$WORK/$kind-$((i - 1))"
  if [ "$kind" = regfs ]; then
    extra="regfs:
  proxies:
    - prefix: up
      remoteurl: http://$UP$UPCREDS"
    start_regfs_registry "$root" "$extra" || bail "regfs-registry did not start"
    if ! pull regfs-cold "$REGISTRY_HOST/up/bench/img:v1" "$REGISTRY_PID"; then
      # skopeo failed and the upstream saw no blob GET: this build has no cache, or
      # only its manifest part.
      [ "$HAVE_REGFS" = 1 ] && log "regfs-registry ($REGFS_BUILD) does not pull up/bench/img's blobs from the upstream (no pull-through cache for blobs in this build: $(tail -c 300 "$WORK/skopeo.err" | tr '\n' ' ')); its rows stay empty"
      HAVE_REGFS=0; progress_step; progress_step
    else
      wait_stored "$root" regfs-cold
      pull regfs-warm "$REGISTRY_HOST/up/bench/img:v1" "$REGISTRY_PID"
    fi
    manifest_rate regfs "$REGISTRY_URL/v2/up/bench/img/manifests/v1"
  else
    extra="proxy:
  remoteurl: http://$UP${UPCREDS//      /  }"
    start_docker_registry "$root" "$extra" || bail "docker-registry (proxy mode) did not start"
    pull docker-cold "$REGISTRY_HOST/bench/img:v1" "$REGISTRY_PID"
    wait_stored "$root" docker-cold
    pull docker-warm "$REGISTRY_HOST/bench/img:v1" "$REGISTRY_PID"
    manifest_rate docker "$REGISTRY_URL/v2/bench/img/manifests/v1"
  fi
  RSS[$kind]=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$REGISTRY_PID/status")
  stop_pid "$REGISTRY_PID"
}

declare -A RSS
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
progress_begin bench pulls $((5 * REPS))
for ((i = 1; i <= REPS; i++)); do
  pull direct "$UP/bench/img:v1"
  if ((i % 2)); then cache_round regfs "$i"; cache_round docker "$i"
  else cache_round docker "$i"; cache_round regfs "$i"; fi
done
progress_end

# concurrent KIND URL — CLIENTS GETs of the largest blob at once from a cold cache; the
# seconds until the last has it in T[KIND-clients], upstream blob GETs in N[...].
concurrent() {
  local kind=$1 url=$2 k u0 t0 t1 bad=0 ub pids=()
  u0=$(up_counts); t0=$(now)
  for ((k = 0; k < CLIENTS; k++)); do
    (curl -sf -m 600 "$url" | sha256sum | cut -d' ' -f1 >"$WORK/conc-$k") &
    pids+=($!)
  done
  wait "${pids[@]}"   # not a bare wait: the registries are children too
  t1=$(now); sleep 0.2
  for ((k = 0; k < CLIENTS; k++)); do [ "sha256:$(cat "$WORK/conc-$k")" = "$BIG" ] || bad=$((bad + 1)); done
  ub=$(( $(up_counts | cut -d' ' -f1) - ${u0%% *} ))
  T[$kind-clients]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'); N[$kind-clients]=$ub
  log "$kind: $CLIENTS clients at once, cold: ${T[$kind-clients]} s, $ub upstream blob GETs, $bad wrong or failed"
  [ "$bad" = 0 ] || { T[$kind-clients]="$bad of $CLIENTS wrong"; }
}
if [ "$CLIENTS" -gt 0 ]; then
  for kind in regfs docker; do
    [ "$kind" = regfs ] && [ "$HAVE_REGFS" = 0 ] && continue
    if [ "$kind" = regfs ]; then
      start_regfs_registry "$WORK/conc-regfs" "regfs:
  proxies:
    - prefix: up
      remoteurl: http://$UP$UPCREDS" || bail "regfs-registry did not start"
      concurrent regfs "$REGISTRY_URL/v2/up/bench/img/blobs/$BIG"
    else
      start_docker_registry "$WORK/conc-docker" "proxy:
  remoteurl: http://$UP${UPCREDS//      /  }" || bail "docker-registry did not start"
      concurrent docker "$REGISTRY_URL/v2/bench/img/blobs/$BIG"
    fi
    stop_pid "$REGISTRY_PID"
  done
fi
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ----------------------------------------------------------------------------
best() { tr ' ' '\n' <<<"$1" | grep . | sort -g | head -n1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "pull of a $((TOTAL / 1000000)) MB image ($NBLOBS blobs), skopeo copy to dir:, best of $REPS; load average $LOAD"
printf '%-26s %8s %9s %24s %10s %8s %8s\n' path seconds vs-direct "upstream blob/mf/all" "cache CPU" "RSS MB" stored
direct=$(best "${T[direct]}")
for n in direct regfs-cold regfs-warm docker-cold docker-warm; do
  case $n in
    direct) label="direct from the upstream" ;;
    regfs-*) label="regfs cache, ${n#*-}" ;;
    docker-*) label="registry:2 proxy, ${n#*-}" ;;
  esac
  if [ -z "${T[$n]:-}" ]; then printf '%-26s %8s\n' "$label" "-"; continue; fi
  s=$(best "${T[$n]}")
  cpu=-; [ "$n" = direct ] || cpu=$(best "${C[$n]}")
  rss=-; case $n in regfs-warm) rss=${RSS[regfs]:--} ;; docker-warm) rss=${RSS[docker]:--} ;; esac
  read -r b m a <<<"${N[$n]}"
  st=-; [ -n "${S[$n]:-}" ] && st="+$(best "${S[$n]}")"
  printf '%-26s %8s %9s %24s %10s %8s %8s\n' "$label" "$s" "$(ratio "$s" "$direct")x" "$b / $m / $a" "$cpu" "$rss" "$st"
done
echo
for w in cold warm; do
  d=$(best "${T[docker-$w]:-}"); r=$(best "${T[regfs-$w]:-}")
  printf 'registry:2 / regfs, %s pull: %sx (>= 1.0: regfs as fast or faster)\n' "$w" "$(ratio "$d" "$r")"
done
if [ "$WRK" != 0 ]; then
  echo
  printf 'manifest GETs by tag (wrk -c8, %s s, best round): regfs %s req/s (%s upstream requests), registry:2 %s req/s (%s); regfs / registry:2 %sx\n' \
    "$WRK" "${M[regfs]:--}" "${MU[regfs]:--}" "${M[docker]:--}" "${MU[docker]:--}" "$(ratio "${M[regfs]:-}" "${M[docker]:-0}")"
fi
if [ "$CLIENTS" -gt 0 ]; then
  printf '%s clients GET the %s MB blob at once, cold: regfs %s s (%s upstream blob GETs), registry:2 %s s (%s); registry:2 / regfs %sx\n' \
    "$CLIENTS" "$((BIGSIZE / 1000000))" "${T[regfs-clients]:--}" "${N[regfs-clients]:--}" "${T[docker-clients]:--}" "${N[docker-clients]:--}" \
    "$(ratio "${T[docker-clients]:-}" "${T[regfs-clients]:-0}")"
fi
echo "(upstream requests: the most any round made; cache CPU: of the cache process during"
echo " the pull; RSS: the cache's peak; stored: seconds after a cold pull until every blob"
echo " and the manifest were in the cache's storage)"
if [ "$HAVE_REGFS" = 1 ]; then
  read -r b _ <<<"${N[regfs-warm]}"
  [ "$b" = 0 ] || echo "WARNING: the warm pull through regfs made $b blob GETs upstream (expected 0)"
fi
