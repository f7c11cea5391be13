#!/bin/bash
# The OCI Distribution API behaves on S3 as on the
# filesystem. The same curl-level sequence (monolithic, POST+PUT, chunked,
# streamed and cross-repo-mount uploads, out-of-order chunk 416, wrong digest
# DIGEST_INVALID, upload status and cancel, manifests by tag and digest,
# MANIFEST_BLOB_UNKNOWN, tag paging with Link, catalog, referrers, ranged blob
# GET, deletes) runs against regfs-registry on storage.filesystem and on
# storage.s3 (RGW, redirect off so both stream). Every step is checked
# against values computed here, and the two transcripts must be identical.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin jq
s3_start apibucket

B=$WORK/body; H=$WORK/headers
req() { local m=$1 u=$2; shift 2; curl -s -o "$B" -D "$H" -w '%{http_code}' -X "$m" -m 60 "$@" "$URL$u"; }
hdr() { tr -d '\r' <"$H" | sed -n "s/^$1: //Ip" | tail -n 1; }
code() { jq -r '.errors[0].code // empty' "$B" 2>/dev/null; }
path() { sed 's|^https\?://[^/]*||'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
OCT=(-H 'Content-Type: application/octet-stream')
OCI_MT=application/vnd.oci.image.manifest.v1+json

# Fixed inputs shared by both runs (so both transcripts can be equal).
head -c 300000 /dev/urandom >"$WORK/l1"; head -c 1234 /dev/urandom >"$WORK/l2"
head -c 6000000 /dev/urandom >"$WORK/c1"; head -c 4000 /dev/urandom >"$WORK/c2"
cat "$WORK/c1" "$WORK/c2" >"$WORK/c12"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/cfg"
d_l1=sha256:$(sha "$WORK/l1"); d_l2=sha256:$(sha "$WORK/l2"); d_c12=sha256:$(sha "$WORK/c12"); d_cfg=sha256:$(sha "$WORK/cfg")
s_l1=$(stat -c %s "$WORK/l1"); s_cfg=$(stat -c %s "$WORK/cfg")
jq -cn --arg c "$d_cfg" --argjson cs "$s_cfg" --arg l "$d_l1" --argjson ls "$s_l1" --arg mt "$OCI_MT" \
  '{schemaVersion:2, mediaType:$mt, config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
    layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l,size:$ls}]}' >"$WORK/m1"
d_m1=sha256:$(sha "$WORK/m1")
jq -cn --arg c "$d_cfg" --argjson cs "$s_cfg" --arg s "$d_m1" --argjson ss "$(stat -c %s "$WORK/m1")" --arg mt "$OCI_MT" \
  '{schemaVersion:2, mediaType:$mt, artifactType:"application/vnd.regfs.test",
    config:{mediaType:"application/vnd.oci.empty.v1+json",digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",size:2},
    layers:[{mediaType:"application/vnd.oci.empty.v1+json",digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",size:2}],
    subject:{mediaType:$mt,digest:$s,size:$ss}}' >"$WORK/ref"
d_ref=sha256:$(sha "$WORK/ref")
printf '{}' >"$WORK/empty"
jq -cn --arg mt "$OCI_MT" '{schemaVersion:2, mediaType:$mt, config:{mediaType:"application/vnd.oci.image.config.v1+json",
  digest:"sha256:0000000000000000000000000000000000000000000000000000000000000000",size:1}, layers:[]}' >"$WORK/mbad"

# t NAME EXPECTED ACTUAL — a check that also goes into the transcript.
t() { check_eq "$kind: $1" "$2" "$3"; printf '%s: %s\n' "$1" "$3" >>"$WORK/transcript-$kind"; }

suite() {
  local r=api/repo loc st
  t "GET /v2/" 200 "$(req GET /v2/)"
  # monolithic POST ?digest=
  t "monolithic upload" 201 "$(req POST "/v2/$r/blobs/uploads/?digest=$d_l1" "${OCT[@]}" --data-binary @"$WORK/l1")"
  t "… Location names the blob" "/v2/$r/blobs/$d_l1" "$(hdr Location | path)"
  t "HEAD blob" "200 $s_l1 $d_l1" "$(req HEAD "/v2/$r/blobs/$d_l1" -I) $(hdr Content-Length) $(hdr Docker-Content-Digest)"
  # POST then PUT with the body
  req POST "/v2/$r/blobs/uploads/" >/dev/null; loc=$(hdr Location | path)
  sep='?'; case $loc in *\?*) sep='&' ;; esac
  t "POST+PUT upload" 201 "$(req PUT "$loc${sep}digest=$d_cfg" "${OCT[@]}" --data-binary @"$WORK/cfg")"
  t "config blob stored" 200 "$(req HEAD "/v2/$r/blobs/$d_cfg" -I)"
  # chunked, with an out-of-order chunk in between
  t "chunked: POST" 202 "$(req POST "/v2/$r/blobs/uploads/")"; loc=$(hdr Location | path)
  t "chunked: PATCH chunk 1" "202 0-5999999" "$(req PATCH "$loc" "${OCT[@]}" -H 'Content-Range: 0-5999999' --data-binary @"$WORK/c1") $(hdr Range)"
  loc=$(hdr Location | path)
  t "chunked: out-of-order chunk" 416 "$(req PATCH "$loc" "${OCT[@]}" -H 'Content-Range: 7000000-7003999' --data-binary @"$WORK/c2")"
  t "chunked: upload status" "204 0-5999999" "$(req GET "$loc") $(hdr Range)"
  sep='?'; case $loc in *\?*) sep='&' ;; esac
  t "chunked: PUT last chunk + digest" 201 "$(req PUT "$loc${sep}digest=$d_c12" "${OCT[@]}" -H 'Content-Range: 6000000-6003999' --data-binary @"$WORK/c2")"
  t "chunked: blob bytes" "${d_c12#sha256:}" "$(curl -s "$URL/v2/$r/blobs/$d_c12" | sha256sum | cut -d' ' -f1)"
  t "ranged GET of a blob" "206 $(tail -c +101 "$WORK/c12" | head -c 900 | sha256sum | cut -d' ' -f1)" \
    "$(curl -s -o "$WORK/range" -w '%{http_code}' -H 'Range: bytes=100-999' "$URL/v2/$r/blobs/$d_c12") $(sha "$WORK/range")"
  # streamed (no Content-Range)
  req POST "/v2/$r/blobs/uploads/" >/dev/null; loc=$(hdr Location | path)
  t "streamed: PATCH" 202 "$(req PATCH "$loc" "${OCT[@]}" --data-binary @"$WORK/l2")"; loc=$(hdr Location | path)
  sep='?'; case $loc in *\?*) sep='&' ;; esac
  t "streamed: PUT digest" 201 "$(req PUT "$loc${sep}digest=$d_l2")"
  # wrong digest
  req POST "/v2/$r/blobs/uploads/" >/dev/null; loc=$(hdr Location | path); sep='?'; case $loc in *\?*) sep='&' ;; esac
  t "wrong digest" "400 DIGEST_INVALID" "$(req PUT "$loc${sep}digest=$d_l1" "${OCT[@]}" --data-binary @"$WORK/l2") $(code)"
  # cancel
  req POST "/v2/$r/blobs/uploads/" >/dev/null; loc=$(hdr Location | path)
  t "cancel an upload" 204 "$(req DELETE "$loc")"
  t "… then it is unknown" "404 BLOB_UPLOAD_UNKNOWN" "$(req GET "$loc") $(code)"
  # cross-repo mount
  t "cross-repo mount" 201 "$(req POST "/v2/api/other/blobs/uploads/?mount=$d_l1&from=$r")"
  t "… mounted blob readable" "${d_l1#sha256:}" "$(curl -s "$URL/v2/api/other/blobs/$d_l1" | sha256sum | cut -d' ' -f1)"
  # manifests
  t "manifest with an unknown blob" "400 MANIFEST_BLOB_UNKNOWN" "$(req PUT "/v2/$r/manifests/bad" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/mbad") $(code)"
  t "PUT manifest by tag" "201 $d_m1" "$(req PUT "/v2/$r/manifests/v1" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/m1") $(hdr Docker-Content-Digest)"
  t "GET manifest by tag" "200 ${d_m1#sha256:}" "$(req GET "/v2/$r/manifests/v1" -H "Accept: $OCI_MT") $(sha "$B")"
  t "HEAD manifest by digest" "200 $OCI_MT" "$(req HEAD "/v2/$r/manifests/$d_m1" -I -H "Accept: $OCI_MT") $(hdr Content-Type)"
  for tag in a b c d e; do req PUT "/v2/$r/manifests/$tag" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/m1" >/dev/null; done
  t "tags, first page of 2" '200 ["a","b"]' "$(req GET "/v2/$r/tags/list?n=2") $(jq -c .tags "$B")"
  t "… Link to the next page" "</v2/$r/tags/list?last=b&n=2>; rel=\"next\"" "$(hdr Link | sed 's|<https\?://[^/]*|<|')"
  t "tags, all" '["a","b","c","d","e","v1"]' "$(curl -s "$URL/v2/$r/tags/list" | jq -c .tags)"
  t "catalog" '["api/other","api/repo"]' "$(curl -s "$URL/v2/_catalog" | jq -c '[.repositories[] | select(startswith("api/"))]')"
  # referrers
  req POST "/v2/$r/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" "${OCT[@]}" --data-binary @"$WORK/empty" >/dev/null
  t "PUT a referrer (subject = v1)" "201 $d_m1" "$(req PUT "/v2/$r/manifests/$d_ref" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/ref") $(hdr OCI-Subject)"
  t "referrers of v1" "200 $d_ref application/vnd.regfs.test" \
    "$(req GET "/v2/$r/referrers/$d_m1") $(jq -r '.manifests[0].digest + " " + .manifests[0].artifactType' "$B")"
  # deletes
  t "DELETE tag a" 202 "$(req DELETE "/v2/$r/manifests/a")"
  t "… tag a gone, b stays" "404 200" "$(req GET "/v2/$r/manifests/a" -H "Accept: $OCI_MT") $(req GET "/v2/$r/manifests/b" -H "Accept: $OCI_MT")"
  t "DELETE manifest by digest" 202 "$(req DELETE "/v2/$r/manifests/$d_m1")"
  t "… every tag of it gone" 404 "$(req GET "/v2/$r/manifests/v1" -H "Accept: $OCI_MT")"
  t "DELETE blob" 202 "$(req DELETE "/v2/$r/blobs/$d_l2")"
  t "… blob gone" 404 "$(req HEAD "/v2/$r/blobs/$d_l2" -I)"
}

# filesystem
kind=fs
start_regfs_registry "$WORK/fsdata" || bail "regfs-registry (fs) did not start"
URL=$REGISTRY_URL; suite; stop_pid "$REGISTRY_PID"
# S3: the seed config, redirect off so blob GETs stream on both
kind=s3
cfg=$WORK/s3.yml
s3_config "$cfg" apibucket "$(free_port)"
sed -i 's/^  delete:/  redirect:\n    disable: true\n  delete:/' "$cfg"
start_regfs_registry "$cfg" || bail "regfs-registry (s3) did not start"
URL=$REGISTRY_URL; suite
check "the S3 transcript is identical to the filesystem's" diff "$WORK/transcript-fs" "$WORK/transcript-s3"
done_testing
