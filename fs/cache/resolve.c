/* resolve.c — tag -> digest in the names cache: resolutions filled lazily
 * in parallel batches, re-validated cheaply when they expire. */
#include "names_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>
#include <regfs/log.h>

/* A resolution younger than the ttl is still an answer: a tag list fetched
 * again (the ttl passed for the list, or a write refetched it) keeps the
 * digests of the tags it still holds, so one rm does not cost a GET per
 * tag of the repository. Caller holds g.mu. */
static bool resolution_fresh(struct names_cache *nc, const struct tag_ent *te)
{
	return te->resolved_at > 0 && te->rc == 0 && now_mono() - te->resolved_at < nc->o->ttl;
}

/* ---- tag -> digest ---- */

struct created_job {
	struct manifest_cache *mc;
	const char **repos;
	const struct mentry **ents;
};

static void created_one(size_t i, void *arg)
{
	struct created_job *j = arg;
	if (j->ents[i])
		manifest_cache_created(j->mc, j->repos[i], j->ents[i]);
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
static void confirm_by_ext(struct names_cache *nc, const char *repo, struct regfs_manifest_req *reqs,
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
	regfs_qsort(pairs, np, sizeof *pairs, cmptagdig);
	for (size_t k = 0; pairs && k < n; k++) {
		struct tagdig key = {reqs[idx[k]].ref, NULL};
		const struct tagdig *f = np ? bsearch(&key, pairs, np, sizeof *pairs, cmptagdig) : NULL;
		ok[idx[k]] = f && tagdig_known(mine[idx[k]]) && tagdig_is(mine[idx[k]], f->digest);
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
static void confirm_by_head(struct names_cache *nc, struct regfs_manifest_req *reqs,
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
		if (!tagdig_known(mine[i]))
			continue;
		if (h[i].rc == 0) {
			ok[i] = tagdig_is(mine[i], h[i].resp.digest);
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
static size_t revalidate(struct names_cache *nc, struct regfs_manifest_req *reqs, struct tag_ent **mine,
			 size_t k)
{
	size_t nknown = 0;
	for (size_t i = 0; i < k; i++)
		nknown += tagdig_known(mine[i]);
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
				if (tagdig_known(mine[j]))
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
	pthread_mutex_lock(&nc->g.mu);
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
			tagdig_clear(mine[i]);
			mine[i]->state = T_IDLE;
		} else {
			reqs[left] = reqs[i];
			mine[left++] = mine[i];
		}
	}
	pthread_cond_broadcast(&nc->g.cv);
	pthread_mutex_unlock(&nc->g.mu);
	k = left;
out:
	free(ok);
	free(failed);
	free(idx);
	free(lm);
	return k;
}

static void resolve_chunk(struct names_cache *nc, struct regfs_manifest_req *reqs, struct tag_ent **mine,
			  const struct mentry **me, const char **mrepo, size_t c0, size_t c1);

/* Resolves the entries (each of repos[i]) that no one resolved yet, in
 * parallel batches, then waits for those others are resolving. */
static void resolve_entries(struct names_cache *nc, const char **repos, struct tag_ent **ents, size_t n)
{
	struct regfs_manifest_req *reqs = calloc(n ? n : 1, sizeof *reqs);
	struct tag_ent **mine = calloc(n ? n : 1, sizeof *mine);
	const struct mentry **me = calloc(n ? n : 1, sizeof *me);
	const char **mrepo = calloc(n ? n : 1, sizeof *mrepo);
	size_t k = 0;
	if (!reqs || !mine || !me || !mrepo)
		goto out;
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < n; i++) {
		if (resolution_fresh(nc, ents[i]) || ents[i]->state != T_IDLE)
			continue;
		ents[i]->state = T_RESOLVING;
		mine[k] = ents[i];
		reqs[k].repo = repos[i];
		reqs[k].ref = ents[i]->tag;
		k++;
	}
	pthread_mutex_unlock(&nc->g.mu);

	k = revalidate(nc, reqs, mine, k);
	/* In chunks: a whole registry's tags (10,000 and more) would otherwise
	 * hold every response body at once, and the fragmentation they leave
	 * behind is most of the daemon's peak memory. */
	for (size_t c0 = 0; c0 < k; c0 += RESOLVE_CHUNK) {
		size_t c1 = k - c0 < RESOLVE_CHUNK ? k : c0 + RESOLVE_CHUNK;
		resolve_chunk(nc, reqs, mine, me, mrepo, c0, c1);
	}
	/* Entries another thread is resolving: wait for them. */
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < n; i++)
		while (ents[i]->state == T_RESOLVING)
			fs_wait(&nc->g.cv, &nc->g.mu);
	pthread_mutex_unlock(&nc->g.mu);
out:
	free(reqs);
	free(mine);
	free(me);
	free(mrepo);
}

/* Resolves reqs[c0..c1) (their entries claimed by the caller): one parallel
 * batch of manifest GETs, then the image created times where the registry
 * sent no Last-Modified, then publishes the results. */
static void resolve_chunk(struct names_cache *nc, struct regfs_manifest_req *reqs, struct tag_ent **mine,
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
			pthread_mutex_lock(&nc->g.mu);
			mine[i]->resolved_at = 0;
			tagdig_clear(mine[i]);
			pthread_mutex_unlock(&nc->g.mu);
			continue;
		}
		const struct mentry *e = NULL;
		int rc = mcache_store(nc->mc, reqs[i].resp.digest, reqs[i].resp.data,
				      reqs[i].resp.len, reqs[i].resp.content_type, &e);
		mine[i]->rc = rc;
		if (rc == 0 && !tag_time_plausible(reqs[i].resp.last_modified)) {
			/* No Last-Modified (registry:2): the image's created time
			 * (held until it is read below). */
			me[nneed] = e;
			mrepo[nneed] = reqs[i].repo;
			nneed++;
		} else {
			mcache_put(nc->mc, e);
		}
	}
	if (nneed) {
		struct created_job j = {nc->mc, mrepo, me};
		par_for(nneed, nc->o->max_parallel, created_one, &j);
	}
	pthread_mutex_lock(&nc->g.mu);
	size_t k = 0; /* me[k]: the next entry the first loop held (same condition) */
	for (size_t i = c0; i < c1; i++) {
		if (mine[i]->rc == 0) {
			int64_t lm = reqs[i].resp.last_modified, cr = 0;
			if (!tag_time_plausible(lm) && k < nneed) {
				const struct mentry *e = me[k++];
				cr = __atomic_load_n(&e->created, __ATOMIC_ACQUIRE);
			}
			if ((mine[i]->rc = tagdig_set(mine[i], reqs[i].resp.digest)) != 0) {
				mine[i]->resolved_at = 0; /* out of memory: not resolved */
			} else {
				tag_time_set(mine[i], lm, cr);
				mine[i]->resolved_at = now_mono();
			}
		}
		mine[i]->state = T_IDLE;
	}
	pthread_cond_broadcast(&nc->g.cv);
	pthread_mutex_unlock(&nc->g.mu);
	for (size_t j = 0; j < nneed; j++)
		mcache_put(nc->mc, me[j]);
	for (size_t i = c0; i < c1; i++)
		regfs_manifest_resp_free(&reqs[i].resp);
}

int names_resolve(struct names_cache *nc, const char *repo, const char *tag,
		   char digest[REGFS_DIGEST_MAX],
		   int64_t *mtime)
{
	struct tagset *ts;
	int rc = names_tags(nc, repo, &ts);
	if (rc)
		return rc;
	struct tag_ent key = {.tag = (char *)tag};
	struct tag_ent *te = bsearch(&key, ts->t, ts->n, sizeof *ts->t, names_cmptag);
	if (!te) {
		tagset_put(ts);
		return -ENOENT;
	}
	resolve_entries(nc, &repo, &te, 1);
	pthread_mutex_lock(&nc->g.mu);
	if (te->resolved_at > 0) {
		tagdig_get(te, digest);
		if (mtime)
			*mtime = te->mtime;
		rc = 0;
	} else {
		rc = te->rc ? te->rc : -EIO;
	}
	pthread_mutex_unlock(&nc->g.mu);
	tagset_put(ts);
	return rc;
}

void names_tag_mtimes(struct names_cache *nc, const struct tag_ent *const *te, size_t n,
		      int64_t *out)
{
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < n; i++)
		out[i] = te[i] ? te[i]->mtime : 0;
	pthread_mutex_unlock(&nc->g.mu);
}

bool names_tag_read(struct names_cache *nc, const struct tag_ent *te, struct tag_read *out)
{
	pthread_mutex_lock(&nc->g.mu);
	bool ok = te->resolved_at > 0;
	if (ok)
		tagdig_get(te, out->digest);
	else
		out->digest[0] = 0;
	out->mtime = ok ? te->mtime : 0;
	out->mtime_src = te->mtime_src;
	pthread_mutex_unlock(&nc->g.mu);
	return ok;
}

void names_resolve_many(struct names_cache *nc, char **repos, struct tagset **sets, size_t n)
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

int names_resolve_all(struct names_cache *nc, const char *repo, struct tagset *ts)
{
	char *r = (char *)repo;
	names_resolve_many(nc, &r, &ts, 1);
	return 0;
}
