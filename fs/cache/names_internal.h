/* names_internal.h — what the files of the names cache share (catalog.c,
 * tags.c, resolve.c, bulk.c, names.c): the cache's structure and the
 * functions that install a tag list. Not for use outside fs/cache/. */
#ifndef REGFS_FS_CACHE_NAMES_INTERNAL_H
#define REGFS_FS_CACHE_NAMES_INTERNAL_H

#include "../mount.h"

#define NBUCKETS 4096

struct repo_ent {
	char *repo;
	struct tagset *ts;   /* NULL until fetched */
	struct sflight sf;   /* of ts */
	/* repo-manifests extension: every manifest digest, tagged or not: as
	 * 32 raw bytes each (mf_raw) when all are sha256, else strings (mf) */
	char **mf;
	uint8_t (*mf_raw)[32];
	size_t nmf;
	struct sflight mf_sf;
	struct repo_ent *next;
};

struct names_cache {
	struct regfs_client *client;
	const struct mount_opts *o;  /* ttl, max_parallel */
	struct fs_stats *st;
	struct manifest_cache *mc;           /* where resolved manifests go */
	struct sflight_group g;      /* every entry's lock and wake-up */
	struct catalog *cat;
	struct sflight cat_sf;
	struct repo_ent *b[NBUCKETS];
};

enum { T_IDLE = 0, T_RESOLVING = 1 };
enum { TAGDIG_NONE = 0, TAGDIG_RAW = 1, TAGDIG_STR = 2 };

/* A tag entry's digest (struct tag_ent's dig). Writers hold g.mu or own the
 * entry (its resolver, or a set not yet published). tagdig_set: d ("" is
 * none) becomes te's digest; 0, or -ENOMEM (a digest that is not a sha256
 * could not be copied: te then has none). tagdig_copy: src's into dst (0 or
 * -ENOMEM, dst then has none). tagdig_clear frees a copied string.
 * tagdig_known: has one; tagdig_is: is it exactly d; tagdig_get: as spelled. */
int tagdig_set(struct tag_ent *te, const char *d);
int tagdig_copy(struct tag_ent *dst, const struct tag_ent *src);
void tagdig_clear(struct tag_ent *te);
bool tagdig_known(const struct tag_ent *te);
bool tagdig_is(const struct tag_ent *te, const char *d);
void tagdig_get(const struct tag_ent *te, char out[REGFS_DIGEST_MAX]);


/* qsort/bsearch comparator of struct tag_ent by tag. */
int names_cmptag(const void *a, const void *b);
/* Caller holds g.mu. The entry of `repo` (made when new); NULL out of memory. */
struct repo_ent *names_repo_ent(struct names_cache *nc, const char *repo);
/* Caller holds g.mu. Installs a fresh tagset (takes the caller's reference),
 * carrying over the resolutions of the one it replaces; r->sf says it is
 * fresh (a claim on it is still the caller's to end). */
void names_install(struct repo_ent *r, struct tagset *ts);
/* Caller holds g.mu. Replaces r's manifest list with v (n digests, taken). */
void names_set_manifests(struct repo_ent *r, char **v, size_t n);
/* Caller holds g.mu. Digest i of r's manifest list (i < r->nmf) into out. */
void names_manifest_at(const struct repo_ent *r, size_t i, char out[REGFS_DIGEST_MAX]);
/* A new tagset (one reference) of the tags a bulk answer gave with their
 * digests and push times; an entry without a digest counts as resolved
 * only when all_resolved. NULL when out of memory. */
struct tagset *names_tagset_of(const struct regfs_tag_info *tags, size_t n, bool all_resolved);
/* After SFLIGHT_HIT on a snapshot whose count is ref (caller holds g.mu):
 * takes a reference for the caller, unlocks, counts a hit. */
void names_hit(struct names_cache *nc, struct sflight_ref *ref);

#endif
