#!/bin/bash
# regfs-registry API details at curl level: blob Range
# (206, 416), HEAD headers, monolithic and streamed uploads, upload status and cancel,
# an upload continued by a restarted registry (hash state rebuilt from storage),
# cross-repository mount (and its fallback to a session), the 4 MiB manifest limit,
# referrers with the artifactType filter, catalog paging with Link, the regfs
# extensions, delete disabled → 405 UNSUPPORTED, http.headers, storage health → 503.
# Every expected value is computed here (sha256sum, files on disk).
. "$(dirname "$0")/lib.sh"
need_regfs_registry

B=$WORK/body; H=$WORK/headers
req() {   # req METHOD URL [CURL_ARGS…] — prints the status; body in $B, headers in $H
  local m=$1 u=$2; shift 2
  curl -s -o "$B" -D "$H" -w '%{http_code}' -X "$m" -m 30 "$@" "$u"
}
hdr() { tr -d '\r' <"$H" | sed -n "s/^$1: //Ip" | tail -n 1; }
code() { jq -r '.errors[0].code // empty' "$B" 2>/dev/null; }
abs() { case $1 in http*) echo "$1" ;; *) echo "$URL$1" ;; esac; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
OCT=(-H 'Content-Type: application/octet-stream')
OCI_MT=application/vnd.oci.image.manifest.v1+json

# push_blob REPO FILE — monolithic POST ?digest=; prints the status
push_blob() { req POST "$URL/v2/$1/blobs/uploads/?digest=sha256:$(sha "$2")" "${OCT[@]}" --data-binary @"$2"; }

# EXTRA_YAML follows "http:\n  addr: …", so indented lines extend the http section
start_regfs_registry "$WORK/data" $'  headers:\n    X-Test-Header: [one]' ||
  bail "regfs-registry does not start"
URL=$REGISTRY_URL; DATA=$REGISTRY_DATA

# --- monolithic upload, GET/HEAD, Range ---------------------------------------------
head -c 100000 /dev/urandom >"$WORK/blob"; d=sha256:$(sha "$WORK/blob")
check_eq "monolithic POST ?digest= → 201" 201 "$(push_blob r/one "$WORK/blob")"
check_eq "  Docker-Content-Digest" "$d" "$(hdr Docker-Content-Digest)"
check_eq "  stored on disk under its digest" "${d#sha256:}" "$(sha "$(blob_path "$DATA" "$d")")"
check_eq "HEAD blob → 200 with Content-Length" "200 100000" "$(req HEAD "$URL/v2/r/one/blobs/$d" -I) $(hdr Content-Length)"
check_eq "GET Range bytes=10-19 → 206" 206 "$(req GET "$URL/v2/r/one/blobs/$d" -H 'Range: bytes=10-19')"
check_eq "  Content-Range" "bytes 10-19/100000" "$(hdr Content-Range)"
check_eq "  the 10 bytes" "$(tail -c +11 "$WORK/blob" | head -c 10 | sha256sum)" "$(sha256sum <"$B")"
check_eq "GET Range bytes=-5 → the last 5" "$(tail -c 5 "$WORK/blob" | sha256sum)" \
  "$(curl -s -H 'Range: bytes=-5' "$URL/v2/r/one/blobs/$d" | sha256sum)"
check_eq "GET Range beyond the end → 416" "416 bytes */100000" \
  "$(req GET "$URL/v2/r/one/blobs/$d" -H 'Range: bytes=100000-') $(hdr Content-Range)"
check_eq "blob not linked in another repo → 404 BLOB_UNKNOWN" "404 BLOB_UNKNOWN" \
  "$(req GET "$URL/v2/r/other/blobs/$d") $(code)"

# --- streamed PATCH (no Content-Range), status, cancel -----------------------------------
head -c 3000000 /dev/urandom >"$WORK/big"; db=sha256:$(sha "$WORK/big")
st=$(req POST "$URL/v2/r/two/blobs/uploads/"); loc=$(abs "$(hdr Location)")
check_eq "POST session → 202, Range 0-0, Docker-Upload-UUID" "202 0-0 yes" \
  "$st $(hdr Range) $([ -n "$(hdr Docker-Upload-UUID)" ] && echo yes)"
check_eq "streamed PATCH of 3 MB (chunked transfer) → 202" 202 \
  "$(req PATCH "$loc" "${OCT[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big")"
check_eq "  Range 0-2999999" "0-2999999" "$(hdr Range)"
check_eq "GET status → 204 Range 0-2999999" "204 0-2999999" "$(req GET "$loc") $(hdr Range)"

# restart the registry in the middle of the upload: the next PATCH rebuilds the hash
stop_pid "$REGISTRY_PID"
start_regfs_registry "$REGISTRY_CONFIG" || bail "restart failed"
URL=$REGISTRY_URL
head -c 1000 /dev/urandom >"$WORK/tail"; cat "$WORK/big" "$WORK/tail" >"$WORK/whole"
dw=sha256:$(sha "$WORK/whole")
check_eq "after a restart: PATCH 3000000-3000999 continues the upload" 202 \
  "$(req PATCH "$loc" "${OCT[@]}" -H 'Content-Range: 3000000-3000999' --data-binary @"$WORK/tail")"
sep='?'; case $loc in *\?*) sep='&' ;; esac
check_eq "  PUT ?digest= of the whole → 201" 201 "$(req PUT "$loc${sep}digest=$dw")"
check_eq "  stored bytes are the whole" "${dw#sha256:}" "$(sha "$(blob_path "$DATA" "$dw")")"
check_eq "  the upload directory is gone" 0 "$(find "$DATA/docker/registry/v2/repositories/r/two/_uploads" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
check_eq "status of a finished upload → 404 BLOB_UPLOAD_UNKNOWN" "404 BLOB_UPLOAD_UNKNOWN" "$(req GET "$loc") $(code)"

st=$(req POST "$URL/v2/r/two/blobs/uploads/"); loc=$(abs "$(hdr Location)")
check_eq "DELETE of an upload → 204" 204 "$(req DELETE "$loc")"
check_eq "  then PATCH → 404 BLOB_UPLOAD_UNKNOWN" "404 BLOB_UPLOAD_UNKNOWN" \
  "$(req PATCH "$loc" "${OCT[@]}" --data-binary @"$WORK/tail") $(code)"

# --- cross-repository mount --------------------------------------------------------------
check_eq "mount from a repo that links the blob → 201" "201 $d" \
  "$(req POST "$URL/v2/r/three/blobs/uploads/?mount=$d&from=r/one") $(hdr Docker-Content-Digest)"
check_eq "  now readable in the target repo" 200 "$(req HEAD "$URL/v2/r/three/blobs/$d" -I)"
check_eq "mount from a repo that does not link it → 202 session" 202 \
  "$(req POST "$URL/v2/r/four/blobs/uploads/?mount=$d&from=r/two")"

# --- manifests: limit, subject/referrers ---------------------------------------------------
echo '{}' >"$WORK/cfg"; dc=sha256:$(sha "$WORK/cfg")
push_blob r/one "$WORK/cfg" >/dev/null
manifest() {  # manifest [SUBJECT_DIGEST SUBJECT_SIZE ARTIFACT_TYPE]
  local subj=""
  [ $# -ge 3 ] && subj=",\"artifactType\":\"$3\",\"subject\":{\"mediaType\":\"$OCI_MT\",\"digest\":\"$1\",\"size\":$2}"
  printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":3},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":100000}]%s}' \
    "$OCI_MT" "$dc" "$d" "$subj"
}
manifest >"$WORK/m"; dm=sha256:$(sha "$WORK/m"); sm=$(stat -c %s "$WORK/m")
check_eq "PUT manifest by tag → 201" 201 "$(req PUT "$URL/v2/r/one/manifests/v1" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/m")"
check_eq "GET by tag: digest, type, length, ETag" "$dm $OCI_MT $sm \"$dm\"" \
  "$(req GET "$URL/v2/r/one/manifests/v1" >/dev/null; echo "$(hdr Docker-Content-Digest) $(hdr Content-Type) $(hdr Content-Length) $(hdr ETag)")"
check "  Last-Modified is an RFC 1123 date" grep -qiE '^Last-Modified: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT' "$H"
check_eq "  http.headers on every response" one "$(hdr X-Test-Header)"
check_eq "HEAD by digest → 200 with the GET's Content-Length" "200 $sm" "$(req HEAD "$URL/v2/r/one/manifests/$dm" -I) $(hdr Content-Length)"

manifest "$dm" "$sm" application/example.sig >"$WORK/s1"; ds1=sha256:$(sha "$WORK/s1")
manifest "$dm" "$sm" application/example.sbom >"$WORK/s2"; ds2=sha256:$(sha "$WORK/s2")
check_eq "PUT a referrer by digest → 201 with OCI-Subject" "201 $dm" \
  "$(req PUT "$URL/v2/r/one/manifests/$ds1" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/s1") $(hdr OCI-Subject)"
req PUT "$URL/v2/r/one/manifests/$ds2" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/s2" >/dev/null
check_eq "referrers lists both" "$(printf '%s\n' "$ds1" "$ds2" | sort | tr '\n' ' ')" \
  "$(req GET "$URL/v2/r/one/referrers/$dm" >/dev/null; jq -r '.manifests[].digest' "$B" | sort | tr '\n' ' ')"
check_eq "  as an OCI index" application/vnd.oci.image.index.v1+json "$(hdr Content-Type)"
check_eq "referrers ?artifactType= filters, says so" "$ds2 artifactType" \
  "$(req GET "$URL/v2/r/one/referrers/$dm?artifactType=application/example.sbom" >/dev/null; jq -r '.manifests[].digest' "$B") $(hdr OCI-Filters-Applied)"
check_eq "PUT by digest with other bytes → 400 DIGEST_INVALID" "400 DIGEST_INVALID" \
  "$(req PUT "$URL/v2/r/one/manifests/$ds1" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/m") $(code)"
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$WORK/huge"
check_eq "manifest over 4 MiB → 413 SIZE_INVALID" "413 SIZE_INVALID" \
  "$(req PUT "$URL/v2/r/one/manifests/huge" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/huge") $(code)"
check_eq "invalid JSON → 400 MANIFEST_INVALID" "400 MANIFEST_INVALID" \
  "$(req PUT "$URL/v2/r/one/manifests/bad" -H "Content-Type: $OCI_MT" --data-binary '{"schemaVersion":2') $(code)"

# --- extensions -------------------------------------------------------------------------
check_eq "GET /v2/ advertises the extensions" "bulk-tags,repo-manifests,bulk-manifests,usage" "$(req GET "$URL/v2/" >/dev/null; hdr X-Regfs-Extensions)"
check_eq "repo-manifests lists tagged and untagged manifests" "$(printf '%s\n' "$dm" "$ds1" "$ds2" | sort | tr '\n' ' ')" \
  "$(req GET "$URL/v2/r/one/_regfs/manifests" >/dev/null; jq -r '.manifests[].digest' "$B" | sort | tr '\n' ' ')"
check_eq "  with the tags of each" "v1" "$(jq -r --arg d "$dm" '.manifests[] | select(.digest == $d) | .tags | join(",")' "$B")"
check_eq "bulk-tags: r/one:v1 → its digest" "$dm" \
  "$(req GET "$URL/v2/_regfs/tags" >/dev/null; jq -r '.repositories[] | select(.name == "r/one") | .tags[] | select(.tag == "v1") | .digest' "$B")"

# --- bulk-manifests (GET /v2/_regfs/manifests) ---------------------------------------------
# More to list: a second tag on dm, an index over dm, a manifest with non-ASCII text and
# escapes; written straight into storage (as a broken or foreign writer could): a manifest
# whose bytes are not UTF-8 and one whose stored bytes do not hash to its digest.
req PUT "$URL/v2/r/one/manifests/v1b" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/m" >/dev/null
IDX_MT=application/vnd.oci.image.index.v1+json
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
  "$IDX_MT" "$OCI_MT" "$dm" "$sm" >"$WORK/idx"
check_eq "PUT an index over dm → 201" 201 \
  "$(req PUT "$URL/v2/r/one/manifests/multi" -H "Content-Type: $IDX_MT" --data-binary @"$WORK/idx")"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":3},"layers":[],"annotations":{"t\\"\\\\x":"caf\xc3\xa9 \xe2\x9c\x93\\n\\ttab"}}\n' \
  "$OCI_MT" "$dc" >"$WORK/utf"
check_eq "PUT a manifest with UTF-8 text and escapes → 201" 201 \
  "$(req PUT "$URL/v2/r/one/manifests/utf" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/utf")"
V2=$DATA/docker/registry/v2
put_raw() {  # put_raw REPO FILE DIGEST — stores FILE as blob DIGEST and links it as a revision
  local h=${3#sha256:}
  mkdir -p "$(dirname "$(blob_path "$DATA" "$3")")" "$V2/repositories/$1/_manifests/revisions/sha256/$h"
  cp "$2" "$(blob_path "$DATA" "$3")"
  printf '%s' "$3" >"$V2/repositories/$1/_manifests/revisions/sha256/$h/link"
}
printf '{"schemaVersion":2,"annotations":{"x":"\xff\xfe"}}' >"$WORK/latin"; dl=sha256:$(sha "$WORK/latin")
put_raw r/four "$WORK/latin" "$dl"
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[]}' "$IDX_MT" >"$WORK/claimed"
dt=sha256:$(sha "$WORK/claimed")
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[ ]}' "$IDX_MT" >"$WORK/tampered"
put_raw r/four "$WORK/tampered" "$dt"   # stored bytes ≠ the digest they are stored under

# Page through with n=1, following Link; keep each page.
next="/v2/_regfs/manifests?n=1"; pages=0; : >"$WORK/bulk.jsonl"; links=""
while [ -n "$next" ] && [ $pages -lt 20 ]; do
  st=$(req GET "$URL$next"); [ "$st" = 200 ] || break
  jq -c '.repositories[]' "$B" >>"$WORK/bulk.jsonl"
  next=$(hdr Link | sed -n 's/^<\([^>]*\)>.*rel="next".*/\1/p'); links+="$next "; pages=$((pages + 1))
done
check_eq "bulk-manifests n=1: every repository once, in order, one per page" \
  "$(curl -s "$URL/v2/_catalog" | jq -r '.repositories[]' | tr '\n' ' ') $pages" \
  "$(jq -r .name "$WORK/bulk.jsonl" | tr '\n' ' ') $(wc -l <"$WORK/bulk.jsonl")"
check "  each Link keeps n=1" bash -c "echo '$links' | tr ' ' '\n' | grep . | grep -v 'n=1\$' | grep -q . && exit 1 || exit 0"

bulk_check() {  # every tag, manifest list and content against the registry's own answers
  local name tags want got dg bad=0
  while IFS= read -r name; do
    jq -c --arg n "$name" 'select(.name == $n)' "$WORK/bulk.jsonl" >"$WORK/one.json"
    # tags: the names tags/list gives, each with the digest GET by tag answers
    want=""; for t in $(curl -s "$URL/v2/$name/tags/list" | jq -r '.tags // [] | .[]' | sort); do
      want+="$t=$(curl -s -o /dev/null -D - -H "Accept: $OCI_MT, $IDX_MT" "$URL/v2/$name/manifests/$t" |
        tr -d '\r' | sed -n 's/^Docker-Content-Digest: //Ip') "
    done
    got=$(jq -r '.tags[] | "\(.tag)=\(.digest)"' "$WORK/one.json" | sort | tr '\n' ' ')
    [ "$want" = "$got" ] || { echo "$name tags: want '$want' got '$got'"; bad=1; }
    want=$(curl -s "$URL/v2/$name/_regfs/manifests" | jq -r '.manifests[].digest' | sort | tr '\n' ' ')
    got=$(jq -r '.manifests[].digest' "$WORK/one.json" | sort | tr '\n' ' ')
    [ "$want" = "$got" ] || { echo "$name manifests: want '$want' got '$got'"; bad=1; }
    for dg in $(jq -r '.manifests[] | select(has("content")) | .digest' "$WORK/one.json"); do
      jq -j --arg d "$dg" '.manifests[] | select(.digest == $d) | .content' "$WORK/one.json" >"$WORK/content"
      [ "sha256:$(sha "$WORK/content")" = "$dg" ] || { echo "$name $dg: content hashes to $(sha "$WORK/content")"; bad=1; }
      curl -s -H "Accept: $OCI_MT, $IDX_MT" "$URL/v2/$name/manifests/$dg" >"$WORK/byget"
      cmp -s "$WORK/content" "$WORK/byget" || { echo "$name $dg: content differs from GET by digest"; bad=1; }
      [ "$(jq -r --arg d "$dg" '.manifests[] | select(.digest == $d) | .mediaType' "$WORK/one.json")" = \
        "$(curl -s -o /dev/null -D - "$URL/v2/$name/manifests/$dg" | tr -d '\r' | sed -n 's/^Content-Type: //Ip')" ] ||
        { echo "$name $dg: mediaType differs from GET's Content-Type"; bad=1; }
    done
  done < <(jq -r .name "$WORK/bulk.jsonl")
  return $bad
}
check "  tags, manifest lists, contents (sha256sum, cmp with GET by digest, media types)" bulk_check
check_eq "  with contents for r/one: v1's manifest, the referrers, the index, the UTF-8 one" \
  "$(printf '%s\n' "$dm" "$ds1" "$ds2" "$(sha256sum <"$WORK/idx" | sed 's/ .*//;s/^/sha256:/')" \
      "sha256:$(sha "$WORK/utf")" | sort | tr '\n' ' ')" \
  "$(jq -r 'select(.name == "r/one") | .manifests[] | select(has("content")) | .digest' "$WORK/bulk.jsonl" | sort | tr '\n' ' ')"
check_eq "  the non-UTF-8 and the corrupt manifest: listed, without content" "$(printf '%s\n' "$dl" "$dt" | sort | tr '\n' ' ')" \
  "$(jq -r 'select(.name == "r/four") | .manifests[] | select(has("content") | not) | .digest' "$WORK/bulk.jsonl" | sort | tr '\n' ' ')"
check_eq "  the non-UTF-8 one is still served by digest, byte for byte" "$(sha "$WORK/latin")" \
  "$(curl -s "$URL/v2/r/four/manifests/$dl" | sha256sum | cut -d' ' -f1)"
check_eq "  the corrupt one is refused by digest too (never served)" "no" \
  "$(curl -s "$URL/v2/r/four/manifests/$dt" | sha256sum | grep -q "${dt#sha256:}" && echo yes || echo no)"
check_eq "bulk-manifests without n: one page (default n ≥ 4), no Link" "4 " \
  "$(req GET "$URL/v2/_regfs/manifests" >/dev/null; jq '.repositories | length' "$B") $(hdr Link)"
check_eq "  ?last= past every name: empty" "0" \
  "$(req GET "$URL/v2/_regfs/manifests?last=zzz" >/dev/null; jq '.repositories | length' "$B")"
check_eq "  ?n=x → 400 PAGINATION_NUMBER_INVALID" "400 PAGINATION_NUMBER_INVALID" \
  "$(req GET "$URL/v2/_regfs/manifests?n=x") $(code)"
check_eq "  POST → 405 UNSUPPORTED" "405 UNSUPPORTED" "$(req POST "$URL/v2/_regfs/manifests") $(code)"
check_eq "  HEAD: 200 with the GET's Content-Length" "200 $(curl -s "$URL/v2/_regfs/manifests" | wc -c)" \
  "$(req HEAD "$URL/v2/_regfs/manifests" -I) $(hdr Content-Length)"
# the hand-written revisions go: later checks (gc, delete) see the registry as pushed
rm -rf "$V2/repositories/r/four/_manifests/revisions" "$(dirname "$(blob_path "$DATA" "$dl")")" \
  "$(dirname "$(blob_path "$DATA" "$dt")")"

# A revision whose link is gone (a delete by digest removes the link file; the directory may
# stay, as registry:2 leaves it): GET by digest answers 404, and both listings leave it out.
for n in 1 2; do
  printf '{"schemaVersion":2,"mediaType":"%s","manifests":[],"annotations":{"n":"%s"}}' "$IDX_MT" "$n" >"$WORK/rev$n"
  put_raw r/four "$WORK/rev$n" "sha256:$(sha "$WORK/rev$n")"
done
dr1=sha256:$(sha "$WORK/rev1"); dr2=sha256:$(sha "$WORK/rev2")
rm "$V2/repositories/r/four/_manifests/revisions/sha256/${dr2#sha256:}/link"
check_eq "a revision without its link: GET by digest → 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" \
  "$(req GET "$URL/v2/r/four/manifests/$dr2" -H "Accept: $IDX_MT") $(code)"
check_eq "  repo-manifests lists only the linked one" "$dr1" \
  "$(req GET "$URL/v2/r/four/_regfs/manifests" >/dev/null; jq -r '.manifests[].digest' "$B" | xargs)"
check_eq "  bulk-manifests lists only the linked one" "$dr1" \
  "$(req GET "$URL/v2/_regfs/manifests" >/dev/null; jq -r '.repositories[] | select(.name == "r/four") | .manifests[].digest' "$B" | xargs)"
rm -rf "$V2/repositories/r/four/_manifests/revisions" "$(dirname "$(blob_path "$DATA" "$dr1")")" \
  "$(dirname "$(blob_path "$DATA" "$dr2")")"

# --- catalog paging ----------------------------------------------------------------------
want=$(for r in r/four r/one r/three r/two; do echo "$r"; done | sort | tr '\n' ' ')
got=""; next="/v2/_catalog?n=1"; pages=0
while [ -n "$next" ] && [ $pages -lt 20 ]; do
  req GET "$URL$next" >/dev/null; got+=$(jq -r '.repositories[]' "$B" | tr '\n' ' ')
  next=$(hdr Link | sed -n 's/^<\([^>]*\)>.*rel="next".*/\1/p'); pages=$((pages + 1))
done
check_eq "catalog n=1 walks every repository via Link" "$want" "$got"

# --- delete disabled → 405 -----------------------------------------------------------------
stop_pid "$REGISTRY_PID"
sed -i 's/enabled: true/enabled: false/' "$REGISTRY_CONFIG"
start_regfs_registry "$REGISTRY_CONFIG" || bail "restart failed"
URL=$REGISTRY_URL
check_eq "delete disabled: DELETE manifest → 405 UNSUPPORTED" "405 UNSUPPORTED" "$(req DELETE "$URL/v2/r/one/manifests/v1") $(code)"
check_eq "delete disabled: DELETE blob → 405 UNSUPPORTED" "405 UNSUPPORTED" "$(req DELETE "$URL/v2/r/one/blobs/$d") $(code)"

# --- storage health ------------------------------------------------------------------------
stop_pid "$REGISTRY_PID"
printf 'health:\n  storagedriver:\n    enabled: true\n    interval: 1s\n    threshold: 2\n' >>"$REGISTRY_CONFIG"
start_regfs_registry "$REGISTRY_CONFIG" || bail "restart failed"
URL=$REGISTRY_URL
mv "$DATA" "$DATA.away"
base_is() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$URL/v2/")" = "$1" ]; }
check "storage gone: GET /v2/ turns 503 after the threshold" wait_for 15 base_is 503
check_eq "  with a JSON error naming the storage" UNAVAILABLE "$(req GET "$URL/v2/" >/dev/null; code)"
mv "$DATA.away" "$DATA"
check "storage back: GET /v2/ recovers to 200" wait_for 15 base_is 200

# --- upload purging ------------------------------------------------------------------------
stop_pid "$REGISTRY_PID"
printf 'storage:\n  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 1h\n      interval: 1s\n' >"$WORK/purge.yml"
# merge: the purging section goes under the existing storage: key
awk -v add="$(sed 1d "$WORK/purge.yml")" '{print} /^storage:/{print add}' "$REGISTRY_CONFIG" >"$WORK/cfg.new" &&
  mv "$WORK/cfg.new" "$REGISTRY_CONFIG"
start_regfs_registry "$REGISTRY_CONFIG" || bail "restart failed"
URL=$REGISTRY_URL
req POST "$URL/v2/r/purge/blobs/uploads/" >/dev/null; old=$(hdr Docker-Upload-UUID)
req POST "$URL/v2/r/purge/blobs/uploads/" >/dev/null; new=$(hdr Docker-Upload-UUID)
UP=$DATA/docker/registry/v2/repositories/r/purge/_uploads
printf '2020-01-01T00:00:00.5Z' >"$UP/$old/startedat"   # registry:2's format, long ago
purged() { [ ! -e "$UP/$old" ]; }
check "upload purging removes an upload older than age (first run after 10 s)" wait_for 30 purged
check "  and keeps a fresh one" test -d "$UP/$new"

# --- graceful stop -------------------------------------------------------------------------
kill -TERM "$REGISTRY_PID"
gone() { ! kill -0 "$REGISTRY_PID" 2>/dev/null; }
check "SIGTERM stops the registry" wait_for 15 gone
check "  and it logged the stop" grep -q "stopped" "$REGISTRY_LOG"

done_testing
