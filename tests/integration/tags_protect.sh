#!/bin/bash
# `regfs --protect latest,production`: rm of a protected tag,
# mv of a protected tag away, and mv of another tag onto a protected one fail with EPERM and
# a log line naming the rule; nothing changes in the registry (skopeo list-tags / inspect);
# an unprotected tag on the same manifest is still removable.
# When regfs does not accept --protect the script fails (the option parser is the probe:
# --help may lag behind).
. "$(dirname "$0")/tags_lib.sh"
need_regfs_registry
need_regfs_mount
check "regfs accepts --protect" "$REGFS_MOUNT" --protect latest --version || bail "regfs refuses --protect"

tags_prelude B < <(tags_spec 5000 3000 A B)

start_regfs_registry "$WORK/data" || bail "regfs-registry did not start"
H=$REGISTRY_HOST; R=team/app
check "push A as latest, production, v1 and B as dev" push_tags "$H" "$R" imgA:latest imgA:production imgA:v1 imgB:dev ||
  bail "pushes failed"
BEFORE="dev latest production v1"
check_eq "tags before" "$BEFORE" "$(list_tags "$H" "$R" | xargs)"

MNT=$WORK/mnt; T=$MNT/$R/_tags
start_regfs_mount "$REGISTRY_URL" "$MNT" --ttl 1 --cache-dir "$WORK/cache" --protect latest,production ||
  bail "regfs did not mount"
check_eq "mount sees the tags" "$BEFORE" "$(ls "$T" | xargs)"

check_eq "rm _tags/latest: EPERM" "Operation not permitted" "$(errno_of rm "$T/latest")"
check_eq "rm _tags/production: EPERM" "Operation not permitted" "$(errno_of rm "$T/production")"
check_eq "mv _tags/latest _tags/moved (away from a protected tag): EPERM" "Operation not permitted" \
  "$(errno_of mv -T "$T/latest" "$T/moved")"
check_eq "mv _tags/dev _tags/production (onto a protected tag): EPERM" "Operation not permitted" \
  "$(errno_of mv -T "$T/dev" "$T/production")"
check_eq "skopeo list-tags: nothing changed" "$BEFORE" "$(list_tags "$H" "$R" | xargs)"
check_eq "latest and production still -> A, dev -> B (skopeo inspect)" "$A $A $B" \
  "$(raw_digest "$H" "$R:latest") $(raw_digest "$H" "$R:production") $(raw_digest "$H" "$R:dev")"
check_eq "the mount shows them unchanged" "../_manifests/$A ../_manifests/$A ../_manifests/$B" \
  "$(readlink "$T/latest") $(readlink "$T/production") $(readlink "$T/dev")"
check "the log names the rule that refused (latest)" grep -qiE 'protect.*latest|latest.*protect' "$MOUNT_LOG"
check "the log names the rule that refused (production)" grep -qiE 'protect.*production|production.*protect' "$MOUNT_LOG"

# the protection is per name, not per manifest: v1 (also A) is not protected
check "rm _tags/v1 (unprotected, same manifest as latest) succeeds" rm "$T/v1"
check_eq "skopeo list-tags: only v1 is gone" "dev latest production" "$(list_tags "$H" "$R" | xargs)"
check_eq "latest still -> A" "$A" "$(raw_digest "$H" "$R:latest")"
check_daemon_logs
done_testing
