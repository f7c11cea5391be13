#!/bin/bash
# Uploads racing on shared digests (filesystem driver): 20 raw-HTTP clients for
# 15 s (tools/uploadrace.py race) upload the same few contents in many sessions
# of three repositories, send two PATCHes at once on one session, finish a
# session with PUT while a PATCH of it is held open, and DELETE a session while
# a PATCH of it is in flight. Afterwards every stored blob file hashes to its
# name, every blob a 201 answer announced is served by that repository with
# bytes hashing to its digest, every repository's _layers links are served
# intact, and the registry never answered 5xx.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/upload_lib.sh"
need_regfs_registry
start_regfs_registry "$WORK/data" || bail "regfs-registry did not start"
H=$REGISTRY_HOST; DATA=$REGISTRY_DATA

out=$(uploadrace race "$H" 15 20 "$WORK/created")
log "status counts: $out"
check "the racing clients got 201 answers" test -s "$WORK/created"
check_fails "no 5xx answer and no client error" grep -Eq '(:5[0-9][0-9]|error:)' <<<"$out"
check "every stored blob file hashes to its name" verify_store_blobs "$DATA"
sort -u "$WORK/created" >"$WORK/created.u"
check "every blob answered 201 is served by its repository and hashes to its digest" \
  check_api_blobs "$H" "$WORK/created.u"
layer_links_fs "$DATA" >"$WORK/links"
check "every repository's blobs, through the API, hash to their digests" check_api_blobs "$H" "$WORK/links"
check_daemon_logs
done_testing
