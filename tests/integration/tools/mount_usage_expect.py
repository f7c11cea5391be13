#!/usr/bin/env python3
"""mount_usage_expect.py URL KIND NOW TAGTIMES — the storage accounting of the
registry at URL computed from its HTTP API alone (catalog, tag lists,
manifests; on regfs-registry (KIND regfs) also its repo-manifests listing of
untagged manifests), by the definitions of docs/mount.md, as set arithmetic
over blob digests: independent of the mount's code. TAGTIMES: lines
"REPO TAG UNIXTIME" (the tags' times, for the retention view at NOW).
Prints JSON: {"dirs": {path: fig}, "groups": {"repo tag": fig},
"repos": {name: {...}}, "older_than": {N: bytes}, "cleanup": {...}} where
fig = {"bytes", "exclusive", "shared", "du"} (du: each blob rounded up to 512),
"manifests": {"repo digest": fig} (the referrers' _manifests/ directories),
"untagged": bytes no tag keeps.
Referrers: an untagged manifest whose `subject` a tag of its repository
reaches, or another such referrer is, is kept by regfs-registry's garbage
collection (registry/gc.c): it keeps its blobs alive as a tag of its own
would, at the newest time of the tags keeping it."""
import hashlib, json, sys, urllib.request

URL, KIND, NOW, TIMES = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
KEEP = set(sys.argv[5].split(",")) if len(sys.argv) > 5 else set()
ACC = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                 "application/vnd.oci.image.index.v1+json",
                 "application/vnd.docker.distribution.manifest.v2+json",
                 "application/vnd.docker.distribution.manifest.list.v2+json"])
size, cache, is_manifest, is_layer = {}, {}, set(), set()


def get(path, accept=ACC):
    r = urllib.request.Request(URL + path, headers={"Accept": accept})
    with urllib.request.urlopen(r, timeout=30) as f:
        return f.read()


def manifest(repo, ref):
    key = (repo, ref)
    if key not in cache:
        try:
            b = get(f"/v2/{repo}/manifests/{ref}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            cache[key] = None
            return None
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        size[d] = len(b)
        is_manifest.add(d)
        cache[key] = (d, json.loads(b))
    return cache[key]


def closure(repo, ref):
    got = manifest(repo, ref)
    if not got:
        return set()
    d, m = got
    out = {d}
    for desc in ([m["config"]] if isinstance(m.get("config"), dict) else []) + (m.get("layers") or []):
        size[desc["digest"]] = desc["size"]
        out.add(desc["digest"])
    is_layer.update(l["digest"] for l in m.get("layers") or [])
    for c in m.get("manifests") or []:
        out |= closure(repo, c["digest"])
    return out


repos = json.loads(get("/v2/_catalog?n=1000"))["repositories"]
tagged = []    # (repo, tag, digest, closure)
untagged = []  # (repo, digest, closure)
for r in repos:
    for t in json.loads(get(f"/v2/{r}/tags/list")).get("tags") or []:
        d, _ = manifest(r, t)
        tagged.append((r, t, d, closure(r, d)))
    if KIND == "regfs":
        for e in json.loads(get(f"/v2/{r}/_regfs/manifests")).get("manifests") or []:
            untagged.append((r, e["digest"], closure(r, e["digest"])))
            # index children are manifests the mount lists too
            for c in (manifest(r, e["digest"]) or (None, {}))[1].get("manifests") or []:
                untagged.append((r, c["digest"], closure(r, c["digest"])))


def keepers(r, subj):
    """The times of what keeps manifest subj of repo r: tags reaching it, kept referrers."""
    return [times[(r2, t)] for r2, t, _, c in tagged if r2 == r and subj in c] + \
           [tm for r2, _, c, tm in referrers if r2 == r and subj in c]


times = {}
for line in open(TIMES):
    w = line.split()
    if len(w) == 3:
        times[(w[0], w[1])] = int(w[2])
referrers = []  # (repo, digest, closure, time) of the kept referrers
while True:
    more = [(r, d, c, max(keepers(r, m["subject"]["digest"])))
            for r, d, c in untagged if (r, d) not in {(x[0], x[1]) for x in referrers}
            for m in [(manifest(r, d) or (None, {}))[1]]
            if isinstance(m.get("subject"), dict) and keepers(r, m["subject"]["digest"])]
    if not more:
        break
    referrers.append(more[0])


def union(sets):
    out = set()
    for s in sets:
        out |= s
    return out


def fig(blobs, kept):
    b = sum(size[x] for x in blobs)
    e = sum(size[x] for x in blobs - kept)
    return {"bytes": b, "exclusive": e, "shared": b - e,
            "du": sum((size[x] + 511) // 512 * 512 for x in blobs)}


def under(r, p):
    return p == "" or r == p or r.startswith(p + "/")


dirs = {""}
for r in repos:
    parts = r.split("/")
    dirs |= {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
out = {"dirs": {}, "groups": {}, "repos": {}, "older_than": {}}
for p in sorted(dirs):
    mine = union([c for r, _, _, c in tagged if under(r, p)] + [c for r, _, c in untagged if under(r, p)])
    kept = union([c for r, _, _, c in tagged if not under(r, p)] +
                 [c for r, _, c, _ in referrers if not under(r, p)])
    out["dirs"][p] = fig(mine, kept)
for r, t, d, c in tagged:
    kept = union([c2 for r2, _, d2, c2 in tagged if (r2, d2) != (r, d)] + [x[2] for x in referrers])
    out["groups"][f"{r} {t}"] = fig(c, kept)
out["manifests"] = {}
for r, d, c, _ in referrers:
    kept = union([x[3] for x in tagged] + [x[2] for x in referrers if (x[0], x[1]) != (r, d)])
    out["manifests"][f"{r} {d}"] = fig(c, kept)
for r, d, c in untagged:
    if isinstance((manifest(r, d) or (None, {}))[1].get("subject"), dict) and \
            f"{r} {d}" not in out["manifests"]:
        out["manifests"][f"{r} {d}"] = fig(c, union([x[3] for x in tagged] + [x[2] for x in referrers]))
out["untagged"] = sum(size[x] for x in union([c for *_, c in untagged]) -
                      union([c for *_, c in tagged] + [x[2] for x in referrers]))
for r in repos:
    mine = union([c for r2, _, _, c in tagged if r2 == r] + [c for r2, _, c in untagged if r2 == r])
    kept = union([c for r2, _, _, c in tagged if r2 != r] + [c for r2, _, c, _ in referrers if r2 != r])
    layers = sorted(mine & is_layer, key=lambda x: (-size[x], x))[:5]
    f = fig(mine, kept)
    f.update(tags=sum(1 for x in tagged if x[0] == r), manifests=len(mine & is_manifest),
             largest=[[x, size[x]] for x in layers])
    out["repos"][r] = f
for n in (1, 7, 30):
    old = [c for r, t, _, c in tagged if (NOW - times[(r, t)]) // 86400 > n] + \
          [c for _, _, c, tm in referrers if (NOW - tm) // 86400 > n]
    new = [c for r, t, _, c in tagged if (NOW - times[(r, t)]) // 86400 <= n] + \
          [c for _, _, c, tm in referrers if (NOW - tm) // 86400 <= n]
    out["older_than"][str(n)] = sum(size[x] for x in union(old) - union(new))
# KEEP ("repo:tag,..."): deleting every other tag, then a collection that
# removes untagged manifests, frees what no kept tag reaches; per repository
# the part only that repository's deleted tags and untagged manifests reach.
def pairs(repo, d, acc):
    got = manifest(repo, d)
    if got and (repo, d) not in acc:
        acc.add((repo, d))
        for c in got[1].get("manifests") or []:
            pairs(repo, c["digest"], acc)
    return acc
kept_tags = [x for x in tagged if f"{x[0]}:{x[1]}" in KEEP]
kept_pairs = set()
for r, t, d, c in kept_tags:
    pairs(r, d, kept_pairs)
# the referrers the kept tags keep (through other referrers too)
kept_refs = []
while True:
    more = [(r, d, c) for r, d, c in untagged if (r, d) not in kept_pairs
            for m in [(manifest(r, d) or (None, {}))[1]]
            if isinstance(m.get("subject"), dict) and (r, m["subject"]["digest"]) in kept_pairs]
    if not more:
        break
    for r, d, c in more:
        kept_refs.append(c)
        pairs(r, d, kept_pairs)
freed = out["dirs"][""] and (union([c for *_, c in tagged] + [c for *_, c in untagged])
                              - union([c for *_, c in kept_tags] + kept_refs))
owners = {}
for r, d, c in [(r, d, c) for r, t, d, c in tagged if f"{r}:{t}" not in KEEP] + \
               [x for x in untagged if (x[0], x[1]) not in kept_pairs]:
    for b in c & freed:
        owners.setdefault(b, set()).add(r)
per = {}
for b, rs in owners.items():
    k = next(iter(rs)) if len(rs) == 1 else "*shared*"
    per[k] = per.get(k, 0) + size[b]
out["cleanup"] = {"bytes": sum(size[x] for x in freed), "blobs": len(freed),
                  "du": sum((size[x] + 511) // 512 * 512 for x in freed), "per_repo": per}
print(json.dumps(out, sort_keys=True))
