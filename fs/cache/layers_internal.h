/* layers_internal.h — what the two files of the layer cache share
 * (layers.c: memory, eviction, merged images; layerio.c: disk, registry,
 * builds, reads). Nothing else includes it. */
#ifndef REGFS_FS_CACHE_LAYERS_INTERNAL_H
#define REGFS_FS_CACHE_LAYERS_INTERNAL_H

#include "../mount.h"

#define NOTE_BUCKETS 4096          /* remembered digest -> repository */
#define NOTES_MAX 200000           /* then forgotten all at once (layers.c) */
#define LIX_MAX (512ull << 20)     /* largest encoded index file read */

/* One per digest a manifest directory showed (up to NOTES_MAX): the digest
 * a compact key (digests.h), the repository name interned (struct rname),
 * the flag in the size's word (sizes are below 2^63: JSON int64): 56 bytes
 * asked, 64 from malloc a note, where a digest string and a copied name
 * took about 144. */
struct note {
	struct note *next;
	const char *repo;          /* an rname's, NULL: none yet */
	uint64_t size : 63;
	uint64_t raw : 1;          /* key: raw sha256, else the digest string */
	uint8_t key[];
};
/* A repository name the notes point at, kept until the notes are cleared. */
struct rname {
	struct rname *next;
	char name[];
};
#define RNAME_BUCKETS 1024

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
	size_t notes_bytes;        /* malloc's usable sizes of the notes and rnames */
	struct rname *rnames[RNAME_BUCKETS];
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
