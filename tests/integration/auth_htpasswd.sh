#!/bin/bash
# auth_htpasswd.sh — auth.htpasswd and the regfs.access rules through the registry API
# (skopeo and curl): logins, the Basic challenge, the three documented rule examples
# (CI pushes to team/*, app servers only pull, one admin cleans up), the longest glob,
# anonymous pull, the catalog rule, cross-repository mounts, a refused non-bcrypt line,
# the file re-read when it changes, the failed-login limit (429 + Retry-After), no
# password in the log; then Debian's docker-registry starts on the SAME config file and
# takes the same credentials.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin skopeo umoci jq curl htpasswd

# Passwords distinctive enough to be searched for in the log afterwards.
PW_ALICE=alice-Pw-7f3e91 PW_CI=ci-Pw-2b8d44 PW_APP=app-Pw-c0ffee PW_BOB=bob-Pw-5a5a5a
PW_OLD=old-Pw-dead01 PW_NEW=new-Pw-beef02 PW_WRONG=wrong-Pw-0badc0
HT=$WORK/htpasswd
htpasswd -cbB "$HT" alice "$PW_ALICE" 2>/dev/null || bail "htpasswd"
for u in ci:$PW_CI app:$PW_APP bob:$PW_BOB; do htpasswd -bB "$HT" "${u%%:*}" "${u#*:}" 2>/dev/null; done
htpasswd -bm "$HT" legacy "$PW_OLD" 2>/dev/null   # an MD5 line: must be refused
OLDLINE=$(grep -n '^legacy:' "$HT" | cut -d: -f1)

DATA=$WORK/data; mkdir -p "$DATA"; PORT=$(free_port)
CFG=$WORK/config.yml
write_registry_config "$CFG" "$DATA" "$PORT" "auth:
  htpasswd:
    realm: regfs-test
    path: $HT
regfs:
  auth:
    maxfailures: 5
  admins: [alice]
  access:
    groups:
      ci: [ci]
      apps: [app]
    catalog: [apps]
    rules:
      - repository: \"team/*\"
        groups: {ci: [pull, push], apps: [pull]}
        users: {bob: [pull]}
      - repository: \"team/secret/*\"
        users: {bob: [pull]}
      - repository: \"public/*\"
        groups: {ci: [pull, push]}
        anonymous: [pull]"
start_regfs_registry "$CFG" || bail "regfs-registry did not start with auth.htpasswd"
R=$REGISTRY_URL H=$REGISTRY_HOST

# code [CURL_ARGS…] URL — the HTTP status only.
code() { curl -s -o /dev/null -m 20 -w '%{http_code}' "$@"; }
# errcode [CURL_ARGS…] URL — the first error code of the JSON body.
errcode() { curl -s -m 20 "$@" | jq -r '.errors[0].code' 2>/dev/null; }
MT='Accept: application/vnd.oci.image.manifest.v1+json'

# --- logging in -------------------------------------------------------------------------
check_eq "no credentials: GET /v2/ is 401" 401 "$(code "$R/v2/")"
check_eq "... with the Basic challenge naming the realm" 'WWW-Authenticate: Basic realm="regfs-test"' \
  "$(curl -s -D - -o /dev/null "$R/v2/" | tr -d '\r' | grep -i '^www-authenticate:')"
check_eq "... and UNAUTHORIZED in the body" UNAUTHORIZED "$(errcode "$R/v2/")"
check_eq "right password: GET /v2/ is 200" 200 "$(code -u "ci:$PW_CI" "$R/v2/")"
check_eq "wrong password: 401" 401 "$(code -u "ci:$PW_WRONG" "$R/v2/")"
check_eq "unknown user: 401" 401 "$(code -u "nobody:$PW_WRONG" "$R/v2/")"

# --- CI pushes to team/*: skopeo with --dest-creds, then pulls back with --src-creds -----
IMG=$(make_image "$WORK/oci" v1 2 40K 8K) || bail make_image
check "CI pushes team/app:v1 (skopeo --dest-creds)" skopeo_copy --dest-creds "ci:$PW_CI" "$IMG" "docker://$H/team/app:v1"
check "CI pulls it back (skopeo --src-creds)" skopeo_copy --src-creds "ci:$PW_CI" "docker://$H/team/app:v1" "oci:$WORK/back:v1"
inspect_raw() { skopeo_x inspect --creds "$1" --raw "$2" >"$3"; }
check "app server reads the manifest (skopeo --creds inspect --raw)" \
  inspect_raw "app:$PW_APP" "docker://$H/team/app:v1" "$WORK/raw.json"
D=sha256:$(sha256sum "$WORK/raw.json" | cut -d' ' -f1)
check_eq "the pulled copy has the manifest the registry serves" "$D" \
  "$(jq -r '.manifests[0].digest' "$WORK/back/index.json")"
check_eq "... whose digest the registry names" "$D" \
  "$(curl -s -D - -o /dev/null -u "app:$PW_APP" -H "$MT" "$R/v2/team/app/manifests/v1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')"
check_fails "skopeo push without credentials fails" skopeo_copy "$IMG" "docker://$H/team/app:anon"
check_fails "CI may not push outside team/* and public/*" skopeo_copy --dest-creds "ci:$PW_CI" "$IMG" "docker://$H/other/app:v1"
check_eq "... the upload POST is 403 DENIED" "DENIED" "$(errcode -X POST -u "ci:$PW_CI" "$R/v2/other/app/blobs/uploads/")"

# --- app servers only pull --------------------------------------------------------------
check_eq "app server: manifest GET is 200" 200 "$(code -u "app:$PW_APP" -H "$MT" "$R/v2/team/app/manifests/v1")"
check_eq "app server: push is 403" 403 "$(code -X POST -u "app:$PW_APP" "$R/v2/team/app/blobs/uploads/")"
check_eq "pull-only user bob: push is 403 DENIED" "DENIED" "$(errcode -X POST -u "bob:$PW_BOB" "$R/v2/team/app/blobs/uploads/")"
check_fails "... and skopeo's push as bob fails" skopeo_copy --dest-creds "bob:$PW_BOB" "$IMG" "docker://$H/team/app:bob"

# --- the longest glob wins --------------------------------------------------------------
check_eq "team/secret/* (longer than team/*): CI push is 403" 403 \
  "$(code -X POST -u "ci:$PW_CI" "$R/v2/team/secret/x/blobs/uploads/")"
check_eq "... bob may pull there (404: nothing pushed yet)" 404 \
  "$(code -u "bob:$PW_BOB" -H "$MT" "$R/v2/team/secret/x/manifests/v1")"
check "the admin pushes team/secret/x:v1" skopeo_copy --dest-creds "alice:$PW_ALICE" "$IMG" "docker://$H/team/secret/x:v1"

# --- anonymous pull where a glob allows it ----------------------------------------------
check "CI pushes public/tool:v1" skopeo_copy --dest-creds "ci:$PW_CI" "$IMG" "docker://$H/public/tool:v1"
check_eq "anonymous manifest GET of public/tool is 200" 200 "$(code -H "$MT" "$R/v2/public/tool/manifests/v1")"
check "anonymous skopeo pull of public/tool" skopeo_copy "docker://$H/public/tool:v1" "oci:$WORK/anon:v1"
check_eq "anonymous GET of team/app is 401 (log in)" 401 "$(code -H "$MT" "$R/v2/team/app/manifests/v1")"
check_eq "anonymous push to public/tool is 401" 401 "$(code -X POST "$R/v2/public/tool/blobs/uploads/")"

# --- the catalog: admins and regfs.access.catalog ---------------------------------------
check_eq "catalog as the admin: 200, every repository" "public/tool team/app team/secret/x" \
  "$(curl -s -u "alice:$PW_ALICE" "$R/v2/_catalog" | jq -r '.repositories | sort | join(" ")')"
check_eq "catalog as app (group apps is in regfs.access.catalog): 200" 200 "$(code -u "app:$PW_APP" "$R/v2/_catalog")"
check_eq "catalog as ci: 403" 403 "$(code -u "ci:$PW_CI" "$R/v2/_catalog")"
check_eq "catalog anonymous: 401" 401 "$(code "$R/v2/_catalog")"

# --- cross-repository mount: needs pull on the source ----------------------------------
IMG2=$(make_image "$WORK/oci" priv 1 20K) || bail make_image
check "the admin pushes private/x:v1" skopeo_copy --dest-creds "alice:$PW_ALICE" "$IMG2" "docker://$H/private/x:v1"
PD=$(curl -s -u "alice:$PW_ALICE" -H "$MT" "$R/v2/private/x/manifests/v1" | jq -r '.layers[0].digest')
TD=$(jq -r '.layers[0].digest' "$WORK/raw.json")
check_eq "mount from private/x (CI may not read it): 202, a new upload, no blob" 202 \
  "$(code -X POST -u "ci:$PW_CI" "$R/v2/team/app/blobs/uploads/?mount=$PD&from=private/x")"
check_eq "... and the blob is not in team/app" 404 "$(code -I -u "ci:$PW_CI" "$R/v2/team/app/blobs/$PD")"
check_eq "mount from public/tool (CI may read it): 201" 201 \
  "$(code -X POST -u "ci:$PW_CI" "$R/v2/team/mnt/blobs/uploads/?mount=$TD&from=public/tool")"

# --- one admin cleans up ---------------------------------------------------------------
check_eq "CI may not delete (403)" 403 "$(code -X DELETE -u "ci:$PW_CI" "$R/v2/team/app/manifests/$D")"
check_eq "the admin deletes the manifest (202)" 202 "$(code -X DELETE -u "alice:$PW_ALICE" "$R/v2/team/app/manifests/$D")"
check_eq "... it is gone" 404 "$(code -u "alice:$PW_ALICE" -H "$MT" "$R/v2/team/app/manifests/$D")"

# --- the htpasswd file ----------------------------------------------------------------
check "the MD5 line is refused with a log line naming file, line and user" \
  grep -q "auth.htpasswd: $HT line $OLDLINE: user \"legacy\" has a password hash that is not bcrypt" "$REGISTRY_LOG"
check_eq "... and that user cannot log in" 401 "$(code -u "legacy:$PW_OLD" "$R/v2/")"
# (from 127.0.0.3: its failed logins while it waits count against that address only)
check_eq "a user not in the file yet: 401" 401 "$(code --interface 127.0.0.3 -u "newbie:$PW_NEW" "$R/v2/")"
htpasswd -bB "$HT" newbie "$PW_NEW" 2>/dev/null
# polled every 0.5 s (the file is looked at once a second), at most 10 times: fewer
# failures than the limit
newbie_in() {
  local i
  for ((i = 0; i < 10; i++)); do
    [ "$(code --interface 127.0.0.3 -u "newbie:$PW_NEW" "$R/v2/")" = 200 ] && return 0; sleep 0.5
  done
  return 1
}
check "the file changed on disk: the new user logs in without a restart" newbie_in
check "... and the re-read is logged" grep -q "auth.htpasswd: $HT changed: re-read" "$REGISTRY_LOG"
# SIGHUP takes over changed rules: bob may now push to team/*
sed -i '0,/users: {bob: \[pull\]}/s//users: {bob: [pull, push]}/' "$CFG"
kill -HUP "$REGISTRY_PID"
bob_pushes() { [ "$(code -X POST -u "bob:$PW_BOB" "$R/v2/team/app/blobs/uploads/")" = 202 ]; }
check "SIGHUP: a changed rule applies (bob pushes to team/app: 202)" wait_for 10 bob_pushes
check_eq "... and team/secret/* still keeps bob to pull" 403 \
  "$(code -X POST -u "bob:$PW_BOB" "$R/v2/team/secret/x/blobs/uploads/")"
check_eq "... and logins still work" 200 "$(code -u "ci:$PW_CI" "$R/v2/")"

# --- the file vanishes: the users stay, and it is said ----------------------------------
mv "$HT" "$HT.away"
gone_logged() { code -u "ci:$PW_CI" "$R/v2/" >/dev/null; grep -q "auth.htpasswd: $HT cannot be read" "$REGISTRY_LOG"; }
check "the htpasswd file vanished: logged" wait_for 5 gone_logged
check_eq "... and the users stay" 200 "$(code -u "ci:$PW_CI" "$R/v2/")"
mv "$HT.away" "$HT"

# --- access lines name the user ---------------------------------------------------------
check "access lines carry the user" grep -q "GET /v2/_catalog 200 .* user=alice" "$REGISTRY_LOG"
check_fails "... not the name of a failed login" grep -q " 401 .* user=" "$REGISTRY_LOG"

# --- failed logins: 429 for that address (127.0.0.2), others unaffected -----------------
for i in 1 2 3 4 5 6; do code --interface 127.0.0.2 -u "ci:$PW_WRONG" "$R/v2/" >/dev/null; done
check_eq "after 6 failed logins (limit 5) the right password from that address is 429" 429 \
  "$(code --interface 127.0.0.2 -u "ci:$PW_CI" "$R/v2/")"
hdrs=$(curl -s -D - -o "$WORK/429.json" --interface 127.0.0.2 -u "ci:$PW_CI" "$R/v2/" | tr -d '\r')
ra=$(sed -n 's/^[Rr]etry-[Aa]fter: //p' <<<"$hdrs")
check "... with Retry-After in seconds (1-60): '$ra'" test -n "$ra" -a "${ra:-0}" -ge 1 -a "${ra:-99}" -le 60
check_eq "... and TOOMANYREQUESTS" TOOMANYREQUESTS "$(jq -r '.errors[0].code' "$WORK/429.json")"
check_eq "another address still logs in" 200 "$(code -u "ci:$PW_CI" "$R/v2/")"
check "failed logins are logged with user and address" \
  grep -q 'auth: failed login for user "ci" from 127.0.0.2' "$REGISTRY_LOG"

# --- secrets never logged -------------------------------------------------------------
leaked=""
for pw in "$PW_ALICE" "$PW_CI" "$PW_APP" "$PW_BOB" "$PW_OLD" "$PW_NEW" "$PW_WRONG"; do
  grep -qF -- "$pw" "$REGISTRY_LOG" && leaked+=" $pw"
  grep -qF -- "$(printf '%s' "x:$pw" | base64)" "$REGISTRY_LOG" && leaked+=" base64($pw)"
done
check_eq "no password appears in the registry's log" "" "$leaked"

# --- JSON access lines carry the user; debug level still shows no password --------------
P2=$(free_port) CFG2=$WORK/config-json.yml
sed -e "s/^  level: .*/  level: debug/" -e "s/^  formatter: .*/  formatter: json/" \
  -e "s|^    rootdirectory: .*|    rootdirectory: $WORK/data2|" -e "s/^  addr: .*/  addr: 127.0.0.1:$P2/" \
  "$CFG" >"$CFG2"
R1_PID=$REGISTRY_PID R1_LOG=$REGISTRY_LOG
if start_regfs_registry "$CFG2"; then
  code -u "ci:$PW_CI" "$REGISTRY_URL/v2/" >/dev/null
  code -u "ci:$PW_WRONG" "$REGISTRY_URL/v2/" >/dev/null
  code -H "Authorization: Basic $(printf 'ci:%s' "$PW_WRONG" | base64)x" "$REGISTRY_URL/v2/" >/dev/null
  check_eq "JSON access line: member user" ci \
    "$(grep '"path":"/v2/"' "$REGISTRY_LOG" | jq -r 'select(.status == 200) | .user' | head -n1)"
  check_eq "log.level debug, JSON: no password anywhere in the log (good and bad logins)" "" \
    "$(grep -F -e "$PW_CI" -e "$PW_WRONG" "$REGISTRY_LOG")"
  stop_pid "$REGISTRY_PID"
else
  fail "regfs-registry starts with log.formatter json"
fi
REGISTRY_PID=$R1_PID REGISTRY_LOG=$R1_LOG

# --- the same config file starts Debian's docker-registry -------------------------------
if [ -x "$DOCKER_REGISTRY" ]; then
  stop_pid "$REGISTRY_PID"
  if start_docker_registry "$CFG"; then
    check_eq "docker-registry, same file: no credentials is 401" 401 "$(code "$REGISTRY_URL/v2/")"
    check "docker-registry, same file: skopeo push with the same creds" \
      skopeo_copy --dest-creds "ci:$PW_CI" "$IMG" "docker://$REGISTRY_HOST/team/dr:v1"
    check "docker-registry, same file: skopeo pull with the same creds" \
      skopeo_copy --src-creds "app:$PW_APP" "docker://$REGISTRY_HOST/team/dr:v1" "oci:$WORK/dr:v1"
  else
    fail "docker-registry starts with the same config file"
  fi
else
  log "docker-registry not installed: the same-file check is not run"
fi

done_testing
