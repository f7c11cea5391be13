#!/bin/bash
# mount_nodes.sh — the mount's node table stays within its share of --memory
# (--memory / 8) while `du` walks a registry bigger than that, and dropping
# nodes changes nothing a user sees:
#   - `du -s -B1` equals the generator's total (bench/mount_gen.py: 200
#     repositories x 10 tags written as a storage layout), twice;
#   - .regfs/stats shows drops asked of the kernel and the table back under its
#     budget once the walk is over;
#   - every file of the first repositories (the least recently used, dropped
#     first) keeps its inode number and size, and its content: manifest.json's
#     sha256 is the digest its tag links to, config.json's the one its manifest
#     names (read with jq);
#   - a process whose working directory is inside the mount still has it
#     (/proc/PID/cwd not "(deleted)"), and a file held open still reads whole;
#   - no sanitizer report in the daemons' logs (an ASan build).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"  # check_daemon_logs
need_regfs_mount
need_regfs_registry
need_bin python3 jq sha256sum
# shellcheck disable=SC2034 # read by lib.sh (write_registry_config)
REGISTRY_LOG_LEVEL=error

python3 "$(dirname "$0")/../../bench/mount_gen.py" "$WORK/data" 200 10 >"$WORK/expected" ||
  bail "bench/mount_gen.py"
EXPECTED=$(cat "$WORK/expected")
start_regfs_registry "$WORK/data" || bail "regfs-registry starts"
MNT=$WORK/mnt
start_regfs_mount "$REGISTRY_URL" "$MNT" --memory 16M --ttl 300 --cache-dir "$WORK/cache" ||
  bail "regfs mounts with --memory 16M"
BUDGET=$((16 * 1024 * 1024 / 8))

# inodes, sizes and contents of the first three repositories' files
snapshot() { # OUT
  local r
  : >"$1"
  for r in team00/app0000 team00/app0001 team00/app0002; do
    (cd "$MNT/$r" && find . -printf '%y %i %s %p\n' | sort -k4) >>"$1" || return 1
  done
}
# every tag of a repository: manifest.json hashes to the digest the tag links to,
# config.json to the digest the manifest names
contents_ok() { # REPO
  local t d m c n=0
  for t in "$MNT/$1"/_tags/*; do
    d=$(readlink "$t"); d=${d##*/}
    m=$(sha256sum <"$t/manifest.json" | cut -d' ' -f1)
    [ "sha256:$m" = "$d" ] || { log "$t: manifest.json hashes to $m, the tag links to $d"; return 1; }
    c=$(sha256sum <"$t/config.json" | cut -d' ' -f1)
    [ "sha256:$c" = "$(jq -r .config.digest "$t/manifest.json")" ] ||
      { log "$t: config.json hashes to $c"; return 1; }
    n=$((n + 1))
  done
  [ "$n" = 10 ]
}
stat_of() { jq -r ".nodes.$1" "$MNT/.regfs/stats"; }
under_budget() { [ "$(stat_of bytes)" -le "$BUDGET" ]; }

check "first repositories: every tag's manifest and config hash to their digests" contents_ok team00/app0000
check_eq "the table's budget is --memory / 8" "$BUDGET" "$(stat_of budget)"
# a shell working inside the mount, a file held open
HELD="$MNT/team00/app0000/_tags/latest/manifest.json"
HELD_SUM=$(sha256sum <"$HELD")
(cd "$MNT/team00/app0001/_tags" && exec sleep 120) &
CWD_PID=$!
sleep 120 <"$HELD" &
FD_PID=$!
add_cleanup "kill $CWD_PID $FD_PID 2>/dev/null"
snapshot "$WORK/before" || fail "snapshot before the walk"

check_eq "du -s -B1 = generator's total" "$EXPECTED" "$(du -s -B1 "$MNT" | cut -f1)"
asked=$(stat_of drops_asked)
check "the kernel was asked to drop nodes (asked: $asked)" test "$asked" -gt 0
check "the table is back within its budget of $BUDGET bytes" wait_for 20 under_budget
# (before anything looks its name up again, which would bring the entry back)
check_eq "the working directory inside the mount is still there" "$MNT/team00/app0001/_tags" \
  "$(readlink "/proc/$CWD_PID/cwd")"
log "nodes: $(stat_of count), $(stat_of bytes) bytes, budget $BUDGET, drops asked $(stat_of drops_asked)"

snapshot "$WORK/after" || fail "snapshot after the walk"
check "the first repositories' files: same inode numbers and sizes" diff "$WORK/before" "$WORK/after"
check "... and the same contents" contents_ok team00/app0000
check "... (second repository)" contents_ok team00/app0001
check_eq "the file held open reads whole" "$HELD_SUM" "$(sha256sum <"/proc/$FD_PID/fd/0")"
check_eq "du -s -B1 again = generator's total" "$EXPECTED" "$(du -s -B1 "$MNT" | cut -f1)"
check "no warning in the mount's log" test -z "$(grep -i 'warn\|error' "$MOUNT_LOG")"
kill "$CWD_PID" "$FD_PID" 2>/dev/null
wait "$CWD_PID" "$FD_PID" 2>/dev/null
check_daemon_logs
done_testing
