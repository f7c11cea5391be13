# shellcheck shell=bash
# tests/integration/proxy_lib.sh — sourced by the pull-through cache's scripts
# (proxy_*.sh) after lib.sh: a token-protected upstream, the cache in front of it,
# request counting at both ends, and the upstream's own view of an image.
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/proxy_lib.sh"
#   proxy_needs [PROGRAM…]       the registry (or fail), skopeo jq curl python3 openssl
#                                docker-registry and PROGRAMs (or skip)
#   upstream_start               tools/tokenserver.py (user alice:s3cret) + Debian's
#                                docker-registry with auth.token behind it, and
#                                tools/faultproxy.py in front of that registry: the
#                                upstream the cache and the clients see is $UP_HOST
#                                (the faultproxy), which counts and logs every request
#                                and can fail or corrupt some (up_rules)
#   upstream_stop / upstream_restart   both processes down (connection refused) / back
#                                on the same ports and data (call it in the script's
#                                shell, never in $( … ) or check: the processes would
#                                escape the cleanup)
#   up_push SRC NAME:TAG [OPT…]  skopeo copy SRC to the upstream as alice (not counted:
#                                straight to the registry, not through the faultproxy)
#   up_raw NAME REF              the upstream's manifest bytes (skopeo inspect --raw as
#                                alice); up_digest NAME REF: their sha256:HEX
#   up_blobs NAME REF            sorted digests of every blob the upstream's REF references
#                                (index children's manifests, configs and layers)
#   up_reset / up_count METHOD REGEX / up_total / up_log / up_rules JSON
#                                the upstream faultproxy's counters, request log, rules
#   cache_start [DATA]           the cache (PROXY_CACHE: regfs, the default, is
#                                regfs-registry with regfs.proxies [{prefix: hub, …}];
#                                docker is registry:2's own proxy mode, which checks
#                                the harness itself) on DATA (default $WORK/cache-data),
#                                plus a faultproxy in front of it ($FRONT_HOST) through
#                                which the mirror clients go, so their requests (the
#                                query string too) can be read back (front_log)
#                                Sets CACHE_HOST CACHE_URL CACHE_PID CACHE_LOG CACHE_DATA
#                                and CP, the name prefix of the cached names ("hub/" or "")
#   CACHE_PROXY_YAML             extra keys of the regfs.proxies entry (default
#                                revalidate: 3s)
#   cache_proxies_yaml           that regfs: section alone (for a config of one's own, as
#                                the S3 script's); cache_serve CONFIG DATA starts it
#   dir_digests DIR              "manifest-digest" then the sorted blob digests of a skopeo
#                                dir: copy (what up_digest/up_blobs give for the upstream)
#
# The upstream's user is alice:s3cret; the cache gets the same credentials in its config.
# Scripts end with check_daemon_logs (cleanup_lib.sh) before done_testing.

# check_daemon_logs (sanitizer reports of everything started, leaks included) is shared
. "$REGFS_SRC/tests/integration/cleanup_lib.sh"

PROXY_CACHE=${PROXY_CACHE:-regfs}
# skopeo options of the pushes meant as OCI: none, but registry:2 2.8's proxy mode asks
# its upstream without the OCI media types ("OCI manifest found, but accept header does
# not support OCI manifests"), so under PROXY_CACHE=docker they are Docker schema 2 too
UP_OCI=()
[ "$PROXY_CACHE" = docker ] && UP_OCI=(--format v2s2)
UP_V2S2=(--format v2s2)   # Docker Hub's format
FAULTPROXY=$REGFS_SRC/tests/integration/tools/faultproxy.py
UP_USER=alice:s3cret
ACCEPT_ALL='application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'

proxy_needs() {
  [ "$PROXY_CACHE" = regfs ] && need_regfs_registry
  need_bin skopeo jq curl python3 openssl umoci "$DOCKER_REGISTRY" "$@"
}

# _faultproxy NAME PORT BACKEND_URL — a faultproxy on PORT; BG_PID; 1 when it does not answer
_faultproxy() {
  start_bg "$1" python3 "$FAULTPROXY" --listen "127.0.0.1:$2" --backend "$3"
  wait_for 15 curl -sf "http://127.0.0.1:$2/_faultproxy/counts"
}

upstream_start() {
  start_tokenserver tokenserver
  start_token_registry "$WORK/up-data" || bail "the upstream docker-registry did not start"
  UP_REG_PID=$REGISTRY_PID UP_REG_HOST=$REGISTRY_HOST UP_REG_CONFIG=$REGISTRY_CONFIG
  UP_DATA=$REGISTRY_DATA UP_REG_LOG=$REGISTRY_LOG
  UP_PORT=$(free_port) || bail "free_port"
  UP_HOST=127.0.0.1:$UP_PORT UP_URL=http://127.0.0.1:$UP_PORT
  _faultproxy "faultproxy-up" "$UP_PORT" "http://$UP_REG_HOST" || bail "the upstream's faultproxy did not start"
  UP_FP_PID=$BG_PID
}
upstream_stop() { stop_pid "$UP_FP_PID"; stop_pid "$UP_REG_PID"; }
upstream_restart() {
  start_docker_registry "$UP_REG_CONFIG" || return 1
  UP_REG_PID=$REGISTRY_PID
  _faultproxy "faultproxy-up-again" "$UP_PORT" "http://$UP_REG_HOST" || return 1
  UP_FP_PID=$BG_PID
}

up_push() { local src=$1 dst=$2; shift 2; skopeo_copy --dest-creds "$UP_USER" "$@" "$src" "docker://$UP_REG_HOST/$dst"; }
up_raw() { skopeo_x inspect --creds "$UP_USER" --raw "docker://$UP_REG_HOST/$1$(_ref_sep "$2")$2"; }
up_digest() { echo "sha256:$(up_raw "$1" "$2" | sha256sum | cut -d' ' -f1)"; }
_ref_sep() { case $1 in sha256:*) echo @ ;; *) echo : ;; esac; }
# up_token NAME — a pull token for NAME from the issuer (as alice)
up_token() {
  curl -sf -u "$UP_USER" "http://127.0.0.1:$TPORT/token?service=regfs-test&scope=repository:$1:pull" | jq -r .token
}
# up_blobs NAME REF — every blob (configs, layers; child manifests of an index) below REF,
# read from the upstream with curl and a token, sorted and unique
up_blobs() {
  local tok m
  tok=$(up_token "$1") || return 1
  _up_walk "$1" "$2" "$tok" | sort -u
}
_up_walk() {
  local m c
  m=$(curl -sf -H "Authorization: Bearer $3" -H "Accept: $ACCEPT_ALL" "http://$UP_REG_HOST/v2/$1/manifests/$2") || return 1
  jq -r '(.config.digest // empty), (.layers // [] | .[].digest)' <<<"$m"
  for c in $(jq -r '.manifests // [] | .[].digest' <<<"$m"); do
    echo "$c"; _up_walk "$1" "$c" "$3" || return 1
  done
}

# the upstream faultproxy's counters and log (requests from the cache and the clients)
up_reset() { curl -sf -X POST "$UP_URL/_faultproxy/reset" >/dev/null; }
up_rules() { curl -sf -X PUT --data-binary "$1" "$UP_URL/_faultproxy/rules" >/dev/null; }
up_log() { curl -sf "$UP_URL/_faultproxy/log" | jq -r '.[]'; }
up_count() {
  curl -sf "$UP_URL/_faultproxy/counts" |
    python3 -c 'import json,re,sys; c=json.load(sys.stdin); m=sys.argv[1]; rx=re.compile(sys.argv[2])
print(sum(n for k,n in c.items() if (m=="*" or k.split(" ",1)[0]==m) and rx.search(k.split(" ",1)[1])))' "$1" "$2"
}
up_total() { up_count '*' .; }
front_reset() { curl -sf -X POST "http://$FRONT_HOST/_faultproxy/reset" >/dev/null; }
front_log() { curl -sf "http://$FRONT_HOST/_faultproxy/log" | jq -r '.[]'; }

# cache_proxies_yaml — the top-level regfs: section of the cache (printed)
cache_proxies_yaml() {
  cat <<YAML
regfs:
  proxies:
    - prefix: hub
      remoteurl: $UP_URL
      username: ${UP_USER%%:*}
      password: ${UP_USER#*:}
      ttl: 168h
$(printf '%s\n' "${CACHE_PROXY_YAML:-revalidate: 3s}" | sed 's/^/      /')
YAML
}
# cache_yaml DATA PORT — the cache's config file (printed)
cache_yaml() {
  if [ "$PROXY_CACHE" = docker ]; then
    write_registry_config /dev/stdout "$1" "$2" "proxy:
  remoteurl: $UP_URL
  username: ${UP_USER%%:*}
  password: ${UP_USER#*:}"
  else
    write_registry_config /dev/stdout "$1" "$2" "$(cache_proxies_yaml)"
  fi
}
cache_start() {
  local data=${1:-$WORK/cache-data} port
  mkdir -p "$data"
  port=$(free_port) || return 1
  cache_yaml "$data" "$port" >"$WORK/cache-$port.yml"
  cache_serve "$WORK/cache-$port.yml" "$data"
}
# cache_serve CONFIG DATA — start the cache (PROXY_CACHE's kind) on CONFIG, whose storage
# is DATA (a directory, or an S3 bucket's name), and the faultproxy in front of it
cache_serve() {
  local front
  if [ "$PROXY_CACHE" = docker ]; then
    start_docker_registry "$1" || return 1
    CP=""
  else
    start_regfs_registry "$1" || return 1
    CP="hub/"
  fi
  CACHE_HOST=$REGISTRY_HOST CACHE_URL=$REGISTRY_URL CACHE_PID=$REGISTRY_PID
  CACHE_LOG=$REGISTRY_LOG CACHE_DATA=$2 CACHE_PORT=$REGISTRY_PORT
  front=$(free_port) || return 1
  _faultproxy "faultproxy-front" "$front" "$CACHE_URL" || return 1
  FRONT_HOST=127.0.0.1:$front
}

# dir_digests DIR — the manifest's digest (of manifest.json's bytes), then the sorted,
# unique digests of every blob file in a skopeo dir: copy (for an index copied with
# --all: the child manifests too, as up_blobs lists them)
dir_digests() {
  [ -f "$1/manifest.json" ] || { echo "no manifest.json in $1"; return 1; }
  echo "sha256:$(sha256sum <"$1/manifest.json" | cut -d' ' -f1)"
  {
    find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{64}' -printf 'sha256:%f\n'
    find "$1" -maxdepth 1 -type f -name '*.manifest.json' -exec sha256sum {} + | sed 's/^\([0-9a-f]*\) .*/sha256:\1/'
  } | sort -u
}
# up_digests NAME REF — the same list for the upstream: digest of REF, then up_blobs
up_digests() { up_digest "$1" "$2" && up_blobs "$1" "$2"; }

# --- podman, with a registries.conf mirror ------------------------------------------------

# podman_setup MIRROR_LOCATION — a registries.conf (in $WORK/podman) that sends pulls of
# $UP_HOST/… to MIRROR_LOCATION first (both insecure: plain HTTP on loopback); call it
# in the script's shell, not in $( … ) (it registers a cleanup)
podman_setup() {
  mkdir -p "$WORK/podman"
  # podman refuses a runroot longer than 50 characters: the runroots go under /tmp
  if [ -z "${PODMAN_RUN:-}" ]; then
    PODMAN_RUN=$(mktemp -d /tmp/regfs-podman.XXXXXX) || return 1
    add_cleanup "rm -rf '$PODMAN_RUN'"
  fi
  cat >"$WORK/podman/registries.conf" <<CONF
unqualified-search-registries = []
[[registry]]
location = "$UP_HOST"
insecure = true
[[registry.mirror]]
location = "$1"
insecure = true
CONF
}
# podman_x STORE ARGS… — podman with its own storage (vfs) under $WORK/podman/STORE, the
# registries.conf above, no systemd (cgroupfs, file events)
podman_x() {
  local s=$WORK/podman/$1 run
  shift
  run=$PODMAN_RUN/${s##*/}
  mkdir -p "$s/tmp" "$run"
  CONTAINERS_REGISTRIES_CONF=$WORK/podman/registries.conf with_timeout 120 podman \
    --root "$s/root" --runroot "$run" --tmpdir "$s/tmp" --storage-driver vfs \
    --cgroup-manager cgroupfs --events-backend file "$@"
}
# podman_facts STORE REF — the pulled image's manifest digest, then its layers' diff IDs
podman_facts() {
  podman_x "$1" image inspect --format '{{.Digest}}{{range .RootFS.Layers}} {{.}}{{end}}' "$2" | tr ' ' '\n'
}
# up_diff_ids NAME REF — the diff IDs of the upstream image's config (REF a manifest)
up_diff_ids() {
  local tok cfg
  tok=$(up_token "$1") || return 1
  cfg=$(curl -sf -H "Authorization: Bearer $tok" -H "Accept: $ACCEPT_ALL" "http://$UP_REG_HOST/v2/$1/manifests/$2" | jq -r .config.digest) || return 1
  curl -sfL -H "Authorization: Bearer $tok" "http://$UP_REG_HOST/v2/$1/blobs/$cfg" | jq -r '.rootfs.diff_ids[]'
}

# --- containerd, with a hosts.toml mirror -------------------------------------------------

# ctr_start — containerd with its root, state and socket under $WORK/ctr (CRI and the
# snapshotters that need kernel features off), a hosts.toml for $UP_HOST that names
# $FRONT_HOST as a pull/resolve mirror; config_path points at it (what CRI reads;
# ctr 1.6 reads the same directory itself with --hosts-dir). Sets CTR_SOCK.
ctr_start() {
  local d=$WORK/ctr
  mkdir -p "$d/root" "$d/state" "$d/hosts/$UP_HOST"
  CTR_SOCK=$d/c.sock
  cat >"$d/hosts/$UP_HOST/hosts.toml" <<CONF
server = "http://$UP_HOST"

[host."http://$FRONT_HOST"]
  capabilities = ["pull", "resolve"]
CONF
  cat >"$d/config.toml" <<CONF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "$d/hosts"
# every namespace fetches its own content (the default, shared, would take a blob
# another namespace has without asking any registry): a pull in a new namespace
# is a cold pull of this containerd
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
CONF
  start_bg containerd containerd --config "$d/config.toml"
  wait_for 30 ctr --address "$CTR_SOCK" version
}
# ctr_x NAMESPACE ARGS… — ctr on our containerd in NAMESPACE
ctr_x() { local n=$1; shift; with_timeout 120 ctr --address "$CTR_SOCK" -n "$n" "$@"; }
# ctr_pull NAMESPACE REF — ctr image pull through the hosts.toml mirror (no credentials:
# only the mirror can answer), unpacked with the native snapshotter
ctr_pull() { ctr_x "$1" image pull --plain-http --hosts-dir "$WORK/ctr/hosts" --snapshotter native "$2"; }
# ctr_digests NAMESPACE REF — the image's target digest, then the sorted digests of the
# namespace's content store
ctr_digests() {
  ctr_x "$1" image ls | awk -v r="$2" '$1 == r { print $3 }'
  ctr_x "$1" content ls -q | sort -u
}
