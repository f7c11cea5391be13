#!/bin/bash
# rm -r of a repository through the mount is refused as a whole: it fails, deletes no tag
# and no manifest, and the log says why and what to use instead. A cross-repository mv of
# a tag answers EXDEV, so GNU mv copies it (ln -s in the other repository) and removes the
# old one: the tag moves, nothing else changes. Verified with curl straight at the
# registry. Against regfs-registry and Debian's docker-registry.
. "$(dirname "$0")/tags_lib.sh"
tags_prelude B <<<"$TAGS_SPEC_AB"
R=team/app

run_kind() {
  local k=$1 H mnt=$WORK/mnt-$1 before out rc
  log "=== $k ==="
  tags_registry "$k" "$WORK/data-$k" || return
  push() { push_tags "$H" "$R" imgA:v1 imgA:v2 imgB:v3 imgB:production && push_tags "$H" other imgB:base; }
  check "$k: push team/app (v1 v2 on A, v3 production on B) and other:base" push || return
  before=$(registry_state "$H" "$R")
  tags_mount "$k" "$REGISTRY_URL" "$mnt" --ttl 1 --cache-dir "$WORK/cache-$k" --protect production || return

  out=$(rm -r "$mnt/$R" 2>&1); rc=$?
  check "$k: rm -r <repo> fails" test "$rc" -ne 0
  check_eq "$k: ... and no tag was deleted or moved (curl)" "$before" "$(registry_state "$H" "$R")"
  check_eq "$k: ... both manifests are still there (skopeo inspect by digest)" "$A $B" \
    "$(raw_digest "$H" "$R@$A") $(raw_digest "$H" "$R@$B")"
  check "$k: ... the log says rm -r is refused and what to use" grep -q "rm -r of a repository .*not supported" "$MOUNT_LOG"
  check "$k: ... rm says so for the tags too" grep -q "_tags/v1.*Read-only file system" <<<"$out"
  # the refusal covers the rm -r that just ran, not the next explicit rm
  sleep 11
  check "$k: a plain rm of a tag works again afterwards" rm "$mnt/$R/_tags/v2"
  check_eq "$k: ... v2 is gone, the rest as before (curl)" "$(grep -v '^v2 ' <<<"$before")" "$(registry_state "$H" "$R")"

  out=$(mv "$mnt/$R/_tags/v1" "$mnt/other/_tags/v1" 2>&1); rc=$?
  check_eq "$k: mv _tags/v1 to another repository's _tags succeeds (EXDEV, then mv copies)" 0 "$rc"
  # what mv may say: that the copied symlink keeps neither owner nor times (the mount's
  # are the registry's), never an I/O error
  check_eq "$k: ... mv says nothing but 'preserving' warnings" "" \
    "$(grep -v -e 'failed to preserve ownership' -e 'preserving times' <<<"$out")"
  check_eq "$k: ... other:v1 points at A (curl)" "v1 $A" "$(registry_state "$H" other | grep '^v1 ')"
  check_eq "$k: ... team/app:v1 is gone, the rest as before (curl)" "$(grep -v '^v[12] ' <<<"$before")" \
    "$(registry_state "$H" "$R")"
  check "$k: ... the log says EXDEV" grep -q "answering EXDEV" "$MOUNT_LOG"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
check_daemon_logs
done_testing
