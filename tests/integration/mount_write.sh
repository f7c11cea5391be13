#!/bin/bash
# mount_write.sh — writes through the mount (docs/mount.md, "Writes"),
# against regfs-registry and Debian's docker-registry 2.8.2 (which refuses tag
# DELETE, so the fallback is exercised there):
#   - rm of a tag whose digest another tag shares leaves the other tag and its
#     manifest intact; rm of a tag with its own digest removes it (skopeo agrees);
#   - rmdir of a manifest deletes it and its tags;
#   - ln -s tags a manifest, also across repositories; mv renames a tag
#     (visible through skopeo list-tags and inspect);
#   - --protect gives EPERM (and a log line); -o ro gives EROFS; other writes EROFS;
#   - changes show at once (no waiting for the ttl).
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin skopeo umoci jq

make_image "$WORK/oci" one 2 20K 10K >/dev/null || bail make_image
make_image "$WORK/oci" two 1 30K >/dev/null || bail make_image
make_image "$WORK/oci" three 1 5K >/dev/null || bail make_image

tags_of() { skopeo_x list-tags "docker://$REGISTRY_HOST/$1" 2>/dev/null | jq -r '.Tags // [] | .[]' | sort | tr '\n' ' ' | sed 's/ $//'; }
ls1() { ls -1 "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
dg() { readlink "$1" | sed 's|.*/||'; }

push_all() {
  skopeo_copy oci:"$WORK/oci":one "docker://$1/team/app:v1" &&
  skopeo_copy oci:"$WORK/oci":one "docker://$1/team/app:latest" &&
  skopeo_copy oci:"$WORK/oci":two "docker://$1/team/app:v2" &&
  skopeo_copy oci:"$WORK/oci":three "docker://$1/team/app:v3" &&
  skopeo_copy oci:"$WORK/oci":three "docker://$1/team/app:production" &&
  skopeo_copy oci:"$WORK/oci":two "docker://$1/other:base"
}

run_kind() {
  local kind=$1 mnt=$WORK/mnt-$1 out d1 d2 d3
  log "=== $kind ==="
  start_registry "$kind" "$WORK/data-$kind" || { fail "$kind: registry starts"; return; }
  local h=$REGISTRY_HOST
  check "$kind: push" push_all "$h" || return
  start_regfs_mount "$REGISTRY_URL" "$mnt" --ttl 60 --cache-dir "$WORK/cache-$kind" \
    --protect 'production,release-*' || { fail "$kind: mount"; return; }
  local T=$mnt/team/app/_tags M=$mnt/team/app/_manifests
  d1=$(dg "$T/v1"); d2=$(dg "$T/v2"); d3=$(dg "$T/v3")

  # rm of a tag sharing its digest with another tag.
  check "$kind: rm _tags/v1 (latest shares its digest)" rm "$T/v1"
  check_eq "$kind: v1 is gone from the mount at once (ttl is 60 s)" "latest production v2 v3" "$(ls1 "$T")"
  check_eq "$kind: ... and from the registry; latest stays" "latest production v2 v3" "$(tags_of team/app)"
  check_eq "$kind: latest still resolves to the same manifest" "$d1" \
    "$(skopeo_x inspect --raw "docker://$h/team/app:latest" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
  check "$kind: the shared manifest is still there" test -f "$M/$d1/manifest.json"

  # rm of a tag with its own digest.
  check "$kind: rm _tags/v2 (own digest)" rm "$T/v2"
  check_eq "$kind: v2 is gone (mount)" "latest production v3" "$(ls1 "$T")"
  check_eq "$kind: v2 is gone (registry)" "latest production v3" "$(tags_of team/app)"
  check_fails "$kind: rm of a missing tag fails" rm "$T/nope"
  if [ "$kind" = regfs ]; then
    # DELETE by tag leaves the manifest, untagged: the repo-manifests extension shows it.
    check "$kind: the untagged manifest is still listed in _manifests (repo-manifests)" \
      bash -c "ls '$M' | grep -qx '$d2'"
    check "$kind: rmdir reaches the untagged manifest" rmdir "$M/$d2"
    check_fails "$kind: ... and it is gone" bash -c "ls '$M' | grep -qx '$d2'"
  fi

  # ln -s: tag a manifest; across repositories.
  check "$kind: ln -s ../_manifests/<digest> _tags/v1again" ln -s "../_manifests/$d1" "$T/v1again"
  check_eq "$kind: the new tag is in the registry" "latest production v1again v3" "$(tags_of team/app)"
  check_eq "$kind: ... and reads back through the mount" "../_manifests/$d1" "$(readlink "$T/v1again")"
  local od; od=$(dg "$mnt/other/_tags/base")
  check "$kind: ln -s into another repository (blob mount + put)" \
    ln -s "../../../other/_manifests/$od" "$T/from-other"
  check_eq "$kind: the copied tag is in the registry" "$od" \
    "$(skopeo_x inspect --raw "docker://$h/team/app:from-other" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
  check "$kind: ... with its layers readable in the new repository" \
    cmp "$mnt/other/_manifests/$od/layers/0.tar.gz" "$M/$od/layers/0.tar.gz"
  check_fails "$kind: ln -s to an existing tag fails" ln -s "../_manifests/$d1" "$T/v3"

  # mv renames.
  check "$kind: mv _tags/v1again _tags/renamed" mv "$T/v1again" "$T/renamed"
  check_eq "$kind: mv shows in the registry" "from-other latest production renamed v3" "$(tags_of team/app)"
  check_eq "$kind: renamed points where v1again did" "../_manifests/$d1" "$(readlink "$T/renamed")"

  # --protect.
  out=$(rm "$T/production" 2>&1)
  check_eq "$kind: rm of a protected tag: EPERM" 1 "$(grep -c 'Operation not permitted' <<<"$out")"
  check "$kind: ... and a log line names the rule" grep -q "protect rule 'production'" "$MOUNT_LOG"
  out=$(mv "$T/production" "$T/prod2" 2>&1)
  check_eq "$kind: mv of a protected tag: EPERM" 1 "$(grep -c 'Operation not permitted' <<<"$out")"
  out=$(rmdir "$M/$d3" 2>&1)
  check_eq "$kind: rmdir of a manifest a protected tag points at: EPERM" 1 "$(grep -c 'Operation not permitted' <<<"$out")"
  check_eq "$kind: protected tags untouched" "from-other latest production renamed v3" "$(tags_of team/app)"

  # rmdir deletes a manifest and its tags.
  check "$kind: rmdir _manifests/<digest of latest, renamed>" rmdir "$M/$d1"
  check_eq "$kind: its tags are gone (registry)" "from-other production v3" "$(tags_of team/app)"
  check_eq "$kind: its tags are gone (mount)" "from-other production v3" "$(ls1 "$T")"
  check_fails "$kind: the manifest dir is gone" test -e "$M/$d1"

  # Other writes.
  out=$(touch "$T/x" 2>&1); check_eq "$kind: creating a file: EROFS" 1 "$(grep -c 'Read-only' <<<"$out")"
  out=$(mkdir "$mnt/team/new" 2>&1); check_eq "$kind: mkdir: EROFS" 1 "$(grep -c 'Read-only' <<<"$out")"
  unmount "$mnt"

  # -o ro: nothing is writable.
  start_regfs_mount "$REGISTRY_URL" "$mnt" -o ro --cache-dir "$WORK/cache-$kind" || { fail "$kind: ro mount"; return; }
  out=$(rm "$T/v3" 2>&1); check_eq "$kind: -o ro: rm is EROFS" 1 "$(grep -c 'Read-only' <<<"$out")"
  out=$(ln -s "../_manifests/$d3" "$T/x" 2>&1); check_eq "$kind: -o ro: ln -s is EROFS" 1 "$(grep -c 'Read-only' <<<"$out")"
  check_eq "$kind: -o ro: tags untouched" "from-other production v3" "$(tags_of team/app)"
  unmount "$mnt"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
done_testing
