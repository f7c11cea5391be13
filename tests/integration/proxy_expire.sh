#!/bin/bash
# Expiry of the pull-through cache by reference: an upstream docker-registry holds images
# A and B (team/a:v1, team/b:v1, two repositories) that share a base layer; a local repository pushed to
# regfs-registry uses the same base layer. regfs-registry caches the upstream under "up"
# with ttl 4s and an expiry pass every second. A and B are pulled through the cache, then
# only B keeps being pulled until A's tag expires. Checked against the files on disk:
# A's own blobs (manifest, config, layer) are deleted, the shared base layer and B's blobs
# stay, every stored blob hashes to its name and is exactly what the manifests left on
# disk reference (nothing orphaned, nothing missing); the local image still pulls
# byte-identical; B still pulls with the upstream stopped; the usage extension agrees
# with the disk; the pull records sit outside the registry:2 layout (the catalog and
# registry:2's own garbage-collect --dry-run, which finds nothing to free, ignore them);
# A pulls again once the upstream is back. Second case: the pull records
# survive a restart (A, pulled just before it, is not expired by the first pass after
# it, while B, last pulled more than a ttl before, is).
# PROXY_EXPIRE_STORAGE=s3 runs the same on S3 (Ceph RGW), the bucket read with boto3.
. "$(dirname "$0")/lib.sh"
test_not() { ! "$@"; }

need_bin skopeo umoci curl jq python3 "$DOCKER_REGISTRY"
need_regfs_registry

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

# --- images: base (one layer), A/B/C = base + one layer of their own ----------------------
O=$WORK/oci
make_image "$O" base 1 300K >/dev/null || bail "make_image base"
derive() { # derive TAG SIZE — TAG is base plus one random layer of SIZE bytes
  umoci config --image "$O:base" --tag "$1" --author regfs-tests >&2 || return 1
  head -c "$2" /dev/urandom >"$WORK/mk/$1.bin" || return 1
  umoci insert --image "$O:$1" "$WORK/mk/$1.bin" "/data/$1.bin" >&2 || return 1
  umoci gc --layout "$O" >&2
}
for t in a:120K b:80K c:60K; do derive "${t%%:*}" "${t#*:}" || bail "umoci: image ${t%%:*}"; done
# digests of each image's blobs, from the OCI layout (independent of the registries)
blobs_of() { # blobs_of TAG — manifest, config, layers (sha256:…), one a line
  local m
  m=$(jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$O/index.json")
  echo "$m"; jq -r '.config.digest, .layers[].digest' "$O/blobs/sha256/${m#sha256:}"
}
BASE=$(blobs_of base | tail -n1)
blobs_of a >"$WORK/a.all"; blobs_of b >"$WORK/b.all"; blobs_of c >"$WORK/c.all"
grep -vx "$BASE" "$WORK/a.all" >"$WORK/a.own"
check_eq "A, B and the local image share the base layer" "3" \
  "$(cat "$WORK/a.all" "$WORK/b.all" "$WORK/c.all" | grep -cx "$BASE")"

start_docker_registry "$WORK/upstream" || bail "upstream docker-registry did not start"
UP=$REGISTRY_HOST; UP_PID=$REGISTRY_PID; UP_CONFIG=$REGISTRY_CONFIG
for t in a b; do
  skopeo_copy "oci:$O:$t" "docker://$UP/team/$t:v1" || bail "skopeo push of $t to the upstream"
done

DATA=$WORK/data
CONF="regfs:
  proxies:
    - prefix: up
      remoteurl: http://$UP
      ttl: 4s
  proxycache:
    interval: 1s
  gc:
    delay: 1s"
# The storage, read independently of regfs's drivers: the files under DATA, or the bucket
# through boto3 (PROXY_EXPIRE_STORAGE=s3, Ceph RGW, s3_lib.sh). Paths are storage paths
# (/docker/registry/v2/…).
if [ "${PROXY_EXPIRE_STORAGE:-filesystem}" = s3 ]; then
  . "$(dirname "$0")/s3_lib.sh"
  s3_start pexp
  s3_config "$WORK/regfs.yml" pexp "$(free_port)" "$CONF" || bail "s3_config"
  start_regfs_registry "$WORK/regfs.yml" || bail "regfs-registry did not start"
  exists() { s3tool ls pexp "${1#/}" | grep -q .; }
  getobj() { s3tool get pexp "${1#/}"; }
  blob_list() { s3_blob_keys pexp; }
  blob_bytes() { s3tool lsl pexp docker/registry/v2/blobs/ | awk '$2 ~ /\/data$/ {s += $1} END {print s + 0}'; }
  r2_config() { cp "$WORK/regfs.yml" "$1"; }
  set_ttl() { s3_config "$REGFS_CONFIG" pexp "$REGFS_PORT" "${CONF/ttl: 4s/ttl: $1}"; }
else
  start_regfs_registry "$DATA" "$CONF" || bail "regfs-registry did not start"
  exists() { [ -e "$DATA$1" ]; }
  getobj() { cat "$DATA$1"; }
  blob_list() { stored_blobs "$DATA"; }
  blob_bytes() { find "$DATA/docker/registry/v2/blobs" -type f -name data -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
  r2_config() { write_registry_config "$1" "$DATA" "$(free_port)"; }
  set_ttl() { write_registry_config "$REGFS_CONFIG" "$DATA" "$REGFS_PORT" "${CONF/ttl: 4s/ttl: $1}"; }
fi
H=$REGISTRY_HOST; U=$REGISTRY_URL; REGFS_CONFIG=$REGISTRY_CONFIG; REGFS_PORT=$REGISTRY_PORT
REGFS_PID=$REGISTRY_PID; REGFS_LOG=$REGISTRY_LOG

check "skopeo pushes the local image to regfs-registry" skopeo_copy "oci:$O:c" "docker://$H/local/app:c"
check "skopeo copies the local image back (reference copy)" skopeo_copy "docker://$H/local/app:c" "dir:$WORK/c0"
check "A pulls through the cache" skopeo_copy "docker://$H/up/team/a:v1" "dir:$WORK/a0"
check "B pulls through the cache" skopeo_copy "docker://$H/up/team/b:v1" "dir:$WORK/b0"
check "the pulled blobs hash to their digests" verify_dir_blobs "$WORK/a0"

V2=/docker/registry/v2
A_TAG=$V2/repositories/up/team/a/_manifests/tags/v1
B_TAG=$V2/repositories/up/team/b/_manifests/tags/v1
blob_key() { local h=${1#sha256:}; echo "$V2/blobs/sha256/${h:0:2}/$h/data"; }
stored() { exists "$(blob_key "$1")"; }
blobs_hash_ok() { # every stored blob hashes to its name
  local d n=0
  while read -r d; do
    [ "$(getobj "$(blob_key "$d")" | sha256sum | cut -d' ' -f1)" = "${d#sha256:}" ] || { echo "$d"; return 1; }
    n=$((n + 1))
  done < <(blob_list)
  [ $n -gt 0 ]
}
# (one listing per check: on S3 each listing is a boto3 process, slow on a loaded machine)
all_stored() { blob_list >"$WORK/now"; comm -23 <(sort -u "$1") "$WORK/now" | grep -q . && return 1; return 0; }
none_stored() { blob_list >"$WORK/now"; ! comm -12 <(sort -u "$1") "$WORK/now" | grep -q .; }
# Pulls of A's and B's manifests every second in the background, independent of how long
# the checks take: on S3 the cache stores a blob a moment after the client has it and
# each check's listing takes seconds, longer than the ttl, so pulls made between checks
# would let an image expire that the test means to keep.
pull_loop() { # pull_loop NAME — GET up/team/NAME:v1 every second until stopped
  start_bg "pull-$1" bash -c "while :; do curl -s -m 10 -o /dev/null -H '$ACCEPT' '$U/v2/up/team/$1/manifests/v1'; sleep 1; done"
}
pull_loop a; PULL_A_PID=$BG_PID
pull_loop b; PULL_B_PID=$BG_PID
a_stored=no
for ((i = 0; i < 30; i++)); do
  if all_stored "$WORK/a.all"; then a_stored=yes; break; fi
  sleep 1
done
check_eq "A's blobs are stored" yes "$a_stored"
stop_pid "$PULL_A_PID"

# --- B stays pulled (every second) until A has expired (bounded) ----------------------------
a_gone() { ! exists "$A_TAG/" && none_stored "$WORK/a.own"; }
gone=no
for ((i = 0; i < 40; i++)); do
  if a_gone; then gone=yes; break; fi
  sleep 1
done
check_eq "A's tag and its own blobs are deleted while B is pulled" yes "$gone"
# (a tag and its manifest may go in two passes: a pull by digest records the manifest
# a moment after the tag)
freed() { grep -Eq "proxy expiry: upstream http://$UP .*$1" "$REGFS_LOG"; }
freed_all() { freed ' [1-9][0-9]* tags,' && freed ' [1-9][0-9]* manifests,' &&
              freed ' [1-9][0-9]* blobs, [1-9][0-9]* bytes freed'; }
check "the expiry passes logged the tag, the manifest and the blobs freed" freed_all
check "  and each deleted blob of A, with its bytes" \
  grep -q "proxy expiry: blob $(tail -n1 "$WORK/a.own") ([0-9]* bytes) referenced by no manifest: deleted" "$REGFS_LOG"
check "B was never expired (its tag and manifest were pulled every second)" \
  test_not grep -q "proxy expiry: tag up/team/b:v1 " "$REGFS_LOG"
check "B's tag stays" exists "$B_TAG/current/link"
check "the shared base layer stays" stored "$BASE"
check "B's blobs stay" all_stored "$WORK/b.all"
check "the local image's blobs stay" all_stored "$WORK/c.all"
check "every stored blob hashes to its name" blobs_hash_ok
if [ "${PROXY_EXPIRE_STORAGE:-filesystem}" != s3 ]; then
  reachable "$DATA" all >"$WORK/reach"; blob_list >"$WORK/stored"
  check_files "stored blobs = blobs the remaining manifests reference (none orphaned or missing)" \
    "$WORK/reach" "$WORK/stored"
fi
a_man=$(head -n1 "$WORK/a.own")
check "A's manifest revision is gone from the cached repository" \
  test_not exists "$V2/repositories/up/team/a/_manifests/revisions/sha256/${a_man#sha256:}/link"
check "the local image pulls byte-identical" skopeo_copy "docker://$H/local/app:c" "dir:$WORK/c1"
check "  (same files)" same_dirs "$WORK/c0" "$WORK/c1"

# --- the usage extension against the disk ---------------------------------------------------
disk_bytes=$(blob_bytes)
curl -s "$U/v2/_regfs/usage" >"$WORK/usage.json"
check_eq "usage: stored bytes = the blob files on disk, no garbage" "$disk_bytes 0" \
  "$(jq -r '"\(.stored) \(.garbage.total)"' "$WORK/usage.json")"
check_eq "usage: tags and manifests of up/team/a (expired) and up/team/b" "0 0 1 1" \
  "$(jq -r '[.repositories[] | select(.name == "up/team/a" or .name == "up/team/b")] | sort_by(.name) | map("\(.tags) \(.manifests)") | join(" ")' "$WORK/usage.json")"

# --- the pull records are outside the registry:2 layout ------------------------------------
check "the pull records are stored under _regfs/proxy/" exists "$V2/_regfs/proxy/up/team/b/_pulls.json"
# (up/team/a, emptied, stays listed on a filesystem and vanishes on S3: no empty prefixes)
check_eq "the catalog does not list them" '["local/app","up/team/b"]' \
  "$(curl -s "$U/v2/_catalog" | jq -c '.repositories - ["up/team/a"]')"
r2_config "$WORK/r2.yml"
r2_gc() { with_timeout 60 env -u AWS_CA_BUNDLE "$DOCKER_REGISTRY" garbage-collect --dry-run "$WORK/r2.yml" >"$WORK/r2gc.out" 2>&1; }
check "registry:2's garbage-collect --dry-run reads the storage with them" r2_gc
check_eq "  and finds nothing left unreferenced by the expiry" "0 blobs and 0 manifests eligible" \
  "$(grep -o '[0-9]* blobs and [0-9]* manifests eligible' "$WORK/r2gc.out")"

# --- B with the upstream stopped; A again with it back --------------------------------------
stop_pid "$UP_PID"
check "B pulls with the upstream stopped" skopeo_copy "docker://$H/up/team/b:v1" "dir:$WORK/b1"
check "  byte-identical to the first pull" same_dirs "$WORK/b0" "$WORK/b1"
start_docker_registry "$UP_CONFIG" || bail "upstream docker-registry did not restart"
check "A pulls again with the upstream back" skopeo_copy "docker://$H/up/team/a:v1" "dir:$WORK/a1"
check "  byte-identical to the first pull" same_dirs "$WORK/a0" "$WORK/a1"
check "  and is stored again" all_stored "$WORK/a.all"

stop_pid "$PULL_B_PID"

# --- the pull records survive a restart -------------------------------------------------------
# ttl 16s: B is last pulled now, A 10 s later, then regfs-registry restarts at once. Stored
# records: B's expires ~7 s after A's pull, A's ~17 s after (a restart on S3 took 9 s on a
# loaded machine: with ttl 8s both had expired before the first pass). Records lost would make
# both count as pulled at the restart, so both would go together.
stop_pid "$REGFS_PID"
set_ttl 16s
start_regfs_registry "$REGFS_CONFIG" || bail "regfs-registry did not start (ttl 16s)"
U=$REGISTRY_URL; REGFS_PID=$REGISTRY_PID
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "$U/v2/up/team/b/manifests/v1")" = 200 ] || log "pull of B failed"
sleep 10
t_a=$(date +%s)
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "$U/v2/up/team/a/manifests/v1")" = 200 ] || log "pull of A failed"
stop_pid "$REGFS_PID"
rec=$V2/_regfs/proxy/up/team/a/_pulls.json
check "the pull records are saved at stop" exists "$rec"
check_eq "  with A's pull time" yes "$( [ "$(getobj "$rec" | jq -r '.tags.v1 // 0' 2>/dev/null)" -ge "$t_a" ] && echo yes)"
start_regfs_registry "$REGFS_CONFIG" || bail "regfs-registry did not restart"
# The order of the expiry log lines of the restarted registry (passes go through the
# repositories sorted: with records lost A's line would come first, in B's pass), then
# the storage: A's tag is there unless A has expired since (listings on S3 take seconds).
expired_line() { grep -o "proxy expiry: tag up/team/[ab]:v1 " "$REGISTRY_LOG"; }
wait_for 30 grep -q "proxy expiry: tag up/team/b:v1 " "$REGISTRY_LOG"
check_eq "after the restart B (stale record) expires first" "proxy expiry: tag up/team/b:v1 " \
  "$(expired_line | head -n1)"
a_stored=$(exists "$A_TAG/current/link" && echo yes)
grep -q "proxy expiry: tag up/team/a:v1 " "$REGISTRY_LOG" && a_stored=yes
check_eq "  while A (pulled before the restart) stays" yes "$a_stored"
done_testing
