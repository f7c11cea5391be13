# tests/integration/layers_lib.sh — what the layers_*.sh checks share (source after lib.sh).
#
#   layers_need                       skip unless the binaries and tools are there
#   layer_image ARGS…                 tools/layer_image.py (rich | big | bad | push)
#   layers_build_rich [BIG_MIB]       build the 4-layer image into $OCI (tag "rich"); sets
#                                     RICH_DIGEST and RICH_LAYER[0..3] (layer digests); call it
#                                     outside $( ) and check (they run in subshells)
#   umoci_rootfs TAG DIR              umoci unpack of $OCI's TAG; the rootfs is DIR/rootfs
#   compare_trees EXPECTED ACTUAL     diff -r --no-dereference, then a walk over both trees
#                                     comparing type, mode, owner, size, link target, device
#                                     numbers, user xattrs, mtime (non-directories) and
#                                     hard-link groups; every view file has st_blocks 0
#   compare_layer_listing BLOB DIR    `tar -tvf BLOB` (GNU tar, independent of regfs) against
#                                     the mount's view DIR of that layer
#   wait_layer_index URL REPO DIGEST… wait (30 s in all) until the registry serves the
#                                     push-time index of every layer DIGEST
#   start_indexing_registry DIR       regfs-registry with push-time indexing on
#   mount_bytes MNT                   bytes_fetched of MNT/.regfs/stats (fails unless a number)
#   fetched_during MNT CMD…           run CMD; FETCHED = the bytes the mount fetched meanwhile,
#                                     or ERR (CMD failed, or the stats could not be read)
#   check_fetched NAME MNT CMD…       check NAME on fetched_during MNT CMD…, FETCHED kept (check
#                                     itself runs CMD in a subshell)
#   mount_errors_name TEXT…           the mount's log, .regfs/errors or the registry's log (the
#                                     push-time index builder) has a line with every TEXT
#   check_daemon_logs                 (cleanup_lib.sh) stop the daemons, fail on sanitizer reports
# shellcheck source=cleanup_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cleanup_lib.sh"
LAYER_IMAGE=$(dirname "${BASH_SOURCE[0]}")/tools/layer_image.py
# The push-time index endpoint (docs/api-extensions.md), one place to change it, and the
# regfs-registry config that turns push-time indexing on (docs/config.md; default off).
LAYER_INDEX_PATH=_regfs/layerindex
LAYER_INDEX_YAML=$'regfs:\n  layerindex:\n    enabled: true'

layers_need() {
  need_regfs_mount
  need_bin umoci skopeo python3 tar
  [ "${1:-}" = docker ] || need_regfs_registry
}

layer_image() { python3 "$LAYER_IMAGE" "$@"; }

# rss_limit_mb — the resident-memory bound a check applies to the mount: 300 MB, or 1000 MB
# for a sanitizer build (ASan's shadow memory and quarantine are not the mount's own)
# (ldd's output taken whole: with pipefail, grep -q's early exit would fail the pipe)
rss_limit_mb() { case $(ldd "$REGFS_MOUNT" 2>/dev/null) in *libasan*) echo 1000 ;; *) echo 300 ;; esac; }

RICH_LAYER=()
layers_build_rich() {
  layer_image rich "$OCI" rich --big-mb "${1:-50}" >"$WORK/rich.txt" || return 1
  RICH_DIGEST=$(awk '$1 == "manifest" { print $2 }' "$WORK/rich.txt")
  mapfile -t RICH_LAYER < <(awk '$1 == "layer" { print $3 }' "$WORK/rich.txt")
  [ ${#RICH_LAYER[@]} = 4 ]
}
# rich_blob N — the file of the rich image's layer N in $OCI
rich_blob() { echo "$OCI/blobs/sha256/${RICH_LAYER[$1]#sha256:}"; }

umoci_rootfs() {
  rm -rf "$2"
  with_timeout 120 umoci unpack --image "$OCI:$1" "$2" >&2
}

compare_trees() {
  local out
  # diff reports every pair of devices or fifos ("is a fifo while file … is a fifo") even
  # when both sides are the same type: the walk below compares those; drop just those lines.
  out=$(diff -r --no-dereference "$1" "$2" 2>&1 |
    grep -Ev '^File .* is a (character special file|block special file|fifo|socket) while file .* is a \1$')
  if [ -n "$out" ]; then echo "diff -r --no-dereference $1 $2:"; printf '%s\n' "$out" | head -n 30; return 1; fi
  python3 - "$1" "$2" <<'PY'
import os, stat, sys
exp, act = sys.argv[1], sys.argv[2]
def walk(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out
def xattrs(p):
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError as e:
        return "listxattr: " + e.strerror
    r = {}
    for n in names:
        if n.startswith("user.") and not n.startswith("user.regfs."):
            r[n] = os.getxattr(p, n, follow_symlinks=False)
    return r
def groups(tree):
    by = {}
    for p, s in tree.items():
        if not stat.S_ISDIR(s.st_mode) and s.st_nlink > 1:
            by.setdefault(s.st_ino, []).append(p)
    return {p: tuple(sorted(g)) for g in by.values() if len(g) > 1 for p in g}
E, A = walk(exp), walk(act)
bad = []
for p in sorted(set(E) ^ set(A)):
    bad.append("%s: only in %s" % (p, "expected" if p in E else "mount"))
ge, ga = groups(E), groups(A)
for p in sorted(set(E) & set(A)):
    e, a = E[p], A[p]
    pe, pa = os.path.join(exp, p), os.path.join(act, p)
    def cmp(what, x, y):
        if x != y: bad.append("%s: %s expected %r, mount has %r" % (p, what, x, y))
    cmp("type", stat.S_IFMT(e.st_mode), stat.S_IFMT(a.st_mode))
    cmp("mode", oct(stat.S_IMODE(e.st_mode)), oct(stat.S_IMODE(a.st_mode)))
    cmp("owner", (e.st_uid, e.st_gid), (a.st_uid, a.st_gid))
    if not os.environ.get("LAYERS_SELFTEST"): cmp("st_blocks", 0, a.st_blocks)
    if stat.S_ISREG(e.st_mode): cmp("size", e.st_size, a.st_size)
    if stat.S_ISLNK(e.st_mode): cmp("link target", os.readlink(pe), os.readlink(pa))
    if stat.S_ISCHR(e.st_mode) or stat.S_ISBLK(e.st_mode): cmp("device", e.st_rdev, a.st_rdev)
    if not stat.S_ISDIR(e.st_mode): cmp("mtime", int(e.st_mtime), int(a.st_mtime))
    if not stat.S_ISLNK(e.st_mode): cmp("xattrs", xattrs(pe), xattrs(pa))
    cmp("hard-link group", ge.get(p), ga.get(p))
for b in bad[:40]: print(b)
print("%d paths compared, %d differences" % (len(E), len(bad)))
sys.exit(1 if bad or not E else 0)
PY
}

# compare_layer_listing BLOB DIR — every entry of the tar (the last of a repeated name
# wins) is in DIR with its type, mode, uid/gid, size, mtime, link target or device
# numbers; DIR holds nothing else but the parent directories of entries.
compare_layer_listing() {
  LC_ALL=C.UTF-8 TZ=UTC tar --numeric-owner --full-time --quoting-style=literal -tvf "$1" >"$WORK/tar-tv.txt" ||
    { echo "tar -tvf $1 failed"; return 1; }
  python3 - "$WORK/tar-tv.txt" "$2" <<'PY'
import os, stat, sys, time, calendar
lines, root = open(sys.argv[1], encoding="utf-8").read().splitlines(), sys.argv[2]
TYPES = {"-": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK, "c": stat.S_IFCHR,
         "b": stat.S_IFBLK, "p": stat.S_IFIFO, "h": "hard"}
ent = {}
for l in lines:
    f = l.split(None, 5)
    perm, owner, size, day, tod, rest = f
    name, extra = rest, None
    if perm[0] == "l": name, extra = rest.split(" -> ", 1)
    if perm[0] == "h": name, extra = rest.split(" link to ", 1)
    name = name.lstrip("./") if name.startswith("./") else name
    ent[name.rstrip("/")] = (perm, owner, size, day + " " + tod, extra)
def mode_str(m):
    s = ""
    for who in range(3):
        bits = (m >> (6 - 3 * who)) & 7
        x = "x" if bits & 1 else "-"
        if who == 0 and m & stat.S_ISUID: x = "s" if bits & 1 else "S"
        if who == 1 and m & stat.S_ISGID: x = "s" if bits & 1 else "S"
        if who == 2 and m & stat.S_ISVTX: x = "t" if bits & 1 else "T"
        s += ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + x
    return s
bad = []
seen = set()
for name, (perm, owner, size, when, extra) in sorted(ent.items()):
    p = os.path.join(root, name)
    try:
        s = os.lstat(p)
    except OSError as e:
        bad.append("%s: %s in the tar, lstat in the mount: %s" % (name, perm, e.strerror)); continue
    seen.add(name)
    t = TYPES.get(perm[0])
    def cmp(what, x, y):
        if x != y: bad.append("%s: %s: tar says %r, mount has %r" % (name, what, x, y))
    if t == "hard":
        try:
            cmp("hard link inode (same as %s)" % extra, os.lstat(os.path.join(root, extra)).st_ino, s.st_ino)
        except OSError as e:
            bad.append("%s: hard link target %s: %s" % (name, extra, e.strerror))
        continue
    cmp("type", t, stat.S_IFMT(s.st_mode))
    cmp("mode", perm[1:], mode_str(stat.S_IMODE(s.st_mode)))
    cmp("owner", owner, "%d/%d" % (s.st_uid, s.st_gid))
    if perm[0] == "-": cmp("size", size, str(s.st_size))
    if perm[0] in "cb": cmp("device", size, "%d,%d" % (os.major(s.st_rdev), os.minor(s.st_rdev)))
    if perm[0] == "l": cmp("link target", extra, os.readlink(p))
    if perm[0] != "d" or not os.environ.get("LAYERS_SELFTEST"):
        cmp("mtime", when.split(".")[0], time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(s.st_mtime))))
    if not os.environ.get("LAYERS_SELFTEST"): cmp("st_blocks", 0, s.st_blocks)
# nothing else: every other path must be a parent directory of a tar entry
parents = set()
for n in ent:
    while "/" in n:
        n = n.rsplit("/", 1)[0]
        parents.add(n)
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        rel = os.path.relpath(os.path.join(d, n), root)
        if rel not in ent and rel not in parents:
            bad.append("%s: in the mount, not in the tar" % rel)
for b in bad[:40]: print(b)
print("%d tar entries compared, %d differences" % (len(ent), len(bad)))
sys.exit(1 if bad or not ent else 0)
PY
}

# wait_layer_index URL REPO DIGEST… — LAYER_INDEX_WAIT s (30) in all for every DIGEST's
# index to be served
wait_layer_index() {
  local url=$1 repo=$2 dg code i=0 n=$((${LAYER_INDEX_WAIT:-30} * 10)); shift 2
  for dg in "$@"; do
    while :; do
      code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url/v2/$repo/$LAYER_INDEX_PATH/$dg")
      [ "$code" = 200 ] && break
      i=$((i + 1))
      [ $i -lt $n ] || { echo "no index for $dg at $url/v2/$repo/$LAYER_INDEX_PATH/$dg after $((n / 10)) s (last status $code)"; return 1; }
      sleep 0.1
    done
  done
}

start_indexing_registry() { start_regfs_registry "$1" "$LAYER_INDEX_YAML"; }

mount_bytes() {
  local v; v=$(jq -r '.bytes_fetched' "$1/.regfs/stats" 2>/dev/null)
  [[ $v =~ ^[0-9]+$ ]] || return 1
  echo "$v"
}
FETCHED=ERR
fetched_during() {
  local mnt=$1 b0 b1; shift
  FETCHED=ERR
  b0=$(mount_bytes "$mnt") || { log "no bytes_fetched in $mnt/.regfs/stats"; return 1; }
  "$@" || return 1
  b1=$(mount_bytes "$mnt") || return 1
  FETCHED=$((b1 - b0))
}
check_fetched() {
  local name=$1 mnt=$2; shift 2
  if fetched_during "$mnt" "$@" >"$WORK/fetched.out" 2>&1; then ok "$name"; else
    fail "$name" "command failed: $*"; diag "$(tail -n 20 "$WORK/fetched.out")"
  fi
}

# mount_errors_name TEXT… — some line of the mount's log, of .regfs/errors, or of the log of
# the regfs-registry that built the layer's index at push time (then the mount only reads
# the index, where the bad entry is already left out) holds every TEXT
mount_errors_name() {
  local f=$WORK/errlines.txt t
  # warnings and errors only: the registry's access log names digests on every request
  { grep -hE '^[^ ]+ +(warn|error) ' "$MOUNT_LOG" "${REGISTRY_LOG:-/dev/null}"
    cat "$MNT/.regfs/errors" 2>/dev/null; } >"$f"
  for t in "$@"; do grep -F -- "$t" "$f" >"$f.n"; mv "$f.n" "$f"; done
  [ -s "$f" ] || { echo "no log line naming all of: $*"; tail -n 5 "$MOUNT_LOG"; return 1; }
}
