#!/bin/bash
# What the mount's tag writes and re-listings cost, in requests, counted by a proxy in front
# of the registry (never timed):
#   - `find <repo>/_tags -name 't*' -delete` of 200 tags (100 with a digest of their own,
#     100 in pairs sharing one) costs O(tags) requests about that repository in all
#     (listing it included): fewer than 5 per tag, on
#     docker-registry (which cannot delete tags: the fallback) and on regfs-registry;
#     afterwards only `keep` remains (curl) and its manifest is intact;
#   - after the ttl, `ls -l` of a 200-tag _tags re-validates without fetching manifests:
#     no manifest GET at all, one repo-manifests request on regfs-registry, at most one
#     HEAD per tag elsewhere — and a tag moved behind the mount's back (same tag list)
#     shows its new digest.
. "$(dirname "$0")/tags_lib.sh"
tags_prelude A <<'SPEC'
layer base 2000
image imgA base
SPEC
N=200

# seed HOST REPO MODE — tags t000…t199 on variants of A (the same blobs, one annotation
# apart): MODE pairs = t000…t099 each its own, t100…t199 two per variant; unique = all own.
seed() {
  python3 - "$1" "$2" "$3" "$N" <<'PY'
import http.client, json, sys
host, repo, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
h, p = host.split(":")
c = http.client.HTTPConnection(h, int(p), timeout=30)
acc = "application/vnd.oci.image.manifest.v1+json"
c.request("GET", f"/v2/{repo}/manifests/keep", headers={"Accept": acc})
r = c.getresponse(); base = json.loads(r.read()); assert r.status == 200
for i in range(n):
    v = i if (mode == "unique" or i < n // 2) else n // 2 + (i - n // 2) // 2
    m = dict(base, annotations={"org.regfs.test.variant": str(v)})
    body = json.dumps(m, separators=(",", ":")).encode()
    c.request("PUT", f"/v2/{repo}/manifests/t{i:03d}", body=body, headers={"Content-Type": acc})
    r = c.getresponse(); r.read()
    if r.status != 201: sys.exit(f"PUT t{i:03d}: {r.status}")
PY
}

run_kind() {
  local k=$1 H mnt=$WORK/mnt-$1 total gets heads moved
  log "=== $k ==="
  tags_registry "$k" "$WORK/data-$k" || return
  check "$k: push A as app:keep and big:keep" bash -c "$(declare -f skopeo_copy with_timeout);
    skopeo_copy oci:$OCI:imgA docker://$H/app:keep && skopeo_copy oci:$OCI:imgA docker://$H/big:keep" || return
  check "$k: $N tags in app (pairs), $N in big (each its own)" bash -c "$(declare -f seed); N=$N; seed $H app pairs && seed $H big unique" || return

  # --- find -delete of N tags ---------------------------------------------------------------------
  tags_proxy_mount "$k" "$mnt" --ttl 30 --cache-dir "$WORK/cache-$k" || return
  proxy_reset
  check "$k: find app/_tags -name 't*' -delete" find "$mnt/app/_tags" -name 't*' -delete
  # the requests about app (the mount's background walk of the whole registry, which
  # opening the mount starts, lists big too: not part of the deletes' cost)
  total=$(( $(proxy_count GET '^/v2/app/') + $(proxy_count HEAD '^/v2/app/') + $(proxy_count PUT '^/v2/app/') +
            $(proxy_count DELETE '^/v2/app/') + $(proxy_count POST '^/v2/app/') ))
  log "$k: find -delete of $N tags: $total requests about app; all requests: $(curl -sf "$PROXY_URL/_faultproxy/counts" |
    python3 -c 'import collections,json,re,sys; c=collections.Counter()
for k,n in json.load(sys.stdin).items(): c[re.sub(r"/manifests/.*", "/manifests/*", k)]+=n
print(", ".join("%s %d" % kv for kv in c.most_common()))')"
  check "$k: ... cost $total requests, fewer than 5 per tag" test "$total" -lt $((5 * N))
  check_eq "$k: ... only keep remains (curl)" "keep $A" "$(registry_state "$H" app)"
  check_eq "$k: ... and keep's manifest is intact (skopeo inspect by digest)" "$A" "$(raw_digest "$H" "app@$A")"
  unmount "$mnt"; stop_pid "$MOUNT_PID"

  # --- re-listing after the ttl ---------------------------------------------------------------------
  tags_mount "$k" "$PROXY_URL" "$mnt" --ttl 2 --cache-dir "$WORK/cache2-$k" || return
  check_eq "$k: ls -l big/_tags lists $((N + 1)) tags" $((N + 1)) "$(ls -l "$mnt/big/_tags" | grep -c -- ' -> ')"
  # move t007 behind the mount's back: the tag list stays the same
  moved=$(python3 - "$H" <<'PY'
import hashlib, http.client, json, sys
h, p = sys.argv[1].split(":"); c = http.client.HTTPConnection(h, int(p), timeout=30)
acc = "application/vnd.oci.image.manifest.v1+json"
c.request("GET", "/v2/big/manifests/keep", headers={"Accept": acc}); base = json.loads(c.getresponse().read())
body = json.dumps(dict(base, annotations={"org.regfs.test.variant": "moved"}), separators=(",", ":")).encode()
c.request("PUT", "/v2/big/manifests/t007", body=body, headers={"Content-Type": acc}); r = c.getresponse(); r.read()
print("sha256:" + hashlib.sha256(body).hexdigest() if r.status == 201 else "PUT failed %d" % r.status)
PY
)
  sleep 3   # the ttl (2 s) passes: the next listing must ask the registry again
  proxy_reset
  check_eq "$k: after the ttl, ls -l big/_tags lists them again" $((N + 1)) "$(ls -l "$mnt/big/_tags" | grep -c -- ' -> ')"
  gets=$(proxy_count GET '^/v2/big/manifests/'); heads=$(proxy_count HEAD '^/v2/big/manifests/')
  log "$k: re-listing after the ttl: $gets manifest GETs, $heads HEADs, $(proxy_total) requests"
  check_eq "$k: ... one manifest GET (t007, which moved), no other" 1 "$gets"
  if [ "$k" = regfs ]; then
    check_eq "$k: ... no HEAD either (one repo-manifests request re-validates)" "0 1" \
      "$heads $(proxy_count GET '^/v2/big/_regfs/manifests$')"
  else
    check "$k: ... at most one HEAD per tag" test "$heads" -le $((N + 1))
  fi
  check_eq "$k: ... t007 shows where it moved" "../_manifests/$moved" "$(readlink "$mnt/big/_tags/t007")"
  unmount "$mnt"; stop_pid "$MOUNT_PID"
  stop_pid "$REGISTRY_PID"
}

for k in ${TAGS_COST_KINDS:-$(registry_kinds)}; do run_kind "$k"; done
check_daemon_logs
done_testing
