# tests/integration/upload_lib.sh — sourced by the upload_*.sh scripts after lib.sh
# (and s3_lib.sh for the S3 ones). Not a test itself.
#
#   uploadrace ARGS…                     tests/integration/tools/uploadrace.py
#   push_blob HOST REPO FILE             monolithic upload (POST ?digest=); prints the status
#   layer_links_fs DATA                  "REPO DIGEST" for every _layers link on disk
#   layer_links_s3 BUCKET                the same from the bucket (boto3, not our driver)
#   check_api_blobs HOST LINKS_FILE      every "REPO DIGEST" line: GET through the API hashes to DIGEST
#   check_s3_blobs BUCKET                every stored blob object hashes to its key's digest
#   upload_start HOST REPO               POST a new upload session; prints its Location
#   upload_patch HOST LOCATION FILE      PATCH FILE's bytes into the session; prints the status
#   upload_put HOST LOCATION DIGEST      finish the session (PUT ?digest=); prints the status
#   api_blob_sha HOST REPO DIGEST        sha256 (hex) of the blob fetched through the API
#   check_put_refused NAME OUT           a check: uploadrace held-patch's OUT has put=416 or 409
#   random_blob FILE BYTES               FILE of random bytes; prints its digest (sha256:…)
#
# Digests are computed here with sha256sum, never taken from the registry.
# check_daemon_logs (sanitizer reports in the registries' logs) comes from cleanup_lib.sh.

. "$(dirname "${BASH_SOURCE[0]}")/cleanup_lib.sh"

UPLOADRACE=$REGFS_SRC/tests/integration/tools/uploadrace.py
uploadrace() { with_timeout 120 python3 "$UPLOADRACE" "$@"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

push_blob() {
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary @"$3" "http://$1/v2/$2/blobs/uploads/?digest=sha256:$(sha "$3")"
}

upload_start() {
  curl -s -D - -o /dev/null -X POST "http://$1/v2/$2/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p'
}
upload_patch() {
  curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
    --data-binary @"$3" "http://$1$2"
}
upload_put() {
  local sep='?'; case $2 in *\?*) sep='&' ;; esac
  curl -s -o /dev/null -w '%{http_code}' -X PUT "http://$1$2${sep}digest=$3"
}
api_blob_sha() { curl -sfL "http://$1/v2/$2/blobs/$3" | sha256sum | cut -d' ' -f1; }
check_put_refused() {
  case $2 in
    *put=416*|*put=409*) ok "$1" ;;
    *) fail "$1" "$2" ;;
  esac
}
random_blob() { head -c "$2" /dev/urandom >"$1" && echo "sha256:$(sha "$1")"; }

layer_links_fs() {
  find "$1/docker/registry/v2/repositories" -path '*/_layers/sha256/*/link' 2>/dev/null |
    sed -n 's|.*/repositories/\(.*\)/_layers/sha256/\([0-9a-f]\{64\}\)/link$|\1 sha256:\2|p' | sort
}

layer_links_s3() {
  s3tool ls "$1" docker/registry/v2/repositories/ |
    sed -n 's|.*repositories/\(.*\)/_layers/sha256/\([0-9a-f]\{64\}\)/link$|\1 sha256:\2|p' | sort
}

# check_api_blobs HOST FILE — prints the mismatches; returns 1 if any (or none listed).
check_api_blobs() {
  local repo dg got n=0 bad=0
  while read -r repo dg; do
    [ -n "$repo" ] || continue
    got=$(curl -sfL "http://$1/v2/$repo/blobs/$dg" | sha256sum | cut -d' ' -f1); n=$((n + 1))
    [ "sha256:$got" = "$dg" ] || { echo "GET $repo blob $dg hashes to sha256:$got"; bad=1; }
  done <"$2"
  echo "$n blobs fetched"
  [ $n -gt 0 ] && return $bad
  return 1
}

check_s3_blobs() {
  local k hex got n=0 bad=0
  while read -r k; do
    hex=$(basename "$(dirname "$k")")
    got=$(s3tool get "$1" "$k" | sha256sum | cut -d' ' -f1); n=$((n + 1))
    [ "$got" = "$hex" ] || { echo "stored object $k hashes to $got"; bad=1; }
  done < <(s3tool ls "$1" docker/registry/v2/blobs/ | grep '/data$')
  echo "$n blob objects checked"
  [ $n -gt 0 ] && return $bad
  return 1
}
