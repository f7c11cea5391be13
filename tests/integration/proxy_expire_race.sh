#!/bin/bash
# Expiry of the pull-through cache racing its clients. An upstream docker-registry holds
# image X (team/x:v1: a base layer and one of its own); regfs-registry caches it under "up"
# with ttl 3s and an expiry pass every second. REGFS_EXPIRE_PAUSE_MS makes each deletion of
# a tag or manifest pause between the pass's decision and the deletion's last check of the
# pull records (as a long pass would), so that pulls land inside that window.
# 1. Pulls racing expiry. The cache is filled with the upstream up, then the upstream is
#    stopped, so a blob the cache deletes cannot be fetched again. A client (curl) GETs
#    the manifest (by tag, then by digest as containerd does), waits, then GETs the config
#    and layers, each checked against its digest, with gaps between pulls growing across
#    the ttl, so that one meets X's expiry (by tag then by digest). Every pull is either refused at the manifest (the image expired)
#    or succeeds whole: a client that got the manifest gets every blob it names (a pull
#    slower than the ttl is not counted: then expiry may take its blobs).
# 2. A push racing blob deletion. Image C shares X's base layer; skopeo pushes it into
#    local/app-N right after X is pulled, and again just as X expires. The push succeeds or is refused; once X's manifest is
#    expired, every blob C's manifest names is readable from local/app-N and hashes to its
#    digest.
# PROXY_EXPIRE_STORAGE=s3 runs the same on S3 (Ceph RGW).
. "$(dirname "$0")/lib.sh"

need_bin skopeo umoci curl jq python3 "$DOCKER_REGISTRY"
need_regfs_registry

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
TTL=3

# --- images: base (one layer), X and C = base + one layer of their own -------------------
O=$WORK/oci
make_image "$O" base 1 200K >/dev/null || bail "make_image base"
derive() { # derive TAG SIZE — TAG is base plus one random layer of SIZE bytes
  umoci config --image "$O:base" --tag "$1" --author regfs-tests >&2 || return 1
  head -c "$2" /dev/urandom >"$WORK/mk/$1.bin" || return 1
  umoci insert --image "$O:$1" "$WORK/mk/$1.bin" "/data/$1.bin" >&2 || return 1
  umoci gc --layout "$O" >&2
}
for t in x:90K c:50K; do derive "${t%%:*}" "${t#*:}" || bail "umoci: image ${t%%:*}"; done
manifest_of() { jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$O/index.json"; }
XM=$(manifest_of x); CM=$(manifest_of c)
jq -r '.config.digest, .layers[].digest' "$O/blobs/sha256/${CM#sha256:}" >"$WORK/c.blobs"
check_eq "X and C share their base layer" 1 \
  "$(jq -r '.layers[].digest' "$O/blobs/sha256/${XM#sha256:}" | grep -cxFf "$WORK/c.blobs")"

start_docker_registry "$WORK/upstream" || bail "upstream docker-registry did not start"
UP=$REGISTRY_HOST; UP_PID=$REGISTRY_PID; UP_CONFIG=$REGISTRY_CONFIG
skopeo_copy "oci:$O:x" "docker://$UP/team/x:v1" || bail "skopeo push of X to the upstream"

# a notifications endpoint: a python listener recording each POSTed event, one a line
cat >"$WORK/listener.py" <<'EOF'
import http.server, json, sys, threading
out, lock = open(sys.argv[2], "a"), threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with lock:
            for ev in body.get("events", []):
                out.write(json.dumps(ev) + "\n")
            out.flush()
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
LPORT=$(free_port); EV=$WORK/events.jsonl; : >"$EV"
start_bg listener python3 "$WORK/listener.py" "$LPORT" "$EV"
wait_for 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$LPORT" || bail "the notifications listener did not start"

CONF="notifications:
  endpoints:
    - name: events
      url: http://127.0.0.1:$LPORT/events
      timeout: 2s
      backoff: 100ms
regfs:
  proxies:
    - prefix: up
      remoteurl: http://$UP
      ttl: ${TTL}s
  proxycache:
    interval: 1s
  gc:
    delay: 1s"
export REGFS_EXPIRE_PAUSE_MS=1000
if [ "${PROXY_EXPIRE_STORAGE:-filesystem}" = s3 ]; then
  . "$(dirname "$0")/s3_lib.sh"
  s3_start perace
  s3_config "$WORK/regfs.yml" perace "$(free_port)" "$CONF" || bail "s3_config"
  start_regfs_registry "$WORK/regfs.yml" || bail "regfs-registry did not start"
else
  start_regfs_registry "$WORK/data" "$CONF" || bail "regfs-registry did not start"
fi
H=$REGISTRY_HOST; U=$REGISTRY_URL; REGFS_LOG=$REGISTRY_LOG

up_start() { kill -0 "$UP_PID" 2>/dev/null || { start_docker_registry "$UP_CONFIG" && UP_PID=$REGISTRY_PID; }; }
up_stop() { stop_pid "$UP_PID"; }
sha_of() { echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1)"; }
within_ttl() { awk -v a="$1" -v b="$2" -v t=$TTL 'BEGIN { exit !(b - a < t) }'; }

# pull_whole REF — 0: manifest and every blob, each hashing to its digest; 1: refused at
# the manifest (or slower than the ttl); 2: a blob missing or wrong after the manifest.
pull_whole() {
  local t0 tb code d
  t0=$(date +%s.%N)
  code=$(curl -s -m 20 -o "$WORK/m.json" -w '%{http_code}' -H "$ACCEPT" "$U/v2/up/team/x/manifests/$1")
  [ "$code" = 200 ] || return 1
  [ "$(sha_of "$WORK/m.json")" = "$XM" ] || { log "pull of $1: the manifest does not hash to $XM"; return 2; }
  sleep 1.2   # a client that fetches its blobs a moment later
  for d in $(jq -r '.config.digest, .layers[].digest' "$WORK/m.json"); do
    tb=$(date +%s.%N)
    code=$(curl -s -L -m 20 -o "$WORK/blob" -w '%{http_code}' "$U/v2/up/team/x/blobs/$d")
    [ "$code" = 200 ] && [ "$(sha_of "$WORK/blob")" = "$d" ] && continue
    if within_ttl "$t0" "$tb"; then
      log "pull of $1: manifest served, then blob $d answered $code"
      return 2
    fi
    log "pull of $1: blob $d asked for more than the ttl after the manifest: not counted"
    return 1
  done
  return 0
}

# --- 1. pulls racing expiry -----------------------------------------------------------------
served=0 refused=0 bad=0 fill_failed=0
for ((round = 1; round <= 3; round++)); do
  up_start || bail "upstream docker-registry did not restart"
  skopeo_copy "docker://$H/up/team/x:v1" "dir:$WORK/fill" || { fill_failed=$((fill_failed + 1)); continue; }
  up_stop
  # gaps growing across the ttl: the early pulls keep X, a later one meets its expiry
  for gap in 0.5 1.0 1.5 2.0 2.5 3.0 5.0; do
    sleep "$gap"
    ref=$XM; [ "$gap" = 0.5 ] && ref=v1
    pull_whole "$ref"
    rc=$?
    [ $rc = 0 ] && served=$((served + 1))
    [ $rc = 2 ] && bad=$((bad + 1))
    if [ $rc = 1 ]; then refused=$((refused + 1)); break; fi
  done
done
log "pulls: $served whole, $refused refused at the manifest, $bad with a blob deleted under them"
check_eq "the cache was filled in every round" 0 "$fill_failed"
check_eq "no client that got the manifest missed one of its blobs" 0 "$bad"
check "pulls were served whole" test "$served" -gt 0
check "pulls were refused once X expired (the upstream down)" test "$refused" -gt 0
check "expiry logged the deletion of X's manifest with its bytes" \
  grep -q "proxy expiry: manifest $XM of up/team/x ([0-9]* bytes) no longer tagged" "$REGFS_LOG"

# --- 2. a push racing blob deletion ---------------------------------------------------------
expired_count() { grep -c "proxy expiry: manifest $XM of up/team/x " "$REGFS_LOG"; }
pushed=0 push_refused=0 unreadable=0 not_expired=0
up_start || bail "upstream docker-registry did not restart"
# pushed at once (X expires later: the base layer stays for C) and about when X expires
round=0
for delay in 0 "$TTL.5"; do
  round=$((round + 1))
  before=$(expired_count)
  skopeo_copy "docker://$H/up/team/x:v1" "dir:$WORK/fill" || bail "skopeo pull of X through the cache"
  sleep "$delay"
  if skopeo_copy "oci:$O:c" "docker://$H/local/app-$round:c"; then
    pushed=$((pushed + 1))
  else
    push_refused=$((push_refused + 1)); log "push $round refused"
  fi
  for ((i = 0; i < 40 && $(expired_count) == before; i++)); do sleep 0.5; done
  [ "$(expired_count)" != "$before" ] || { not_expired=$((not_expired + 1)); continue; }
  if curl -s -o "$WORK/cm.json" -H "$ACCEPT" "$U/v2/local/app-$round/manifests/c" &&
     [ "$(sha_of "$WORK/cm.json")" = "$CM" ]; then
    while read -r d; do
      curl -s -L -o "$WORK/blob" "$U/v2/local/app-$round/blobs/$d"
      [ "$(sha_of "$WORK/blob")" = "$d" ] || { log "local/app-$round: blob $d unreadable"; unreadable=$((unreadable + 1)); }
    done <"$WORK/c.blobs"
  elif [ "$pushed" -ge "$round" ]; then
    log "local/app-$round:c was pushed but its manifest does not read back"; unreadable=$((unreadable + 1))
  fi
done
log "pushes: $pushed succeeded, $push_refused refused"
check_eq "X expired after each push" 0 "$not_expired"
check_eq "after every push that succeeded, every blob its manifest names reads back" 0 "$unreadable"
check "pushes succeeded" test "$pushed" -gt 0

# --- 3. the deletions as notification events ------------------------------------------------
deleted() { # deleted JQ_FILTER — an expiry delete event of up/team/x matching the filter arrived
  jq -e -s "map(select(.action == \"delete\" and .target.repository == \"up/team/x\" and ($1))) | length > 0" "$EV" >/dev/null
}
XB=$(jq -r '.layers[-1].digest' "$O/blobs/sha256/${XM#sha256:}")
check "a delete event for X's tag" wait_for 10 deleted '.target.tag == "v1"'
check "a delete event for X's manifest" deleted "(.target.digest == \"$XM\") and (.target.url | test(\"/manifests/\"))"
check "a delete event for X's own layer" deleted "(.target.digest == \"$XB\") and (.target.url | test(\"/blobs/\"))"
done_testing
