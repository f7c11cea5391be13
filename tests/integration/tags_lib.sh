# tests/integration/tags_lib.sh — helpers of the tags_*.sh scripts that drive the mount's
# writes (and their failures). Source it instead of lib.sh: it sources lib.sh and
# cleanup_lib.sh itself. Not a test itself.
#
#   tags_prelude VAR [PROGRAM…]    what each of them needs first: the mount, skopeo, jq,
#                                  python3 and PROGRAMs; builds the images of the oci_build
#                                  spec on stdin into $OCI and sets one variable per image to
#                                  its digest (imgA → A); bails unless VAR got one.
#                                  $TAGS_SPEC_AB: A and B on a shared base layer
#   tags_spec BASE SIZE X…          the oci_build spec of images imgX… each on a layer base of
#                                  BASE bytes plus a layer x of SIZE bytes of its own
#   push_tags HOST REPO IMG:TAG…    skopeo copy of each image of $OCI to HOST/REPO:TAG
#   tags_registry KIND DIR [nodelete]  start_registry (start_registry_nodelete) of KIND on DIR,
#                                  sets H; on failure a failed check "KIND: registry starts"
#   tags_mount LABEL URL MNT [OPT…]    start_regfs_mount; on failure "LABEL: regfs mounts"
#   tags_proxy_mount LABEL MNT [OPT…]  start_faultproxy in front of $REGISTRY_URL, then
#                                  tags_mount through it ($PROXY_URL)
#   start_faultproxy BACKEND_URL   tools/faultproxy.py in front of a registry; sets PROXY_URL,
#                                  PROXY_HOST
#   proxy_rules 'JSON'             replace its rules: [{"method":"GET","path":"regex","action":"500"}]
#   proxy_reset                    zero its request counts
#   proxy_count METHOD REGEX       requests so far whose "METHOD /path" matches REGEX
#   registry_state HOST REPO       "tag digest" lines of every tag, read with curl straight from
#                                  the registry (HEAD, Docker-Content-Digest), sorted: compare it
#                                  before and after a refused write
#   start_registry_nodelete KIND DIR  a registry with storage.delete.enabled false

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"

FAULTPROXY=$REGFS_SRC/tests/integration/tools/faultproxy.py
tags_spec() {
  local base=$1 size=$2 x; shift 2
  echo "layer base $base"
  for x in "$@"; do printf 'layer %s %s\nimage img%s base %s\n' "${x,,}" "$size" "$x" "${x,,}"; done
}
# the oci_build spec of two images, A and B, on one shared base layer
TAGS_SPEC_AB=$(tags_spec 3000 2000 A B)

push_tags() {
  local h=$1 r=$2 p; shift 2
  for p in "$@"; do skopeo_copy "oci:$OCI:${p%%:*}" "docker://$h/$r:${p#*:}" || return 1; done
}

start_faultproxy() {
  local port; port=$(free_port) || return 1
  start_bg "faultproxy-$port" python3 "$FAULTPROXY" --listen "127.0.0.1:$port" --backend "$1"
  PROXY_HOST=127.0.0.1:$port
  PROXY_URL=http://$PROXY_HOST
  wait_for 15 curl -sf "$PROXY_URL/_faultproxy/counts"
}

tags_prelude() {
  local var=$1 spec t d; shift
  need_regfs_mount
  need_bin skopeo jq python3 "$@"
  OCI=$WORK/oci
  spec=$(cat)
  # (printf -v assigns the caller's globals A, B, …: they are not local here)
  while read -r t d; do printf -v "${t#img}" %s "$d"; done < <(oci_build "$OCI" <<<"$spec")
  [ -n "${!var:-}" ] || bail "oci_build"
}

tags_registry() {
  local kind=$1 dir=$2
  if [ "${3:-}" = nodelete ]; then start_registry_nodelete "$kind" "$dir"; else start_registry "$kind" "$dir"; fi ||
    { fail "$kind: registry starts"; return 1; }
  H=$REGISTRY_HOST
}

tags_mount() {
  local label=$1 url=$2 mnt=$3; shift 3
  start_regfs_mount "$url" "$mnt" "$@" || { fail "$label: regfs mounts"; return 1; }
}

tags_proxy_mount() {
  local label=$1; shift
  start_faultproxy "$REGISTRY_URL" || { fail "$label: faultproxy starts"; return 1; }
  tags_mount "$label" "$PROXY_URL" "$@"
}

proxy_rules() { curl -sf -X PUT --data-binary "$1" "$PROXY_URL/_faultproxy/rules" >/dev/null; }
proxy_reset() { curl -sf -X POST "$PROXY_URL/_faultproxy/reset" >/dev/null; }
proxy_count() {
  curl -sf "$PROXY_URL/_faultproxy/counts" |
    python3 -c 'import json,re,sys; c=json.load(sys.stdin); m=sys.argv[1]; rx=re.compile(sys.argv[2])
print(sum(n for k,n in c.items() if k.split(" ",1)[0]==m and rx.search(k.split(" ",1)[1])))' "$1" "$2"
}
# every request the proxy forwarded or failed
proxy_total() {
  curl -sf "$PROXY_URL/_faultproxy/counts" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin).values()))'
}

registry_state() {
  local h=$1 r=$2 t d
  for t in $(curl -sf "http://$h/v2/$r/tags/list" | jq -r '.tags // [] | .[]'); do
    d=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
      "http://$h/v2/$r/manifests/$t" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
    echo "$t ${d:-unresolvable}"
  done | sort
}

start_registry_nodelete() {
  local kind=$1 dir=$2 port cfg
  mkdir -p "$dir"; port=$(free_port)
  cfg=$WORK/nodelete-$kind-$port.yml
  write_registry_config "$cfg" "$dir" "$port"
  sed -i 's/enabled: true/enabled: false/' "$cfg"
  # the config decides: docker-registry gets no REGISTRY_STORAGE_DELETE_ENABLED
  DOCKER_REGISTRY_ENV='' start_registry "$kind" "$cfg"
}
