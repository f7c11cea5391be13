#!/bin/bash
# regfs-registry's health checks, as registry:2 configures them: health.file (the file
# existing means unhealthy), health.tcp and health.http (a local HTTP server that goes
# away and comes back, failing only after `threshold` checks), health.storagedriver (the
# storage root replaced by a file). GET /debug/health on http.debug.addr names every
# check with its state (503 while one fails) and GET /v2/ answers 503 while one fails.
. "$(dirname "$0")/lib.sh"
need_regfs_registry

DPORT=$(free_port); HPORT=$(free_port)
DOWN=$WORK/down
mkdir -p "$WORK/www"; echo ok >"$WORK/www/index.html"
start_web() { start_bg "web-$HPORT" python3 -m http.server "$HPORT" --bind 127.0.0.1 -d "$WORK/www"; WEB_PID=$BG_PID
  wait_http "http://127.0.0.1:$HPORT/" || bail "the test's web server starts"; }
start_web

cat >"$WORK/extra.yml" <<EOF
  debug:
    addr: 127.0.0.1:$DPORT
health:
  storagedriver:
    enabled: true
    interval: 1s
    threshold: 2
  file:
    - file: $DOWN
      interval: 1s
  http:
    - uri: http://127.0.0.1:$HPORT/
      statuscode: 200
      timeout: 1s
      interval: 1s
      threshold: 2
  tcp:
    - addr: 127.0.0.1:$HPORT
      timeout: 1s
      interval: 1s
      threshold: 2
EOF
start_regfs_registry "$WORK/data" "$(cat "$WORK/extra.yml")" || bail "registry starts"
grep -q 'health.*ignored' "$REGISTRY_LOG" && fail "no health key is ignored" "$(grep ignored "$REGISTRY_LOG")" || ok "no health key is ignored"

H=http://127.0.0.1:$DPORT/debug/health
status_of() { curl -s -o "$WORK/h.json" -w '%{http_code}' -m 10 "$1"; }
state() { jq -r --arg k "$1" '.[$k].status // "absent"' "$WORK/h.json"; }
# until_failing CHECK — until /debug/health lists CHECK as failing (20 s at most)
until_failing() { local i; for ((i = 0; i < 200; i++)); do status_of "$H" >/dev/null; [ "$(state "$1")" = failing ] && return 0; sleep 0.1; done; return 1; }
until_ok() { local i; for ((i = 0; i < 200; i++)); do [ "$(status_of "$H")" = 200 ] && return 0; sleep 0.1; done; return 1; }

until_ok; check_eq "all checks pass: /debug/health 200" 200 "$(status_of "$H")"
for c in storagedriver_filesystem "file:$DOWN" "http:http://127.0.0.1:$HPORT/" "tcp:127.0.0.1:$HPORT"; do
  check_eq "$c is listed ok" ok "$(state "$c")"
done
check_eq "/v2/ answers 200 while healthy" 200 "$(status_of "$REGISTRY_URL/v2/")"

# --- health.file ---------------------------------------------------------------------
touch "$DOWN"
until_failing "file:$DOWN"; check_eq "the file exists: /debug/health 503" 503 "$(status_of "$H")"
check_eq "the file check is failing" failing "$(state "file:$DOWN")"
jq -r --arg k "file:$DOWN" '.[$k].error' "$WORK/h.json" | grep -q "exists" && ok "its error says the file exists" || fail "its error says the file exists" "$(cat "$WORK/h.json")"
check_eq "the other checks still pass" ok "$(state "tcp:127.0.0.1:$HPORT")"
check_eq "/v2/ answers 503 while the file exists" 503 "$(status_of "$REGISTRY_URL/v2/")"
jq -e '.errors[0].code == "UNAVAILABLE"' "$WORK/h.json" >/dev/null && ok "/v2/ says UNAVAILABLE" || fail "/v2/ says UNAVAILABLE" "$(cat "$WORK/h.json")"
rm -f "$DOWN"
until_ok; check_eq "the file removed: healthy again" 200 "$(status_of "$H")"

# --- health.tcp and health.http: the server goes away ---------------------------------
stop_pid "$WEB_PID"
until_failing "tcp:127.0.0.1:$HPORT"; check_eq "the server gone: /debug/health 503" 503 "$(status_of "$H")"
check_eq "the tcp check is failing" failing "$(state "tcp:127.0.0.1:$HPORT")"
until_failing "http:http://127.0.0.1:$HPORT/"
check_eq "the http check is failing" failing "$(state "http:http://127.0.0.1:$HPORT/")"
grep -q "health check failed (1/2)" "$REGISTRY_LOG" && ok "a first failure is logged below the threshold" || fail "a first failure is logged below the threshold"
check_eq "/v2/ answers 503 while the server is gone" 503 "$(status_of "$REGISTRY_URL/v2/")"
start_web
until_ok; check_eq "the server back: healthy again" 200 "$(status_of "$H")"

# --- health.storagedriver: the storage root becomes a file -----------------------------
mv "$WORK/data" "$WORK/data.away"; touch "$WORK/data"
add_cleanup "rm -f '$WORK/data'; [ -d '$WORK/data.away' ] && mv '$WORK/data.away' '$WORK/data'"
until_failing storagedriver_filesystem; check_eq "storage unreachable: /debug/health 503" 503 "$(status_of "$H")"
check_eq "the storagedriver check is failing" failing "$(state storagedriver_filesystem)"
check_eq "/v2/ answers 503 while storage is unreachable" 503 "$(status_of "$REGISTRY_URL/v2/")"
rm -f "$WORK/data"; mv "$WORK/data.away" "$WORK/data"
until_ok; check_eq "storage back: healthy again" 200 "$(status_of "$H")"
check_eq "/v2/ answers 200 again" 200 "$(status_of "$REGISTRY_URL/v2/")"
check_eq "no metrics without http.debug.prometheus.enabled" 404 "$(status_of "http://127.0.0.1:$DPORT/metrics")"
done_testing
