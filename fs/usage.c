/* usage.c — storage accounting: set arithmetic over what the walk found
 * (usage.h is the manual).
 *
 * Everything is computed from per-blob summaries made in one pass over the
 * tagged references (and the referrers tags keep alive, which count as tags
 * of their own manifest here: "has_tag" reads "kept by a tag"), so that no
 * figure needs a set per directory:
 *  - has_tag, and the first tag group / repository that reaches the blob and
 *    whether another one does too (exclusive to a tag group, a repository);
 *  - the longest common prefix of "<repo>/" over the repositories whose tags
 *    reach it (exclusive to a directory: every such repository is under it);
 *  - the newest time of a tag that reaches it (the retention view: deleting
 *    tags older than N frees exactly the blobs whose newest tag is older).
 * A directory's or a tag group's bytes are a union over its references,
 * made when asked with a bitmap over the blobs (a few per request: getfattr
 * and .regfs/usage, never du).
 *
 * Memory is per blob and per reference, as compact as the figures allow:
 * digests interned as raw bytes (fs/cache/digests.c), 32-bit indexes, and
 * no copy of tag names (only whether a reference is a tag counts). */
#include "usage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/hash.h>
#include <regfs/sflight.h>

#include "cache/digests.h"

#define NONE UINT32_MAX

struct ublob {
	uint64_t size;
	/* summaries of the tagged references (usage_build) */
	int64_t newest;            /* newest tag time; INT64_MAX when one is unknown */
	uint32_t g_repo, g_man;    /* first tag group: repository, manifest blob */
	uint32_t r_first;          /* first repository whose tag reaches it */
	uint32_t lcp;              /* common prefix of "<repo>/" of those repositories */
	uint8_t kind;              /* enum usage_blob_kind */
	bool has_tag, g_multi, r_multi;
};

struct uref {
	uint32_t repo, man;        /* repository index, manifest blob index */
	int64_t mtime;
	uint32_t from, to;         /* its blobs: pool[from, to) */
	bool tagged;               /* false: an untagged manifest */
	bool kept;                 /* an untagged referrer a tag keeps alive */
};

/* An interning table: strings -> dense indexes. */
struct itab {
	uint32_t *slot;            /* index + 1; 0 empty */
	size_t cap;
};

struct usage_builder {
	struct ublob *b;           /* b[i]: the blob of id i in bt */
	size_t nb, capb;
	struct digtab *bt;
	char **repo;
	size_t nr, capr;
	struct itab rt;
	struct uref *ref;
	size_t nref, capref;
	uint32_t *pool;
	size_t npool, cappool;
	bool open;
};

struct usage {
	struct sflight_ref refcount;
	struct usage_builder d;    /* the data, kept as built */
	struct usage_repo *repos;  /* sorted by name */
	uint32_t *rorder;          /* repos[i] is repository index rorder[i] */
	struct usage_fig total;
};

static int grow(void *pp, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	void *np = realloc(*(void **)pp, nc * size);
	if (!np)
		return -ENOMEM;
	*(void **)pp = np;
	*cap = nc;
	return 0;
}

/* Finds s among names[0..n) through t; *idx its index, or NONE (and the
 * slot to fill in *slotp). t is grown first when needed. */
static int itab_find(struct itab *t, char *const *names, size_t n, const char *s,
		     uint32_t *idx, size_t *slotp)
{
	if ((n + 1) * 2 > t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 256;
		uint32_t *ns = calloc(nc, sizeof *ns);
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			size_t j = regfs_fnv1a64_str(names[i]) & (nc - 1);
			while (ns[j])
				j = (j + 1) & (nc - 1);
			ns[j] = (uint32_t)i + 1;
		}
		free(t->slot);
		t->slot = ns;
		t->cap = nc;
	}
	size_t j = regfs_fnv1a64_str(s) & (t->cap - 1);
	for (; t->slot[j]; j = (j + 1) & (t->cap - 1))
		if (strcmp(names[t->slot[j] - 1], s) == 0) {
			*idx = t->slot[j] - 1;
			return 0;
		}
	*idx = NONE;
	*slotp = j;
	return 0;
}

/* Read-only lookup in a built table: the index or NONE. */
static uint32_t itab_get(const struct itab *t, char *const *names, const char *s)
{
	if (!t->cap)
		return NONE;
	size_t j = regfs_fnv1a64_str(s) & (t->cap - 1);
	for (; t->slot[j]; j = (j + 1) & (t->cap - 1))
		if (strcmp(names[t->slot[j] - 1], s) == 0)
			return t->slot[j] - 1;
	return NONE;
}

static int intern_repo(struct usage_builder *b, const char *repo, uint32_t *out)
{
	size_t slot;
	int rc = itab_find(&b->rt, b->repo, b->nr, repo, out, &slot);
	if (rc || *out != NONE)
		return rc;
	if (grow(&b->repo, &b->capr, b->nr, sizeof *b->repo))
		return -ENOMEM;
	if (!(b->repo[b->nr] = strdup(repo)))
		return -ENOMEM;
	b->rt.slot[slot] = (uint32_t)b->nr + 1;
	*out = (uint32_t)b->nr++;
	return 0;
}

static int intern_blob(struct usage_builder *b, const char *digest, uint64_t size,
		       enum usage_blob_kind kind, uint32_t *out)
{
	bool added;
	/* room first: the table and b[] stay in step even when out of memory */
	if (grow(&b->b, &b->capb, b->nb, sizeof *b->b) ||
	    digtab_intern(b->bt, digest, out, &added))
		return -ENOMEM;
	if (!added) {
		struct ublob *x = &b->b[*out];
		if (!x->size)
			x->size = size; /* first seen as a reference's manifest, size unknown */
		return 0;
	}
	b->b[b->nb] = (struct ublob){.size = size, .kind = (uint8_t)kind, .g_repo = NONE,
				     .g_man = NONE, .r_first = NONE, .newest = INT64_MIN};
	b->nb++;
	return 0;
}

struct usage_builder *usage_builder_new(void)
{
	struct usage_builder *b = calloc(1, sizeof *b);
	if (b && !(b->bt = digtab_new())) {
		free(b);
		b = NULL;
	}
	return b;
}

/* Makes the room of *pp exactly n entries when it has less. */
static int room(void *pp, size_t *cap, size_t n, size_t size)
{
	if (n <= *cap)
		return 0;
	void *np = realloc(*(void **)pp, n * size);
	if (!np)
		return -ENOMEM;
	*(void **)pp = np;
	*cap = n;
	return 0;
}

int usage_builder_reserve(struct usage_builder *b, size_t nblobs, size_t nrefs)
{
	/* One more than asked: the tables make room for a new entry before
	 * they look (intern_blob, ref_begin), also when it is not new. */
	if (room(&b->b, &b->capb, nblobs + 1, sizeof *b->b) ||
	    room(&b->ref, &b->capref, nrefs + 1, sizeof *b->ref))
		return -ENOMEM;
	return digtab_reserve(b->bt, nblobs + 1);
}

static void data_free(struct usage_builder *b)
{
	for (size_t i = 0; i < b->nr; i++)
		free(b->repo[i]);
	free(b->b);
	digtab_free(b->bt);
	free(b->repo);
	free(b->rt.slot);
	free(b->ref);
	free(b->pool);
}

void usage_builder_free(struct usage_builder *b)
{
	if (!b)
		return;
	data_free(b);
	free(b);
}

static int ref_begin(struct usage_builder *b, const char *repo, bool tagged, bool kept,
		     const char *digest, int64_t mtime)
{
	uint32_t r, man;
	if (intern_repo(b, repo, &r) || intern_blob(b, digest, 0, USAGE_MANIFEST, &man) ||
	    grow(&b->ref, &b->capref, b->nref, sizeof *b->ref))
		return -ENOMEM;
	if (b->npool >= UINT32_MAX)
		return -ENOMEM;
	struct uref *x = &b->ref[b->nref];
	*x = (struct uref){.repo = r, .man = man, .mtime = mtime, .from = (uint32_t)b->npool,
			   .to = (uint32_t)b->npool, .tagged = tagged, .kept = kept};
	b->nref++;
	b->open = true;
	return 0;
}

int usage_ref_begin(struct usage_builder *b, const char *repo, const char *tag,
		    const char *digest, int64_t mtime)
{
	return ref_begin(b, repo, tag != NULL, false, digest, mtime);
}

int usage_ref_begin_kept(struct usage_builder *b, const char *repo, const char *digest,
			 int64_t mtime)
{
	return ref_begin(b, repo, false, true, digest, mtime);
}

int usage_ref_blob(struct usage_builder *b, const char *digest, uint64_t size,
		   enum usage_blob_kind kind)
{
	if (!b->open)
		return -EINVAL;
	uint32_t i;
	if (b->npool >= UINT32_MAX - 1 || intern_blob(b, digest, size, kind, &i) ||
	    grow(&b->pool, &b->cappool, b->npool, sizeof *b->pool))
		return -ENOMEM;
	b->pool[b->npool++] = i;
	b->ref[b->nref - 1].to = (uint32_t)b->npool;
	return 0;
}

/* Length of the common prefix of a + "/" and b + "/". */
static size_t lcp_slash(const char *a, const char *b)
{
	size_t i = 0;
	while (a[i] && a[i] == b[i])
		i++;
	return a[i] == b[i] ? i + 1 : i; /* both ended: the '/' matches too */
}

/* One tagged (or kept) reference's mark on each blob it reaches. */
static void summarize_ref(struct usage_builder *b, const struct uref *r)
{
	int64_t t = r->mtime > 0 ? r->mtime : INT64_MAX;
	for (size_t k = r->from; k < r->to; k++) {
		struct ublob *x = &b->b[b->pool[k]];
		if (!x->has_tag) {
			x->has_tag = true;
			x->g_repo = x->r_first = r->repo;
			x->g_man = r->man;
			x->lcp = (uint32_t)strlen(b->repo[r->repo]) + 1;
		} else {
			if (x->g_repo != r->repo || x->g_man != r->man)
				x->g_multi = true;
			if (x->r_first != r->repo) {
				x->r_multi = true;
				size_t l = lcp_slash(b->repo[x->r_first], b->repo[r->repo]);
				if (l < x->lcp)
					x->lcp = (uint32_t)l;
			}
		}
		if (t > x->newest)
			x->newest = t;
	}
}

static void fig_add(struct usage_fig *f, const struct ublob *x, bool excl)
{
	f->bytes += x->size;
	f->blobs++;
	f->blocks += (x->size + 511) / 512;
	if (excl)
		f->exclusive += x->size;
	f->shared = f->bytes - f->exclusive;
}

static void top_add(struct usage_repo *r, uint32_t blob, uint64_t size)
{
	size_t i = r->n_top;
	if (i == USAGE_TOP_LAYERS) {
		if (size <= r->top[i - 1].size)
			return;
		i--;
	} else {
		r->n_top++;
	}
	for (; i > 0 && r->top[i - 1].size < size; i--)
		r->top[i] = r->top[i - 1];
	r->top[i].blob = blob;
	r->top[i].size = size;
}

static int cmp_repo_idx(const void *a, const void *b, void *arg)
{
	char **names = arg;
	return strcmp(names[*(const uint32_t *)a], names[*(const uint32_t *)b]);
}

/* Sorts idx[0..n) by names[idx[i]]: a merge sort, since the comparison
 * needs the names and qsort_r is not C17. */
static void sort_idx(uint32_t *idx, uint32_t *tmp, size_t n, char **names)
{
	if (n < 2)
		return;
	size_t h = n / 2;
	sort_idx(idx, tmp, h, names);
	sort_idx(idx + h, tmp, n - h, names);
	size_t i = 0, j = h, k = 0;
	while (i < h && j < n)
		tmp[k++] = cmp_repo_idx(&idx[j], &idx[i], names) < 0 ? idx[j++] : idx[i++];
	while (i < h)
		tmp[k++] = idx[i++];
	while (j < n)
		tmp[k++] = idx[j++];
	memcpy(idx, tmp, n * sizeof *idx);
}

/* The references' indexes grouped by repository (a counting sort); NULL
 * when out of memory. */
static uint32_t *by_repo(const struct usage_builder *d)
{
	uint32_t *order = malloc((d->nref ? d->nref : 1) * sizeof *order);
	size_t *start = calloc(d->nr + 1, sizeof *start);
	if (!order || !start) {
		free(order);
		free(start);
		return NULL;
	}
	for (size_t k = 0; k < d->nref; k++)
		start[d->ref[k].repo + 1]++;
	for (size_t i = 0; i < d->nr; i++)
		start[i + 1] += start[i];
	for (size_t k = 0; k < d->nref; k++)
		order[start[d->ref[k].repo]++] = (uint32_t)k;
	free(start);
	return order;
}

/* Per repository: tags, manifests, figures, largest layers. stamp[blob]
 * holds the last repository (+1) that counted it. */
static int per_repo(struct usage *u)
{
	struct usage_builder *d = &u->d;
	uint32_t *stamp = calloc(d->nb ? d->nb : 1, sizeof *stamp);
	u->repos = calloc(d->nr ? d->nr : 1, sizeof *u->repos);
	uint32_t *pos = calloc(d->nr ? d->nr : 1, sizeof *pos);
	if (!stamp || !u->repos || !pos) {
		free(stamp);
		free(pos);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->nr; i++)
		pos[u->rorder[i]] = (uint32_t)i;
	for (size_t i = 0; i < d->nr; i++)
		u->repos[i].name = d->repo[u->rorder[i]];
	/* one repository after another: the stamp only tells "this
	 * repository counted it" while its references come together */
	uint32_t *order = by_repo(d);
	if (!order) {
		free(stamp);
		free(pos);
		return -ENOMEM;
	}
	for (size_t o = 0; o < d->nref; o++) {
		const struct uref *r = &d->ref[order[o]];
		struct usage_repo *ur = &u->repos[pos[r->repo]];
		ur->tags += r->tagged;
		for (size_t q = r->from; q < r->to; q++) {
			uint32_t bi = d->pool[q];
			if (stamp[bi] == r->repo + 1)
				continue;
			stamp[bi] = r->repo + 1;
			const struct ublob *x = &d->b[bi];
			fig_add(&ur->fig, x, !x->has_tag || (x->r_first == r->repo && !x->r_multi));
			if (x->kind == USAGE_MANIFEST)
				ur->manifests++;
			if (x->kind == USAGE_LAYER)
				top_add(ur, bi, x->size);
		}
	}
	free(order);
	free(stamp);
	free(pos);
	return 0;
}

/* Gives back an array's room for growth: *pp holds n of size bytes. */
static void trim(void *pp, size_t *cap, size_t n, size_t size)
{
	if (!n || n == *cap)
		return;
	void *np = realloc(*(void **)pp, n * size);
	if (np) {
		*(void **)pp = np;
		*cap = n;
	}
}

/* The built data never grows again: up to half of each array was room. */
static void data_trim(struct usage_builder *d)
{
	trim(&d->b, &d->capb, d->nb, sizeof *d->b);
	trim(&d->ref, &d->capref, d->nref, sizeof *d->ref);
	trim(&d->pool, &d->cappool, d->npool, sizeof *d->pool);
	trim(&d->repo, &d->capr, d->nr, sizeof *d->repo);
	digtab_trim(d->bt);
}

int usage_build(struct usage_builder *b, struct usage **out)
{
	struct usage *u = calloc(1, sizeof *u);
	uint32_t *tmp = NULL;
	if (!u)
		goto fail;
	u->d = *b;
	free(b);
	b = NULL;
	struct usage_builder *d = &u->d;
	data_trim(d);
	u->rorder = malloc((d->nr ? d->nr : 1) * sizeof *u->rorder);
	tmp = malloc((d->nr ? d->nr : 1) * sizeof *tmp);
	if (!u->rorder || !tmp)
		goto fail;
	for (size_t i = 0; i < d->nr; i++)
		u->rorder[i] = (uint32_t)i;
	sort_idx(u->rorder, tmp, d->nr, d->repo);
	for (size_t k = 0; k < d->nref; k++)
		if (d->ref[k].tagged || d->ref[k].kept)
			summarize_ref(d, &d->ref[k]);
	if (per_repo(u))
		goto fail;
	/* the total: every blob any reference reaches (the builder holds no
	 * other), exclusive by definition */
	for (size_t i = 0; i < d->nb; i++)
		fig_add(&u->total, &d->b[i], true);
	free(tmp);
	sflight_ref_init(&u->refcount, 1);
	*out = u;
	return 0;
fail:
	free(tmp);
	usage_builder_free(b);
	if (u) {
		sflight_ref_init(&u->refcount, 1);
		usage_put(u);
	}
	return -ENOMEM;
}

void usage_get(struct usage *u)
{
	sflight_ref_get(&u->refcount);
}

void usage_put(struct usage *u)
{
	if (!u || !sflight_ref_put(&u->refcount))
		return;
	data_free(&u->d);
	free(u->repos);
	free(u->rorder);
	free(u);
}

void usage_total(const struct usage *u, struct usage_fig *f)
{
	*f = u->total;
}

static bool under(const char *repo, const char *path, size_t plen)
{
	return plen == 0 || (strncmp(repo, path, plen) == 0 && (repo[plen] == '/' || !repo[plen]));
}

/* Sums the blobs of the references ref_ok accepts, each once; excl decides
 * what is exclusive. -ENOENT when no reference was accepted. */
static int union_of(const struct usage *u, bool (*ref_ok)(const struct usage *, const struct uref *,
							  const void *),
		    bool (*excl)(const struct usage *, const struct ublob *, const void *),
		    const void *arg, struct usage_fig *f)
{
	const struct usage_builder *d = &u->d;
	memset(f, 0, sizeof *f);
	unsigned char *seen = calloc(d->nb / 8 + 1, 1);
	if (!seen)
		return -ENOMEM;
	bool any = false;
	for (size_t k = 0; k < d->nref; k++) {
		const struct uref *r = &d->ref[k];
		if (!ref_ok(u, r, arg))
			continue;
		any = true;
		for (size_t q = r->from; q < r->to; q++) {
			uint32_t bi = d->pool[q];
			if (seen[bi / 8] & (1u << (bi % 8)))
				continue;
			seen[bi / 8] |= (unsigned char)(1u << (bi % 8));
			fig_add(f, &d->b[bi], excl(u, &d->b[bi], arg));
		}
	}
	free(seen);
	return any ? 0 : -ENOENT;
}

static bool sub_ref(const struct usage *u, const struct uref *r, const void *arg)
{
	const char *path = arg;
	return under(u->d.repo[r->repo], path, strlen(path));
}

/* Every repository whose tag reaches x is under path. */
static bool sub_excl(const struct usage *u, const struct ublob *x, const void *arg)
{
	const char *path = arg;
	size_t plen = strlen(path);
	if (!x->has_tag || plen == 0)
		return true;
	return x->lcp >= plen + 1 && under(u->d.repo[x->r_first], path, plen);
}

int usage_subtree(const struct usage *u, const char *path, struct usage_fig *f)
{
	return union_of(u, sub_ref, sub_excl, path, f);
}

struct group {
	uint32_t repo, man;
};

static bool grp_ref(const struct usage *u, const struct uref *r, const void *arg)
{
	(void)u;
	const struct group *g = arg;
	return r->repo == g->repo && r->man == g->man;
}

static bool grp_excl(const struct usage *u, const struct ublob *x, const void *arg)
{
	(void)u;
	const struct group *g = arg;
	return !x->has_tag || (!x->g_multi && x->g_repo == g->repo && x->g_man == g->man);
}

int usage_manifest(const struct usage *u, const char *repo, const char *digest,
		   struct usage_fig *f)
{
	struct group g = {itab_get(&u->d.rt, u->d.repo, repo), digtab_find(u->d.bt, digest)};
	if (g.repo == NONE || g.man == NONE) {
		memset(f, 0, sizeof *f);
		return -ENOENT;
	}
	return union_of(u, grp_ref, grp_excl, &g, f);
}

void usage_blob_digest(const struct usage *u, uint32_t blob, char out[REGFS_DIGEST_MAX])
{
	digtab_str(u->d.bt, blob, out);
}

size_t usage_bytes(const struct usage *u)
{
	const struct usage_builder *d = &u->d;
	size_t n = sizeof *u + digtab_bytes(d->bt) + d->capb * sizeof *d->b +
		   d->capr * sizeof *d->repo + d->rt.cap * sizeof *d->rt.slot +
		   d->capref * sizeof *d->ref + d->cappool * sizeof *d->pool +
		   d->nr * (sizeof *u->repos + sizeof *u->rorder);
	for (size_t i = 0; i < d->nr; i++)
		n += strlen(d->repo[i]) + 1;
	return n;
}

size_t usage_n_repos(const struct usage *u)
{
	return u->d.nr;
}

const struct usage_repo *usage_repo_at(const struct usage *u, size_t i)
{
	return i < u->d.nr ? &u->repos[i] : NULL;
}

const int usage_bucket_days[3] = {1, 7, 30};

void usage_retention(const struct usage *u, int64_t now, struct usage_retention *r)
{
	const struct usage_builder *d = &u->d;
	memset(r, 0, sizeof *r);
	for (size_t k = 0; k < d->nref; k++) {
		const struct uref *x = &d->ref[k];
		if (!x->tagged)
			continue;
		int64_t days = x->mtime > 0 ? (now - x->mtime) / 86400 : -1;
		int bk = days < 0 ? 4 : days < 1 ? 0 : days < 7 ? 1 : days < 30 ? 2 : 3;
		r->tags[bk]++;
	}
	for (size_t i = 0; i < d->nb; i++) {
		const struct ublob *x = &d->b[i];
		if (!x->has_tag) {
			r->untagged += x->size;
			continue;
		}
		int64_t days = x->newest == INT64_MAX ? -1 : (now - x->newest) / 86400;
		int bk = days < 0 ? 4 : days < 1 ? 0 : days < 7 ? 1 : days < 30 ? 2 : 3;
		r->bytes[bk] += x->size;
		for (int j = 0; j < 3; j++)
			if (days > usage_bucket_days[j])
				r->older_than[j] += x->size;
	}
}
