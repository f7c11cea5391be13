/* batch.c — many GETs at once on the curl multi interface, at most
 * opts.max_parallel in flight, for regfs_client_manifests and
 * regfs_client_tags_many.
 *
 * Auth is settled before the batch: for every distinct repository we make
 * sure a token for its pull scope is cached (auth_prepare), so the parallel
 * requests carry it and do not each run into a 401. An item that still fails
 * in a way a single request would recover from (401, 5xx/429, a dropped
 * connection) is redone afterwards through the single-request path, which
 * has the auth flow and retries; an answer that is final (404, bad manifest)
 * is reported as is. One failed item never fails the batch. */
#include "internal.h"

#include <regfs/names.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bitem {
	const char *repo, *ref; /* ref NULL: tags list */
	int *rc;
	struct regfs_err *err;
	bool skip; /* already failed (bad input, auth) */
	bool redo; /* run again through the single-request path */
	char *url, *scope;
	const char *hdrs[2];
	struct rq q;
	struct resp r;
	struct xfer x;
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
};

static void prepare_auth(struct regfs_client *c, struct bitem *it, size_t n)
{
	/* Distinct scopes (items of one repository share one). */
	const char **sc = calloc(n ? n : 1, sizeof *sc);
	size_t ns = 0;
	for (size_t i = 0; sc && i < n; i++) {
		if (it[i].skip)
			continue;
		if (ns && strcmp(sc[ns - 1], it[i].scope) == 0)
			continue; /* the common case: runs of one repository */
		size_t k = 0;
		while (k < ns && strcmp(sc[k], it[i].scope) != 0)
			k++;
		if (k == ns)
			sc[ns++] = it[i].scope;
	}
	struct regfs_err e = {0};
	int rc = sc ? auth_prepare_many(c, sc, ns, &e) : regfs_errf(&e, -ENOMEM, "out of memory");
	free(sc);
	if (!rc)
		return;
	/* The registry could not even be checked: every item fails with why. */
	for (size_t i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		*it[i].rc = rc;
		regfs_errf(it[i].err, rc, "%s", regfs_err_str(&e));
		it[i].skip = true;
	}
}

static int start_item(struct regfs_client *c, CURLM *m, struct bitem *it)
{
	char *auth = auth_header_for(c, it->scope);
	int rc = xfer_setup(c, &it->x, &it->q, &it->r, auth, (long)c->timeout_s * 1000, it->err);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (rc)
		return rc;
	curl_easy_setopt(it->x.h, CURLOPT_PRIVATE, it);
	if (curl_multi_add_handle(m, it->x.h) != CURLM_OK) {
		xfer_cleanup(&it->x);
		return regfs_errf(it->err, -ENOMEM, "cannot queue %s", it->url);
	}
	ST_INC(c, st_requests);
	return 0;
}

static void finish_item(struct regfs_client *c, CURLM *m, struct bitem *it, CURLcode cc)
{
	xfer_done(c, &it->x, cc);
	it->cc = cc;
	memcpy(it->errbuf, it->x.errbuf, sizeof it->errbuf);
	curl_multi_remove_handle(m, it->x.h);
	xfer_cleanup(&it->x);
	long s = it->r.status;
	if ((cc != CURLE_OK && regfs_http_transient(cc, CLIENT_TRANSIENT)) ||
	    (cc == CURLE_OK && (s == 401 || s == 429 || s >= 500)))
		it->redo = true;
}

/* Runs every non-skipped item's GET; results stay in it[i].r / it[i].cc. */
static int run_batch(struct regfs_client *c, struct bitem *it, size_t n)
{
	prepare_auth(c, it, n);
	CURLM *m = curl_multi_init();
	if (!m)
		return -ENOMEM;
	size_t next = 0, active = 0;
	size_t maxp = (size_t)c->max_parallel;
	for (;;) {
		while (active < maxp && next < n) {
			struct bitem *x = &it[next++];
			if (x->skip)
				continue;
			if (start_item(c, m, x) == 0)
				active++;
			else
				x->skip = true, *x->rc = x->err ? x->err->code : -ENOMEM;
		}
		if (active == 0 && next >= n)
			break;
		int running = 0;
		CURLMcode mc = curl_multi_perform(m, &running);
		/* Collect what finished before waiting: a transfer that completed
		 * in this perform produces no more socket activity to wake a poll. */
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct bitem *x = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			finish_item(c, m, x, msg->data.result);
			active--;
		}
		if (mc == CURLM_OK && active > 0 && !(active < maxp && next < n))
			mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK) {
			/* The multi handle broke: end the transfers, redo them singly. */
			for (size_t i = 0; i < next; i++)
				if (!it[i].skip && it[i].x.h) {
					curl_multi_remove_handle(m, it[i].x.h);
					xfer_cleanup(&it[i].x);
					it[i].redo = true;
				}
			for (size_t i = next; i < n; i++)
				it[i].redo = !it[i].skip;
			break;
		}
	}
	curl_multi_cleanup(m);
	return 0;
}

/* What a manifest batch asks for: the whole manifest, or only its digest. */
enum manifest_batch_kind { MANIFEST_BATCH_GET, MANIFEST_BATCH_HEAD };

static void item_free(struct bitem *it)
{
	free(it->url);
	free(it->scope);
	resp_free(&it->r);
}

int regfs_client_tags_many(struct regfs_client *c, struct regfs_tags_req *reqs, size_t n)
{
	struct bitem *it = calloc(n ? n : 1, sizeof *it);
	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct regfs_tags_req *q = &reqs[i];
		struct bitem *x = &it[i];
		q->rc = 0;
		q->tags = (struct regfs_strv){0};
		regfs_err_clear(&q->err);
		*x = (struct bitem){.repo = q->repo, .rc = &q->rc, .err = &q->err};
		if (!q->repo || !regfs_name_valid(q->repo)) {
			q->rc = regfs_errf(&q->err, -EINVAL, "\"%s\" is not a valid repository name",
					   q->repo ? q->repo : "(null)");
			x->skip = true;
			continue;
		}
		x->url = xasprintf("%s/v2/%s/tags/list", c->url, q->repo);
		x->scope = scope_pull(q->repo);
		if (!x->url || !x->scope) {
			q->rc = regfs_errf(&q->err, -ENOMEM, "out of memory");
			x->skip = true;
			continue;
		}
		x->q = (struct rq){.method = "GET", .url = x->url, .scope = x->scope,
				   .idempotent = true};
		x->r = (struct resp){.sink = SINK_MEM, .content_length = -1};
		ST_INC(c, st_tag_lists);
	}
	int rc = run_batch(c, it, n);
	for (size_t i = 0; i < n; i++) {
		struct bitem *x = &it[i];
		struct regfs_tags_req *q = &reqs[i];
		if (x->skip) {
			item_free(x);
			continue;
		}
		/* A repository with more than one page of tags is rare: finish it
		 * with the paged single-request path (which refetches page 1). */
		if (rc || x->redo || (x->cc == CURLE_OK && x->r.status == 200 && x->r.link)) {
			resp_free(&x->r);
			q->rc = regfs_client_tags(c, q->repo, &q->tags, &q->err);
		} else if (x->cc != CURLE_OK) {
			q->rc = curl_to_err(c, x->cc, x->errbuf, "GET", x->url, &q->err);
		} else if (x->r.status != 200) {
			q->rc = status_errf(c, &x->r, "GET", x->url, &q->err,
					    "tags of repository %s", q->repo);
		} else {
			q->rc = tags_parse(c, q->repo, x->url, &x->r, &q->tags, &q->err);
			if (q->rc)
				regfs_strv_free(&q->tags);
		}
		item_free(x);
	}
	free(it);
	return 0;
}

/* Fills resp from a HEAD answer: the registry's Docker-Content-Digest (it
 * cannot be checked without the bytes) and Last-Modified. */
static int head_fill(struct regfs_client *c, const struct resp *r, const char *url,
		     const char *repo, const char *ref, struct regfs_manifest_resp *out,
		     struct regfs_err *err)
{
	if (r->status != 200) {
		return status_errf(c, r, "HEAD", url, err, "manifest %s:%s", repo, ref);
	}
	if (!r->dcd || !regfs_digest_valid(r->dcd)) {
		ST_INC(c, st_errors);
		return regfs_errf(err, -EPROTO, "HEAD %s answered without a valid Docker-Content-Digest",
				  url);
	}
	snprintf(out->digest, sizeof out->digest, "%s", r->dcd);
	if (r->last_modified) {
		time_t t = curl_getdate(r->last_modified, NULL);
		out->last_modified = t > 0 ? (int64_t)t : 0;
	}
	return 0;
}

/* One HEAD through the single-request path (auth flow, retries). */
static int head_one(struct regfs_client *c, const char *url, const char *scope,
		    const char *repo, const char *ref, struct regfs_manifest_resp *out,
		    struct regfs_err *err)
{
	const char *hdrs[] = {manifest_accept_hdr, NULL};
	struct rq q = {.method = "HEAD", .url = url, .scope = scope, .headers = hdrs,
		       .idempotent = true};
	struct resp r = {.sink = SINK_NONE, .content_length = -1};
	int rc = client_do(c, &q, &r, err);
	if (!rc)
		rc = head_fill(c, &r, url, repo, ref, out, err);
	resp_free(&r);
	return rc;
}

/* Checks and prepares one manifest request of a batch; false when it failed
 * already (its rc and err are set). */
static bool manifest_item_setup(struct regfs_client *c, struct regfs_manifest_req *q,
				struct bitem *x, enum manifest_batch_kind kind)
{
	q->rc = 0;
	q->resp = (struct regfs_manifest_resp){0};
	regfs_err_clear(&q->err);
	*x = (struct bitem){.repo = q->repo, .ref = q->ref, .rc = &q->rc, .err = &q->err};
	if (!q->repo || !regfs_name_valid(q->repo) || !q->ref ||
	    (!regfs_tag_valid(q->ref) && !regfs_digest_valid(q->ref))) {
		q->rc = regfs_errf(&q->err, -EINVAL, "\"%s:%s\" is not a repository:reference",
				   q->repo ? q->repo : "(null)", q->ref ? q->ref : "(null)");
		return false;
	}
	x->url = xasprintf("%s/v2/%s/manifests/%s", c->url, q->repo, q->ref);
	x->scope = scope_pull(q->repo);
	if (!x->url || !x->scope) {
		q->rc = regfs_errf(&q->err, -ENOMEM, "out of memory");
		return false;
	}
	bool get = kind == MANIFEST_BATCH_GET;
	x->hdrs[0] = manifest_accept_hdr;
	x->q = (struct rq){.method = get ? "GET" : "HEAD", .url = x->url, .scope = x->scope,
			   .headers = x->hdrs, .idempotent = true};
	x->r = (struct resp){.sink = get ? SINK_MEM : SINK_NONE, .content_length = -1};
	if (get)
		ST_INC(c, st_manifest_gets);
	return true;
}

/* Turns one batch answer into q's result; an item to redo goes through the
 * single-request path. */
static void manifest_item_finish(struct regfs_client *c, struct regfs_manifest_req *q,
				 struct bitem *x, enum manifest_batch_kind kind, bool redo)
{
	bool get = kind == MANIFEST_BATCH_GET;
	if (redo) {
		resp_free(&x->r);
		x->r = (struct resp){0};
		q->rc = get ? regfs_client_manifest(c, q->repo, q->ref, &q->resp, &q->err)
			    : head_one(c, x->url, x->scope, q->repo, q->ref, &q->resp, &q->err);
	} else if (x->cc != CURLE_OK) {
		q->rc = curl_to_err(c, x->cc, x->errbuf, x->q.method, x->url, &q->err);
	} else {
		q->rc = get ? manifest_fill(c, q->repo, q->ref, &x->r, &q->resp, &q->err)
			    : head_fill(c, &x->r, x->url, q->repo, q->ref, &q->resp, &q->err);
	}
}

/* The GET and the HEAD batch of manifests: they differ only in the request
 * and in how an answer is read (manifest_item_setup / _finish). */
static int manifest_batch(struct regfs_client *c, struct regfs_manifest_req *reqs, size_t n,
			  enum manifest_batch_kind kind)
{
	struct bitem *it = calloc(n ? n : 1, sizeof *it);
	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!manifest_item_setup(c, &reqs[i], &it[i], kind))
			it[i].skip = true;
	int rc = run_batch(c, it, n);
	for (size_t i = 0; i < n; i++) {
		if (!it[i].skip)
			manifest_item_finish(c, &reqs[i], &it[i], kind, rc || it[i].redo);
		item_free(&it[i]);
	}
	free(it);
	return 0;
}

int regfs_client_manifests(struct regfs_client *c, struct regfs_manifest_req *reqs, size_t n)
{
	return manifest_batch(c, reqs, n, MANIFEST_BATCH_GET);
}

int regfs_client_manifest_heads(struct regfs_client *c, struct regfs_manifest_req *reqs, size_t n)
{
	return manifest_batch(c, reqs, n, MANIFEST_BATCH_HEAD);
}
