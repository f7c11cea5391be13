#!/bin/bash
# mount_denied.sh — writes the registry refuses to the mount's user (401/403) are
# "Permission denied" (EACCES, not EIO), with one log line naming the user, the tag and
# the registry's own error message, and change nothing (the tags and digests, read with
# skopeo as a user who may read everything, are the same before and after):
#   rm _tags/T, mv _tags/T _tags/U, ln -s ../_manifests/D _tags/U, rmdir _manifests/D.
# The registry: docker-registry with token auth; its realm is tools/grantfront.py on
# tokenserver.py, which grants bob only pull (carol: pull and push, not delete).
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin skopeo umoci jq python3 openssl "$DOCKER_REGISTRY"

BPW="bob-$RANDOM-pw$RANDOM"; CPW="carol-$RANDOM-pw$RANDOM"
start_tokenserver tokenserver
GPORT=$(free_port)
start_bg grantfront python3 "$REGFS_SRC/tests/integration/tools/grantfront.py" --port "$GPORT" \
  --upstream "$TPORT" --as alice:s3cret --user "bob:$BPW:pull" --user "carol:$CPW:pull,push"
wait_http "http://127.0.0.1:$GPORT/" || bail "grantfront.py did not start"
start_docker_registry "$WORK/data" "auth:
  token:
    realm: http://127.0.0.1:$GPORT/token
    service: regfs-test
    issuer: regfs-test-issuer
    rootcertbundle: $WORK/tok/cert.pem" || bail "token docker-registry did not start"

make_image "$WORK/oci" v1 1 20K >/dev/null || bail make_image
for t in keep old; do
  check "alice pushes team/app:$t" skopeo_copy --dest-creds alice:s3cret \
    oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:$t"
done
# state — "tag digest" lines of team/app, read by alice through the registry's API
state() {
  local t
  for t in $(skopeo_x list-tags --creds alice:s3cret "docker://$REGISTRY_HOST/team/app" | jq -r '.Tags[]' | sort); do
    echo "$t $(skopeo_x inspect --creds alice:s3cret --raw "docker://$REGISTRY_HOST/team/app:$t" | sha256sum | cut -c1-16)"
  done
}
BEFORE=$(state)
[ "$(wc -l <<<"$BEFORE")" = 2 ] || bail "expected two tags, got: $BEFORE"

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
HOME=$WORK DOCKER_CONFIG=$WORK/nodc; export HOME DOCKER_CONFIG

# --- bob may only pull --------------------------------------------------------------
MNT=$WORK/bob
start_regfs_mount "$REGISTRY_URL" "$MNT" --user "bob:$BPW" --ttl 1 --cache-dir "$WORK/cb" ||
  bail "bob's mount did not come up"
T=$MNT/team/app/_tags
check_eq "bob: ls _tags" "keep old" "$(ls "$T" | paste -sd' ')"
D=$(readlink "$T/keep"); D=${D##*/}
check_eq "bob: rm _tags/old is Permission denied" "Permission denied" "$(errno_of rm "$T/old")"
check_eq "... and the registry is as before" "$BEFORE" "$(state)"
check "... one log line names the user, the tag and the registry's error" \
  grep -E "team/app:old.*user bob .*(UNAUTHORIZED|DENIED)" "$MOUNT_LOG"
check_eq "bob: mv _tags/old _tags/new is Permission denied" "Permission denied" \
  "$(errno_of mv -T "$T/old" "$T/new")"
check_eq "... and the registry is as before" "$BEFORE" "$(state)"
check "... one log line names the mv, the user and the registry's error" \
  grep -E "mv team/app:old to new refused: .*user bob .*(UNAUTHORIZED|DENIED)" "$MOUNT_LOG"
check_eq "bob: ln -s ../_manifests/D _tags/new is Permission denied" "Permission denied" \
  "$(errno_of ln -s "../_manifests/$D" "$T/new")"
check_eq "... and the registry is as before" "$BEFORE" "$(state)"
check "... the log line names the user and the tag" grep -E "team/app:new.*user bob " "$MOUNT_LOG"
check_eq "bob: rmdir _manifests/D is Permission denied" "Permission denied" \
  "$(errno_of rmdir "$MNT/team/app/_manifests/$D")"
check_eq "... and the registry is as before" "$BEFORE" "$(state)"
check "... the log line names the manifest and the user" \
  grep -E "deleting manifest team/app@$D.*user bob " "$MOUNT_LOG"
check_eq "bob's password is not in the log" 0 "$(grep -cF -e "$BPW" "$MOUNT_LOG")"
check_eq "no write answered EIO" 0 "$(grep -c "Input/output" "$MOUNT_LOG")"
unmount "$MNT"; stop_pid "$MOUNT_PID"

# --- carol may push, not delete --------------------------------------------------------
MNT=$WORK/carol
start_regfs_mount "$REGISTRY_URL" "$MNT" --user "carol:$CPW" --ttl 1 --cache-dir "$WORK/cc" ||
  bail "carol's mount did not come up"
T=$MNT/team/app/_tags
check_eq "carol: rm _tags/old is Permission denied" "Permission denied" "$(errno_of rm "$T/old")"
check_eq "... and the registry is as before" "$BEFORE" "$(state)"
check "... one log line names the user, the tag and the registry's error" \
  grep -E "team/app:old.*user carol .*(UNAUTHORIZED|DENIED)" "$MOUNT_LOG"
check_eq "carol: mv _tags/old _tags/new is Permission denied (she could not delete old)" \
  "Permission denied" "$(errno_of mv -T "$T/old" "$T/new")"
check_eq "... and the registry is as before (no new)" "$BEFORE" "$(state)"
check "carol: ln -s ../_manifests/D _tags/new works (push is hers)" ln -s "../_manifests/$D" "$T/new"
check_eq "... and new is on the registry, the rest as before" \
  "$(printf '%s\n' "$BEFORE" "new $(grep '^keep ' <<<"$BEFORE" | cut -d' ' -f2)" | sort)" "$(state)"
unmount "$MNT"; stop_pid "$MOUNT_PID"

done_testing
