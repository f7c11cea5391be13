#!/bin/bash
# regfs-registry's notifications (notifications.endpoints): a python listener on loopback
# records the POSTs. A skopeo push, pulls and deletes by curl must arrive there as
# registry:2 event envelopes (a cross-repository mount too) with the right action,
# repository, tag, digest, media type and size — digests and sizes computed here from the OCI layout skopeo pushed, with
# sha256sum. A second endpoint with ignore.actions and ignoredmediatypes must get only what
# it does not ignore. Then an endpoint that accepts connections and never answers: pushes to
# that registry still succeed, its failures and its full queue are logged, and the time of 5
# pushes against it over 5 pushes to a registry without notifications is printed (never
# asserted).
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin skopeo
need_bin umoci
need_bin jq
need_bin python3

# --- listeners ---------------------------------------------------------------------------
cat >"$WORK/listener.py" <<'EOF'
# Records each POST as one JSON line: path, content type, X-Test header, body (parsed).
import http.server, json, sys, threading
out, lock = open(sys.argv[2], "a"), threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            body = json.loads(body)
        except ValueError:  # recorded as text: the test's checks then fail on it
            body = {"invalid_json": body.decode("utf-8", "replace")}
        rec = {"path": self.path, "ctype": self.headers.get("Content-Type"),
               "xtest": self.headers.get("X-Test"), "body": body}
        with lock:
            out.write(json.dumps(rec) + "\n"); out.flush()
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
cat >"$WORK/dead.py" <<'EOF'
# Accepts connections and never reads or answers them.
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
held = []
while True:
    held.append(s.accept()[0])
EOF
LPORT=$(free_port); DPORT=$(free_port)
EV=$WORK/events.jsonl; : >"$EV"
start_bg listener python3 "$WORK/listener.py" "$LPORT" "$EV"
start_bg dead python3 "$WORK/dead.py" "$DPORT"
wait_for 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$LPORT" || bail "listener starts"
wait_for 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DPORT" || bail "dead listener starts"

OCT=application/octet-stream
start_regfs_registry "$WORK/data" "notifications:
  endpoints:
    - name: all
      url: http://127.0.0.1:$LPORT/all
      headers:
        X-Test: [hello]
      timeout: 2s
      backoff: 100ms
    - name: filtered
      url: http://127.0.0.1:$LPORT/filtered
      ignoredmediatypes: [$OCT]
      ignore:
        actions: [pull]
    - name: off
      url: http://127.0.0.1:$LPORT/off
      disabled: true" || bail "regfs-registry starts with notifications"
H=$REGISTRY_HOST

# --- push, pull, delete ------------------------------------------------------------------
IMG=$(make_image "$WORK/oci" v1 2 64K 32K) || bail "make_image"
check "skopeo pushes app/web:v1" skopeo_copy "$IMG" "docker://$H/app/web:v1"
check "skopeo pushes app/web:v2" skopeo_copy "$IMG" "docker://$H/app/web:v2"
# what was pushed, from the OCI layout (not from the registry)
MDESC=$(jq -c '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v1")' "$WORK/oci/index.json")
MD=$(jq -r .digest <<<"$MDESC"); MT=$(jq -r .mediaType <<<"$MDESC")
MFILE=$WORK/oci/blobs/sha256/${MD#sha256:}
MSIZE=$(stat -c %s "$MFILE")
check_eq "the layout's manifest hashes to its digest" "$MD" "sha256:$(sha256sum "$MFILE" | cut -d' ' -f1)"
mapfile -t BLOBS < <(jq -r '.config.digest, .layers[].digest' "$MFILE")
L0=$(jq -r '.layers[0].digest' "$MFILE"); L0SIZE=$(stat -c %s "$WORK/oci/blobs/sha256/${L0#sha256:}")

check_eq "GET manifest by tag" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $MT" "http://$H/v2/app/web/manifests/v1")"
check_eq "HEAD manifest (sends no event)" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I -H "Accept: $MT" "http://$H/v2/app/web/manifests/v1")"
check_eq "GET layer blob" "$L0" "sha256:$(curl -s "http://$H/v2/app/web/blobs/$L0" | sha256sum | cut -d' ' -f1)"
check_eq "mount the layer blob into other/app" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$H/v2/other/app/blobs/uploads/?mount=$L0&from=app/web")"
check_eq "DELETE tag v2" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$H/v2/app/web/manifests/v2")"
check_eq "DELETE manifest by digest" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$H/v2/app/web/manifests/$MD")"

# every event of endpoint "all", one per line
all_events() { jq -c 'select(.path == "/all") | .body.events[]' "$EV"; }
# has_event ACTION JQ_CONDITION — some event of "all" has ACTION and meets the condition
# (jq -s: `jq -e` alone succeeds on empty input)
has_event() { all_events | jq -e -s --arg a "$1" "any(.[]; .action == \$a and $2)" >/dev/null; }
check "the manifest delete event arrives (bounded wait)" wait_for 20 has_event delete ".target.digest == \"$MD\""

Q=".target.repository == \"app/web\""
check "push of the manifest: tag v1, digest, media type, size, url" has_event push \
  "$Q and .target.tag == \"v1\" and .target.digest == \"$MD\" and .target.mediaType == \"$MT\"
   and .target.size == $MSIZE and .target.length == $MSIZE
   and .target.url == \"http://$H/v2/app/web/manifests/$MD\" and .request.method == \"PUT\""
check "push of the manifest as tag v2" has_event push "$Q and .target.tag == \"v2\" and .target.digest == \"$MD\""
for b in "${BLOBS[@]}"; do
  check "push of blob $b" has_event push "$Q and .target.digest == \"$b\" and .target.mediaType == \"$OCT\""
done
check "pull of the manifest by tag v1" has_event pull \
  "$Q and .target.tag == \"v1\" and .target.digest == \"$MD\" and .target.mediaType == \"$MT\" and .request.method == \"GET\""
check_eq "one manifest pull (HEAD sends none)" 1 "$(all_events | jq -s "[.[] | select(.action == \"pull\" and .target.mediaType == \"$MT\")] | length")"
check "pull of the layer blob with its size" has_event pull \
  "$Q and .target.digest == \"$L0\" and .target.size == $L0SIZE and .target.mediaType == \"$OCT\""
check "mount of the layer blob into other/app with its size" has_event mount \
  ".target.repository == \"other/app\" and .target.digest == \"$L0\" and .target.size == $L0SIZE"
check "delete of tag v2" has_event delete "$Q and .target.tag == \"v2\" and .request.method == \"DELETE\""
check "delete of the manifest" has_event delete "$Q and .target.digest == \"$MD\""
fields_ok() {
  all_events | jq -e -s --arg h "$H" --arg p ":$REGISTRY_PORT" 'length > 0 and all(.[];
    .id != "" and (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) and
    .request.id != "" and (.request.addr | startswith("127.0.0.1:")) and .request.host == $h and
    (.request.useragent | length > 0) and .source.instanceID != "" and
    (.source.addr | endswith($p)) and .actor == {})'
}
check "every event has the reference's fields" fields_ok
check_eq "every POST is valid JSON" 0 "$(jq -s '[.[] | select(.body.invalid_json)] | length' "$EV")"
check_eq "every POST has the envelope's content type" \
  "application/vnd.docker.distribution.events.v2+json" "$(jq -r .ctype "$EV" | sort -u)"
check_eq "endpoint all gets its configured header" "hello" "$(jq -r 'select(.path == "/all") | .xtest' "$EV" | sort -u)"
# the filtered endpoint: only the manifest events (no pulls, no blob media type)
check_eq "filtered endpoint: no pull, no blob events; 2 pushes and 2 deletes" "delete delete push push" \
  "$(jq -r 'select(.path == "/filtered") | .body.events[] | .action' "$EV" | sort | xargs)"
check_eq "disabled endpoint gets nothing" 0 "$(jq -s '[.[] | select(.path == "/off")] | length' "$EV")"

# --- an endpoint that never answers does not slow pushes --------------------------------
stop_pid "$REGISTRY_PID"
for i in 1 2 3 4 5; do make_image "$WORK/oci5" "p$i" 2 256K 64K >/dev/null || bail "make_image p$i"; done
# push_five HOST — push the five images; prints the milliseconds taken
push_five() {
  local t0 t1 i
  t0=$(date +%s%N)
  for i in 1 2 3 4 5; do skopeo_copy "oci:$WORK/oci5:p$i" "docker://$1/r/p$i:t" || return 1; done
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
start_regfs_registry "$WORK/plain" || bail "regfs-registry without notifications starts"
PLAIN_HOST=$REGISTRY_HOST PLAIN_PID=$REGISTRY_PID PLAIN_CFG=$REGISTRY_CONFIG PLAIN_LOG=$REGISTRY_LOG
MPORT=$(free_port)
start_regfs_registry "$WORK/deaf" "  debug:
    addr: 127.0.0.1:$MPORT
    prometheus:
      enabled: true
notifications:
  endpoints:
    - name: deaf
      url: http://127.0.0.1:$DPORT/events
      timeout: 1s
      threshold: 2
      backoff: 200ms" || bail "regfs-registry with a dead endpoint starts"
DEAF_HOST=$REGISTRY_HOST; DEAF_LOG=$REGISTRY_LOG
T_PLAIN=$(push_five "$PLAIN_HOST") && ok "5 pushes without notifications" || fail "5 pushes without notifications"
T_DEAF=$(push_five "$DEAF_HOST") && ok "5 pushes with an endpoint that never answers" || fail "5 pushes with an endpoint that never answers"
if [ -n "$T_PLAIN" ] && [ -n "$T_DEAF" ] && [ "$T_PLAIN" -gt 0 ]; then
  log "5 pushes: ${T_PLAIN} ms without notifications, ${T_DEAF} ms with a dead endpoint," \
    "ratio $(awk -v a="$T_DEAF" -v b="$T_PLAIN" 'BEGIN { printf "%.2f", a / b }')"
fi
# SIGHUP: an endpoint added to the file of a registry that had none is used at once
cat >>"$PLAIN_CFG" <<EOF2
notifications:
  endpoints:
    - name: added
      url: http://127.0.0.1:$LPORT/reloaded
EOF2
kill -HUP "$PLAIN_PID"
check "SIGHUP names the notification endpoints it took over" \
  wait_for 10 grep -q "SIGHUP: reloaded .*notifications.endpoints (1)" "$PLAIN_LOG"
curl -s -o /dev/null -H "Accept: $MT" "http://$PLAIN_HOST/v2/r/p1/manifests/t"
reloaded_pull() { jq -s -e 'any(.[]; .path == "/reloaded" and any(.body.events[]; .action == "pull" and .target.repository == "r/p1"))' "$EV" >/dev/null; }
check "after SIGHUP a pull is sent to the added endpoint" wait_for 20 reloaded_pull
check "the dead endpoint's failures are logged" wait_for 20 grep -q "notifications: endpoint deaf .*failed" "$DEAF_LOG"
check "the dead endpoint is logged as down after threshold failures" wait_for 20 grep -q "notifications: endpoint deaf .* is down" "$DEAF_LOG"
# 1100 manifest GETs (one curl, keep-alive) overflow its 1024-event queue
URLS=(); for ((i = 0; i < 1100; i++)); do URLS+=("http://$DEAF_HOST/v2/r/p1/manifests/t"); done
curl -s -H "Accept: $MT" "${URLS[@]}" >/dev/null
check "a full queue drops events and says so once" wait_for 10 grep -q "notifications: endpoint deaf: queue full" "$DEAF_LOG"
check_eq "  … once per burst" 1 "$(grep -c "endpoint deaf: queue full" "$DEAF_LOG")"
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
check "/metrics counts the dropped events" test "$(metric regfs_notifications_dropped_total)" -gt 0
check "/metrics counts the failed POSTs" test "$(metric regfs_notifications_failed_posts_total)" -gt 0
check_eq "/metrics: nothing was delivered to the dead endpoint" 0 "$(metric regfs_notifications_sent_total)"
check_eq "the registry still serves while its endpoint is dead" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $MT" "http://$DEAF_HOST/v2/r/p1/manifests/t")"
stop_pid "$REGISTRY_PID"
check "the registry with a dead endpoint stops cleanly" grep -q "stopped" "$DEAF_LOG"
check "undelivered events are counted at stop" grep -q "queued events not delivered" "$DEAF_LOG"
done_testing
