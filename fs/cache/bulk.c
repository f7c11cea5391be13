/* bulk.c — the bulk-manifests extension (regfs-registry) in the names
 * cache: the whole registry (tag lists, manifest lists, manifests) in a few
 * pages. */
#include "names_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>
#include <regfs/log.h>

/* ---- bulk-manifests (regfs-registry): the whole registry in a few pages ---- */

/* A repository this walk has claimed (sf and mf_sf busy): readers of its tag
 * list or manifest list wait for its page instead of sending their own
 * request (the same single flight as above), and the claim is released
 * when the page arrives or the walk ends. */
struct bulk_claim {
	struct repo_ent *r;
	bool open;
};

struct bulk_ctx {
	struct names_cache *nc;
	struct bulk_claim *cl;    /* sorted by r */
	size_t ncl;
	size_t repos, manifests, without_content; /* for the log line */
	double put_s;             /* time in mcache_store_mem (parsing) */
};

static int cmpclaim(const void *a, const void *b)
{
	const struct repo_ent *x = ((const struct bulk_claim *)a)->r;
	const struct repo_ent *y = ((const struct bulk_claim *)b)->r;
	return x < y ? -1 : x > y;
}

/* Caller holds g.mu. */
static struct bulk_claim *claim_of(struct bulk_ctx *bx, struct repo_ent *r)
{
	struct bulk_claim key = {.r = r};
	struct bulk_claim *c = bsearch(&key, bx->cl, bx->ncl, sizeof *bx->cl, cmpclaim);
	return c && c->open ? c : NULL;
}

/* Stores every manifest of rb that came with its bytes (verified by the
 * client; kept in memory only, a remount gets them again in a few
 * requests). -ENOMEM, else 0. */
static int bulk_store_manifests(struct bulk_ctx *bx, const struct regfs_repo_bulk *rb)
{
	double t0 = now_mono();
	for (size_t i = 0; i < rb->n_manifests; i++) {
		const struct regfs_manifest_info *mi = &rb->manifests[i];
		if (!mi->content) {
			bx->without_content++;
			continue;
		}
		/* One that does not parse is logged by the manifest cache and
		 * fetched again by digest in the walk, which reports it where du
		 * needs it. Most of the time here is the disk cache's file
		 * writes, not parsing (1,000 x 10: 1.2-1.7 s with them, 0.3 s with
		 * --cache-size 0); four threads did not make it faster on this
		 * machine. */
		if (mcache_store_mem(bx->nc->mc, mi->digest, mi->content, mi->len,
				     mi->media_type, NULL) == -ENOMEM)
			return -ENOMEM;
		bx->manifests++;
	}
	bx->put_s += now_mono() - t0;
	return 0;
}

/* Installs one repository: every manifest's bytes first, so that once its
 * listings are visible a reader finds the manifests cached; then its
 * tagset (every tag resolved: digest and push time, as the bulk-tags branch
 * of names_prefetch_tags does) and its repo-manifests list (as
 * names_repo_manifests stores it). A manifest without content is left for
 * the walk's manifest_cache_prefetch (GET by digest). */
static int bulk_one(const struct regfs_repo_bulk *rb, void *arg)
{
	struct bulk_ctx *bx = arg;
	struct names_cache *nc = bx->nc;
	if (bulk_store_manifests(bx, rb))
		return -ENOMEM;
	struct tagset *ts = names_tagset_of(rb->tags, rb->n_tags, true);
	char **mf = calloc(rb->n_manifests ? rb->n_manifests : 1, sizeof *mf);
	if (!ts || !mf) {
		tagset_put(ts);
		free(mf);
		return -ENOMEM;
	}
	size_t nmf = 0;
	for (size_t i = 0; i < rb->n_manifests; i++)
		if ((mf[nmf] = strdup(rb->manifests[i].digest)))
			nmf++;

	pthread_mutex_lock(&nc->g.mu);
	struct repo_ent *r = names_repo_ent(nc, rb->name);
	struct bulk_claim *cl = r ? claim_of(bx, r) : NULL;
	if (cl) {
		r->sf.busy = r->mf_sf.busy = false;
		cl->open = false;
	}
	/* Busy without our claim: another thread is fetching it; theirs wins. */
	if (r && !r->sf.busy) {
		names_install(r, ts);
		ts = NULL;
	}
	if (r && !r->mf_sf.busy) {
		names_set_manifests(r, mf, nmf);
		sflight_set(&r->mf_sf);
		mf = NULL;
		nmf = 0;
	}
	pthread_cond_broadcast(&nc->g.cv);
	pthread_mutex_unlock(&nc->g.mu);
	tagset_put(ts);
	for (size_t k = 0; k < nmf; k++)
		free(mf[k]);
	free(mf);
	bx->repos++;
	return 0;
}

int names_prefetch_bulk(struct names_cache *nc, char **repos, size_t n)
{
	if (!regfs_client_has_ext(nc->client, "bulk-manifests"))
		return -ENOTSUP;
	struct bulk_ctx bx = {.nc = nc};
	bx.cl = calloc(n ? n : 1, sizeof *bx.cl);
	if (!bx.cl)
		return -ENOMEM;
	/* Claim the repositories whose tag list is not fresh and that no one
	 * is fetching (a fresh one is simply replaced when its page comes). */
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < n; i++) {
		struct repo_ent *r = names_repo_ent(nc, repos[i]);
		if (!r || r->mf_sf.busy || !sflight_claim(&r->sf, nc->o->ttl))
			continue;
		r->mf_sf.busy = true;
		bx.cl[bx.ncl++] = (struct bulk_claim){r, true};
	}
	pthread_mutex_unlock(&nc->g.mu);
	regfs_qsort(bx.cl, bx.ncl, sizeof *bx.cl, cmpclaim);

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
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < bx.ncl; i++)
		if (bx.cl[i].open)
			bx.cl[i].r->sf.busy = bx.cl[i].r->mf_sf.busy = false;
	pthread_cond_broadcast(&nc->g.cv);
	pthread_mutex_unlock(&nc->g.mu);
	free(bx.cl);
	if (rc)
		return fs_client_errno(rc, &e, "listing all manifests (bulk-manifests)");
	return 0;
}
