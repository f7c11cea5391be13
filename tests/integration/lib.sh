# tests/integration/lib.sh — the harness every integration script sources.
#
#   #!/bin/bash
#   . "$(dirname "$0")/lib.sh"          # sets traps, a work dir, the binaries' paths
#   need_regfs_registry                # fail when the binary is not built
#   need_bin skopeo                    # skip (exit 77) when the machine lacks a program
#   start_regfs_registry "$WORK/data"  # sets REGISTRY_HOST/URL/PID/LOG/CONFIG
#   check "skopeo pushes" skopeo_copy "$(make_image "$WORK/oci" v1 3 1M)" "docker://$REGISTRY_HOST/a/b:v1"
#   done_testing                       # exits 0 when every check passed, 1 otherwise
#
# Exit codes of a script: 0 pass, 77 skip (meson's convention), anything else fail.
# A skip is only for what the machine lacks (FUSE, an installed program); a program or
# option of regfs that is missing is a failure.
# Everything a script starts (processes, FUSE mounts, temp dirs) is registered here and
# torn down by stop_all, run from the EXIT trap — also when the script fails half way.
# Output is TAP-ish ("ok 1 - name" / "not ok 2 - name" / "# diagnostics") so a failure
# in meson's log says what failed and shows the tail of the command's output.
#
# Environment:
#   REGFS_BUILD    build directory holding registry/regfs-registry and fs/regfs
#                  (default: <repo>/build; meson sets it to its build root, the ASan
#                  pass of .ci/run points it at build-asan)
#   REGFS_KEEP=1   keep the work dir after the run (for debugging)
#   REGFS_TEST_TIMEOUT  default seconds for with_timeout/skopeo (300)
#   REGFS_SKIP_REFERENCE=1  reference_kinds leaves out docker-registry (runs that only
#                  cross-check a test itself); .ci/run's ASan pass sets it
# Needs bash >= 4.

set -u -o pipefail

REGFS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REGFS_BUILD=${REGFS_BUILD:-$REGFS_SRC/build}
case $REGFS_BUILD in /*) ;; *) REGFS_BUILD=$(cd "$REGFS_BUILD" 2>/dev/null && pwd || echo "$REGFS_SRC/$REGFS_BUILD") ;; esac
REGFS_REGISTRY=$REGFS_BUILD/registry/regfs-registry
REGFS_MOUNT=$REGFS_BUILD/fs/regfs
DOCKER_REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
TEST_NAME=$(basename "$0" .sh)

# Work dir: on disk (not tmpfs) because images and registries can be hundreds of MB.
WORK=$(mktemp -d "${REGFS_TMPDIR:-/var/tmp}/regfs-$TEST_NAME.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
export TMPDIR=$WORK/tmp   # skopeo and umoci write big temp files; keep them ours
mkdir -p "$TMPDIR"

_PIDS=()        # processes we started (killed by stop_all)
_PIDNAMES=()    # their log names, for diagnostics
_MOUNTS=()      # FUSE mount points (unmounted by stop_all)
_CLEANUPS=()    # extra commands (eval'd by stop_all, last first)
_USED_PORTS=" "
TPORT=""       # the token server's port (start_tokenserver)
TESTS_RUN=0
TESTS_FAILED=0

# --- output -------------------------------------------------------------------

diag() { local l; while IFS= read -r l; do printf '# %s\n' "$l"; done <<<"$*"; }
log()  { printf '# %s\n' "$*"; }

ok() {   # ok NAME — record a passed check
  TESTS_RUN=$((TESTS_RUN + 1)); printf 'ok %d - %s\n' "$TESTS_RUN" "$1"
}
fail() { # fail NAME [DETAILS…] — record a failed check (does not exit)
  TESTS_RUN=$((TESTS_RUN + 1)); TESTS_FAILED=$((TESTS_FAILED + 1))
  printf 'not ok %d - %s\n' "$TESTS_RUN" "$1"; shift
  [ $# -gt 0 ] && diag "$*"
  return 0
}
# check NAME CMD… — run CMD (output captured); ok when it exits 0, else fail + output tail.
check() {
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then ok "$name"; else
    fail "$name" "command failed (exit $rc): $*"; diag "$(printf '%s\n' "$out" | tail -n 25)"
  fi
  return $rc
}
# check_fails NAME CMD… — ok when CMD exits non-zero (for "must be refused" checks).
check_fails() {
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then ok "$name"; else fail "$name" "expected failure but succeeded: $*"; diag "$(printf '%s\n' "$out" | tail -n 10)"; fi
  [ $rc -ne 0 ]
}
# check_eq NAME EXPECTED ACTUAL — ok when the two strings are identical, else shows both.
check_eq() {
  if [ "$2" == "$3" ]; then ok "$1"; else
    fail "$1" "expected: $(printf '%s' "$2" | head -c 2000)"; diag "actual:   $(printf '%s' "$3" | head -c 2000)"; return 1
  fi
}
# check_files NAME EXPECTED_FILE ACTUAL_FILE — ok when identical, else the first lines of diff -u.
check_files() {
  if cmp -s "$2" "$3"; then ok "$1"; else
    fail "$1" "$(diff -u "$2" "$3" | head -n 20)"; return 1
  fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 77; }        # skip the whole script
bail()     { echo "Bail out! $*"; exit 1; }            # unrecoverable setup failure
# done_testing — print the plan and exit 0 if nothing failed, 1 otherwise (0 checks = fail).
done_testing() {
  echo "1..$TESTS_RUN"
  if [ "$TESTS_RUN" -eq 0 ]; then echo "# no checks ran"; exit 1; fi
  if [ "$TESTS_FAILED" -gt 0 ]; then echo "# $TESTS_FAILED of $TESTS_RUN checks failed"; exit 1; fi
  exit 0
}

# need_bin PROGRAM… — skip the script when a program from elsewhere (skopeo, umoci,
# docker-registry…) is not installed: a capability of the machine, not of regfs.
need_bin() {
  local b
  for b in "$@"; do
    if [ ! -x "$b" ] && ! command -v "$b" >/dev/null 2>&1; then skip_all "$b not installed"; fi
  done
}
# need_ours PROGRAM… — a program this build makes (the two binaries, the test tools) must
# be there; when it is not, the script fails (a build problem is never a skip).
need_ours() {
  local b
  for b in "$@"; do [ -x "$b" ] || bail "$b is missing: build first (ninja -C $REGFS_BUILD)"; done
}
need_regfs_registry() {
  need_ours "$REGFS_REGISTRY"
  "$REGFS_REGISTRY" --version >/dev/null 2>&1 || bail "$REGFS_REGISTRY --version fails"
}
# need_layerindex_tools — the registry (or fail), the tools a layer-index test pushes
# and checks with and the index decoder (or skip); sets $LI to the decoder.
need_layerindex_tools() {
  need_regfs_registry
  need_bin umoci skopeo jq "$REGFS_BUILD/tests/integration/regfs-layerindex"
  LI=$REGFS_BUILD/tests/integration/regfs-layerindex
}
# need_regfs_mount — the regfs binary (or fail), and FUSE on this machine (or skip).
need_regfs_mount() {
  need_ours "$REGFS_MOUNT"
  "$REGFS_MOUNT" --version >/dev/null 2>&1 || bail "$REGFS_MOUNT --version fails"
  need_bin fusermount3
  [ -e /dev/fuse ] || skip_all "/dev/fuse missing"
}

# --- timeouts, waiting ----------------------------------------------------------

# with_timeout SECS CMD… — run CMD, killed (TERM, then KILL 5 s later) after SECS.
with_timeout() { local s=$1; shift; timeout -k 5 "$s" "$@"; }
# wait_for SECS CMD… — poll CMD every 0.1 s until it succeeds; 1 after SECS.
wait_for() {
  local s=$1; shift
  local i n=$((s * 10))
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# --- processes, mounts, cleanup -----------------------------------------------

# start_bg NAME CMD… — start CMD in the background, output to $WORK/NAME.log.
# Sets BG_PID. The process is killed by stop_all.
start_bg() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  BG_PID=$!
  _PIDS+=("$BG_PID"); _PIDNAMES+=("$name")
}
# stop_pid PID [SIGNAL] — signal (default TERM) and reap; KILL after 10 s.
stop_pid() {
  local pid=$1 sig=${2:-TERM} i
  # disown first: bash then reaps it silently (no "Killed" job notice in the output).
  disown "$pid" 2>/dev/null
  kill -s "$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  return 0
}
add_mount()   { _MOUNTS+=("$1"); }           # add_mount DIR — unmount DIR in stop_all
add_cleanup() { _CLEANUPS+=("$*"); }         # add_cleanup 'shell code' — run in stop_all
# is_mounted PATH — PATH is a mount point in /proc/self/mountinfo. Unlike `mountpoint -q`
# this needs no stat of PATH, so it also holds for a stale FUSE mount (stat: ENOTCONN) and
# for a mount on a regular file.
is_mounted() {
  local d p
  d=$(cd "$(dirname "$1")" 2>/dev/null && pwd -P) || return 1
  p=${d%/}/$(basename "$1"); [ "$p" = // ] && p=/
  # mountinfo escapes these four characters as octal
  p=${p//\\/\\134}; p=${p// /\\040}; p=${p//$'\t'/\\011}; p=${p//$'\n'/\\012}
  MP=$p awk '$5 == ENVIRON["MP"] { f = 1 } END { exit !f }' /proc/self/mountinfo
}
# unmount PATH — fusermount3 -u, falling back to a lazy unmount, until nothing is mounted
# on PATH any more (a mount may sit on a stale one); nothing if nothing is mounted there
unmount() {
  local i
  for ((i = 0; i < 4; i++)); do
    is_mounted "$1" || return 0
    fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
  done
  is_mounted "$1" && diag "could not unmount $1"
  return 0
}

stop_all() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${_CLEANUPS[$i]}" >/dev/null 2>&1; done
  for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do unmount "${_MOUNTS[$i]}"; done
  for ((i = ${#_PIDS[@]} - 1; i >= 0; i--)); do disown "${_PIDS[$i]}" 2>/dev/null; kill -TERM "${_PIDS[$i]}" 2>/dev/null; done
  for ((i = ${#_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${_PIDS[$i]}"; done
  # When something failed, the processes' logs are usually where the reason is.
  if [ "$TESTS_FAILED" -gt 0 ] || { [ $rc -ne 0 ] && [ $rc -ne 77 ]; }; then
    for ((i = 0; i < ${#_PIDNAMES[@]}; i++)); do
      [ -s "$WORK/${_PIDNAMES[$i]}.log" ] || continue
      log "--- last lines of ${_PIDNAMES[$i]}.log ---"
      diag "$(tail -n 20 "$WORK/${_PIDNAMES[$i]}.log" | cut -c1-400)"
    done
  fi
  if [ "${REGFS_KEEP:-0}" = 1 ]; then log "work dir kept: $WORK"; else
    for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do is_mounted "${_MOUNTS[$i]}" && umount -l "${_MOUNTS[$i]}"; done
    rm -rf "$WORK"
  fi
  exit $rc
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ports, registries --------------------------------------------------------

# free_port — print a TCP port nothing listens on (and that we did not hand out yet),
# below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port in that
# range can be taken between this check and the server's bind by any outgoing
# connection's local end (a curl, a skopeo), and the server then fails with
# "Address already in use".
free_port() {
  local p i lo=32768 span
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  span=$((lo - 10000))
  [ "$span" -ge 2000 ] || span=0
  for ((i = 0; i < 200; i++)); do
    if [ "$span" -gt 0 ]; then
      p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    else
      p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    fi
    case $_USED_PORTS in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
      _USED_PORTS+="$p "; echo "$p"; return 0
    fi
  done
  return 1
}

# wait_http URL [SECS] — wait until URL answers any HTTP status (default 15 s).
wait_http() {
  local url=$1 s=${2:-15} i code
  for ((i = 0; i < s * 10; i++)); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null)
    [ "$code" != 000 ] && [ -n "$code" ] && return 0
    sleep 0.1
  done
  return 1
}

# write_registry_config FILE ROOTDIR PORT [EXTRA_YAML] — a registry:2-format config
# (what both registries read): filesystem storage at ROOTDIR, deletes enabled,
# 127.0.0.1:PORT. EXTRA_YAML is appended verbatim (top-level sections only).
write_registry_config() {
  cat >"$1" <<EOF
version: 0.1
log:
  level: ${REGISTRY_LOG_LEVEL:-info}
  formatter: text
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$3
${4:-}
EOF
}

# _registry_up KIND NAME PORT — wait for /v2/ of a just-started registry (BG_PID).
_registry_up() {
  local kind=$1 name=$2 port=$3 i code
  REGISTRY_PID=$BG_PID
  REGISTRY_HOST=127.0.0.1:$port
  REGISTRY_URL=http://$REGISTRY_HOST
  REGISTRY_PORT=$port
  REGISTRY_LOG=$WORK/$name.log
  for ((i = 0; i < 150; i++)); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$REGISTRY_URL/v2/" 2>/dev/null)
    case $code in 200|401) return 0 ;; esac
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      log "$kind exited during start-up; its log:"; diag "$(tail -n 20 "$REGISTRY_LOG" | cut -c1-400)"; return 1
    fi
    sleep 0.1
  done
  log "$kind did not answer $REGISTRY_URL/v2/ within 15 s; its log:"; diag "$(tail -n 20 "$REGISTRY_LOG")"
  return 1
}

# _registry_config KIND DIR_OR_CONFIG [EXTRA_YAML] — the config a registry of KIND
# (regfs-registry, docker-registry) starts with.
#   DIR: writes one (filesystem root DIR, deletes on, a free port, EXTRA_YAML appended).
#   CONFIG (an existing file): used as is; its http.addr must be 127.0.0.1:PORT.
# Sets REGISTRY_CONFIG, REGISTRY_DATA and _CFG_PORT; 1 (logged) when CONFIG names no port.
_registry_config() {
  local kind=$1 arg=$2
  if [ -f "$arg" ]; then
    REGISTRY_CONFIG=$arg
    _CFG_PORT=$(sed -n 's/^[[:space:]]*addr:[[:space:]]*[^:]*:\([0-9][0-9]*\).*/\1/p' "$arg" | head -n1)
    [ -n "$_CFG_PORT" ] || { log "$kind: no http.addr port in $arg"; return 1; }
    REGISTRY_DATA=$(sed -n 's/^[[:space:]]*rootdirectory:[[:space:]]*//p' "$arg" | head -n1)
  else
    mkdir -p "$arg"; _CFG_PORT=$(free_port)
    REGISTRY_CONFIG=$WORK/$kind-$_CFG_PORT.yml
    write_registry_config "$REGISTRY_CONFIG" "$arg" "$_CFG_PORT" "${3:-}"
    REGISTRY_DATA=$arg
  fi
}

# start_regfs_registry DIR_OR_CONFIG [EXTRA_YAML]
#   DIR: writes a config (filesystem root DIR, deletes on, a free port) and serves it.
#   CONFIG (an existing file): served as is; its http.addr must be 127.0.0.1:PORT.
# Sets REGISTRY_PID REGISTRY_HOST (127.0.0.1:PORT) REGISTRY_URL REGISTRY_PORT
# REGISTRY_LOG REGISTRY_CONFIG REGISTRY_DATA. Returns 1 (with the log) when it does not come up.
# Start several: copy the variables after each call.
start_regfs_registry() {
  _registry_config regfs-registry "$@" || return 1
  start_bg "regfs-registry-$_CFG_PORT" "$REGFS_REGISTRY" serve "$REGISTRY_CONFIG"
  _registry_up regfs-registry "regfs-registry-$_CFG_PORT" "$_CFG_PORT"
}

# start_docker_registry DIR_OR_CONFIG [EXTRA_YAML] — Debian's docker-registry (registry:2
# 2.8.2) on filesystem root DIR; same variables as start_regfs_registry.
# AWS_CA_BUNDLE is unset for it: with it set, docker-registry crashes at start.
# DOCKER_REGISTRY_ENV (words, default REGISTRY_STORAGE_DELETE_ENABLED=true) is its environment.
start_docker_registry() {
  need_bin "$DOCKER_REGISTRY"
  _registry_config docker-registry "$@" || return 1
  # shellcheck disable=SC2086 # DOCKER_REGISTRY_ENV is a list of words
  start_bg "docker-registry-$_CFG_PORT" env -u AWS_CA_BUNDLE ${DOCKER_REGISTRY_ENV-REGISTRY_STORAGE_DELETE_ENABLED=true} \
    OTEL_SDK_DISABLED=true "$DOCKER_REGISTRY" serve "$REGISTRY_CONFIG"
  _registry_up docker-registry "docker-registry-$_CFG_PORT" "$_CFG_PORT"
}

# start_tokenserver NAME [OPTION…] — tools/tokenserver.py (a Docker token issuer that knows
# the user alice:s3cret; OPTIONs go to it) logging to $WORK/NAME.log. Its key and
# certificate are made once per script under $WORK/tok; its port (TPORT) is picked once, so
# a restarted token server serves the registry start_token_registry configured.
# Sets TPORT TOKPID TOKLOG; bails when it does not answer.
start_tokenserver() {
  local name=$1; shift
  if [ ! -f "$WORK/tok/cert.pem" ]; then
    mkdir -p "$WORK/tok"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=regfs-test-token \
      -keyout "$WORK/tok/key.pem" -out "$WORK/tok/cert.pem" 2>/dev/null || bail "openssl req failed"
  fi
  [ -n "$TPORT" ] || TPORT=$(free_port)
  start_bg "$name" python3 "$REGFS_SRC/tests/integration/tools/tokenserver.py" --port "$TPORT" \
    --key "$WORK/tok/key.pem" --cert "$WORK/tok/cert.pem" --user alice:s3cret "$@"
  TOKPID=$BG_PID; TOKLOG=$WORK/$name.log
  wait_http "http://127.0.0.1:$TPORT/token" || bail "tokenserver did not start"
}
# start_token_registry DIR — docker-registry on DIR that takes the Bearer tokens of
# start_tokenserver's issuer; the variables of start_docker_registry.
start_token_registry() {
  start_docker_registry "$1" "auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: regfs-test
    issuer: regfs-test-issuer
    rootcertbundle: $WORK/tok/cert.pem"
}

# start_registry KIND DIR — KIND is regfs or docker (for scripts that run against both).
start_registry() {
  case $1 in
    regfs) start_regfs_registry "$2" "${3:-}" ;;
    docker) start_docker_registry "$2" "${3:-}" ;;
    *) log "start_registry: unknown kind $1"; return 1 ;;
  esac
}
# registry_kinds — the kinds to run against: "regfs docker", or "regfs" on a machine
# without Debian's docker-registry. Scripts loop over it.
registry_kinds() {
  local k=regfs
  [ -x "$DOCKER_REGISTRY" ] && k+=" docker"
  echo $k
}
# reference_kinds — like registry_kinds, for scripts whose docker-registry run only
# cross-checks the test itself (the check is about regfs-registry): with
# REGFS_SKIP_REFERENCE=1 (.ci/run's sanitizer pass) docker is left out when regfs is there.
reference_kinds() {
  local k; k=$(registry_kinds)
  if [ "${REGFS_SKIP_REFERENCE:-0}" = 1 ] && [[ " $k " == *" regfs "* ]]; then k=regfs; fi
  echo $k
}

# start_regfs_mount URL MOUNTPOINT [OPTIONS…] — regfs in the foreground (-f) in the
# background; waits (15 s) until MOUNTPOINT is a mount. Sets MOUNT_PID, MOUNT_LOG.
start_regfs_mount() {
  local url=$1 mnt=$2; shift 2
  mkdir -p "$mnt"
  add_mount "$mnt"
  start_bg "regfs-mount-$(basename "$mnt")" "$REGFS_MOUNT" -f "$@" "$url" "$mnt"
  MOUNT_PID=$BG_PID; MOUNT_LOG=$WORK/regfs-mount-$(basename "$mnt").log
  if ! wait_for 15 mountpoint -q "$mnt"; then
    log "regfs did not mount $mnt within 15 s; its log:"; diag "$(tail -n 20 "$MOUNT_LOG")"; return 1
  fi
}

# --- images ---------------------------------------------------------------------

# make_image DIR TAG NLAYERS SIZE… — build (or add TAG to) an OCI layout at DIR with
# umoci: an image TAG with NLAYERS layers, layer i holding one file of random bytes of
# size SIZE_i (head -c syntax: 1024, 10K, 3M; the last SIZE repeats). Random content,
# so every call makes distinct blobs. Prints the skopeo reference "oci:DIR:TAG".
# Env: MAKE_IMAGE_ARCH / MAKE_IMAGE_OS set the config's platform (default amd64/linux).
make_image() {
  local dir=$1 tag=$2 n=$3; shift 3
  local sizes=("$@") i size f
  [ ${#sizes[@]} -gt 0 ] || sizes=(64K)
  mkdir -p "$WORK/mk"
  if [ ! -f "$dir/index.json" ]; then umoci init --layout "$dir" >&2 || return 1; fi
  umoci new --image "$dir:$tag" >&2 || return 1
  umoci config --image "$dir:$tag" --architecture "${MAKE_IMAGE_ARCH:-amd64}" --os "${MAKE_IMAGE_OS:-linux}" \
    --config.cmd /bin/true --author regfs-tests >&2 || return 1
  for ((i = 0; i < n; i++)); do
    size=${sizes[$i]:-${sizes[${#sizes[@]} - 1]}}
    f=$WORK/mk/layer$i-$RANDOM$RANDOM
    head -c "$size" /dev/urandom >"$f" || return 1
    umoci insert --image "$dir:$tag" "$f" "/data/$tag-layer$i.bin" >&2 || return 1
    rm -f "$f"
  done
  umoci gc --layout "$dir" >&2
  echo "oci:$dir:$tag"
}

# make_index DIR TAG — an OCI image index with two platforms (linux/amd64 and
# linux/arm64, each a 2-layer image) in the OCI layout DIR, tagged TAG.
# Push it with: skopeo_copy --all oci:DIR:TAG docker://…  Prints "oci:DIR:TAG".
make_index() {
  local dir=$1 tag=$2 a m1 m2 idx hex
  MAKE_IMAGE_ARCH=amd64 make_image "$dir" "$tag-amd64" 2 32K 16K >/dev/null || return 1
  MAKE_IMAGE_ARCH=arm64 make_image "$dir" "$tag-arm64" 2 32K 16K >/dev/null || return 1
  m1=$(jq -c --arg t "$tag-amd64" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | del(.annotations)' "$dir/index.json")
  m2=$(jq -c --arg t "$tag-arm64" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | del(.annotations)' "$dir/index.json")
  idx=$WORK/mk/index-$tag.json
  jq -cn --argjson a "$m1" --argjson b "$m2" '{schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [ ($a + {platform: {architecture: "amd64", os: "linux"}}),
                   ($b + {platform: {architecture: "arm64", os: "linux"}}) ]}' >"$idx" || return 1
  hex=$(sha256sum "$idx" | cut -d' ' -f1)
  cp "$idx" "$dir/blobs/sha256/$hex"
  a=$(jq -c --arg t "$tag" --arg h "sha256:$hex" --argjson s "$(stat -c %s "$idx")" \
    '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $h, size: $s,
                     annotations: {"org.opencontainers.image.ref.name": $t}}]' "$dir/index.json") || return 1
  printf '%s\n' "$a" >"$dir/index.json"
  echo "oci:$dir:$tag"
}

# skopeo_copy [SKOPEO_COPY_OPTIONS…] SRC DST — skopeo copy without TLS verification
# (our registries are plain HTTP on loopback) or signature policy; output to stderr.
skopeo_copy() {
  with_timeout "${REGFS_TEST_TIMEOUT:-300}" skopeo --insecure-policy copy -q \
    --src-tls-verify=false --dest-tls-verify=false "$@" >&2
}
# skopeo_x SUBCOMMAND ARGS… — any other skopeo command (inspect, list-tags, delete) over
# plain HTTP.
skopeo_x() {
  local sub=$1; shift
  with_timeout "${REGFS_TEST_TIMEOUT:-300}" skopeo --insecure-policy "$sub" --tls-verify=false "$@"
}

# --- pushing by hand (curl, no skopeo) ----------------------------------------------------

# put_blob URL REPO FILE DIGEST — a monolithic upload: POST, then PUT ?digest= with FILE
# streamed (curl -T; --data-binary @ would load it into memory). 0 when it answers 201.
put_blob() {
  local loc
  loc=$(curl -sS -o /dev/null -D - -X POST "$1/v2/$2/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [ -n "$loc" ] || return 1
  case $loc in http*) ;; *) loc=$1$loc ;; esac
  case $loc in *\?*) loc="$loc&digest=$4" ;; *) loc="$loc?digest=$4" ;; esac
  [ "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' -T "$3" "$loc")" = 201 ]
}
# put_manifest URL REPO REF FILE — PUT an OCI image manifest; 0 when it answers 201.
put_manifest() {
  [ "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$4" "$1/v2/$2/manifests/$3")" = 201 ]
}
# oci_manifest CONFIG LAYER… — print an OCI image manifest (one line) of the files CONFIG
# (an image config) and LAYERs (uncompressed tar media type), digests and sizes computed here.
oci_manifest() {
  local cfg=$1 f sep="" layers=""
  shift
  for f in "$@"; do
    layers+=$(printf '%s{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}' \
      "$sep" "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")")
    sep=,
  done
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}\n' \
    "$(sha256sum "$cfg" | cut -d' ' -f1)" "$(stat -c %s "$cfg")" "$layers"
}

# --- benchmarks ---------------------------------------------------------------------------

# bench_options HELP_LINES NAME:VAR… -- ARGS… — parse a benchmark's command line: --NAME V
# sets VAR to V; -h/--help prints the lines HELP_LINES (sed range, e.g. 2,16) of the
# script; anything else, or an option without its value, exits 2.
bench_options() {
  local help=$1 o opts=()
  shift
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  while [ $# -gt 0 ]; do
    case $1 in -h|--help) sed -n "${help}p" "$0"; exit 0 ;; esac
    for o in "${opts[@]}"; do
      [ "$1" = "--${o%%:*}" ] || continue
      [ $# -ge 2 ] || { echo "bench/$TEST_NAME.sh: $1 needs a value" >&2; exit 2; }
      printf -v "${o#*:}" %s "$2"; shift 2; continue 2
    done
    echo "bench/$TEST_NAME.sh: unknown option $1 (see --help)" >&2; exit 2
  done
}

# --- verifying content against independent values -------------------------------

# verify_dir_blobs DIR — every blob file in a skopeo "dir:" copy (files named by the
# hex digest) hashes to its name. Prints the mismatches; returns 1 if any (or no blobs).
verify_dir_blobs() {
  local f n=0 bad=0 h
  for f in "$1"/*; do
    [[ $(basename "$f") =~ ^[0-9a-f]{64}$ ]] || continue
    h=$(sha256sum "$f" | cut -d' ' -f1); n=$((n + 1))
    [ "$h" = "$(basename "$f")" ] || { echo "blob $(basename "$f") hashes to $h"; bad=1; }
  done
  [ $n -gt 0 ] || { echo "no blobs in $1"; return 1; }
  return $bad
}
# blob_path DATA DIGEST — where a blob lives in a registry:2 storage root.
blob_path() { local h=${2#sha256:}; echo "$1/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data"; }
# verify_store_blobs DATA — every stored blob (blobs/sha256/xx/HEX/data) hashes to HEX.
verify_store_blobs() {
  local f h hex n=0 bad=0
  while IFS= read -r f; do
    hex=$(basename "$(dirname "$f")"); h=$(sha256sum "$f" | cut -d' ' -f1); n=$((n + 1))
    [ "$h" = "$hex" ] || { echo "stored blob $hex hashes to $h"; bad=1; }
  done < <(find "$1/docker/registry/v2/blobs" -type f -name data 2>/dev/null)
  echo "$n blobs checked"
  return $bad
}
# stored_blobs DATA — the sorted digests (sha256:HEX) of the blobs stored under DATA.
stored_blobs() {
  find "$1/docker/registry/v2/blobs" -type f -name data 2>/dev/null |
    sed -n 's|.*/blobs/sha256/../\([0-9a-f]\{64\}\)/data$|sha256:\1|p' | sort
}
# reachable DATA all|tagged — every blob reachable from the repositories' manifests on
# disk: roots are all manifest revisions (all) or the tagged manifests (tagged); index
# children are followed; each manifest's config and layers count. Computed from the
# files in the storage root, independently of regfs's code. Sorted sha256:HEX lines.
reachable() {
  python3 - "$1" "$2" <<'PY'
import glob, json, os, sys
data, mode = sys.argv[1], sys.argv[2]
v2 = data + "/docker/registry/v2"
pat = "/**/_manifests/revisions/sha256/*/link" if mode == "all" else "/**/_manifests/tags/*/current/link"
queue = [open(f).read().strip() for f in glob.glob(v2 + "/repositories" + pat, recursive=True)]
seen = set(); out = set()
while queue:
    dg = queue.pop()
    if dg in seen: continue
    seen.add(dg); out.add(dg)
    h = dg.split(":", 1)[1]
    p = f"{v2}/blobs/sha256/{h[:2]}/{h}/data"
    if not os.path.exists(p): continue
    try: m = json.load(open(p))
    except Exception: continue
    if not isinstance(m, dict): continue
    if isinstance(m.get("config"), dict) and "digest" in m["config"]: out.add(m["config"]["digest"])
    for l in m.get("layers") or []: out.add(l["digest"])
    for c in m.get("manifests") or []: queue.append(c["digest"])
if out: print("\n".join(sorted(out)))
PY
}

# same_dirs A B — two "dir:" copies hold the same files with the same bytes.
same_dirs() { diff -r "$1" "$2" >/dev/null; }
