#!/bin/bash
# bench/registry.sh — regfs-registry side by side with Debian's docker-registry (registry:2
# 2.8.2) in one run, on the same data, with nginx serving the same bytes as static files
# as the ceiling. Loopback only. Not a test: it prints numbers and ratios, asserts nothing.
#
# Usage: bench/registry.sh [--size MB] [--duration S] [--secure]
#   --size MB      size of the big layer (default 320: a layer over 300 MB)
#   --duration S   wrk duration per measurement (default 5)
#   --secure       (or SECURE=1) both registries with TLS and htpasswd (the same config
#                  section), nginx with TLS; every client sends the credentials
#                  (htpasswd left out for both when regfs-registry cannot do it yet)
# Environment: REGFS_BUILD (default ./build; use a release build: tools/run makes one).
# See bench/README.md for what is measured and how to read it.
set -u
cd "$(dirname "$0")/.."
# The integration-test harness gives us process management, free ports and cleanup.
# shellcheck source=../tests/integration/lib.sh
. tests/integration/lib.sh
SIZE_MB=320; DUR=5; SECURE=${SECURE:-0}
args=()
for a in "$@"; do if [ "$a" = --secure ]; then SECURE=1; else args+=("$a"); fi; done
bench_options 2,15 size:SIZE_MB duration:DUR -- "${args[@]}"
. bench/progress.sh
for b in "$REGFS_REGISTRY" "$DOCKER_REGISTRY" wrk ab nginx skopeo umoci curl jq bc openssl htpasswd base64; do
  [ -x "$b" ] || command -v "$b" >/dev/null || { echo "bench: $b missing (build first; tools/setup installs the rest)" >&2; exit 1; }
done
"$REGFS_REGISTRY" --version >/dev/null 2>&1 || { echo "bench: $REGFS_REGISTRY --version fails" >&2; exit 1; }
bt=$(meson introspect --buildoptions "$REGFS_BUILD" 2>/dev/null | jq -r '.[] | select(.name == "buildtype") | .value' 2>/dev/null)
[ "$bt" = release ] || echo "bench: note: $REGFS_BUILD is buildtype '${bt:-?}', not release" >&2
say() { progress_clear; echo "bench: $*" >&2; }

# --- the image: one big layer (SIZE_MB of random bytes) + one small ---------------------------
say "building a ${SIZE_MB} MB image with umoci…"
umoci init --layout "$WORK/oci" >/dev/null && umoci new --image "$WORK/oci:big" >/dev/null || exit 1
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/big.bin"
umoci insert --image "$WORK/oci:big" "$WORK/big.bin" /big.bin >/dev/null || exit 1
head -c 1M /dev/urandom >"$WORK/small.bin"
umoci insert --image "$WORK/oci:big" "$WORK/small.bin" /small.bin >/dev/null || exit 1
rm -f "$WORK/big.bin" "$WORK/small.bin"
MDIG=$(jq -r '.manifests[0].digest' "$WORK/oci/index.json")
MFILE=$WORK/oci/blobs/sha256/${MDIG#sha256:}
BDIG=$(jq -r '[.layers[]] | max_by(.size) | .digest' "$MFILE")
BSIZE=$(jq -r '[.layers[]] | max_by(.size) | .size' "$MFILE")
MT=$(jq -r '.mediaType // "application/vnd.oci.image.manifest.v1+json"' "$MFILE")
REPO=bench/big
say "manifest $MDIG, big layer $BDIG ($BSIZE bytes)"

# --- the servers -------------------------------------------------------------------------------
# Same settings for both (env overrides of the config): logging every request would
# measure the logger; the in-memory blob descriptor cache is what our users configure.
export REGISTRY_LOG_LEVEL=error REGISTRY_LOG_ACCESSLOG_DISABLED=true REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=inmemory
if [ "$SECURE" = 1 ]; then
  . bench/registry_secure.sh
  secure_setup || exit 1
  secure_start_registries || exit 1
else
  start_regfs_registry "$WORK/data-regfs" || exit 1
  R_URL=$REGISTRY_URL; R_PID=$REGISTRY_PID
  start_docker_registry "$WORK/data-docker" || exit 1
  D_URL=$REGISTRY_URL; D_PID=$REGISTRY_PID
  CURL_SEC=(); WRK_SEC=(); SKOPEO_DEST=(--dest-tls-verify=false); SKOPEO_SRC=(--src-tls-verify=false)
  NGINX_LISTEN=""; N_SCHEME=http; MODE="plain HTTP, no auth"
fi

# nginx: the same bytes as static files at the same paths.
NPORT=$(free_port); NROOT=$WORK/nginx-root
mkdir -p "$NROOT/v2/$REPO/blobs" "$NROOT/v2/$REPO/manifests" "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx-tmp; proxy_temp_path $WORK/nginx-tmp;
  fastcgi_temp_path $WORK/nginx-tmp; uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$NPORT$NGINX_LISTEN;
    root $NROOT;
    location /v2/$REPO/manifests/ { default_type $MT; }
  }
}
EOF

# --- push (also loads the data) --------------------------------------------------------------------
timed() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo FAIL; return 1; }; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
say "skopeo push to regfs-registry and docker-registry…"
R_PUSH=$(timed skopeo --insecure-policy copy "${SKOPEO_DEST[@]}" "oci:$WORK/oci:big" "docker://${R_URL#*://}/$REPO:v1")
D_PUSH=$(timed skopeo --insecure-policy copy "${SKOPEO_DEST[@]}" "oci:$WORK/oci:big" "docker://${D_URL#*://}/$REPO:v1")
cp "$MFILE" "$NROOT/v2/$REPO/manifests/v1"
cp "$MFILE" "$NROOT/v2/$REPO/manifests/$MDIG"
ln "$WORK/oci/blobs/sha256/${BDIG#sha256:}" "$NROOT/v2/$REPO/blobs/$BDIG" 2>/dev/null ||
  cp "$WORK/oci/blobs/sha256/${BDIG#sha256:}" "$NROOT/v2/$REPO/blobs/$BDIG"
# nginx workers run unprivileged: let them reach the files (the hard link shares the inode).
chmod a+x "$WORK" "$WORK/oci" "$WORK/oci/blobs" "$WORK/oci/blobs/sha256"; chmod -R a+rX "$NROOT"
start_bg nginx nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;'
N_URL=$N_SCHEME://127.0.0.1:$NPORT
wait_for 10 curl -fs "${CURL_SEC[@]}" -o /dev/null "$N_URL/v2/$REPO/manifests/v1" || { say "nginx did not start: $(cat "$WORK/nginx-error.log")"; exit 1; }

# Sanity: all three serve the same bytes (else the comparison means nothing).
for u in "$R_URL" "$D_URL" "$N_URL"; do
  got=$(curl -s "${CURL_SEC[@]}" -H "Accept: $MT" "$u/v2/$REPO/manifests/v1" | sha256sum | cut -d' ' -f1)
  [ "sha256:$got" = "$MDIG" ] || { say "$u serves a different manifest ($got): $(curl -s -i "${CURL_SEC[@]}" -H "Accept: $MT" "$u/v2/$REPO/manifests/v1" | head -c 600)"; exit 1; }
done

# --- measurements --------------------------------------------------------------------------------------
# blob GET: best of 3, MB/s (10^6 bytes).
blob_get() {
  local best=0 i r
  for i in 1 2 3; do
    r=$(curl -s "${CURL_SEC[@]}" -o /dev/null -w '%{size_download} %{time_total}' "$1/v2/$REPO/blobs/$BDIG" | awk '{ if ($2 > 0) printf "%.0f", $1 / $2 / 1e6 }')
    [ "${r:-0}" -gt "$best" ] && best=$r
  done
  [ "$(curl -s "${CURL_SEC[@]}" -o /dev/null -w '%{size_download}' "$1/v2/$REPO/blobs/$BDIG")" = "$BSIZE" ] || best="ERR"
  echo "$best"
}
# HEAD req/s: ab (wrk waits for a body after a HEAD response with Content-Length and
# measures 0), 8 keep-alive connections, same client for all three servers.
ab_head_rps() {
  local out; out=$(ab -q -i -k -c 8 -t "$DUR" -n 10000000 "${WRK_SEC[@]}" "$1" 2>&1)
  if grep -q '^Non-2xx' <<<"$out"; then echo ERR; say "non-2xx answers from $1: $(grep Non-2xx <<<"$out")"; return; fi
  awk '/^Requests per second/ { printf "%.0f", $4 }' <<<"$out"
}
# wrk_rps URL [wrk args] — requests/s with 8 keep-alive connections; ERR when any non-2xx.
wrk_rps() {
  local url=$1; shift
  local out; out=$(wrk -c8 -t2 -d"${DUR}s" -H "Accept: $MT" "${WRK_SEC[@]}" "$@" "$url" 2>&1)
  if grep -q 'Non-2xx' <<<"$out"; then echo ERR; say "non-2xx answers from $url: $(grep Non-2xx <<<"$out")"; return; fi
  awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out"
}
declare -A V
progress_begin bench measurements 12
for s in regfs docker nginx; do
  case $s in regfs) u=$R_URL ;; docker) u=$D_URL ;; nginx) u=$N_URL ;; esac
  say "measuring $s…"
  V[$s,blob]=$(blob_get "$u"); progress_step $((BSIZE * 4))   # 3 timed GETs + 1 check
  V[$s,mtag]=$(wrk_rps "$u/v2/$REPO/manifests/v1"); progress_step
  V[$s,mdig]=$(wrk_rps "$u/v2/$REPO/manifests/$MDIG"); progress_step
  V[$s,head]=$(ab_head_rps "$u/v2/$REPO/blobs/$BDIG"); progress_step
done
progress_end
say "skopeo pull from both…"
R_PULL=$(timed skopeo --insecure-policy copy "${SKOPEO_SRC[@]}" "docker://${R_URL#*://}/$REPO:v1" "dir:$WORK/pull-regfs")
D_PULL=$(timed skopeo --insecure-policy copy "${SKOPEO_SRC[@]}" "docker://${D_URL#*://}/$REPO:v1" "dir:$WORK/pull-docker")
rss() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
R_RSS=$(rss "$R_PID"); D_RSS=$(rss "$D_PID")

# --- the table -----------------------------------------------------------------------------------------
ratio() { # ratio A B [inverse] — A/B (or B/A for lower-is-better), 2 decimals
  case "$1$2" in *ERR*|*FAIL*|*\?*|"") echo "-"; return ;; esac
  case "$1 $2" in "0 "*|*" 0"|0*" "*) [ "$(echo "$1 == 0 || $2 == 0" | bc)" = 1 ] && { echo "-"; return; } ;; esac
  if [ "${3:-}" = inv ]; then echo "$2 / $1" | bc -l | xargs printf '%.2f'; else echo "$1 / $2" | bc -l | xargs printf '%.2f'; fi
}
f2() { case $1 in *[0-9]*) printf '%.2f' "$1" ;; *) echo "$1" ;; esac; }
echo
echo "regfs-registry vs docker-registry $($DOCKER_REGISTRY --version | awk '{print $3}') vs nginx (static files), $(date -u +%F), $(nproc) cores, loopback"
echo "$MODE; big layer $((BSIZE / 1000000)) MB; wrk -c8 -t2 -d${DUR}s; ratios: >1 means regfs is better (times are inverted)"
printf '%-28s %12s %12s %12s %14s %12s\n' metric regfs registry:2 nginx regfs/reg:2 regfs/nginx
row() { printf '%-28s %12s %12s %12s %14s %12s\n' "$1" "$2" "$3" "$4" "$5" "$6"; }
row "blob GET MB/s (best of 3)" "${V[regfs,blob]}" "${V[docker,blob]}" "${V[nginx,blob]}" \
  "$(ratio "${V[regfs,blob]}" "${V[docker,blob]}")" "$(ratio "${V[regfs,blob]}" "${V[nginx,blob]}")"
row "manifest GET by tag req/s" "${V[regfs,mtag]}" "${V[docker,mtag]}" "${V[nginx,mtag]}" \
  "$(ratio "${V[regfs,mtag]}" "${V[docker,mtag]}")" "$(ratio "${V[regfs,mtag]}" "${V[nginx,mtag]}")"
row "manifest GET by digest req/s" "${V[regfs,mdig]}" "${V[docker,mdig]}" "${V[nginx,mdig]}" \
  "$(ratio "${V[regfs,mdig]}" "${V[docker,mdig]}")" "$(ratio "${V[regfs,mdig]}" "${V[nginx,mdig]}")"
row "HEAD blob req/s" "${V[regfs,head]}" "${V[docker,head]}" "${V[nginx,head]}" \
  "$(ratio "${V[regfs,head]}" "${V[docker,head]}")" "$(ratio "${V[regfs,head]}" "${V[nginx,head]}")"
row "skopeo push s" "$(f2 "$R_PUSH")" "$(f2 "$D_PUSH")" "-" "$(ratio "$R_PUSH" "$D_PUSH" inv)" "-"
row "skopeo pull s" "$(f2 "$R_PULL")" "$(f2 "$D_PULL")" "-" "$(ratio "$R_PULL" "$D_PULL" inv)" "-"
row "peak RSS MB (VmHWM)" "$R_RSS" "$D_RSS" "-" "$(ratio "$R_RSS" "$D_RSS" inv)" "-"
