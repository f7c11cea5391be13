#!/bin/bash
# rm of a tag never deletes a manifest by digest while another tag of the repository could
# not be resolved or was not in the mount's last listing. A fault-injecting proxy in front of
# the registry fails every request for one tag (500, a closed connection, or no answer);
# `regfs --protect garbage-copy`; `rm _tags/victim` (same digest as garbage-copy) must leave
# garbage-copy where it was. Also: a tag pushed after the mount listed the repository, on
# the digest of the tag being removed, survives that removal. Against Debian's
# docker-registry (which cannot delete tags: the mount's fallback decides) and regfs-registry.
# Verified with curl straight at the registry (not through the proxy or the mount).
. "$(dirname "$0")/tags_lib.sh"
tags_prelude C < <(tags_spec 3000 2000 A B C)
R=repro

# digest KIND-HOST TAG — what TAG points at, asked straight from the registry
digest() { registry_state "$1" "$R" | awk -v t="$2" '$1 == t { print $2 }'; }

run_kind() {
  local k=$1 H act mnt T out
  log "=== $k ==="
  tags_registry "$k" "$WORK/data-$k" || return
  check "$k: push A as victim and garbage-copy, B as other, C as solo" \
    push_tags "$H" "$R" imgA:victim imgA:garbage-copy imgB:other imgC:solo || return
  start_faultproxy "$REGISTRY_URL" || { fail "$k: faultproxy starts"; return; }

  for act in 500 close hang; do
    log "--- $k: every request for garbage-copy: $act ---"
    # put victim back for each round (the previous round removed it)
    [ "$(digest "$H" victim)" = "$A" ] || skopeo_copy "oci:$OCI:imgA" "docker://$H/$R:victim" ||
      { fail "$k/$act: re-push victim"; continue; }
    proxy_rules '[{"method":"*","path":"^/v2/repro/manifests/garbage-copy$","action":"'"$act"'"}]'
    mnt=$WORK/mnt-$k-$act; T=$mnt/$R/_tags
    tags_mount "$k/$act" "$PROXY_URL" "$mnt" --ttl 1 --timeout 2 --cache-dir "$WORK/cache-$k-$act" \
      --protect garbage-copy || continue
    out=$(rm "$T/victim" 2>&1)
    log "rm _tags/victim: ${out:-exit 0}"
    check_eq "$k/$act: garbage-copy still points at A (curl at the registry)" "$A" "$(digest "$H" garbage-copy)"
    check_eq "$k/$act: manifest A is still there (skopeo inspect by digest)" "$A" "$(raw_digest "$H" "$R@$A")"
    if [ -z "$out" ]; then
      check_eq "$k/$act: rm succeeded, so victim is gone" "" "$(digest "$H" victim)"
    else
      check_eq "$k/$act: rm failed, so victim still points at A" "$A" "$(digest "$H" victim)"
    fi
    check_eq "$k/$act: other and solo untouched" "$B $C" "$(digest "$H" other) $(digest "$H" solo)"
    if [ "$k" = docker ]; then
      check "$k/$act: the log says why it did not delete by digest" \
        grep -q "garbage-copy could not be resolved" "$MOUNT_LOG"
    fi
    unmount "$mnt"; stop_pid "$MOUNT_PID"
  done
  proxy_rules '[]'

  # A tag pushed after the mount listed the repository, on solo's digest: removing solo
  # must not delete C by digest (the mount checks the registry's current tag list).
  mnt=$WORK/mnt-$k-late; T=$mnt/$R/_tags
  tags_mount "$k (late)" "$REGISTRY_URL" "$mnt" --ttl 60 --cache-dir "$WORK/cache-$k-late" || return
  check_eq "$k: the mount lists the tags" "garbage-copy other solo" "$(ls "$T" | grep -v '^victim$' | xargs)"
  check "$k: push C as late, behind the mount's back" skopeo_copy "oci:$OCI:imgC" "docker://$H/$R:late"
  check "$k: rm _tags/solo" rm "$T/solo"
  check_eq "$k: solo is gone (curl)" "" "$(digest "$H" solo)"
  check_eq "$k: late still points at C (curl)" "$C" "$(digest "$H" late)"
  check_eq "$k: manifest C is still there (skopeo inspect by digest)" "$C" "$(raw_digest "$H" "$R@$C")"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in $(registry_kinds); do run_kind "$k"; done
check_daemon_logs
done_testing
