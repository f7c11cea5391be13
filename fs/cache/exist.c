/* exist.c — whether the manifests that indexes reference still exist
 * (content never changes, existence does: a garbage collection removes
 * index children that nothing tags), checked at most once per ttl. */
#include "manifests_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/hash.h>
#include <regfs/log.h>


/* Caller holds g.mu. NULL when absent and !make (or out of memory). */
static struct exist *exist_of(struct manifest_cache *mc, const char *repo, const char *digest, bool make)
{
	char key[1024];
	snprintf(key, sizeof key, "%s@%s", repo, digest);
	size_t b = regfs_fnv1a64_str(key) % EXIST_BUCKETS;
	for (struct exist *x = mc->eb[b]; x; x = x->next)
		if (strcmp(x->key, key) == 0)
			return x;
	if (!make)
		return NULL;
	struct exist *x = calloc(1, sizeof *x);
	if (!x || !(x->key = strdup(key))) {
		free(x);
		return NULL;
	}
	x->at = -1e18;
	x->next = mc->eb[b];
	mc->eb[b] = x;
	return x;
}

bool manifest_cache_missing(struct manifest_cache *mc, const char *repo, const char *digest)
{
	pthread_mutex_lock(&mc->g.mu);
	struct exist *x = exist_of(mc, repo, digest, false);
	bool gone = x && x->present == 0 && now_mono() - x->at < mc->o->ttl;
	pthread_mutex_unlock(&mc->g.mu);
	return gone;
}

/* Records one answer; logs a 404 the first time the pair has one. */
static void exist_record(struct manifest_cache *mc, const char *repo, const char *digest, int present)
{
	pthread_mutex_lock(&mc->g.mu);
	struct exist *x = exist_of(mc, repo, digest, true);
	bool log_it = false;
	if (x) {
		x->present = present;
		x->at = now_mono();
		log_it = present == 0 && !x->logged;
		if (log_it)
			x->logged = true;
	}
	pthread_mutex_unlock(&mc->g.mu);
	if (log_it)
		fs_warn("%s: an index references manifest %s, which the registry no longer has "
			 "(404; removed by a garbage collection?): it is left out of _manifests/, "
			 "du and df, and the index's platforms/ link to it dangles", repo, digest);
}

/* regfs-registry: existence from the repo-manifests list (one request per
 * repository and ttl instead of one per manifest). 1/0, or -1 unavailable. */
static int listed_in_repo(struct names_cache *nc, const char *repo, const char *digest, char ***cache_v,
			  size_t *cache_n, const char **cache_repo)
{
	if (!*cache_repo || strcmp(*cache_repo, repo) != 0) {
		for (size_t k = 0; k < *cache_n; k++)
			free((*cache_v)[k]);
		free(*cache_v);
		*cache_v = NULL;
		*cache_n = 0;
		*cache_repo = NULL;
		if (names_repo_manifests(nc, repo, cache_v, cache_n) != 0)
			return -1;
		*cache_repo = repo;
	}
	for (size_t k = 0; k < *cache_n; k++)
		if (strcmp((*cache_v)[k], digest) == 0)
			return 1;
	return 0;
}

/* GETs by digest the pairs in idx[0..k) (present[] -1 so far). */
static void exist_fetch(struct manifest_cache *mc, const char **repos, const char **digests,
			const size_t *idx, size_t k,
			int *present)
{
	struct regfs_manifest_req *reqs = calloc(k ? k : 1, sizeof *reqs);
	if (!reqs)
		return;
	for (size_t j = 0; j < k; j++) {
		reqs[j].repo = repos[idx[j]];
		reqs[j].ref = digests[idx[j]];
	}
	atomic_fetch_add(&mc->st->mc_misses, k);
	loop_may_block();
	regfs_client_manifests(mc->client, reqs, k);
	for (size_t j = 0; j < k; j++) {
		size_t i = idx[j];
		if (reqs[j].rc == 0 && strcmp(reqs[j].resp.digest, digests[i]) == 0) {
			if (mcache_store(mc, digests[i], reqs[j].resp.data, reqs[j].resp.len,
					 reqs[j].resp.content_type, NULL) == 0)
				present[i] = 1;
		} else if (reqs[j].rc == -ENOENT) {
			present[i] = 0;
		} else {
			char what[400];
			snprintf(what, sizeof what, "checking manifest %s@%s", repos[i], digests[i]);
			fs_client_errno(reqs[j].rc ? reqs[j].rc : -EIO, &reqs[j].err, what);
		}
		if (present[i] >= 0)
			exist_record(mc, repos[i], digests[i], present[i]);
		regfs_manifest_resp_free(&reqs[j].resp);
	}
	free(reqs);
}

void manifest_cache_check_exist(struct manifest_cache *mc, struct names_cache *nc, const char **repos,
			const char **digests, size_t n, int *present)
{
	size_t *todo = calloc(n ? n : 1, sizeof *todo), k = 0;
	char **lv = NULL;
	size_t ln = 0;
	const char *lrepo = NULL;
	bool has_list = regfs_client_has_ext(mc->client, "repo-manifests");
	for (size_t i = 0; i < n; i++) {
		present[i] = -1;
		pthread_mutex_lock(&mc->g.mu);
		struct exist *x = exist_of(mc, repos[i], digests[i], false);
		if (x && now_mono() - x->at < mc->o->ttl)
			present[i] = x->present;
		pthread_mutex_unlock(&mc->g.mu);
		if (present[i] < 0 && has_list) {
			int l = listed_in_repo(nc, repos[i], digests[i], &lv, &ln, &lrepo);
			if (l == 0)
				exist_record(mc, repos[i], digests[i], 0);
			if (l >= 0)
				present[i] = l; /* listed: exists (its bytes are fetched when needed) */
		}
		if (present[i] < 0 && todo)
			todo[k++] = i;
	}
	for (size_t j = 0; j < ln; j++)
		free(lv[j]);
	free(lv);
	/* In rounds, like manifest_cache_prefetch: each round's bodies are held at once. */
	for (size_t c0 = 0; c0 < k; c0 += PREFETCH_CHUNK)
		exist_fetch(mc, repos, digests, todo + c0,
			    k - c0 < PREFETCH_CHUNK ? k - c0 : PREFETCH_CHUNK,
			    present);
	free(todo);
}
