/* names_cache.c — the named cache: what a name points at right now.
 *
 * Catalog, each repository's tag list and each tag's digest can change at
 * any time, so they are kept for --ttl seconds and then fetched again (the
 * kernel's entry/attr timeouts for these nodes are the same ttl, see
 * kinds.c). Snapshots (struct catalog, struct tagset) are immutable lists
 * shared by reference count, so a readdir keeps a consistent view while a
 * refresh installs a new one. A tag's resolution (digest, mtime) lives in
 * its tagset entry and is filled lazily, in parallel batches.
 *
 * Single flight: while one thread fetches something, others that need the
 * same thing wait for its result instead of sending the same request (one
 * mutex + one condition variable for the whole cache; waits are short and
 * rare, so broadcast-to-all is fine). A failed fetch is not cached: the next
 * operation tries again, which is how the mount recovers when the registry
 * comes back. */
#include "mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

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

struct ncache {
	struct regfs_client *client;
	const struct mount_opts *o;  /* ttl, max_parallel */
	struct fs_stats *st;
	struct mcache *mc;           /* where resolved manifests go */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct catalog *cat;
	double cat_at;
	bool cat_busy;
	struct repo_ent *b[NBUCKETS];
};

enum { T_IDLE = 0, T_RESOLVING = 1 };

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmptag(const void *a, const void *b)
{
	return strcmp(((const struct tag_ent *)a)->tag, ((const struct tag_ent *)b)->tag);
}

struct ncache *ncache_new(struct regfs_client *cl, const struct mount_opts *o,
			  struct fs_stats *st, struct mcache *mc)
{
	struct ncache *nc = calloc(1, sizeof *nc);
	if (!nc)
		return NULL;
	nc->client = cl;
	nc->o = o;
	nc->st = st;
	nc->mc = mc;
	pthread_mutex_init(&nc->mu, NULL);
	pthread_cond_init(&nc->cv, NULL);
	nc->cat_at = -1e18;
	return nc;
}

void catalog_put(struct catalog *c)
{
	if (!c || atomic_fetch_sub(&c->ref, 1) != 1)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c);
}

void tagset_put(struct tagset *t)
{
	if (!t || atomic_fetch_sub(&t->ref, 1) != 1)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->t[i].tag);
	free(t->t);
	free(t);
}

void ncache_free(struct ncache *nc)
{
	if (!nc)
		return;
	catalog_put(nc->cat);
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct repo_ent *r = nc->b[i], *nx; r; r = nx) {
			nx = r->next;
			tagset_put(r->ts);
			for (size_t k = 0; k < r->nmf; k++)
				free(r->mf[k]);
			free(r->mf);
			free(r->repo);
			free(r);
		}
	pthread_mutex_destroy(&nc->mu);
	pthread_cond_destroy(&nc->cv);
	free(nc);
}

/* ---- catalog ---- */

int ncache_catalog(struct ncache *nc, struct catalog **out)
{
	pthread_mutex_lock(&nc->mu);
	for (;;) {
		if (nc->cat && now_mono() - nc->cat_at < nc->o->ttl) {
			atomic_fetch_add(&nc->cat->ref, 1);
			*out = nc->cat;
			pthread_mutex_unlock(&nc->mu);
			atomic_fetch_add(&nc->st->nc_hits, 1);
			return 0;
		}
		if (!nc->cat_busy)
			break;
		fs_wait(&nc->cv, &nc->mu);
	}
	nc->cat_busy = true;
	pthread_mutex_unlock(&nc->mu);
	atomic_fetch_add(&nc->st->nc_misses, 1);

	struct regfs_strv v = {0};
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_catalog(nc->client, &v, &e);
	struct catalog *c = NULL;
	if (rc == 0) {
		c = calloc(1, sizeof *c);
		if (!c) {
			regfs_strv_free(&v);
			rc = -ENOMEM;
		} else {
			if (v.n > 1) /* qsort(NULL, 0) is undefined */
				qsort(v.v, v.n, sizeof *v.v, cmpstr);
			c->names = v.v;
			c->n = v.n;
			atomic_store(&c->ref, 2); /* the cache's and the caller's */
		}
	} else {
		rc = fs_client_errno(rc, &e, "listing the catalog");
	}
	pthread_mutex_lock(&nc->mu);
	nc->cat_busy = false;
	if (c) {
		catalog_put(nc->cat);
		nc->cat = c;
		nc->cat_at = c->at = now_mono();
		*out = c;
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	return rc;
}

/* First index i with names[i] >= key. */
static size_t lower_bound(const struct catalog *c, const char *key)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(c->names[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int catalog_classify(const struct catalog *c, const char *path)
{
	int r = 0;
	size_t i = lower_bound(c, path);
	if (i < c->n && strcmp(c->names[i], path) == 0)
		r |= 1;
	size_t pl = strlen(path);
	char *prefix = malloc(pl + 2);
	if (!prefix)
		return r;
	memcpy(prefix, path, pl);
	prefix[pl] = '/';
	prefix[pl + 1] = 0;
	/* Names sharing a prefix are contiguous in sorted order. */
	i = lower_bound(c, prefix);
	if (i < c->n && strncmp(c->names[i], prefix, pl + 1) == 0)
		r |= 2;
	free(prefix);
	return r;
}

int catalog_children(const struct catalog *c, const char *path, char ***names, size_t *n)
{
	size_t pl = strlen(path);
	char *prefix = malloc(pl + 2);
	if (!prefix)
		return -ENOMEM;
	memcpy(prefix, path, pl);
	if (pl)
		prefix[pl++] = '/';
	prefix[pl] = 0;
	size_t cap = 16, k = 0;
	char **v = malloc(cap * sizeof *v);
	if (!v) {
		free(prefix);
		return -ENOMEM;
	}
	for (size_t i = lower_bound(c, prefix); i < c->n; i++) {
		const char *s = c->names[i];
		if (strncmp(s, prefix, pl) != 0)
			break;
		const char *comp = s + pl, *slash = strchr(comp, '/');
		size_t cl = slash ? (size_t)(slash - comp) : strlen(comp);
		if (cl == 0)
			continue;
		if (k == cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		v[k] = strndup(comp, cl);
		if (v[k])
			k++;
	}
	free(prefix);
	/* "a/b", "a/b-c", "a/b/c": the same component need not be adjacent. */
	if (k > 1) /* qsort(NULL, 0) is undefined */
		qsort(v, k, sizeof *v, cmpstr);
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u && strcmp(v[u - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[u++] = v[i];
	}
	*names = v;
	*n = u;
	return 0;
}

/* ---- tag lists ---- */

static struct repo_ent *repo_ent(struct ncache *nc, const char *repo)
{
	size_t b = fnv(repo) % NBUCKETS;
	for (struct repo_ent *r = nc->b[b]; r; r = r->next)
		if (strcmp(r->repo, repo) == 0)
			return r;
	struct repo_ent *r = calloc(1, sizeof *r);
	if (!r || !(r->repo = strdup(repo))) {
		free(r);
		return NULL;
	}
	r->fetched = -1e18;
	r->mf_at = -1e18;
	r->next = nc->b[b];
	nc->b[b] = r;
	return r;
}

/* Takes ownership of the strings in v. */
static struct tagset *tagset_from(struct regfs_strv *v)
{
	struct tagset *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->t = calloc(v->n ? v->n : 1, sizeof *t->t);
	if (!t->t) {
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < v->n; i++) {
		t->t[i].tag = v->v[i];
		v->v[i] = NULL;
	}
	t->n = v->n;
	if (t->n > 1) /* qsort(NULL, 0) is undefined */
		qsort(t->t, t->n, sizeof *t->t, cmptag);
	atomic_store(&t->ref, 1);
	return t;
}

/* A resolution younger than the ttl is still an answer: a tag list fetched
 * again (the ttl passed for the list, or a write refetched it) keeps the
 * digests of the tags it still holds, so one rm does not cost a GET per
 * tag of the repository. Caller holds mu. */
static bool resolution_fresh(struct ncache *nc, const struct tag_ent *te)
{
	return te->resolved_at > 0 && te->rc == 0 && now_mono() - te->resolved_at < nc->o->ttl;
}

/* Caller holds mu. Copies the resolutions of `old` into the unresolved
 * entries of `ts` with the same tag (both sorted by tag). */
static void carry_resolutions(const struct tagset *old, struct tagset *ts)
{
	if (!old)
		return;
	size_t i = 0, j = 0;
	while (i < old->n && j < ts->n) {
		int c = strcmp(old->t[i].tag, ts->t[j].tag);
		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0) {
			j++;
			continue;
		}
		const struct tag_ent *o = &old->t[i++];
		struct tag_ent *n = &ts->t[j++];
		/* An expired one is carried too: it is re-validated (cheaply, see
		 * revalidate) before anyone uses it. */
		if (n->resolved_at > 0 || o->state != T_IDLE || o->resolved_at <= 0 || o->rc ||
		    !o->digest[0])
			continue;
		memcpy(n->digest, o->digest, sizeof n->digest);
		n->mtime = o->mtime;
		n->mtime_src = o->mtime_src;
		n->resolved_at = o->resolved_at;
		n->rc = 0;
	}
}

/* Caller holds mu. Installs a fresh tagset (takes the caller's reference). */
static void install(struct repo_ent *r, struct tagset *ts)
{
	carry_resolutions(r->ts, ts);
	tagset_put(r->ts);
	r->ts = ts;
	r->fetched = ts->at = now_mono();
}

int ncache_tags(struct ncache *nc, const char *repo, struct tagset **out)
{
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = repo_ent(nc, repo);
	if (!r) {
		pthread_mutex_unlock(&nc->mu);
		return -ENOMEM;
	}
	for (;;) {
		if (r->ts && now_mono() - r->fetched < nc->o->ttl) {
			atomic_fetch_add(&r->ts->ref, 1);
			*out = r->ts;
			pthread_mutex_unlock(&nc->mu);
			atomic_fetch_add(&nc->st->nc_hits, 1);
			return 0;
		}
		if (!r->busy)
			break;
		fs_wait(&nc->cv, &nc->mu);
	}
	r->busy = true;
	pthread_mutex_unlock(&nc->mu);
	atomic_fetch_add(&nc->st->nc_misses, 1);

	struct regfs_strv v = {0};
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_tags(nc->client, repo, &v, &e);
	struct tagset *ts = NULL;
	if (rc == 0) {
		ts = tagset_from(&v);
		regfs_strv_free(&v);
		if (!ts)
			rc = -ENOMEM;
	} else {
		char what[300];
		snprintf(what, sizeof what, "listing the tags of %s", repo);
		rc = fs_client_errno(rc, &e, what);
	}
	pthread_mutex_lock(&nc->mu);
	r->busy = false;
	if (ts) {
		atomic_fetch_add(&ts->ref, 1);
		install(r, ts);
		*out = ts;
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	return rc;
}

int ncache_prefetch_tags(struct ncache *nc, char **repos, size_t n)
{
	struct regfs_err e = {0};
	if (regfs_client_has_ext(nc->client, "bulk-tags")) {
		/* One paginated walk gives every tag with its digest and push time. */
		struct regfs_repo_tags *rt = NULL;
		size_t nr = 0;
		loop_may_block();
		int rc = regfs_client_bulk_tags(nc->client, &rt, &nr, &e);
		if (rc == 0) {
			atomic_fetch_add(&nc->st->nc_misses, 1);
			pthread_mutex_lock(&nc->mu);
			for (size_t i = 0; i < nr; i++) {
				struct repo_ent *r = repo_ent(nc, rt[i].name);
				if (!r || r->busy)
					continue;
				struct tagset *ts = calloc(1, sizeof *ts);
				if (!ts || !(ts->t = calloc(rt[i].n_tags + 1, sizeof *ts->t))) {
					free(ts);
					continue;
				}
				for (size_t j = 0; j < rt[i].n_tags; j++) {
					struct tag_ent *te = &ts->t[ts->n];
					te->tag = rt[i].tags[j].tag;
					rt[i].tags[j].tag = NULL;
					if (!te->tag)
						continue;
					snprintf(te->digest, sizeof te->digest, "%s", rt[i].tags[j].digest);
					tag_time_set(te, rt[i].tags[j].pushed, 0);
					te->resolved_at = te->digest[0] ? now_mono() : 0;
					ts->n++;
				}
				if (ts->n > 1) /* qsort(NULL, 0) is undefined */
					qsort(ts->t, ts->n, sizeof *ts->t, cmptag);
				atomic_store(&ts->ref, 1);
				install(r, ts);
			}
			pthread_cond_broadcast(&nc->cv);
			pthread_mutex_unlock(&nc->mu);
			regfs_repo_tags_free(rt, nr);
			return 0;
		}
		if (rc != -ENOTSUP)
			return fs_client_errno(rc, &e, "listing all tags (bulk-tags)");
		regfs_err_clear(&e);
	}

	struct regfs_tags_req *reqs = calloc(n ? n : 1, sizeof *reqs);
	struct repo_ent **ents = calloc(n ? n : 1, sizeof *ents);
	if (!reqs || !ents) {
		free(reqs);
		free(ents);
		return -ENOMEM;
	}
	size_t k = 0;
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < n; i++) {
		struct repo_ent *r = repo_ent(nc, repos[i]);
		if (!r || r->busy || (r->ts && now_mono() - r->fetched < nc->o->ttl))
			continue;
		r->busy = true;
		ents[k] = r;
		reqs[k].repo = r->repo; /* r lives until unmount */
		k++;
	}
	pthread_mutex_unlock(&nc->mu);
	int rc = 0;
	if (k) {
		atomic_fetch_add(&nc->st->nc_misses, k);
		loop_may_block();
		regfs_client_tags_many(nc->client, reqs, k);
	}
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < k; i++) {
		ents[i]->busy = false;
		if (reqs[i].rc == 0) {
			struct tagset *ts = tagset_from(&reqs[i].tags);
			if (ts)
				install(ents[i], ts);
		} else if (rc == 0) {
			rc = reqs[i].rc;
			e = reqs[i].err;
		}
		regfs_strv_free(&reqs[i].tags);
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	free(reqs);
	free(ents);
	if (rc && rc != -ENOENT)
		return fs_client_errno(rc, &e, "listing tags");
	return 0;
}

void ncache_invalidate(struct ncache *nc, const char *repo)
{
	pthread_mutex_lock(&nc->mu);
	nc->cat_at = -1e18;
	if (repo) {
		struct repo_ent *r = repo_ent(nc, repo);
		if (r)
			r->fetched = r->mf_at = -1e18;
	}
	pthread_mutex_unlock(&nc->mu);
}

void ncache_invalidate_tags(struct ncache *nc, const char *repo, const char *const *tags, size_t n)
{
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = repo_ent(nc, repo);
	if (r) {
		r->fetched = r->mf_at = -1e18;
		for (size_t k = 0; r->ts && k < n; k++) {
			struct tag_ent key = {.tag = (char *)tags[k]};
			struct tag_ent *te = bsearch(&key, r->ts->t, r->ts->n, sizeof *r->ts->t, cmptag);
			/* One being resolved right now keeps its answer until the
			 * next list: its resolver publishes after our change. */
			if (te && te->state == T_IDLE) {
				te->resolved_at = 0;
				te->digest[0] = 0;
			}
		}
	}
	pthread_mutex_unlock(&nc->mu);
}

void ncache_tag_removed(struct ncache *nc, const char *repo, const char *tag)
{
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = repo_ent(nc, repo);
	struct tagset *old = r ? r->ts : NULL;
	struct tagset *ts = old ? calloc(1, sizeof *ts) : NULL;
	if (r)
		r->mf_at = -1e18; /* an untagged manifest may now be listed */
	if (ts && !(ts->t = calloc(old->n ? old->n : 1, sizeof *ts->t))) {
		free(ts);
		ts = NULL;
	}
	bool ok = ts != NULL;
	for (size_t i = 0; ok && i < old->n; i++) {
		if (strcmp(old->t[i].tag, tag) == 0)
			continue;
		struct tag_ent *te = &ts->t[ts->n];
		if (!(te->tag = strdup(old->t[i].tag))) {
			ok = false;
			break;
		}
		ts->n++;
		if (old->t[i].state != T_IDLE)
			continue; /* its resolver publishes into the old set */
		memcpy(te->digest, old->t[i].digest, sizeof te->digest);
		te->mtime = old->t[i].mtime;
		te->mtime_src = old->t[i].mtime_src;
		te->resolved_at = old->t[i].resolved_at;
		te->rc = old->t[i].rc;
	}
	if (ok) {
		/* Same age as the list it comes from: the ttl still counts from
		 * when the registry answered. */
		atomic_store(&ts->ref, 1);
		ts->at = old->at;
		tagset_put(r->ts);
		r->ts = ts;
	} else if (r) {
		if (ts) {
			atomic_store(&ts->ref, 1);
			tagset_put(ts);
		}
		r->fetched = -1e18; /* out of memory: fetch the list again instead */
	}
	pthread_mutex_unlock(&nc->mu);
}

int ncache_repo_manifests(struct ncache *nc, const char *repo, char ***out, size_t *n)
{
	if (!regfs_client_has_ext(nc->client, "repo-manifests"))
		return -ENOTSUP;
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = repo_ent(nc, repo);
	if (!r) {
		pthread_mutex_unlock(&nc->mu);
		return -ENOMEM;
	}
	while (r->mf_busy)
		fs_wait(&nc->cv, &nc->mu);
	int rc = 0;
	if (now_mono() - r->mf_at >= nc->o->ttl) {
		r->mf_busy = true;
		pthread_mutex_unlock(&nc->mu);
		struct regfs_tag_info *ti = NULL;
		size_t nt = 0;
		struct regfs_err e = {0};
		loop_may_block();
		rc = regfs_client_repo_manifests(nc->client, repo, &ti, &nt, &e);
		char **v = NULL;
		if (rc == 0 && (v = calloc(nt ? nt : 1, sizeof *v))) {
			for (size_t i = 0; i < nt; i++)
				v[i] = strdup(ti[i].digest);
		} else if (rc == 0) {
			rc = -ENOMEM;
		} else {
			char what[300];
			snprintf(what, sizeof what, "listing the manifests of %s (repo-manifests)", repo);
			rc = fs_client_errno(rc, &e, what);
		}
		for (size_t i = 0; i < nt; i++)
			free(ti[i].tag);
		free(ti);
		pthread_mutex_lock(&nc->mu);
		r->mf_busy = false;
		if (rc == 0) {
			for (size_t k = 0; k < r->nmf; k++)
				free(r->mf[k]);
			free(r->mf);
			r->mf = v;
			r->nmf = nt;
			r->mf_at = now_mono();
		}
		pthread_cond_broadcast(&nc->cv);
	}
	if (rc == 0) {
		*out = calloc(r->nmf ? r->nmf : 1, sizeof **out);
		*n = 0;
		for (size_t i = 0; *out && i < r->nmf; i++)
			if (r->mf[i] && ((*out)[*n] = strdup(r->mf[i])))
				(*n)++;
		if (!*out)
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&nc->mu);
	return rc;
}

/* ---- tag -> digest ---- */

struct created_job {
	struct mcache *mc;
	const char **repos;
	const struct mentry **ents;
};

static void created_one(size_t i, void *arg)
{
	struct created_job *j = arg;
	if (j->ents[i])
		mcache_created(j->mc, j->repos[i], j->ents[i]);
}

#define RESOLVE_CHUNK 512

struct tagdig {
	const char *tag;
	const char *digest;
};

static int cmptagdig(const void *a, const void *b)
{
	return strcmp(((const struct tagdig *)a)->tag, ((const struct tagdig *)b)->tag);
}

/* repo-manifests (regfs-registry): is each of reqs[idx[0..n)] (all of
 * `repo`) still on the digest its entry has? One request for all of them.
 * Sets ok[i] for the confirmed ones; on failure confirms none. */
static void confirm_by_ext(struct ncache *nc, const char *repo, struct regfs_manifest_req *reqs,
			   struct tag_ent **mine, const size_t *idx, size_t n, bool *ok)
{
	struct regfs_tag_info *ti = NULL;
	size_t nt = 0, np = 0, cap = 0;
	struct regfs_err e = {0};
	if (regfs_client_repo_manifests(nc->client, repo, &ti, &nt, &e) != 0)
		return;
	for (size_t i = 0; i < nt; i++)
		for (const char *t = ti[i].tag; t && *t; t = strchr(t, ',') ? strchr(t, ',') + 1 : "")
			cap++;
	struct tagdig *pairs = calloc(cap ? cap : 1, sizeof *pairs);
	char **split = calloc(nt ? nt : 1, sizeof *split);
	for (size_t i = 0; pairs && split && i < nt; i++) {
		if (!ti[i].tag || !(split[i] = strdup(ti[i].tag)))
			continue;
		char *save = NULL;
		for (char *t = strtok_r(split[i], ",", &save); t && np < cap; t = strtok_r(NULL, ",", &save))
			pairs[np++] = (struct tagdig){t, ti[i].digest};
	}
	if (np > 1) /* qsort(NULL, 0) is undefined */
		qsort(pairs, np, sizeof *pairs, cmptagdig);
	for (size_t k = 0; pairs && k < n; k++) {
		struct tagdig key = {reqs[idx[k]].ref, NULL};
		const struct tagdig *f = np ? bsearch(&key, pairs, np, sizeof *pairs, cmptagdig) : NULL;
		ok[idx[k]] = f && strcmp(f->digest, mine[idx[k]]->digest) == 0;
	}
	for (size_t i = 0; split && i < nt; i++)
		free(split[i]);
	free(split);
	free(pairs);
	regfs_tag_info_free(ti, nt);
}

/* HEAD per tag: confirmed when the Docker-Content-Digest is the digest the
 * entry has (that digest was verified against the bytes when resolved). A
 * definite failure (404, 5xx, timeout) is published as the entry's error
 * here, without a GET; no digest header at all leaves it for a GET. */
static void confirm_by_head(struct ncache *nc, struct regfs_manifest_req *reqs,
			    struct tag_ent **mine, size_t k,
			    bool *ok, bool *failed, int64_t *lm)
{
	struct regfs_manifest_req *h = calloc(k ? k : 1, sizeof *h);
	if (!h)
		return;
	for (size_t i = 0; i < k; i++)
		h[i] = (struct regfs_manifest_req){.repo = reqs[i].repo, .ref = reqs[i].ref};
	loop_may_block();
	regfs_client_manifest_heads(nc->client, h, k);
	for (size_t i = 0; i < k; i++) {
		if (!mine[i]->digest[0])
			continue;
		if (h[i].rc == 0) {
			ok[i] = strcmp(h[i].resp.digest, mine[i]->digest) == 0;
			lm[i] = h[i].resp.last_modified;
		} else if (h[i].rc != -EPROTO) {
			char what[400];
			snprintf(what, sizeof what, "re-validating %s:%s", reqs[i].repo, reqs[i].ref);
			mine[i]->rc = fs_client_errno(h[i].rc, &h[i].err, what);
			failed[i] = true;
		}
		regfs_manifest_resp_free(&h[i].resp);
	}
	free(h);
}

/* Entries claimed by resolve_entries that were resolved before (their
 * resolution expired, or came along with a refetched tag list): confirm
 * them without fetching manifests — with regfs-registry's repo-manifests
 * extension one request per repository, elsewhere a HEAD per tag — and
 * publish those confirmed or failed. Returns how many are left for a GET,
 * moved to the front of reqs/mine. */
static size_t revalidate(struct ncache *nc, struct regfs_manifest_req *reqs, struct tag_ent **mine,
			 size_t k)
{
	size_t nknown = 0;
	for (size_t i = 0; i < k; i++)
		nknown += mine[i]->digest[0] != 0;
	if (!nknown)
		return k;
	bool *ok = calloc(k, sizeof *ok), *failed = calloc(k, sizeof *failed);
	size_t *idx = calloc(k, sizeof *idx);
	int64_t *lm = calloc(k, sizeof *lm);
	if (!ok || !failed || !idx || !lm)
		goto out;
	if (regfs_client_has_ext(nc->client, "repo-manifests")) {
		/* Runs of one repository (the common case: one listing). */
		for (size_t i = 0; i < k;) {
			size_t n = 0, j = i;
			for (; j < k && strcmp(reqs[j].repo, reqs[i].repo) == 0; j++)
				if (mine[j]->digest[0])
					idx[n++] = j;
			if (n) {
				loop_may_block();
				confirm_by_ext(nc, reqs[i].repo, reqs, mine, idx, n, ok);
			}
			i = j;
		}
	} else {
		confirm_by_head(nc, reqs, mine, k, ok, failed, lm);
	}
	size_t left = 0;
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < k; i++) {
		if (ok[i]) {
			/* The same digest: its time and source stand, unless the
			 * registry says when the tag was pushed (Last-Modified); an
			 * unknown time is renewed as a fresh resolution's is. */
			struct tag_ent *te = mine[i];
			if (lm[i] > 0 || te->mtime_src == MTIME_UNKNOWN)
				tag_time_set(te, lm[i], te->mtime_src == MTIME_CREATED ? te->mtime : 0);
			mine[i]->rc = 0;
			mine[i]->resolved_at = now_mono();
			mine[i]->state = T_IDLE;
		} else if (failed[i]) {
			mine[i]->resolved_at = 0;
			mine[i]->digest[0] = 0;
			mine[i]->state = T_IDLE;
		} else {
			reqs[left] = reqs[i];
			mine[left++] = mine[i];
		}
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	k = left;
out:
	free(ok);
	free(failed);
	free(idx);
	free(lm);
	return k;
}

static void resolve_chunk(struct ncache *nc, struct regfs_manifest_req *reqs, struct tag_ent **mine,
			  const struct mentry **me, const char **mrepo, size_t c0, size_t c1);

/* Resolves the entries (each of repos[i]) that no one resolved yet, in
 * parallel batches, then waits for those others are resolving. */
static void resolve_entries(struct ncache *nc, const char **repos, struct tag_ent **ents, size_t n)
{
	struct regfs_manifest_req *reqs = calloc(n ? n : 1, sizeof *reqs);
	struct tag_ent **mine = calloc(n ? n : 1, sizeof *mine);
	const struct mentry **me = calloc(n ? n : 1, sizeof *me);
	const char **mrepo = calloc(n ? n : 1, sizeof *mrepo);
	size_t k = 0;
	if (!reqs || !mine || !me || !mrepo)
		goto out;
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < n; i++) {
		if (resolution_fresh(nc, ents[i]) || ents[i]->state != T_IDLE)
			continue;
		ents[i]->state = T_RESOLVING;
		mine[k] = ents[i];
		reqs[k].repo = repos[i];
		reqs[k].ref = ents[i]->tag;
		k++;
	}
	pthread_mutex_unlock(&nc->mu);

	k = revalidate(nc, reqs, mine, k);
	/* In chunks: a whole registry's tags (10,000 and more) would otherwise
	 * hold every response body at once, and the fragmentation they leave
	 * behind is most of the daemon's peak memory. */
	for (size_t c0 = 0; c0 < k; c0 += RESOLVE_CHUNK) {
		size_t c1 = k - c0 < RESOLVE_CHUNK ? k : c0 + RESOLVE_CHUNK;
		resolve_chunk(nc, reqs, mine, me, mrepo, c0, c1);
	}
	/* Entries another thread is resolving: wait for them. */
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < n; i++)
		while (ents[i]->state == T_RESOLVING)
			fs_wait(&nc->cv, &nc->mu);
	pthread_mutex_unlock(&nc->mu);
out:
	free(reqs);
	free(mine);
	free(me);
	free(mrepo);
}

/* Resolves reqs[c0..c1) (their entries claimed by the caller): one parallel
 * batch of manifest GETs, then the image created times where the registry
 * sent no Last-Modified, then publishes the results. */
static void resolve_chunk(struct ncache *nc, struct regfs_manifest_req *reqs, struct tag_ent **mine,
			  const struct mentry **me, const char **mrepo, size_t c0, size_t c1)
{
	loop_may_block();
	regfs_client_manifests(nc->client, reqs + c0, c1 - c0);
	size_t nneed = 0;
	for (size_t i = c0; i < c1; i++) {
		if (reqs[i].rc != 0) {
			char what[400];
			snprintf(what, sizeof what, "resolving %s:%s", reqs[i].repo, reqs[i].ref);
			mine[i]->rc = fs_client_errno(reqs[i].rc, &reqs[i].err, what);
			/* A failed re-validation is no answer: an old digest must not
			 * count as resolved (the delete fallback relies on it). */
			pthread_mutex_lock(&nc->mu);
			mine[i]->resolved_at = 0;
			mine[i]->digest[0] = 0;
			pthread_mutex_unlock(&nc->mu);
			continue;
		}
		const struct mentry *e = NULL;
		int rc = mcache_put(nc->mc, reqs[i].resp.digest, reqs[i].resp.data,
				    reqs[i].resp.len, reqs[i].resp.content_type, &e);
		mine[i]->rc = rc;
		if (rc == 0 && !tag_time_plausible(reqs[i].resp.last_modified)) {
			/* No Last-Modified (registry:2): the image's created time. */
			me[nneed] = e;
			mrepo[nneed] = reqs[i].repo;
			nneed++;
		}
	}
	if (nneed) {
		struct created_job j = {nc->mc, mrepo, me};
		par_for(nneed, nc->o->max_parallel, created_one, &j);
	}
	pthread_mutex_lock(&nc->mu);
	for (size_t i = c0; i < c1; i++) {
		if (mine[i]->rc == 0) {
			snprintf(mine[i]->digest, sizeof mine[i]->digest, "%s", reqs[i].resp.digest);
			int64_t lm = reqs[i].resp.last_modified, cr = 0;
			if (!tag_time_plausible(lm)) {
				const struct mentry *e = mcache_peek(nc->mc, reqs[i].resp.digest);
				cr = e ? __atomic_load_n(&e->created, __ATOMIC_ACQUIRE) : 0;
			}
			tag_time_set(mine[i], lm, cr);
			mine[i]->resolved_at = now_mono();
		}
		mine[i]->state = T_IDLE;
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	for (size_t i = c0; i < c1; i++)
		regfs_manifest_resp_free(&reqs[i].resp);
}

int ncache_resolve(struct ncache *nc, const char *repo, const char *tag,
		   char digest[REGFS_DIGEST_MAX],
		   int64_t *mtime)
{
	struct tagset *ts;
	int rc = ncache_tags(nc, repo, &ts);
	if (rc)
		return rc;
	struct tag_ent key = {.tag = (char *)tag};
	struct tag_ent *te = bsearch(&key, ts->t, ts->n, sizeof *ts->t, cmptag);
	if (!te) {
		tagset_put(ts);
		return -ENOENT;
	}
	resolve_entries(nc, &repo, &te, 1);
	pthread_mutex_lock(&nc->mu);
	if (te->resolved_at > 0) {
		memcpy(digest, te->digest, REGFS_DIGEST_MAX);
		if (mtime)
			*mtime = te->mtime;
		rc = 0;
	} else {
		rc = te->rc ? te->rc : -EIO;
	}
	pthread_mutex_unlock(&nc->mu);
	tagset_put(ts);
	return rc;
}

void ncache_resolve_many(struct ncache *nc, char **repos, struct tagset **sets, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += sets[i] ? sets[i]->n : 0;
	struct tag_ent **ents = calloc(total ? total : 1, sizeof *ents);
	const char **rp = calloc(total ? total : 1, sizeof *rp);
	if (ents && rp) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; sets[i] && j < sets[i]->n; j++) {
				ents[k] = &sets[i]->t[j];
				rp[k++] = repos[i];
			}
		resolve_entries(nc, rp, ents, k);
	}
	free(ents);
	free(rp);
}

int ncache_resolve_all(struct ncache *nc, const char *repo, struct tagset *ts)
{
	char *r = (char *)repo;
	ncache_resolve_many(nc, &r, &ts, 1);
	return 0;
}

/* ---- bulk-manifests (regfs-registry): the whole registry in a few pages ---- */

/* A repository this walk has claimed (busy, mf_busy): readers of its tag
 * list or manifest list wait for its page instead of sending their own
 * request (the same single flight as above), and the claim is released
 * when the page arrives or the walk ends. */
struct bulk_claim {
	struct repo_ent *r;
	bool open;
};

struct bulk_ctx {
	struct ncache *nc;
	struct bulk_claim *cl;    /* sorted by r */
	size_t ncl;
	size_t repos, manifests, without_content; /* for the log line */
	double put_s;             /* time in mcache_put_mem (parsing) */
};

static int cmpclaim(const void *a, const void *b)
{
	const struct repo_ent *x = ((const struct bulk_claim *)a)->r;
	const struct repo_ent *y = ((const struct bulk_claim *)b)->r;
	return x < y ? -1 : x > y;
}

/* Caller holds mu. */
static struct bulk_claim *claim_of(struct bulk_ctx *bx, struct repo_ent *r)
{
	struct bulk_claim key = {.r = r};
	struct bulk_claim *c = bsearch(&key, bx->cl, bx->ncl, sizeof *bx->cl, cmpclaim);
	return c && c->open ? c : NULL;
}

/* Installs one repository: every manifest's bytes first (verified by the
 * client; kept in memory only, a remount gets them again in a few
 * requests), so that once its listings are visible a reader
 * finds the manifests cached; then its tagset (every tag resolved: digest
 * and push time, as the bulk-tags branch of ncache_prefetch_tags does) and
 * its repo-manifests list (as ncache_repo_manifests stores it). A manifest
 * without content is left for the walk's mcache_prefetch (GET by digest). */
static int bulk_one(const struct regfs_repo_bulk *rb, void *arg)
{
	struct bulk_ctx *bx = arg;
	struct ncache *nc = bx->nc;
	double t0 = now_mono();
	for (size_t i = 0; i < rb->n_manifests; i++) {
		const struct regfs_manifest_info *mi = &rb->manifests[i];
		if (!mi->content) {
			bx->without_content++;
			continue;
		}
		const struct mentry *e = NULL;
		/* One that does not parse is logged by mcache and fetched again by
		 * digest in the walk, which reports it where du needs it. Most of
		 * the time here is the disk cache's file writes, not parsing
		 * (1,000 x 10: 1.2-1.7 s with them, 0.3 s with --cache-size 0);
		 * four threads did not make it faster on this machine. */
		if (mcache_put_mem(nc->mc, mi->digest, mi->content, mi->len, mi->media_type,
		    &e) == -ENOMEM)
			return -ENOMEM;
		bx->manifests++;
	}
	bx->put_s += now_mono() - t0;

	struct tagset *ts = calloc(1, sizeof *ts);
	char **mf = calloc(rb->n_manifests ? rb->n_manifests : 1, sizeof *mf);
	if (!ts || !mf || !(ts->t = calloc(rb->n_tags + 1, sizeof *ts->t))) {
		free(ts);
		free(mf);
		return -ENOMEM;
	}
	double now = now_mono();
	for (size_t j = 0; j < rb->n_tags; j++) {
		struct tag_ent *te = &ts->t[ts->n];
		if (!(te->tag = strdup(rb->tags[j].tag)))
			continue;
		snprintf(te->digest, sizeof te->digest, "%s", rb->tags[j].digest);
		tag_time_set(te, rb->tags[j].pushed, 0);
		te->resolved_at = now;
		ts->n++;
	}
	if (ts->n > 1) /* qsort(NULL, 0) is undefined */
		qsort(ts->t, ts->n, sizeof *ts->t, cmptag);
	atomic_store(&ts->ref, 1);
	size_t nmf = 0;
	for (size_t i = 0; i < rb->n_manifests; i++)
		if ((mf[nmf] = strdup(rb->manifests[i].digest)))
			nmf++;

	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = repo_ent(nc, rb->name);
	struct bulk_claim *cl = r ? claim_of(bx, r) : NULL;
	if (cl) {
		r->busy = r->mf_busy = false;
		cl->open = false;
	}
	/* Busy without our claim: another thread is fetching it; theirs wins. */
	if (r && !r->busy) {
		install(r, ts);
		ts = NULL;
	}
	if (r && !r->mf_busy) {
		for (size_t k = 0; k < r->nmf; k++)
			free(r->mf[k]);
		free(r->mf);
		r->mf = mf;
		r->nmf = nmf;
		r->mf_at = now_mono();
		mf = NULL;
		nmf = 0;
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	tagset_put(ts);
	for (size_t k = 0; k < nmf; k++)
		free(mf[k]);
	free(mf);
	bx->repos++;
	return 0;
}

int ncache_prefetch_bulk(struct ncache *nc, char **repos, size_t n)
{
	if (!regfs_client_has_ext(nc->client, "bulk-manifests"))
		return -ENOTSUP;
	struct bulk_ctx bx = {.nc = nc};
	bx.cl = calloc(n ? n : 1, sizeof *bx.cl);
	if (!bx.cl)
		return -ENOMEM;
	/* Claim the repositories whose tag list is not fresh and that no one
	 * is fetching (a fresh one is simply replaced when its page comes). */
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < n; i++) {
		struct repo_ent *r = repo_ent(nc, repos[i]);
		if (!r || r->busy || r->mf_busy || (r->ts && now_mono() - r->fetched < nc->o->ttl))
			continue;
		r->busy = r->mf_busy = true;
		bx.cl[bx.ncl++] = (struct bulk_claim){r, true};
	}
	pthread_mutex_unlock(&nc->mu);
	if (bx.ncl > 1) /* qsort(NULL, 0) is undefined */
		qsort(bx.cl, bx.ncl, sizeof *bx.cl, cmpclaim);

	struct regfs_err e = {0};
	double t0 = now_mono();
	atomic_fetch_add(&nc->st->nc_misses, 1);
	loop_may_block();
	int rc = regfs_client_bulk_manifests(nc->client, bulk_one, &bx, &e);
	log_debug("bulk-manifests: %zu repositories, %zu manifests (%zu to fetch by digest), "
		  "%.2f s (%.2f s storing manifests), rc %d", bx.repos, bx.manifests,
		  bx.without_content, now_mono() - t0, bx.put_s, rc);

	/* Claims no page answered (deleted since the catalog, or the walk
	 * failed): release them, their readers fetch for themselves. */
	pthread_mutex_lock(&nc->mu);
	for (size_t i = 0; i < bx.ncl; i++)
		if (bx.cl[i].open)
			bx.cl[i].r->busy = bx.cl[i].r->mf_busy = false;
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	free(bx.cl);
	if (rc)
		return fs_client_errno(rc, &e, "listing all manifests (bulk-manifests)");
	return 0;
}
