#!/bin/bash
# bench/layers_memory.sh [LAYERS] [ENTRIES] — resident memory of the mount after
# browsing LAYERS (default 100) distinct layers of ENTRIES (default 10000) small
# files each: every layers/N/ is listed (its index built), then VmRSS and VmHWM
# of the regfs process are read from /proc. The layer cache keeps indexes
# under a 64 MiB budget (fs/cache/layers.h), least recently used out.
. "$(dirname "$0")/../tests/integration/lib.sh"
need_regfs_mount
need_regfs_registry
need_bin skopeo jq python3
NL=${1:-100} NE=${2:-10000}

python3 - "$WORK/oci" "$NL" "$NE" <<'PY' || bail "image"
import hashlib, io, json, os, sys, tarfile, gzip
d, nl, ne = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h
layers, diffs = [], []
for l in range(nl):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for i in range(ne):
            ti = tarfile.TarInfo(f"layer{l}/dir{i // 500}/file-{i}-with-a-longer-name.txt")
            data = f"{l} {i}\n".encode()
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    diffs.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    gz = gzip.compress(raw.getvalue(), 1)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
    "layers": layers}).encode()
md = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
    open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

start_regfs_registry "$WORK/data" || bail "registry"
skopeo_copy "oci:$WORK/oci:v1" "docker://$REGISTRY_HOST/app:v1" || bail "push"
mnt=$WORK/mnt
start_regfs_mount "$REGISTRY_URL" "$mnt" --cache-dir "$WORK/cache" || bail "mount"
man=$mnt/app/_tags/v1
rss() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MB  ", $1, $2 / 1024 }' "/proc/$MOUNT_PID/status"; }
log "before: $(rss)"
t0=$(date +%s)
for ((i = 0; i < NL; i++)); do
  ls "$man/layers/$i/layer$i/dir0" >/dev/null || fail "layers/$i"
done
log "after browsing $NL layers ($(( $(date +%s) - t0 )) s): $(rss)"
log "layer views: $(jq -c .layer_views "$mnt/.regfs/stats")"
hwm=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$MOUNT_PID/status")
check "peak resident memory under 150 MB ($hwm MB)" test "$hwm" -lt 150
done_testing
