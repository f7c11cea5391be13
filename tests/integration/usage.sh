#!/bin/bash
# The mount's storage accounting equals an independent computation from the registry's
# HTTP API (tools/mount_usage_expect.py: manifests -> blob sizes, set arithmetic), on
# regfs-registry and docker-registry, over a registry with base layers shared across
# repositories, an image index of two platforms, untagged manifests (pushed by digest; a
# re-pointed tag), referrers (pushed by digest with a subject: on a kept tag, on that referrer,
# on a deleted tag), a blob no manifest references and an abandoned upload:
# user.regfs.bytes / exclusive / shared of the root, every namespace and repository
# directory and every tag; `du -s -B1` of each directory; .regfs/usage's total,
# per-repository table (tags, manifests, bytes, exclusive, shared, largest layers) and its
# retention view; regfs-cleanup's prediction, per repository and in total; and after --apply
# and a garbage collection, `du -s -B1` of the mount dropped by exactly the prediction and,
# where the registry offers the usage extension, its garbage figure (in .regfs/usage) is 0.
# Referrers a kept tag reaches are kept by regfs-registry's collection (and the figures say
# so); registry:2's collection deletes them (it has no notion of referrers) and the mount,
# which cannot list untagged manifests there, counts none of them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"   # check_daemon_logs
need_regfs_mount
need_bin getfattr jq python3

TOOLS=$REGFS_SRC/tests/integration/tools
CLEANUP=$REGFS_SRC/tools/regfs-cleanup
xattr() { getfattr --only-values -n "user.regfs.$2" "$1" 2>/dev/null; }
du_of() { du -s -B1 "$1" | cut -f1; }
usage_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/_regfs/usage")" = 200 ]; }

# check_fig NAME PATH JSON — the three xattrs of PATH equal JSON's figures.
check_fig() {
  local want got
  want=$(jq -r '"\(.bytes) \(.exclusive) \(.shared)"' <<<"$3")
  got="$(xattr "$2" bytes) $(xattr "$2" exclusive) $(xattr "$2" shared)"
  check_eq "$1: bytes exclusive shared" "$want" "$got"
}

# the tags the cleanup keeps (it deletes the others)
KEEP=team/app:latest,team/lib:1.0,solo:only
for k in $(registry_kinds); do
  D=$WORK/data-$k
  start_registry "$k" "$D" || bail "$k registry did not start"
  CFG=$REGISTRY_CONFIG
  REFS=$(python3 "$TOOLS/mount_usage_push.py" "$REGISTRY_URL") || bail "$k: pushing the test registry"
  M=$WORK/mnt-$k
  start_regfs_mount "$REGISTRY_URL" "$M" --ttl 60 --cache-dir "$WORK/cache-$k" || bail "regfs did not mount ($k)"
  check "$k: .regfs/usage reads" cp "$M/.regfs/usage" "$WORK/$k.usage.json"
  now=$(jq -r .now "$WORK/$k.usage.json")
  : >"$WORK/$k.times"
  for r in team/app team/lib other/multi solo; do
    for t in "$M/$r/_tags/"*; do echo "$r ${t##*/} $(stat -c %Y "$t")"; done >>"$WORK/$k.times"
  done
  python3 "$TOOLS/mount_usage_expect.py" "$REGISTRY_URL" "$k" "$now" "$WORK/$k.times" "$KEEP" >"$WORK/$k.want.json" ||
    bail "$k: the independent computation failed"
  W=$WORK/$k.want.json
  check "$k: the test registry has shared bytes in team/app (test sanity)" \
    test "$(jq '.dirs["team/app"].shared' "$W")" -gt 0
  check "$k: and untagged bytes in team/lib (test sanity)" \
    test "$(jq '.dirs["team/lib"].bytes - .groups["team/lib 1.0"].bytes' "$W")" -gt 0
  for p in $(jq -r '.dirs | keys[]' "$W"); do
    f=$(jq -c --arg p "$p" '.dirs[$p]' "$W")
    check_fig "$k: /$p" "$M/$p" "$f"
    check_eq "$k: du -s -B1 /$p = its blobs rounded up to 512" "$(jq .du <<<"$f")" "$(du_of "$M/$p")"
  done
  for g in $(jq -r '.groups | keys[] | gsub(" "; ":")' "$W"); do
    f=$(jq -c --arg g "${g/:/ }" '.groups[$g]' "$W")
    check_fig "$k: tag $g" "$M/${g%%:*}/_tags/${g#*:}" "$f"
  done
  for g in $(jq -r '.manifests | keys[] | gsub(" "; "@")' "$W"); do
    f=$(jq -c --arg g "${g/@/ }" '.manifests[$g]' "$W")
    check_fig "$k: referrer ${g%%@*}@${g#*@}" "$M/${g%%@*}/_manifests/${g#*@}" "$f"
  done
  if [ "$k" = regfs ]; then
    check "$k: the test registry has kept referrers (test sanity)" \
      test "$(jq '.manifests | length' "$W")" -eq 3
  fi
  # .regfs/usage
  U=$WORK/$k.usage.json
  check_eq "$k: retention: bytes no tag keeps" "$(jq .untagged "$W")" "$(jq .retention.untagged "$U")"
  check_eq "$k: .regfs/usage total = the root's bytes" "$(jq '.dirs[""].bytes' "$W")" "$(jq .total.bytes "$U")"
  check_eq "$k: .regfs/usage per repository" \
    "$(jq -c '.repos | to_entries | map({name: .key, tags: .value.tags, manifests: .value.manifests,
        bytes: .value.bytes, exclusive: .value.exclusive, shared: .value.shared,
        largest: .value.largest})' "$W")" \
    "$(jq -c '.repositories | map({name, tags, manifests, bytes, exclusive, shared,
        largest: (.largest_layers | map([.digest, .size]))})' "$U")"
  check_eq "$k: retention: what deleting tags older than 1, 7, 30 days frees" \
    "$(jq -c '.older_than | [.["1"], .["7"], .["30"]]' "$W")" \
    "$(jq -c '.retention.delete_older_than | [.["1"], .["7"], .["30"]]' "$U")"
  check "$k: .regfs/usage.txt lists the largest repository first" \
    grep -q "^$(jq -r '.repos | to_entries | max_by(.value.bytes) | .key' "$W") " \
    <(sed -n '/^REPOSITORY/{n;p;q}' "$M/.regfs/usage.txt")

  if curl -sI "$REGISTRY_URL/v2/" | grep -qi '^x-regfs-extensions:.*\busage\b'; then
    check "$k: the usage extension answers" wait_for 30 usage_ready
    check "$k: .regfs/usage has the registry's garbage figure, not 0 before the collection" \
      test "$(jq '.registry.garbage.total' "$M/.regfs/usage")" -gt 0
    # the registry's totals are whole in every page: a page of 2 repositories (fewer than
    # the registry has) gives those of the whole listing, and .regfs/usage shows them
    tot='{stored, referenced, garbage}'
    all=$(curl -s "$REGISTRY_URL/v2/_regfs/usage")
    page=$(curl -s -D "$WORK/$k.page.hdr" "$REGISTRY_URL/v2/_regfs/usage?n=2")
    check "$k: the registry has more repositories than a page, which links the next (test sanity)" \
      test "$(jq '.repositories | length' <<<"$all")" -gt "$(jq '.repositories | length' <<<"$page")" \
      -a -n "$(grep -i '^link:' "$WORK/$k.page.hdr")"
    check_eq "$k: the totals of a page = those of the whole listing" "$(jq -c "$tot" <<<"$all")" \
      "$(jq -c "$tot" <<<"$page")"
    check_eq "$k: .regfs/usage's registry figures = the extension's totals" "$(jq -c "$tot" <<<"$all")" \
      "$(jq -c ".registry | $tot" "$M/.regfs/usage")"
  fi

  # regfs-cleanup: its prediction, per repository and in total; --apply; a collection;
  # du -s -B1 of the mount dropped by exactly the prediction
  out=$("$CLEANUP" --keep-last 0 --keep 'latest,1.0,only' "$M" 2>&1); rc=$?
  check_eq "$k: cleanup dry run succeeds" 0 "$rc" || diag "$out"
  check_eq "$k: it would delete the tags not kept" "other/multi:2024 team/app:v1 team/app:v2 team/lib:tmp" \
    "$(sed -n 's/^would delete \([^ ]*\) .*/\1/p' <<<"$out" | sort | xargs)"
  got=$(sed -n 's/^dry run: [^;]*; \([0-9]*\) bytes ([^,]*, \([0-9]*\) blobs).*drops by \([0-9]*\) .*/\1 \2 \3/p' <<<"$out")
  check_eq "$k: predicted bytes, blobs, du drop = the independent figure" \
    "$(jq -r '.cleanup | "\(.bytes) \(.blobs) \(.du)"' "$W")" "$got" || diag "$out"
  check_eq "$k: predicted per repository = the independent figure" \
    "$(jq -r '.cleanup.per_repo | to_entries | map("\(.key) \(.value)") | sort | .[]' "$W")" \
    "$(sed -n 's/^would free in \([^:]*\): \([0-9]*\) bytes.*/\1 \2/p; s/^would free across repositories: \([0-9]*\) bytes.*/*shared* \1/p' <<<"$out" | sort)" || diag "$out"
  before=$(du_of "$M")
  out=$("$CLEANUP" --keep-last 0 --keep 'latest,1.0,only' --apply "$M" 2>&1); rc=$?
  check_eq "$k: cleanup --apply succeeds" 0 "$rc" || diag "$out"
  check_eq "$k: --apply measures what it frees in all = the prediction" "$(jq .cleanup.du "$W")" \
    "$(sed -n 's/^measured after the deletions: .*: \([0-9]*\) in all$/\1/p' <<<"$out")" || diag "$out"
  unmount "$M"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
  if [ "$k" = docker ]; then gc=("$DOCKER_REGISTRY" garbage-collect --delete-untagged "$CFG")
  else gc=("$REGFS_REGISTRY" garbage-collect --delete-untagged "$CFG"); fi
  gcout=$(env -u AWS_CA_BUNDLE "${gc[@]}" 2>&1) || { fail "$k: garbage-collect --delete-untagged"; diag "$(tail -n 5 <<<"$gcout")"; }
  start_registry "$k" "$CFG" || bail "$k registry did not restart"
  start_regfs_mount "$REGISTRY_URL" "$M-2" --ttl 60 --cache-dir "$WORK/cache-$k-2" || bail "regfs did not remount ($k)"
  after=$(du_of "$M-2")
  # what the collection did with the referrers: regfs-registry keeps those whose subject
  # a kept tag reaches; registry:2 deletes every untagged manifest
  want="200 200 404"; [ "$k" = docker ] && want="404 404 404"
  check_eq "$k: referrers kept, chained, dropped after the collection (HTTP status)" "$want" \
    "$(for r in kept chained dropped; do
         curl -s -o /dev/null -w '%{http_code} ' -H "Accept: application/vnd.oci.image.manifest.v1+json" \
           "$REGISTRY_URL/v2/team/app/manifests/$(jq -r ".$r" <<<"$REFS")"
       done | xargs)"
  check_eq "$k: du -s -B1 dropped by the predicted figure ($before -> $after)" "$(jq .cleanup.du "$W")" "$((before - after))"
  if curl -sI "$REGISTRY_URL/v2/" | grep -qi '^x-regfs-extensions:.*\busage\b'; then
    # its accounting is built by a walk after the start (503 until then)
    check "$k: the usage extension answers after the restart" wait_for 30 usage_ready
    check_eq "$k: the registry's garbage figure is 0 after the collection" 0 \
      "$(jq .registry.garbage.total "$M-2/.regfs/usage")"
  fi
  unmount "$M-2"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
done
check_daemon_logs
done_testing
