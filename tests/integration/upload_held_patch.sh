#!/bin/bash
# A finished upload never touches a stored blob (filesystem driver).
# The held-PATCH sequence, through raw HTTP (tools/uploadrace.py):
#  1. blob D (200,000 bytes) is pushed into victim/app; evil/x uploads the same
#     bytes into a session of its own;
#  2. a PATCH on that session sends only its headers (Content-Length: 1000);
#  3. PUT ?digest=D on the same session while the PATCH waits;
#  4. the PATCH's 1000 bytes are sent.
# The PUT must be refused while the PATCH is in flight (416/409), and afterwards
# every stored blob file hashes to its name and every repository's blobs, fetched
# through the API, hash to their digests (sha256sum). Also: a finished upload of a
# digest already stored leaves the stored file alone (same inode, same bytes), the
# same sequence on a digest not stored yet publishes nothing unverified, the PUT
# is refused too when sent to a second instance on the same directory, and a
# lock held by another process refuses a PATCH until that process is killed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/upload_lib.sh"
need_regfs_registry
start_regfs_registry "$WORK/data" || bail "regfs-registry did not start"
H=$REGISTRY_HOST; DATA=$REGISTRY_DATA

D=$(random_blob "$WORK/x" 200000)
check_eq "victim/app gets blob D" 201 "$(push_blob "$H" victim/app "$WORK/x")"
BLOB=$(blob_path "$DATA" "$D")
ino0=$(stat -c %i "$BLOB")

out=$(uploadrace held-patch "$H" evil/x "$WORK/x" "$D")
log "held PATCH on an existing digest: $out"
check_put_refused "PUT while a PATCH of the session is in flight is refused (416/409)" "$out"
check_eq "victim/app's blob D still has 200000 bytes" 200000 "$(stat -c %s "$BLOB")"
check_eq "the file of blob D hashes to D" "$D" "sha256:$(sha "$BLOB")"
check_eq "GET victim/app blob D hashes to D" "${D#sha256:}" "$(api_blob_sha "$H" victim/app "$D")"

# An ordinary chunked upload of D's bytes into another repository: 201, and the
# stored file is left as it was (the upload is discarded, not moved over it).
loc=$(upload_start "$H" evil/y)
upload_patch "$H" "$loc" "$WORK/x" >/dev/null
check_eq "a second upload of D's bytes finishes with 201" 201 "$(upload_put "$H" "$loc" "$D")"
check_eq "the stored file of D is the same file (not replaced)" "$ino0" "$(stat -c %i "$BLOB")"
check_eq "evil/y is linked to D and serves it" "${D#sha256:}" "$(api_blob_sha "$H" evil/y "$D")"

# The held PATCH on a digest nobody stored yet: whatever the PUT answers, a blob
# stored under that digest must hash to it.
N=$(random_blob "$WORK/n" 150000)
out=$(uploadrace held-patch "$H" evil/z "$WORK/n" "$N")
log "held PATCH on a new digest: $out"
if [ -f "$(blob_path "$DATA" "$N")" ]; then
  check_eq "blob N, if stored, hashes to N" "$N" "sha256:$(sha "$(blob_path "$DATA" "$N")")"
else
  ok "blob N, if stored, hashes to N (not stored)"
fi

# The session lock holds across processes sharing the directory: the PATCH
# held on one instance, the PUT sent to a second one on the same root.
H1=$H
start_regfs_registry "$WORK/data" || bail "second regfs-registry did not start"
H2=$REGISTRY_HOST
out=$(uploadrace held-patch "$H1" evil/w "$WORK/x" "$D" "$H2")
log "held PATCH on instance 1, PUT on instance 2: $out"
check_put_refused "a PUT on another instance is refused while the PATCH is held (416/409)" "$out"
check_eq "blob D is still the same file, 200000 bytes" "$ino0 200000" "$(stat -c '%i %s' "$BLOB")"

# A lock holder that dies releases the upload: a process holding the lock
# makes a PATCH answer 416; once it is killed the same PATCH is taken (202).
loc=$(upload_start "$H" evil/v)
uuid=${loc##*/}; uuid=${uuid%%\?*}
python3 -c '
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
print("locked", flush=True)
time.sleep(60)
' "$DATA/docker/registry/v2/repositories/evil/v/_uploads/$uuid/data" >"$WORK/holder.out" 2>&1 &
holder=$!; add_cleanup "kill -9 $holder 2>/dev/null"
wait_for 10 grep -q locked "$WORK/holder.out" || diag "$(cat "$WORK/holder.out")"
check_eq "a PATCH while another process holds the upload's lock gets 416" 416 \
  "$(upload_patch "$H" "$loc" "$WORK/n")"
kill -9 "$holder"; wait "$holder" 2>/dev/null
check_eq "after the holder is killed the PATCH is taken" 202 \
  "$(upload_patch "$H" "$loc" "$WORK/n")"

layer_links_fs "$DATA" >"$WORK/links"
check "every stored blob file hashes to its name" verify_store_blobs "$DATA"
check "every repository's blobs, through the API, hash to their digests" check_api_blobs "$H" "$WORK/links"
check_daemon_logs
done_testing
