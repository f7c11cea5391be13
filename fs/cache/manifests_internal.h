/* manifests_internal.h — what the files of the manifest cache share
 * (manifests.c, times.c, exist.c): the cache's structure. Not for use
 * outside fs/cache/. */
#ifndef REGFS_FS_CACHE_MANIFESTS_INTERNAL_H
#define REGFS_FS_CACHE_MANIFESTS_INTERNAL_H

#include "../mount.h"

struct slot;

/* Whether a manifest still exists in a repository, as last checked (content
 * never changes, existence does: a garbage collection removes index
 * children that nothing tags). Keyed by "repo@digest". */
struct exist {
	char *key;
	int present;     /* 1 exists, 0 gone (404) */
	double at;       /* now_mono() of the check: trusted for the ttl */
	bool logged;     /* a 404 is logged once per pair for the mount's life */
	struct exist *next;
};
#define EXIST_BUCKETS 4096

struct manifest_cache {
	struct regfs_client *client;
	const struct mount_opts *o;  /* ttl */
	struct fs_stats *st;
	struct blob_cache *bc;           /* NULL: no disk cache */
	struct sflight_group g;          /* slots and existence records */
	struct slot **b;
	size_t nb;
	/* Entries no one holds, least recently used first (manifests.c). */
	struct slot *lru_old, *lru_new;
	size_t bytes;                    /* of every filled entry, held or not */
	size_t budget;                   /* drop unheld entries while bytes exceed it */
	size_t entries;                  /* filled, held or not */
	uint64_t evictions;
	uint64_t written, read_back;     /* mcache_usage */
	void (*observer)(void *, const struct mentry *); /* mcache_observe */
	void *observer_arg;
	struct exist *eb[EXIST_BUCKETS];
};

/* Batches bigger than this go in several rounds: every response of a round
 * is held until the round ends, so unbounded rounds (a whole registry's
 * manifests) would set the daemon's peak memory. */
#define PREFETCH_CHUNK 512

/* mpack.c: m copied into one allocation (released with free()), its size
 * in *bytes: the
 * descriptor arrays and strings in its tail, media types, artifact types and
 * platform strings interned for the process's life (a registry has a handful
 * of distinct ones; past MPACK_INTERN_MAX of them, or longer than
 * MPACK_INTERN_LEN bytes, they are copied instead). m stays
 * the caller's. NULL when out of memory. */
struct regfs_manifest *manifest_pack(const struct regfs_manifest *m, size_t *bytes);
#define MPACK_INTERN_MAX 512
#define MPACK_INTERN_LEN 128

#endif
