#!/bin/bash
# Bad layers (tools/layer_image.py bad: one image per case, a good layer 0 under a bad
# layer 1), pushed as they are with the distribution API to regfs-registry (which tries
# to index them at push time). For each case: the affected path gives EIO or is left out,
# a log line of the mount names the layer (and the entry), nothing outside the layer is
# readable through the view, the good layer still reads, the daemons keep serving and
# the mount's memory stays bounded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/layers_lib.sh"
layers_need

OCI=$WORK/oci
MNT=$WORK/mnt
layer_image bad "$OCI" >"$WORK/bad.txt" || bail "layer_image bad failed"
start_indexing_registry "$WORK/data" || bail "regfs-registry did not start"
CASES=$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"]' "$OCI/index.json")
for c in $CASES; do
  layer_image push "$OCI" "$c" "$REGISTRY_URL" "bad/$c" >/dev/null || fail "push of the $c image"
done
start_regfs_mount "$REGISTRY_URL" "$MNT" --cache-dir "$WORK/cache" || bail "mount failed"

OK_TXT=$(printf 'an entry that is fine\n' | sha256sum | cut -d' ' -f1)
GOOD_TXT=$(printf 'the good layer under a bad one\n' | sha256sum | cut -d' ' -f1)
hex_of() { jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
  "$OCI/index.json" | cut -d: -f2 | xargs -I{} jq -r '.layers[1].digest' "$OCI/blobs/sha256/{}" | cut -d: -f2; }

# never_reads PATH — cat fails (absent, or EIO): the path gives nothing
never_reads() { ! with_timeout 30 cat "$1" >/dev/null 2>&1; }
# right_or_fails PATH SHA — reads the right bytes, or fails; never wrong bytes
right_or_fails() {
  local got
  with_timeout 30 cat "$1" >"$WORK/read.out" 2>/dev/null || return 0
  got=$(sha256sum <"$WORK/read.out" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "$1 reads bytes hashing to $got, expected $2"; return 1; }
}
reads_right() {
  local got; got=$(with_timeout 30 cat "$1" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "$1: sha256 $got, expected $2"; return 1; }
}
# nothing_of_host DIR — no file under DIR reads as the host's /etc/passwd or /etc/hostname
nothing_of_host() {
  local f
  while IFS= read -r -d '' f; do
    for h in /etc/passwd /etc/hostname; do
      cmp -s "$f" "$h" && { echo "$f reads as the host's $h"; return 1; }
    done
  done < <(with_timeout 30 find "$1" -type f -print0 2>/dev/null)
  return 0
}
# only_names DIR NAME… — DIR lists nothing but the given names (or fails to list)
only_names() {
  local d=$1 n; shift
  for n in $(with_timeout 30 ls -A "$d" 2>/dev/null); do
    [[ " $* " == *" $n "* ]] || { echo "$d lists $n"; return 1; }
  done
}
alive() { kill -0 "$MOUNT_PID" && with_timeout 10 cat "$MNT/.regfs/status" >/dev/null; }
rss_mb() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$MOUNT_PID/status"; }

for c in $CASES; do
  img=$MNT/bad/$c/_tags/$c
  L1=$img/layers/1
  hex=$(hex_of "$c")
  case $c in
    corrupt-gzip|truncated-tar)
      check "$c: the damaged file gives EIO, not wrong bytes" never_reads "$L1/file.txt"
      check "$c: the entry before the damage reads right or fails" right_or_fails "$L1/ok.txt" "$OK_TXT"
      check "$c: the rootfs gives no bytes of the damaged file" never_reads "$img/rootfs/file.txt"
      if [ "$c" = truncated-tar ]; then check "$c: a log line names the layer and the entry" mount_errors_name "${hex:0:12}" file.txt
      else check "$c: a log line names the layer" mount_errors_name "${hex:0:12}"; fi ;;
    climb-dotdot|climb-absolute)
      check "$c: the layer view holds only names inside it" only_names "$L1" ok.txt etc escape
      check "$c: no name reads the host's files" nothing_of_host "$L1/"
      check "$c: the rootfs holds only names inside it" only_names "$img/rootfs" ok.txt good etc escape
      check "$c: a climbing name is never a file outside" right_or_fails "$img/rootfs/etc/passwd" \
        "$(printf 'root::0:0\n' | sha256sum | cut -d' ' -f1)"
      if [ "$c" = climb-dotdot ]; then
        check "$c: a log line names the layer and the entry" mount_errors_name "${hex:0:12}" ../../etc/passwd
      elif [ -e "$L1/etc/passwd" ]; then
        # an absolute name may be taken relative to the layer's root, as tar -x does
        check "$c: the absolute name is kept inside the layer, with its own bytes" \
          reads_right "$L1/etc/passwd" "$(printf 'root::0:0\n' | sha256sum | cut -d' ' -f1)"
      else
        check "$c: the absolute name is left out with a log line naming the layer and the entry" \
          mount_errors_name "${hex:0:12}" /etc/passwd
      fi ;;
    link-outside)
      check "$c: a hard link to ../../etc/passwd reads nothing" never_reads "$L1/hard-out"
      check "$c: a hard link to /etc/passwd reads nothing" never_reads "$L1/hard-abs"
      check "$c: a symlink outside stays a symlink (or is left out)" \
        bash -c "[ ! -e '$L1/sym-out' ] && [ ! -L '$L1/sym-out' ] || [ -L '$L1/sym-out' ]"
      check "$c: no name reads the host's files" nothing_of_host "$L1/"
      check "$c: a log line names the layer and the entry" mount_errors_name "${hex:0:12}" hard-out ;;
    hardlink-missing)
      check "$c: the hard link to a missing name reads nothing" never_reads "$L1/hard-missing"
      check "$c: the rest of the layer reads right" reads_right "$L1/ok.txt" "$OK_TXT"
      check "$c: a log line names the layer and the entry" mount_errors_name "${hex:0:12}" hard-missing ;;
    absurd-size|absurd-longname)
      check "$c: the absurd entry reads nothing" never_reads "$L1/huge"
      check "$c: the entry before it reads right or fails" right_or_fails "$L1/ok.txt" "$OK_TXT"
      check "$c: a log line names the layer" mount_errors_name "${hex:0:12}"
      check "$c: the mount's memory stays bounded ($(rss_mb) MB resident, under $(rss_limit_mb))" \
        test "$(rss_mb)" -lt "$(rss_limit_mb)" ;;
    absurd-count)
      n=$(with_timeout 60 ls "$L1/m" 2>/dev/null | wc -l)
      if [ "$n" -eq 200000 ]; then ok "$c: all 200000 entries listed"
      else check "$c: the layer is refused with a log line (listed $n of 200000)" mount_errors_name "${hex:0:12}"; fi
      check "$c: the mount's memory stays bounded ($(rss_mb) MB resident, under $(rss_limit_mb))" \
        test "$(rss_mb)" -lt "$(rss_limit_mb)" ;;
    not-a-tar|not-compressed)
      check "$c: the layer lists nothing" only_names "$L1"
      check "$c: a log line names the layer" mount_errors_name "${hex:0:12}" ;;
    whiteout-empty)
      check "$c: the empty whiteout deletes nothing in the rootfs" reads_right "$img/rootfs/good/ok.txt" "$GOOD_TXT"
      check "$c: the bad layer's own file is in the rootfs" reads_right "$img/rootfs/ok.txt" "$OK_TXT"
      check "$c: a log line names the layer and the entry" mount_errors_name "${hex:0:12}" ".wh." ;;
    *) fail "$c: no checks written for this case" ;;
  esac
  check "$c: the good layer under it still reads" reads_right "$img/layers/0/good/ok.txt" "$GOOD_TXT"
  check "$c: the mount still serves" alive
done
check "the registry still serves" wait_http "$REGISTRY_URL/v2/" 5
check "regfs-registry still alive" kill -0 "$REGISTRY_PID"
check_daemon_logs
done_testing
