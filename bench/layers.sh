#!/bin/bash
# bench/layers.sh — time to the first byte of a small file deep in a large gzip layer,
# five ways, in one run on the same data, loopback only. Not a test: prints numbers and
# ratios against the baseline (a), asserts nothing (each way's bytes are checked though).
#
#   (a) skopeo copy + tar -x of that file         the baseline users have today
#   (b) regfs, cold, no index                     regfs-registry with indexing off: the
#                                                 mount builds the index (one pass)
#   (c) regfs, cold, push-time index              regfs-registry with regfs.layerindex on
#   (d) regfs, warm                               the mount of (c): another small file of
#                                                 the same directory (index in memory)
#   (e) archivemount on the downloaded blob       mount + first byte (the download is (a)'s)
#
# Also: bytes transferred for each, the index's size as a share of the layer, and the push
# time of the image to regfs-registry with and without background indexing.
#
# Usage: bench/layers.sh [--input-mb N] [--src DIR]
#   --input-mb N   uncompressed MB of files put into the layer (default 1000, which gives
#                  a gzip blob of 300 MB+ from /usr/lib)
#   --src DIR      where the files come from (default /usr/lib: shared libraries)
# Environment: REGFS_BUILD (default ./build; use a release build).
set -u
cd "$(dirname "$0")/.."
INPUT_MB=1000; SRC=/usr/lib
while [ $# -gt 0 ]; do
  case $1 in
    --input-mb) INPUT_MB=$2; shift 2 ;;
    --src) SRC=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench/layers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# shellcheck source=../tests/integration/lib.sh
. tests/integration/lib.sh
# shellcheck source=../tests/integration/layers_lib.sh
. tests/integration/layers_lib.sh
for b in "$REGFS_REGISTRY" "$REGFS_MOUNT" skopeo curl jq bc gzip tar python3 archivemount; do
  [ -x "$b" ] || command -v "$b" >/dev/null || { echo "bench: $b missing (build first; tools/setup installs the rest)" >&2; exit 1; }
done
bt=$(meson introspect --buildoptions "$REGFS_BUILD" 2>/dev/null | jq -r '.[] | select(.name == "buildtype") | .value' 2>/dev/null)
[ "$bt" = release ] || echo "bench: note: $REGFS_BUILD is buildtype '${bt:-?}', not release" >&2
say() { echo "bench: $*" >&2; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.3f'; }

# --- the layer: files of SRC in sorted order, up to INPUT_MB, gzip -6 -----------------------
say "building a layer from $SRC (${INPUT_MB} MB of files)…"
python3 - "$SRC" "$INPUT_MB" "$WORK/layer.tar" "$WORK/pick.txt" <<'PY' || exit 1
import os, sys, tarfile
src, limit, out, pick = sys.argv[1], int(sys.argv[2]) << 20, sys.argv[3], sys.argv[4]
total, smalls = 0, []
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for d, dirs, files in os.walk(src):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(d, n)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            try:
                t.add(p, arcname=os.path.relpath(p, "/"), recursive=False)
            except OSError:
                continue
            s = os.path.getsize(p)
            total += s
            rel = os.path.relpath(p, "/")
            if 1024 <= s <= 65536 and rel.count("/") >= 3:
                smalls.append(rel)
            if total >= limit:
                break
        if total >= limit:
            break
# the last two small files at depth >= 4 components: deep and near the end of the layer
with open(pick, "w") as f:
    f.write("\n".join(smalls[-2:]) + "\n")
PY
ULEN=$(stat -c %s "$WORK/layer.tar")
gzip -6 -n "$WORK/layer.tar" || exit 1
mapfile -t PICK <"$WORK/pick.txt"
FILE=${PICK[1]}; FILE2=${PICK[0]}
[ "$(dirname "$FILE")" = "$(dirname "$FILE2")" ] || say "note: the warm file is in another directory ($FILE2)"
BLOB=$WORK/layer.tar.gz
BLEN=$(stat -c %s "$BLOB")
SHA=$(tar -xzOf "$BLOB" "$FILE" | sha256sum | cut -d' ' -f1)
SHA2=$(tar -xzOf "$BLOB" "$FILE2" | sha256sum | cut -d' ' -f1)
say "layer: $BLEN bytes gzip ($ULEN uncompressed); file: /$FILE"

# the image: our gzip blob kept as it is (tools/layer_image.py wrap)
layer_image wrap "$WORK/oci" big "$BLOB" >"$WORK/wrap.txt" || exit 1
MDIG=$(awk '$1 == "manifest" { print $2 }' "$WORK/wrap.txt")
LDIG=$(awk '$1 == "layer" { print $3 }' "$WORK/wrap.txt")
say "image $MDIG, layer $LDIG"

# --- registries: indexing off and on; pushes timed -------------------------------------------
export REGISTRY_LOG_LEVEL=error REGISTRY_LOG_ACCESSLOG_DISABLED=true
# push URL — seconds of a skopeo copy of the image to URL/bench/layer:v1
push() { local s e; s=$(now); skopeo_copy "oci:$WORK/oci:big" "docker://${1#http://}/bench/layer:v1" || return 1; e=$(now); secs "$s" "$e"; }
# min A B — the smaller of two times
min() { if [ "$(echo "$1 < $2" | bc -l)" = 1 ]; then echo "$1"; else echo "$2"; fi; }
# Three rounds in alternating order (off on, on off, off on), each to a fresh pair of
# registries (a registry that has the blob, or skopeo's blob cache, would turn the push
# into a cross-repository mount), the best of each kept. The first pair stays up for the
# measurements.
say "pushing (indexing off and on, 3 rounds alternating, fresh registries each)…"
PUSH_OFF=999999; PUSH_ON=999999
for r in 1 2 3; do
  start_regfs_registry "$WORK/data-off$r" || exit 1
  off=$REGISTRY_URL; offpid=$REGISTRY_PID
  start_indexing_registry "$WORK/data-on$r" || exit 1
  on=$REGISTRY_URL; onpid=$REGISTRY_PID
  if [ $r = 2 ]; then order="ON OFF"; else order="OFF ON"; fi
  for k in $order; do
    if [ $k = OFF ]; then t=$(push "$off") || exit 1; PUSH_OFF=$(min "$PUSH_OFF" "$t")
    else t=$(push "$on") || exit 1; PUSH_ON=$(min "$PUSH_ON" "$t"); fi
  done
  if [ $r = 1 ]; then
    OFF=$off; ON=$on
    # the index's build time: from the end of the push (the last of this round) to served
    t0=$(now)
    if LAYER_INDEX_WAIT=600 wait_layer_index "$ON" bench/layer "$LDIG" >&2; then INDEX_WAIT=$(secs "$t0" "$(now)")
    else INDEX_WAIT="(never)"; say "no push-time index: (c) measures what the mount does without one"; fi
  else
    LAYER_INDEX_WAIT=600 wait_layer_index "$on" bench/layer "$LDIG" >/dev/null   # its worker done
    stop_pid "$offpid"; stop_pid "$onpid"; rm -rf "$WORK/data-off$r" "$WORK/data-on$r"
  fi
done
ISIZE=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$ON/v2/bench/layer/$LAYER_INDEX_PATH/$LDIG" |
  awk '$1 == 200 { print $2 }')

# --- (a) skopeo copy + tar -x ---------------------------------------------------------------------
say "(a) skopeo copy + tar -x…"
s=$(now)
skopeo_copy "docker://${OFF#http://}/bench/layer:v1" "dir:$WORK/pulled" || exit 1
mkdir -p "$WORK/x"
tar -C "$WORK/x" -xzf "$WORK/pulled/${LDIG#sha256:}" --occurrence=1 "$FILE" || exit 1
head -c 1 "$WORK/x/$FILE" >/dev/null
A_T=$(secs "$s" "$(now)")
A_B=$(du -sb "$WORK/pulled" | cut -f1)
[ "$(sha256sum <"$WORK/x/$FILE" | cut -d' ' -f1)" = "$SHA" ] || say "(a) WRONG BYTES"

# first_byte MNT FILE SHA — seconds to the first byte of FILE in MNT's rootfs; checks the bytes
first_byte() {
  local f=$1/bench/layer/_tags/v1/rootfs/$2 s e
  s=$(now); head -c 1 "$f" >/dev/null || { echo FAIL; return; }; e=$(now)
  [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$3" ] || { say "WRONG BYTES from $f"; echo FAIL; return; }
  secs "$s" "$e"
}
# measure VAR_T VAR_B MNT FILE SHA
measure() {
  local b0 b1
  b0=$(mount_bytes "$3") || b0=0
  printf -v "$1" '%s' "$(first_byte "$3" "$4" "$5")"
  b1=$(mount_bytes "$3") || b1=0
  printf -v "$2" '%s' $((b1 - b0))
}
# Mounts are made and the tag resolved before timing: what is timed is the layer.
prep() { start_regfs_mount "$1" "$2" --cache-dir "$WORK/cache-$(basename "$2")" || exit 1; ls "$2/bench/layer/_tags/v1/" >/dev/null; }

say "(b) regfs cold, no index…"
prep "$OFF" "$WORK/mnt-b"; measure B_T B_B "$WORK/mnt-b" "$FILE" "$SHA"
say "(c) regfs cold, push-time index…"
prep "$ON" "$WORK/mnt-c"; measure C_T C_B "$WORK/mnt-c" "$FILE" "$SHA"
say "(d) regfs warm (another file, index in memory)…"
measure D_T D_B "$WORK/mnt-c" "$FILE2" "$SHA2"

say "(e) archivemount on the downloaded blob…"
mkdir -p "$WORK/am"
s=$(now)
archivemount -o ro "$WORK/pulled/${LDIG#sha256:}" "$WORK/am" && add_mount "$WORK/am"
head -c 1 "$WORK/am/$FILE" >/dev/null
E_T=$(secs "$s" "$(now)")
[ "$(sha256sum <"$WORK/am/$FILE" | cut -d' ' -f1)" = "$SHA" ] || say "(e) WRONG BYTES"
unmount "$WORK/am"

# --- the table ---------------------------------------------------------------------------------------
ratio() { case "$1$2" in *FAIL*|"") echo "-" ;; *) echo "$1 / $2" | bc -l | xargs printf '%.1f×' ;; esac; }
mb() { echo "$1 / 1000000" | bc -l | xargs printf '%.2f'; }
echo
echo "time to the first byte of /$FILE in a $(mb "$BLEN") MB gzip layer ($(mb "$ULEN") MB uncompressed)"
echo "$(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), loopback, regfs-registry for (a)-(d)"
printf '%-44s %10s %14s %16s\n' way "seconds" "MB transferred" "vs (a) (faster)"
row() { printf '%-44s %10s %14s %16s\n' "$1" "$2" "$3" "$4"; }
row "(a) skopeo copy + tar -x" "$A_T" "$(mb "$A_B")" "1.0×"
row "(b) regfs cold, no index (builds it)" "$B_T" "$(mb "$B_B")" "$(ratio "$A_T" "$B_T")"
row "(c) regfs cold, push-time index" "$C_T" "$(mb "$C_B")" "$(ratio "$A_T" "$C_T")"
row "(d) regfs warm (another file)" "$D_T" "$(mb "$D_B")" "$(ratio "$A_T" "$D_T")"
row "(e) archivemount on the downloaded blob" "$E_T" "$(mb "$BLEN") (a's)" "$(ratio "$A_T" "$E_T")"
echo
[ -n "$ISIZE" ] || ISIZE=0
echo "index: $ISIZE bytes = $(echo "100 * $ISIZE / $ULEN" | bc -l | xargs printf '%.3f')% of the uncompressed layer," \
  "$(echo "100 * $ISIZE / $BLEN" | bc -l | xargs printf '%.3f')% of the blob; served $INDEX_WAIT s after the push"
echo "push to regfs-registry (best of 3): $PUSH_OFF s indexing off, $PUSH_ON s indexing on" \
  "(on/off $(echo "$PUSH_ON / $PUSH_OFF" | bc -l | xargs printf '%.2f'): above 1 means the push was slower with indexing)"
