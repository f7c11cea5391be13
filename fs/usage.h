/* usage.h — storage accounting of the mount: what each repository,
 * namespace and tag references, what only it references, and what deleting
 * tags would free.
 *
 * Input: what the walk (walk.c) found, as "references": one per resolved tag
 * (repository, tag, manifest digest, tag time) and one per untagged manifest
 * the mount shows (tag NULL), each with the blobs it reaches (the manifest's
 * own bytes, its config and layers, and an index's children with theirs),
 * added one by one. The builder interns digests and repository names, so the
 * caller's strings may go once added.
 *
 * Definitions (all exact bytes, each blob counted once per figure):
 *   bytes(X)     the blobs the references of X reach: X a repository
 *                directory (with the repositories under it, as `du -s` of it
 *                counts), a namespace, the whole registry (= du -s of the
 *                root), or a tag group (the tags of one repository that name
 *                one manifest: what its _manifests/<digest> stands for).
 *   exclusive(X) the blobs of bytes(X) that no TAG outside X reaches: what
 *                deleting X and then a garbage collection with
 *                --delete-untagged frees (untagged manifests are garbage to
 *                it, so they keep nothing alive; a blob only untagged
 *                manifests reach is exclusive to whatever shows it). A
 *                referrer a tag keeps (usage_ref_begin_kept) counts as a tag
 *                of its own manifest.
 *   shared(X)    bytes(X) - exclusive(X).
 *   freed by "delete tags older than N days": the blobs every tag reaching
 *                them is older than N days (the group's exclusive bytes, not
 *                a sum of per-tag figures).
 *
 * Ownership: a struct usage is immutable once built and reference-counted
 * (usage_get / usage_put); every string it returns lives as long as it.
 * Errors: 0 or -ENOMEM / -ENOENT / -EINVAL as each function says. */
#ifndef REGFS_FS_USAGE_H
#define REGFS_FS_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/digest.h>

enum usage_blob_kind { USAGE_MANIFEST, USAGE_CONFIG, USAGE_LAYER };

struct usage_builder;
struct usage;

/* NULL when out of memory. */
struct usage_builder *usage_builder_new(void);
/* Room for about nblobs distinct blobs and nrefs references, made at once
 * when the caller knows them ahead (an upper bound is best): the tables
 * then do not grow by doubling. More still works. 0 or -ENOMEM. */
int usage_builder_reserve(struct usage_builder *b, size_t nblobs, size_t nrefs);
/* Frees a builder that was not built. NULL is fine. */
void usage_builder_free(struct usage_builder *b);
/* Starts a reference: repository `repo`, `tag` (NULL: untagged manifest;
 * only whether there is one is kept),
 * manifest `digest`, tag time `mtime` (unix seconds, 0 unknown). The blobs
 * added next belong to it. 0 or -ENOMEM. */
int usage_ref_begin(struct usage_builder *b, const char *repo, const char *tag,
		    const char *digest, int64_t mtime);
/* Starts a reference to an untagged manifest that a tag keeps alive all the
 * same: a referrer (a manifest with a `subject`) whose subject a tag of the
 * same repository reaches, directly or through other such referrers — the
 * registry's garbage collection keeps it with its subject. It counts as a
 * tag of its own manifest (time `mtime`: the newest of the tags keeping it,
 * 0 unknown) everywhere but in the tag counts: its blobs are not garbage,
 * and not exclusive to anything but what shows both it and its keepers.
 * 0 or -ENOMEM. */
int usage_ref_begin_kept(struct usage_builder *b, const char *repo, const char *digest,
			 int64_t mtime);
/* A blob the current reference reaches (duplicates are fine). 0, -ENOMEM,
 * -EINVAL (no reference begun). */
int usage_ref_blob(struct usage_builder *b, const char *digest, uint64_t size,
		   enum usage_blob_kind kind);
/* Computes everything and frees the builder (also on failure). 0 and *out
 * (one reference: usage_put), or -ENOMEM. */
int usage_build(struct usage_builder *b, struct usage **out);

void usage_get(struct usage *u);
void usage_put(struct usage *u);

struct usage_fig {
	uint64_t bytes, exclusive, shared;
	uint64_t blobs;      /* distinct blobs of bytes */
	uint64_t blocks;     /* sum of ceil(size/512): what du counts (512-byte blocks) */
};

/* The whole registry (= du -s of the mount's root). */
void usage_total(const struct usage *u, struct usage_fig *f);
/* The directory `path` ("" the root, "team" a namespace, "team/app" a
 * repository with the repositories under it). -ENOENT when no repository
 * is there. */
int usage_subtree(const struct usage *u, const char *path, struct usage_fig *f);
/* The tags of repository `repo` that name manifest `digest`, as a group
 * (an untagged manifest: its blobs, exclusive those no tag reaches).
 * -ENOENT when the repository shows no such manifest. */
int usage_manifest(const struct usage *u, const char *repo, const char *digest,
		   struct usage_fig *f);

/* One repository (only it, not those under it). */
#define USAGE_TOP_LAYERS 5
struct usage_repo {
	const char *name;
	uint64_t tags, manifests;  /* tags resolved; distinct manifests reached */
	struct usage_fig fig;
	size_t n_top;              /* largest layers, largest first */
	struct {
		uint32_t blob;     /* its digest: usage_blob_digest */
		uint64_t size;
	} top[USAGE_TOP_LAYERS];
};
/* The digest of a blob a usage_repo names. */
void usage_blob_digest(const struct usage *u, uint32_t blob, char out[REGFS_DIGEST_MAX]);
/* The bytes u holds (its tables), for measuring. */
size_t usage_bytes(const struct usage *u);
size_t usage_n_repos(const struct usage *u);
/* Repositories sorted by name; i < usage_n_repos. */
const struct usage_repo *usage_repo_at(const struct usage *u, size_t i);

/* ---- the walk table (usage_walk.c): what the walk keeps of each manifest,
 * for usage_from_walk (mount.h). Thread-safe. ---- */
struct walk_table;
struct mentry;
struct strvec;
/* NULL when out of memory. */
struct walk_table *walk_table_new(void);
void walk_table_free(struct walk_table *t); /* NULL is fine */
/* Records manifest e (not kept: what it references is copied), once per
 * digest: 0 or -ENOMEM. walk_table_observe is the same as a manifest cache
 * observer (mcache_observe), t its argument. */
int walk_table_record(struct walk_table *t, const struct mentry *e);
void walk_table_observe(void *t, const struct mentry *e);
/* Is digest recorded or counted (nothing to fetch for it)? */
bool walk_table_has(struct walk_table *t, const char *digest);
/* Counts the recorded manifest `digest`: its own bytes, config and layers,
 * those not counted before, into *bytes and *blocks (512-byte); 1 with its
 * index children's digests appended to kids, 0 when it was counted
 * already (nothing done), -ENOENT when not recorded, -ENOMEM. */
int walk_table_visit(struct walk_table *t, const char *digest, uint64_t *bytes,
		     uint64_t *blocks, struct strvec *kids);
/* The bytes the table holds, for measuring. */
size_t walk_table_bytes(struct walk_table *t);

/* The retention view at time `now` (unix seconds). Bucket i (0: < 1 day,
 * 1: < 7, 2: < 30, 3: older, 4: tags of unknown time) holds the bytes whose
 * newest referencing tag has that age; older_than[j] (N = 1, 7, 30) is
 * what deleting every tag older than N days (whole days, as find -mtime +N
 * rounds) frees after a garbage collection. */
#define USAGE_BUCKETS 5
struct usage_retention {
	uint64_t tags[USAGE_BUCKETS], bytes[USAGE_BUCKETS];
	uint64_t older_than[3];
	uint64_t untagged;   /* bytes no tag reaches: any collection with
	                      * --delete-untagged frees them */
};
extern const int usage_bucket_days[3]; /* 1, 7, 30 */
void usage_retention(const struct usage *u, int64_t now, struct usage_retention *r);

#endif
