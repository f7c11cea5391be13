#!/bin/bash
# regfs-registry's log lines: log.formatter json gives one JSON object per line with
# log.fields in every line; one access line per request (method, path, status, bytes,
# duration) whose numbers match what curl saw; no credential sent by the client (a Basic
# Authorization header, a query string) appears anywhere in the log;
# log.accesslog.disabled drops the access lines only; log.level warn drops info lines;
# the text formatter carries the same fields as key=value.
. "$(dirname "$0")/lib.sh"
need_regfs_registry

PW=S3cretPassw0rd-$RANDOM; QS=QuerySecret-$RANDOM
B64=$(printf 'alice:%s' "$PW" | base64)
# registry NAME LOG_YAML — starts a registry whose log: section is LOG_YAML
registry() {
  local port; port=$(free_port); mkdir -p "$WORK/$1"
  cat >"$WORK/$1.yml" <<EOF
version: 0.1
log:
$2
storage:
  filesystem:
    rootdirectory: $WORK/$1
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  start_regfs_registry "$WORK/$1.yml"
}
# traffic — the same requests every time: a Basic header, a query with a secret, a 404,
# a path with a control character (400, and a warning line).
# Then stops the registry; $AFTER holds the log lines written from the first of them on
# (the start-up probe of /v2/ has its own access line before).
traffic() {
  local before; before=$(wc -l <"$REGISTRY_LOG")
  curl -s -o /dev/null -u "alice:$PW" "$REGISTRY_URL/v2/"
  curl -s -o "$WORK/cat.json" "$REGISTRY_URL/v2/_catalog?n=5&access_token=$QS"
  curl -s -o /dev/null "$REGISTRY_URL/v2/no/such/manifests/latest"
  curl -s -o /dev/null "$REGISTRY_URL/v2/a%00b/tags/list"   # refused with a warning
  stop_pid "$REGISTRY_PID"
  AFTER=$WORK/after.log; tail -n +$((before + 1)) "$REGISTRY_LOG" >"$AFTER"
}
no_secret() {
  if grep -q -e "$PW" -e "$B64" -e "$QS" "$REGISTRY_LOG"; then
    fail "$1: no credential in the log" "$(grep -e "$PW" -e "$B64" -e "$QS" "$REGISTRY_LOG" | head -3)"
  else ok "$1: no credential in the log"; fi
}

# --- json with fields ------------------------------------------------------------------
registry json "$(printf '  formatter: json\n  fields:\n    service: regfs-test\n    zone: "eu west"\n')" || bail "registry (json) starts"
traffic
python3 - "$REGISTRY_LOG" <<'PY' && ok "json: every line is one JSON object with time, level, msg and the fields" || fail "json: every line is one JSON object with time, level, msg and the fields"
import json, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert isinstance(o, dict), line
    for k in ('time', 'level', 'msg'):
        assert k in o, line
    assert o['service'] == 'regfs-test' and o['zone'] == 'eu west', line
    n += 1
assert n >= 3
PY
acc() { jq -c --arg p "$1" 'select(.path == $p) | [.method, .status, .bytes, (.duration_us | type)]' "$AFTER"; }
check_eq "json: the access line of GET /v2/" '["GET",200,2,"number"]' "$(acc /v2/)"
check_eq "json: the access line of the catalog (bytes as curl got them)" \
  "[\"GET\",200,$(stat -c %s "$WORK/cat.json"),\"number\"]" "$(acc /v2/_catalog)"
check_eq "json: the access line of a 404" "GET 404" "$(jq -r 'select(.path == "/v2/no/such/manifests/latest") | "\(.method) \(.status)"' "$AFTER")"
check_eq "json: the access line of the refused path" "GET 400" "$(jq -r 'select(.status == 400) | "\(.method) \(.status)"' "$AFTER")"
check_eq "json: one access line per request" 4 "$(jq -r 'select(.path) | .path' "$AFTER" | wc -l)"
no_secret json

# --- access log disabled -----------------------------------------------------------------
registry noaccess "$(printf '  formatter: json\n  accesslog:\n    disabled: true\n')" || bail "registry (no access log) starts"
traffic
check_eq "accesslog.disabled: no access line" 0 "$(jq -r 'select(.path) | .path' "$REGISTRY_LOG" | wc -l)"
grep -q 'listening on' "$REGISTRY_LOG" && ok "accesslog.disabled: other info lines remain" || fail "accesslog.disabled: other info lines remain"
no_secret noaccess

# --- level warn --------------------------------------------------------------------------
registry warn "$(printf '  level: warn\n  formatter: json\n')" || bail "registry (warn) starts"
traffic
check_eq "level warn: no info or debug line" 0 "$(jq -r 'select(.level == "info" or .level == "debug") | .msg' "$REGISTRY_LOG" | wc -l)"
jq -e 'select(.level == "warn" and (.msg | test("control character")))' "$REGISTRY_LOG" >/dev/null && ok "level warn: warnings remain (the refused path)" || fail "level warn: warnings remain (the refused path)" "$(cat "$REGISTRY_LOG")"

# --- text with fields ----------------------------------------------------------------------
registry text "$(printf '  formatter: text\n  fields:\n    service: regfs-test\n')" || bail "registry (text) starts"
traffic
line=$(grep ' GET /v2/ 200 ' "$AFTER" | head -n 1)
case $line in *" info  GET /v2/ 200 2 "*"ms service=regfs-test") ok "text: the access line says method, path, status, bytes, time, then log.fields" ;;
  *) fail "text: the access line says method, path, status, bytes, time, then log.fields" "$line" ;; esac
check_eq "text: every line carries log.fields" 0 "$(grep -vc 'service=regfs-test' "$REGISTRY_LOG")"
no_secret text
done_testing
