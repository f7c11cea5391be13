#!/bin/bash
# mount_read.sh — issue 3's checks for the regfs mount (read side), run against
# regfs-registry and Debian's docker-registry 2.8.2 (whichever are available):
#   - images pushed with skopeo under nested names (team/app, team/app/worker),
#     several tags sharing a digest, the same image in two repositories, and
#     an OCI index with two platforms;
#   - ls gives exactly the repositories and the tags (skopeo list-tags);
#   - readlink of each tag = the digest of what skopeo inspect --raw returns;
#   - manifest.json is byte-identical to skopeo inspect --raw;
#   - sha256sum of every layer/config file equals its digest;
#   - du -s -B1 of each _manifests and of the root equals the sum of the unique
#     blobs' sizes rounded up to 512, computed here from the manifests (jq), and
#     df reports the same total;
#   - platforms/ links, xattrs, .regfs/status and stats, EROFS on writes;
#   - a tag pushed after mounting shows within the ttl;
#   - with the registry stopped, ls fails with EIO (bounded by the timeout),
#     and works again after the registry restarts.
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin skopeo umoci jq python3

TTL=2
TIMEOUT=3

# Images (built once, pushed to each registry).
make_image "$WORK/oci" one 2 64K 40000 >/dev/null || bail "make_image one"
make_image "$WORK/oci" two 3 20K 10K 1 >/dev/null || bail "make_image two"
make_image "$WORK/oci" wrk 1 100K >/dev/null || bail "make_image wrk"
make_index "$WORK/oci" idx >/dev/null || bail "make_index"

# push REF... as "SRC_TAG DEST_REPO:TAG"
push_all() {
  local h=$1
  skopeo_copy oci:"$WORK/oci":one "docker://$h/team/app:v1" &&
  skopeo_copy oci:"$WORK/oci":one "docker://$h/team/app:latest" &&
  skopeo_copy oci:"$WORK/oci":two "docker://$h/team/app:v2" &&
  skopeo_copy oci:"$WORK/oci":wrk "docker://$h/team/app/worker:1.0" &&
  skopeo_copy oci:"$WORK/oci":one "docker://$h/lib:shared" &&
  skopeo_copy --all oci:"$WORK/oci":idx "docker://$h/multi/platform:idx"
}
REPOS="lib multi/platform team/app team/app/worker"

raw() { skopeo_x inspect --raw "docker://$REGISTRY_HOST/$1" >"$2"; }   # raw REF FILE
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# blobs_of REPO DIGEST — "digest size" of the manifest, its config and layers, and
# (for an index) the same for every child, one per line; from skopeo + jq only.
blobs_of() {
  local f=$WORK/b-$RANDOM$RANDOM.json c
  raw "$1@$2" "$f" || return 1
  echo "$2 $(stat -c %s "$f")"
  jq -r '(.config // empty | "\(.digest) \(.size)"), (.layers // [] | .[] | "\(.digest) \(.size)")' "$f"
  for c in $(jq -r '.manifests // [] | .[].digest' "$f"); do blobs_of "$1" "$c"; done
}
# du_of "REPO..." — sum over unique digests of ceil(size/512)*512.
du_of() {
  local r t d
  for r in $1; do
    for t in $(skopeo_x list-tags "docker://$REGISTRY_HOST/$r" | jq -r '.Tags[]'); do
      raw "$r:$t" "$WORK/t.json"; d=$(sha "$WORK/t.json")
      blobs_of "$r" "$d"
    done
  done | sort -u -k1,1 | awk '{ s += int(($2 + 511) / 512) * 512 } END { print s + 0 }'
}
ls1() { ls -1 "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

run_kind() {
  local kind=$1 mnt=$WORK/mnt-$1 r t d f ok_all out rc
  log "=== $kind ==="
  start_registry "$kind" "$WORK/data-$kind" || { fail "$kind: registry starts"; return; }
  local host=$REGISTRY_HOST cfg=$REGISTRY_CONFIG rpid=$REGISTRY_PID
  check "$kind: skopeo pushes the images" push_all "$host" || return
  start_regfs_mount "$REGISTRY_URL" "$mnt" --ttl $TTL --timeout $TIMEOUT \
    --cache-dir "$WORK/cache-$kind" || { fail "$kind: regfs mounts"; return; }
  local mpid=$MOUNT_PID

  # --- tree -------------------------------------------------------------------
  check_eq "$kind: ls / = top-level names" "lib multi team" "$(ls1 "$mnt")"
  check_eq "$kind: ls team = app" "app" "$(ls1 "$mnt/team")"
  check_eq "$kind: a repository with a nested one" "_manifests _tags worker" "$(ls1 "$mnt/team/app")"
  check_eq "$kind: a namespace has no _tags" "platform" "$(ls1 "$mnt/multi")"
  for r in $REPOS; do
    check_eq "$kind: ls $r/_tags = skopeo list-tags" \
      "$(skopeo_x list-tags "docker://$host/$r" | jq -r '.Tags[]' | sort | tr '\n' ' ' | sed 's/ $//')" \
      "$(ls1 "$mnt/$r/_tags")"
  done

  # --- tags, manifests, blobs -----------------------------------------------------
  ok_all=1
  for r in $REPOS; do
    for t in $(ls "$mnt/$r/_tags"); do
      raw "$r:$t" "$WORK/raw.json" || { fail "$kind: skopeo inspect $r:$t"; ok_all=0; continue; }
      d=$(sha "$WORK/raw.json")
      check_eq "$kind: readlink $r/_tags/$t = digest of skopeo's manifest" "../_manifests/$d" \
        "$(readlink "$mnt/$r/_tags/$t")" || ok_all=0
      f=$mnt/$r/_manifests/$d/manifest.json
      [ -e "$f" ] || f=$mnt/$r/_manifests/$d/index.json
      check "$kind: $r:$t manifest bytes = skopeo inspect --raw" cmp "$WORK/raw.json" "$f" || ok_all=0
    done
  done
  check_eq "$kind: shared-digest tags point at one manifest" \
    "$(readlink "$mnt/team/app/_tags/v1")" "$(readlink "$mnt/team/app/_tags/latest")"
  check_eq "$kind: skopeo's .Digest agrees" "$(skopeo_x inspect --format '{{.Digest}}' "docker://$host/team/app:v2")" \
    "$(readlink "$mnt/team/app/_tags/v2" | sed 's|.*/||')"

  local bad="" n=0
  while IFS= read -r f; do
    n=$((n + 1))
    d=$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.regfs.digest").decode())' "$f")
    [ "$(sha "$f")" = "$d" ] || bad+=" $f"
  done < <(find "$mnt/team" "$mnt/lib" "$mnt/multi" -path '*/layers/*' -type f -o -name config.json)
  check_eq "$kind: sha256sum of all $n layer/config files = their digest (xattr)" "" "$bad"
  r=$mnt/team/app/_manifests/$(readlink "$mnt/team/app/_tags/v2" | sed 's|.*/||')
  # (each layer N.<ext> follows N, the link to its contents in .layers/)
  check_eq "$kind: layers in manifest order, named by media type" \
    "$(jq -r '.layers | to_entries[] | "\(.key) \(.key).\(if (.value.mediaType|test("gzip")) then "tar.gz" elif (.value.mediaType|test("zstd")) then "tar.zst" else "tar" end)"' "$r/manifest.json" | tr '\n' ' ' | sed 's/ $//')" \
    "$(ls1 "$r/layers")"
  check_eq "$kind: layer N is the manifest's layers[N]" "$(jq -r '.layers[1].digest' "$r/manifest.json")" \
    "$(sha "$(ls -d "$r"/layers/1.*)")"
  check_eq "$kind: xattr user.regfs.mediatype of a manifest dir" "$(jq -r '.mediaType // "application/vnd.oci.image.manifest.v1+json"' "$r/manifest.json")" \
    "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.regfs.mediatype").decode())' "$r")"

  # --- index -------------------------------------------------------------------
  r=$mnt/multi/platform/_manifests/$(readlink "$mnt/multi/platform/_tags/idx" | sed 's|.*/||')
  check_eq "$kind: index dir holds index.json + platforms" "index.json platforms" "$(ls1 "$r")"
  check_eq "$kind: platforms/ = the index's platforms" "linux-amd64 linux-arm64" "$(ls1 "$r/platforms")"
  check_eq "$kind: platform link -> the child manifest" \
    "../../$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$r/index.json")" \
    "$(readlink "$r/platforms/linux-arm64")"
  check "$kind: the child manifest is listed in _manifests and readable" \
    cmp <(ls "$mnt/multi/platform/_manifests" | sort) <( (basename "$r"; jq -r '.manifests[].digest' "$r/index.json") | sort)
  check "$kind: following a platform link reaches manifest.json" test -s "$r/platforms/linux-amd64/manifest.json"

  # --- du / df ---------------------------------------------------------------------
  for r in $REPOS; do
    check_eq "$kind: du -s -B1 $r/_manifests = unique blobs (skopeo+jq)" "$(du_of "$r")" \
      "$(du -s -B1 "$mnt/$r/_manifests" | cut -f1)"
  done
  local total; total=$(du_of "$REPOS")
  check_eq "$kind: du -s -B1 of the root = the registry's deduplicated total" "$total" \
    "$(du -s -B1 "$mnt" | cut -f1)"
  check_eq "$kind: df reports that total as used" "$total" "$(df -B1 --output=used "$mnt" | tail -n1 | tr -d ' ')"
  check_eq "$kind: a blob has the same inode number in every repository" \
    "$(stat -c %i "$mnt/team/app/_manifests/$(readlink "$mnt/team/app/_tags/v1" | sed 's|.*/||')/layers/0.tar.gz")" \
    "$(stat -c %i "$mnt/lib/_manifests/$(readlink "$mnt/lib/_tags/shared" | sed 's|.*/||')/layers/0.tar.gz")"

  # --- .regfs, read-only ---------------------------------------------------------
  check "$kind: .regfs/status names the registry" grep -qF "$REGISTRY_URL" "$mnt/.regfs/status"
  # (manifest GETs may be 0: on regfs-registry bulk-manifests brings every manifest and
  # repo-manifests re-validates tags after the ttl)
  check "$kind: .regfs/stats is JSON with request counts" \
    jq -e '.requests.total > 0 and (.requests.manifest | type == "number") and (.cache.manifests.hits >= 0)' "$mnt/.regfs/stats"
  out=$(touch "$mnt/team/app/_tags/new" 2>&1)
  check_eq "$kind: creating a file: EROFS" 1 "$(grep -c 'Read-only file system' <<<"$out")"
  out=$(mkdir "$mnt/team/app/_manifests/x" 2>&1)
  check_eq "$kind: mkdir: EROFS (tag writes: mount_write.sh)" 1 "$(grep -c 'Read-only file system' <<<"$out")"

  # --- a new tag shows within the ttl ---------------------------------------------
  ls "$mnt/team/app/_tags" >/dev/null
  skopeo_copy oci:"$WORK/oci":two "docker://$host/team/app:v3"
  if wait_for $((TTL + 5)) bash -c "ls '$mnt/team/app/_tags' | grep -qx v3"; then
    ok "$kind: a tag pushed after mounting shows within the ttl"
  else
    fail "$kind: a tag pushed after mounting shows within the ttl" "$(ls "$mnt/team/app/_tags")"
  fi
  check_eq "$kind: new tag resolves" "$(readlink "$mnt/team/app/_tags/v2")" "$(readlink "$mnt/team/app/_tags/v3")"

  # --- registry down: EIO within the timeout, then recovery ---------------------------
  stop_pid "$rpid"
  sleep $((TTL + 1))
  out=$(with_timeout $((TIMEOUT + 10)) ls "$mnt/team/app/_tags" 2>&1); rc=$?
  [ $rc -ne 124 ] && [ $rc -ne 137 ] && ok "$kind: ls with the registry down returns (no hang)" ||
    fail "$kind: ls with the registry down returns (no hang)" "killed by timeout"
  check_eq "$kind: ... and fails with EIO" 1 "$(grep -c 'Input/output error' <<<"$out")"
  out=$(with_timeout $((TIMEOUT + 10)) ls "$mnt" 2>&1)
  check_eq "$kind: ls of the root fails with EIO too" 1 "$(grep -c 'Input/output error' <<<"$out")"
  check "$kind: the mount logged why" grep -q "failed" "$WORK/regfs-mount-mnt-$kind.log"
  start_registry "$kind" "$cfg" || { fail "$kind: registry restarts"; return; }
  if wait_for 20 bash -c "ls '$mnt/team/app/_tags' | grep -qx v3"; then
    ok "$kind: works again after the registry restarts"
  else
    fail "$kind: works again after the registry restarts" "$(ls "$mnt/team/app/_tags" 2>&1)"
  fi
  check "$kind: regfs is still running" kill -0 "$mpid"
  unmount "$mnt"
  check_fails "$kind: fusermount3 -u unmounted it" mountpoint -q "$mnt"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
done_testing
