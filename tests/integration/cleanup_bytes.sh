#!/bin/bash
# regfs-cleanup's byte estimate is exact, on docker-registry and regfs-registry, with an
# image index (children pushed by digest, skopeo copy --all), layers shared inside and
# across repositories, and manifests already untagged before the cleanup (a tag re-pointed
# away from its image, a repository whose only tag was removed through the mount, a
# referrer of a kept image pushed by digest) and a kept index whose children no tag names
# (registry:2's collection deletes them): the bytes and blobs it predicts equal what
# `du -s -B1` of the mount drops after --apply and `garbage-collect --delete-untagged`,
# computed independently from the storage root (regfs-registry lists untagged manifests,
# so du counts them and the collection frees them; registry:2 shows none over HTTP), and
# the blobs that collection removed from disk are exactly the ones the storage root says.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cleanup_lib.sh"
need_regfs_mount
need_bin skopeo jq python3 umoci

CLEANUP=$REGFS_SRC/tools/regfs-cleanup
OCI=$WORK/oci
oci_build "$OCI" >"$WORK/oci.digests" <<'EOF' || bail "oci_build"
layer base 6000
layer a1 3000
layer a2 3100
layer o1 2900
layer l1 2000
layer s1 2700
layer g1 2600
layer k1 2400
layer k2 2300
image v1 base a1
image v2 base a2
image old1 base a1 o1
image keep1 base l1
image stale base a1 s1
image gone1 base g1
image c1 base k1
image c2 a2 k2
index keep-idx c1 c2
EOF
V2=$(awk '$1 == "v2" { print $2 }' "$WORK/oci.digests")
IDX=$(make_index "$WORK/idx" multi) || bail "make_index"

# expected KIND DATA DOOMED_FILE — from the storage root (tag links, revision links,
# manifests, blob files): what the mount's du counts before the cleanup (tagged manifests;
# on regfs-registry every manifest with a revision link too), what a garbage collection
# with --delete-untagged keeps after the listed "REPO TAG"s are deleted (per repository:
# the manifests the remaining tags reach; on regfs-registry with index children and the
# referrers whose subject is kept, on registry:2 without the untagged children of kept
# indexes), and so what du drops. Prints
# "BYTES BLOBS DU_BYTES OLD_BYTES OLD_BLOBS" of the du drop (OLD: the part no deleted tag
# reaches); writes the digests du counts to $WORK/expected.visible and the stored blobs
# the collection removes to $WORK/expected.gc.
expected() {
  python3 - "$1" "$2" "$3" "$WORK" <<'PY'
import glob, json, os, sys
kind, v2, work = sys.argv[1], sys.argv[2] + "/docker/registry/v2", sys.argv[4]
rp = v2 + "/repositories/"
doomed = {tuple(l.split()) for l in open(sys.argv[3]) if l.strip()}
def blob(d): h = d.split(":", 1)[1]; return f"{v2}/blobs/sha256/{h[:2]}/{h}/data"
def load(d):
    try: m = json.load(open(blob(d)))
    except Exception: return {}
    return m if isinstance(m, dict) else {}
def reach(roots, children=True):
    out, todo = set(), list(roots)
    while todo:
        d = todo.pop()
        if d in out: continue
        out.add(d)
        m = load(d)
        if isinstance(m.get("config"), dict): out.add(m["config"]["digest"])
        out.update(l["digest"] for l in m.get("layers") or [])
        if children: todo += [c["digest"] for c in m.get("manifests") or []]
    return out
repos = sorted({f[len(rp):-len("/_manifests")] for f in glob.glob(rp + "**/_manifests", recursive=True)})
gone, kept, visible_roots, kept_after = [], [], [], set()
for repo in repos:
    tags, revs = {}, []
    for f in glob.glob(f"{rp}{repo}/_manifests/tags/*/current/link"):
        tags[f.split("/")[-3]] = open(f).read().strip()
    for f in glob.glob(f"{rp}{repo}/_manifests/revisions/sha256/*/link"):
        revs.append(open(f).read().strip())
    visible_roots += list(tags.values()) + (revs if kind == "regfs" else [])
    gone += [d for t, d in tags.items() if (repo, t) in doomed]
    keep = [d for t, d in tags.items() if (repo, t) not in doomed]
    kept += keep
    if kind == "regfs":   # its collection keeps index children and referrers of kept manifests
        reached = set(keep)
        while True:
            more = {c["digest"] for d in reached for c in load(d).get("manifests") or []}
            more |= {d for d in revs if isinstance(load(d).get("subject"), dict)
                     and load(d)["subject"].get("digest") in reached}
            if not more - reached: break
            reached |= more
        kept_after |= reach(reached)
gc_keeps = set()
if kind != "regfs":
    # registry:2's deletes the untagged children of kept indexes (their revision links:
    # the mount then leaves them out, with what only they reach); it still marks the
    # child manifests' own blobs, as references of the kept index, so those stay on disk.
    kept_after = reach(kept, children=False)
    gc_keeps = {c["digest"] for d in kept for c in load(d).get("manifests") or []}
visible = reach(visible_roots)
drop = visible - kept_after
old = drop - reach(gone)
stored = {"sha256:" + p.split("/")[-2] for p in glob.glob(v2 + "/blobs/sha256/*/*/data")}
open(work + "/expected.visible", "w").write("".join(d + "\n" for d in sorted(visible)))
open(work + "/expected.gc", "w").write("".join(d + "\n" for d in sorted(stored - kept_after - gc_keeps)))
size = lambda ds: sum(os.stat(blob(d)).st_size for d in ds)
print(size(drop), len(drop), sum((os.stat(blob(d)).st_size + 511) // 512 * 512 for d in drop),
      size(old), len(old))
PY
}

# push_referrer URL REPO SUBJECT_DIGEST — pushes, by digest only (no tag), an OCI
# manifest whose subject is SUBJECT_DIGEST (a signature-like artifact: config "{}" and
# one 700-byte random layer). Prints its digest.
push_referrer() {
  python3 - "$@" <<'PY'
import hashlib, json, os, sys, urllib.request
url, repo, subj = sys.argv[1:4]
def req(method, path, body=b"", headers={}):
    r = urllib.request.Request(path if path.startswith("http") else url + path, data=body,
                               method=method, headers=headers)
    return urllib.request.urlopen(r, timeout=30)
def put_blob(b):
    d = "sha256:" + hashlib.sha256(b).hexdigest()
    loc = req("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    if not loc.startswith("http"): loc = url + loc
    req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, b,
        {"Content-Type": "application/octet-stream"})
    return {"digest": d, "size": len(b)}
acc = "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"
with req("GET", f"/v2/{repo}/manifests/{subj}", None, {"Accept": acc}) as r:
    sm = r.read(); smt = r.headers["Content-Type"]
cfg, layer = put_blob(b"{}"), put_blob(os.urandom(700))
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
     "subject": {"mediaType": smt, "digest": subj, "size": len(sm)}}
b = json.dumps(m, separators=(",", ":")).encode()
d = "sha256:" + hashlib.sha256(b).hexdigest()
req("PUT", f"/v2/{repo}/manifests/{d}", b, {"Content-Type": m["mediaType"]}).read()
print(d)
PY
}
du_of() { du -s -B1 "$1" | cut -f1; }

for k in $(registry_kinds); do
  D=$WORK/data-$k
  start_registry "$k" "$D" || bail "$k registry did not start"
  CFG=$REGISTRY_CONFIG H=$REGISTRY_HOST
  for t in v1 v2 old1; do skopeo_copy "oci:$OCI:$t" "docker://$H/team/app:$t" || bail "push $t"; done
  skopeo_copy "oci:$OCI:v2" "docker://$H/team/app:latest" &&
    skopeo_copy "oci:$OCI:keep1" "docker://$H/team/lib:keep1" &&
    skopeo_copy --all "$IDX" "docker://$H/multi:old" &&
    skopeo_copy --all "oci:$OCI:keep-idx" "docker://$H/multi:keep-idx" || bail "push"
  # Untagged before the cleanup: an image whose tag was re-pointed (it shares base with
  # kept tags and a1 with deleted ones), a referrer of the kept v2 pushed by digest, and
  # (below, through the mount) a repository whose only tag was removed.
  skopeo_copy "oci:$OCI:stale" "docker://$H/team/app:keep-tmp" &&
    skopeo_copy "oci:$OCI:v2" "docker://$H/team/app:keep-tmp" &&
    skopeo_copy "oci:$OCI:gone1" "docker://$H/gone:only" || bail "push the images to untag"
  push_referrer "$REGISTRY_URL" team/app "$V2" >/dev/null || bail "push a referrer of team/app:v2"
  printf '%s\n' "multi old" "team/app old1" "team/app v1" >"$WORK/doomed"

  M=$WORK/mnt-$k
  start_regfs_mount "$REGISTRY_URL" "$M" --ttl 1 --cache-dir "$WORK/cache-$k" || bail "regfs did not mount ($k)"
  check "$k: rm of gone's only tag through the mount" rm "$M/gone/_tags/only"
  read -r want_bytes want_blobs want_du want_old want_old_blobs < <(expected "$k" "$D" "$WORK/doomed")
  log "$k: deleting multi:old team/app:old1 team/app:v1 then a collection must free $want_bytes bytes in $want_blobs blobs (du: $want_du), $want_old bytes in $want_old_blobs blobs of them already untagged"
  check "$k: the index's children and the unshared layers are among them (test sanity)" test "$want_blobs" -ge 10
  # regfs: stale's and gone1's manifest, config and own layer (the mount lists them; the
  # kept index's children stay); docker: the kept index's children (c1, c2: manifest,
  # config, own layer), which its collection deletes; its untagged manifests are invisible.
  check_eq "$k: the already untagged part is 6 blobs (test sanity)" 6 "$want_old_blobs"
  stored_blobs "$D" >"$WORK/$k.stored0"
  before=$(du_of "$M")
  check_eq "$k: du -s -B1 of the mount = every visible blob rounded up to 512" \
    "$(du_total "$D" "$WORK/expected.visible")" "$before"
  out=$("$CLEANUP" --keep-last 0 --keep 'v2,latest,keep*' "$M" 2>&1); rc=$?
  check_eq "$k: dry run succeeds" 0 "$rc" || diag "$out"
  check_eq "$k: it would delete exactly the three tags" "multi:old team/app:old1 team/app:v1" \
    "$(sed -n 's/^would delete \([^ ]*\) .*/\1/p' <<<"$out" | sort | xargs)"
  sum=$(grep '^dry run:' <<<"$out")
  got=$(sed -n 's/^dry run: [^;]*; \([0-9]*\) bytes ([^,]*, \([0-9]*\) blobs).*/\1 \2/p' <<<"$sum")
  got_old=$(sed -n 's/.* of which \([0-9]*\) bytes (\([0-9]*\) blobs) already untagged.*/\1 \2/p' <<<"$sum")
  got_du=$(sed -n 's/.*drops by \([0-9]*\) .*/\1/p' <<<"$sum")
  check_eq "$k: predicted bytes and blobs = computed from the storage root" \
    "$want_bytes $want_blobs" "$got" || diag "$out"
  check_eq "$k: the already untagged part = computed from the storage root" \
    "$want_old $want_old_blobs" "${got_old:-0 0}" || diag "$out"
  check_eq "$k: predicted du drop = those blobs rounded up to 512" "$want_du" "$got_du"

  out=$("$CLEANUP" --keep-last 0 --keep 'v2,latest,keep*' --apply "$M" 2>&1); rc=$?
  check_eq "$k: --apply succeeds" 0 "$rc" || diag "$out"
  check_eq "$k: the registry keeps exactly the other tags" "keep-tmp latest v2|keep1|keep-idx" \
    "$(list_tags "$H" team/app | xargs)|$(list_tags "$H" team/lib | xargs)|$(list_tags "$H" multi 2>/dev/null | xargs)"
  unmount "$M"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
  if [ "$k" = docker ]; then
    gc=("$DOCKER_REGISTRY" garbage-collect --delete-untagged "$CFG")
  else
    gc=("$REGFS_REGISTRY" garbage-collect --delete-untagged "$CFG")
  fi
  gcout=$(env -u AWS_CA_BUNDLE "${gc[@]}" 2>&1) || { fail "$k: garbage-collect --delete-untagged"; diag "$(tail -n 5 <<<"$gcout")"; }
  stored_blobs "$D" >"$WORK/$k.stored1"
  check_files "$k: the collection removed exactly the blobs the storage root says" "$WORK/expected.gc" \
    <(comm -23 "$WORK/$k.stored0" "$WORK/$k.stored1") || diag "$(tail -n 5 <<<"$gcout")"
  start_registry "$k" "$CFG" || bail "$k registry did not restart"
  start_regfs_mount "$REGISTRY_URL" "$M-2" --ttl 1 --cache-dir "$WORK/cache-$k-2" || bail "regfs did not remount ($k)"
  after=$(du_of "$M-2")
  check_eq "$k: du -s -B1 dropped by the predicted figure ($before -> $after)" "$got_du" "$((before - after))"
  unmount "$M-2"; stop_pid "$MOUNT_PID"; stop_pid "$REGISTRY_PID"
done
check_daemon_logs
done_testing
