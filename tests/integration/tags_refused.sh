#!/bin/bash
# A refused or failed rm, mv or ln through the mount leaves the registry exactly as it was:
#   - storage.delete.enabled false (registry:2's default): rm _tags/garbage and
#     mv _tags/future _tags/future2 fail with EPERM and change nothing (no placeholder on
#     garbage or future, no future2);
#   - deletes enabled, but the registry fails the delete once (a fault-injecting proxy
#     answers 500): rm and mv fail and what they had already changed is undone;
#   - the registry fails every manifest PUT: ln -s fails and nothing changed.
# After each failure every tag's digest is read with curl straight from the registry and
# compared with the state before. Against regfs-registry and Debian's docker-registry.
. "$(dirname "$0")/tags_lib.sh"
tags_prelude B <<<"$TAGS_SPEC_AB"
R=app

push() { push_tags "$1" "$R" imgA:garbage imgA:keep imgB:future; }

# unchanged NAME — the registry's tags and digests equal $BEFORE
unchanged() { check_eq "$1" "$BEFORE" "$(registry_state "$H" "$R")"; }

run_nodelete() {
  local k=$1 mnt=$WORK/mnt-nd-$1 T
  log "=== $k, deletes disabled ==="
  tags_registry "$k" "$WORK/data-nd-$k" nodelete || return
  check "$k: push A as garbage and keep, B as future" push "$H" || return
  BEFORE=$(registry_state "$H" "$R")
  T=$mnt/$R/_tags
  tags_mount "$k" "$REGISTRY_URL" "$mnt" --ttl 1 --cache-dir "$WORK/cache-nd-$k" || return
  check_eq "$k: rm _tags/garbage: EPERM" "Operation not permitted" "$(errno_of rm "$T/garbage")"
  unchanged "$k: ... and the registry is exactly as before"
  check_eq "$k: mv _tags/future _tags/future2: EPERM" "Operation not permitted" \
    "$(errno_of mv -T "$T/future" "$T/future2")"
  unchanged "$k: ... and the registry is exactly as before (no future2, future on B)"
  check_eq "$k: mv _tags/garbage _tags/keep (onto a tag): EPERM" "Operation not permitted" \
    "$(errno_of mv -T "$T/garbage" "$T/keep")"
  unchanged "$k: ... and the registry is exactly as before"
  check "$k: the log says deletes are disabled" grep -q "does not allow deletes" "$MOUNT_LOG"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

run_faults() {
  local k=$1 mnt=$WORK/mnt-f-$1 T del
  log "=== $k, deletes enabled, the registry fails once ==="
  tags_registry "$k" "$WORK/data-f-$k" || return
  check "$k: push A as garbage and keep, B as future" push "$H" || return
  BEFORE=$(registry_state "$H" "$R")
  T=$mnt/$R/_tags
  tags_proxy_mount "$k" "$mnt" --ttl 1 --cache-dir "$WORK/cache-f-$k" || return
  # the delete that removes the tag: by tag on regfs-registry; by digest (of a placeholder
  # or of the manifest) on docker-registry — not the mount's probe of a digest that
  # cannot exist (sha256:000…)
  if [ "$k" = docker ]; then del='^/v2/app/manifests/sha256:(?!0{64})'; else del='^/v2/app/manifests/(garbage|future)$'; fi
  proxy_rules '[{"method":"DELETE","path":"'"$del"'","action":"500","times":1}]'
  check_eq "$k: rm _tags/garbage while the registry fails the delete: EIO" "Input/output error" \
    "$(errno_of rm "$T/garbage")"
  unchanged "$k: ... and the registry is exactly as before (garbage back on A)"
  proxy_rules '[{"method":"DELETE","path":"'"$del"'","action":"500","times":1}]'
  check_eq "$k: mv _tags/future _tags/future2 while the registry fails the delete: EIO" \
    "Input/output error" "$(errno_of mv -T "$T/future" "$T/future2")"
  unchanged "$k: ... and the registry is exactly as before (future2 removed again)"
  proxy_rules '[{"method":"PUT","path":"^/v2/app/manifests/","action":"500"}]'
  check_eq "$k: ln -s ../_manifests/B _tags/new while the registry fails PUT: EIO" \
    "Input/output error" "$(errno_of ln -s "../_manifests/$B" "$T/new")"
  unchanged "$k: ... and the registry is exactly as before"
  proxy_rules '[]'
  # and once the registry works again, the same writes do what they say
  check "$k: rm _tags/garbage" rm "$T/garbage"
  check_eq "$k: only garbage is gone" "future $B|keep $A" "$(registry_state "$H" "$R" | paste -sd'|')"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_nodelete "$k"; run_faults "$k"; done
check_daemon_logs
done_testing
