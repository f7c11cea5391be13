#!/bin/bash
# rm of a tag through the mount against Debian's docker-registry 2.8.2,
# which refuses a tag DELETE (400 DIGEST_INVALID) so regfs must use its fallback:
#   - rm of a tag whose digest another tag shares leaves the other tag and the manifest
#     intact (fallback: placeholder manifest pushed to the tag, placeholder deleted);
#   - rm of a tag with its own digest removes it (fallback: delete by digest);
#   - no other tag moves, and no placeholder is left behind (revisions on disk).
# Checked with skopeo list-tags / skopeo inspect by digest and the storage root.
. "$(dirname "$0")/tags_lib.sh"
tags_prelude C "$DOCKER_REGISTRY" < <(tags_spec 5000 3000 A B C)

start_docker_registry "$WORK/data" || bail "docker-registry did not start"
H=$REGISTRY_HOST; R=team/app
check "push A as shared1 and shared2, B as own, C as keep" \
  push_tags "$H" "$R" imgA:shared1 imgA:shared2 imgB:own imgC:keep || bail "pushes failed"
check_eq "tags before" "keep own shared1 shared2" "$(list_tags "$H" "$R" | xargs)"
# test sanity: docker-registry 2.8.2 really refuses a DELETE by tag (it answers 400
# DIGEST_INVALID; the spec would call it UNSUPPORTED), so the fallback is what gets exercised.
code=$(curl -s -o "$WORK/del.json" -w '%{http_code}' -X DELETE "$REGISTRY_URL/v2/$R/manifests/own")
case $code in 4??) ok "docker-registry refuses DELETE by tag (HTTP $code) — the fallback is needed" ;;
  *) fail "docker-registry refuses DELETE by tag" "HTTP $code: $(cat "$WORK/del.json")" ;; esac
check_eq "... and the tag is still there" "keep own shared1 shared2" "$(list_tags "$H" "$R" | xargs)"
revisions() { find "$REGISTRY_DATA/docker/registry/v2/repositories/$R/_manifests/revisions/sha256" \
  -mindepth 2 -maxdepth 2 -name link -exec awk 1 {} + 2>/dev/null | sort; }

MNT=$WORK/mnt
start_regfs_mount "$REGISTRY_URL" "$MNT" --ttl 1 --cache-dir "$WORK/cache" || bail "regfs did not mount"
check_eq "the mount sees the 4 tags" "keep own shared1 shared2" "$(ls "$MNT/$R/_tags" | xargs)"
check_eq "shared1 and shared2 point at A" "../_manifests/$A ../_manifests/$A" \
  "$(readlink "$MNT/$R/_tags/shared1") $(readlink "$MNT/$R/_tags/shared2")"

# --- a tag whose digest another tag shares ---------------------------------------------------
check "rm _tags/shared1 (A also tagged shared2)" rm "$MNT/$R/_tags/shared1"
check_eq "skopeo list-tags: only shared1 is gone" "keep own shared2" "$(list_tags "$H" "$R" | xargs)"
check_eq "shared2 still resolves to A (skopeo inspect --raw)" "$A" "$(raw_digest "$H" "$R:shared2")"
check_eq "manifest A is intact (skopeo inspect by digest)" "$A" "$(raw_digest "$H" "$R@$A")"
check_eq "the other tags did not move: own -> B, keep -> C" "$B $C" "$(raw_digest "$H" "$R:own") $(raw_digest "$H" "$R:keep")"
check_eq "ls _tags shows it at once" "keep own shared2" "$(ls "$MNT/$R/_tags" | xargs)"
check_eq "readlink shared2 on the mount is still A" "../_manifests/$A" "$(readlink "$MNT/$R/_tags/shared2")"
check_eq "A still pulls byte-identical" "" "$(skopeo_copy "docker://$H/$R@$A" "dir:$WORK/pullA" 2>&1 &&
  skopeo_copy "oci:$OCI:imgA" "dir:$WORK/srcA" 2>&1 && diff -r "$WORK/srcA" "$WORK/pullA" 2>&1)"

# --- a tag with its own digest -------------------------------------------------------------------
check "rm _tags/own (B has no other tag)" rm "$MNT/$R/_tags/own"
check_eq "skopeo list-tags: own is gone" "keep shared2" "$(list_tags "$H" "$R" | xargs)"
check_fails "manifest B is gone (skopeo inspect by digest fails)" skopeo_x inspect --raw "docker://$H/$R@$B"
check_eq "A and C unaffected" "$A $C" "$(raw_digest "$H" "$R:shared2") $(raw_digest "$H" "$R:keep")"
check_eq "ls _tags shows it at once" "keep shared2" "$(ls "$MNT/$R/_tags" | xargs)"

# --- nothing left behind ----------------------------------------------------------------------------
# The repository's manifest revisions on disk: A and C only — B deleted, and no placeholder
# manifest the shared-digest fallback may have pushed.
check_eq "revisions on disk = A and C (no placeholder left)" "$(printf '%s\n' "$A" "$C" | sort | xargs)" \
  "$(revisions | xargs)"
check_daemon_logs
done_testing
