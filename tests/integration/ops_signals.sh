#!/bin/bash
# regfs-registry's signals and systemd protocol: READY=1 reaches a NOTIFY_SOCKET the test
# listens on; SIGHUP reloads log.level (a debug line appears afterwards), names what it
# reloaded and what only a restart applies, and keeps serving on a config that no longer
# loads; SIGTERM with an upload in flight refuses a new client, lets the upload finish
# within http.draintimeout (its bytes checked by sha256 through the API after a restart)
# and exits 0; with a short draintimeout a stalled upload is cut and counted in the log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"  # check_daemon_logs
need_regfs_registry
need_bin python3 curl

sha() { sha256sum "$1" | cut -d' ' -f1; }
# exit_code PID SECS — CODE=PID's exit status (a child of this shell: not run in $(…)),
# "killed" when it has not exited after SECS (a watchdog kills it: the wait is bounded)
exit_code() {
  local pid=$1 s=$2 wd rc
  # a separate bash, not a ( ) subshell: that would run lib.sh's EXIT trap when killed
  bash -c 'sleep "$1"; kill -KILL "$2" 2>/dev/null && : >"$3"' _ "$s" "$pid" "$WORK/watchdog.$pid" \
    >/dev/null 2>&1 &
  wd=$!
  wait "$pid"; rc=$?
  kill -KILL "$wd" 2>/dev/null; wait "$wd" 2>/dev/null  # KILL: no trap of a not yet exec'd fork runs
  if [ -e "$WORK/watchdog.$pid" ]; then CODE=killed; else CODE=$rc; fi
}
PORT=$(free_port) || bail "free port"
CFG=$WORK/config.yml
# write_cfg LEVEL PORT [DRAIN] — the registry's config, rewritten between reloads
write_cfg() {
  write_registry_config "$CFG" "$WORK/data" "$2" "${3:+  draintimeout: $3}"
  sed -i "s/^  level: .*/  level: $1/" "$CFG"
}
write_cfg info "$PORT"

# --- a NOTIFY_SOCKET listener: one line per datagram --------------------------------------
cat >"$WORK/notify.py" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(1)
end = time.time() + 80
with open(sys.argv[2], "a") as out:
    while time.time() < end:
        try:
            out.write(s.recv(4096).decode().replace("\n", " ") + "\n"); out.flush()
        except socket.timeout:
            pass
EOF
start_bg notify python3 "$WORK/notify.py" "$WORK/notify.sock" "$WORK/notify.log"
wait_for 10 test -S "$WORK/notify.sock" || bail "notify listener"
: >"$WORK/notify.log"

NOTIFY_SOCKET=$WORK/notify.sock start_regfs_registry "$CFG" || bail "regfs-registry starts"
LOG=$REGISTRY_LOG; PID=$REGISTRY_PID
check "READY=1 arrives on NOTIFY_SOCKET" wait_for 10 grep -qx 'READY=1' "$WORK/notify.log"

# --- SIGHUP -------------------------------------------------------------------------------
curl -s -o /dev/null "$REGISTRY_URL/v2/ops/none/manifests/before-reload"
check_fails "info level: no debug line for a 404" grep -q 'before-reload: 404' "$LOG"
OTHER=$(free_port)
write_cfg debug "$OTHER" 30s
kill -HUP "$PID"
check "SIGHUP logs what it reloaded" wait_for 10 grep -q 'SIGHUP: reloaded .*log.level info -> debug.*http.draintimeout 5s -> 30s' "$LOG"
check "SIGHUP names what needs a restart" grep -q 'applied only by a restart: http.addr' "$LOG"
check "RELOADING=1 (with MONOTONIC_USEC) then READY=1 on reload" wait_for 10 bash -c "grep -E '^RELOADING=1 MONOTONIC_USEC=[0-9]+\$' -A1 '$WORK/notify.log' | grep -qx 'READY=1'"
curl -s -o /dev/null "$REGISTRY_URL/v2/ops/none/manifests/after-reload"
check "debug level after SIGHUP: a debug line for a 404" wait_for 5 grep -q 'after-reload: 404' "$LOG"
check_eq "still serving on the old address" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/")"
cp "$CFG" "$WORK/good.yml"
printf 'log: [unclosed\n' >"$CFG"
kill -HUP "$PID"
check "a config that no longer loads changes nothing" wait_for 10 grep -q "SIGHUP: $CFG does not load, nothing changed" "$LOG"
check_eq "still serving after the bad reload" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/")"
write_cfg debug "$PORT" 30s

# --- SIGTERM with an upload in flight -----------------------------------------------------
# slow.py HOST PORT FILE PID LOG WAIT ROOT — a monolithic blob upload whose body is sent in
# two halves; between them: once its session is in storage ROOT, SIGTERM to PID, wait for the stop line in LOG, then a second client
# must be refused. WAIT=0 sends the rest and prints the status; WAIT=N stalls N s instead.
cat >"$WORK/slow.py" <<'EOF'
import hashlib, os, signal, socket, sys, time
import glob
host, port, path, pid, log, stall, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7]
body = open(path, "rb").read()
dg = "sha256:" + hashlib.sha256(body).hexdigest()
c = socket.create_connection((host, port), timeout=30)
c.sendall(("POST /v2/ops/slow/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s:%d\r\n"
           "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
           % (dg, host, port, len(body))).encode())
half = len(body) // 2
c.sendall(body[:half])
# the registry has taken the request (its upload session exists) before the signal
started = root + "/docker/registry/v2/repositories/ops/slow/_uploads/*/startedat"
for _ in range(100):
    if glob.glob(started):
        break
    time.sleep(0.1)
else:
    print("no upload session in storage"); sys.exit(1)
os.kill(pid, signal.SIGTERM)
for _ in range(100):
    if "stopping; new connections refused" in open(log, errors="replace").read():
        break
    time.sleep(0.1)
else:
    print("no stop line in the log"); sys.exit(1)
try:
    socket.create_connection((host, port), timeout=5).close()
    print("second-client: accepted")
except ConnectionRefusedError:
    print("second-client: refused")
if stall:
    time.sleep(stall); print("stalled"); sys.exit(0)
c.sendall(body[half:])
resp = b""
while b"\r\n" not in resp:
    d = c.recv(4096)
    if not d:
        break
    resp += d
print("status:", resp.split(b"\r\n")[0].decode(errors="replace"))
EOF
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/blob"
D=sha256:$(sha "$WORK/blob")
out=$(with_timeout 60 python3 "$WORK/slow.py" 127.0.0.1 "$PORT" "$WORK/blob" "$PID" "$LOG" 0 "$WORK/data" 2>&1)
diag "$out"
check_eq "a second client is refused after SIGTERM" "second-client: refused" "$(grep second-client <<<"$out")"
check_eq "the upload in flight finishes (201)" "status: HTTP/1.1 201 Created" "$(grep status: <<<"$out")"
exit_code "$PID" 40
check_eq "the registry exits 0 after the drain" 0 "$CODE"
check "the log says no request was cut off" grep -q 'stopped: no request cut off' "$LOG"
check "STOPPING=1 arrives on NOTIFY_SOCKET" wait_for 5 grep -qx 'STOPPING=1' "$WORK/notify.log"

start_regfs_registry "$CFG" || bail "regfs-registry restarts"
curl -sf -o "$WORK/got" "$REGISTRY_URL/v2/ops/slow/blobs/$D"
check_eq "the drained upload is stored whole (sha256 via the API)" "$D" "sha256:$(sha "$WORK/got" 2>/dev/null)"

# --- a stalled upload is cut at the end of a short draintimeout ---------------------------
write_cfg info "$PORT" 1s
kill -HUP "$REGISTRY_PID"
wait_for 10 grep -q 'http.draintimeout 30s -> 1s' "$REGISTRY_LOG" || fail "draintimeout reloaded to 1s"
# clients that leave half way (no request line end; no end of headers) must not count as
# requests in flight: the count below is exactly the stalled upload
python3 - "$PORT" <<'EOF'
import socket, sys
for part in (b"GET /v2/ HT", b"GET /v2/ HTTP/1.1\r\nHost: x\r\n"):
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    c.sendall(part); c.close()
EOF
curl -s -o /dev/null "$REGISTRY_URL/v2/"   # served after those: they were taken and closed
head -c $((1024 * 1024)) /dev/urandom >"$WORK/blob2"
D2=sha256:$(sha "$WORK/blob2")
PID=$REGISTRY_PID; LOG=$REGISTRY_LOG
out=$(with_timeout 60 python3 "$WORK/slow.py" 127.0.0.1 "$PORT" "$WORK/blob2" "$PID" "$LOG" 6 "$WORK/data" 2>&1)
diag "$out"
exit_code "$PID" 20
check_eq "exit 0 after cutting the stalled upload" 0 "$CODE"
check "the log counts the request cut off" grep -q 'stopped: 1 request(s) in flight cut off' "$LOG"
check_fails "the cut upload left no blob" test -e "$(blob_path "$WORK/data" "$D2")"
check_daemon_logs
done_testing
