/* layers.h — the layer index cache of the mount (fs/cache/layers.c): what
 * the .layers/ and .rootfs/ views read.
 *
 * A layer's index (include/regfs/layer.h) comes, first found wins, from
 * memory; from <cache-dir>/layers/<alg>/<hex>.lix (our encoded format,
 * verified by layer_index_decode, immutable); from the registry when it
 * built one at push time (regfs_client_layer_index); or is built in one pass over
 * the blob: the cached blob file when the blob cache has it, else the blob is
 * fetched whole into the blob cache first (so later reads fetch nothing
 * more), else (no disk cache, or a blob bigger than it) into an unlinked
 * temporary file. A built index is written to the disk cache.
 *
 * A merged image (.rootfs/) is the layer_merge of its layers' indexes, kept
 * with references to them.
 *
 * Memory is bounded: indexes and merged trees are loaded on demand and the
 * least recently used ones no reader holds are freed beyond the byte budget.
 * Concurrent first uses of one layer build it once (lib/base/sflight).
 *
 * Neither view knows which repository a bare digest lives in: the mount
 * remembers it for every layer and manifest it has shown in a manifest
 * directory (layer_cache_note_repo), and a digest never seen is not found
 * (-ENOENT) unless its index is cached.
 *
 * Errors: 0 or a negative errno; failures are logged once (fs_warn) naming
 * the layer. -EIO: a bad layer (not a tar, corrupt compressed data) or the
 * registry failed; -ENOENT: unknown digest. */
#ifndef REGFS_FS_CACHE_LAYERS_H
#define REGFS_FS_CACHE_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include <regfs/client.h>
#include <regfs/layer.h>
#include <regfs/layer_merge.h>
#include <regfs/sflight.h>

struct fs_stats;
struct blob_cache;
struct layer_cache;

/* A layer that could not be indexed answers EIO without trying again for
 * this long (seconds): every lookup would fetch and read it again. */
#define LAYER_CACHE_BAD_TTL 60.0

/* Default byte budget of the indexes and merged trees kept in memory. */
#define LAYER_CACHE_BUDGET (64ull << 20)

/* dir: the mount's cache dir (NULL: indexes are kept in memory only);
 * bc (may be NULL), st kept. NULL when out of memory. */
struct layer_cache *layer_cache_new(const char *dir, uint64_t budget, struct blob_cache *bc,
				    struct fs_stats *st);
/* After every reference was dropped. */
void layer_cache_free(struct layer_cache *lc);

/* `digest` (a layer or a manifest) can be fetched from `repo`: remembered
 * (the last repository wins) for the views' lookups. Never fails (out of
 * memory: not remembered; after 200000 digests all are forgotten). */
void layer_cache_note_repo(struct layer_cache *lc, const char *digest, const char *repo,
			   uint64_t size);
/* The repository (into repo, size bytes) and blob size noted for digest,
 * or -ENOENT. */
int layer_cache_repo(struct layer_cache *lc, const char *digest, char *repo, size_t size,
		     uint64_t *blob_size);

/* ---- one layer ---- */
struct lview {
	char digest[REGFS_DIGEST_MAX];
	struct layer_index *ix;
	uint32_t *nlink;  /* names per entry's data (hard links: > 1); by entry */
	/* private to layers.c */
	struct lview *prev, *next;
	struct sflight sf;
	uint64_t mem;
	int ref;
	int bad;          /* -EIO: the layer could not be indexed (bad_at) */
	double bad_at;
};
/* The index of layer `digest` (size: from the manifest, 0 when unknown),
 * fetched from `repo` when it must be (NULL: the noted repository). On
 * success *out holds a reference: drop it with layer_cache_put. */
int layer_cache_get(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		    const char *digest, uint64_t size, struct lview **out);
void layer_cache_put(struct layer_cache *lc, struct lview *v);
/* Hands a ready index over to the cache as layer `digest` (tests, and a
 * registry's push-time index); the cache frees it. 0, -EEXIST (kept the
 * one it had; ix freed), -ENOMEM (ix freed). */
int layer_cache_install(struct layer_cache *lc, const char *digest, struct layer_index *ix);

/* Reads len bytes of entry i of v at off (layer_read with the fetch the
 * cache chooses: the cached blob file, else Range requests to repo, each
 * counted in st->lv_bytes). cur may be NULL. Returns bytes read or a
 * negative errno (-EIO logged naming the layer and the entry). */
ssize_t layer_cache_read(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
			 struct lview *v, size_t i, uint64_t off, void *buf, size_t len,
			 struct layer_cursor *cur);

/* ---- one image (.rootfs/) ---- */
struct rview {
	char digest[REGFS_DIGEST_MAX];   /* the manifest's */
	size_t nl;
	struct lview **layers;           /* references, lowest first */
	struct layer_merged *mt;
	/* private to layers.c */
	struct rview *prev, *next;
	struct sflight sf;
	uint64_t mem;
	int ref;
};
/* The merged tree of manifest `digest` whose layers are layers[0..n) (from
 * the manifest); each layer got as layer_cache_get does. On success *out
 * holds a reference: drop it with layer_cache_rput. */
int layer_cache_rget(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		     const char *digest, const struct regfs_descriptor *layers, size_t n,
		     struct rview **out);
void layer_cache_rput(struct layer_cache *lc, struct rview *r);

/* Bytes of indexes and merged trees held in memory now. */
uint64_t layer_cache_memory(struct layer_cache *lc);
/* The digest -> repository notes: how many, and the bytes they take from
 * malloc (usable sizes, interned names included). At most NOTES_MAX notes
 * are kept (then all are forgotten at once). */
void layer_cache_notes(struct layer_cache *lc, size_t *count, size_t *bytes);

#endif
