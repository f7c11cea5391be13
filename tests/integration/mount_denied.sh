#!/bin/bash
# mount_denied.sh — writes the registry refuses to the mount's user (401/403) are
# "Permission denied" (EACCES, not EIO), with one log line naming the user, the tag and
# the registry's own error message, and change nothing (the tags and digests, read with
# skopeo as a user who may read everything, are the same before and after):
#   rm _tags/T, mv _tags/T _tags/U, ln -s ../_manifests/D _tags/U, rmdir _manifests/D.
# Registries: regfs-registry with htpasswd and regfs.access rules (bob may pull team/*,
# carol pull and push; 403 DENIED on the rest), and docker-registry with token auth, its
# realm tools/grantfront.py on tokenserver.py granting the same (401 on the rest).
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_regfs_registry
need_bin skopeo umoci jq python3 openssl htpasswd "$DOCKER_REGISTRY"

BPW="bob-$RANDOM-pw$RANDOM"; CPW="carol-$RANDOM-pw$RANDOM"
make_image "$WORK/oci" v1 1 20K >/dev/null || bail make_image
HOME=$WORK DOCKER_CONFIG=$WORK/nodc; export HOME DOCKER_CONFIG

# docker-registry, token auth; the admin is alice:s3cret (tokenserver.py's user)
start_token_docker() {
  start_tokenserver tokenserver
  local gport; gport=$(free_port)
  start_bg grantfront python3 "$REGFS_SRC/tests/integration/tools/grantfront.py" --port "$gport" \
    --upstream "$TPORT" --as alice:s3cret --user "bob:$BPW:pull" --user "carol:$CPW:pull,push"
  wait_http "http://127.0.0.1:$gport/" || bail "grantfront.py did not start"
  ADMIN=alice:s3cret
  start_docker_registry "$WORK/data-docker" "auth:
  token:
    realm: http://127.0.0.1:$gport/token
    service: regfs-test
    issuer: regfs-test-issuer
    rootcertbundle: $WORK/tok/cert.pem"
}

# regfs-registry, htpasswd and regfs.access: alice is an admin; in team/* bob may pull,
# carol pull and push (403 DENIED on the rest)
start_regfs_access() {
  local apw="alice-$RANDOM-pw"
  htpasswd -nbB alice "$apw" >"$WORK/htpasswd" && htpasswd -nbB bob "$BPW" >>"$WORK/htpasswd" &&
    htpasswd -nbB carol "$CPW" >>"$WORK/htpasswd" || bail "htpasswd -nbB failed"
  ADMIN=alice:$apw
  start_regfs_registry "$WORK/data-regfs" "auth:
  htpasswd:
    realm: regfs-test
    path: $WORK/htpasswd
regfs:
  admins: [alice]
  access:
    catalog: [bob, carol]
    rules:
      - repository: \"team/*\"
        users: {bob: [pull], carol: [pull, push]}"
}

# state — "tag digest" lines of team/app, read by the admin through the registry's API
state() {
  local t
  for t in $(skopeo_x list-tags --creds "$ADMIN" "docker://$REGISTRY_HOST/team/app" | jq -r '.Tags[]' | sort); do
    echo "$t $(skopeo_x inspect --creds "$ADMIN" --raw "docker://$REGISTRY_HOST/team/app:$t" | sha256sum | cut -c1-16)"
  done
}
errno_of() {  # errno_of CMD… — the strerror text CMD reported, or "succeeded"
  local out
  if out=$("$@" 2>&1); then echo succeeded; return; fi
  case $out in
    *"Permission denied"*) echo "Permission denied" ;;
    *"Input/output error"*) echo "Input/output error" ;;
    *"Operation not permitted"*) echo "Operation not permitted" ;;
    *) echo "$out" ;;
  esac
}

# run_denied KIND — the checks against the registry just started (REGISTRY_*, ADMIN)
run_denied() {
  local k=$1 t MNT T D BEFORE
  for t in keep old; do
    check "$k: the admin pushes team/app:$t" skopeo_copy --dest-creds "$ADMIN" \
      oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:$t" || return
  done
  BEFORE=$(state)
  [ "$(wc -l <<<"$BEFORE")" = 2 ] || { fail "$k: expected two tags, got: $BEFORE"; return; }

  # --- bob may only pull
  MNT=$WORK/$k-bob
  start_regfs_mount "$REGISTRY_URL" "$MNT" --user "bob:$BPW" --ttl 1 --cache-dir "$WORK/$k-cb" ||
    { fail "$k: bob's mount did not come up"; return; }
  T=$MNT/team/app/_tags
  check_eq "$k: bob: ls _tags" "keep old" "$(ls "$T" | paste -sd' ')"
  D=$(readlink "$T/keep"); D=${D##*/}
  check_eq "$k: bob: rm _tags/old is Permission denied" "Permission denied" "$(errno_of rm "$T/old")"
  check_eq "$k: ... and the registry is as before" "$BEFORE" "$(state)"
  check "$k: ... one log line names the user, the tag and the registry's error" \
    grep -E "team/app:old.*user bob .*(UNAUTHORIZED|DENIED)" "$MOUNT_LOG"
  check_eq "$k: bob: mv _tags/old _tags/new is Permission denied" "Permission denied" \
    "$(errno_of mv -T "$T/old" "$T/new")"
  check_eq "$k: ... and the registry is as before" "$BEFORE" "$(state)"
  check "$k: ... one log line names the mv, the user and the registry's error" \
    grep -E "mv team/app:old to new refused: .*user bob .*(UNAUTHORIZED|DENIED)" "$MOUNT_LOG"
  check_eq "$k: bob: ln -s ../_manifests/D _tags/new is Permission denied" "Permission denied" \
    "$(errno_of ln -s "../_manifests/$D" "$T/new")"
  check_eq "$k: ... and the registry is as before" "$BEFORE" "$(state)"
  check "$k: ... the log line names the user and the tag" grep -E "team/app:new.*user bob " "$MOUNT_LOG"
  check_eq "$k: bob: rmdir _manifests/D is Permission denied" "Permission denied" \
    "$(errno_of rmdir "$MNT/team/app/_manifests/$D")"
  check_eq "$k: ... and the registry is as before" "$BEFORE" "$(state)"
  check "$k: ... the log line names the manifest and the user" \
    grep -E "deleting manifest team/app@$D.*user bob " "$MOUNT_LOG"
  check "$k: .regfs/errors lists the refusals with the user" grep -q "user bob" "$MNT/.regfs/errors"
  check_eq "$k: bob's password is not in the log nor in .regfs/errors" 0 \
    "$(cat "$MOUNT_LOG" "$MNT/.regfs/errors" | grep -cF -e "$BPW")"
  check_eq "$k: no write answered EIO" 0 "$(grep -c "Input/output" "$MOUNT_LOG")"
  unmount "$MNT"; stop_pid "$MOUNT_PID"

  # --- carol may push, not delete
  MNT=$WORK/$k-carol
  start_regfs_mount "$REGISTRY_URL" "$MNT" --user "carol:$CPW" --ttl 1 --cache-dir "$WORK/$k-cc" ||
    { fail "$k: carol's mount did not come up"; return; }
  T=$MNT/team/app/_tags
  check_eq "$k: carol: rm _tags/old is Permission denied" "Permission denied" "$(errno_of rm "$T/old")"
  check_eq "$k: ... and the registry is as before" "$BEFORE" "$(state)"
  check "$k: ... one log line names the user, the tag and the registry's error" \
    grep -E "team/app:old.*user carol .*(UNAUTHORIZED|DENIED)" "$MOUNT_LOG"
  check_eq "$k: carol: mv _tags/old _tags/new is Permission denied (she could not delete old)" \
    "Permission denied" "$(errno_of mv -T "$T/old" "$T/new")"
  check_eq "$k: ... and the registry is as before (no new)" "$BEFORE" "$(state)"
  check "$k: carol: ln -s ../_manifests/D _tags/new works (push is hers)" ln -s "../_manifests/$D" "$T/new"
  check_eq "$k: ... and new is on the registry, the rest as before" \
    "$(printf '%s\n' "$BEFORE" "new $(grep '^keep ' <<<"$BEFORE" | cut -d' ' -f2)" | sort)" "$(state)"
  unmount "$MNT"; stop_pid "$MOUNT_PID"
}

start_regfs_access || bail "regfs-registry with htpasswd and regfs.access did not start"
run_denied regfs
stop_pid "$REGISTRY_PID"
start_token_docker || bail "token docker-registry did not start"
run_denied docker
stop_pid "$REGISTRY_PID"

done_testing
