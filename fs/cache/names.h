/* names.h — the names cache of the mount (fs/cache/): what a name points at
 * right now. The catalog, each repository's tag list and each tag's
 * resolution (digest, mtime) are fetched once per --ttl (single flight:
 * threads that need the same name wait for one fetch) and then again.
 *
 * Ownership: struct catalog and struct tagset are immutable snapshots shared
 * by reference count: a function that hands one out ("ref'd") gives the
 * caller a reference, which it drops with catalog_put / tagset_put. The
 * resolution fields of a tagset's entries are written by the cache under its
 * lock (names_resolve*). Errors: 0 or a negative errno (-ENOENT the registry
 * does not have it, -EIO it failed: logged once, -ENOMEM). */
#ifndef REGFS_FS_CACHE_NAMES_H
#define REGFS_FS_CACHE_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/client.h>
#include <regfs/digest.h>
#include <regfs/sflight.h>

struct mount_opts;
struct fs_stats;
struct names_cache;
struct manifest_cache;

struct catalog {               /* immutable snapshot; refcounted */
	struct sflight_ref ref;
	char **names;              /* sorted */
	size_t n;
	double at;                 /* now_mono() when fetched: valid until at + ttl */
};
/* Where a tag's mtime comes from (xattr user.regfs.mtime-source, .regfs/status):
 * the registry's push time (Last-Modified, bulk-tags), the image config's
 * build time (registry:2 sends no push time), or neither (mtime = when the
 * mount resolved the tag, so an age policy never takes it for old). */
enum mtime_src { MTIME_UNKNOWN = 0, MTIME_CREATED = 1, MTIME_PUSHED = 2 };
/* One per tag of the registry, so kept small: the digest is not a
 * REGFS_DIGEST_MAX buffer but its compact key (digests.h digkey_*): a sha256
 * as its 32 raw bytes, any other spelling as a copied string. Read it with
 * names_tag_read (under the cache's lock); the cache writes it with
 * tagdig_* (names_internal.h). */
struct tag_ent {
	char *tag;
	union {
		uint8_t raw[32];       /* dig_kind TAGDIG_RAW */
		char *str;             /* dig_kind TAGDIG_STR: malloc'd, freed with the set */
	} dig;                         /* dig_kind TAGDIG_NONE: "" (until resolved) */
	int64_t mtime;                 /* 0 until known */
	double resolved_at;
	int mtime_src;                 /* enum mtime_src, set with mtime (tag_time_set) */
	int rc;
	uint8_t state;                 /* internal */
	uint8_t dig_kind;              /* internal */
};
struct tagset {                /* one repository's tags; refcounted snapshot */
	struct sflight_ref ref;
	struct tag_ent *t;         /* sorted by tag */
	size_t n;
	double at;                 /* now_mono() when fetched: valid until at + ttl */
};
/* The caches keep the pointers they are given (they must outlive the cache):
 * cl asks the registry, o gives ttl and max_parallel (read at each use), st
 * counts hits and misses; mc (names) and bc (manifests) are where they store
 * what they fetch (bc NULL: no disk cache). NULL when out of memory. */
struct names_cache *names_cache_new(struct regfs_client *cl, const struct mount_opts *o,
			  struct fs_stats *st, struct manifest_cache *mc);
void names_cache_free(struct names_cache *nc);
int names_catalog(struct names_cache *nc, struct catalog **out);      /* ref'd; catalog_put */
void catalog_put(struct catalog *c);
/* Is `path` a repository (1), a proper prefix of one (namespace, 2), both (3), or none (0)? */
int catalog_classify(const struct catalog *c, const char *path);
/* Children names of dir `path` ("" root): next components, sorted, unique. */
int catalog_children(const struct catalog *c, const char *path, char ***names, size_t *n);
int names_tags(struct names_cache *nc, const char *repo, struct tagset **out);   /* ref'd; tagset_put */
void tagset_put(struct tagset *t);
/* Resolve tag -> digest (+ mtime) for one tag / every tag of a set, in parallel. */
int names_resolve(struct names_cache *nc, const char *repo, const char *tag,
		   char digest[REGFS_DIGEST_MAX], int64_t *mtime);
int names_resolve_all(struct names_cache *nc, const char *repo, struct tagset *ts);
/* out[i] = te[i]->mtime (0 for a NULL te[i]), read under the lock that
 * guards it: a resolution by another thread may set it at any time. */
void names_tag_mtimes(struct names_cache *nc, const struct tag_ent *const *te, size_t n,
		      int64_t *out);
/* What te's resolution says, copied under the lock that guards it (another
 * thread's re-resolution may rewrite te->digest at any time): true with
 * digest, mtime and mtime_src filled when te is resolved (a bulk answer
 * may resolve a tag to no digest: ""); false (digest "") when it is not,
 * or its resolution failed. */
struct tag_read {
	char digest[REGFS_DIGEST_MAX];
	int64_t mtime;
	int mtime_src;
};
bool names_tag_read(struct names_cache *nc, const struct tag_ent *te, struct tag_read *out);
/* The same over many repositories at once (one parallel batch). */
void names_resolve_many(struct names_cache *nc, char **repos, struct tagset **sets, size_t n);
/* Warm many repositories' tag lists in one go (bulk extension or tags_many). */
int names_prefetch_tags(struct names_cache *nc, char **repos, size_t n);
/* bulk-manifests: tags, manifest lists, manifests */
int names_prefetch_bulk(struct names_cache *nc, char **repos, size_t n);
/* repo-manifests extension (regfs-registry): every manifest digest of the
 * repository, tagged or not; cached for the ttl. -ENOTSUP elsewhere. */
int names_repo_manifests(struct names_cache *nc, const char *repo, char ***digests, size_t *n);
/* Forget a repo's tag list / a tag resolution (after a write). */
void names_invalidate(struct names_cache *nc, const char *repo);
/* After a write to `repo` that changed `tags`: the tag list is fetched again
 * (its other tags keep the resolutions younger than the ttl, so a write
 * costs one tag-list request, not one per tag), and those tags are
 * resolved again. The catalog is kept. */
void names_invalidate_tags(struct names_cache *nc, const char *repo, const char *const *tags,
			    size_t n);
/* After `tag` of `repo` was deleted: the cached tag list (as old as it was)
 * no longer has it; the other tags keep their resolutions. No request. */
void names_tag_removed(struct names_cache *nc, const char *repo, const char *tag);

#endif
