#!/usr/bin/env python3
"""bench/heap_components.py FLAMEGRAPH — the mount's heap at its peak by component.

FLAMEGRAPH: `heaptrack_print -f FILE --print-flamegraph OUT --flamegraph-cost-type peak`
of a heaptrack recording of the daemon (bench/mount_scale.sh PROFILE=DIR HEAPTRACK=1
makes both). Each stack's bytes at the peak go to the first component, from the
allocating frame outwards, whose functions it passes through; prints MB per
component, largest first."""
import sys

# (component, functions): a frame whose name is one of these, or starts with a
# name ending in "_", belongs to the component.
RULES = [
    ("disk-cache index (cache/blobs.c)", ["blob_cache_put", "blob_cache_new", "blob_cache_open",
                                          "blob_cache_fill", "scan"]),
    ("node table (node.c, reaper.c)", ["nodes_", "pool_get", "reaper_main", "dir_version_refresh"]),
    ("manifest cache (cache/manifests.c, mpack.c)", ["manifest_pack", "fill", "slot_hold", "slot_new",
                                                     "put", "manifest_cache_new", "from_disk",
                                                     "mcache_get", "manifest_cache_prefetch"]),
    ("layer views' notes (cache/layers.c)", ["layer_cache_note_repo", "rname_of", "layer_cache_new"]),
    ("accounting (usage*.c, cache/digests.c)", ["usage_", "digtab_", "walk_table_"]),
    ("names: tag lists, manifest lists (cache/)", ["names_", "bulk_one", "tagset_from",
                                                   "manifests_raw"]),
    ("walk's lists (walk.c)", ["walk_pairs", "pairs_add", "do_walk", "count_all", "count_chunk",
                               "prefetch_missing", "rm_one"]),
    ("bulk-manifests page (body, JSON)", ["bulk_manifests_page", "json_loadb", "walk_pages",
                                          "get_pages"]),
    ("FUSE request buffers (libfuse)", ["worker_main", "fuse_session_"]),
    ("libraries' own (curl, TLS, locale)", ["curl_", "Curl_", "_dl_init", "OPENSSL_", "CRYPTO_",
                                            "gnutls_", "regfs_client_new", "asn1_"]),
]


def component(frames):
    for f in frames:
        for name, keys in RULES:
            for k in keys:
                if f == k or (k.endswith("_") and f.startswith(k)):
                    return name
    return "other"


def main():
    tot, total = {}, 0
    with open(sys.argv[1]) as fh:
        for line in fh:
            line = line.rstrip()
            if not line or " " not in line:
                continue
            stack, cost = line.rsplit(" ", 1)
            cost = int(cost)
            total += cost
            frames = [f.split(" (")[0].strip() for f in stack.split(";") if f]
            c = component(reversed(frames))
            tot[c] = tot.get(c, 0) + cost
    for k, v in sorted(tot.items(), key=lambda x: -x[1]):
        print("#   %-46s %7.2f MB" % (k, v / 1048576))
    print("#   %-46s %7.2f MB" % ("heap in use at its peak", total / 1048576))


if __name__ == "__main__":
    main()
