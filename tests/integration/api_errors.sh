#!/bin/bash
# Registry errors at curl level: out-of-order chunk → 416; wrong digest → DIGEST_INVALID
# and nothing stored; manifest with a missing blob → MANIFEST_BLOB_UNKNOWN; bad name →
# NAME_INVALID; sha256:totallywrong as a reference → 400 with a JSON error (registry:2
# answers 500); n=100 paging walks all of 2,500 tags; delete by tag leaves the
# manifest's other tags. Expected values are computed here (sha256sum, files on disk).
#
# Runs against regfs-registry (every check) and, as a cross-check of the test itself,
# against Debian's docker-registry for the checks registry:2 implements per the spec
# (API_ERRORS_KINDS="docker" runs only that; the regfs-only checks are listed in the log).
. "$(dirname "$0")/lib.sh"

kinds=${API_ERRORS_KINDS:-$(reference_kinds)}
case " $kinds " in *" regfs "*) need_regfs_registry ;; *) log "API_ERRORS_KINDS=$kinds: the regfs-registry checks are not run" ;; esac

B=$WORK/body; H=$WORK/headers
# req METHOD URL [CURL_ARGS…] — prints the status; body in $B, headers in $H.
req() {
  local m=$1 u=$2; shift 2
  curl -s -o "$B" -D "$H" -w '%{http_code}' -X "$m" -m 30 "$@" "$u"
}
hdr() { tr -d '\r' <"$H" | sed -n "s/^$1: //Ip" | tail -n 1; }
code() { jq -r '.errors[0].code // empty' "$B" 2>/dev/null; }
abs() { case $1 in http*) echo "$1" ;; *) echo "$URL$1" ;; esac; }  # Location may be relative
sha() { sha256sum "$1" | cut -d' ' -f1; }
OCT=(-H 'Content-Type: application/octet-stream')
OCI_MT=application/vnd.oci.image.manifest.v1+json

# regfs_only NAME — true for regfs; for docker logs that registry:2 differs and returns false.
regfs_only() { [ "$k" = regfs ] && return 0; log "docker-registry: not checked (registry:2 differs): $1"; return 1; }

for k in $kinds; do
  start_registry "$k" "$WORK/data-$k" || { fail "$k: registry starts"; continue; }
  URL=$REGISTRY_URL; D=$REGISTRY_DATA/docker/registry/v2
  check_eq "$k: GET /v2/ answers 200" 200 "$(req GET "$URL/v2/")"

  # --- chunked upload: out of order → 416, the upload stays usable ---------------------
  head -c 100 /dev/urandom >"$WORK/c1"; head -c 100 /dev/urandom >"$WORK/c2"
  cat "$WORK/c1" "$WORK/c2" >"$WORK/c12"
  st=$(req POST "$URL/v2/chunk/blobs/uploads/"); loc=$(abs "$(hdr Location)")
  check_eq "$k: POST starts an upload session (202)" 202 "$st"
  st=$(req PATCH "$loc" "${OCT[@]}" -H 'Content-Range: 0-99' --data-binary @"$WORK/c1"); loc=$(abs "$(hdr Location)")
  check_eq "$k: PATCH chunk 0-99 (202)" 202 "$st"
  if regfs_only "out-of-order chunk → 416"; then
    check_eq "$k: PATCH chunk 200-299 out of order → 416" 416 \
      "$(req PATCH "$loc" "${OCT[@]}" -H 'Content-Range: 200-299' --data-binary @"$WORK/c2")"
    check_eq "$k: upload status after the 416: 204, Range 0-99" "204 0-99" "$(req GET "$loc") $(hdr Range)"
  fi
  st=$(req PATCH "$loc" "${OCT[@]}" -H 'Content-Range: 100-199' --data-binary @"$WORK/c2"); loc=$(abs "$(hdr Location)")
  check_eq "$k: PATCH chunk 100-199 (202)" 202 "$st"
  d12=sha256:$(sha "$WORK/c12")
  sep='&'; case $loc in *\?*) ;; *) sep='?' ;; esac
  check_eq "$k: PUT finishes the chunked upload (201)" 201 "$(req PUT "$loc${sep}digest=$d12")"
  check_eq "$k: stored blob = the two chunks (sha256 on disk)" "${d12#sha256:}" "$(sha "$(blob_path "$REGISTRY_DATA" "$d12")" 2>/dev/null)"
  check_eq "$k: GET blob returns the bytes" "${d12#sha256:}" "$(curl -s "$URL/v2/chunk/blobs/$d12" | sha256sum | cut -d' ' -f1)"

  # --- wrong digest: DIGEST_INVALID, nothing stored --------------------------------------
  head -c 1000 /dev/urandom >"$WORK/w"; real=sha256:$(sha "$WORK/w"); wrong=sha256:$(printf '%064d' 7)
  st=$(req POST "$URL/v2/wrong/blobs/uploads/"); loc=$(abs "$(hdr Location)")
  sep='&'; case $loc in *\?*) ;; *) sep='?' ;; esac
  st=$(req PUT "$loc${sep}digest=$wrong" "${OCT[@]}" --data-binary @"$WORK/w")
  check_eq "$k: PUT with a wrong digest → 400 DIGEST_INVALID" "400 DIGEST_INVALID" "$st $(code)"
  if regfs_only "monolithic POST ?digest= (registry:2 ignores the body and opens a session)"; then
    check_eq "$k: monolithic POST with a wrong digest → 400 DIGEST_INVALID" "400 DIGEST_INVALID" \
      "$(req POST "$URL/v2/wrong/blobs/uploads/?digest=$wrong" "${OCT[@]}" --data-binary @"$WORK/w") $(code)"
  fi
  check_eq "$k: nothing stored under the wrong digest" "" "$(ls "$(dirname "$(blob_path "$REGISTRY_DATA" "$wrong")")" 2>/dev/null)"
  check_eq "$k: nothing stored under the content's digest" "" "$(ls "$(dirname "$(blob_path "$REGISTRY_DATA" "$real")")" 2>/dev/null)"
  check_eq "$k: HEAD of the content's digest → 404" 404 "$(req HEAD "$URL/v2/wrong/blobs/$real" -I)"
  check_eq "$k: no layer link in the repository" "" "$(ls "$D/repositories/wrong/_layers/sha256" 2>/dev/null)"

  # --- manifest referencing a missing blob ------------------------------------------------
  echo '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/cfg"
  cfgd=sha256:$(sha "$WORK/cfg"); cfgs=$(stat -c %s "$WORK/cfg")
  missing=sha256:$(head -c 64 /dev/urandom | sha256sum | cut -d' ' -f1)
  jq -cn --arg c "$cfgd" --argjson s "$cfgs" --arg l "$missing" --arg mt "$OCI_MT" '{schemaVersion:2, mediaType:$mt,
     config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$s},
     layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip", digest:$l, size:10}]}' >"$WORK/m-missing"
  req POST "$URL/v2/mb/blobs/uploads/?digest=$cfgd" "${OCT[@]}" --data-binary @"$WORK/cfg" >/dev/null
  if [ ! -f "$(blob_path "$REGISTRY_DATA" "$cfgd")" ]; then   # registry:2: no monolithic POST
    loc=$(abs "$(hdr Location)"); sep='&'; case $loc in *\?*) ;; *) sep='?' ;; esac
    req PUT "$loc${sep}digest=$cfgd" "${OCT[@]}" --data-binary @"$WORK/cfg" >/dev/null
  fi
  check "$k: config blob uploaded" test -f "$(blob_path "$REGISTRY_DATA" "$cfgd")"
  check_eq "$k: manifest with a missing layer → 400 MANIFEST_BLOB_UNKNOWN" "400 MANIFEST_BLOB_UNKNOWN" \
    "$(req PUT "$URL/v2/mb/manifests/t" -H "Content-Type: $OCI_MT" --data-binary @"$WORK/m-missing") $(code)"
  check_eq "$k: no tag stored for it" "" "$(ls "$D/repositories/mb/_manifests/tags" 2>/dev/null)"
  check_eq "$k: GET of that tag → 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" "$(req GET "$URL/v2/mb/manifests/t") $(code)"

  # --- bad names, bad references ---------------------------------------------------------
  if regfs_only "bad repository name → NAME_INVALID (registry:2: 404 from its router)"; then
    check_eq "$k: POST upload to Bad_NAME → 400 NAME_INVALID" "400 NAME_INVALID" "$(req POST "$URL/v2/Bad_NAME/blobs/uploads/") $(code)"
    check_eq "$k: tags/list of a..b → 400 NAME_INVALID" "400 NAME_INVALID" "$(req GET "$URL/v2/a..b/tags/list") $(code)"
    st=$(req GET "$URL/v2/a/../../../etc/manifests/latest" --path-as-is)
    check "$k: a name with .. is refused (4xx, JSON error: $st $(code))" \
      bash -c '[[ $1 == 4* ]] && [ -n "$2" ]' _ "$st" "$(code)"
  fi
  if regfs_only "sha256:totallywrong → 400 (registry:2 answers 500)"; then
    st=$(req GET "$URL/v2/mb/manifests/sha256:totallywrong")
    check_eq "$k: manifest sha256:totallywrong → 400 with a JSON error" "400 yes" \
      "$st $( [ -n "$(code)" ] && echo yes)"
    st=$(req GET "$URL/v2/mb/blobs/sha256:totallywrong")
    check_eq "$k: blob sha256:totallywrong → 400 DIGEST_INVALID" "400 DIGEST_INVALID" "$st $(code)"
  fi

  # --- a reference that is neither a digest nor a valid tag -----------------------------------
  # GET/HEAD/DELETE: 404 (registry:2's router: no such route); PUT stays 400 TAG_INVALID.
  long=$(printf 'a%.0s' $(seq 200))
  for ref in .INVALID_MANIFEST_NAME -x "$long"; do
    # registry:2's 404 is its router's plain-text page: only regfs has a code to compare
    want="404 MANIFEST_UNKNOWN"; [ "$k" = regfs ] || want="404 "
    check_eq "$k: GET manifests/${ref:0:24} → $want" "$want" \
      "$(req GET "$URL/v2/mb/manifests/$ref") $(code)"
    check_eq "$k: HEAD manifests/${ref:0:24} → 404, no body" "404 0" \
      "$(curl -s -I -m 30 -o /dev/null -w '%{http_code} %{size_download}' "$URL/v2/mb/manifests/$ref")"
    check_eq "$k: DELETE manifests/${ref:0:24} → 404" 404 "$(req DELETE "$URL/v2/mb/manifests/$ref")"
    if regfs_only "PUT manifests/${ref:0:24} → 400 TAG_INVALID (registry:2: 404)"; then
      check_eq "$k: PUT manifests/${ref:0:24} → 400 TAG_INVALID" "400 TAG_INVALID" \
        "$(req PUT "$URL/v2/mb/manifests/$ref" -H "Content-Type: $OCI_MT" --data-binary '{}') $(code)"
    fi
  done

  # --- 2,500 tags, n=100 paging --------------------------------------------------------------
  # (regfs only: registry:2.8 ignores n=, and 2,500 PUTs to it only cost time)
  if ! regfs_only "2,500 tags with n=100 paging, delete by tag"; then stop_pid "$REGISTRY_PID"; continue; fi
  jq -cn --arg c "$cfgd" --argjson s "$cfgs" --arg mt "$OCI_MT" \
    '{schemaVersion:2, mediaType:$mt, config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$s}, layers:[]}' >"$WORK/m0"
  # The blob must be in this repository: cross-mount it (or upload again).
  req POST "$URL/v2/many/blobs/uploads/?mount=$cfgd&from=mb" >/dev/null
  if [ ! -f "$D/repositories/many/_layers/sha256/${cfgd#sha256:}/link" ]; then
    loc=$(abs "$(hdr Location)"); sep='&'; case $loc in *\?*) ;; *) sep='?' ;; esac
    req PUT "$loc${sep}digest=$cfgd" "${OCT[@]}" --data-binary @"$WORK/cfg" >/dev/null
  fi
  seq -f 'tag%04g' 1 2500 >"$WORK/tags.expected"
  : >"$WORK/put.cfg"
  while read -r t; do
    printf 'url = "%s/v2/many/manifests/%s"\nrequest = "PUT"\nheader = "Content-Type: %s"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n' \
      "$URL" "$t" "$OCI_MT" "$WORK/m0" >>"$WORK/put.cfg"
  done <"$WORK/tags.expected"
  sed -i '$d' "$WORK/put.cfg"   # no trailing "next"
  codes=$(curl -s -K "$WORK/put.cfg" | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
  check_eq "$k: 2,500 tag PUTs answered 201" "201x2500 " "$codes"
  check_eq "$k: 2,500 tag directories on disk" 2500 "$(ls "$D/repositories/many/_manifests/tags" | wc -l)"
  next="/v2/many/tags/list?n=100"; pages=0; maxpage=0; : >"$WORK/tags.walked"
  while [ -n "$next" ] && [ $pages -lt 100 ]; do
    st=$(req GET "$(abs "$next")")
    [ "$st" = 200 ] || break
    n=$(jq '.tags | length' "$B"); [ "$n" -gt "$maxpage" ] && maxpage=$n
    jq -r '.tags[]' "$B" >>"$WORK/tags.walked"; pages=$((pages + 1))
    next=$(hdr Link | sed -n 's/^<\([^>]*\)>.*rel="\{0,1\}next"\{0,1\}.*/\1/p')
  done
  check_files "$k: paging n=100 walks all 2,500 tags, each once, in order" "$WORK/tags.expected" "$WORK/tags.walked"
  check_eq "$k: 25 pages of at most 100" "25 100" "$pages $maxpage"

  # --- delete by tag leaves the manifest's other tags ------------------------------------------
  m0d=sha256:$(sha "$WORK/m0")
  if regfs_only "DELETE /v2/<name>/manifests/<tag> (registry:2.8: UNSUPPORTED)"; then
    check_eq "$k: DELETE manifests/tag0001 (by tag) → 202" 202 "$(req DELETE "$URL/v2/many/manifests/tag0001")"
    check_eq "$k: deleted tag → 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" "$(req GET "$URL/v2/many/manifests/tag0001") $(code)"
    check_eq "$k: the other tags still serve the manifest" "200 $m0d 200 $m0d" \
      "$(req GET "$URL/v2/many/manifests/tag0002" -H "Accept: $OCI_MT") $(hdr Docker-Content-Digest) $(req GET "$URL/v2/many/manifests/$m0d" -H "Accept: $OCI_MT") $(hdr Docker-Content-Digest)"
    check_eq "$k: on disk: tag0001 gone, 2,499 tags left, manifest revision kept" "no 2499 $m0d" \
      "$([ -e "$D/repositories/many/_manifests/tags/tag0001" ] && echo yes || echo no) $(ls "$D/repositories/many/_manifests/tags" | wc -l) $(cat "$D/repositories/many/_manifests/revisions/sha256/${m0d#sha256:}/link" 2>/dev/null)"
    check_eq "$k: tags/list no longer has tag0001" "2499 0" \
      "$(req GET "$URL/v2/many/tags/list?n=10000" >/dev/null; jq '.tags | length' "$B") $(jq '[.tags[] | select(. == "tag0001")] | length' "$B")"
  fi
  stop_pid "$REGISTRY_PID"
done
done_testing
