/* tags.c — the tag lists in the names cache: each repository's tags (one
 * fetch per repository and ttl, or all of them at once), what writes change
 * in them, and the repo-manifests extension's manifest lists. */
#include "names_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

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
		qsort(t->t, t->n, sizeof *t->t, names_cmptag);
	sflight_ref_init(&t->ref, 1);
	return t;
}

/* A resolution younger than the ttl is still an answer: a tag list fetched
 * again (the ttl passed for the list, or a write refetched it) keeps the
 * digests of the tags it still holds, so one rm does not cost a GET per
 * tag of the repository. Caller holds mu. */

int names_tags(struct names_cache *nc, const char *repo, struct tagset **out)
{
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
	if (!r) {
		pthread_mutex_unlock(&nc->mu);
		return -ENOMEM;
	}
	for (;;) {
		if (r->ts && now_mono() - r->fetched < nc->o->ttl) {
			sflight_ref_get(&r->ts->ref);
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
		sflight_ref_get(&ts->ref);
		names_install(r, ts);
		*out = ts;
	}
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	return rc;
}

int names_prefetch_tags(struct names_cache *nc, char **repos, size_t n)
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
				struct repo_ent *r = names_repo_ent(nc, rt[i].name);
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
					qsort(ts->t, ts->n, sizeof *ts->t, names_cmptag);
				sflight_ref_init(&ts->ref, 1);
				names_install(r, ts);
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
		struct repo_ent *r = names_repo_ent(nc, repos[i]);
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
				names_install(ents[i], ts);
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

void names_invalidate(struct names_cache *nc, const char *repo)
{
	pthread_mutex_lock(&nc->mu);
	nc->cat_at = -1e18;
	if (repo) {
		struct repo_ent *r = names_repo_ent(nc, repo);
		if (r)
			r->fetched = r->mf_at = -1e18;
	}
	pthread_mutex_unlock(&nc->mu);
}

void names_invalidate_tags(struct names_cache *nc, const char *repo, const char *const *tags, size_t n)
{
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
	if (r) {
		r->fetched = r->mf_at = -1e18;
		for (size_t k = 0; r->ts && k < n; k++) {
			struct tag_ent key = {.tag = (char *)tags[k]};
			struct tag_ent *te = bsearch(&key, r->ts->t, r->ts->n, sizeof *r->ts->t, names_cmptag);
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

void names_tag_removed(struct names_cache *nc, const char *repo, const char *tag)
{
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
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
		sflight_ref_init(&ts->ref, 1);
		ts->at = old->at;
		tagset_put(r->ts);
		r->ts = ts;
	} else if (r) {
		if (ts) {
			sflight_ref_init(&ts->ref, 1);
			tagset_put(ts);
		}
		r->fetched = -1e18; /* out of memory: fetch the list again instead */
	}
	pthread_mutex_unlock(&nc->mu);
}

int names_repo_manifests(struct names_cache *nc, const char *repo, char ***out, size_t *n)
{
	if (!regfs_client_has_ext(nc->client, "repo-manifests"))
		return -ENOTSUP;
	pthread_mutex_lock(&nc->mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
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
