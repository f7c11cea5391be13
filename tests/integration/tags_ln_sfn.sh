#!/bin/bash
# `ln -sfn ../_manifests/<digest> _tags/<tag>` (GNU ln: a symlink under a temporary name,
# then a rename over the tag) retargets the tag with one manifest PUT, to that tag only:
# no temporary tag is ever pushed, and onto a protected tag it is refused before anything
# is written. Request counts come from a proxy in front of the registry; the tags from
# curl straight at the registry. Against regfs-registry and Debian's docker-registry.
. "$(dirname "$0")/tags_lib.sh"
tags_prelude B <<<"$TAGS_SPEC_AB"
R=team/app

run_kind() {
  local k=$1 H mnt=$WORK/mnt-$1 T before
  log "=== $k ==="
  tags_registry "$k" "$WORK/data-$k" || return
  check "$k: push A as app and production, B as next" push_tags "$H" "$R" imgA:app imgA:production imgB:next || return
  T=$mnt/$R/_tags
  tags_proxy_mount "$k" "$mnt" --ttl 1 --cache-dir "$WORK/cache-$k" --protect production || return
  check_eq "$k: the mount lists the tags" "app next production" "$(ls "$T" | xargs)"

  proxy_reset
  check "$k: ln -sfn ../_manifests/<B> _tags/app" ln -sfn "../_manifests/$B" "$T/app"
  check_eq "$k: app now points at B (curl)" "app $B" "$(registry_state "$H" "$R" | grep '^app ')"
  check_eq "$k: the registry has no other new tag" "app next production" \
    "$(registry_state "$H" "$R" | cut -d' ' -f1 | xargs)"
  check_eq "$k: exactly one manifest PUT, to app" "1 1" \
    "$(proxy_count PUT '^/v2/team/app/manifests/') $(proxy_count PUT '^/v2/team/app/manifests/app$')"
  check_eq "$k: readlink _tags/app on the mount" "../_manifests/$B" "$(readlink "$T/app")"
  check_eq "$k: ls _tags shows no temporary name" "app next production" "$(ls "$T" | xargs)"

  before=$(registry_state "$H" "$R")
  proxy_reset
  check_eq "$k: ln -sfn onto the protected tag production: EPERM" "Operation not permitted" \
    "$(errno_of ln -sfn "../_manifests/$B" "$T/production")"
  check_eq "$k: ... and nothing was written (no PUT, no DELETE)" "0 0" \
    "$(proxy_count PUT . ) $(proxy_count DELETE .)"
  check_eq "$k: ... and the registry is as before" "$before" "$(registry_state "$H" "$R")"
  check "$k: the log names the rule" grep -q "protect rule 'production'" "$MOUNT_LOG"
  check_eq "$k: ls _tags shows no temporary name" "app next production" "$(ls "$T" | xargs)"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
check_daemon_logs
done_testing
