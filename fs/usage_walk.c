/* usage_walk.c — what the walk keeps of each manifest, and the
 * accounting's input made from it (walk.c).
 *
 * The walk table is all the accounting needs after a manifest is parsed:
 * per blob its size, per manifest the blobs it reaches directly (its own
 * bytes, config, layers) and its index children, as 32-bit ids of interned
 * digests (fs/cache/digests.c). A manifest is recorded as the manifest
 * cache parses it (the walk observes the cache: a bulk-manifests page is
 * recorded as it arrives) and visited when the walk counts it, so the
 * manifests can leave memory (the manifest cache's budget) while the walk
 * goes on, and neither the walk nor the accounting reads one again: one
 * reference per tag and per untagged manifest, each with the blobs it
 * reaches (an index's children with theirs), leaving out the manifests the
 * walk found missing, as du does. */
#include "mount.h"
#include "usage.h"
#include "cache/digests.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/strvec.h>

struct wrec {
	uint32_t from, nblob;      /* pool[from, from + nblob): the manifest, config, layers */
	uint32_t nkid;             /* then pool[.., + nkid): its index children */
	bool has_config;           /* pool[from + 1] is the config */
};

struct walk_table {
	pthread_mutex_t mu;        /* recording comes from any thread (the observer) */
	struct digtab *d;
	uint64_t *size;            /* per id; 0 until a manifest names it with a size */
	uint8_t *counted;          /* per id: counted in the walk's total */
	uint32_t *rec;             /* per id: index in r + 1, 0 none */
	size_t cap;
	struct wrec *r;
	size_t nr, capr;
	uint32_t *pool;
	size_t npool, cappool;
};

struct walk_table *walk_table_new(void)
{
	struct walk_table *t = calloc(1, sizeof *t);
	if (t && !(t->d = digtab_new())) {
		free(t);
		t = NULL;
	}
	if (t)
		pthread_mutex_init(&t->mu, NULL);
	return t;
}

void walk_table_free(struct walk_table *t)
{
	if (!t)
		return;
	digtab_free(t->d);
	free(t->size);
	free(t->counted);
	free(t->rec);
	free(t->r);
	free(t->pool);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

size_t walk_table_bytes(struct walk_table *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = sizeof *t + digtab_bytes(t->d) +
		   t->cap * (sizeof *t->size + 1 + sizeof *t->rec) + t->capr * sizeof *t->r +
		   t->cappool * sizeof *t->pool;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static int grow(void *pp, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 1024;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*(void **)pp, nc * size);
	if (!np)
		return -ENOMEM;
	*(void **)pp = np;
	*cap = nc;
	return 0;
}

/* Caller holds t->mu. The id of digest, with room in the per-id arrays;
 * a new one has size `size`, and a known one of size 0 gets it. */
static int intern(struct walk_table *t, const char *digest, uint64_t size, uint32_t *id)
{
	size_t n = digtab_count(t->d);
	if (n + 1 > t->cap) {
		size_t c = t->cap, c2 = t->cap, c3 = t->cap;
		if (grow(&t->size, &c, n + 1, sizeof *t->size) ||
		    grow(&t->counted, &c2, n + 1, sizeof *t->counted) ||
		    grow(&t->rec, &c3, n + 1, sizeof *t->rec))
			return -ENOMEM;
		t->cap = c;
	}
	bool added;
	if (digtab_intern(t->d, digest, id, &added))
		return -ENOMEM;
	if (added) {
		t->counted[*id] = 0;
		t->rec[*id] = 0;
		t->size[*id] = 0;
	}
	if (!t->size[*id])
		t->size[*id] = size;
	return 0;
}

/* Caller holds t->mu. Appends digest's id to the pool. */
static int pool_add(struct walk_table *t, const char *digest, uint64_t size)
{
	uint32_t id;
	if (grow(&t->pool, &t->cappool, t->npool + 1, sizeof *t->pool) ||
	    intern(t, digest, size, &id))
		return -ENOMEM;
	t->pool[t->npool++] = id;
	return 0;
}

/* Caller holds t->mu. */
static int record_locked(struct walk_table *t, const struct mentry *e)
{
	const struct regfs_manifest *man = e->m;
	uint32_t mid = digtab_find(t->d, e->digest);
	if (mid != DIGTAB_NONE && t->rec[mid])
		return 0;
	if (t->npool + 2 + man->n_layers + man->n_manifests >= UINT32_MAX ||
	    grow(&t->r, &t->capr, t->nr + 1, sizeof *t->r))
		return -ENOMEM;
	struct wrec r = {.from = (uint32_t)t->npool, .has_config = man->has_config};
	int rc = pool_add(t, e->digest, e->len);
	if (!rc && man->has_config)
		rc = pool_add(t, man->config.digest, (uint64_t)man->config.size);
	for (size_t l = 0; !rc && l < man->n_layers; l++)
		rc = pool_add(t, man->layers[l].digest, (uint64_t)man->layers[l].size);
	r.nblob = (uint32_t)(t->npool - r.from);
	for (size_t c = 0; !rc && c < man->n_manifests; c++)
		rc = pool_add(t, man->manifests[c].digest, 0);
	if (rc) {
		t->npool = r.from; /* ids interned stay, unreferenced */
		return rc;
	}
	r.nkid = (uint32_t)(t->npool - r.from - r.nblob);
	t->r[t->nr] = r;
	t->rec[t->pool[r.from]] = (uint32_t)++t->nr;
	return 0;
}

int walk_table_record(struct walk_table *t, const struct mentry *e)
{
	pthread_mutex_lock(&t->mu);
	int rc = record_locked(t, e);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void walk_table_observe(void *t, const struct mentry *e)
{
	(void)walk_table_record(t, e); /* out of memory: the walk fetches it again */
}

bool walk_table_has(struct walk_table *t, const char *digest)
{
	pthread_mutex_lock(&t->mu);
	uint32_t id = digtab_find(t->d, digest);
	bool has = id != DIGTAB_NONE && (t->rec[id] || t->counted[id]);
	pthread_mutex_unlock(&t->mu);
	return has;
}

/* Caller holds t->mu. Counts id once. */
static void count_id(struct walk_table *t, uint32_t id, uint64_t *bytes, uint64_t *blocks)
{
	if (t->counted[id])
		return;
	t->counted[id] = 1;
	*bytes += t->size[id];
	*blocks += (t->size[id] + 511) / 512;
}

int walk_table_visit(struct walk_table *t, const char *digest, uint64_t *bytes,
		     uint64_t *blocks, struct strvec *kids)
{
	pthread_mutex_lock(&t->mu);
	int rc = -ENOENT;
	uint32_t id = digtab_find(t->d, digest);
	if (id != DIGTAB_NONE && t->counted[id]) {
		rc = 0; /* counted: as this manifest, or (never in practice) as a blob */
	} else if (id != DIGTAB_NONE && t->rec[id]) {
		struct wrec *r = &t->r[t->rec[id] - 1];
		for (uint32_t k = r->from; k < r->from + r->nblob; k++)
			count_id(t, t->pool[k], bytes, blocks);
		char d[REGFS_DIGEST_MAX];
		rc = 1;
		for (uint32_t k = r->from + r->nblob; k < r->from + r->nblob + r->nkid; k++) {
			digtab_str(t->d, t->pool[k], d);
			if (strvec_push(kids, d))
				rc = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* Was (repo, digest) found missing? (few: a linear scan) */
static bool is_gone(const struct usage_walk_in *in, const char *repo, const char *digest)
{
	for (size_t i = 0; i < in->n_gone; i++)
		if (in->gone_repo[i] == repo && strcmp(in->gone_digest[i], digest) == 0)
			return true;
	return false;
}

/* Adds the blobs of record r and (depth permitting) its children's. */
static int closure(struct usage_builder *b, const struct walk_table *t,
		   const struct usage_walk_in *in, const char *repo, const struct wrec *r,
		   int depth)
{
	char d[REGFS_DIGEST_MAX];
	int rc = 0;
	for (uint32_t k = r->from; !rc && k < r->from + r->nblob; k++) {
		uint32_t id = t->pool[k];
		enum usage_blob_kind kind = k == r->from ? USAGE_MANIFEST
					    : k == r->from + 1 && r->has_config ? USAGE_CONFIG
					    : USAGE_LAYER;
		digtab_str(t->d, id, d);
		rc = usage_ref_blob(b, d, t->size[id], kind);
	}
	uint32_t k0 = r->from + r->nblob;
	for (uint32_t k = k0; !rc && depth < 5 && k < k0 + r->nkid; k++) {
		uint32_t id = t->pool[k];
		if (!t->rec[id])
			continue; /* not counted: gone, or the walk failed on it */
		digtab_str(t->d, id, d);
		if (!is_gone(in, repo, d))
			rc = closure(b, t, in, repo, &t->r[t->rec[id] - 1], depth + 1);
	}
	return rc;
}

/* The record index of digest, or -1 when the walk did not count it. */
static long rec_of(const struct walk_table *t, const char *digest)
{
	uint32_t id = digtab_find(t->d, digest);
	return id == DIGTAB_NONE || !t->rec[id] ? -1 : (long)t->rec[id] - 1;
}

int usage_from_walk(const struct walk_table *t, const struct usage_walk_in *in,
		    struct usage **out)
{
	struct usage_builder *b = usage_builder_new();
	/* A repository's manifest list names its tagged manifests too: an
	 * untagged reference to a manifest a tag of the same repository
	 * reaches adds nothing to any figure (same blobs, same repository,
	 * same tag group), so it is left out. tagged_in[r]: one repository
	 * (by pointer) with a tag on record r. */
	const char **tagged_in = calloc(t->nr ? t->nr : 1, sizeof *tagged_in);
	/* the tags' times, copied under the names cache's lock: a resolution
	 * by another thread (a stale tag listed meanwhile) may rewrite them */
	int64_t *mtime = malloc((in->n ? in->n : 1) * sizeof *mtime);
	int rc = b && tagged_in && mtime ? 0 : -ENOMEM;
	if (!rc)
		names_tag_mtimes(in->nc, in->te, in->n, mtime);
	for (size_t i = 0; !rc && i < in->n; i++) {
		long r = in->te[i] ? rec_of(t, in->digest[i]) : -1;
		if (r >= 0 && !tagged_in[r])
			tagged_in[r] = in->repo[i];
	}
	for (size_t i = 0; !rc && i < in->n; i++) {
		const char *repo = in->repo[i], *digest = in->digest[i];
		const struct tag_ent *te = in->te[i];
		if (!te && is_gone(in, repo, digest))
			continue;
		long r = rec_of(t, digest);
		if (r < 0)
			continue; /* the walk failed on it: no accounting then (walk.c) */
		if (!te && tagged_in[r] == repo)
			continue;
		/* only whether there is a tag counts: its name is not read */
		rc = usage_ref_begin(b, repo, te ? "" : NULL, digest, mtime[i]);
		if (!rc)
			rc = closure(b, t, in, repo, &t->r[r], 0);
	}
	free(tagged_in);
	free(mtime);
	if (rc) {
		usage_builder_free(b);
		return rc;
	}
	return usage_build(b, out);
}
