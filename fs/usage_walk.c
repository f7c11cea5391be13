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
 * walk found missing, as du does. An untagged referrer whose subject a tag
 * of its repository reaches (or another such referrer is) is kept by the
 * registry's garbage collection (registry/gc.c marks it): it goes in as a
 * kept reference (usage_ref_begin_kept), not as garbage. */
#include "mount.h"
#include "usage.h"
#include "cache/digests.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>
#include <regfs/strvec.h>

struct wrec {
	uint32_t from, nblob;      /* pool[from, from + nblob): the manifest, config, layers */
	uint32_t nkid;             /* then pool[.., + nkid): its index children */
	uint32_t subject;          /* a referrer's subject (id), DIGTAB_NONE */
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
	struct wrec r = {.from = (uint32_t)t->npool, .has_config = man->has_config,
			 .subject = DIGTAB_NONE};
	int rc = man->has_subject ? intern(t, man->subject.digest, 0, &r.subject) : 0;
	if (!rc)
		rc = pool_add(t, e->digest, e->len);
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

/* What the tags of one repository reach, for finding the referrers they
 * keep: per walk-table id, the repository group that reached it (+ 1) and
 * the newest time of what reached it (INT64_MAX: a tag of unknown time). */
struct reach {
	uint32_t *stamp;
	int64_t *tm;
};

/* Marks manifest id and the index children it reaches (as closure does) as
 * reached by group g at time tm. */
static void reach_mark(struct reach *x, const struct walk_table *t,
		       const struct usage_walk_in *in, const char *repo, uint32_t id, uint32_t g,
		       int64_t tm, int depth)
{
	if (x->stamp[id] == g + 1 && x->tm[id] >= tm)
		return; /* reached already, as late: nothing new below either */
	x->stamp[id] = g + 1;
	x->tm[id] = tm;
	if (!t->rec[id] || depth >= 5)
		return;
	const struct wrec *r = &t->r[t->rec[id] - 1];
	char d[REGFS_DIGEST_MAX];
	for (uint32_t k = r->from + r->nblob; k < r->from + r->nblob + r->nkid; k++) {
		uint32_t kid = t->pool[k];
		digtab_str(t->d, kid, d);
		if (t->rec[kid] && !is_gone(in, repo, d))
			reach_mark(x, t, in, repo, kid, g, tm, depth + 1);
	}
}

struct pair_at {
	const char *repo;
	size_t i;
};

static int by_repo_then_index(const void *a, const void *b)
{
	const struct pair_at *x = a, *y = b;
	if (x->repo != y->repo)
		return (uintptr_t)x->repo < (uintptr_t)y->repo ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* One repository's pairs g[0..n): the tags mark what they reach, then each
 * candidate referrer whose subject is reached is kept (at its subject's
 * time) and marks what it reaches, until none is added. */
static void kept_in_repo(struct reach *x, const struct walk_table *t,
			 const struct usage_walk_in *in, const struct pair_at *g, size_t n,
			 uint32_t gi, const int64_t *mtime, const bool *cand, int64_t *kept)
{
	for (size_t j = 0; j < n; j++) {
		size_t i = g[j].i;
		uint32_t id = digtab_find(t->d, in->digest[i]);
		if (in->te[i] && id != DIGTAB_NONE && t->rec[id])
			reach_mark(x, t, in, g[j].repo, id, gi, mtime[i] > 0 ? mtime[i] : INT64_MAX, 0);
	}
	for (bool more = true; more;) {
		more = false;
		for (size_t j = 0; j < n; j++) {
			size_t i = g[j].i;
			if (!cand[i] || kept[i])
				continue;
			uint32_t id = digtab_find(t->d, in->digest[i]);
			uint32_t sub = t->r[t->rec[id] - 1].subject;
			if (x->stamp[sub] != gi + 1)
				continue;
			kept[i] = x->tm[sub];
			reach_mark(x, t, in, g[j].repo, id, gi, kept[i], 0);
			more = true;
		}
	}
}

/* kept[i] (0: not kept) for each candidate pair (cand[i]: an untagged
 * referrer the accounting takes): the newest time of the tags keeping it
 * (INT64_MAX unknown). 0 or -ENOMEM. */
static int find_kept(const struct walk_table *t, const struct usage_walk_in *in,
		     const int64_t *mtime, const bool *cand, int64_t *kept)
{
	size_t nid = digtab_count(t->d);
	struct reach x = {calloc(nid ? nid : 1, sizeof *x.stamp),
			  malloc((nid ? nid : 1) * sizeof *x.tm)};
	struct pair_at *order = malloc((in->n ? in->n : 1) * sizeof *order);
	if (!x.stamp || !x.tm || !order) {
		free(x.stamp);
		free(x.tm);
		free(order);
		return -ENOMEM;
	}
	for (size_t i = 0; i < in->n; i++)
		order[i] = (struct pair_at){in->repo[i], i};
	regfs_qsort(order, in->n, sizeof *order, by_repo_then_index);
	uint32_t gi = 0;
	for (size_t j = 0, e; j < in->n; j = e, gi++) {
		bool any = false;
		for (e = j; e < in->n && order[e].repo == order[j].repo; e++)
			any |= cand[order[e].i];
		if (any)
			kept_in_repo(&x, t, in, order + j, e - j, gi, mtime, cand, kept);
	}
	free(x.stamp);
	free(x.tm);
	free(order);
	return 0;
}

/* The record index of digest, or -1 when the walk did not count it. */
static long rec_of(const struct walk_table *t, const char *digest)
{
	uint32_t id = digtab_find(t->d, digest);
	return id == DIGTAB_NONE || !t->rec[id] ? -1 : (long)t->rec[id] - 1;
}

/* rix[i]: the record pair i goes in with, or -1 when it is left out: the
 * walk failed on it or found it gone, or it is an untagged manifest that a
 * tag of the same repository names (its repository's manifest list names
 * tagged manifests too; it would add nothing to any figure: same blobs,
 * same repository, same tag group). 0 or -ENOMEM. */
static int pairs_taken(const struct walk_table *t, const struct usage_walk_in *in, long *rix)
{
	/* tagged_in[r]: one repository (by pointer) with a tag on record r */
	const char **tagged_in = calloc(t->nr ? t->nr : 1, sizeof *tagged_in);
	if (!tagged_in)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		long r = in->te[i] ? rec_of(t, in->digest[i]) : -1;
		if (r >= 0 && !tagged_in[r])
			tagged_in[r] = in->repo[i];
	}
	for (size_t i = 0; i < in->n; i++) {
		bool untagged = !in->te[i];
		rix[i] = untagged && is_gone(in, in->repo[i], in->digest[i]) ? -1
			 : rec_of(t, in->digest[i]);
		if (untagged && rix[i] >= 0 && tagged_in[rix[i]] == in->repo[i])
			rix[i] = -1;
	}
	free(tagged_in);
	return 0;
}

int usage_from_walk(const struct walk_table *t, const struct usage_walk_in *in,
		    struct usage **out)
{
	size_t n1 = in->n ? in->n : 1;
	struct usage_builder *b = usage_builder_new();
	long *rix = malloc(n1 * sizeof *rix);
	/* the tags' times, copied under the names cache's lock: a resolution
	 * by another thread (a stale tag listed meanwhile) may rewrite them */
	int64_t *mtime = malloc(n1 * sizeof *mtime), *kept = calloc(n1, sizeof *kept);
	bool *cand = calloc(n1, sizeof *cand), any = false;
	int rc = b && rix && mtime && kept && cand ? pairs_taken(t, in, rix) : -ENOMEM;
	/* Every blob the accounting counts is one the walk table knows: its
	 * count bounds the builder's, which then does not grow by doubling. */
	if (!rc)
		rc = usage_builder_reserve(b, digtab_count(t->d), in->n);
	if (!rc)
		names_tag_mtimes(in->nc, in->te, in->n, mtime);
	for (size_t i = 0; !rc && i < in->n; i++)
		any |= cand[i] = !in->te[i] && rix[i] >= 0 && t->r[rix[i]].subject != DIGTAB_NONE;
	if (!rc && any)
		rc = find_kept(t, in, mtime, cand, kept);
	for (size_t i = 0; !rc && i < in->n; i++) {
		const char *repo = in->repo[i], *digest = in->digest[i];
		if (rix[i] < 0)
			continue;
		/* only whether there is a tag counts: its name is not read */
		if (kept[i])
			rc = usage_ref_begin_kept(b, repo, digest, kept[i] == INT64_MAX ? 0 : kept[i]);
		else
			rc = usage_ref_begin(b, repo, in->te[i] ? "" : NULL, digest, mtime[i]);
		if (!rc)
			rc = closure(b, t, in, repo, &t->r[rix[i]], 0);
	}
	free(rix);
	free(mtime);
	free(kept);
	free(cand);
	if (rc) {
		usage_builder_free(b);
		return rc;
	}
	return usage_build(b, out);
}
