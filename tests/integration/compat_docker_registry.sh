#!/bin/bash
# A data directory written by Debian's docker-registry 2.8.2 is served by
# regfs-registry unchanged, and one written by regfs-registry is served by docker-registry.
# For each direction WRITER→READER: the writer gets images (several tags, nested names, a
# 2-platform index) pushed by skopeo and pulled back as the baseline; then the reader,
# on the same directory, must serve byte-identical pulls, the same catalog and tags, and
# leave the writer's files untouched; finally the reader pushes an image the writer pulls.
# COMPAT_PAIRS="docker:docker" self-tests the script without regfs-registry.
. "$(dirname "$0")/lib.sh"

need_bin "$DOCKER_REGISTRY"
if [ -n "${COMPAT_PAIRS:-}" ]; then pairs=$COMPAT_PAIRS; else
  need_regfs_registry
  pairs="docker:regfs regfs:docker"
fi

img1=$(make_image "$WORK/oci" v1 3 200K 50K 10K) || bail "make_image"
img2=$(make_image "$WORK/oci" v2 2 100K 30K) || bail "make_image"
img3=$(make_image "$WORK/oci" v3 2 80K 20K) || bail "make_image"
idx=$(make_index "$WORK/oci" multi) || bail "make_index"
refs="team/app:v1 team/app:v1-again team/app:v2 team/sub/deep/svc:x multi:m"

# snapshot DATA — path + sha256 of every file in the storage root (uploads excluded).
snapshot() { (cd "$1" && find . -type f ! -path '*/_uploads/*' -print0 | sort -z | xargs -0 sha256sum); }
catalog() { curl -s "$1/v2/_catalog?n=1000" | jq -r '.repositories | sort | .[]'; }
tags() { curl -s "$1/v2/$2/tags/list" | jq -r '.tags | sort | .[]'; }

for pair in $pairs; do
  w=${pair%%:*}; r=${pair##*:}; tag="$w→$r"
  data=$WORK/data-$w-$r; out=$WORK/out-$w-$r; mkdir -p "$out"

  # --- the writer fills the directory ------------------------------------------------
  start_registry "$w" "$data" || { fail "$tag: $w starts"; continue; }
  h=$REGISTRY_HOST
  check "$tag: $w: push team/app:v1" skopeo_copy "$img1" "docker://$h/team/app:v1"
  check "$tag: $w: push team/app:v1-again (same image)" skopeo_copy "$img1" "docker://$h/team/app:v1-again"
  check "$tag: $w: push team/app:v2" skopeo_copy "$img2" "docker://$h/team/app:v2"
  check "$tag: $w: push team/sub/deep/svc:x" skopeo_copy "$img3" "docker://$h/team/sub/deep/svc:x"
  check "$tag: $w: push 2-platform index multi:m" skopeo_copy --all "$idx" "docker://$h/multi:m"
  for ref in $refs; do
    skopeo_copy --all "docker://$h/$ref" "dir:$out/w-${ref//[\/:]/_}" || fail "$tag: $w: baseline pull of $ref"
  done
  catalog "$REGISTRY_URL" >"$out/w-catalog"
  for repo in team/app team/sub/deep/svc multi; do tags "$REGISTRY_URL" "$repo" >"$out/w-tags-${repo//\//_}"; done
  check "$tag: $w's stored blobs match their digests" verify_store_blobs "$data"
  stop_pid "$REGISTRY_PID"
  snapshot "$data" >"$out/files-before"

  # --- the reader serves it ------------------------------------------------------------
  start_registry "$r" "$data" || { fail "$tag: $r starts on $w's data"; continue; }
  h=$REGISTRY_HOST
  catalog "$REGISTRY_URL" >"$out/r-catalog"
  check_files "$tag: $r lists the same catalog" "$out/w-catalog" "$out/r-catalog"
  for repo in team/app team/sub/deep/svc multi; do
    tags "$REGISTRY_URL" "$repo" >"$out/r-tags-${repo//\//_}"
    check_files "$tag: $r lists the same tags of $repo" "$out/w-tags-${repo//\//_}" "$out/r-tags-${repo//\//_}"
  done
  for ref in $refs; do
    d=${ref//[\/:]/_}
    if check "$tag: $r: pull $ref" skopeo_copy --all "docker://$h/$ref" "dir:$out/r-$d"; then
      check "$tag: $r: $ref blobs match their digests" verify_dir_blobs "$out/r-$d"
      check "$tag: $r: $ref byte-identical to $w's pull" diff -r "$out/w-$d" "$out/r-$d"
    fi
  done
  dg=$(sha256sum "$out/w-team_app_v1/manifest.json" | cut -d' ' -f1)
  check_eq "$tag: $r: manifest by digest" "$dg" \
    "$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REGISTRY_URL/v2/team/app/manifests/sha256:$dg" | sha256sum | cut -d' ' -f1)"
  snapshot "$data" >"$out/files-after-read"
  check_files "$tag: $r left $w's files unchanged" "$out/files-before" "$out/files-after-read"

  # --- the reader writes, the writer reads -----------------------------------------------
  check "$tag: $r: push team/new:n1 into $w's data" skopeo_copy "$img2" "docker://$h/team/new:n1"
  check "$tag: $r: delete team/app:v2 (by digest)" skopeo_x delete "docker://$h/team/app:v2"
  check "$tag: $r: pull team/new:n1" skopeo_copy "docker://$h/team/new:n1" "dir:$out/r-new"
  stop_pid "$REGISTRY_PID"
  check "$tag: stored blobs still match their digests" verify_store_blobs "$data"
  start_registry "$w" "$data" || { fail "$tag: $w restarts"; continue; }
  h=$REGISTRY_HOST
  if check "$tag: $w pulls what $r pushed" skopeo_copy "docker://$h/team/new:n1" "dir:$out/w-new"; then
    check "$tag: $w: team/new:n1 byte-identical to $r's pull" diff -r "$out/r-new" "$out/w-new"
  fi
  check_fails "$tag: $w: team/app:v2 deleted by $r stays deleted" skopeo_x inspect "docker://$h/team/app:v2"
  check "$tag: $w: team/app:v1 still pulls" skopeo_copy "docker://$h/team/app:v1" "dir:$out/w-v1-again"
  check "$tag: $w: ...byte-identical" diff -r "$out/w-team_app_v1" "$out/w-v1-again"
  stop_pid "$REGISTRY_PID"
done
done_testing
