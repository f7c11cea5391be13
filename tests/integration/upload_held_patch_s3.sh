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
cfg=$WORK/r.yml
s3_config "$cfg" held "$(free_port)"
start_regfs_registry "$cfg" || bail "regfs-registry did not start"
H=$REGISTRY_HOST

head -c 200000 /dev/urandom >"$WORK/x"
D=sha256:$(sha "$WORK/x")
check_eq "victim/app gets blob D" 201 "$(push_blob "$H" victim/app "$WORK/x")"
key=docker/registry/v2/blobs/sha256/${D:7:2}/${D#sha256:}/data

out=$(uploadrace held-patch "$H" evil/x "$WORK/x" "$D")
log "held PATCH on an existing digest: $out"
case $out in
  *put=416*|*put=409*) ok "PUT while a PATCH of the session is in flight is refused (416/409)" ;;
  *) fail "PUT while a PATCH of the session is in flight is refused (416/409)" "$out" ;;
esac
check_eq "the object of blob D hashes to D" "${D#sha256:}" "$(s3tool get held "$key" | sha256sum | cut -d' ' -f1)"
check_eq "GET victim/app blob D hashes to D" "${D#sha256:}" \
  "$(curl -sfL "http://$H/v2/victim/app/blobs/$D" | sha256sum | cut -d' ' -f1)"

loc=$(curl -s -D - -o /dev/null -X POST "http://$H/v2/evil/y/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
curl -s -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/x" "http://$H$loc"
sep='?'; case $loc in *\?*) sep='&' ;; esac
check_eq "a second upload of D's bytes finishes with 201" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://$H$loc${sep}digest=$D")"
check_eq "evil/y is linked to D and serves it" "${D#sha256:}" \
  "$(curl -sfL "http://$H/v2/evil/y/blobs/$D" | sha256sum | cut -d' ' -f1)"

head -c 150000 /dev/urandom >"$WORK/n"
N=sha256:$(sha "$WORK/n")
out=$(uploadrace held-patch "$H" evil/z "$WORK/n" "$N")
log "held PATCH on a new digest: $out"

# Across instances on one bucket: the PATCH held on instance 1, the PUT sent
# to instance 2.
H1=$H
cfg2=$WORK/r2.yml
s3_config "$cfg2" held "$(free_port)"
start_regfs_registry "$cfg2" || bail "second regfs-registry did not start"
H2=$REGISTRY_HOST
out=$(uploadrace held-patch "$H1" evil/w "$WORK/x" "$D" "$H2")
log "held PATCH on instance 1, PUT on instance 2: $out"
case $out in
  *put=416*|*put=409*) ok "a PUT on another instance is refused while the PATCH is held (416/409)" ;;
  *) fail "a PUT on another instance is refused while the PATCH is held (416/409)" "$out" ;;
esac

# The lease object: one that another holder keeps alive refuses the upload;
# one whose holder stopped renewing it (expired) is taken over.
loc=$(curl -s -D - -o /dev/null -X POST "http://$H/v2/evil/v/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
uuid=${loc##*/}; uuid=${uuid%%\?*}
lock=docker/registry/v2/repositories/evil/v/_uploads/$uuid/data.lock
echo "someoneelse $(( $(date +%s) + 600 ))" >"$WORK/lease"
s3tool put held "$lock" "$WORK/lease"
check_eq "a PATCH while another holder's lease is alive gets 416" 416 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/n" "http://$H$loc")"
echo "someoneelse $(( $(date +%s) - 1 ))" >"$WORK/lease"
s3tool put held "$lock" "$WORK/lease"
check_eq "a PATCH after that lease expired takes it over" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/n" "http://$H$loc")"

layer_links_s3 held >"$WORK/links"
check "every blob object hashes to its key's digest" check_s3_blobs held
check "every repository's blobs, through the API, hash to their digests" check_api_blobs "$H" "$WORK/links"
check_eq "no session lock left in the bucket" "" "$(s3tool ls held | grep '\.lock$')"
check_daemon_logs
done_testing
