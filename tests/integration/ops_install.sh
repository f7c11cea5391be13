#!/bin/bash
# meson install into a DESTDIR: the binaries, man pages, systemd units, sysusers snippet and
# example configuration land where docs/deploy.md says; the units name the installed
# binaries and `systemd-analyze verify` accepts them (rooted in the DESTDIR); `man -l`
# renders each page without a warning; and the options each program's --help lists are
# exactly those its man page documents, each documented once.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin meson man python3

ROOT=$WORK/root
check "meson install into DESTDIR" with_timeout 120 env DESTDIR="$ROOT" meson install -C "$REGFS_BUILD" --no-rebuild --quiet
# the build's own directories, read back from meson (prefix, bindir, mandir, sysconfdir)
eval "$(meson introspect "$REGFS_BUILD" --buildoptions | python3 -c '
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
p = o["prefix"]
for k in ("bindir", "mandir", "sysconfdir", "datadir"):
    print("%s=%s" % (k.upper(), os.path.join(p, o[k])))
print("UNITDIR_OPT=%s" % o.get("systemdunitdir", ""))')"
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
[ -n "$UNITDIR_OPT" ] && UNITDIR=$UNITDIR_OPT
UNITDIR=${UNITDIR:-/lib/systemd/system}
log "prefix dirs: $BINDIR $MANDIR $SYSCONFDIR; units: $UNITDIR"

expected=(
  "$BINDIR/regfs-registry" "$BINDIR/regfs" "$BINDIR/regfs-cleanup"
  "$MANDIR/man8/regfs-registry.8" "$MANDIR/man8/regfs.8" "$MANDIR/man8/regfs-cleanup.8"
  "$UNITDIR/regfs-registry.service" "$UNITDIR/regfs@.service"
  "$UNITDIR/regfs-cleanup.service" "$UNITDIR/regfs-cleanup.timer"
  "$SYSCONFDIR/regfs/config.yml.example" "$SYSCONFDIR/regfs/mount-registry.env.example"
  "$SYSCONFDIR/regfs/cleanup.policy.example" "$DATADIR/doc/regfs/deploy.md"
)
missing=""
for f in "${expected[@]}"; do [ -f "$ROOT$f" ] || missing+=" $f"; done
check_eq "every expected file is installed" "" "$missing"
diag "$(cd "$ROOT" && find . -type f | sort)"
for b in regfs-registry regfs regfs-cleanup; do
  check "installed $b runs (--help)" "$ROOT$BINDIR/$b" --help
done
check "the example config loads (garbage-collect --dry-run on a temp root)" bash -c "
  sed 's|/var/lib/regfs|$WORK/data|' '$ROOT$SYSCONFDIR/regfs/config.yml.example' >'$WORK/example.yml' &&
  '$ROOT$BINDIR/regfs-registry' garbage-collect --dry-run '$WORK/example.yml'"

# --- the units -----------------------------------------------------------------------------
bad=""
for u in regfs-registry.service regfs@.service regfs-cleanup.service; do
  for cmd in $(sed -n 's/^Exec\(Start\|Reload\|StopPost\)=-\{0,1\}\([^ ]*\).*/\2/p' "$ROOT$UNITDIR/$u"); do
    case $cmd in "$BINDIR"/*) [ -x "$ROOT$cmd" ] || bad+=" $u:$cmd" ;; esac
  done
  for page in $(sed -n 's/^Documentation=.*man:\([a-z-]*\)(8).*/\1/p' "$ROOT$UNITDIR/$u"); do
    [ -f "$ROOT$MANDIR/man8/$page.8" ] || bad+=" $u:man:$page"
  done
done
check_eq "the units name installed binaries and man pages" "" "$bad"
if command -v systemd-analyze >/dev/null; then
  # verify resolves every path under --root: give it the stock targets and the two
  # system commands the units call, so only our units can fail
  mkdir -p "$ROOT/bin" "$ROOT$UNITDIR"
  cp /bin/kill "$ROOT/bin/"; cp "$(command -v fusermount3 || echo /bin/true)" "$ROOT/bin/fusermount3"
  for f in /lib/systemd/system/*.target /lib/systemd/system/*.slice; do
    [ -e "$ROOT$UNITDIR/${f##*/}" ] || cp -P "$f" "$ROOT$UNITDIR/" 2>/dev/null
  done
  out=$(cd / && with_timeout 60 systemd-analyze verify --man=no --root="$ROOT" \
    "$UNITDIR/regfs-registry.service" "$UNITDIR/regfs@.service" \
    "$UNITDIR/regfs-cleanup.service" "$UNITDIR/regfs-cleanup.timer" 2>&1); rc=$?
  check_eq "systemd-analyze verify accepts the units (exit status and no message)" "0:" "$rc:$out"
  # the sandbox as systemd rates it (0 = fully confined, 10 = none; "OK" is below 2.1)
  level=$(cd / && with_timeout 60 systemd-analyze security --offline=yes --root="$ROOT" \
    "$UNITDIR/regfs-registry.service" 2>&1 | sed -n 's/.*Overall exposure level for regfs-registry.service: \([0-9.]*\).*/\1/p')
  log "systemd-analyze security: regfs-registry.service exposure ${level:-?}"
  check "regfs-registry.service's sandbox rates OK (exposure <= 2.0)" \
    python3 -c "import sys; sys.exit(0 if float('${level:-99}') <= 2.0 else 1)"
else
  log "systemd-analyze is not installed: unit verification skipped"
fi

# --- man pages and --help ------------------------------------------------------------------
for p in regfs-registry regfs regfs-cleanup; do
  page=$ROOT$MANDIR/man8/$p.8
  warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >"$WORK/$p.txt")
  check_eq "man -l $p.8 renders without warnings" "" "$warn"
  check "man -l $p.8 has NAME, SYNOPSIS and OPTIONS" grep -qE '^OPTIONS' "$WORK/$p.txt"
  # option tokens: "-x" or "--name", not inside a word (drop-in, regfs-registry)
  opts() { grep -oP '(?<![\w-])--?[a-zA-Z][a-zA-Z-]*' | sort -u; }
  # the man page: the tag lines (7-space indent) of the rendered OPTIONS section
  sed -n '/^OPTIONS/,/^[A-Z]/p' "$WORK/$p.txt" | grep -E '^       -' >"$WORK/$p.tags"
  opts <"$WORK/$p.tags" >"$WORK/$p.man-opts"
  dups=$(grep -oP '(?<![\w-])--?[a-zA-Z][a-zA-Z-]*' "$WORK/$p.tags" | sort | uniq -d)
  check_eq "$p.8 documents each option once" "" "$dups"
  # --help, minus the line naming another program's option (regfs: "fusermount3 -u")
  "$ROOT$BINDIR/$p" --help 2>&1 | grep -v 'fusermount3 -u' | opts >"$WORK/$p.help-opts"
  check_files "$p --help lists exactly the options of $p.8" "$WORK/$p.man-opts" "$WORK/$p.help-opts"
done
done_testing
