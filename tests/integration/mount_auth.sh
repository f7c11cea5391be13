#!/bin/bash
# mount_auth.sh — how regfs starts: the pre-mount checks (unreachable, not a
# registry, credentials refused → one line, exit 1, nothing mounted), a
# token-protected docker-registry mounted through the Bearer flow (token
# issuer: tests/integration/tools/tokenserver.py), and the /etc/fstab path
# (mount.fuse3 calling `regfs URL MOUNTPOINT -o opts`, daemonized).
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin skopeo umoci jq python3 openssl "$DOCKER_REGISTRY"
TOOLS=$(dirname "$0")/tools

one_line_exit1() {  # one_line_exit1 NAME PATTERN CMD… — exit 1, one line matching PATTERN
  local name=$1 pat=$2 out rc; shift 2
  out=$(with_timeout 30 "$@" 2>&1); rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qiE -e "$pat" <<<"$out"; then ok "$name"
  else fail "$name" "exit $rc, output:"; diag "$out"; fi
}

mkdir -p "$WORK/m0"
P=$(free_port)
one_line_exit1 "nothing listening: one line, exit 1" "running|connect" \
  "$REGFS_MOUNT" -f "http://127.0.0.1:$P" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"

# A web server that is not a registry.
WP=$(free_port)
mkdir -p "$WORK/www"; echo hello >"$WORK/www/index.html"
start_bg www python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$WP"
wait_http "http://127.0.0.1:$WP/" || bail "python http.server did not start"
one_line_exit1 "not a registry: one line, exit 1" "registry" \
  "$REGFS_MOUNT" -f "http://127.0.0.1:$WP" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"
one_line_exit1 "missing mountpoint: one line, exit 1" "mountpoint" \
  "$REGFS_MOUNT" -f "http://127.0.0.1:$WP" "$WORK/does-not-exist"

# --- token-protected docker-registry ---------------------------------------------
mkdir -p "$WORK/tok"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=regfs-test-token \
  -keyout "$WORK/tok/key.pem" -out "$WORK/tok/cert.pem" 2>/dev/null || bail "openssl req failed"
TPORT=$(free_port)
start_bg tokenserver python3 "$TOOLS/tokenserver.py" --port "$TPORT" \
  --key "$WORK/tok/key.pem" --cert "$WORK/tok/cert.pem" --user alice:s3cret
TOKLOG=$WORK/tokenserver.log
wait_http "http://127.0.0.1:$TPORT/token" || bail "tokenserver did not start"
start_docker_registry "$WORK/data" "auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: regfs-test
    issuer: regfs-test-issuer
    rootcertbundle: $WORK/tok/cert.pem" || bail "token-protected docker-registry did not start"

make_image "$WORK/oci" v1 2 30K 5K >/dev/null || bail make_image
check "skopeo pushes with credentials" skopeo_copy --dest-creds alice:s3cret \
  oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:v1"
skopeo_x inspect --creds alice:s3cret --raw "docker://$REGISTRY_HOST/team/app:v1" >"$WORK/raw.json"
D=sha256:$(sha256sum "$WORK/raw.json" | cut -d' ' -f1)

one_line_exit1 "token registry without credentials: one line that says --user, exit 1" "--user" \
  env -u REGFS_USERNAME -u REGFS_PASSWORD HOME="$WORK" "$REGFS_MOUNT" -f "$REGISTRY_URL" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"
one_line_exit1 "wrong password: one line, exit 1" "credential|denied|refused|401|unauthor" \
  env HOME="$WORK" "$REGFS_MOUNT" -f --user alice:wrong "$REGISTRY_URL" "$WORK/m0"

MNT=$WORK/mnt
start_regfs_mount "$REGISTRY_URL" "$MNT" --user alice:s3cret --cache-dir "$WORK/cache" ||
  bail "regfs did not mount the token registry"
check_eq "Bearer: ls /" "team" "$(ls "$MNT")"
check_eq "Bearer: readlink of the tag" "../_manifests/$D" "$(readlink "$MNT/team/app/_tags/v1")"
check "Bearer: manifest.json = skopeo inspect --raw" cmp "$WORK/raw.json" "$MNT/team/app/_manifests/$D/manifest.json"
bad=""
for f in "$MNT/team/app/_manifests/$D/layers/"*.*; do  # the blobs (N.<ext>), not the N links
  i=${f##*/}; i=${i%%.*}
  [ "sha256:$(sha256sum "$f" | cut -d' ' -f1)" = "$(jq -r ".layers[$i].digest" "$WORK/raw.json")" ] || bad+=" $f"
done
check_eq "Bearer: layers read (Range/whole) and hash to their digests" "" "$bad"
check "the token server issued tokens" grep -q '^token ' "$TOKLOG"
check_eq "the password is never logged" 0 "$(grep -c s3cret "$MOUNT_LOG")"
check "Bearer: .regfs/stats counts token fetches" jq -e '.token_fetches >= 1' "$MNT/.regfs/stats"
unmount "$MNT"

# --- /etc/fstab: mount.fuse3 runs `regfs URL MOUNTPOINT -o opts` (daemonized) ----------
if command -v mount.fuse3 >/dev/null && [ "$(id -u)" = 0 ]; then
  FMNT=$WORK/fstab
  mkdir -p "$FMNT"; add_mount "$FMNT"
  check "mount.fuse3 'regfs#URL' (fstab type fuse) with our options as -o" \
    env PATH="$REGFS_BUILD/fs:$PATH" mount.fuse3 "regfs#$REGISTRY_URL" "$FMNT" \
    -o "ro,user=alice:s3cret,ttl=3,timeout=5,cache_dir=$WORK/cache2,log_file=$WORK/fstab.log,_netdev,nofail"
  check "the daemonized mount serves the tree" wait_for 10 test -s "$FMNT/team/app/_manifests/$D/manifest.json"
  check_eq "fstab mount: readlink" "../_manifests/$D" "$(readlink "$FMNT/team/app/_tags/v1")"
  check "fstab mount: it logs to --log-file" grep -q mounted "$WORK/fstab.log"
  check "fusermount3 -u unmounts it" fusermount3 -u "$FMNT"
  check_fails "... and it is gone" mountpoint -q "$FMNT"
  check "mount.fuse3 with -t fuse.regfs (fstab type fuse.regfs)" \
    env PATH="$REGFS_BUILD/fs:$PATH" mount.fuse3 "$REGISTRY_URL" "$FMNT" -t fuse.regfs \
    -o "user=alice:s3cret,cache_dir=$WORK/cache2,log_file=$WORK/fstab.log"
  check_eq "fuse.regfs mount: ls" "team" "$(ls "$FMNT")"
  check "umount unmounts it" umount "$FMNT"
else
  log "mount.fuse3 checks skipped (needs root and mount.fuse3)"
fi

done_testing
