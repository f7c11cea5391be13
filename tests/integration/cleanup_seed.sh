#!/bin/bash
# The seed's daily job through the mount: 3 repositories × 20 `sha-…`
# tags pushed (skopeo) to regfs-registry, push times spread over 30 days (the tag link files
# in the storage root backdated with touch -d), plus latest/production/staging.
#   A: the documented one-liner
#        find MNT -path '*/_tags/*' -mtime +7 ! -name latest ! -name production ! -name staging -delete
#   B: the same state, fresh: tools/regfs-cleanup --older-than 7 --keep latest,production,staging
#      (dry run first: prints exactly the doomed tags and deletes nothing), then --apply
# each removes exactly the old sha tags (skopeo list-tags against the set computed here from
# the ages we chose); then `regfs-registry garbage-collect` (plain, then --delete-untagged)
# frees exactly the blobs nothing references (expected sets computed from the manifests on
# disk, compared with blobs/ on disk), and `du -s -B1` of the mount before and after equals
# the sum of the unique blobs' sizes rounded up to 512, computed from the storage root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_registry
need_regfs_mount
need_bin skopeo jq

REPOS="shop/web shop/api tools"
KEEP_NAMES="latest production staging"
NOW=$(date +%s)

# --- images: 3 × 20 distinct, small; all share a base layer, a repository's share a second ----
OCI=$WORK/oci
declare -A AGE_H IMG          # AGE_H[repo:tag] = age in hours; IMG[repo:tag] = OCI tag to push
declare -A EXPECT_KEEP         # EXPECT_KEEP[repo] = sorted tags expected after cleanup
declare -A DIGEST              # DIGEST[OCI tag] = manifest digest
spec="layer base 6000"$'\n'
r_i=0
for r in $REPOS; do
  spec+="layer repo-$r_i 3000"$'\n'
  shas=()
  for ((i = 0; i < 20; i++)); do
    t=sha-$(printf '%04x%04x%04x' $RANDOM $RANDOM $RANDOM)
    spec+="layer $r_i-$t $((500 + RANDOM % 3000))"$'\n'"image $r_i-$t base repo-$r_i $r_i-$t"$'\n'
    # ages spread over 30 days; none within [160 h, 200 h) so that "older than 7 days"
    # means the same for find's -mtime +7 (whole days > 7) and for any sane --older-than
    a=$((2 + i * 36 + r_i * 7))
    if [ $a -ge 160 ] && [ $a -lt 200 ]; then if [ $a -lt 180 ]; then a=150; else a=210; fi; fi
    AGE_H[$r:$t]=$a; IMG[$r:$t]=$r_i-$t; shas+=("$t")
  done
  # latest = the newest sha, staging = a recent one, production = an old one (so the
  # name alone keeps it; its sha tag goes, the manifest they share must stay)
  IMG[$r:latest]=${IMG[$r:${shas[0]}]};      AGE_H[$r:latest]=${AGE_H[$r:${shas[0]}]}
  IMG[$r:staging]=${IMG[$r:${shas[3]}]};     AGE_H[$r:staging]=${AGE_H[$r:${shas[3]}]}
  IMG[$r:production]=${IMG[$r:${shas[12]}]}; AGE_H[$r:production]=${AGE_H[$r:${shas[12]}]}
  r_i=$((r_i + 1))
done
while read -r t d; do DIGEST[$t]=$d; done < <(oci_build "$OCI" <<<"$spec")
[ ${#DIGEST[@]} -eq 60 ] || bail "oci_build made ${#DIGEST[@]} images, not 60"
for k in "${!AGE_H[@]}"; do
  r=${k%%:*}; t=${k#*:}
  case " $KEEP_NAMES " in *" $t "*) EXPECT_KEEP[$r]+="$t"$'\n'; continue ;; esac
  [ "${AGE_H[$k]}" -lt 200 ] && EXPECT_KEEP[$r]+="$t"$'\n'
done
for r in $REPOS; do EXPECT_KEEP[$r]=$(printf '%s' "${EXPECT_KEEP[$r]}" | sort); done
expected_doomed() {  # the sha tags the cleanup must delete, "repo tag" lines, sorted
  local k
  for k in "${!AGE_H[@]}"; do
    case " $KEEP_NAMES " in *" ${k#*:} "*) continue ;; esac
    [ "${AGE_H[$k]}" -ge 200 ] && echo "${k%%:*} ${k#*:}"
  done | sort
}
log "$(expected_doomed | wc -l) of $(( ${#AGE_H[@]} )) tags are expected to go"

# --- push everything (4 at a time), then backdate the tag links -------------------------------
DATA_A=$WORK/data-a; DATA_B=$WORK/data-b
start_regfs_registry "$DATA_A" || bail "regfs-registry did not start"
CFG_A=$REGISTRY_CONFIG
push_all() {
  local k n=0 failed=0 e
  mkdir -p "$WORK/push"
  for k in "${!IMG[@]}"; do
    e=$WORK/push/${k//\//_}.err
    skopeo_copy "oci:$OCI:${IMG[$k]}" "docker://$REGISTRY_HOST/${k%%:*}:${k#*:}" 2>"$e" || echo "$k: $(tail -n 2 "$e")" &
    n=$((n + 1)); if [ $n -ge 4 ]; then wait -n; n=$((n - 1)); fi
  done
  wait
  # a failed push printed its error line above; the registry must hold every tag
  for k in "${!IMG[@]}"; do
    [ -f "$(tag_link "$DATA_A" "${k%%:*}" "${k#*:}")" ] || { echo "missing after push: $k"; failed=$((failed + 1)); }
  done
  [ $failed -eq 0 ]
}
check "skopeo pushes 3 × 23 tags" push_all || bail "pushes failed"
stop_pid "$REGISTRY_PID"
backdate() {   # one python3 for the 69 files (touch -m -d @T, without 69 processes)
  local k
  for k in "${!AGE_H[@]}"; do
    echo "$((NOW - ${AGE_H[$k]} * 3600)) $(tag_link "$DATA_A" "${k%%:*}" "${k#*:}")"
  done | python3 -c '
import os, sys
for line in sys.stdin:
    t, p = line.rstrip("\n").split(" ", 1)
    os.utime(p, (int(t), int(t)))   # fails (and so the check) when a link file is missing
'
}
check "backdate the 69 tag link files (as touch -d would)" backdate || bail "backdate"
cp -a "$DATA_A" "$DATA_B" || bail "copy of the storage root for scenario B"

# --- helpers for both scenarios ----------------------------------------------------------------
tags_are_expected() {   # tags_are_expected LABEL — skopeo list-tags of each repo = EXPECT_KEEP
  local r
  for r in $REPOS; do
    check_eq "$1: $r tags = the expected survivors" "$(echo ${EXPECT_KEEP[$r]})" "$(list_tags "$REGISTRY_HOST" "$r" | xargs)"
  done
}
# digests_still_resolve LABEL — every surviving tag still points at the manifest it had
# (Docker-Content-Digest of a HEAD, against the digest oci_build made).
digests_still_resolve() {
  local r t bad=""
  while read -r r t got; do
    [ "$got" = "${DIGEST[${IMG[$r:$t]}]}" ] || bad+=" $r:$t($got)"
  done < <(for r in $REPOS; do for t in ${EXPECT_KEEP[$r]}; do echo "$r $t"; done; done | tag_digests "$REGISTRY_URL")
  check_eq "$1: every surviving tag still resolves to its manifest" "" "$bad"
}
# du_of_mount MNT — du -s -B1 of the mount root (bytes)
du_of_mount() { du -s -B1 "$1" | cut -f1; }
# gc_and_du LABEL DATA MNT — unmounts MNT and stops the registry, runs both garbage
# collections against exact expected sets, restarts the registry, mounts again, checks du.
gc_and_du() {
  local L=$1 D=$2 mnt=$3 cfg=$REGISTRY_CONFIG out rc
  unmount "$mnt"
  stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
  stored_blobs "$D" >"$WORK/$L.stored0"
  reachable "$D" all >"$WORK/$L.reach-all"
  comm -23 "$WORK/$L.stored0" "$WORK/$L.reach-all" >"$WORK/$L.expect-freed1"
  out=$("$REGFS_REGISTRY" garbage-collect "$cfg" 2>&1); rc=$?
  check_eq "$L: garbage-collect succeeds" 0 "$rc" || diag "$(tail -n 20 <<<"$out")"
  stored_blobs "$D" >"$WORK/$L.stored1"
  comm -23 "$WORK/$L.stored0" "$WORK/$L.stored1" >"$WORK/$L.freed1"
  log "$L: plain gc: $(wc -l <"$WORK/$L.stored0") stored, $(wc -l <"$WORK/$L.expect-freed1") unreferenced by any manifest"
  check_files "$L: garbage-collect frees exactly the blobs no manifest references" "$WORK/$L.expect-freed1" "$WORK/$L.freed1"

  reachable "$D" tagged >"$WORK/$L.reach-tagged"
  comm -23 "$WORK/$L.stored1" "$WORK/$L.reach-tagged" >"$WORK/$L.expect-freed2"
  log "$L: --delete-untagged must free $(wc -l <"$WORK/$L.expect-freed2") of $(wc -l <"$WORK/$L.stored1") blobs"
  check "$L: the old tags' images leave blobs to free (test sanity)" test -s "$WORK/$L.expect-freed2"
  out=$("$REGFS_REGISTRY" garbage-collect --delete-untagged "$cfg" 2>&1); rc=$?
  check_eq "$L: garbage-collect --delete-untagged succeeds" 0 "$rc" || diag "$(tail -n 20 <<<"$out")"
  stored_blobs "$D" >"$WORK/$L.stored2"
  comm -23 "$WORK/$L.stored1" "$WORK/$L.stored2" >"$WORK/$L.freed2"
  check_files "$L: --delete-untagged frees exactly the blobs only untagged manifests reference" \
    "$WORK/$L.expect-freed2" "$WORK/$L.freed2"
  check_files "$L: ... and keeps exactly what the surviving tags reach" "$WORK/$L.reach-tagged" "$WORK/$L.stored2"
  check "$L: kept blobs hash to their digests" store_blobs_ok "$D"

  start_regfs_registry "$cfg" || { fail "$L: regfs-registry restarts after gc"; return 1; }
  tags_are_expected "$L after gc"
  digests_still_resolve "$L after gc"
  start_regfs_mount "$REGISTRY_URL" "$mnt-2" --ttl 1 --cache-dir "$WORK/cache-$L-2" ||
    { fail "$L: regfs remounts after gc"; return 1; }
  local want; want=$(du_total "$D" "$WORK/$L.stored2")
  check_eq "$L: du -s -B1 after cleanup+gc = sum of the kept blobs rounded up to 512 ($want)" \
    "$want" "$(du_of_mount "$mnt-2")"
  log "$L: du before $DU_BEFORE, after $(du_of_mount "$mnt-2")"
  unmount "$mnt-2"; stop_pid "$MOUNT_PID"
}

# --- scenario A: the find one-liner -------------------------------------------------------
start_regfs_registry "$CFG_A" || bail "regfs-registry did not restart"
for r in $REPOS; do
  check_eq "A: $r has its 23 tags before cleanup" 23 "$(list_tags "$REGISTRY_HOST" "$r" | wc -l)"
done
MNT=$WORK/mnt-a
start_regfs_mount "$REGISTRY_URL" "$MNT" --ttl 1 --cache-dir "$WORK/cache-a" || bail "regfs did not mount"
stored_blobs "$DATA_A" >"$WORK/all.blobs"
DU_BEFORE=$(du_total "$DATA_A" "$WORK/all.blobs")
check_eq "A: du -s -B1 of the mount before = sum of all stored blobs rounded up to 512 ($DU_BEFORE)" \
  "$DU_BEFORE" "$(du_of_mount "$MNT")"
# What find selects (without -delete) shows whether the mount's tag mtimes are right,
# separately from whether deleting works.
sel=$(cd "$MNT" && find . -path '*/_tags/*' -mtime +7 ! -name latest ! -name production ! -name staging |
  sed 's|^\./||; s|/_tags/| |' | sort)
check_eq "A: find -mtime +7 selects exactly the old sha tags (tag mtime = push time)" "$(expected_doomed)" "$sel"
out=$(find "$MNT" -path '*/_tags/*' -mtime +7 ! -name latest ! -name production ! -name staging -delete 2>&1); rc=$?
check_eq "A: the find … -delete one-liner succeeds" 0 "$rc" || diag "$(head -n 10 <<<"$out")"
tags_are_expected "A"
for r in $REPOS; do
  check_eq "A: ls $r/_tags shows the result at once" "$(echo ${EXPECT_KEEP[$r]})" "$(ls "$MNT/$r/_tags" 2>&1 | sort | xargs)"
done
digests_still_resolve "A"
# Deleting tags frees nothing by itself: the manifests stay (untagged) until GC, and with
# regfs-registry's repo-manifests extension the mount still lists (and du counts) them.
reachable "$DATA_A" all >"$WORK/A.mid"
check_eq "A: du -s -B1 after the deletes, before gc = what every manifest still references" \
  "$(du_total "$DATA_A" "$WORK/A.mid")" "$(du_of_mount "$MNT")"
gc_and_du A "$DATA_A" "$MNT"
stop_pid "$REGISTRY_PID"

# --- scenario B: tools/regfs-cleanup on a fresh copy of the same state -------------------------
CLEANUP=""
for c in "$REGFS_BUILD/tools/regfs-cleanup" "$REGFS_SRC/tools/regfs-cleanup"; do
  [ -x "$c" ] && { CLEANUP=$c; break; }
done
if [ -z "$CLEANUP" ]; then
  fail "B: tools/regfs-cleanup exists" "scenario B not run"
  done_testing
fi
port=$(free_port)
write_registry_config "$WORK/b.yml" "$DATA_B" "$port"
start_regfs_registry "$WORK/b.yml" || bail "regfs-registry (B) did not start"
MNT=$WORK/mnt-b
start_regfs_mount "$REGISTRY_URL" "$MNT" --ttl 1 --cache-dir "$WORK/cache-b" || bail "regfs did not mount (B)"
check_eq "B: du -s -B1 of the fresh copy = the same total as A before ($DU_BEFORE)" "$DU_BEFORE" "$(du_of_mount "$MNT")"
out=$(cd "$MNT" && with_timeout 120 "$CLEANUP" --older-than 7 --keep latest,production,staging "$MNT" 2>&1); rc=$?
check_eq "B: regfs-cleanup dry run succeeds" 0 "$rc" || diag "$(head -n 20 <<<"$out")"
missing=""; extra=""
while read -r r t; do grep -qF -- "$t" <<<"$out" || missing+=" $r:$t"; done < <(expected_doomed)
for k in "${!AGE_H[@]}"; do
  case " $KEEP_NAMES " in *" ${k#*:} "*) continue ;; esac
  [ "${AGE_H[$k]}" -lt 200 ] && grep -qF -- "${k#*:}" <<<"$out" && extra+=" $k"
done
check_eq "B: the dry run names every old sha tag" "" "$missing"
check_eq "B: ... and no tag it must keep" "" "$extra" || diag "$(head -n 20 <<<"$out")"
expected_doomed >"$WORK/doomed"
read -r fb fn < <(freed_by "$DATA_B" "$WORK/doomed")
check "B: the dry run reports the bytes that would become unreferenced: $fb bytes, $fn blobs (computed from disk)" \
  grep -qE "(^|[^0-9])$fb bytes.*(^|[^0-9])$fn blobs" <<<"$out"
for r in $REPOS; do
  check_eq "B: dry run deleted nothing ($r has 23 tags)" 23 "$(list_tags "$REGISTRY_HOST" "$r" | wc -l)"
done
out=$(cd "$MNT" && with_timeout 120 "$CLEANUP" --older-than 7 --keep latest,production,staging --apply "$MNT" 2>&1); rc=$?
check_eq "B: regfs-cleanup --older-than 7 --keep latest,production,staging --apply succeeds" 0 "$rc" ||
  diag "$(head -n 20 <<<"$out")"
tags_are_expected "B"
digests_still_resolve "B"
gc_and_du B "$DATA_B" "$MNT"
check_daemon_logs
done_testing
