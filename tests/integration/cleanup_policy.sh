#!/bin/bash
# cleanup_policy.sh — regfs-cleanup --policy FILE, and the progress line of the long-running
# commands (regfs-cleanup --apply, regfs-registry garbage-collect).
#  1. A seeded regfs-registry (2 repositories × 8 tags pushed with skopeo, push times spread
#     over 40 days by backdating the tag link files) is copied (cp -a of the storage root):
#     A serves the original, B the copy, each mounted. The policy file applied to A and the
#     equivalent options applied to B print the same tags and the same freed-bytes figure, which
#     equals the bytes computed from the storage root (freed_by), and leave the same tags
#     (skopeo list-tags), which are the ones computed here from the ages chosen.
#  2. Options override the file key by key (--older-than, --dry-run over "apply: true"); a bad
#     policy line is refused naming FILE:LINE, and nothing is deleted.
#  3. Progress: under a pty (script -qec) regfs-cleanup --apply, garbage-collect and the
#     benchmarks' bench/progress.sh draw their
#     "\r…" progress line on stderr; with stderr a file they do not.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_registry
need_regfs_mount
need_bin skopeo jq script
unset REGFS_PROGRESS    # the terminal decides, as for a user

CLEANUP=$REGFS_SRC/tools/regfs-cleanup
REPOS="shop/web tools"
NOW=$(date +%s)

# --- images: per repository 8 sha tags aged 1..36 days plus latest and production ------------
OCI=$WORK/oci
declare -A AGE_H IMG DIGEST
spec="layer base 4000"$'\n'
r_i=0
for r in $REPOS; do
  for ((i = 0; i < 8; i++)); do
    t=sha-$r_i$i
    spec+="layer l-$r_i-$i $((800 + i * 300))"$'\n'"image $r_i-$t base l-$r_i-$i"$'\n'
    # hours; none within a day of the 7-day boundary (find's rounding is not what is tested)
    AGE_H[$r:$t]=$((24 + i * 5 * 24 + r_i * 3)); IMG[$r:$t]=$r_i-$t
  done
  IMG[$r:latest]=$r_i-sha-${r_i}0;     AGE_H[$r:latest]=${AGE_H[$r:sha-${r_i}0]}
  IMG[$r:production]=$r_i-sha-${r_i}6; AGE_H[$r:production]=${AGE_H[$r:sha-${r_i}6]}
  r_i=$((r_i + 1))
done
while read -r t d; do DIGEST[$t]=$d; done < <(oci_build "$OCI" <<<"$spec")
[ ${#DIGEST[@]} -eq 16 ] || bail "oci_build made ${#DIGEST[@]} images, not 16"

# The policy under test: keep latest/production, older than 7 days, but always keep the 3
# newest of each repository (the third newest is 11 days old: only keep-last keeps it).
# Expected deletions, computed from the ages chosen above: the unprotected tags of age
# > 7 days that are not among the 3 newest unprotected tags.
POLICY_OPTS=(--keep latest,production --older-than 7 --keep-last 3)
expected_doomed() {
  local r k
  for r in $REPOS; do
    for k in "${!AGE_H[@]}"; do
      [ "${k%%:*}" = "$r" ] || continue
      case ${k#*:} in latest|production) continue ;; esac
      echo "${AGE_H[$k]} ${k#*:}"
    done | sort -n | tail -n +4 | while read -r a t; do [ "$a" -gt $((8 * 24)) ] && echo "$r:$t"; done
  done | sort
}
expected_doomed >"$WORK/doomed"
log "$(wc -l <"$WORK/doomed") of ${#AGE_H[@]} tags are expected to go"
[ "$(wc -l <"$WORK/doomed")" -ge 8 ] || bail "test setup: too few tags to delete"
grep -q ':sha-02$' "$WORK/doomed" && bail "test setup: keep-last must be what keeps sha-02 (11 days old)"

# --- seed A, backdate, copy to B ----------------------------------------------------------------
DATA_A=$WORK/data-a; DATA_B=$WORK/data-b
start_regfs_registry "$DATA_A" || bail "regfs-registry did not start"
CFG_A=$REGISTRY_CONFIG
push_all() {
  local k n=0 e
  mkdir -p "$WORK/push"
  for k in "${!IMG[@]}"; do
    e=$WORK/push/${k//\//_}.err
    skopeo_copy "oci:$OCI:${IMG[$k]}" "docker://$REGISTRY_HOST/$k" 2>"$e" || echo "$k: $(tail -n 2 "$e")" &
    n=$((n + 1)); if [ $n -ge 4 ]; then wait -n; n=$((n - 1)); fi
  done
  wait
  for k in "${!IMG[@]}"; do [ -f "$(tag_link "$DATA_A" "${k%%:*}" "${k#*:}")" ] || return 1; done
}
check "skopeo pushes 2 × 10 tags" push_all || bail "pushes failed"
stop_pid "$REGISTRY_PID"
for k in "${!AGE_H[@]}"; do
  touch -m -d "@$((NOW - ${AGE_H[$k]} * 3600))" "$(tag_link "$DATA_A" "${k%%:*}" "${k#*:}")" || bail "backdate $k"
done
cp -a "$DATA_A" "$DATA_B" || bail "copy of the storage root"
# tag_pairs DATA — "repo:tag" of every tag on disk, sorted (independent of the tool)
tag_pairs() {
  local r
  for r in $REPOS; do ls "$1/docker/registry/v2/repositories/$r/_manifests/tags" | sed "s|^|$r:|"; done | sort
}
tag_pairs "$DATA_A" >"$WORK/all-tags"
comm -23 "$WORK/all-tags" "$WORK/doomed" >"$WORK/survivors"
sed 's/:/ /' "$WORK/doomed" >"$WORK/doomed.sp"
read -r FREED_B FREED_N < <(freed_by "$DATA_A" "$WORK/doomed.sp")
log "deleting them makes $FREED_B bytes ($FREED_N blobs) unreferenced (computed from the storage root)"

start_regfs_registry "$CFG_A" || bail "regfs-registry A did not restart"
REG_A=$REGISTRY_PID; HOST_A=$REGISTRY_HOST
MNT_A=$WORK/mnt-a
start_regfs_mount "$REGISTRY_URL" "$MNT_A" --ttl 1 --cache-dir "$WORK/cache-a" || bail "regfs did not mount A"
MOUNT_A=$MOUNT_PID
port=$(free_port)
write_registry_config "$WORK/b.yml" "$DATA_B" "$port"
start_regfs_registry "$WORK/b.yml" || bail "regfs-registry B did not start"
REG_B=$REGISTRY_PID; HOST_B=$REGISTRY_HOST; CFG_B=$WORK/b.yml
MNT_B=$WORK/mnt-b
start_regfs_mount "$REGISTRY_URL" "$MNT_B" --ttl 1 --cache-dir "$WORK/cache-b" || bail "regfs did not mount B"
MOUNT_B=$MOUNT_PID

# The policy file, in the documented format (comments, a block list, a flow list).
POL=$WORK/cleanup.policy
cat >"$POL" <<EOF
# weekly tag cleanup
keep:
  - latest
  - "production"
older-than: 7        # days
keep_last: 3
repos: [shop/*, tools]
apply: true
mountpoint: $MNT_A
EOF
would() { sed -n 's/^\(would delete\|deleted\) \([^ ]*:[^ ]*\) (sha256:.*/\2/p' | sort; }
no_match() { ! grep -qE "$1" "$2"; }   # no_match ERE FILE
summary_bytes() { sed -n 's/.* \([0-9][0-9]*\) bytes (.*/\1/p' | tail -n1; }

# --- 2. overrides and refusals first (nothing may be deleted by them) -------------------------
out=$(with_timeout 60 "$CLEANUP" --policy "$POL" --dry-run 2>&1); rc=$?
check_eq "--dry-run overrides 'apply: true': exit 0" 0 "$rc" || diag "$out"
check_files "--policy dry run names exactly the expected tags" "$WORK/doomed" <(would <<<"$out")
check "--policy dry run says it is a dry run" grep -q '^dry run: would delete' <<<"$out"
check "the policy line names the file and its settings" \
  grep -qF "policy $POL: keep=latest,production repos=shop/*,tools older-than=7 keep-last=3" <<<"$out"
opt_out=$(with_timeout 60 "$CLEANUP" "${POLICY_OPTS[@]}" "$MNT_B" 2>&1)
check_eq "the equivalent options' dry run on the copy: the same freed-bytes figure" \
  "$(summary_bytes <<<"$opt_out")" "$(summary_bytes <<<"$out")"
out=$(with_timeout 60 "$CLEANUP" --policy "$POL" --older-than 28 --dry-run 2>&1)
want=$(while read -r p; do
  a=${AGE_H[$p]}; [ "$a" -gt $((29 * 24)) ] && echo "$p"; done <"$WORK/doomed" | sort)
check "--older-than 28 selects fewer tags (test sanity)" test -n "$want" -a "$want" != "$(cat "$WORK/doomed")"
check_eq "--older-than 28 overrides the file's 7 (keep-last 3 still from the file)" "$want" "$(would <<<"$out")"
printf 'keep: latest\nolder-than: seven\n' >"$WORK/bad.policy"
out=$(with_timeout 60 "$CLEANUP" --policy "$WORK/bad.policy" "$MNT_A" 2>&1); rc=$?
check_eq "a bad value is refused (exit 2)" 2 "$rc"
check "... naming FILE:LINE and the value" grep -qF "$WORK/bad.policy:2: older-than wants whole days, got 'seven'" <<<"$out"
printf 'keep: latest\nolder: 7\n' >"$WORK/bad2.policy"
out=$(with_timeout 60 "$CLEANUP" --policy "$WORK/bad2.policy" "$MNT_A" 2>&1); rc=$?
check "an unknown key is refused (exit 2) naming FILE:LINE" \
  test "$rc" = 2 -a -n "$(grep -F "bad2.policy:2: unknown setting 'older'" <<<"$out")"
check_files "nothing was deleted so far (A)" "$WORK/all-tags" <(tag_pairs "$DATA_A")

# --- 1 + 3. the policy applied under a pty (A); the options applied with stderr a file (B) --------
with_timeout 120 script -qec "'$CLEANUP' --policy '$POL' 2>'$WORK/a.err' >'$WORK/a.out'; echo \$? >'$WORK/a.rc'" /dev/null >/dev/null
# stdout and stderr both redirected inside script: the pty is only the controlling terminal
check_eq "policy --apply with stderr a file: exit 0" 0 "$(cat "$WORK/a.rc" 2>/dev/null)" || diag "$(cat "$WORK/a.err")"
check "... draws no progress line (stderr is not a terminal)" no_match 'delete: |'$'\r' "$WORK/a.err"
check_files "policy --apply deleted exactly the expected tags (its log)" "$WORK/doomed" <(would <"$WORK/a.out")
check_eq "... and logs the freed bytes computed from the storage root" "$FREED_B" "$(summary_bytes <"$WORK/a.out")"
check "... in a summary line" grep -qE "^deleted $(wc -l <"$WORK/doomed") of $(wc -l <"$WORK/doomed") tags in 2 repositories; $FREED_B bytes" "$WORK/a.out"
check_files "A: the surviving tags on disk are the expected ones" "$WORK/survivors" <(tag_pairs "$DATA_A")
for r in $REPOS; do
  check_eq "A: skopeo list-tags $r = the expected survivors" "$(grep "^$r:" "$WORK/survivors" | cut -d: -f2 | xargs)" \
    "$(list_tags "$HOST_A" "$r" | xargs)"
done

# B: options with --apply, stderr on the pty (stdout a file): the progress line appears
with_timeout 120 script -qec "'$CLEANUP' ${POLICY_OPTS[*]} --apply '$MNT_B' >'$WORK/b.out'; echo \$? >'$WORK/b.rc'" /dev/null >"$WORK/b.tty"
check_eq "options --apply with stderr a terminal: exit 0" 0 "$(cat "$WORK/b.rc" 2>/dev/null)" || diag "$(cat "$WORK/b.tty")"
n=$(wc -l <"$WORK/doomed")
check "... draws the progress line on the terminal (delete: $n/$n tags (100%))" \
  grep -qF $'\r'"delete: $n/$n tags (100%)" "$WORK/b.tty"
check_files "the options deleted the same tags as the policy" <(would <"$WORK/a.out") <(would <"$WORK/b.out")
check_eq "... and log the same freed bytes" "$(summary_bytes <"$WORK/a.out")" "$(summary_bytes <"$WORK/b.out")"
for r in $REPOS; do
  check_eq "B: skopeo list-tags $r = A's" "$(list_tags "$HOST_A" "$r" | xargs)" "$(list_tags "$HOST_B" "$r" | xargs)"
done

# --- 3. garbage-collect's progress: offline, registries stopped -------------------------------
unmount "$MNT_A"; stop_pid "$MOUNT_A"; unmount "$MNT_B"; stop_pid "$MOUNT_B"
stop_pid "$REG_A"; stop_pid "$REG_B"
nblobs=$(stored_blobs "$DATA_A" | wc -l)
with_timeout 120 script -qec "'$REGFS_REGISTRY' garbage-collect --delete-untagged '$CFG_A' >'$WORK/gca.out'; echo \$? >'$WORK/gca.rc'" /dev/null >"$WORK/gca.tty"
check_eq "garbage-collect under a pty: exit 0" 0 "$(cat "$WORK/gca.rc" 2>/dev/null)" || diag "$(tail -n 5 "$WORK/gca.tty")"
check "... draws the sweep progress line on stderr (sweep: $nblobs/$nblobs blobs (100%))" \
  grep -qF $'\r'"sweep: $nblobs/$nblobs blobs (100%)" "$WORK/gca.tty"
check "... and the mark line (mark: 2 repositories)" grep -qF $'\r'"mark: 2 repositories" "$WORK/gca.tty"
"$REGFS_REGISTRY" garbage-collect --delete-untagged "$CFG_B" >"$WORK/gcb.out" 2>"$WORK/gcb.err"
check_eq "garbage-collect without a terminal: exit 0" 0 "$?"
check "... draws no progress line" no_match 'sweep:|mark:|'$'\r' "$WORK/gcb.err"
gc_bytes() { sed -n 's/.* \([0-9][0-9]*\) bytes.*/\1/p' "$1" | tail -n1; }
check_eq "both collections report the same freed bytes with and without the pty" \
  "$(gc_bytes "$WORK/gca.out")" "$(gc_bytes "$WORK/gcb.out")"
check_files "A and B keep the same blobs" <(stored_blobs "$DATA_A") <(stored_blobs "$DATA_B")

# --- 3. the benchmarks' progress line (bench/progress.sh), same rule ----------------------------
bench_prog='. "$1/bench/progress.sh"; progress_begin bench reads 3; for i in 1 2 3; do progress_step 1048576; done; progress_end'
with_timeout 30 script -qec "bash -c '$bench_prog' _ '$REGFS_SRC'" /dev/null >"$WORK/bench.tty" 2>&1
check "bench/progress.sh draws its line on a terminal (bench: 3/3 reads (100%), 3.0 MiB)" \
  grep -qF $'\r'"bench: 3/3 reads (100%), 3.0 MiB" "$WORK/bench.tty"
bash -c "$bench_prog" _ "$REGFS_SRC" >"$WORK/bench.out" 2>&1
check_eq "... and nothing when stderr is not a terminal" 0 "$(wc -c <"$WORK/bench.out")"
check_daemon_logs
done_testing
