#!/bin/bash
# cleanup_tool.sh — tools/regfs-cleanup (docs/cleanup.md).
#  1. On a tree shaped like the regfs mount (built here: _tags symlinks with
#     backdated mtimes, _manifests/<digest>/manifest.json), so every policy can be
#     checked against values computed independently by construction: which tags,
#     and how many bytes become unreferenced (blobs shared across repositories and
#     index children included); the find one-liner of docs/cleanup.md picks the
#     same tags; --apply removes exactly those.
#  2. When the regfs mount is built: the same tool on a real mount of
#     docker-registry 2.8.2, dry run bytes = sizes computed from skopeo's manifests.
. "$(dirname "$0")/lib.sh"

CLEANUP=$REGFS_SRC/tools/regfs-cleanup
need_bin jq find numfmt

T=$WORK/tree
DAY=86400
NOW=$(date +%s)
# blob NAME — a fake digest for NAME (stable within the run).
blob() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"; }
# image REPO MANIFEST_NAME CONFIG_SIZE LAYER:SIZE… — writes manifest.json, prints its digest.
image() {
  local repo=$1 name=$2 csize=$3; shift 3
  local layers="" l
  for l in "$@"; do layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$(blob "${l%%:*}")\",\"size\":${l##*:}}"; done
  local json="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$(blob "cfg-$name")\",\"size\":$csize},\"layers\":[$layers]}"
  local d="sha256:$(printf '%s' "$json" | sha256sum | cut -d' ' -f1)"
  mkdir -p "$T/$repo/_manifests/$d"
  printf '%s' "$json" >"$T/$repo/_manifests/$d/manifest.json"
  echo "$d"
}
# tag REPO TAG DIGEST AGE_DAYS — symlink with mtime AGE_DAYS (+1 h) ago.
tag() {
  mkdir -p "$T/$1/_tags"
  ln -sfn "../_manifests/$3" "$T/$1/_tags/$2"
  touch -h -d "@$((NOW - $4 * DAY - 3600))" "$T/$1/_tags/$2"
}
msize() { stat -c %s "$T/$1/_manifests/$2/manifest.json"; }

# team/app: sha-1..sha-6 aged 1,3,5,9,12,20 days; latest = sha-6's image (age 20).
# Layer "base" (1000 B) is shared by every image and by lib; "big-N" is per image.
declare -A D
for i in 1 2 3 4 5 6; do
  D[app$i]=$(image team/app "app$i" 100 base:1000 "big-$i:$((i * 10000))")
done
ages=(0 1 3 5 9 12 20)
for i in 1 2 3 4 5 6; do tag team/app "sha-$i" "${D[app$i]}" "${ages[$i]}"; done
tag team/app latest "${D[app6]}" 20
tag team/app production "${D[app5]}" 12
# lib: old tag sharing big-4's layer with team/app sha-4 (so big-4 stays referenced).
D[lib]=$(image lib lib1 50 base:1000 big-4:40000)
tag lib old "${D[lib]}" 30
# multi: an index (old) whose children are only reachable through it.
c1=$(image multi m-amd64 70 "m-a:5000")
c2=$(image multi m-arm64 70 "m-b:6000")
idx="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$c1\",\"size\":$(msize multi "$c1")},{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$c2\",\"size\":$(msize multi "$c2")}]}"
D[idx]="sha256:$(printf '%s' "$idx" | sha256sum | cut -d' ' -f1)"
mkdir -p "$T/multi/_manifests/${D[idx]}"; printf '%s' "$idx" >"$T/multi/_manifests/${D[idx]}/manifest.json"
tag multi idx "${D[idx]}" 15
tag multi fresh "${D[idx]}" 2
mkdir -p "$T/.regfs" "$T/.layers" "$T/.rootfs"

sorted_would() { grep '^would delete' | sed 's/^would delete \([^ ]*\) .*/\1/' | sort; }
bytes_of() { sed -n 's/.* \([0-9][0-9]*\) bytes .*/\1/p' | tail -n1; }

# --older-than 7 --keep latest,production: team/app sha-4 (9 d), sha-6 (20 d); sha-5 (12 d) too;
# lib:old (30 d); multi:idx (15 d) but multi:fresh keeps the index alive.
out=$("$CLEANUP" --older-than 7 --keep latest,production "$T")
check_eq "--older-than 7 --keep latest,production: the tags" \
  "$(printf '%s\n' lib:old multi:idx team/app:sha-4 team/app:sha-5 team/app:sha-6)" "$(sorted_would <<<"$out")"
# Unreferenced afterwards: lib's manifest + config (big-4 is still used by sha-4? no: sha-4 is
# deleted too, so big-4 goes); sha-4's manifest, config, big-4. sha-5/sha-6 images stay (production,
# latest). base stays. multi stays (fresh).
want=$(( $(msize lib "${D[lib]}") + 50 + $(msize team/app "${D[app4]}") + 100 + 40000 ))
check_eq "--older-than 7: bytes that become unreferenced" "$want" "$(bytes_of <<<"$out")"

out=$("$CLEANUP" --keep-last 2 --keep 'latest,prod*' --repos 'team/*' "$T")
check_eq "--keep-last 2 --repos 'team/*': the 4 oldest unprotected tags of team/app" \
  "$(printf '%s\n' team/app:sha-3 team/app:sha-4 team/app:sha-5 team/app:sha-6)" "$(sorted_would <<<"$out")"
# sha-3 and sha-4 images become unreferenced except big-4, which lib:old still uses.
want=$(( $(msize team/app "${D[app3]}") + 100 + 30000 + $(msize team/app "${D[app4]}") + 100 ))
check_eq "--keep-last 2: bytes (a layer shared with another repository is not counted)" "$want" "$(bytes_of <<<"$out")"

out=$("$CLEANUP" --older-than 10 --repos multi "$T")
check_eq "an index tag whose digest another tag keeps frees nothing" \
  "multi:idx|0" "$(sorted_would <<<"$out" | paste -sd' ')|$(bytes_of <<<"$out")"
out=$("$CLEANUP" --older-than 1 --repos multi "$T")
want=$(( $(msize multi "${D[idx]}") + $(msize multi "$c1") + 70 + 5000 + $(msize multi "$c2") + 70 + 6000 ))
check_eq "deleting every tag of an index frees the index, its children and their blobs" "$want" "$(bytes_of <<<"$out")"

check_eq "without --older-than/--keep-last it refuses (exit 2)" 2 "$("$CLEANUP" --keep latest "$T" >/dev/null 2>&1; echo $?)"
check_eq "nothing deleted by a dry run" 11 "$(find "$T" -path '*/_tags/*' -type l | wc -l)"

# docs/cleanup.md's one-liner (without -delete) picks the same tags.
find_sel=$(find "$T" -path '*/_tags/*' -mtime +7 ! -name latest ! -name production -print |
  sed "s|^$T/||; s|/_tags/|:|" | sort)
check_eq "find -mtime +7 selects the same tags as --older-than 7" \
  "$(printf '%s\n' lib:old multi:idx team/app:sha-4 team/app:sha-5 team/app:sha-6)" "$find_sel"

check "--apply deletes" "$CLEANUP" --older-than 7 --keep latest,production --apply "$T"
check_eq "exactly those tags are gone" \
  "$(printf '%s\n' multi:fresh team/app:latest team/app:production team/app:sha-1 team/app:sha-2 team/app:sha-3)" \
  "$(find "$T" -path '*/_tags/*' -type l | sed "s|^$T/||; s|/_tags/|:|" | sort)"

# --- 2. a real mount ---------------------------------------------------------------
need_ours "$REGFS_MOUNT"
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
  OCI=$WORK/oci
  IMG1=$(make_image "$OCI" one 2 20K 30K) && IMG2=$(make_image "$OCI" two 1 40K) ||
    bail "umoci could not build images"
  start_docker_registry "$WORK/data" || bail "docker-registry did not start"
  H=$REGISTRY_HOST
  skopeo_copy "$IMG1" "docker://$H/team/app:v1" && skopeo_copy "$IMG2" "docker://$H/team/app:v2" &&
    skopeo_copy "$IMG1" "docker://$H/other:keep" || bail "skopeo could not push"
  if start_regfs_mount "$REGISTRY_URL" "$WORK/mnt" --ttl 1; then
    out=$("$CLEANUP" --keep-last 0 --keep v1 --repos team/app "$WORK/mnt")
    check_eq "mount: dry run picks team/app:v2" "team/app:v2" "$(sorted_would <<<"$out")"
    skopeo_x inspect --raw "docker://$H/team/app:v2" >"$WORK/m2.json"   # a file: keeps a final newline
    want=$(( $(stat -c %s "$WORK/m2.json") + $(jq '[.config.size, .layers[].size] | add' "$WORK/m2.json") ))
    check_eq "mount: bytes = v2's manifest + config + layer (from skopeo)" "$want" "$(bytes_of <<<"$out")"
  else
    fail "regfs mounts docker-registry"
  fi
else
  log "no FUSE on this machine (/dev/fuse, fusermount3): the real-mount part is skipped"
fi

done_testing
