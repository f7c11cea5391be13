#!/bin/bash
# mount_edges.sh — what a user runs into around the regfs mount, through the
# commands they use (regfs, stat, ls, df, cat):
#   - a regular file as mountpoint is refused before daemonizing (non-zero exit,
#     nothing mounted);
#   - a mountpoint left stale by `kill -9` of regfs is named as such, with the
#     fusermount3 -u command; --force-remount clears it and mounts;
#   - an unsupported URL scheme says so; http:// to a TLS port says "use https://"
#     (a local openssl s_server with a certificate made here);
#   - with the registry hanging (SIGSTOP) past the ttl: stat of the mount root and
#     ls of its parent answer, df returns (the last total), listing fails with EIO;
#     all of it bounded by with_timeout, not timed;
#   - ls -a shows . and ..;
#   - .regfs/status names every extension the registry advertises (X-Regfs-Extensions);
#   - .regfs/errors holds the last 100 failures with time, operation, path and the
#     registry's own message (a small fake registry that answers 403 DENIED).
# The registry-dependent checks run against regfs-registry and docker-registry.
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin skopeo umoci jq python3 openssl curl

TTL=1
TIMEOUT=3
make_image "$WORK/oci" one 1 64K >/dev/null || bail "make_image"

# regfs_daemon ARGS… — regfs as users start it (daemonizing); output in $WORK/daemon.out.
regfs_daemon() { with_timeout 30 "$REGFS_MOUNT" --log-file "$WORK/daemon.log" "$@" >"$WORK/daemon.out" 2>&1; }

mount_side_checks() {   # URL — checks that do not depend on the registry's kind
  local url=$1 out rc f=$WORK/afile mnt=$WORK/mnt-stale
  # --- a regular file as mountpoint -----------------------------------------------------
  : >"$f"; add_mount "$f"   # (unmounted by stop_all if regfs wrongly mounts on it)
  regfs_daemon "$url" "$f"; rc=$?
  check_eq "mountpoint is a regular file: regfs exits non-zero" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
  check "... and says it is not a directory" grep -q "is not a directory" "$WORK/daemon.out"
  check_fails "... and nothing is mounted on the file" mountpoint -q "$f"
  check "... and the file still stats" stat "$f"

  # --- a stale mount (kill -9) -------------------------------------------------------------
  start_regfs_mount "$url" "$mnt" --ttl $TTL --timeout $TIMEOUT || { fail "regfs mounts"; return; }
  stop_pid "$MOUNT_PID" KILL
  out=$(stat "$mnt" 2>&1)
  check "kill -9 leaves a stale mount (stat: not connected)" grep -q "not connected" <<<"$out"
  regfs_daemon "$url" "$mnt"; rc=$?
  check_eq "a new regfs on the stale mount exits non-zero" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
  check "... names the stale mount" grep -q "stale FUSE mount" "$WORK/daemon.out"
  check "... and says to run fusermount3 -u MOUNTPOINT" grep -qF "fusermount3 -u $mnt" "$WORK/daemon.out"
  # (mountpoint -q holds for the stale mount already: wait for the new one to answer)
  start_regfs_mount "$url" "$mnt" --force-remount --ttl $TTL --timeout $TIMEOUT ||
    fail "--force-remount mounts over the stale mount"
  check "... and the new mount answers" wait_for 20 test -r "$mnt/.regfs/status"
  check "... and said it unmounted the stale one" wait_for 5 grep -q "unmounted the stale mount" "$MOUNT_LOG"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  # --- URLs --------------------------------------------------------------------------------
  mkdir -p "$WORK/mnt-url"
  regfs_daemon "ftp://${url#http://}" "$WORK/mnt-url"; rc=$?
  check_eq "ftp:// URL: non-zero exit" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
  check "... says the scheme is unsupported" grep -q "unsupported URL scheme ftp://" "$WORK/daemon.out"
  check_fails "... not a host lookup of https://ftp://" grep -q "resolve host" "$WORK/daemon.out"
  local tport; tport=$(free_port)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/tls.key" -out "$WORK/tls.crt" \
    -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1 || { fail "openssl makes a certificate"; return; }
  start_bg tls-server openssl s_server -quiet -accept "127.0.0.1:$tport" -cert "$WORK/tls.crt" \
    -key "$WORK/tls.key" -www
  wait_for 10 bash -c "ss -Htln '( sport = :$tport )' | grep -q ." || { fail "openssl s_server listens"; return; }
  regfs_daemon "http://127.0.0.1:$tport" "$WORK/mnt-url" --timeout $TIMEOUT; rc=$?
  check_eq "http:// to a TLS port: non-zero exit" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
  check "... says the server speaks TLS: use https://" \
    grep -qF "the server speaks TLS: use https://127.0.0.1:$tport" "$WORK/daemon.out"
  check_fails "... nothing is mounted" mountpoint -q "$WORK/mnt-url"
}

run_kind() {
  local kind=$1 mnt=$WORK/mnt-$1 out rc total rpid exts e
  log "=== $kind ==="
  start_registry "$kind" "$WORK/data-$kind" || { fail "$kind: registry starts"; return; }
  rpid=$REGISTRY_PID
  check "$kind: skopeo pushes an image" skopeo_copy "oci:$WORK/oci:one" "docker://$REGISTRY_HOST/team/app:v1" || return
  [ "$kind" = regfs ] && mount_side_checks "$REGISTRY_URL"
  start_regfs_mount "$REGISTRY_URL" "$mnt" --ttl $TTL --timeout $TIMEOUT \
    --cache-dir "$WORK/cache-$kind" || { fail "$kind: regfs mounts"; return; }

  # --- ls -a ----------------------------------------------------------------------------------
  check_eq "$kind: ls -a of the root shows . and .." ". .. .regfs team" "$(ls -a "$mnt" | tr '\n' ' ' | sed 's/ $//')"
  check_eq "$kind: ls -a of a repository" ". .. _manifests _tags" "$(ls -a "$mnt/team/app" | tr '\n' ' ' | sed 's/ $//')"
  check_eq "$kind: ls -a of _tags" ". .. v1" "$(ls -a "$mnt/team/app/_tags" | tr '\n' ' ' | sed 's/ $//')"

  # --- .regfs/status: every advertised extension ---------------------------------------
  exts=$(curl -sSI "$REGISTRY_URL/v2/" | tr -d '\r' | sed -n 's/^[Xx]-[Rr]egfs-[Ee]xtensions: *//p' | tr ',' ' ')
  local missing=""
  for e in $exts; do grep -qw -- "$e" "$mnt/.regfs/status" || missing+=" $e"; done
  check_eq "$kind: .regfs/status names every extension of X-Regfs-Extensions (${exts:-none})" "" "$missing"
  if [ -z "$exts" ]; then
    check_fails "$kind: ... and none when the registry advertises none" grep -q "extensions:" "$mnt/.regfs/status"
  fi
  check "$kind: .regfs lists errors" grep -qx errors <(ls "$mnt/.regfs")

  # --- the registry hangs past the ttl ------------------------------------------------------
  total=$(df -B1 --output=used "$mnt" | tail -n1 | tr -d ' ')
  check "$kind: df reports a total before the outage" test "${total:-0}" -gt 0
  kill -STOP "$rpid"
  add_cleanup "kill -CONT $rpid"
  sleep $((TTL + 1))
  out=$(with_timeout $((TIMEOUT + 10)) stat -c %F "$mnt" 2>&1); rc=$?
  check_eq "$kind: registry hanging: stat of the mount root answers" "0 directory" "$rc $out"
  out=$(with_timeout $((TIMEOUT + 10)) ls -l "$WORK" 2>&1); rc=$?
  check_eq "$kind: ... ls -l of the mount's parent works" "0 1" "$rc $(grep -c " mnt-$kind\$" <<<"$out")"
  out=$(with_timeout $((TIMEOUT + 10)) stat -c %F "$mnt" 2>&1); rc=$?
  check_eq "$kind: ... stat of the root again" "0 directory" "$rc $out"
  out=$(with_timeout $((TIMEOUT + 10)) df -B1 --output=used "$mnt" 2>&1); rc=$?
  check_eq "$kind: ... df returns, with the last total known" "0 $total" "$rc $(tail -n1 <<<"$out" | tr -d ' ')"
  out=$(with_timeout $((TIMEOUT + 10)) df -B1 --output=used "$mnt" 2>&1); rc=$?
  check_eq "$kind: ... and a second df too" "0 $total" "$rc $(tail -n1 <<<"$out" | tr -d ' ')"
  out=$(with_timeout $((TIMEOUT * 2 + 10)) ls "$mnt" 2>&1); rc=$?
  check_eq "$kind: ... listing the root fails with EIO (not killed by the timeout)" "2 1" \
    "$rc $(grep -c 'Input/output error' <<<"$out")"
  out=$(with_timeout $((TIMEOUT * 2 + 10)) ls "$mnt/team/app/_tags" 2>&1); rc=$?
  check_eq "$kind: ... listing _tags fails with EIO" "2 1" "$rc $(grep -c 'Input/output error' <<<"$out")"
  check "$kind: .regfs/errors says why, with time, operation and path" \
    grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z (readdir|lookup|stat) /[^ ]*: .*$REGISTRY_URL" "$mnt/.regfs/errors"
  kill -CONT "$rpid"
  if wait_for 20 bash -c "ls '$mnt/team/app/_tags' | grep -qx v1"; then
    ok "$kind: works again once the registry answers"
  else
    fail "$kind: works again once the registry answers" "$(ls "$mnt/team/app/_tags" 2>&1)"
  fi
  out=$(with_timeout $((TIMEOUT + 10)) ls "$mnt" 2>&1)
  check_eq "$kind: ... the root lists again" "team" "$out"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

# A registry whose tag lists answer 403 with the spec's error body: every listing
# of _tags fails at once, with the registry's own message.
cat >"$WORK/fake_registry.py" <<'PY'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def send(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        if self.path == "/v2/":
            self.send(200, {})
        elif self.path.startswith("/v2/_catalog"):
            self.send(200, {"repositories": ["locked"]})
        else:
            self.send(403, {"errors": [{"code": "DENIED", "message": "tag lists are closed today"}]})
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

errors_ring() {
  local port mnt=$WORK/mnt-fake i n
  port=$(free_port)
  start_bg fake-registry python3 "$WORK/fake_registry.py" "$port"
  wait_http "http://127.0.0.1:$port/v2/" 10 || { fail "fake registry starts"; return; }
  start_regfs_mount "http://127.0.0.1:$port" "$mnt" --ttl 0 --timeout $TIMEOUT || { fail "regfs mounts the fake registry"; return; }
  for ((i = 0; i < 110; i++)); do ls "$mnt/locked/_tags" >/dev/null 2>&1; done
  n=$(wc -l <"$mnt/.regfs/errors")
  check_eq ".regfs/errors keeps the last 100 failures" 100 "$n"
  check ".regfs/errors: time, operation, path and the registry's message" \
    grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z [a-z]+ /locked/_tags: .*DENIED: tag lists are closed today" "$mnt/.regfs/errors"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
errors_ring
# Leaks are reported when a daemon exits: every mount above has been stopped.
check_eq "no sanitizer report in any log" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/*.log 2>/dev/null)"
done_testing
