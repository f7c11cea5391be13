# tests/integration/tags_lib.sh — helpers of the tags_*.sh scripts that drive the mount's
# writes through failures. Source it after lib.sh and cleanup_lib.sh. Not a test itself.
#
#   start_faultproxy BACKEND_URL   tools/faultproxy.py in front of a registry; sets PROXY_URL,
#                                  PROXY_HOST
#   proxy_rules 'JSON'             replace its rules: [{"method":"GET","path":"regex","action":"500"}]
#   proxy_reset                    zero its request counts
#   proxy_count METHOD REGEX       requests so far whose "METHOD /path" matches REGEX
#   registry_state HOST REPO       "tag digest" lines of every tag, read with curl straight from
#                                  the registry (HEAD, Docker-Content-Digest), sorted: compare it
#                                  before and after a refused write
#   start_registry_nodelete KIND DIR  a registry with storage.delete.enabled false

FAULTPROXY=$REGFS_SRC/tests/integration/tools/faultproxy.py

start_faultproxy() {
  local port; port=$(free_port) || return 1
  start_bg "faultproxy-$port" python3 "$FAULTPROXY" --listen "127.0.0.1:$port" --backend "$1"
  PROXY_HOST=127.0.0.1:$port
  PROXY_URL=http://$PROXY_HOST
  wait_for 15 curl -sf "$PROXY_URL/_faultproxy/counts"
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
  REGISTRY_DATA=$dir; REGISTRY_CONFIG=$cfg
  if [ "$kind" = docker ]; then
    start_bg "docker-registry-$port" env -u AWS_CA_BUNDLE OTEL_SDK_DISABLED=true "$DOCKER_REGISTRY" serve "$cfg"
    _registry_up docker-registry "docker-registry-$port" "$port"
  else
    start_bg "regfs-registry-$port" "$REGFS_REGISTRY" serve "$cfg"
    _registry_up regfs-registry "regfs-registry-$port" "$port"
  fi
}
