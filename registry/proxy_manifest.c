/* proxy_manifest.c — manifests and tags of cached repositories (proxy.h).
 *
 * By digest: stored → served from storage (never leaves the cache); not
 * stored → GET upstream (the client library checks the bytes hash to the
 * digest), store, serve. By tag: checked upstream less than revalidate_s
 * ago → served from storage; else HEAD upstream: the stored digest → served
 * from storage; another digest, or nothing stored → GET, verify, store
 * (blob, revision link, tag link, as a PUT writes them: manifests.c), serve.
 *
 * Single flight per (repository, reference): one upstream request at a time
 * for it, and a client that waited for another's request takes its outcome
 * (success or failure) instead of asking again. A stored tag whose upstream
 * cannot be asked (down, 5xx, timeout, refused credentials, wrong bytes) is
 * served as last seen, with a log line; the failed check counts as a check,
 * so the upstream is asked again only after revalidate_s. An upstream 404
 * is answered 404, and a stored manifest stays until expiry.
 *
 * Every answer is served from storage by manifests.c, so a cached manifest
 * has the same headers, ETag and HEAD behaviour as a pushed one. */
#include "proxy.h"
#include "proxy_internal.h"

#include "manifest_bytes.h"
#include "manifests.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"

#include <regfs/client.h>
#include <regfs/hash.h>
#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/names.h>
#include <regfs/sflight.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024
#define REASON_MAX 400
#define DOWN_S 10.0

/* One (repository, reference) this instance asked its upstream about. */
struct ref_entry {
	struct ref_entry *next;
	uint64_t h;
	int users;                       /* requests holding it (entry_get/entry_put) */
	struct sflight sf;               /* valid: checked upstream at sf.at */
	int64_t ok_at;                   /* wall time of the last answered check; 0 none */
	double fail_at;                  /* sflight_now() of the last failed request */
	int fail_rc;                     /* its errno */
	bool fail_local;                 /* our storage failed, not the upstream */
	char fail_msg[REASON_MAX];       /* its reason */
	char key[];                      /* name '\0' reference '\0' */
};

struct proxy_tags {
	struct sflight_group g;          /* g.mu guards everything here */
	struct ref_entry *b[BUCKETS];
	/* after a timeout the upstream is not asked for DOWN_S: request
	 * threads are not held up by an upstream that does not answer */
	double down_until;               /* sflight_now() */
	int down_rc;
	char down_reason[REASON_MAX];
};

struct proxy_tags *proxy_tags_new(void)
{
	struct proxy_tags *t = calloc(1, sizeof *t);
	if (t)
		sflight_group_init(&t->g, NULL);
	return t;
}

void proxy_tags_free(struct proxy_tags *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct ref_entry *e = t->b[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	sflight_group_destroy(&t->g);
	free(t);
}

/* The entry of (name, ref), created when missing, held by the caller until
 * entry_put; NULL on ENOMEM. g.mu held. */
static struct ref_entry *entry_get(struct proxy_tags *t, const char *name, const char *ref)
{
	size_t nl = strlen(name), rl = strlen(ref);
	uint64_t h = regfs_fnv1a64_add(regfs_fnv1a64(name, nl + 1), ref, rl);
	struct ref_entry **slot = &t->b[h % BUCKETS];
	for (struct ref_entry *e = *slot; e; e = e->next)
		if (e->h == h && !strcmp(e->key, name) && !strcmp(e->key + nl + 1, ref)) {
			e->users++;
			return e;
		}
	struct ref_entry *e = calloc(1, sizeof *e + nl + rl + 2);
	if (!e)
		return NULL;
	e->users = 1;
	e->h = h;
	memcpy(e->key, name, nl + 1);
	memcpy(e->key + nl + 1, ref, rl + 1);
	e->next = *slot;
	*slot = e;
	return e;
}

/* Drops the caller's hold. An entry no request holds is kept only while it
 * records a good check of a tag (what revalidate_s needs): failures and
 * digests leave nothing behind, so names that do not exist upstream cannot
 * grow the table. g.mu held. */
static void entry_put(struct proxy_tags *t, struct ref_entry *e)
{
	if (--e->users > 0 || e->sf.busy)
		return;
	const char *ref = e->key + strlen(e->key) + 1;
	if (e->sf.valid && !strchr(ref, ':'))
		return;
	for (struct ref_entry **pp = &t->b[e->h % BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

/* Is the upstream marked down? Then *rc and reason say why. */
static bool marked_down(struct proxy_tags *t, int *rc, char *reason, size_t cap)
{
	pthread_mutex_lock(&t->g.mu);
	double left = t->down_until - sflight_now();
	if (left > 0) {
		*rc = t->down_rc;
		snprintf(reason, cap, "not asked again for %llds after: %.300s",
			 (long long)left + 1, t->down_reason);
	}
	pthread_mutex_unlock(&t->g.mu);
	return left > 0;
}

/* Marks the upstream down after a failure that held the request for long:
 * a timeout, a host name that does not resolve. A refused connection fails
 * at once and is not marked, so an upstream that comes back is asked at
 * once; a 404, 401 or wrong bytes are answers. */
static void note_failure(struct proxy_tags *t, int rc, const char *reason)
{
	if (rc != -ETIMEDOUT && rc != -EHOSTUNREACH)
		return;
	pthread_mutex_lock(&t->g.mu);
	t->down_until = sflight_now() + DOWN_S;
	t->down_rc = rc;
	snprintf(t->down_reason, sizeof t->down_reason, "%.399s", reason);
	pthread_mutex_unlock(&t->g.mu);
}

/* ---- one pull ------------------------------------------------------------- */

struct pull {
	struct registry *r;
	struct request *q;
	const struct proxy *p;
	char upname[ROUTE_NAME_MAX + 16]; /* the name at the upstream */
	bool by_digest;
	bool have;                        /* the reference is stored here */
	char stored[REGFS_DIGEST_MAX];    /* what it names here */
	int64_t stored_mtime;
	int rc;                           /* the upstream's outcome */
	bool local;                       /* rc is our storage's failure, not the upstream's */
	char reason[REASON_MAX];
	int64_t ok_at;                    /* last answered check before this one */
	uint64_t gen;                     /* expiry deletions ended before the last read */
};

/* Is the reference stored in this repository (tag link, or revision link of
 * a digest whose blob is there)? Fills stored/stored_mtime. */
static bool stored_ref(struct pull *u)
{
	const char *name = u->q->rt.name, *ref = u->q->rt.ref;
	u->gen = proxy_expiry_deletions(u->p);
	char *link = u->by_digest ? regfs_layout_revision_link(name, ref)
				  : regfs_layout_tag_current(name, ref);
	int rc = link ? repo_read_link(u->r, link, u->stored, &u->stored_mtime, NULL) : -ENOMEM;
	free(link);
	if (rc)
		return u->have = false;
	char *blob = regfs_layout_blob_data(u->stored);
	u->have = blob && repo_exists(u->r, blob, NULL);
	free(blob);
	return u->have;
}

/* Is manifest u->stored still this repository's, and (by tag) still what
 * the tag names? */
static bool still_stored(struct pull *u)
{
	char was[REGFS_DIGEST_MAX];
	snprintf(was, sizeof was, "%s", u->stored);
	char *rev = regfs_layout_revision_link(u->q->rt.name, was);
	bool ok = rev && repo_exists(u->r, rev, NULL) && stored_ref(u) && !strcmp(was, u->stored);
	free(rev);
	return ok;
}

/* Answers from storage into *ret (true), the tag and the manifest it names
 * noted as pulled first: whatever then happens to the tag, the expiry keeps
 * the manifest (and so its blobs) for ttl after a client got it. The note
 * waits for a deletion of them in progress (pulls_claim); when a deletion
 * ended since they were read, they are read again: false when they are gone
 * or the tag moved meanwhile (the caller asks again). */
static bool serve(struct pull *u, enum MHD_Result *ret)
{
	proxy_note_pull(u->r, u->p, u->q->rt.name, u->by_digest ? NULL : u->q->rt.ref, u->stored);
	if (proxy_expiry_deletions(u->p) != u->gen && !still_stored(u))
		return false;
	*ret = manifest_serve(u->r, u->q);
	return true;
}

static int64_t ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* GET the manifest upstream, verify, store under our name. */
static int fetch_store(struct pull *u, struct regfs_err *err)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *name = u->q->rt.name, *ref = u->q->rt.ref;
	struct regfs_manifest_resp m = {0};
	/* the library verifies: by digest, the bytes hash to it; by tag, to the
	 * Docker-Content-Digest when the upstream sends one */
	int rc = regfs_client_manifest(u->p->up, u->upname, ref, &m, err);
	if (rc == 0 && u->by_digest && strcmp(m.digest, ref) != 0)
		rc = regfs_errf(err, -EPROTO, "the upstream answered manifest %s for %s", m.digest,
				ref);
	if (rc == 0) {
		/* noted before it is stored: a deletion of it in progress finishes
		 * first (pulls_claim), and none starts until the pull is served */
		proxy_note_pull(u->r, u->p, name, NULL, m.digest);
		rc = manifest_store_fetched(u->r, name, u->by_digest ? NULL : ref, m.digest, m.data,
					    m.len, m.content_type, err);
		/* too large or not a manifest: the upstream's doing; else storage */
		u->local = rc && rc != -EFBIG && rc != -EBADMSG;
	}
	if (rc == 0)
		log_info("proxy: fetched manifest %s:%s from %s (%s): %s, %zu bytes, %lld ms", name,
			 ref, u->p->remoteurl, u->upname, m.digest, m.len, (long long)ms_since(&t0));
	regfs_manifest_resp_free(&m);
	return rc;
}

/* The tag moved upstream to `digest`, whose manifest this storage holds
 * already (the tag moved back, or another cached name has it): linked with
 * no GET, which registries such as Docker Hub count as a pull. -ENOENT when
 * the bytes are not here. */
static int link_stored(struct pull *u, const char *digest)
{
	struct manifest_entry *m = NULL;
	int rc = manifest_load(u->r, digest, &m, NULL); /* verified against the digest */
	struct regfs_err se = {0};
	if (rc == 0) {
		proxy_note_pull(u->r, u->p, u->q->rt.name, NULL, digest); /* as in fetch_store */
		rc = manifest_store_fetched(u->r, u->q->rt.name, u->q->rt.ref, digest, m->data,
					    m->len, m->media_type, &se);
	}
	manifest_bytes_release(u->r->mb, m);
	if (rc == 0)
		log_info("proxy: %s:%s moved at %s to %s, already stored: linked", u->q->rt.name,
			 u->q->rt.ref, u->p->remoteurl, digest);
	return rc == 0 ? 0 : -ENOENT;
}

/* By tag with a stored digest: HEAD upstream; the same digest needs no GET. */
static int revalidate(struct pull *u, struct regfs_err *err)
{
	struct regfs_manifest_req req = {.repo = u->upname, .ref = u->q->rt.ref};
	int rc = regfs_client_manifest_heads(u->p->up, &req, 1);
	if (rc == 0)
		rc = req.rc;
	if (rc == 0 && !strcmp(req.resp.digest, u->stored)) {
		log_debug("proxy: %s:%s unchanged at %s (%s)", u->q->rt.name, u->q->rt.ref,
			  u->p->remoteurl, u->stored);
		regfs_manifest_resp_free(&req.resp);
		return 0;
	}
	if (rc && rc != -EPROTO) /* -EPROTO: no digest header: the GET tells */
		regfs_errf(err, rc, "%s", req.err.msg);
	bool linked = rc == 0 && link_stored(u, req.resp.digest) == 0;
	regfs_manifest_resp_free(&req.resp);
	if (linked || (rc && rc != -EPROTO))
		return linked ? 0 : rc;
	return fetch_store(u, err);
}

/* The upstream request of this pull (the single-flight fill). */
static void ask_upstream(struct pull *u)
{
	if (marked_down(u->p->tags, &u->rc, u->reason, sizeof u->reason))
		return;
	struct regfs_err e = {0};
	u->rc = !u->by_digest && u->have ? revalidate(u, &e) : fetch_store(u, &e);
	snprintf(u->reason, sizeof u->reason, "%s", u->rc ? regfs_err_str(&e) : "");
	note_failure(u->p->tags, u->rc, u->reason);
}

/* ---- answers --------------------------------------------------------------- */

/* The upstream's failure, nothing usable stored: 404, 504 or 502. */
static enum MHD_Result answer_failure(struct pull *u)
{
	struct registry *r = u->r;
	struct request *q = u->q;
	const char *up = u->p->remoteurl;
	if (u->rc == -ENOENT)
		return respond_errorf(r, q, 404, "MANIFEST_UNKNOWN", "manifest unknown: %s:%s "
				      "(not found at the upstream %s)", q->rt.name, q->rt.ref, up);
	if (u->local) /* logged by the answer (a 5xx) */
		return respond_errorf(r, q, 503, "UNAVAILABLE", "storing manifest %s:%s fetched "
				      "from %s failed: %s", q->rt.name, q->rt.ref, up, u->reason);
	if (u->rc == -EACCES)
		log_error("proxy: upstream %s refused the configured credentials for %s: %s "
			  "(check username/password of this upstream)", up, u->upname, u->reason);
	else
		log_warn("proxy: %s:%s: upstream %s failed: %s", q->rt.name, q->rt.ref, up,
			 u->reason);
	if (u->rc == -ETIMEDOUT)
		return respond_errorf(r, q, 504, "UNAVAILABLE", "the upstream %s did not answer in "
				      "time: %s", up, u->reason);
	return respond_errorf(r, q, 502, "UNAVAILABLE", "the upstream %s failed: %s", up,
			      u->reason);
}

/* A stored tag the upstream could not confirm: served as last seen (serve's
 * result). */
static bool serve_last_seen(struct pull *u, enum MHD_Result *ret)
{
	if (u->rc == -EACCES)
		log_error("proxy: upstream %s refused the configured credentials for %s: %s "
			  "(check username/password of this upstream)", u->p->remoteurl, u->upname,
			  u->reason);
	char age[48] = "never since start";
	int64_t at = u->ok_at;
	if (at)
		snprintf(age, sizeof age, "%llds ago", (long long)(time(NULL) - at));
	log_warn("proxy: upstream %s unavailable for %s:%s (%s): serving %s as last seen "
		 "(last successful check %s; stored %llds ago)", u->p->remoteurl, u->q->rt.name,
		 u->q->rt.ref, u->reason, u->stored, age,
		 (long long)(time(NULL) - u->stored_mtime));
	return serve(u, ret);
}

/* After the upstream's outcome (ours or the one we waited for): the answer
 * in *ret (true), or false when what was stored went meanwhile (serve). */
static bool answer(struct pull *u, enum MHD_Result *ret)
{
	if (u->rc == 0) /* stored now: read again (another thread, the expiry, may have
			 * moved or deleted it: then asked again) */
		return stored_ref(u) && serve(u, ret);
	if (u->rc == -ENOENT || !u->have) {
		*ret = answer_failure(u);
		return true;
	}
	return serve_last_seen(u, ret);
}

/* Runs the single flight of (name, ref): either this thread asks the
 * upstream, or it takes the outcome of a request that began after it
 * arrived. Returns with u->rc set. */
static void single_flight(struct pull *u, struct ref_entry *e, struct proxy_tags *t,
			  double arrived)
{
	/* a stored tag younger than revalidate_s is a hit; anything else asks */
	double max_age = u->have && !u->by_digest ? (double)u->p->revalidate_s : 0;
	enum sflight_claim c = sflight_begin(&t->g, &e->sf, max_age);
	u->ok_at = e->ok_at;
	bool fresh_ok = e->sf.valid && e->sf.at >= arrived;
	if (c == SFLIGHT_HIT || fresh_ok || e->fail_at >= arrived) {
		if (c == SFLIGHT_FILL)
			sflight_end(&t->g, &e->sf, false);
		bool failed = c == SFLIGHT_FILL && !fresh_ok;
		u->rc = failed ? e->fail_rc : 0;
		u->local = failed && e->fail_local;
		snprintf(u->reason, sizeof u->reason, "%s", failed ? e->fail_msg : "");
		return;
	}
	pthread_mutex_unlock(&t->g.mu);
	ask_upstream(u);
	pthread_mutex_lock(&t->g.mu);
	if (u->rc == 0) {
		e->ok_at = (int64_t)time(NULL);
	} else {
		e->fail_at = sflight_now();
		e->fail_rc = u->rc;
		e->fail_local = u->local;
		snprintf(e->fail_msg, sizeof e->fail_msg, "%s", u->reason);
	}
	/* a stored tag whose check failed counts as checked: served as last
	 * seen until revalidate_s, without a request per pull to a down upstream */
	sflight_end(&t->g, &e->sf, u->rc == 0 || (u->have && !u->by_digest && u->rc != -ENOENT));
}

/* One attempt: the answer in *ret (true), or false when the expiry deleted
 * what was about to be served (the caller tries again). */
static bool attempt(struct pull *u, enum MHD_Result *ret)
{
	struct registry *r = u->r;
	struct request *q = u->q;
	if (stored_ref(u) && u->by_digest)
		return serve(u, ret); /* content-addressed: no upstream check */
	struct proxy_tags *t = u->p->tags;
	double arrived = sflight_now();
	pthread_mutex_lock(&t->g.mu);
	struct ref_entry *e = entry_get(t, q->rt.name, q->rt.ref);
	if (!e) {
		pthread_mutex_unlock(&t->g.mu);
		*ret = respond_errorf(r, q, 503, "UNAVAILABLE", "out of memory; retry");
		return true;
	}
	single_flight(u, e, t, arrived);
	entry_put(t, e);
	pthread_mutex_unlock(&t->g.mu);
	return answer(u, ret);
}

#define ATTEMPTS 3

enum MHD_Result proxy_manifest(struct registry *r, struct request *q)
{
	struct pull u = {.r = r, .q = q, .p = q->proxy, .by_digest = strchr(q->rt.ref, ':') != NULL};
	const char *un = NULL;
	proxy_of(r, q->rt.name, &un);
	if (!un || proxy_upstream_name(u.p, un, u.upname, sizeof u.upname))
		return respond_errorf(r, q, 400, "NAME_INVALID", "invalid repository name: %s",
				      q->rt.name);
	enum MHD_Result ret;
	for (int i = 0; i < ATTEMPTS; i++) {
		if (attempt(&u, &ret))
			return ret;
		log_info("proxy: %s:%s: %s was expired from the cache or moved while being "
			 "pulled: asking again", q->rt.name, q->rt.ref, u.stored);
		memset(u.stored, 0, sizeof u.stored);
		u.have = false;
	}
	return respond_errorf(r, q, 503, "UNAVAILABLE", "manifest %s:%s was expired from the "
			      "cache while being pulled, %d times in a row; retry", q->rt.name,
			      q->rt.ref, ATTEMPTS);
}

/* ---- tags list ------------------------------------------------------------- */

int proxy_list_tags(struct registry *r, struct request *q, struct strvec *out)
{
	const struct proxy *p = q->proxy;
	const char *un = NULL;
	char upname[ROUTE_NAME_MAX + 16];
	proxy_of(r, q->rt.name, &un);
	if (!un || proxy_upstream_name(p, un, upname, sizeof upname))
		return -EINVAL;
	struct regfs_strv tags = {0};
	struct regfs_err e = {0};
	int rc;
	if (!marked_down(p->tags, &rc, e.msg, sizeof e.msg)) {
		rc = regfs_client_tags(p->up, upname, &tags, &e);
		note_failure(p->tags, rc, e.msg);
	}
	/* the upstream's names go to our clients and the mount (as directory
	 * names): one that is not a tag ("..", "a/b") is dropped, not passed on */
	size_t bad = 0;
	for (size_t i = 0; rc == 0 && i < tags.n; i++) {
		if (regfs_tag_valid(tags.v[i]))
			rc = strvec_push(out, tags.v[i]);
		else
			bad++;
	}
	if (bad)
		log_warn("proxy: tags of %s from upstream %s: %zu names that are not tags dropped",
			 q->rt.name, p->remoteurl, bad);
	regfs_strv_free(&tags);
	if (rc) {
		strvec_clear(out);
		log_warn("proxy: tags of %s from upstream %s failed (%s): listing the stored tags",
			 q->rt.name, p->remoteurl, rc == -ENOMEM ? "out of memory" : e.msg);
		return rc;
	}
	strvec_sort(out);
	strvec_uniq(out);
	return 0;
}
