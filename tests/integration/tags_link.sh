#!/bin/bash
# Tag writes through the mount, against regfs-registry and Debian's docker-registry 2.8.2:
#   - `-o ro`: rm, ln -s and mv on _tags/ fail with EROFS and change nothing;
#   - `ln -s ../_manifests/<digest> _tags/new` creates the tag, and `mv _tags/a _tags/b`
#     renames one: visible through skopeo list-tags / skopeo inspect and readlink on the
#     mount. On docker-registry mv's delete of the old name goes through the fallback
#     (the renamed tag shares its digest), so the new name must survive it.
. "$(dirname "$0")/tags_lib.sh"
tags_prelude B < <(tags_spec 5000 3000 A B)
R=team/app

run_kind() {
  local k=$1 H T mnt
  log "=== $k ==="
  tags_registry "$k" "$WORK/data-$k" || return
  check "$k: push A as a, B as b" push_tags "$H" "$R" imgA:a imgB:b || return
  check_eq "$k: tags before" "a b" "$(list_tags "$H" "$R" | xargs)"

  # --- -o ro: every write is EROFS ---------------------------------------------------------------
  mnt=$WORK/ro-$k; T=$mnt/$R/_tags
  tags_mount "$k: -o ro" "$REGISTRY_URL" "$mnt" -o ro --ttl 1 --cache-dir "$WORK/cache-ro-$k" || return
  check_eq "$k: -o ro: rm _tags/a: EROFS" "Read-only file system" "$(errno_of rm "$T/a")"
  check_eq "$k: -o ro: ln -s ../_manifests/B _tags/new: EROFS" "Read-only file system" \
    "$(errno_of ln -s "../_manifests/$B" "$T/new")"
  check_eq "$k: -o ro: mv _tags/a _tags/c: EROFS" "Read-only file system" "$(errno_of mv -T "$T/a" "$T/c")"
  check_eq "$k: -o ro: rmdir _manifests/A: EROFS" "Read-only file system" \
    "$(errno_of rmdir "$mnt/$R/_manifests/$A")"
  check_eq "$k: -o ro: nothing changed (skopeo list-tags)" "a b" "$(list_tags "$H" "$R" | xargs)"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  # --- ln -s creates a tag ------------------------------------------------------------------------
  mnt=$WORK/rw-$k; T=$mnt/$R/_tags
  tags_mount "$k" "$REGISTRY_URL" "$mnt" --ttl 1 --cache-dir "$WORK/cache-rw-$k" || return
  check "$k: ln -s ../_manifests/<B> _tags/new" ln -s "../_manifests/$B" "$T/new"
  check_eq "$k: skopeo list-tags shows new" "a b new" "$(list_tags "$H" "$R" | xargs)"
  check_eq "$k: new -> B (skopeo inspect --raw)" "$B" "$(raw_digest "$H" "$R:new")"
  check_eq "$k: readlink _tags/new on the mount" "../_manifests/$B" "$(readlink "$T/new")"
  check_eq "$k: ls _tags shows it at once" "a b new" "$(ls "$T" | xargs)"

  # --- mv renames a tag ----------------------------------------------------------------------------
  check "$k: mv _tags/a _tags/renamed" mv -T "$T/a" "$T/renamed"
  check_eq "$k: skopeo list-tags: a renamed to renamed" "b new renamed" "$(list_tags "$H" "$R" | xargs)"
  check_eq "$k: renamed -> A (skopeo inspect --raw)" "$A" "$(raw_digest "$H" "$R:renamed")"
  check_eq "$k: manifest A intact (inspect by digest)" "$A" "$(raw_digest "$H" "$R@$A")"
  check_eq "$k: readlink _tags/renamed on the mount" "../_manifests/$A" "$(readlink "$T/renamed")"
  check_eq "$k: ls _tags shows it at once" "b new renamed" "$(ls "$T" | xargs)"
  check_eq "$k: b and new untouched" "$B $B" "$(raw_digest "$H" "$R:b") $(raw_digest "$H" "$R:new")"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
check_daemon_logs
done_testing
