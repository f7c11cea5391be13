#!/bin/bash
# layers_smoke.sh — the mount's layer views end to end, quickly: a 3-layer image
# built with umoci (files, a hard link, a symlink; an opaque directory and a
# whiteout in upper layers) is pushed to regfs-registry and to Debian's
# docker-registry (no push-time index there: the mount builds it) and mounted;
# what _tags/v1/rootfs/ and _manifests/<digest>/layers/N/ show is compared with
# `umoci unpack` of the same image and with `tar -t` of each layer blob.
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin skopeo umoci jq
kinds=$(registry_kinds)
[ -n "$kinds" ] || skip_all "no registry available"

oci=$WORK/oci
umoci init --layout "$oci" >&2 && umoci new --image "$oci:v1" >&2 &&
  umoci config --image "$oci:v1" --os linux --architecture amd64 >&2 || bail "umoci new"
r0=$WORK/r0; r1=$WORK/r1
mkdir -p "$r0/etc" "$r0/usr/bin" "$r0/opt" "$r1/etc" "$r1/opt"
printf 'ID=zero\n' >"$r0/etc/os-release"
printf 'bye\n' >"$r0/etc/gone"
printf 'a\n' >"$r0/opt/a"
head -c 3M /dev/urandom >"$r0/usr/bin/tool"
ln "$r0/usr/bin/tool" "$r0/usr/bin/tool2"
ln -s tool "$r0/usr/bin/tool-link"
printf 'ID=one\n' >"$r1/etc/os-release"
printf 'b\n' >"$r1/opt/b"
# umoci insert ends its tar without padding the last file's data (and without
# the end-of-archive blocks), which the layer index refuses as truncated: an
# empty directory sorting last keeps every layer here well-formed.
mkdir -p "$r1/etc/zz" "$r1/opt/zz"
umoci insert --image "$oci:v1" "$r0" / >&2 || bail "layer 0"
umoci insert --image "$oci:v1" "$r1/etc" /etc >&2 || bail "layer 1"
umoci insert --image "$oci:v1" --opaque "$r1/opt" /opt >&2 || bail "layer 2"
umoci insert --image "$oci:v1" --whiteout /etc/gone >&2 || bail "layer 3"
umoci unpack --image "$oci:v1" "$WORK/bundle" >&2 || bail "umoci unpack"
ref=$WORK/bundle/rootfs

for k in $kinds; do
  start_registry "$k" "$WORK/data-$k" || { fail "$k: registry starts"; continue; }
  skopeo_copy "oci:$oci:v1" "docker://$REGISTRY_HOST/team/app:v1" || { fail "$k: push"; stop_pid "$REGISTRY_PID"; continue; }
  mnt=$WORK/mnt-$k
  start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-$k" || { fail "$k: mount"; stop_pid "$REGISTRY_PID"; continue; }

  m=$mnt/team/app/_tags/v1
  check_eq "$k: rootfs/etc/os-release is the upper layer's" "$(cat "$ref/etc/os-release")" \
    "$(cat "$m/rootfs/etc/os-release")"
  check "$k: rootfs/usr/bin/tool is byte-identical" cmp "$ref/usr/bin/tool" "$m/rootfs/usr/bin/tool"
  check "$k: the whiteout deleted etc/gone" test ! -e "$m/rootfs/etc/gone"
  check_eq "$k: the opaque /opt hides the lower opt/a" "b zz" "$(ls "$m/rootfs/opt" | xargs)"
  check "$k: diff -r --no-dereference of rootfs and umoci unpack finds nothing" \
    diff -r --no-dereference "$ref/" "$m/rootfs/"
  check_eq "$k: a hard link shares the inode" "$(stat -c %i "$m/rootfs/usr/bin/tool")" \
    "$(stat -c %i "$m/rootfs/usr/bin/tool2")"
  check_eq "$k: readlink in rootfs" "tool" "$(readlink "$m/rootfs/usr/bin/tool-link")"

  # layer by layer: what the blob's tar lists (and the directories its names
  # imply, which a layer need not hold); whiteouts shown as they are
  with_parents() { awk -F/ '{ p = ""; for (i = 1; i <= NF; i++) { p = p (i > 1 ? "/" : "") $i; print p } }' | sort -u; }
  man=$(readlink -f "$m")
  i=0
  for d in $(jq -r '.layers[].digest' "$man/manifest.json"); do
    want=$(tar -tzf "$man/layers/$i.tar.gz" 2>/dev/null | sed 's|^/||; s|^\./||; s|/$||' | grep -v '^\.\?$' | with_parents)
    got=$(cd "$man/layers/$i/" && find . -mindepth 1 | sed 's|^\./||' | sort)
    check_eq "$k: layers/$i lists what tar -t of its blob lists" "$want" "$got"
    check_eq "$k: layers/$i is a relative link to .layers/$d" "../../../../../.layers/$d" \
      "$(readlink "$man/layers/$i")"
    i=$((i + 1))
  done
  check "$k: layers/0/usr/bin/tool is the file inserted" cmp "$r0/usr/bin/tool" "$man/layers/0/usr/bin/tool"
  check "$k: layers/3 shows its whiteout" test -f "$man/layers/3/etc/.wh.gone"

  check_eq "$k: .layers and .rootfs list nothing" "" "$(ls -A "$mnt/.layers" "$mnt/.rootfs" | grep -v ':$' | xargs)"
  check_eq "$k: the views have no blocks (du -s)" "0" "$(du -s -B1 "$man/rootfs/" | cut -f1)"
  stats=$(cat "$mnt/.regfs/stats")
  check "$k: stats: every layer indexed (built here or fetched)" test "$(jq '.layer_views.indexes_built + .layer_views.indexes_fetched' <<<"$stats")" -ge 4
  check "$k: stats: bytes fetched for the views" test "$(jq .layer_views.bytes_fetched <<<"$stats")" -gt 0
  unmount "$mnt"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
done
done_testing
