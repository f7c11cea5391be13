#!/bin/bash
# kill -9 of the registry during 20 parallel skopeo pushes, restart:
# every push that completed pulls byte-identical, no stored blob's content differs from
# its digest (sha256sum of every blobs/…/data), no tag points at a manifest or blob that
# is not there, and the interrupted pushes succeed when retried.
# CRASH_KIND=docker self-tests the script against docker-registry.
. "$(dirname "$0")/lib.sh"

kind=${CRASH_KIND:-regfs}
[ "$kind" = regfs ] && need_regfs_registry
N=20

# 20 distinct images (2 layers each) in one OCI layout: tags p01…p20.
for i in $(seq -w 1 $N); do
  make_image "$WORK/oci" "p$i" 2 1536K 512K >/dev/null || bail "make_image p$i"
done
src_manifest() { jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$WORK/oci/index.json"; }

mkdir -p "$WORK/out" "$WORK/all"
start_registry "$kind" "$WORK/data" || bail "$kind did not start"
h=$REGISTRY_HOST
mkdir -p "$WORK/rc"
for i in $(seq -w 1 $N); do
  start_bg "push-p$i" bash -c 'skopeo --insecure-policy copy -q --dest-tls-verify=false "$1" "$2"; echo $? >"$3"' _ \
    "oci:$WORK/oci:p$i" "docker://$h/crash/img$i:p$i" "$WORK/rc/p$i"
done
# Kill once a few pushes have completed, so that others are in flight (bounded wait).
for ((t = 0; t < 600; t++)); do
  [ "$(grep -lx 0 "$WORK"/rc/* 2>/dev/null | wc -l)" -ge 3 ] && break
  sleep 0.05
done
stop_pid "$REGISTRY_PID" KILL
completed=$(grep -lx 0 "$WORK"/rc/* 2>/dev/null | xargs -r -n1 basename | sort)
# The others now fail (connection refused); wait for every skopeo to finish (bounded).
wait_for 120 bash -c '[ $(ls "$1" | wc -l) -ge $2 ]' _ "$WORK/rc" "$N" || log "some pushes did not finish within 120 s"
ncomp=$(echo $completed | wc -w)
log "$ncomp of $N pushes completed before kill -9: $(echo $completed)"
[ "$ncomp" -lt "$N" ] || log "every push completed before the kill: the crash hit no push in flight (machine too fast?)"

start_registry "$kind" "$WORK/data" || bail "$kind did not restart after kill -9"
h=$REGISTRY_HOST
check "every stored blob matches its digest after the crash" verify_store_blobs "$WORK/data"

# No tag may point at a missing manifest, no manifest at a missing blob.
dangling() {
  local v2=$1/docker/registry/v2 link d m bad=0
  while IFS= read -r link; do
    d=$(cat "$link"); m=$(blob_path "$1" "$d")
    [ -f "$m" ] || { echo "tag $link → $d: manifest blob missing"; bad=1; continue; }
    for b in $(jq -r '(.config.digest // empty), (.layers[]?.digest), (.manifests[]?.digest)' "$m"); do
      [ -f "$(blob_path "$1" "$b")" ] || { echo "manifest $d references missing $b"; bad=1; }
    done
  done < <(find "$v2/repositories" -path '*/_manifests/tags/*/current/link' 2>/dev/null)
  return $bad
}
check "no tag points at a missing manifest or blob" dangling "$WORK/data"

for p in $completed; do
  i=${p#p}
  if check "completed push $p pulls after restart" skopeo_copy "docker://$h/crash/img$i:$p" "dir:$WORK/out/$p"; then
    want=$(src_manifest "$p")
    check_eq "$p: manifest byte-identical to the pushed one" "${want#sha256:}" "$(sha256sum "$WORK/out/$p/manifest.json" | cut -d' ' -f1)"
    same=0
    for b in $(jq -r '.config.digest, .layers[].digest' "$WORK/out/$p/manifest.json"); do
      cmp -s "$WORK/oci/blobs/sha256/${b#sha256:}" "$WORK/out/$p/${b#sha256:}" || { same=1; echo "$p: blob $b differs"; }
    done
    check_eq "$p: config and layers byte-identical to the source" 0 "$same"
  fi
done

# The registry is usable after the crash: the interrupted pushes succeed now.
for i in $(seq -w 1 $N); do
  case " $(echo $completed) " in *" p$i "*) continue ;; esac
  start_bg "repush-p$i" bash -c 'skopeo --insecure-policy copy -q --dest-tls-verify=false "$1" "$2"; echo $? >"$3"' _ \
    "oci:$WORK/oci:p$i" "docker://$h/crash/img$i:p$i" "$WORK/rc/re-p$i"
done
wait_for 240 bash -c '[ $(ls "$1"/re-* 2>/dev/null | wc -l) -ge $2 ]' _ "$WORK/rc" "$((N - ncomp))"
bad=""
for i in $(seq -w 1 $N); do
  case " $(echo $completed) " in *" p$i "*) continue ;; esac
  [ "$(cat "$WORK/rc/re-p$i" 2>/dev/null)" = 0 ] || bad+=" p$i"
done
check_eq "the $((N - ncomp)) interrupted pushes succeed on retry" "" "$bad"
ok=0
for i in $(seq -w 1 $N); do
  skopeo_copy "docker://$h/crash/img$i:p$i" "dir:$WORK/all/p$i" 2>/dev/null &&
    [ "$(sha256sum <"$WORK/all/p$i/manifest.json" | cut -d' ' -f1)" = "$(src_manifest "p$i" | cut -d: -f2)" ] &&
    verify_dir_blobs "$WORK/all/p$i" >/dev/null && ok=$((ok + 1))
done
check_eq "all $N images pull byte-identical in the end" "$N" "$ok"
check "every stored blob matches its digest in the end" verify_store_blobs "$WORK/data"
done_testing
