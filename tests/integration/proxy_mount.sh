#!/bin/bash
# The mount shows the pull-through cache's repositories like any other. The upstream is
# Debian's docker-registry behind the tests' token issuer; the cache is regfs-registry with
# regfs.proxies [{prefix: hub, …}] and also holds pushed repositories. After skopeo pulled
# two upstream images through it, `regfs http://cache /mnt` lists hub/lib/<name> with its
# tags next to the pushed repositories (not the upstream image nobody pulled), a cached
# manifest read through the mount hashes to its digest, and `du -s -B1` of hub/ and of the
# whole mount equal the sums of the unique blobs (manifests, configs, layers; each rounded
# up to 512 bytes) computed here from the manifests' descriptors — a pushed copy of a
# cached image adds only its blobs that differ — and each of those blobs is stored in the
# cache's root at its size.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/proxy_lib.sh"
proxy_needs
need_regfs_mount
[ "$PROXY_CACHE" = regfs ] || skip_all "the mount checks are about regfs-registry's cache"

upstream_start
app=$(make_image "$WORK/oci" app 3 256K 64K 16K) || bail "make_image app"
tool=$(make_image "$WORK/oci" tool 2 128K 8K) || bail "make_image tool"
never=$(make_image "$WORK/oci" never 1 32K) || bail "make_image never"
loc=$(make_image "$WORK/oci" local 2 64K 4K) || bail "make_image local"
check "upstream: push lib/app:v1 (OCI)" up_push "$app" lib/app:v1
check "upstream: push lib/tool:t1 (Docker schema 2)" up_push "$tool" lib/tool:t1 "${UP_V2S2[@]}"
check "upstream: push lib/never:n1 (never pulled)" up_push "$never" lib/never:n1
cache_start || bail "the cache did not start"

for r in lib/app:v1 lib/tool:t1; do
  check "skopeo: pull hub/$r through the cache" skopeo_copy "docker://$CACHE_HOST/hub/$r" "dir:$WORK/pull-${r//[\/:]/_}"
done
check "push team/local:v1 to the cache's instance" skopeo_copy "$loc" "docker://$CACHE_HOST/team/local:v1"
# the same blobs as the cached lib/app:v1 (its OCI layout), pushed as an ordinary repository
check "push team/copy:v1 (lib/app's image) to the cache's instance" skopeo_copy "$app" "docker://$CACHE_HOST/team/copy:v1"

# blobs_of FILE — "digest size" of a manifest (its own bytes) and of every descriptor in it
blobs_of() {
  echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1) $(stat -c %s "$1")"
  jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$1"
}
{ up_raw lib/app v1 >"$WORK/m-app" && up_raw lib/tool t1 >"$WORK/m-tool"; } || fail "read the upstream's manifests"
skopeo_x inspect --raw "docker://$CACHE_HOST/team/local:v1" >"$WORK/m-local" || fail "read team/local's manifest"
skopeo_x inspect --raw "docker://$CACHE_HOST/team/copy:v1" >"$WORK/m-copy" || fail "read team/copy's manifest"
# du_of FILE… — the sum over the unique blobs the manifests list, each rounded up to 512
du_of() { for f in "$@"; do blobs_of "$f"; done | sort -u | awk '{ s += int(($2 + 511) / 512) * 512 } END { print s + 0 }'; }
HUB_DU=$(du_of "$WORK/m-app" "$WORK/m-tool")
ALL_DU=$(du_of "$WORK/m-app" "$WORK/m-tool" "$WORK/m-local" "$WORK/m-copy")
diag "expected du: hub/ $HUB_DU, all $ALL_DU (team/copy shares lib/app's config and layers)"
check "team/copy references the same layers as lib/app (shared blobs)" \
  test "$(jq -c '.layers' "$WORK/m-copy")" = "$(jq -c '.layers' "$WORK/m-app")"

# the blobs du counts must be stored: each at its path in the cache's root, of its size
stored_as_listed() {
  local dg size f bad=0
  while read -r dg size; do
    f=$(blob_path "$CACHE_DATA" "$dg")
    [ "$(stat -c %s "$f" 2>/dev/null)" = "$size" ] || { echo "$dg ($size bytes) is not stored"; bad=1; }
  done < <(for f in "$@"; do blobs_of "$f"; done | sort -u)
  return $bad
}
check "every blob of the pulled and pushed images is stored in the cache's root, of its size" \
  stored_as_listed "$WORK/m-app" "$WORK/m-tool" "$WORK/m-local" "$WORK/m-copy"

MNT=$WORK/mnt
start_regfs_mount "$CACHE_URL" "$MNT" --cache-dir "$WORK/mcache" || bail "regfs did not mount the cache"
check_eq "mount: the root lists hub next to team" "hub team" "$(ls "$MNT" | paste -sd" " -)"
check_eq "mount: hub/lib lists the two pulled images, not the one nobody pulled" "app tool" "$(ls "$MNT/hub/lib" | paste -sd" " -)"
check_eq "mount: hub/lib/app's tags" "v1" "$(ls "$MNT/hub/lib/app/_tags" | paste -sd" " -)"
check_eq "mount: hub/lib/tool's tags" "t1" "$(ls "$MNT/hub/lib/tool/_tags" | paste -sd" " -)"
check_eq "mount: team lists the pushed repositories" "copy local" "$(ls "$MNT/team" | paste -sd" " -)"
D=$(head -n1 <(blobs_of "$WORK/m-app") | cut -d' ' -f1)
check_eq "mount: hub/lib/app's manifest hashes to the upstream's digest" "${D#sha256:}" \
  "$(sha256sum <"$MNT/hub/lib/app/_manifests/$D/manifest.json" | cut -d' ' -f1)"
check_eq "mount: du -s -B1 of hub/ equals the cached images' unique blobs" "$HUB_DU" \
  "$(du -s -B1 "$MNT/hub" | cut -f1)"
check_eq "mount: du -s -B1 of the root equals every image's unique blobs (each once)" "$ALL_DU" \
  "$(du -s -B1 "$MNT" | cut -f1)"
check_daemon_logs
done_testing
