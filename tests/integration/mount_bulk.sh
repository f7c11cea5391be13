#!/bin/bash
# mount_bulk.sh — the mount's walk on regfs-registry's bulk-manifests extension.
#
#   - direct: du -s -B1 of the root equals the generator's independently computed
#     total, with no manifest fetched one by one (everything came in the bulk pages);
#   - through a proxy that alters one manifest's content in the bulk pages: the
#     client refuses it (digest mismatch, logged), the walk falls back to per-request
#     fetches, du is still exact and that manifest.json has its true bytes;
#   - through a proxy that drops every content: each manifest is fetched by digest,
#     du is exact.
# The registry's storage is written directly by bench/mount_gen.py (small: 6 x 3).
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_regfs_mount
need_bin python3 jq

python3 "$(dirname "$0")/../../bench/mount_gen.py" "$WORK/data" 6 3 >"$WORK/expected" ||
  bail "mount_gen.py failed"
EXPECTED=$(cat "$WORK/expected")
start_regfs_registry "$WORK/data" || bail "regfs-registry does not start"
UP=$REGISTRY_URL
N_MANIFESTS=$(find "$WORK/data/docker/registry/v2/repositories" -path '*/_manifests/revisions/sha256/*/link' | wc -l)

# proxy MODE PORT — forwards GET/HEAD to the registry; MODE tamper alters the first
# manifest content of each bulk-manifests page, MODE strip drops every content.
cat >"$WORK/proxy.py" <<'PY'
import http.client, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
mode, port, up = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, uport = up.split("//")[1].split(":")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def fwd(self, head):
        c = http.client.HTTPConnection(host, int(uport), timeout=30)
        c.request(self.command, self.path, headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
        r = c.getresponse(); body = r.read(); c.close()
        if self.path.startswith("/v2/_regfs/manifests") and r.status == 200 and not head:
            j = json.loads(body)
            done = False
            for repo in j["repositories"]:
                for m in repo["manifests"]:
                    if mode == "strip":
                        m.pop("content", None)
                    elif not done and "content" in m:
                        m["content"] = m["content"].replace("{", "{ ", 1)  # still JSON, other bytes
                        done = True
            body = json.dumps(j).encode()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
    def do_GET(self): self.fwd(False)
    def do_HEAD(self): self.fwd(True)
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY

stats() { jq -r "$1" "$2/.regfs/stats"; }

# --- direct ----------------------------------------------------------------------------
mnt=$WORK/mnt-direct
start_regfs_mount "$UP" "$mnt" --cache-dir "$WORK/cache-direct" --ttl 300 || bail "mount failed"
check_eq "direct: du -s -B1 of the root = generator's total" "$EXPECTED" "$(du -s -B1 "$mnt" | cut -f1)"
check_eq "  no manifest fetched one by one (all came in bulk pages)" 0 "$(stats .requests.manifest "$mnt")"
check "  a handful of requests in all (<= 6)" test "$(stats .requests.total "$mnt")" -le 6
check_eq "  ls -l of every repository's _tags: every tag" "$((6 * 3))" \
  "$(for r in $(curl -s "$UP/v2/_catalog" | jq -r '.repositories[]'); do ls -l "$mnt/$r/_tags"; done | grep -c ' -> ../_manifests/')"
unmount "$mnt"

run_proxied() {  # run_proxied MODE — mount through the proxy, du; sets mnt, PMNT_LOG
  local mode=$1 port; port=$(free_port)
  start_bg "proxy-$mode" python3 "$WORK/proxy.py" "$mode" "$port" "$UP"
  wait_http "http://127.0.0.1:$port/v2/" 15 || bail "proxy ($mode) does not start"
  mnt=$WORK/mnt-$mode
  start_regfs_mount "http://127.0.0.1:$port" "$mnt" --cache-dir "$WORK/cache-$mode" --ttl 300 ||
    bail "mount through the $mode proxy failed"
  PMNT_LOG=$MOUNT_LOG
}

# --- tampered content ----------------------------------------------------------------------
run_proxied tamper
check_eq "tampered bulk page: du -s -B1 still = generator's total" "$EXPECTED" "$(du -s -B1 "$mnt" | cut -f1)"
check "  the mismatch is logged (digest, what it hashed to)" grep -q 'bulk-manifests.*hashes to' "$PMNT_LOG"
check "  the walk fell back to fetching manifests" test "$(stats .requests.manifest "$mnt")" -gt 0
bad=0; n=0
for f in "$mnt"/*/*/_manifests/sha256:*/manifest.json; do
  d=$(basename "$(dirname "$f")"); n=$((n + 1))
  [ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" = "$d" ] || { echo "$f hashes wrong"; bad=1; }
done
check_eq "  every manifest.json ($N_MANIFESTS) hashes to its digest" "$N_MANIFESTS 0" "$n $bad"
unmount "$mnt"

# --- no content at all ---------------------------------------------------------------------
run_proxied strip
check_eq "bulk pages without content: du -s -B1 = generator's total" "$EXPECTED" "$(du -s -B1 "$mnt" | cut -f1)"
check_eq "  each manifest fetched by digest, once" "$N_MANIFESTS" "$(stats .requests.manifest "$mnt")"
unmount "$mnt"

done_testing
