#!/bin/bash
# mount_creds.sh — where the mount's credentials come from, against docker-registry with
# htpasswd (a bcrypt file made here with htpasswd -nbB): --user USER:PASS, --password-file
# (a file and stdin), the terminal prompt (a pty), REGFS_USERNAME/REGFS_PASSWORD, docker
# config auths, credHelpers and credsStore (a fake docker-credential-regfstest on PATH
# that logs its calls). Each time `ls _tags` is compared with the registry's API (curl
# -u). A helper that fails, is missing or hangs: one line naming it, exit 1, nothing
# mounted. The password appears nowhere: ps / /proc/PID/cmdline (--user is rewritten to
# USER:***), the debug log and --log-file, .regfs/stats.
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin htpasswd skopeo umoci jq base64 "$DOCKER_REGISTRY"

U=alice
PW="Pw-$RANDOM-x7Kq$RANDOM"   # distinctive: grepped for everywhere below
htpasswd -nbB "$U" "$PW" >"$WORK/htpasswd" || bail "htpasswd -nbB failed"
start_docker_registry "$WORK/data" "auth:
  htpasswd:
    realm: regfs-test
    path: $WORK/htpasswd" || bail "docker-registry with htpasswd did not start"

make_image "$WORK/oci" v1 1 20K >/dev/null || bail make_image
check "skopeo pushes with the htpasswd user" skopeo_copy --dest-creds "$U:$PW" \
  oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:v1"
check "skopeo pushes a second tag" skopeo_copy --dest-creds "$U:$PW" \
  oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:prod"
API_TAGS=$(curl -s -u "$U:$PW" "$REGISTRY_URL/v2/team/app/tags/list" | jq -r '.tags[]' | sort | paste -sd' ')
[ -n "$API_TAGS" ] || bail "the registry's API lists no tags"
check_eq "the registry refuses anonymous access" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/team/app/tags/list")"

# No credentials from this machine's own files: an empty HOME and DOCKER_CONFIG.
export HOME=$WORK/home DOCKER_CONFIG=$WORK/dc-none
mkdir -p "$HOME" "$DOCKER_CONFIG" "$WORK/m0"
unset REGFS_USERNAME REGFS_PASSWORD

one_line_exit1() {  # one_line_exit1 NAME PATTERN CMD… — exit 1, one line matching PATTERN
  local name=$1 pat=$2 out rc; shift 2
  out=$(with_timeout 60 "$@" 2>&1 </dev/null); rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qE -e "$pat" <<<"$out"; then
    ok "$name"; log "$out"
  else fail "$name" "exit $rc, output:"; diag "$out"; fi
  if grep -qF -e "$PW" <<<"$out"; then fail "$name: the password is in the message"; fi
}
# mount_ls NAME OPTIONS… — mount with OPTIONS, check ls _tags = the API's tags, the
# password in neither the log nor .regfs/stats; leaves it mounted at $MNT ($MOUNT_PID)
N=0
mount_ls() {
  local name=$1; shift
  N=$((N + 1)); MNT=$WORK/m$N
  if ! start_regfs_mount "$REGISTRY_URL" "$MNT" -d --cache-dir "$WORK/cache$N" \
      --log-file "$WORK/file$N.log" "$@" </dev/null; then
    fail "$name: mounts"; return 1
  fi
  check_eq "$name: ls _tags = the registry's tags/list" "$API_TAGS" "$(ls "$MNT/team/app/_tags" | paste -sd' ')"
  check "$name: the debug log has requests" grep -q "client: GET" "$WORK/file$N.log"
  check_eq "$name: the password is not in the log nor in --log-file" 0 \
    "$(cat "$MOUNT_LOG" "$WORK/file$N.log" | grep -cF -e "$PW")"
  check_eq "$name: nor in .regfs/stats" 0 "$(grep -cF -e "$PW" "$MNT/.regfs/stats")"
}
umount_it() { unmount "$MNT"; stop_pid "$MOUNT_PID"; }

one_line_exit1 "no credentials: one line that says --user, exit 1" "--user" \
  "$REGFS_MOUNT" -f "$REGISTRY_URL" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"

# --- --user USER:PASS, hidden from ps ------------------------------------------------
mount_ls "--user" --user "$U:$PW"
CMDLINE=$(tr '\0' ' ' <"/proc/$MOUNT_PID/cmdline")
check_eq "--user: /proc/PID/cmdline does not hold the password" 0 "$(grep -cF -e "$PW" <<<"$CMDLINE")"
check "--user: /proc/PID/cmdline shows $U:***" grep -qF -e "--user $U:*** " <<<"$CMDLINE"
check_eq "--user: ps -o args does not show the password" 0 \
  "$(ps -o args= -p "$MOUNT_PID" | grep -cF -e "$PW")"
umount_it
mount_ls "-o user=USER:PASS" -o "ro,user=$U:$PW,ttl=5"
check_eq "-o user=: /proc/PID/cmdline does not hold the password" 0 \
  "$(tr '\0' ' ' <"/proc/$MOUNT_PID/cmdline" | grep -cF -e "$PW")"
check "-o user=: /proc/PID/cmdline shows user=$U:***," grep -qF -e "user=$U:***,ttl=5" \
  <<<"$(tr '\0' ' ' <"/proc/$MOUNT_PID/cmdline")"
umount_it
one_line_exit1 "-o password= is refused, pointing to password_file" "password_file=FILE" \
  "$REGFS_MOUNT" -f -o "user=$U,password=$PW" "$REGISTRY_URL" "$WORK/m0"

one_line_exit1 "credentials in the URL are refused, without echoing the password" \
  "credentials in it \($U@…\).*--user USER and --password-file" \
  "$REGFS_MOUNT" -f "http://$U:$PW@$REGISTRY_HOST" "$WORK/m0"

# --- --password-file ---------------------------------------------------------------------
printf '%s\n' "$PW" >"$WORK/pw"; chmod 600 "$WORK/pw"
mount_ls "--password-file FILE" --user "$U" --password-file "$WORK/pw"
umount_it
mount_ls "-o user=USER,password_file=FILE (the fstab form)" -o "user=$U,password_file=$WORK/pw"
umount_it
N=$((N + 1)); MNT=$WORK/m$N; mkdir -p "$MNT"; add_mount "$MNT"
printf '%s\n' "$PW" | start_bg "regfs-stdin" "$REGFS_MOUNT" -f --user "$U" --password-file - \
  --cache-dir "$WORK/cache$N" "$REGISTRY_URL" "$MNT"
MOUNT_PID=$BG_PID
if wait_for 15 mountpoint -q "$MNT"; then
  check_eq "--password-file - (stdin): ls _tags" "$API_TAGS" "$(ls "$MNT/team/app/_tags" | paste -sd' ')"
else fail "--password-file - (stdin): mounts"; diag "$(tail -5 "$WORK/regfs-stdin.log")"; fi
umount_it

# --- --user USER on a terminal: asked for, echo off (a pty; regfs daemonizes after) ----------
N=$((N + 1)); MNT=$WORK/m$N; mkdir -p "$MNT"; add_mount "$MNT"
PTYOUT=$(PW="$PW" with_timeout 30 python3 - "$REGFS_MOUNT" --user "$U" --cache-dir "$WORK/cache$N" \
  --log-file "$WORK/file$N.log" "$REGISTRY_URL" "$MNT" <<'PYEOF'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
while b"Password for" not in out:
    out += os.read(fd, 1024)
os.write(fd, os.environ["PW"].encode() + b"\n")
while True:
    try:
        b = os.read(fd, 1024)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace") + f"\nexit={os.waitstatus_to_exitcode(st)}\n")
PYEOF
)
check "terminal: regfs asked 'Password for $U at …' and exited 0 after mounting" \
  grep -qz "Password for $U at $REGISTRY_URL: .*exit=0" <<<"$PTYOUT"
check_eq "terminal: the password was not echoed" 0 "$(grep -cF -e "$PW" <<<"$PTYOUT")"
check_eq "terminal: ls _tags" "$API_TAGS" "$(ls "$MNT/team/app/_tags" 2>&1 | paste -sd' ')"
check_eq "terminal: the password is not in --log-file" 0 "$(grep -cF -e "$PW" "$WORK/file$N.log")"
unmount "$MNT"

# --- the environment -------------------------------------------------------------------
export REGFS_USERNAME=$U REGFS_PASSWORD=$PW
mount_ls "REGFS_USERNAME/REGFS_PASSWORD"
umount_it
unset REGFS_USERNAME REGFS_PASSWORD

# --- docker config: auths (a key with scheme and path matches host:port) -----------------
B64=$(printf '%s:%s' "$U" "$PW" | base64 -w0)
export DOCKER_CONFIG=$WORK/dc-auths; mkdir -p "$DOCKER_CONFIG"
printf '{"auths":{"other:5000":{"auth":"%s"},"http://%s/v1/":{"auth":"%s"}}}\n' \
  "$(printf 'x:y' | base64 -w0)" "$REGISTRY_HOST" "$B64" >"$DOCKER_CONFIG/config.json"
mount_ls "docker config auths"
umount_it

# --- credential helpers ----------------------------------------------------------------
BIN=$WORK/bin; mkdir -p "$BIN"; HLOG=$WORK/helper-calls.log
cat >"$BIN/docker-credential-regfstest" <<EOF
#!/bin/sh
# a docker credential helper: "get" reads the server on stdin, answers JSON
[ "\$1" = get ] || exit 2
read -r host || true
echo "get \$host" >>"$HLOG"
if [ "\$host" = "$REGISTRY_HOST" ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "\$host" "$U" "$PW"
else
  echo "credentials not found in native keychain"; exit 1
fi
EOF
printf '#!/bin/sh\ncat >/dev/null\necho "regfsfail: the keychain is locked" >&2\nexit 3\n' \
  >"$BIN/docker-credential-regfsfail"
printf '#!/bin/sh\nexec sleep 60\n' >"$BIN/docker-credential-regfshang"
chmod +x "$BIN"/docker-credential-*
export PATH=$BIN:$PATH

export DOCKER_CONFIG=$WORK/dc-helpers; mkdir -p "$DOCKER_CONFIG"
# credHelpers wins over a wrong auths entry for the same host
printf '{"credHelpers":{"%s":"regfstest"},"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY_HOST" \
  "$REGISTRY_HOST" "$(printf '%s:wrong' "$U" | base64 -w0)" >"$DOCKER_CONFIG/config.json"
: >"$HLOG"
mount_ls "docker config credHelpers"
check_eq "credHelpers: the helper was asked once, for $REGISTRY_HOST" "get $REGISTRY_HOST" "$(cat "$HLOG")"
umount_it

export DOCKER_CONFIG=$WORK/dc-store; mkdir -p "$DOCKER_CONFIG"
printf '{"credsStore":"regfstest","auths":{"%s":{}}}\n' "$REGISTRY_HOST" >"$DOCKER_CONFIG/config.json"
: >"$HLOG"
mount_ls "docker config credsStore"
check_eq "credsStore: the helper was asked once, for $REGISTRY_HOST" "get $REGISTRY_HOST" "$(cat "$HLOG")"
umount_it

# a store that has nothing for this host: the auths entry is used
printf '#!/bin/sh\ncat >/dev/null\necho "credentials not found in native keychain"\nexit 1\n' \
  >"$BIN/docker-credential-regfsnone"
chmod +x "$BIN/docker-credential-regfsnone"
export DOCKER_CONFIG=$WORK/dc-none-store; mkdir -p "$DOCKER_CONFIG"
printf '{"credsStore":"regfsnone","auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY_HOST" "$B64" \
  >"$DOCKER_CONFIG/config.json"
mount_ls "credsStore without credentials for the host, then auths"
umount_it

export DOCKER_CONFIG=$WORK/dc-fail; mkdir -p "$DOCKER_CONFIG"
printf '{"credHelpers":{"%s":"regfsfail"}}\n' "$REGISTRY_HOST" >"$DOCKER_CONFIG/config.json"
one_line_exit1 "a failing helper: one line naming it and its stderr, exit 1" \
  "docker-credential-regfsfail get $REGISTRY_HOST failed \(exit 3\): regfsfail: the keychain is locked" \
  "$REGFS_MOUNT" -f "$REGISTRY_URL" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"
printf '{"credHelpers":{"%s":"regfsmissing"}}\n' "$REGISTRY_HOST" >"$DOCKER_CONFIG/config.json"
one_line_exit1 "a helper that is not installed: one line naming it, exit 1" \
  "docker-credential-regfsmissing .*cannot be run.*in PATH" \
  "$REGFS_MOUNT" -f "$REGISTRY_URL" "$WORK/m0"
printf '{"credHelpers":{"%s":"regfshang"}}\n' "$REGISTRY_HOST" >"$DOCKER_CONFIG/config.json"
one_line_exit1 "a helper that hangs is killed after --timeout: one line, exit 1" \
  "docker-credential-regfshang get .*no answer within 2 s" \
  "$REGFS_MOUNT" -f --timeout 2 "$REGISTRY_URL" "$WORK/m0"
printf '{"credsStore":"../../bin/sh"}\n' >"$DOCKER_CONFIG/config.json"
one_line_exit1 "a helper name that is a path is refused: one line, exit 1" \
  "not a docker-credential-\* name" "$REGFS_MOUNT" -f "$REGISTRY_URL" "$WORK/m0"

stop_pid "$REGISTRY_PID"

# --- identity tokens (docker's OAuth2 refresh token) -------------------------------------
# A token-auth docker-registry whose realm is tools/grantfront.py on tokenserver.py: a
# POST grant_type=refresh_token with the right refresh_token gets the token
# tokenserver.py issues to alice; skopeo's GET with alice's password goes through.
need_bin openssl python3
IDT="idt-$RANDOM-$RANDOM"
start_tokenserver tokenserver
OPORT=$(free_port)
start_bg grantfront python3 "$REGFS_SRC/tests/integration/tools/grantfront.py" --port "$OPORT" \
  --upstream "$TPORT" --as alice:s3cret --identity-token "$IDT"
wait_http "http://127.0.0.1:$OPORT/" || bail "grantfront.py did not start"
start_docker_registry "$WORK/data-tok" "auth:
  token:
    realm: http://127.0.0.1:$OPORT/token
    service: regfs-test
    issuer: regfs-test-issuer
    rootcertbundle: $WORK/tok/cert.pem" || bail "token docker-registry did not start"
check "skopeo pushes to the token registry" skopeo_copy --dest-creds alice:s3cret \
  oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:idt"
API_TAGS=idt
PW=$IDT   # what must appear nowhere now
export DOCKER_CONFIG=$WORK/dc-idt; mkdir -p "$DOCKER_CONFIG"
printf '{"auths":{"%s":{"auth":"","identitytoken":"%s"}}}\n' "$REGISTRY_HOST" "$IDT" \
  >"$DOCKER_CONFIG/config.json"
mount_ls "docker config identitytoken"
umount_it
check "identitytoken: sent as an OAuth2 refresh token" \
  grep -q "^post refresh_token_ok=True scope=repository:team/app:pull" "$WORK/grantfront.log"
printf '#!/bin/sh\ncat >/dev/null\nprintf %s\n' \
  "'{\"ServerURL\":\"x\",\"Username\":\"<token>\",\"Secret\":\"$IDT\"}\\n'" >"$BIN/docker-credential-regfsidt"
chmod +x "$BIN/docker-credential-regfsidt"
printf '{"credHelpers":{"%s":"regfsidt"}}\n' "$REGISTRY_HOST" >"$DOCKER_CONFIG/config.json"
mount_ls "a helper's Username <token>"
umount_it
check_eq "no refresh token was refused" 0 "$(grep -c 'refresh_token_ok=False' "$WORK/grantfront.log")"

done_testing
