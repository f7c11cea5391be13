#!/bin/bash
# Push-time layer indexes on S3 (Ceph RGW), two regfs-registry instances sharing one
# bucket, both with regfs.layerindex on: a push to one gets its indexes, served by
# both, equal to `tar -tvf` of the blob read straight from the bucket; an instance
# killed right after a push leaves nothing undone: the other instance (or the killed
# one's restart) finishes the queue; the queue is empty at the end; GC on the bucket
# removes the indexes of swept blobs and keeps the others.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"

need_layerindex_tools
# a short rescan: the surviving instance takes over the killed one's markers soon
LI_YAML='regfs:
  layerindex:
    enabled: true
    rescan: 2s'

s3_start lidx
start_li() { # start_li NAME — an instance on the bucket with indexing on
  local port cfg
  port=$(free_port) || return 1
  cfg=$WORK/$1.yml
  s3_config "$cfg" lidx "$port" "$LI_YAML" && start_regfs_registry "$cfg"
}
start_li a || bail "instance a does not start"
A_URL=$REGISTRY_URL A_HOST=$REGISTRY_HOST A_PID=$REGISTRY_PID A_CFG=$REGISTRY_CONFIG
start_li b || bail "instance b does not start"
B_URL=$REGISTRY_URL B_PID=$REGISTRY_PID B_LOG=$REGISTRY_LOG

built() { "$LI" "$1" team/app "$2" >/dev/null 2>&1; }
tar_list() {
  tar -tv --numeric-owner -f "$1" | sed -E 's#^(\S+) (\S+) +(\S+) (\S+) (\S+) (.*)$#\1 \2 \3 \6#' |
    awk '{ if (substr($1, 1, 1) != "-") $3 = 0; print }' |
    sed -E 's#^(\S+ \S+ \S+ )(\./|/)*#\1#; s#/$##; s# link to (\./|/)*# link to #' |
    grep -Ev '^\S+ \S+ \S+ (\.)?$' | sort
}
layers_of() {
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$A_URL/v2/team/app/manifests/$1" | jq -r '.layers[].digest'
}

img=$(make_image "$WORK/oci" v1 2 300K 512) || bail "make_image"
check "skopeo pushes a 2-layer image to instance a" skopeo_copy "$img" "docker://$A_HOST/team/app:v1"
for l in $(layers_of v1); do
  check "$l: index served by instance a" wait_for 60 built "$A_URL" "$l"
  check "$l: the same index served by instance b" built "$B_URL" "$l"
  h=${l#sha256:}
  s3tool get lidx "docker/registry/v2/blobs/sha256/${h:0:2}/$h/data" >"$WORK/blob"
  check_files "$l: decoded index lists what tar -tvf of the blob in the bucket lists" \
    <(tar_list "$WORK/blob") <("$LI" "$B_URL" team/app "$l" | sort)
done

# Kill a at once after a push: its queued job is done by b (takeover of markers older
# than rescan) or by a's restart; either way every index appears and the queue empties.
img2=$(make_image "$WORK/oci" v2 2 2M 1M) || bail "make_image"
check "skopeo pushes a second image to instance a" skopeo_copy "$img2" "docker://$A_HOST/team/app:v2"
stop_pid "$A_PID" KILL
queued=$(s3tool ls lidx docker/registry/v2/_regfs/layerindex-queue/ | wc -l)
log "markers left by the killed instance: $queued"
for l in $(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$B_URL/v2/team/app/manifests/v2" | jq -r '.layers[].digest'); do
  check "$l: index served by instance b after a was killed" wait_for 60 built "$B_URL" "$l"
  v2_layer=$l
done
queue_empty() { [ -z "$(s3tool ls lidx docker/registry/v2/_regfs/layerindex-queue/)" ]; }
check "the stored queue is empty" wait_for 30 queue_empty
grep -q 'queued manifest(s) found in storage' "$B_LOG" && log "instance b took over a's marker"
start_regfs_registry "$A_CFG" || fail "instance a restarts"
check "the restarted instance serves the indexes too" built "$REGISTRY_URL" "$v2_layer"

# GC on the bucket: the indexes of v1's layers go with their blobs, v2's stay.
v1_layers=$(layers_of v1)
m1=$(curl -sf -o /dev/null -D - -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$A_URL/v2/team/app/manifests/v1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
check "DELETE of manifest v1" curl -sf -X DELETE "$A_URL/v2/team/app/manifests/$m1"
check "garbage-collect on the bucket" with_timeout 120 "$REGFS_REGISTRY" garbage-collect "$A_CFG"
ix_keys() { s3tool ls lidx docker/registry/v2/_regfs/layerindex/ | sed -n 's|.*/\([0-9a-f]\{64\}\)/data$|sha256:\1|p' | sort; }
left=$(ix_keys)
for l in $v1_layers; do
  check "GC removed the index of v1's layer $l" bash -c "! grep -qx '$l' <<<'$left'"
done
check "GC kept the index of v2's layer $v2_layer" bash -c "grep -qx '$v2_layer' <<<'$left'"

done_testing
