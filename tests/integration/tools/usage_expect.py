#!/usr/bin/env python3
"""usage_expect.py — the storage accounting of a registry computed independently
of regfs's code, for tests/integration/registry_usage.sh and quota.sh.

  usage_expect.py DATA URL [--delete-untagged] [--upload-age SECONDS]

DATA is the filesystem storage root, URL the registry. Repositories come from
the registry's catalog and their tags from its tags list and manifest HEADs (the
distribution API); manifest revisions, manifest contents and every size from the
files under DATA. Prints, as the usage extension does (keys sorted),
{"stored","referenced","garbage":{"blobs","manifests","uploads","total"},
 "repositories":[{"name","tags","manifests","bytes","exclusive","shared"}…]}.

Rules (garbage collection's, written out here from its description): a repository
references each manifest revision it holds — with --delete-untagged only those
reached from its tags, through index children and referrers whose subject is
reached — and, recursively, what a referenced manifest references (config,
layers, index children). Stored blobs referenced by no repository are garbage:
"manifests" when some repository still lists them as a revision, "blobs"
otherwise. Uploads in progress count in "stored"; those started more than
SECONDS ago are garbage "uploads"."""
import calendar
import glob
import json
import os
import sys
import time
import urllib.request

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


def main():
    data, url = sys.argv[1], sys.argv[2].rstrip("/")
    delete_untagged = "--delete-untagged" in sys.argv
    age = int(sys.argv[sys.argv.index("--upload-age") + 1]) if "--upload-age" in sys.argv else 0
    v2 = data + "/docker/registry/v2"

    stored = {}
    for p in glob.glob(v2 + "/blobs/sha256/*/*/data"):
        stored["sha256:" + p.split("/")[-2]] = os.path.getsize(p)

    def manifest(d):
        if d not in stored:
            return None
        h = d.split(":", 1)[1]
        try:
            m = json.load(open(f"{v2}/blobs/sha256/{h[:2]}/{h}/data"))
        except (ValueError, UnicodeDecodeError):
            return None
        return m if isinstance(m, dict) else None

    def api(path, method="GET"):
        req = urllib.request.Request(url + path, method=method, headers={"Accept": ", ".join(
            ("application/vnd.oci.image.manifest.v1+json",) + INDEX_TYPES)})
        return urllib.request.urlopen(req, timeout=30)

    def mark(d, out, depth, expanded):
        # a digest marked as a layer is still expanded when reached as a manifest
        out.add(d)
        if d in expanded or depth > 16:
            return
        expanded.add(d)
        m = manifest(d)
        if m is None:
            return
        if isinstance(m.get("config"), dict):
            out.add(m["config"]["digest"])
        for layer in m.get("layers") or []:
            out.add(layer["digest"])
        for child in m.get("manifests") or []:
            mark(child["digest"], out, depth + 1, expanded)

    def reached(revs, tag_targets):
        out = set(tag_targets)
        changed = True
        while changed:
            changed = False
            for d in revs:
                m = manifest(d) or {}
                subject = (m.get("subject") or {}).get("digest")
                if d not in out and subject in out:
                    out.add(d)
                    changed = True
                if d in out and m.get("mediaType") in INDEX_TYPES:
                    for child in m.get("manifests") or []:
                        if child["digest"] not in out:
                            out.add(child["digest"])
                            changed = True
        return out

    repos = json.load(api("/v2/_catalog?n=100000"))["repositories"]
    refs, ntags, nrevs, allrevs = {}, {}, {}, set()
    for name in repos:
        revs = ["sha256:" + p.split("/")[-2] for p in glob.glob(
            f"{v2}/repositories/{name}/_manifests/revisions/sha256/*/link")]
        allrevs.update(revs)
        try:
            tags = json.load(api(f"/v2/{name}/tags/list")).get("tags") or []
        except urllib.error.HTTPError:
            tags = []
        targets = [api(f"/v2/{name}/manifests/{t}", "HEAD").headers["Docker-Content-Digest"]
                   for t in tags]
        roots = [d for d in revs if d in reached(revs, targets)] if delete_untagged else revs
        out, expanded = set(), set()
        for d in roots:
            mark(d, out, 0, expanded)
        refs[name], ntags[name], nrevs[name] = out, len(tags), len(revs)

    holders = {}
    for out in refs.values():
        for d in out:
            holders[d] = holders.get(d, 0) + 1
    uploads = garbage_uploads = 0
    for p in glob.glob(v2 + "/repositories/**/_uploads/*/data", recursive=True):
        size = os.path.getsize(p)
        uploads += size
        try:
            started = calendar.timegm(time.strptime(
                open(os.path.dirname(p) + "/startedat").read()[:19], "%Y-%m-%dT%H:%M:%S"))
        except (OSError, ValueError):
            started = int(os.path.getmtime(p))
        if started < time.time() - age:
            garbage_uploads += size
    gblobs = sum(s for d, s in stored.items() if d not in holders and d not in allrevs)
    gmanifests = sum(s for d, s in stored.items() if d not in holders and d in allrevs)
    result = {
        "stored": sum(stored.values()) + uploads,
        "referenced": sum(s for d, s in stored.items() if d in holders),
        "garbage": {"blobs": gblobs, "manifests": gmanifests, "uploads": garbage_uploads,
                    "total": gblobs + gmanifests + garbage_uploads},
        "repositories": [],
    }
    for name in sorted(repos):
        b = sum(stored.get(d, 0) for d in refs[name])
        x = sum(stored.get(d, 0) for d in refs[name] if holders[d] == 1)
        result["repositories"].append({"name": name, "tags": ntags[name], "manifests": nrevs[name],
                                       "bytes": b, "exclusive": x, "shared": b - x})
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
