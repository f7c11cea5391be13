#!/bin/bash
# A finished upload never touches a stored blob (S3 driver, Ceph RGW): the
# held-PATCH sequence of upload_held_patch.sh against a bucket —
#  1. blob D (200,000 bytes) in victim/app; evil/x uploads the same bytes;
#  2. a PATCH on that session sends only its headers (Content-Length: 1000);
#  3. PUT ?digest=D on the same session while the PATCH waits;
#  4. the PATCH's 1000 bytes are sent.
# Then every blob object in the bucket (read with boto3, not our driver) hashes
# to its key's digest, every repository's blobs fetched through the API hash to
# their digests, and no session lock is left behind. Also: the PUT is refused when
# sent to a second instance on the bucket, a live lease object of another holder
# refuses a PATCH (416) and an expired one is taken over (202).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
. "$(dirname "$0")/upload_lib.sh"
need_regfs_registry
s3_start held
s3_registry held || bail "regfs-registry did not start"
H=$REGISTRY_HOST

D=$(random_blob "$WORK/x" 200000)
check_eq "victim/app gets blob D" 201 "$(push_blob "$H" victim/app "$WORK/x")"
key=docker/registry/v2/blobs/sha256/${D:7:2}/${D#sha256:}/data

out=$(uploadrace held-patch "$H" evil/x "$WORK/x" "$D")
log "held PATCH on an existing digest: $out"
check_put_refused "PUT while a PATCH of the session is in flight is refused (416/409)" "$out"
check_eq "the object of blob D hashes to D" "${D#sha256:}" "$(s3tool get held "$key" | sha256sum | cut -d' ' -f1)"
check_eq "GET victim/app blob D hashes to D" "${D#sha256:}" "$(api_blob_sha "$H" victim/app "$D")"

loc=$(upload_start "$H" evil/y)
upload_patch "$H" "$loc" "$WORK/x" >/dev/null
check_eq "a second upload of D's bytes finishes with 201" 201 "$(upload_put "$H" "$loc" "$D")"
check_eq "evil/y is linked to D and serves it" "${D#sha256:}" "$(api_blob_sha "$H" evil/y "$D")"

N=$(random_blob "$WORK/n" 150000)
out=$(uploadrace held-patch "$H" evil/z "$WORK/n" "$N")
log "held PATCH on a new digest: $out"

# Across instances on one bucket: the PATCH held on instance 1, the PUT sent
# to instance 2.
H1=$H
s3_registry held || bail "second regfs-registry did not start"
H2=$REGISTRY_HOST
out=$(uploadrace held-patch "$H1" evil/w "$WORK/x" "$D" "$H2")
log "held PATCH on instance 1, PUT on instance 2: $out"
check_put_refused "a PUT on another instance is refused while the PATCH is held (416/409)" "$out"

# The lease object: one that another holder keeps alive refuses the upload;
# one whose holder stopped renewing it (expired) is taken over.
loc=$(upload_start "$H" evil/v)
uuid=${loc##*/}; uuid=${uuid%%\?*}
lock=docker/registry/v2/repositories/evil/v/_uploads/$uuid/data.lock
echo "someoneelse $(( $(date +%s) + 600 ))" >"$WORK/lease"
s3tool put held "$lock" "$WORK/lease"
check_eq "a PATCH while another holder's lease is alive gets 416" 416 \
  "$(upload_patch "$H" "$loc" "$WORK/n")"
echo "someoneelse $(( $(date +%s) - 1 ))" >"$WORK/lease"
s3tool put held "$lock" "$WORK/lease"
check_eq "a PATCH after that lease expired takes it over" 202 \
  "$(upload_patch "$H" "$loc" "$WORK/n")"

layer_links_s3 held >"$WORK/links"
check "every blob object hashes to its key's digest" check_s3_blobs held
check "every repository's blobs, through the API, hash to their digests" check_api_blobs "$H" "$WORK/links"
check_eq "no session lock left in the bucket" "" "$(s3tool ls held | grep '\.lock$')"
check_daemon_logs
done_testing
