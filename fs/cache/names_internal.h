/* names_internal.h — what the files of the names cache share (catalog.c,
 * tags.c, resolve.c, bulk.c, names.c): the cache's structure and the
 * helpers that install a tag list. Not for use outside fs/cache/. */
#ifndef REGFS_FS_CACHE_NAMES_INTERNAL_H
#define REGFS_FS_CACHE_NAMES_INTERNAL_H

#include "../mount.h"

#define NBUCKETS 4096

struct repo_ent {
	char *repo;
	struct tagset *ts;   /* NULL until fetched */
	double fetched;
	bool busy;
	/* repo-manifests extension: every manifest digest, tagged or not */
	char **mf;
	size_t nmf;
	double mf_at;
	bool mf_busy;
	struct repo_ent *next;
};

struct names_cache {
	struct regfs_client *client;
	const struct mount_opts *o;  /* ttl, max_parallel */
	struct fs_stats *st;
	struct manifest_cache *mc;           /* where resolved manifests go */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct catalog *cat;
	double cat_at;
	bool cat_busy;
	struct repo_ent *b[NBUCKETS];
};

enum { T_IDLE = 0, T_RESOLVING = 1 };


/* qsort/bsearch comparator of struct tag_ent by tag. */
int names_cmptag(const void *a, const void *b);
/* Caller holds mu. The entry of `repo` (made when new); NULL out of memory. */
struct repo_ent *names_repo_ent(struct names_cache *nc, const char *repo);
/* Caller holds mu. Installs a fresh tagset (takes the caller's reference),
 * carrying over the resolutions of the one it replaces. */
void names_install(struct repo_ent *r, struct tagset *ts);

#endif
