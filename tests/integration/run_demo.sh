#!/bin/bash
# run_demo.sh — tools/run, the README's main command, as a newcomer meets it (setup and
# build skipped; a free port, a data directory and a mountpoint of the test's own):
#   - the first run pushes the demo image: ls of demo/hello/_tags in the mount shows v1 and
#     latest, du -sh works, the mount's latest/manifest.json is byte for byte the
#     registry's manifest, whose sha256 is the tag's digest; every blob of both images
#     hashes to its digest through the API; the upper layer holds an OCI whiteout;
#   - tools/run --stop leaves no mount, no process and no listener;
#   - a second run on the same data pushes nothing (no PUT in its registry log), serves the
#     same digests, and --stop again leaves nothing behind.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_regfs_mount
command -v skopeo >/dev/null || skip_all "skopeo not installed"
command -v jq >/dev/null || skip_all "jq not installed"

RUN=$REGFS_SRC/tools/run
PORT=$(free_port) || bail "no free port"
URL=http://127.0.0.1:$PORT
M=$WORK/mnt
export REGFS_NO_SETUP=1 REGFS_NO_BUILD=1 REGFS_BUILD_DIR=$REGFS_BUILD
export REGFS_DATA=$WORK/data REGFS_PORT=$PORT REGFS_MNT=$M
add_mount "$M"
add_cleanup "'$RUN' --stop"
ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"

# start_run N — tools/run in the background (registry log $WORK/registry-N.log); waits,
# bounded, for its "Press Ctrl-C" line. Sets RUN_PID.
start_run() {
  local i
  REGFS_LOG=$WORK/registry-$1.log start_bg "run-$1" "$RUN"
  RUN_PID=$BG_PID
  for ((i = 0; i < 600; i++)); do
    grep -q "Press Ctrl-C" "$WORK/run-$1.log" 2>/dev/null && return 0
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.1
  done
  diag "$(tail -n 20 "$WORK/run-$1.log")"
  return 1
}
# puts N — how many PUT requests the registry of run N logged
puts() { grep -c ' PUT /v2/' "$WORK/registry-$1.log"; }
# api_digest TAG — sha256 of the manifest body the registry serves for demo/hello:TAG
# (empty when the registry does not serve it)
api_digest() {
  local f=$WORK/manifest-$1
  curl -sf -H "Accept: $ACCEPT" -o "$f" "$URL/v2/demo/hello/manifests/$1" && [ -s "$f" ] || return 0
  sha256sum <"$f" | sed 's/^/sha256:/; s/ .*//'
}
# mount_digest TAG — the digest the mount's tag symlink points to
mount_digest() { basename "$(readlink "$M/demo/hello/_tags/$1")"; }
# blobs_verify TAG — every blob (config, layers) of the tag's manifest hashes to its digest
blobs_verify() {
  local m d n=0
  m=$(curl -sf -H "Accept: $ACCEPT" "$URL/v2/demo/hello/manifests/$1") || return 1
  for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m"); do
    [ "sha256:$(curl -sf "$URL/v2/demo/hello/blobs/$d" | sha256sum | cut -d' ' -f1)" = "$d" ] ||
      { diag "blob $d of $1 does not hash to its digest"; return 1; }
    n=$((n + 1))
  done
  [ "$n" -ge 3 ]
}
# stopped N — tools/run --stop of run N, then: tools/run exited, nothing mounted, no process of ours,
# nothing listening on the port
stopped() {
  local i
  "$RUN" --stop || return 1
  for ((i = 0; i < 100; i++)); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$RUN_PID" 2>/dev/null && { diag "tools/run (pid $RUN_PID) still running"; return 1; }
  is_mounted "$M" && { diag "$M still mounted"; return 1; }
  pgrep -af -- "$WORK" >&2 && { diag "processes above still running"; return 1; }
  local reg
  reg=$(sed -n 's/.*stopping regfs-registry (pid \([0-9]*\)).*/\1/p' "$WORK/run-$1.log")
  [ -n "$reg" ] || { diag "tools/run did not say it stopped regfs-registry"; return 1; }
  kill -0 "$reg" 2>/dev/null && { diag "regfs-registry (pid $reg) still running"; return 1; }
  [ -z "$(ss -Htln "( sport = :$PORT )")" ] || { diag "port $PORT still listening"; return 1; }
}

# --- first run: the demo image is there at once ----------------------------------------
start_run 1 || bail "tools/run did not come up"
check_eq "ls _tags shows the demo tags" "$(printf 'latest\nv1')" "$(ls "$M/demo/hello/_tags" | sort)"
check "du -sh of the mount reports storage" bash -c "du -sh '$M' | grep -qv '^0'"
LATEST=$(api_digest latest); V1=$(api_digest v1)
check_eq "latest: the mount's tag is the registry's digest" "$LATEST" "$(mount_digest latest)"
check_eq "v1: the mount's tag is the registry's digest" "$V1" "$(mount_digest v1)"
check "two different images" test "$LATEST" != "$V1" -a -n "$V1"
check_eq "cat latest/manifest.json hashes to the tag's digest" "$LATEST" \
  "sha256:$(sha256sum <"$M/demo/hello/_tags/latest/manifest.json" | cut -d' ' -f1)"
check "latest's blobs hash to their digests through the API" blobs_verify latest
check "v1's blobs hash to their digests through the API" blobs_verify v1
UPPER=$(curl -sf -H "Accept: $ACCEPT" "$URL/v2/demo/hello/manifests/latest" | jq -r '.layers[-1].digest')
check "the upper layer deletes a file with an OCI whiteout" \
  bash -c "curl -sf '$URL/v2/demo/hello/blobs/$UPPER' | tar tzf - | grep -q '/\.wh\.index\.html$'"
check_eq "cat latest/rootfs/etc/os-release reads a file inside the image" "regfs demo" \
  "$(sed -n 's/^NAME="\(.*\)"$/\1/p' "$M/demo/hello/_tags/latest/rootfs/etc/os-release")"
indexed() { ls "$WORK"/data/docker/registry/v2/_regfs/layerindex/sha256/*/*/data >/dev/null 2>&1; }
check "the registry indexed the demo's layers at push time" wait_for 30 indexed
check "the first run pushed (PUT lines in its log)" test "$(puts 1)" -gt 0
check "tools/run --stop leaves no mount, process or listener" stopped 1

# --- second run: same data, nothing pushed ------------------------------------------------
start_run 2 || bail "tools/run did not come up a second time"
check_eq "the second run pushes nothing (PUT lines in its log)" 0 "$(puts 2)"
check "the second run says the demo image is there" grep -q "already in the registry" "$WORK/run-2.log"
check_eq "latest keeps its digest" "${LATEST:-(none)}" "$(api_digest latest)"
check_eq "v1 keeps its digest" "${V1:-(none)}" "$(api_digest v1)"
check_eq "ls _tags still shows the demo tags" "$(printf 'latest\nv1')" "$(ls "$M/demo/hello/_tags" | sort)"
check "tools/run --stop again leaves no mount, process or listener" stopped 2

done_testing
