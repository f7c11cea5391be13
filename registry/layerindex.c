/* layerindex.c — push-time layer indexes: queue, workers, storage, GC and
 * the endpoint (layerindex.h describes the storage layout).
 *
 * A manifest PUT costs one small storage write (the marker) and a signal;
 * the index is built by `workers` threads, one layer at a time, reading the
 * blob through the storage reader (so S3 streams it) and writing the encoded
 * index with one atomic put. Work is idempotent rather than locked: an
 * index is a function of the layer's bytes, a worker checks for it before
 * building, and two instances that build the same layer at once write the
 * same object; so instances sharing a bucket need no lease, and a marker
 * can be picked up by any of them. A scan picks up markers older than
 * `rescan` (their writer died, or its queue was full) and, at start, all. */
#include "layerindex.h"

#include "maint.h"
#include "metrics.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"

#include <regfs/digest.h>
#include <regfs/dynbuf.h>
#include <regfs/fmt.h>
#include <regfs/layer.h>
#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/oci.h>
#include <regfs/strvec.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The record of a layer the builder refused, named for the builder's version:
 * a newer builder (which may accept it) does not see an older one's record
 * and tries again. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define ERROR_RECORD "error-b" STR(LAYER_BUILDER_VERSION)

#define LI_DIR REGFS_LAYOUT_ROOT "/_regfs/layerindex"
#define LI_QUEUE REGFS_LAYOUT_ROOT "/_regfs/layerindex-queue"
#define LI_MEDIA_TYPE "application/vnd.regfs.layer-index.v1"
#define MAX_WORKERS 64

struct layerindex {
	struct registry *r;
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* work queued, or stopping */
	bool stopping;
	/* manifests to do: ring of `cap` digests; busy: being done now */
	char (*ring)[REGFS_DIGEST_MAX];
	size_t cap, head, n;
	struct strvec busy;
	int64_t next_scan;            /* when a worker scans the stored queue */
	bool first_scan;              /* the scan at start takes every marker */
	int n_workers;
	pthread_t workers[MAX_WORKERS];
};

/* ---- paths ---- */

/* "<alg>/<hex[0:2]>/<hex>" of a valid digest, or NULL. */
static char *digest_dir(const char *digest, const char *leaf)
{
	const char *c = strchr(digest, ':');
	if (!c || !regfs_digest_valid(digest))
		return NULL;
	const char *hex = c + 1;
	return xasprintf(LI_DIR "/%.*s/%.2s/%s/%s", (int)(c - digest), digest, hex, hex, leaf);
}

static char *marker_path(const char *digest)
{
	char *c = strchr(digest, ':');
	if (!c || !regfs_digest_valid(digest))
		return NULL;
	return xasprintf(LI_QUEUE "/%.*s-%s", (int)(c - digest), digest, c + 1);
}

/* The manifest digest a marker's name stands for (out), false if not one. */
static bool marker_digest(const char *base, char out[REGFS_DIGEST_MAX])
{
	const char *dash = strchr(base, '-');
	if (!dash || (size_t)(dash - base) > 16)
		return false;
	snprintf(out, REGFS_DIGEST_MAX, "%.*s:%s", (int)(dash - base), base, dash + 1);
	return regfs_digest_valid(out);
}

/* A layer blob we index: a tar, compressed or not, that the registry holds. */
static bool is_tar_layer(const char *mt)
{
	if (!mt || strstr(mt, ".foreign.") || strstr(mt, ".nondistributable."))
		return false;
	const char *t = strstr(mt, ".tar");
	return t && (t[4] == '\0' || t[4] == '+' || !strcmp(t + 4, ".gzip"));
}

bool layerindex_enabled(const struct registry *r)
{
	return r->li != NULL;
}

/* ---- the in-memory queue (under li->lock) ---- */

static bool queued_locked(struct layerindex *li, const char *digest)
{
	for (size_t i = 0; i < li->n; i++)
		if (!strcmp(li->ring[(li->head + i) % li->cap], digest))
			return true;
	for (size_t i = 0; i < li->busy.n; i++)
		if (!strcmp(li->busy.v[i], digest))
			return true;
	return false;
}

/* Queues digest unless queued, busy or the ring is full (the marker stays
 * in storage for a later scan). */
static void push_locked(struct layerindex *li, const char *digest)
{
	if (li->n == li->cap || queued_locked(li, digest))
		return;
	snprintf(li->ring[(li->head + li->n) % li->cap], REGFS_DIGEST_MAX, "%s", digest);
	li->n++;
	pthread_cond_signal(&li->cond);
}

void layerindex_enqueue(struct registry *r, const struct regfs_manifest *m, const char *digest)
{
	struct layerindex *li = r->li;
	if (!li)
		return;
	bool any = false;
	for (size_t i = 0; i < m->n_layers && !any; i++)
		any = is_tar_layer(m->layers[i].media_type);
	if (!any)
		return;
	char *p = marker_path(digest);
	struct regfs_err e = {0};
	if (!p || regfs_storage_put(r->st, p, digest, strlen(digest), &e) != 0) {
		log_warn("layer index: cannot queue manifest %s (%s): its layers are indexed "
			 "when pulled through a mount instead", digest,
			 p ? regfs_err_str(&e) : "out of memory");
		free(p);
		return;
	}
	free(p);
	pthread_mutex_lock(&li->lock);
	push_locked(li, digest);
	pthread_mutex_unlock(&li->lock);
}

/* ---- building one layer's index ---- */

struct blob_src {
	struct regfs_reader *rd;
	struct regfs_err err;         /* the storage error, when reading failed */
	bool failed;
	struct layerindex *li;
};

static ssize_t blob_read(void *arg, void *buf, size_t len)
{
	struct blob_src *s = arg;
	pthread_mutex_lock(&s->li->lock);
	bool stop = s->li->stopping;
	pthread_mutex_unlock(&s->li->lock);
	if (stop) {
		s->failed = true;
		regfs_errf(&s->err, -ECANCELED, "the registry is stopping");
		return -ECANCELED;
	}
	ssize_t n = regfs_reader_read(s->rd, buf, len, &s->err);
	if (n < 0)
		s->failed = true;
	return n;
}

/* Writes the error record of a layer that cannot be indexed: 0, or <0 when
 * it could not be stored (the job is then retried later). */
static int put_error(struct registry *r, const char *layer, const char *why)
{
	char *p = digest_dir(layer, ERROR_RECORD);
	struct regfs_err e = {0};
	int rc = p ? regfs_storage_put(r->st, p, why, strlen(why), &e)
		   : regfs_errf(&e, -ENOMEM, "out of memory");
	free(p);
	if (rc == 0)
		log_warn("layer index: layer %s is not indexed: %s", layer, why);
	else
		log_warn("layer index: layer %s is not indexed (%s), and storing why failed, "
			 "will retry: %s", layer, why, regfs_err_str(&e));
	return rc;
}

/* Builds the index of `layer` from storage and writes it at `dst`.
 * 0 done (index or error record written); <0 a transient failure (storage,
 * memory, stopping): the marker stays for a retry. */
static int build_one(struct layerindex *li, const char *layer, const char *dst)
{
	struct registry *r = li->r;
	char *blob = regfs_layout_blob_data(layer);
	struct blob_src src = {.li = li};
	struct regfs_err e = {0};
	struct layer_index *ix = NULL;
	struct dynbuf out = DYNBUF_INIT(DYNBUF_NO_CAP);
	uint64_t t0 = now_us();
	int rc = blob ? regfs_storage_reader(r->st, blob, 0, &src.rd, &e) : -ENOMEM;
	struct layer_build_opts opts = {.name = layer};
	if (rc == 0)
		rc = layer_index_build(blob_read, &src, &opts, &ix, &e);
	if (rc != 0 && !src.failed && rc != -ENOMEM && src.rd) {
		rc = put_error(r, layer, regfs_err_str(&e)); /* the blob's content: final */
		goto out;
	}
	if (rc != 0) {
		log_warn("layer index: building the index of %s failed, will retry: %s", layer,
			 regfs_err_str(src.failed ? &src.err : &e));
		goto out;
	}
	rc = layer_index_encode(ix, &out, &e);
	if (rc == 0)
		rc = regfs_storage_put(r->st, dst, dynbuf_ptr(&out), dynbuf_len(&out), &e);
	if (rc != 0) {
		log_warn("layer index: storing the index of %s failed, will retry: %s", layer,
			 regfs_err_str(&e));
		goto out;
	}
	struct layer_index_stats ls;
	layer_index_stats(ix, &ls);
	log_info("layer index built: %s (%" PRIu64 " bytes, %" PRIu64 " uncompressed, %zu "
		 "entries, %zu spans; index %zu bytes; %" PRIu64 " ms)", layer, ls.blob_size,
		 ls.tar_size, ls.entries, ls.spans, dynbuf_len(&out), (now_us() - t0) / 1000);
	metrics_count(METRICS_LAYER_INDEXES_BUILT, 1);
out:
	if (src.rd)
		regfs_reader_close(src.rd);
	layer_index_free(ix);
	dynbuf_free(&out);
	free(blob);
	return rc;
}

/* The stored size of a layer blob: 0 with *size, -ENOENT when it is gone
 * (nothing to index), another <0 when storage failed (retried later). */
static int blob_size(struct registry *r, const char *layer, uint64_t *size)
{
	char *p = regfs_layout_blob_data(layer);
	struct regfs_stat_info st;
	struct regfs_err e = {0};
	int rc = p ? regfs_storage_stat(r->st, p, &st, &e) : -ENOMEM;
	free(p);
	if (rc == 0)
		*size = st.size;
	else if (rc != -ENOENT)
		log_warn("layer index: cannot stat layer %s, will retry: %s", layer,
			 regfs_err_str(&e));
	return rc;
}

/* One layer: skipped when its index or error record exists, or its blob is
 * gone. The size checked against maxsize is the stored one (a manifest's
 * descriptor could say anything). */
static int index_layer(struct layerindex *li, const char *layer)
{
	struct registry *r = li->r;
	char *dst = digest_dir(layer, "data");
	char *errp = digest_dir(layer, ERROR_RECORD);
	uint64_t size = 0;
	int rc = 0;
	if (!dst || !errp) {
		rc = -ENOMEM;
	} else if (repo_exists(r, dst, NULL) || repo_exists(r, errp, NULL)) {
		rc = 0;
	} else if ((rc = blob_size(r, layer, &size)) != 0) {
		rc = rc == -ENOENT ? 0 : rc;
	} else if (size > r->cfg->layerindex.maxsize) {
		char why[160];
		snprintf(why, sizeof why, "%" PRIu64 " bytes is over regfs.layerindex.maxsize "
			 "(%" PRIu64 ")", size, r->cfg->layerindex.maxsize);
		rc = put_error(r, layer, why);
	} else {
		rc = build_one(li, layer, dst);
	}
	free(dst);
	free(errp);
	return rc;
}

/* One queued manifest: every tar layer, then the marker is deleted (unless
 * a layer failed for a reason that may pass). */
static void do_manifest(struct layerindex *li, const char *digest)
{
	struct registry *r = li->r;
	char *mp = regfs_layout_blob_data(digest);
	char *marker = marker_path(digest);
	char *data = NULL;
	size_t len = 0;
	struct regfs_err e = {0};
	struct regfs_manifest *m = NULL;
	int rc = mp && marker ? regfs_storage_get(r->st, mp, &data, &len, &e) : -ENOMEM;
	if (rc == 0 && regfs_manifest_parse(data, len, NULL, &m, &e) != 0)
		log_warn("layer index: queued manifest %s does not parse (%s): dropped", digest,
			 regfs_err_str(&e));
	else if (rc == -ENOENT)
		log_info("layer index: queued manifest %s is gone: dropped", digest);
	else if (rc != 0)
		log_warn("layer index: cannot read queued manifest %s, will retry: %s", digest,
			 regfs_err_str(&e));
	int failed = rc != 0 && rc != -ENOENT;
	for (size_t i = 0; m && i < m->n_layers; i++) {
		if (is_tar_layer(m->layers[i].media_type) &&
		    index_layer(li, m->layers[i].digest) != 0)
			failed = 1;
	}
	if (!failed && marker)
		regfs_storage_del(r->st, marker, NULL);
	regfs_manifest_free(m);
	free(data);
	free(mp);
	free(marker);
}

/* ---- scanning the stored queue ---- */

struct scan {
	struct layerindex *li;
	int64_t cutoff;               /* markers older than this (all: INT64_MAX) */
	struct strvec found;
};

static int scan_cb(const char *path, void *ud)
{
	struct scan *s = ud;
	char d[REGFS_DIGEST_MAX];
	if (marker_digest(regfs_path_base(path), d))
		strvec_push(&s->found, d);
	return 0;
}

/* Queues the markers that no live worker is likely to be doing. */
static void scan_queue(struct layerindex *li, bool all)
{
	struct registry *r = li->r;
	struct scan s = {.li = li, .cutoff = (int64_t)time(NULL) - r->cfg->layerindex.rescan_s};
	struct regfs_err e = {0};
	int rc = regfs_storage_list(r->st, LI_QUEUE, scan_cb, &s, &e);
	if (rc != 0 && rc != -ENOENT)
		log_warn("layer index: cannot list the queue: %s", regfs_err_str(&e));
	size_t queued = 0;
	for (size_t i = 0; i < s.found.n; i++) {
		char *p = marker_path(s.found.v[i]);
		struct regfs_stat_info st;
		if (p && (all || (repo_exists(r, p, &st) && st.mtime < s.cutoff))) {
			pthread_mutex_lock(&li->lock);
			size_t before = li->n;
			push_locked(li, s.found.v[i]);
			queued += li->n > before;
			pthread_mutex_unlock(&li->lock);
		}
		free(p);
	}
	if (queued)
		log_info("layer index: %zu queued manifest(s) found in storage", queued);
	strvec_clear(&s.found);
}

/* ---- workers ---- */

/* Waits for a manifest to do (copied to out, marked busy) or for the time to
 * scan (returns 1) ; 0 with a job; -1 when stopping. Under li->lock. */
static int next_job_locked(struct layerindex *li, char out[REGFS_DIGEST_MAX])
{
	while (!li->stopping) {
		if (li->n) {
			snprintf(out, REGFS_DIGEST_MAX, "%s", li->ring[li->head]);
			li->head = (li->head + 1) % li->cap;
			li->n--;
			strvec_push(&li->busy, out);
			return 0;
		}
		int64_t now = (int64_t)time(NULL);
		if (now >= li->next_scan) {
			li->next_scan = now + li->r->cfg->layerindex.rescan_s;
			return 1;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(li->next_scan - now);
		pthread_cond_timedwait(&li->cond, &li->lock, &ts);
	}
	return -1;
}

static void busy_drop_locked(struct layerindex *li, const char *digest)
{
	for (size_t i = 0; i < li->busy.n; i++) {
		if (!strcmp(li->busy.v[i], digest)) {
			free(li->busy.v[i]);
			li->busy.v[i] = li->busy.v[--li->busy.n];
			li->busy.v[li->busy.n] = NULL; /* strvec stays NULL-terminated */
			return;
		}
	}
}

static void *worker(void *arg)
{
	struct layerindex *li = arg;
	char digest[REGFS_DIGEST_MAX];
	pthread_mutex_lock(&li->lock);
	for (int k; (k = next_job_locked(li, digest)) >= 0;) {
		bool all = k == 1 && li->first_scan;
		if (k == 1)
			li->first_scan = false;
		pthread_mutex_unlock(&li->lock);
		if (k == 1)
			scan_queue(li, all);
		else
			do_manifest(li, digest);
		pthread_mutex_lock(&li->lock);
		if (k == 0)
			busy_drop_locked(li, digest);
	}
	pthread_mutex_unlock(&li->lock);
	return NULL;
}

static void li_free(struct layerindex *li)
{
	if (!li)
		return;
	pthread_mutex_destroy(&li->lock);
	pthread_cond_destroy(&li->cond);
	strvec_clear(&li->busy);
	free(li->ring);
	free(li);
}

int layerindex_start(struct registry *r)
{
	const struct regfs_config *cfg = r->cfg;
	if (!cfg->layerindex.enabled)
		return 0;
	struct layerindex *li = calloc(1, sizeof *li);
	size_t cap = (size_t)cfg->layerindex.maxqueue;
	if (!li || !(li->ring = calloc(cap, sizeof *li->ring))) {
		free(li);
		log_error("layer index: out of memory: push-time indexing is off");
		return -ENOMEM;
	}
	li->r = r;
	li->cap = cap;
	li->first_scan = true;
	pthread_mutex_init(&li->lock, NULL);
	pthread_cond_init(&li->cond, NULL);
	int want = cfg->layerindex.workers < MAX_WORKERS ? cfg->layerindex.workers : MAX_WORKERS;
	for (int i = 0; i < want; i++) {
		if (pthread_create(&li->workers[li->n_workers], NULL, worker, li) == 0)
			li->n_workers++;
	}
	if (!li->n_workers) {
		li_free(li);
		log_error("layer index: cannot start a worker thread: push-time indexing is off");
		return -EAGAIN;
	}
	r->li = li;
	log_info("layer index: %d worker(s), layers up to %" PRIu64 " bytes", li->n_workers,
		 cfg->layerindex.maxsize);
	return 0;
}

void layerindex_stop(struct registry *r)
{
	struct layerindex *li = r->li;
	if (!li)
		return;
	maint_join_threads(&li->lock, &li->cond, &li->stopping, li->workers, li->n_workers);
	r->li = NULL;
	li_free(li);
}

/* ---- garbage collection ---- */

struct li_gc {
	struct registry *r;
	bool dry_run;
	uint64_t removed;
	int depth;                    /* 0: <alg>, 1: <hex[0:2]>, 2: <hex> */
	char alg[16];
	struct strvec dirs;
};

static int gc_list_cb(const char *path, void *ud)
{
	strvec_push(&((struct li_gc *)ud)->dirs, path);
	return 0;
}

/* The layer digest of ".../layerindex/<alg>/<2>/<hex>" when the blob is
 * gone: removes that directory. */
static void gc_index_dir(struct li_gc *g, const char *dir)
{
	char digest[REGFS_DIGEST_MAX];
	snprintf(digest, sizeof digest, "%s:%s", g->alg, regfs_path_base(dir));
	char *blob = regfs_digest_valid(digest) ? regfs_layout_blob_data(digest) : NULL;
	if (!blob || repo_exists(g->r, blob, NULL)) {
		free(blob);
		return;
	}
	free(blob);
	g->removed++;
	if (g->dry_run) {
		log_info("layer index gc (dry run): would remove the index of %s", digest);
	} else if (regfs_storage_del(g->r->st, dir, NULL) == 0) {
		log_info("layer index gc: removed the index of %s (its blob is gone)", digest);
	}
}

/* Walks one level of the index tree under `dir`. */
static int gc_walk(struct li_gc *g, const char *dir, int depth, struct regfs_err *err)
{
	struct strvec saved = g->dirs;
	g->dirs = (struct strvec){0};
	int rc = regfs_storage_list(g->r->st, dir, gc_list_cb, g, err);
	if (rc == -ENOENT)
		rc = 0;
	struct strvec mine = g->dirs;
	g->dirs = saved;
	for (size_t i = 0; rc == 0 && i < mine.n; i++) {
		if (depth == 0)
			snprintf(g->alg, sizeof g->alg, "%s", regfs_path_base(mine.v[i]));
		if (depth == 2)
			gc_index_dir(g, mine.v[i]);
		else
			rc = gc_walk(g, mine.v[i], depth + 1, err);
	}
	strvec_clear(&mine);
	return rc;
}

static int gc_marker_cb(const char *path, void *ud)
{
	struct li_gc *g = ud;
	char d[REGFS_DIGEST_MAX];
	if (!marker_digest(regfs_path_base(path), d))
		return 0;
	char *mp = regfs_layout_blob_data(d);
	if (mp && !repo_exists(g->r, mp, NULL)) {
		g->removed++;
		if (!g->dry_run)
			regfs_storage_del(g->r->st, path, NULL);
	}
	free(mp);
	return 0;
}

int layerindex_gc(struct registry *r, bool dry_run, uint64_t *removed, struct regfs_err *err)
{
	struct li_gc g = {.r = r, .dry_run = dry_run};
	int rc = gc_walk(&g, LI_DIR, 0, err);
	if (rc == 0) {
		rc = regfs_storage_list(r->st, LI_QUEUE, gc_marker_cb, &g, err);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (removed)
		*removed = g.removed;
	return rc;
}

/* ---- GET/HEAD /v2/<name>/_regfs/layerindex/<digest> ---- */

/* 404 LAYER_INDEX_UNKNOWN, saying why when an error record exists. */
static enum MHD_Result not_built(struct registry *r, struct request *q)
{
	char *p = digest_dir(q->rt.ref, ERROR_RECORD);
	char *why = NULL;
	size_t len = 0;
	if (p && regfs_storage_get(r->st, p, &why, &len, NULL) != 0)
		why = NULL;
	free(p);
	enum MHD_Result ret;
	if (why)
		ret = respond_errorf(r, q, 404, "LAYER_INDEX_UNKNOWN", "layer %s has no index: "
				     "%.300s", q->rt.ref, why);
	else
		ret = respond_errorf(r, q, 404, "LAYER_INDEX_UNKNOWN", "the index of layer %s is "
				     "not built (yet%s): build it from the blob", q->rt.ref,
				     r->li ? "" : "; regfs.layerindex is off on this instance");
	free(why);
	return ret;
}

/* Answers with the index bytes (taken: freed by libmicrohttpd) and their
 * digest in Docker-Content-Digest, which the client checks. */
static enum MHD_Result send_index(struct registry *r, struct request *q, char *data,
				  size_t len)
{
	char dg[REGFS_DIGEST_MAX];
	regfs_digest_buf(REGFS_SHA256, data, len, dg);
	struct MHD_Response *resp;
	if (request_is_head(q)) {
		free(data);
		resp = response_head(len);
	} else {
		resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(data);
	}
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, LI_MEDIA_TYPE);
		MHD_add_response_header(resp, "Docker-Content-Digest", dg);
	}
	return respond(r, q, 200, resp, request_is_head(q) ? 0 : len);
}

enum MHD_Result h_layer_index(struct registry *r, struct request *q)
{
	if (q->rt.ref_truncated || !regfs_digest_valid(q->rt.ref))
		return respond_errorf(r, q, 400, "DIGEST_INVALID", "invalid digest \"%.140s\": "
				      "expected sha256:<64 lowercase hex>", q->rt.ref);
	char *link = regfs_layout_layer_link(q->rt.name, q->rt.ref);
	char *blob = regfs_layout_blob_data(q->rt.ref);
	bool held = link && blob && repo_exists(r, link, NULL) && repo_exists(r, blob, NULL);
	free(link);
	free(blob);
	if (!held)
		return respond_errorf(r, q, 404, "BLOB_UNKNOWN", "blob unknown to registry: "
				      "repository %s holds no layer %s", q->rt.name, q->rt.ref);
	char *p = digest_dir(q->rt.ref, "data");
	char *data = NULL;
	size_t len = 0;
	struct regfs_err e = {0};
	int rc = p ? regfs_storage_get(r->st, p, &data, &len, &e) : -ENOMEM;
	free(p);
	if (rc == -ENOENT)
		return not_built(r, q);
	if (rc != 0)
		return respond_storage_error(r, q, &e);
	return send_index(r, q, data, len);
}
