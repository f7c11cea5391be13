/* manifests.h — the manifest cache of the mount (fs/cache/): manifests by
 * digest (content-addressed, so never stale), parsed, in memory within a
 * budget and on disk in the blob cache; the image times tags take from them;
 * whether index children still exist (checked once per ttl).
 *
 * Ownership: an entry (struct mentry) is the cache's. The getters (mcache_get,
 * mcache_peek, mcache_store*) hand out a hold: the entry and everything it
 * points at stay valid until the caller gives it back with mcache_put, once
 * per hold. Entries no one holds are kept in least-recently-used order and
 * dropped past the memory budget (mcache_budget): their bytes stay in the
 * disk cache (written there when dropped if they came in memory only) and
 * the next get reads them again from disk or the registry. Errors: 0 or a
 * negative errno (-ENOENT, -EIO logged once, -ENOMEM). */
#ifndef REGFS_FS_CACHE_MANIFESTS_H
#define REGFS_FS_CACHE_MANIFESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/client.h>
#include <regfs/digest.h>
#include <regfs/oci.h>

struct mount_opts;
struct fs_stats;
struct names_cache;
struct manifest_cache;
struct blob_cache;
struct tag_ent;

struct mentry {
	const char *digest;        /* "alg:hex", as long as the entry */
	char *data;
	size_t len;
	struct regfs_manifest *m;  /* parsed */
	int64_t created;           /* image config "created" (unix), 0 unknown, -1 none;
	                            * written once with __atomic (see manifest_cache_created) */
};
struct manifest_cache *manifest_cache_new(struct regfs_client *cl, const struct mount_opts *o,
			  struct fs_stats *st, struct blob_cache *bc);
/* Every entry must have been put back. */
void manifest_cache_free(struct manifest_cache *mc);
/* The bytes of parsed manifests no one holds that the cache keeps in memory
 * (a share of the mount's memory budget), and a way to change it (tests;
 * entries past the new budget are dropped as soon as no one holds them). */
size_t mcache_budget(const struct mount_opts *o);
void mcache_set_budget(struct manifest_cache *mc, size_t bytes);
/* Bytes the cache holds in memory now, and entries dropped so far. */
size_t mcache_bytes(struct manifest_cache *mc);
uint64_t mcache_evictions(struct manifest_cache *mc);
/* The cache's figures for .regfs/stats. bytes: what its filled entries
 * take from malloc (usable sizes of each entry's slot, bytes and parsed
 * form: what the budget is held to), entries: filled entries in memory,
 * dropped: entries dropped past the budget, written: of those, the ones
 * written to the disk cache as they left (they had come in memory only),
 * read_back: entries filled from the disk cache (dropped earlier, or
 * cached by an earlier mount). */
struct mcache_usage {
	size_t bytes, budget, entries;
	uint64_t dropped, written, read_back;
};
void mcache_usage(struct manifest_cache *mc, struct mcache_usage *out);
/* The manifest `digest` of `repo`, held: memory, then disk cache, then
 * registry. */
int mcache_get(struct manifest_cache *mc, const char *repo, const char *digest, const struct mentry **out);
/* Store a response we already have (e.g. from GET by tag); *out held, or
 * out NULL for no hold. */
int mcache_store(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
	       const char *ctype, const struct mentry **out);
/* The same, kept in memory only (written to the disk cache if it is ever
 * dropped from memory): for manifests that came in a bulk page
 * (regfs-registry), which a remount gets again in a few requests — writing
 * 10,000 of them to the disk cache cost more than the whole walk otherwise. */
int mcache_store_mem(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
		   const char *ctype, const struct mentry **out);
/* The entry when it is in memory now (held), else NULL: nothing fetched. */
const struct mentry *mcache_peek(struct manifest_cache *mc, const char *digest);
/* From now on fn(arg, e) is called for every manifest parsed into the
 * cache (from the registry, the disk cache or a store), with the cache's
 * lock held: fn must be quick and must not call into the cache. One
 * observer at a time; fn NULL ends it, and no call is running once this
 * returns. For the walk, which keeps what it needs of each manifest as
 * it is parsed instead of reading it again after it left memory. */
void mcache_observe(struct manifest_cache *mc, void (*fn)(void *, const struct mentry *),
		    void *arg);
/* Gives back one hold of e (NULL is fine). */
void mcache_put(struct manifest_cache *mc, const struct mentry *e);
/* Fetch many (repo, digest) pairs in parallel; those cached are skipped. */
void manifest_cache_prefetch(struct manifest_cache *mc, const char **repos, const char **digests, size_t n);
/* Image config created time (fetches the config blob; cached with the
 * entry, so fetched again after it was dropped); e is held. -1 when the
 * config has none or an implausible one (see tag_time_plausible). */
int64_t manifest_cache_created(struct manifest_cache *mc, const char *repo, const struct mentry *e);
/* `t` when it can be a real push or build time (2013-01-01, before any OCI
 * image, up to now + 1 day of clock skew), else 0 (unknown): reproducible
 * builds carry 1970-01-01T00:00:01Z, which must not read as "ancient". */
int64_t tag_time_plausible(int64_t t);
/* Fills te->mtime and te->mtime_src from a push time and a created time
 * (0 or -1 when unknown; implausible ones count as unknown), preferring the
 * push time; counts the source for .regfs/status. */
void tag_time_set(struct tag_ent *te, int64_t pushed, int64_t created);
/* How many tag resolutions had each source (index: enum mtime_src). */
void tag_time_counts(uint64_t out[3]);
const char *mtime_src_name(int src);
/* A manifest known not to exist in `repo` (the registry answered 404 within
 * the ttl): index children removed by a garbage collection. */
bool manifest_cache_missing(struct manifest_cache *mc, const char *repo, const char *digest);
/* Checks that each (repos[i], digests[i]) still exists, at most once per ttl
 * per pair (from the repository's manifest list where the registry has one,
 * else by a GET by digest, which fills the cache too):
 * present[i] = 1 exists, 0 gone (404; logged once per digest), -1 unknown
 * (the registry failed; logged). nc: for the repo-manifests extension. */
void manifest_cache_check_exist(struct manifest_cache *mc, struct names_cache *nc, const char **repos,
			const char **digests, size_t n, int *present);

#endif
