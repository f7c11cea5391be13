#!/bin/bash
# mount_baseline.sh URL [MAX_REPOS] — the deduplicated storage total of a
# registry the way operators compute it today: curl + jq, one request at a time
# (catalog pages, each repository's tags, each tag's manifest). Prints the
# total in bytes rounded up to 512 per blob (what `du -s -B1` of the mount
# reports) and, on stderr, the number of requests made.
# MAX_REPOS limits the walk to the first N repositories (for a sampled run).
set -u -o pipefail
URL=$1 MAX=${2:-0}
ACCEPT='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
CNT=$(mktemp); trap 'rm -f "$CNT"' EXIT
count() { echo >>"$CNT"; }
repos=() next="/v2/_catalog?n=100"
while [ -n "$next" ]; do
  hdr=$(mktemp)
  body=$(curl -sf -D "$hdr" "$URL$next") || { echo "catalog failed" >&2; exit 1; }
  count
  mapfile -t -O ${#repos[@]} repos < <(jq -r '.repositories[]' <<<"$body")
  next=$(sed -n 's/^[Ll]ink: *<\([^>]*\)>.*/\1/p' "$hdr" | tr -d '\r')
  rm -f "$hdr"
done
[ "$MAX" -gt 0 ] && repos=("${repos[@]:0:$MAX}")
for r in "${repos[@]}"; do
  tags=$(curl -sf "$URL/v2/$r/tags/list" | jq -r '.tags // [] | .[]'); count
  for t in $tags; do
    hdr=$(mktemp)
    m=$(curl -sf -D "$hdr" -H "Accept: $ACCEPT" "$URL/v2/$r/manifests/$t"); count
    d=$(sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' "$hdr" | tr -d '\r')
    rm -f "$hdr"
    echo "$d $(printf '%s' "$m" | wc -c)"
    jq -r '(.config // empty | "\(.digest) \(.size)"), (.layers // [] | .[] | "\(.digest) \(.size)")' <<<"$m"
  done
done | sort -u -k1,1 | awk '{ s += int(($2 + 511) / 512) * 512 } END { print s + 0 }'
echo "requests: $(wc -l <"$CNT")" >&2
