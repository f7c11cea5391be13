#!/bin/bash
# Push-time layer indexes (regfs.layerindex): a 3-layer image pushed with skopeo gets
# an index per layer, built in the background and served by
# GET /v2/<name>/_regfs/layerindex/<digest>; each index, fetched and decoded through
# the client (tools/regfs-layerindex.c), lists what `tar -tvf` of the stored blob lists.
# The endpoint's errors (blob not in the repository, not built); a job whose index
# could not be stored stays queued in storage and is done after a restart; GC removes
# the index of a deleted blob; the push time with indexing on vs off is printed (a
# ratio, never asserted).
. "$(dirname "$0")/lib.sh"

need_layerindex_tools
DPORT=$(free_port)
# the debug listener's metrics count the indexes built
LI_YAML="  debug:
    addr: 127.0.0.1:$DPORT
    prometheus:
      enabled: true
regfs:
  layerindex:
    enabled: true
    workers: 2"

# --- the image: a tree with the usual entry types, a deletion, a bigger file --------
t=$WORK/tree1
mkdir -p "$t/etc" "$t/usr/bin" "$t/dir with space"
echo hello >"$t/etc/hello"
ln -s hello "$t/etc/link"
ln "$t/etc/hello" "$t/etc/hard"
# umoci 0.4.7 ends a layer right after its last entry's data, without the padding
# to 512 bytes or the end-of-archive blocks: the last entry (usr/bin/tool) is not
# a whole number of blocks, so the index must read such a layer as GNU tar does.
{ printf '#!/bin/true\n'; head -c 333 /dev/zero | tr '\0' '#'; } >"$t/usr/bin/tool"
chmod 4755 "$t/usr/bin/tool"
long=$(printf 'n%.0s' $(seq 1 120))
echo long >"$t/dir with space/$long"
mkfifo "$t/etc/fifo"
t2=$WORK/tree2
mkdir -p "$t2/opt/app"
head -c 200K /dev/urandom >"$t2/opt/app/data.bin"
chmod 0640 "$t2/opt/app/data.bin"
umoci init --layout "$WORK/oci" >&2 && umoci new --image "$WORK/oci:v1" >&2 &&
  umoci config --image "$WORK/oci:v1" --os linux --architecture amd64 >&2 &&
  umoci insert --image "$WORK/oci:v1" "$t" / >&2 &&
  umoci insert --image "$WORK/oci:v1" "$t2" / >&2 &&
  umoci insert --image "$WORK/oci:v1" --whiteout /etc/fifo >&2 ||
  bail "umoci could not build the image"
head -c 3M /dev/urandom >"$WORK/big.bin"
umoci insert --image "$WORK/oci:v1" "$WORK/big.bin" /big.bin >&2 || bail "umoci insert"
umoci gc --layout "$WORK/oci" >&2

start_regfs_registry "$WORK/data" "$LI_YAML" || bail "regfs-registry does not start"
h=$REGISTRY_HOST
check "skopeo pushes a 4-layer image" skopeo_copy "oci:$WORK/oci:v1" "docker://$h/team/app:v1"
check "GET /v2/ advertises layer-index" \
  bash -c "curl -sf -D - -o /dev/null '$REGISTRY_URL/v2/' | grep -i '^X-Regfs-Extensions:.*layer-index'"
manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$REGISTRY_URL/v2/team/app/manifests/v1") || bail "manifest GET"
layers=$(jq -r '.layers[].digest' <<<"$manifest")
config=$(jq -r '.config.digest' <<<"$manifest")
check_eq "the image has 4 layers" 4 "$(wc -w <<<"$layers")"

# tar -tv --numeric-owner of a blob, in the tool's form: mode owner size path [link],
# sorted; size 0 but for regular files; no leading "./" or trailing "/".
tar_list() {
  tar -tv --numeric-owner -f "$1" | sed -E 's#^(\S+) (\S+) +(\S+) (\S+) (\S+) (.*)$#\1 \2 \3 \6#' |
    awk '{ if (substr($1, 1, 1) != "-") $3 = 0; print }' |
    sed -E 's#^(\S+ \S+ \S+ )(\./|/)*#\1#; s#/$##; s# link to (\./|/)*# link to #' |
    grep -Ev '^\S+ \S+ \S+ (\.)?$' | sort
}
index_list() { "$LI" "$REGISTRY_URL" "$1" "$2" | sort; }
built() { "$LI" "$REGISTRY_URL" "$1" "$2" >/dev/null 2>&1; }

i=0
for l in $layers; do
  if ! wait_for 60 built team/app "$l"; then
    fail "layer $i: index served within 60 s" "$("$LI" "$REGISTRY_URL" team/app "$l" 2>&1)"
  else
    ok "layer $i: index served within 60 s"
    check_files "layer $i: decoded index lists what tar -tvf of the blob lists" \
      <(tar_list "$(blob_path "$REGISTRY_DATA" "$l")") <(index_list team/app "$l")
  fi
  i=$((i + 1))
done
check "the log has one 'layer index built' line per layer" \
  test "$(grep -c 'layer index built: sha256:' "$REGISTRY_LOG")" -eq 4
check_eq "/metrics counts the 4 indexes built" "regfs_layer_indexes_built_total 4" \
  "$(curl -s "http://127.0.0.1:$DPORT/metrics" | grep '^regfs_layer_indexes_built_total ')"

# The endpoint: Docker-Content-Digest is the index's sha256; errors have distinct codes.
l0=$(head -n1 <<<"$layers")
hdr=$(curl -s -D - -o "$WORK/ix0" "$REGISTRY_URL/v2/team/app/_regfs/layerindex/$l0" |
  tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
check_eq "Docker-Content-Digest is the sha256 of the index bytes" \
  "sha256:$(sha256sum "$WORK/ix0" | cut -d' ' -f1)" "$hdr"
code() { curl -s "$REGISTRY_URL/v2/$1/_regfs/layerindex/$2" | jq -r '.errors[0].code'; }
other=$(make_image "$WORK/oci-other" o 1 10K) || bail "make_image"
check "push of another image to another repository" skopeo_copy "$other" "docker://$h/other/x:o"
check_eq "a repository that does not hold the layer: BLOB_UNKNOWN" BLOB_UNKNOWN \
  "$(code other/x "$l0")"
check_eq "a digest the repository does not hold: BLOB_UNKNOWN" BLOB_UNKNOWN \
  "$(code team/app "sha256:$(printf x | sha256sum | cut -d' ' -f1)")"
check_eq "a held blob that is no layer (the config): LAYER_INDEX_UNKNOWN" LAYER_INDEX_UNKNOWN \
  "$(code team/app "$config")"
check_eq "a bad digest: 400 DIGEST_INVALID" 400 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/team/app/_regfs/layerindex/sha256:xyz")"
# A stored index altered on disk: served with the digest of what is stored, so the
# client's layer_index_decode must catch it (the index's own trailing sha256).
l1=$(sed -n 2p <<<"$layers"); h1=${l1#sha256:}
ixf=$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex/sha256/${h1:0:2}/$h1/data
cp "$ixf" "$WORK/ix1.orig"
printf '\xff' | dd of="$ixf" bs=1 seek=40 conv=notrunc status=none
out=$("$LI" "$REGISTRY_URL" team/app "$l1" 2>&1)
check_eq "an altered stored index is refused by the client: EINVAL" "1 EINVAL" \
  "$? $(cut -d: -f1 <<<"$out")"
cp "$WORK/ix1.orig" "$ixf"
check_eq "the queue is empty once everything is built" "" \
  "$(ls "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex-queue" 2>/dev/null)"

# --- a job that could not finish stays queued and is done after a restart ----------
# A file where the index directory must go makes storing every index fail.
rm -rf "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex"
touch "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex"
img2=$(make_image "$WORK/oci" v2 2 100K 50K) || bail "make_image"
check "push of a second image while indexes cannot be stored" \
  skopeo_copy "$img2" "docker://$h/team/app:v2"
m2=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$REGISTRY_URL/v2/team/app/manifests/v2" | tee "$WORK/m2.json" | sha256sum | cut -d' ' -f1)
check "the failure is logged as one to retry" \
  wait_for 30 grep -q 'will retry' "$REGISTRY_LOG"
stop_pid "$REGISTRY_PID"
cp "$REGISTRY_LOG" "$WORK/before-restart.log" # the restart writes the same log file
check "its marker is still in storage after the stop" \
  test -f "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex-queue/sha256-$m2"
rm -f "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex"
start_regfs_registry "$REGISTRY_CONFIG" || bail "restart"
for l in $(jq -r '.layers[].digest' "$WORK/m2.json"); do
  check "after the restart, the index of $l is built" wait_for 60 built team/app "$l"
done
check "the marker is gone once done" wait_for 10 \
  test ! -e "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex-queue/sha256-$m2"

# --- GC removes the index of a deleted blob ------------------------------------------
l2=$(jq -r '.layers[0].digest' "$WORK/m2.json")
check "DELETE of the v2 manifest" curl -sf -X DELETE "$REGISTRY_URL/v2/team/app/manifests/sha256:$m2"
stop_pid "$REGISTRY_PID"
d2=$(h=${l2#sha256:}; echo "$REGISTRY_DATA/docker/registry/v2/_regfs/layerindex/sha256/${h:0:2}/$h")
check "the index of a v2 layer is stored" test -f "$d2/data"
check "garbage-collect runs" with_timeout 60 "$REGFS_REGISTRY" garbage-collect "$REGISTRY_CONFIG"
check "its blob is swept" test ! -e "$(blob_path "$REGISTRY_DATA" "$l2")"
check "GC removed the index of the swept blob" test ! -e "$d2"

# --- push time with indexing on vs off (printed, never asserted) --------------------
# Three rounds; each round a new image (so every push uploads its blobs) pushed to
# both registries; the medians are compared.
push_ms() {
  local t0 t1
  t0=$(date +%s%N)
  skopeo_copy "$2" "docker://$1/bench/app:v3" || return 1
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
start_regfs_registry "$WORK/data-off" || bail "registry (indexing off)"
h_off=$REGISTRY_HOST
out=$("$LI" "$REGISTRY_URL" team/app "$l0" 2>&1)
check_eq "the client says ENOTSUP (EOPNOTSUPP) when the extension is not advertised" \
  "1 EOPNOTSUPP" "$? $(cut -d: -f1 <<<"$out")"
start_regfs_registry "$WORK/data-on" "$LI_YAML" || bail "registry (indexing on)"
h_on=$REGISTRY_HOST
n_built() { test "$(grep -c 'layer index built' "$REGISTRY_LOG")" -eq "$1"; }
offs=() ons=()
for r in 1 2 3; do
  img3=$(make_image "$WORK/oci" "v3-$r" 3 4M) || bail "make_image"
  offs+=("$(push_ms "$h_off" "$img3")") || fail "push with indexing off"
  ons+=("$(push_ms "$h_on" "$img3")") || fail "push with indexing on"
  # the next pushes start once this round's indexes are built: each push is timed
  # alone (a build running meanwhile takes a core, which is a different question)
  wait_for 60 n_built $((3 * r))
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
off=$(median "${offs[@]}") on=$(median "${ons[@]}")
log "push times (ms), indexing off: ${offs[*]}; on: ${ons[*]}"
log "push of a 3 x 4 MiB image, median of 3: indexing off $off ms, on $on ms (ratio on/off $(
  awk -v a="$on" -v b="$off" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'))"
check "every index of the timed pushes is built" wait_for 60 n_built 9

done_testing
