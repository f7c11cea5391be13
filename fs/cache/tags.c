/* tags.c — the tag lists in the names cache: each repository's tags (one
 * fetch per repository and ttl, or all of them at once), what writes change
 * in them, and the repo-manifests extension's manifest lists. */
#include "names_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>
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
	regfs_qsort(t->t, t->n, sizeof *t->t, names_cmptag);
	sflight_ref_init(&t->ref, 1);
	return t;
}

/* One GET of repo's tag list: *out a new tagset (one reference), or a
 * negative errno (logged). */
static int tags_fetch(struct names_cache *nc, const char *repo, struct tagset **out)
{
	struct regfs_strv v = {0};
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_tags(nc->client, repo, &v, &e);
	if (rc) {
		char what[300];
		snprintf(what, sizeof what, "listing the tags of %s", repo);
		return fs_client_errno(rc, &e, what);
	}
	*out = tagset_from(&v);
	regfs_strv_free(&v);
	return *out ? 0 : -ENOMEM;
}

int names_tags(struct names_cache *nc, const char *repo, struct tagset **out)
{
	pthread_mutex_lock(&nc->g.mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
	if (!r) {
		pthread_mutex_unlock(&nc->g.mu);
		return -ENOMEM;
	}
	if (sflight_begin(&nc->g, &r->sf, nc->o->ttl) == SFLIGHT_HIT) {
		*out = r->ts;
		names_hit(nc, &r->ts->ref);
		return 0;
	}
	pthread_mutex_unlock(&nc->g.mu);
	atomic_fetch_add(&nc->st->nc_misses, 1);
	struct tagset *ts = NULL;
	int rc = tags_fetch(nc, repo, &ts);
	pthread_mutex_lock(&nc->g.mu);
	if (ts) {
		sflight_ref_get(&ts->ref);
		names_install(r, ts);
		*out = ts;
	}
	sflight_end(&nc->g, &r->sf, ts != NULL);
	pthread_mutex_unlock(&nc->g.mu);
	return rc;
}

/* bulk-tags (regfs-registry): every repository's tags, with digest and push
 * time, in one paginated walk. 0, -ENOTSUP (not offered: errors cleared)
 * or a negative errno (e filled). Lists being fetched by others are left
 * to them. */
static int prefetch_bulk_tags(struct names_cache *nc, struct regfs_err *e)
{
	struct regfs_repo_tags *rt = NULL;
	size_t nr = 0;
	loop_may_block();
	int rc = regfs_client_bulk_tags(nc->client, &rt, &nr, e);
	if (rc)
		return rc;
	atomic_fetch_add(&nc->st->nc_misses, 1);
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < nr; i++) {
		struct repo_ent *r = names_repo_ent(nc, rt[i].name);
		if (!r || r->sf.busy)
			continue;
		struct tagset *ts = names_tagset_of(rt[i].tags, rt[i].n_tags, false);
		if (ts)
			names_install(r, ts);
	}
	pthread_cond_broadcast(&nc->g.cv);
	pthread_mutex_unlock(&nc->g.mu);
	regfs_repo_tags_free(rt, nr);
	return 0;
}

/* GET of the tag list of each of repos not fresh and not being fetched, in
 * one parallel batch. 0, or the first failure but a 404 (e filled). */
static int prefetch_each(struct names_cache *nc, char **repos, size_t n, struct regfs_err *e)
{
	struct regfs_tags_req *reqs = calloc(n ? n : 1, sizeof *reqs);
	struct repo_ent **ents = calloc(n ? n : 1, sizeof *ents);
	if (!reqs || !ents) {
		free(reqs);
		free(ents);
		return -ENOMEM;
	}
	size_t k = 0;
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < n; i++) {
		struct repo_ent *r = names_repo_ent(nc, repos[i]);
		if (!r || !sflight_claim(&r->sf, nc->o->ttl))
			continue;
		ents[k] = r;
		reqs[k].repo = r->repo; /* r lives until unmount */
		k++;
	}
	pthread_mutex_unlock(&nc->g.mu);
	int rc = 0;
	if (k) {
		atomic_fetch_add(&nc->st->nc_misses, k);
		loop_may_block();
		regfs_client_tags_many(nc->client, reqs, k);
	}
	pthread_mutex_lock(&nc->g.mu);
	for (size_t i = 0; i < k; i++) {
		struct tagset *ts = reqs[i].rc == 0 ? tagset_from(&reqs[i].tags) : NULL;
		if (ts)
			names_install(ents[i], ts);
		sflight_end(&nc->g, &ents[i]->sf, ts != NULL);
		if (reqs[i].rc && rc == 0) {
			rc = reqs[i].rc;
			*e = reqs[i].err;
		}
		regfs_strv_free(&reqs[i].tags);
	}
	pthread_mutex_unlock(&nc->g.mu);
	free(reqs);
	free(ents);
	return rc == -ENOENT ? 0 : rc;
}

int names_prefetch_tags(struct names_cache *nc, char **repos, size_t n)
{
	struct regfs_err e = {0};
	if (regfs_client_has_ext(nc->client, "bulk-tags")) {
		int rc = prefetch_bulk_tags(nc, &e);
		if (rc == 0)
			return 0;
		if (rc != -ENOTSUP)
			return fs_client_errno(rc, &e, "listing all tags (bulk-tags)");
		regfs_err_clear(&e);
	}
	int rc = prefetch_each(nc, repos, n, &e);
	if (rc)
		return fs_client_errno(rc, &e, "listing tags");
	return 0;
}

void names_invalidate(struct names_cache *nc, const char *repo)
{
	pthread_mutex_lock(&nc->g.mu);
	sflight_expire(&nc->cat_sf);
	if (repo) {
		struct repo_ent *r = names_repo_ent(nc, repo);
		if (r) {
			sflight_expire(&r->sf);
			sflight_expire(&r->mf_sf);
		}
	}
	pthread_mutex_unlock(&nc->g.mu);
}

void names_invalidate_tags(struct names_cache *nc, const char *repo, const char *const *tags, size_t n)
{
	pthread_mutex_lock(&nc->g.mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
	if (r) {
		sflight_expire(&r->sf);
		sflight_expire(&r->mf_sf);
		for (size_t k = 0; r->ts && k < n; k++) {
			struct tag_ent key = {.tag = (char *)tags[k]};
			struct tag_ent *te = bsearch(&key, r->ts->t, r->ts->n, sizeof *r->ts->t, names_cmptag);
			/* One being resolved right now keeps its answer until the
			 * next list: its resolver publishes after our change. */
			if (te && te->state == T_IDLE) {
				te->resolved_at = 0;
				tagdig_clear(te);
			}
		}
	}
	pthread_mutex_unlock(&nc->g.mu);
}

void names_tag_removed(struct names_cache *nc, const char *repo, const char *tag)
{
	pthread_mutex_lock(&nc->g.mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
	struct tagset *old = r ? r->ts : NULL;
	struct tagset *ts = old ? calloc(1, sizeof *ts) : NULL;
	if (r)
		sflight_expire(&r->mf_sf); /* an untagged manifest may now be listed */
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
		if (tagdig_copy(te, &old->t[i]) != 0)
			continue; /* out of memory: left to be resolved again */
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
		sflight_expire(&r->sf); /* out of memory: fetch the list again instead */
	}
	pthread_mutex_unlock(&nc->g.mu);
}

/* One GET of repo's manifest list (repo-manifests): *v the digests (*nv of
 * them), or a negative errno (logged). */
static int manifests_fetch(struct names_cache *nc, const char *repo, char ***v, size_t *nv)
{
	struct regfs_tag_info *ti = NULL;
	size_t nt = 0;
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_repo_manifests(nc->client, repo, &ti, &nt, &e);
	if (rc == 0 && (*v = calloc(nt ? nt : 1, sizeof **v))) {
		for (size_t i = 0; i < nt; i++)
			(*v)[i] = strdup(ti[i].digest);
		*nv = nt;
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
	return rc;
}

int names_repo_manifests(struct names_cache *nc, const char *repo, char ***out, size_t *n)
{
	if (!regfs_client_has_ext(nc->client, "repo-manifests"))
		return -ENOTSUP;
	pthread_mutex_lock(&nc->g.mu);
	struct repo_ent *r = names_repo_ent(nc, repo);
	if (!r) {
		pthread_mutex_unlock(&nc->g.mu);
		return -ENOMEM;
	}
	int rc = 0;
	if (sflight_begin(&nc->g, &r->mf_sf, nc->o->ttl) == SFLIGHT_FILL) {
		pthread_mutex_unlock(&nc->g.mu);
		char **v = NULL;
		size_t nv = 0;
		rc = manifests_fetch(nc, repo, &v, &nv);
		pthread_mutex_lock(&nc->g.mu);
		if (rc == 0)
			names_set_manifests(r, v, nv);
		sflight_end(&nc->g, &r->mf_sf, rc == 0);
	}
	if (rc == 0) {
		*out = calloc(r->nmf ? r->nmf : 1, sizeof **out);
		*n = 0;
		for (size_t i = 0; *out && i < r->nmf; i++) {
			char d[REGFS_DIGEST_MAX];
			names_manifest_at(r, i, d);
			if (d[0] && ((*out)[*n] = strdup(d)))
				(*n)++;
		}
		if (!*out)
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&nc->g.mu);
	return rc;
}
