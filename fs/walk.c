/* walk.c — the full walk: everything the mount shows, fetched in parallel.
 *
 * `du -s /mnt/registry` visits every repository, tag and manifest one
 * directory at a time; done on demand that is thousands of sequential
 * round trips. The walk fetches the same things in a few large parallel
 * batches (catalog; every tag list — one paginated bulk-tags walk on
 * regfs-registry, else tags_many; every tag's manifest; index children) so
 * that du's own lookups hit the caches. With regfs-registry's bulk-manifests
 * extension the tag lists, manifest lists and manifests all come in one
 * paginated series of requests and the batches find everything cached. It starts in the background when the
 * root directory is opened, and statfs uses its result: the deduplicated
 * total of stored blobs, the same number `du -s` of the root computes.
 *
 * Single flight (regfs/sflight.h); a result younger than the ttl is reused. */
#include "mount.h"
#include "usage.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>
#include <regfs/strvec.h>


struct pairs {
	const char **repo, **digest;
	const struct tag_ent **te;  /* the tag of a tag's target; NULL: untagged */
	size_t n, cap;
	struct pairs *gone;         /* those found missing (the accounting leaves them out) */
	struct strvec own;          /* digests of index children that digest[] points at */
};

/* Room for n pairs in all (the arrays are one entry per tag and manifest of
 * the registry: sized once when the count is known, not doubled). */
static bool pairs_room(struct pairs *p, size_t n)
{
	if (n <= p->cap)
		return true;
	const char **a = realloc(p->repo, n * sizeof *a);
	if (!a)
		return false;
	p->repo = a;
	const char **b = realloc(p->digest, n * sizeof *b);
	if (!b)
		return false;
	p->digest = b;
	const struct tag_ent **t = realloc(p->te, n * sizeof *t);
	if (!t)
		return false;
	p->te = t;
	p->cap = n;
	return true;
}

static void pairs_add(struct pairs *p, const char *repo, const char *digest,
		      const struct tag_ent *te)
{
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 1024;
		const char **a = realloc(p->repo, nc * sizeof *a);
		if (!a)
			return;
		p->repo = a;
		const char **b = realloc(p->digest, nc * sizeof *b);
		if (!b)
			return;
		p->digest = b;
		const struct tag_ent **t = realloc(p->te, nc * sizeof *t);
		if (!t)
			return;
		p->te = t;
		p->cap = nc;
	}
	p->repo[p->n] = repo;
	p->digest[p->n] = digest;
	p->te[p->n] = te;
	p->n++;
}

/* An index child: its digest copied (the manifest it came from may be
 * dropped from the manifest cache once put back). */
static void pairs_add_copy(struct pairs *p, const char *repo, const char *digest)
{
	if (strvec_push(&p->own, digest) == 0)
		pairs_add(p, repo, p->own.v[p->own.n - 1], NULL);
}

struct rm_job {
	struct names_cache *nc;
	char **repos;
	char ***v;
	size_t *n;
};

static void rm_one(size_t i, void *arg)
{
	struct rm_job *j = arg;
	if (names_repo_manifests(j->nc, j->repos[i], &j->v[i], &j->n[i]) != 0) {
		j->v[i] = NULL;
		j->n[i] = 0;
	}
}

#define WALK_CHUNK 512

/* Fetches the manifests of pairs [lo, hi) that the walk table has not
 * recorded (a bulk-manifests page recorded most as it came) and that were
 * not found gone (present[i - k0] == 0 for i >= k0; present NULL: none
 * checked): the existence check fetched none the registry listed, and the
 * manifest cache may have dropped others since. */
static void prefetch_missing(struct mnt *m, struct pairs *p, struct walk_table *t, size_t lo,
			     size_t hi, size_t k0, const int *present)
{
	const char **r = calloc(hi - lo, sizeof *r), **d = calloc(hi - lo, sizeof *d);
	size_t n = 0;
	for (size_t i = lo; r && d && i < hi; i++)
		if ((!present || i < k0 || present[i - k0] != 0) && !walk_table_has(t, p->digest[i])) {
			r[n] = p->repo[i];
			d[n++] = p->digest[i];
		}
	if (n)
		manifest_cache_prefetch(m->mc, r, d, n);
	free(r);
	free(d);
}

/* Counts pair i's manifest from the walk table, recording it first from
 * the manifest cache when the table does not have it; its index children
 * become pairs. 0, -EIO (it could not be fetched), -ENOMEM. */
static int count_one(struct mnt *m, struct pairs *p, size_t i, struct walk_table *t,
		     uint64_t *by, uint64_t *bl)
{
	struct strvec kids = STRVEC_INIT;
	int r = walk_table_visit(t, p->digest[i], by, bl, &kids);
	if (r == -ENOENT) {
		const struct mentry *e;
		if (mcache_get(m->mc, p->repo[i], p->digest[i], &e) != 0)
			return -EIO;
		r = walk_table_record(t, e);
		mcache_put(m->mc, e);
		if (!r)
			r = walk_table_visit(t, p->digest[i], by, bl, &kids);
	}
	for (size_t c = 0; r == 1 && c < kids.n; c++)
		pairs_add_copy(p, p->repo[i], kids.v[c]);
	strvec_clear(&kids);
	return r < 0 ? (r == -ENOENT ? -EIO : r) : 0;
}

/* count_all's work on pairs [c0, c1): those before chk are tags' targets
 * (fetched), the others checked for existence first. 0, -EIO (a manifest
 * could not be fetched), -ENOMEM. */
static int count_chunk(struct mnt *m, struct pairs *p, size_t c0, size_t c1, size_t chk,
		       struct walk_table *t, uint64_t *by, uint64_t *bl)
{
	int rc = 0;
	size_t k0 = chk > c0 ? (chk < c1 ? chk : c1) : c0; /* [c0, k0) tagged */
	int *present = c1 > k0 ? calloc(c1 - k0, sizeof *present) : NULL;
	if (present)
		manifest_cache_check_exist(m->mc, m->nc, p->repo + k0, p->digest + k0, c1 - k0,
					   present);
	prefetch_missing(m, p, t, c0, c1, k0, present);
	for (size_t i = c0; i < c1 && rc != -ENOMEM; i++) {
		if (present && i >= k0 && present[i - k0] == 0) {
			if (p->gone)
				pairs_add(p->gone, p->repo[i], p->digest[i], NULL);
			continue; /* gone: logged once by the manifest cache */
		}
		int r = count_one(m, p, i, t, by, bl);
		if (r)
			rc = r == -ENOMEM || !rc ? r : rc;
	}
	free(present);
	return rc;
}

/* Counts every stored blob of the manifests in p (each once), adding index
 * children to p as it goes: pairs [0, ntagged) are tags' targets resolved
 * within the ttl; the others (untagged manifests, index children) are
 * checked for existence at most once per ttl — a garbage collection may
 * have removed them, and a missing one is not a failed walk. What the
 * accounting needs of each manifest goes into t. 0, or -EIO when a manifest
 * could not be fetched (logged by the manifest cache), -ENOMEM. */
static int count_all(struct mnt *m, struct pairs *p, size_t ntagged, struct walk_table *t,
		     uint64_t *bytes, uint64_t *blocks)
{
	uint64_t by = 0, bl = 0;
	int rc = 0;
	size_t from = 0;
	for (int depth = 0; !rc && depth < 5 && from < p->n; depth++) {
		size_t end = p->n;
		size_t chk = depth ? from : (ntagged > from ? ntagged : from);
		/* In chunks, each counted right after it is fetched: the manifest
		 * cache keeps only a budget's worth of them in memory. */
		for (size_t c0 = from; !rc && c0 < end; c0 += WALK_CHUNK) {
			size_t c1 = end - c0 < WALK_CHUNK ? end : c0 + WALK_CHUNK;
			int r = count_chunk(m, p, c0, c1, chk, t, &by, &bl);
			if (r == -ENOMEM)
				rc = r;
			else if (r)
				rc = rc ? rc : r;
		}
		from = end;
	}
	*bytes = by;
	*blocks = bl;
	return rc;
}

/* What one walk holds until it ends. */
struct walk {
	struct catalog *cat;
	struct tagset **sets;  /* per catalog name; NULL: none */
	struct pairs p;        /* (repository, manifest digest) to count */
	struct pairs gone;     /* those of p found missing */
	char **tmp;            /* copies of the tags' digests that p points at */
	size_t ntmp;
	struct rm_job rj;      /* repo-manifests lists that p points at */
};

/* Catalog, every tag list, every tag resolved: into w->cat and w->sets. */
static int walk_names(struct mnt *m, struct walk *w)
{
	int rc = names_catalog(m->nc, &w->cat);
	if (rc)
		return rc;
	struct catalog *cat = w->cat;
	/* regfs-registry's bulk-manifests: every tag list, every repository's
	 * manifest list and every manifest's bytes in a few pages, so that
	 * everything below runs on cache hits. Any failure (a digest mismatch
	 * included) falls back to the per-request walk, which names the culprit. */
	rc = names_prefetch_bulk(m->nc, cat->names, cat->n);
	if (rc && rc != -ENOTSUP && rc != -ENOMEM)
		log_warn("walk: bulk-manifests failed (see above); listing per repository instead");
	if (rc && rc != -ENOMEM)
		rc = names_prefetch_tags(m->nc, cat->names, cat->n);
	if (rc)
		return rc;
	if (!(w->sets = calloc(cat->n ? cat->n : 1, sizeof *w->sets)))
		return -ENOMEM;
	for (size_t i = 0; i < cat->n; i++) {
		int r = names_tags(m->nc, cat->names[i], &w->sets[i]);
		if (r) {
			w->sets[i] = NULL;
			if (r != -ENOENT && !rc)
				rc = r; /* a repository without tags is fine, a dead registry is not */
		}
	}
	if (rc == 0)
		names_resolve_many(m->nc, cat->names, w->sets, cat->n);
	return rc;
}

/* The pairs to count: every resolved tag's target, then (regfs-registry)
 * every untagged manifest, as _manifests/ shows them. Returns how many of
 * them are tags' targets. */
static size_t walk_pairs(struct mnt *m, struct walk *w)
{
	const struct catalog *cat = w->cat;
	/* Digest strings must outlive the tagsets' possible replacement: copied. */
	size_t n = 0;
	for (size_t i = 0; i < cat->n; i++)
		n += w->sets[i] ? w->sets[i]->n : 0;
	w->tmp = calloc(n ? n : 1, sizeof *w->tmp);
	pairs_room(&w->p, n); /* when it fails, pairs_add grows them */
	struct tag_read tr;
	for (size_t i = 0; w->tmp && i < cat->n; i++)
		for (size_t j = 0; w->sets[i] && j < w->sets[i]->n; j++) {
			const struct tag_ent *te = &w->sets[i]->t[j];
			if (names_tag_read(m->nc, te, &tr) && (w->tmp[w->ntmp] = strdup(tr.digest)))
				pairs_add(&w->p, cat->names[i], w->tmp[w->ntmp++], te);
		}
	size_t ntagged = w->p.n;
	struct rm_job *rj = &w->rj;
	*rj = (struct rm_job){m->nc, cat->names, NULL, NULL};
	if (regfs_client_has_ext(m->client, "repo-manifests") &&
	    (rj->v = calloc(cat->n ? cat->n : 1, sizeof *rj->v)) &&
	    (rj->n = calloc(cat->n ? cat->n : 1, sizeof *rj->n))) {
		par_for(cat->n, m->o.max_parallel, rm_one, rj);
		size_t nall = w->p.n;
		for (size_t i = 0; i < cat->n; i++)
			nall += rj->n[i];
		pairs_room(&w->p, nall);
		for (size_t i = 0; i < cat->n; i++)
			for (size_t j = 0; j < rj->n[i]; j++)
				pairs_add(&w->p, cat->names[i], rj->v[i][j], NULL);
	}
	return ntagged;
}

static void walk_free(struct walk *w)
{
	free(w->p.repo);
	free(w->p.digest);
	free(w->p.te);
	free(w->gone.repo);
	free(w->gone.digest);
	free(w->gone.te);
	strvec_clear(&w->p.own);
	for (size_t i = 0; i < w->ntmp; i++)
		free(w->tmp[i]);
	free(w->tmp);
	for (size_t i = 0; w->rj.v && w->rj.n && i < w->cat->n; i++) {
		for (size_t j = 0; j < w->rj.n[i]; j++)
			free(w->rj.v[i][j]);
		free(w->rj.v[i]);
	}
	free(w->rj.v);
	free(w->rj.n);
	for (size_t i = 0; w->sets && i < w->cat->n; i++)
		tagset_put(w->sets[i]);
	free(w->sets);
	catalog_put(w->cat);
}

static int do_walk(struct mnt *m, uint64_t *bytes, uint64_t *blocks, struct usage **u)
{
	atomic_fetch_add(&m->st.walks, 1);
	struct walk w = {0};
	struct walk_table *t = walk_table_new();
	/* every manifest parsed from here on is recorded as it comes: those of
	 * a bulk-manifests page need no second read after leaving memory */
	if (t)
		mcache_observe(m->mc, walk_table_observe, t);
	int rc = t ? walk_names(m, &w) : -ENOMEM;
	if (rc == 0) {
		size_t ntagged = walk_pairs(m, &w);
		w.p.gone = &w.gone;
		rc = count_all(m, &w.p, ntagged, t, bytes, blocks);
	}
	if (t)
		mcache_observe(m->mc, NULL, NULL);
	if (rc == 0) {
		/* the accounting of .regfs/usage and the user.regfs.* sizes:
		 * from the same pairs, every manifest now in the cache */
		struct usage_walk_in in = {w.p.repo, w.p.digest, w.p.te, w.p.n,
					   w.gone.repo, w.gone.digest, w.gone.n, m->nc};
		double t0 = now_mono();
		rc = usage_from_walk(t, &in, u);
		log_debug("walk: accounting of %zu references in %.3f s; walk table %zu KB, "
			  "accounting %zu KB", w.p.n, now_mono() - t0, walk_table_bytes(t) >> 10,
			  rc == 0 ? usage_bytes(*u) >> 10 : 0);
	}
	walk_table_free(t);
	if (w.cat)
		walk_free(&w);
	return rc;
}

/* The last total, single flight: one walk at a time, its result reused for
 * the ttl; walk_shutdown closes it for good. */
static struct sflight_group wg = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
				  loop_may_block};
static struct sflight wsf;
static uint64_t last_bytes, last_blocks;
static struct usage *last_usage; /* of the last successful walk; NULL before */

int walk_total(struct mnt *m, uint64_t *bytes, uint64_t *blocks)
{
	pthread_mutex_lock(&wg.mu);
	if (sflight_begin(&wg, &wsf, m->o.ttl) == SFLIGHT_HIT) {
		*bytes = last_bytes;
		*blocks = last_blocks;
		pthread_mutex_unlock(&wg.mu);
		return 0;
	}
	pthread_mutex_unlock(&wg.mu);
	uint64_t by = 0, bl = 0;
	struct usage *u = NULL;
	double t0 = now_mono();
	int rc = do_walk(m, &by, &bl, &u);
	struct mallinfo2 mi = mallinfo2();
	log_debug("walk: %llu bytes in %llu blocks, %.2f s, rc %d; malloc: %zu MB in use, %zu MB "
		  "free in the heap, %zu MB mapped; manifest cache %zu KB, %llu dropped",
		  (unsigned long long)by, (unsigned long long)bl, now_mono() - t0, rc,
		  mi.uordblks >> 20, mi.fordblks >> 20, mi.hblkhd >> 20, mcache_bytes(m->mc) >> 10,
		  (unsigned long long)mcache_evictions(m->mc));
	pthread_mutex_lock(&wg.mu);
	if (rc == 0) {
		last_bytes = by;
		last_blocks = bl;
		usage_put(last_usage);
		last_usage = u;
	}
	sflight_end(&wg, &wsf, rc == 0);
	/* On failure, report the last total we knew (statfs must not hang or
	 * fail the whole df); the log says why it is stale. */
	*bytes = last_bytes;
	*blocks = last_blocks;
	pthread_mutex_unlock(&wg.mu);
	return rc;
}

int walk_usage(struct mnt *m, struct usage **out)
{
	uint64_t by, bl;
	int rc = walk_total(m, &by, &bl);
	pthread_mutex_lock(&wg.mu);
	if (rc == 0 && !last_usage)
		rc = -EIO; /* cannot happen: a successful walk installs one */
	if (rc == 0) {
		usage_get(last_usage);
		*out = last_usage;
	}
	pthread_mutex_unlock(&wg.mu);
	return rc;
}

static void *bg(void *arg)
{
	uint64_t a, b;
	walk_total(arg, &a, &b);
	return NULL;
}

void walk_start_background(struct mnt *m)
{
	pthread_mutex_lock(&wg.mu);
	bool skip = wsf.busy || sflight_fresh(&wsf, m->o.ttl);
	pthread_mutex_unlock(&wg.mu);
	if (skip)
		return;
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, bg, m) != 0)
		log_warn("cannot start the prefetch walk; continuing without it");
	pthread_attr_destroy(&at);
}

void walk_shutdown(void)
{
	pthread_mutex_lock(&wg.mu);
	sflight_wait_idle(&wg, &wsf);
	wsf.busy = true; /* claimed for good: no new walks */
	usage_put(last_usage);
	last_usage = NULL;
	pthread_mutex_unlock(&wg.mu);
}
