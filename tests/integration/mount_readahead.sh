#!/bin/bash
# mount_readahead.sh — blobs read through the mount by Range requests (bigger than
# the 64 MiB open-time fill, or any size with --cache-size 0) come back byte for byte,
# whatever the reading pattern: sequential (cat | sha256sum = the digest), two readers
# at once, random preads of random lengths (compared with the local copy of the blob,
# chunk edges and the last byte included), and a jump back followed by a sequential
# run in the same open file. Against regfs-registry and docker-registry. No timings:
# bench/mount_read.sh measures the speed.
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin curl jq python3 sha256sum

SIZE_MB=${READAHEAD_SIZE_MB:-72}
REPO=big/blob
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/blob" || bail "random blob"
# a second, small blob for --cache-size 0 (read by ranges too)
head -c 3000001 /dev/urandom >"$WORK/small" || bail "random blob"
dig() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
BDIG=$(dig "$WORK/blob"); SDIG=$(dig "$WORK/small")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/config"
CDIG=$(dig "$WORK/config")
oci_manifest "$WORK/config" "$WORK/blob" "$WORK/small" >"$WORK/manifest"
MDIG=$(dig "$WORK/manifest")

push_all() {
  put_blob "$1" "$REPO" "$WORK/blob" "$BDIG" && put_blob "$1" "$REPO" "$WORK/small" "$SDIG" &&
    put_blob "$1" "$REPO" "$WORK/config" "$CDIG" && put_manifest "$1" "$REPO" v1 "$WORK/manifest"
}

# random_reads MOUNTED LOCAL N — N preads at random offsets and lengths (and the edge
# cases) of the mounted file compare equal to the local file; prints the mismatches.
random_reads() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
m, l, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(l)
fm, fl = os.open(m, os.O_RDONLY), os.open(l, os.O_RDONLY)
MiB = 1 << 20
cases = [(0, 1), (size - 1, 1), (size - 5, 100), (size, 10), (MiB - 3, 7), (3 * MiB - 1, 2 * MiB + 5),
         (9 * MiB - 4096, 8192), (size // 2, 3 * MiB)]
rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
cases += [(rnd.randrange(size), rnd.choice([1, 511, 4096, 65536, 131072, MiB, 2 * MiB + 17])) for _ in range(n)]
bad = 0
for off, ln in cases:
    a, b = os.pread(fm, ln, off), os.pread(fl, ln, off)
    if a != b:
        bad += 1
        print(f"pread({off}, {ln}): {len(a)} bytes from the mount differ from the blob's {len(b)}")
# a jump back, then a sequential run in the same open file
start = rnd.randrange(size // 4)
a = b = b""
pos = start
while pos < size:
    a, b = os.pread(fm, 131072, pos), os.pread(fl, 131072, pos)
    if a != b:
        bad += 1
        print(f"sequential run from {start}: differs at {pos}")
        break
    pos += 131072
print(f"{len(cases)} random reads and a sequential run from {start}: {bad} mismatches")
sys.exit(1 if bad else 0)
PY
}

run_kind() {
  local kind=$1 mnt f s out
  log "=== $kind ==="
  start_registry "$kind" "$WORK/data-$kind" || { fail "$kind: registry starts"; return; }
  check "$kind: push a ${SIZE_MB} MiB blob, a small one and their manifest" push_all "$REGISTRY_URL" || return

  # default options: the big blob is read by ranges (above the 64 MiB fill)
  mnt=$WORK/mnt-$kind
  start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-$kind" || { fail "$kind: regfs mounts"; return; }
  f=$mnt/$REPO/_manifests/$MDIG/layers/0.tar
  check_eq "$kind: sequential read (cat | sha256sum) = the blob's digest" "$BDIG" "sha256:$(cat "$f" | sha256sum | cut -d' ' -f1)"
  check "$kind: it was read by Range requests" jq -e '.range_reads > 1' "$mnt/.regfs/stats"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-$kind" || { fail "$kind: regfs mounts again"; return; }
  out=$( (sha256sum "$f" & sha256sum "$f" & wait) | cut -d' ' -f1 | sort -u | tr '\n' ' ')
  check_eq "$kind: two readers at once both read the digest's bytes" "${BDIG#sha256:} " "$out"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache-$kind" || { fail "$kind: regfs mounts again"; return; }
  check "$kind: random preads (and a jump back) = the blob's bytes" random_reads "$f" "$WORK/blob" 150
  check_eq "$kind: then a whole sequential read still = the digest" "$BDIG" "sha256:$(sha256sum "$f" | cut -d' ' -f1)"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  # no disk cache: every blob by ranges, also one that is not a whole number of chunks
  start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-size 0 || { fail "$kind: regfs mounts without a disk cache"; return; }
  s=$mnt/$REPO/_manifests/$MDIG/layers/1.tar
  check_eq "$kind: --cache-size 0: a 3,000,001-byte blob reads back whole" "$SDIG" "sha256:$(sha256sum "$s" | cut -d' ' -f1)"
  check "$kind: --cache-size 0: random preads of it" random_reads "$s" "$WORK/small" 60
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
# Leaks are reported when a daemon exits: every mount above has been stopped.
check_eq "no sanitizer report in any log" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/*.log 2>/dev/null)"
done_testing
