/* layers_internal.h — what the two files of the layer cache share
 * (layers.c: memory, eviction, merged images; layerio.c: disk, registry,
 * builds, reads). Nothing else includes it. */
#ifndef REGFS_FS_CACHE_LAYERS_INTERNAL_H
#define REGFS_FS_CACHE_LAYERS_INTERNAL_H

#include "../mount.h"

#define NOTE_BUCKETS 4096          /* remembered digest -> repository */
#define NOTES_MAX 200000           /* then forgotten all at once (layers.c) */
#define LIX_MAX (512ull << 20)     /* largest encoded index file read */

struct note {
	struct note *next;
	char *repo;
	uint64_t size;
	char digest[];
};

struct layer_cache {
	struct sflight_group g;    /* g.mu guards everything below */
	char *dir;                 /* <cache-dir>/layers, NULL: memory only */
	struct blob_cache *bc;
	struct fs_stats *st;
	uint64_t budget, mem;
	struct lview *lhead;       /* most recently used first */
	struct rview *rhead;
	struct note **notes;       /* NOTE_BUCKETS chains, by hash of the digest */
	size_t nnotes;
};

/* mkdir -p (mode 0700): 0 or -errno. */
int layers_mkdirs(const char *path);

/* The index of a layer not in memory, from the disk cache, the registry's
 * push-time index or built from the blob (then stored on disk). On success
 * *ix is the caller's. -EBADMSG: the layer itself cannot be indexed
 * (logged); else -ENOENT, -ENOMEM, or the registry's error. Called without
 * the cache's mutex. */
int layer_fill(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
	       const char *digest, uint64_t size, struct layer_index **ix);

#endif
