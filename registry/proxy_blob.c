/* proxy_blob.c — blobs of cached repositories that are not stored yet
 * (proxy.h, docs/proxy.md "Blobs").
 *
 * A flight is one upstream fetch of one blob for one cached repository,
 * keyed by (our repository name, digest): the first GET starts it in its
 * own thread (a client hanging up does not stop it), into a spool
 * (proxy_spool.h); that GET and every GET of the same blob meanwhile answer
 * from the spool as it grows. The upstream's bytes are hashed as they come
 * (regfs_client_blob_stream) and the spool is finished only when they match
 * the digest; the spool holds back the last byte until then, so a mismatch,
 * a short body or a dropped upstream ends every waiting response with an
 * error (the connection is cut) and no client completes a wrong blob. A
 * verified blob is stored as an upload finish stores one (upload_store:
 * published to blobs/, linked in the repository, under the online GC's
 * protocol, in the usage model); only then is the flight removed, and later
 * requests are served from storage by blobs.c.
 *
 * The key holds the repository because a blob must only become readable
 * through a cached repository whose upstream has it: a flight of another
 * repository is not joined, and a blob already stored (pushed, or cached
 * for another repository) is linked here only after an upstream HEAD of it
 * in this repository answered 200.
 *
 * HEAD asks the upstream (a HEAD; nothing is fetched). */
#include "proxy.h"
#include "proxy_internal.h"

#include "blobs.h"
#include "conn.h"
#include "gc.h"
#include "handlers.h"
#include "notify.h"
#include "proxy_spool.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"
#include "uploads.h"
#include "usage.h"

#include <regfs/client.h>
#include <regfs/config.h>
#include <regfs/layout.h>
#include <regfs/log.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* A reader waits this long for the next byte before it gives up (the
 * fetch itself fails sooner: the upstream client bounds stalls). */
#define READ_STALL_MS (120 * 1000)

struct flight {
	struct flight *next;
	char name[ROUTE_NAME_MAX];      /* our repository */
	char upname[ROUTE_NAME_MAX + 16]; /* the upstream's (Docker Hub: library/ added) */
	char digest[REGFS_DIGEST_MAX];
	struct spool *sp;               /* the flight's reference */
	struct registry *r;
	const struct proxy *p;
	struct proxy_flights *f;
	uint64_t got;                   /* bytes spooled so far (the fetch thread's) */
	uint64_t checked;               /* `got` at the last free-space check */
	struct timespec t0;             /* the fetch's start (CLOCK_MONOTONIC) */
};

struct proxy_flights {
	pthread_mutex_t mu;
	pthread_cond_t idle;            /* running dropped to 0 */
	struct flight *head;
	int running;                    /* fetch threads alive */
	bool stopping;
	char spooldir[4096];
};

/* ---- the table ---- */

static void default_spooldir(char *out, size_t n)
{
	const char *t = getenv("TMPDIR");
	snprintf(out, n, "%s/regfs-registry-spool-%u", t && *t == '/' ? t : "/var/tmp",
		 (unsigned)geteuid());
}

int proxy_flights_new(struct registry *r, struct proxy_flights **out, struct regfs_err *err)
{
	*out = NULL;
	struct proxy_flights *f = calloc(1, sizeof *f);
	if (!f)
		return regfs_errf(err, -ENOMEM, "out of memory");
	const char *d = r && r->cfg ? r->cfg->proxycache_spooldir : NULL;
	if (d && *d)
		snprintf(f->spooldir, sizeof f->spooldir, "%s", d);
	else
		default_spooldir(f->spooldir, sizeof f->spooldir);
	int rc = spool_dir_check(f->spooldir, err);
	if (rc) {
		free(f);
		return rc;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->idle, NULL);
	*out = f;
	return 0;
}

void proxy_flights_free(struct proxy_flights *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stopping = true; /* fetches stop at their next chunk */
	while (f->running)
		pthread_cond_wait(&f->idle, &f->mu);
	pthread_mutex_unlock(&f->mu);
	pthread_cond_destroy(&f->idle);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void proxies_release_waiters(struct registry *r)
{
	struct proxies *ps = r ? r->proxies : NULL;
	for (int i = 0; ps && i < ps->n; i++) {
		struct proxy_flights *f = ps->v[i].flights;
		if (!f)
			continue;
		pthread_mutex_lock(&f->mu);
		f->stopping = true; /* no new flight, fetches stop at their next chunk */
		for (struct flight *fl = f->head; fl; fl = fl->next)
			spool_fail(fl->sp, -ECANCELED); /* wakes its waiters; DONE stays DONE */
		pthread_mutex_unlock(&f->mu);
	}
}

/* With f->mu held: the live flight of (name, digest), or NULL. A flight
 * whose spool failed is dropped from the table here, so the request that
 * finds it starts a new one. */
static struct flight *flight_find(struct proxy_flights *f, const char *name, const char *digest)
{
	for (struct flight **pp = &f->head; *pp; pp = &(*pp)->next) {
		struct flight *fl = *pp;
		if (strcmp(fl->digest, digest) != 0 || strcmp(fl->name, name) != 0)
			continue;
		if (spool_state(fl->sp, NULL) != SPOOL_FAILED)
			return fl;
		*pp = fl->next;
		fl->next = NULL;
		return NULL;
	}
	return NULL;
}

/* With f->mu held: removes fl if it is still in the table. */
static void flight_unlink(struct proxy_flights *f, struct flight *fl)
{
	for (struct flight **pp = &f->head; *pp; pp = &(*pp)->next)
		if (*pp == fl) {
			*pp = fl->next;
			return;
		}
}

/* ---- the fetch (its own thread) ---- */

/* The spool's bounds. A blob is verified only at its end, so an upstream
 * that sends no Content-Length, or an endless body, would otherwise fill the
 * spool's disk (by default /var/tmp, often the storage's disk too): past
 * regfs.limits.uploadsize (when set) or into the last SPOOL_RESERVE_PCT of
 * the spool's file system the fetch fails and the spool is removed. */
#define SPOOL_RESERVE_PCT 5
#define SPOOL_CHECK_EVERY (64u << 20)

/* 0 while `more` bytes after fl->got fit; else -EFBIG/-ENOSPC, logged. */
static int spool_room(struct flight *fl, uint64_t more)
{
	uint64_t max = fl->r->cfg->limits.uploadsize, want = fl->got + more;
	if (max && want > max) {
		log_warn("proxy: blob %s of %s from %s: over regfs.limits.uploadsize (%" PRIu64
			 " bytes): not fetched further", fl->digest, fl->name, fl->p->remoteurl, max);
		return -EFBIG;
	}
	if (want - fl->checked < SPOOL_CHECK_EVERY && more < SPOOL_CHECK_EVERY)
		return 0;
	fl->checked = fl->got;
	struct statvfs v;
	if (statvfs(fl->f->spooldir, &v) != 0 || v.f_blocks == 0)
		return 0; /* cannot tell: the write itself fails when the disk is full */
	uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
	uint64_t reserve = (uint64_t)v.f_blocks * v.f_frsize / 100 * SPOOL_RESERVE_PCT;
	uint64_t need = want - fl->got; /* the rest of an announced size, or the next chunk */
	if (avail >= need && avail - need >= reserve)
		return 0;
	log_warn("proxy: blob %s of %s from %s: the spool directory %s would have less than "
		 "%d%% free: not fetched further (regfs.proxycache.spooldir)", fl->digest, fl->name,
		 fl->p->remoteurl, fl->f->spooldir, SPOOL_RESERVE_PCT);
	return -ENOSPC;
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* The fetch's deadline: the upstream client only cuts a stall (under 1
 * byte/s for its timeout), so an upstream trickling a few bytes a second
 * would keep the fetch, and every client waiting on it, alive for ever.
 * Past regfs.proxycache.minrategrace, a fetch whose average rate since its
 * start is under regfs.proxycache.minrate is cut (-ETIMEDOUT, logged with
 * the upstream and the rate): nothing is stored and the next request
 * fetches again. An average, not the last chunk's rate: a short pause of a
 * fast upstream is not punished. */
static int rate_check(struct flight *fl)
{
	const struct regfs_config *cfg = fl->r->cfg;
	uint64_t min = cfg->proxycache_minrate;
	uint64_t ms = ms_since(&fl->t0);
	if (!min || ms < (uint64_t)cfg->proxycache_minrate_grace_s * 1000 || ms == 0)
		return 0;
	double rate = (double)fl->got * 1000.0 / (double)ms;
	if (rate >= (double)min)
		return 0;
	log_warn("proxy: blob %s of %s from %s/%s: %.1f bytes/s on average over %.1f s "
		 "(%" PRIu64 " bytes), under regfs.proxycache.minrate (%" PRIu64 " bytes/s): "
		 "fetch cut", fl->digest, fl->name, fl->p->remoteurl, fl->upname, rate,
		 (double)ms / 1000.0, fl->got, min);
	return -ETIMEDOUT;
}

static int sink_size(void *arg, int64_t len)
{
	struct flight *fl = arg;
	if (len < 0)
		return 0;
	int rc = spool_room(fl, (uint64_t)len);
	if (rc == 0)
		spool_set_size(fl->sp, (uint64_t)len);
	return rc;
}

static int sink_data(void *arg, const void *buf, size_t n)
{
	struct flight *fl = arg;
	if (__atomic_load_n(&fl->f->stopping, __ATOMIC_RELAXED))
		return -ECANCELED;
	int rc = spool_room(fl, n);
	if (rc == 0 && (rc = spool_append(fl->sp, buf, n, NULL)) == 0)
		fl->got += n;
	return rc ? rc : rate_check(fl);
}

/* upload_store's source: the finished spool from the start. */
struct spool_src {
	struct spool *sp;
	uint64_t off;
};

static ssize_t spool_src_read(void *arg, void *buf, size_t n, struct regfs_err *e)
{
	struct spool_src *s = arg;
	ssize_t got = spool_read(s->sp, s->off, buf, n, READ_STALL_MS);
	if (got < 0)
		return regfs_errf(e, (int)got, "spool file: read failed: %s", strerror((int)-got));
	s->off += (uint64_t)got;
	return got;
}

/* Fetch, verify, store. 0 or -errno with e set. */
static int fetch_and_store(struct flight *fl, uint64_t *size, struct regfs_err *e)
{
	struct regfs_blob_sink sink = {sink_size, sink_data, fl};
	int rc = regfs_client_blob_stream(fl->p->up, fl->upname, fl->digest, &sink, e);
	if (rc == 0 && (rc = spool_finish(fl->sp)) != 0)
		regfs_errf(e, rc, "the body does not have the %s bytes the upstream announced",
			   "Content-Length");
	if (rc)
		return rc;
	/* the clients have every byte now; storing may take longer (S3) */
	struct spool_src src = {fl->sp, 0};
	return upload_store(fl->r, fl->name, fl->digest, spool_src_read, &src, size, e);
}

static void *fetch_main(void *arg)
{
	struct flight *fl = arg;
	struct proxy_flights *f = fl->f;
	struct regfs_err e = {0};
	uint64_t size = 0;
	int rc = fetch_and_store(fl, &size, &e);
	if (rc) {
		spool_fail(fl->sp, rc); /* a spool already DONE (store failed) stays readable */
		log_warn("proxy: blob %s of %s from %s/%s: nothing stored: %s", fl->digest, fl->name,
			 fl->p->remoteurl, fl->upname, regfs_err_str(&e));
	} else {
		log_info("proxy: blob %s of %s fetched from %s/%s and stored (%" PRIu64 " bytes, "
			 "%" PRIu64 " ms)", fl->digest, fl->name, fl->p->remoteurl, fl->upname, size,
			 ms_since(&fl->t0));
	}
	pthread_mutex_lock(&f->mu);
	flight_unlink(f, fl);
	spool_unref(fl->sp);
	free(fl);
	if (--f->running == 0)
		pthread_cond_broadcast(&f->idle);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* With f->mu held: a new flight in the table and its thread. The spool
 * (one reference for the caller) or NULL with e set. */
static struct spool *flight_start(struct registry *r, const struct proxy *p, const char *name,
				  const char *upname, const char *digest, struct regfs_err *e)
{
	struct proxy_flights *f = p->flights;
	struct flight *fl = calloc(1, sizeof *fl);
	if (!fl) {
		regfs_errf(e, -ENOMEM, "out of memory");
		return NULL;
	}
	if (spool_new(f->spooldir, &fl->sp, e) != 0) {
		free(fl);
		return NULL;
	}
	snprintf(fl->name, sizeof fl->name, "%s", name);
	snprintf(fl->upname, sizeof fl->upname, "%s", upname);
	snprintf(fl->digest, sizeof fl->digest, "%.135s", digest);
	fl->r = r;
	fl->p = p;
	fl->f = f;
	clock_gettime(CLOCK_MONOTONIC, &fl->t0);
	spool_ref(fl->sp); /* the caller's */
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	pthread_t t;
	int err = pthread_create(&t, &a, fetch_main, fl);
	pthread_attr_destroy(&a);
	if (err) {
		spool_unref(fl->sp);
		spool_unref(fl->sp);
		free(fl);
		regfs_errf(e, -err, "cannot start a fetch thread: %s", strerror(err));
		return NULL;
	}
	f->running++;
	fl->next = f->head;
	f->head = fl;
	return fl->sp;
}

/* The spool of the flight of (name, digest), started when there is none:
 * a reference for the caller, or NULL with e set. */
static struct spool *flight_join(struct registry *r, const struct proxy *p, const char *name,
				 const char *upname, const char *digest, struct regfs_err *e)
{
	struct proxy_flights *f = p->flights;
	pthread_mutex_lock(&f->mu);
	struct spool *sp = NULL;
	struct flight *fl = f->stopping ? NULL : flight_find(f, name, digest);
	if (fl) {
		sp = fl->sp;
		spool_ref(sp);
	} else if (f->stopping) {
		regfs_errf(e, -ECANCELED, "the registry is stopping");
	} else {
		sp = flight_start(r, p, name, upname, digest, e);
	}
	pthread_mutex_unlock(&f->mu);
	return sp;
}

/* ---- answers ---- */

/* An upstream failure as the client sees it: 404 when the upstream does not
 * have the blob, 504 on a timeout, 502 otherwise; the message names the
 * upstream and the reason. */
static enum MHD_Result upstream_failed(struct registry *r, struct request *q,
				       const struct proxy *p, int rc, const struct regfs_err *e)
{
	if (rc == -ENOENT) {
		char detail[ROUTE_REF_MAX + 32];
		snprintf(detail, sizeof detail, "{\"digest\":\"%s\"}", q->rt.ref);
		char msg[ROUTE_REF_MAX + ROUTE_NAME_MAX + PROXY_URL_MAX + 64];
		snprintf(msg, sizeof msg, "blob unknown to registry: %s in %s (not at the upstream %s)",
			 q->rt.ref, q->rt.name, p->remoteurl);
		return respond_error(r, q, 404, "BLOB_UNKNOWN", msg, detail);
	}
	unsigned st = rc == -ETIMEDOUT ? 504 : 502;
	return respond_errorf(r, q, st, "UNAVAILABLE", "blob %s of %s: the upstream %s failed: %s",
			      q->rt.ref, q->rt.name, p->remoteurl, regfs_err_str(e));
}

/* HEAD: the upstream's answer, nothing fetched. */
static enum MHD_Result head_upstream(struct registry *r, struct request *q,
				     const struct proxy *p, const char *upname)
{
	struct regfs_err e = {0};
	uint64_t size = 0;
	int rc = regfs_client_blob_size(p->up, upname, q->rt.ref, &size, &e);
	if (rc)
		return upstream_failed(r, q, p, rc, &e);
	struct MHD_Response *resp = response_head(size);
	if (resp)
		blob_headers(resp, q->rt.ref);
	return respond(r, q, 200, resp, 0);
}

/* The blob is stored but not linked here, and the upstream has it in this
 * repository: the link, under the online GC's protocol. 0; -EAGAIN when
 * the blob went meanwhile (a collection); storage errors with e set. */
static int link_stored(struct registry *r, const struct proxy *p, const char *name,
		       const char *digest, struct regfs_err *e)
{
	char *blob = regfs_layout_blob_data(digest);
	char *link = regfs_layout_layer_link(name, digest);
	int rc = blob && link ? 0 : -ENOMEM;
	gc_writer_begin(r);
	gc_note_referenced(r, digest);
	if (rc == 0 && !repo_exists(r, blob, NULL))
		rc = -EAGAIN; /* collected meanwhile: fetch it */
	if (rc == 0)
		rc = repo_write_link(r, link, digest, e);
	gc_writer_end(r);
	free(blob);
	free(link);
	if (rc == 0) {
		usage_repo_seen(r, name);
		log_info("proxy: blob %s, already stored, linked in %s (the upstream %s has it)",
			 digest, name, p->remoteurl);
	}
	return rc;
}

/* ---- waiting without a thread ----
 * libmicrohttpd's thread pool runs many connections per thread, so a
 * response must never block for spool bytes: a thread waiting 15 s for a
 * stalled upstream would stall every other connection it serves. A waiting
 * response suspends its connection instead (MHD_suspend_connection, legal
 * from the content reader callback of a response that is not shared, and
 * from the access handler: libmicrohttpd 0.9.75's flow-control rules) and
 * returns 0 bytes (legal only together with a suspension: without one it
 * would be called again at once, spinning); the spool's writer resumes it
 * (MHD_resume_connection, legal from any thread) at its next append, size
 * or end, and libmicrohttpd calls the reader again. The daemon must be
 * started with MHD_ALLOW_SUSPEND_RESUME (server.c); in thread-per-
 * connection mode it is not, and the response blocks its own thread. */

static bool can_suspend(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
	const union MHD_DaemonInfo *di =
		ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_FLAGS) : NULL;
	return di && (di->flags & MHD_ALLOW_SUSPEND_RESUME) == MHD_ALLOW_SUSPEND_RESUME;
}

static void conn_park(void *arg)
{
	MHD_suspend_connection(arg);
}

static void conn_wake(void *arg)
{
	MHD_resume_connection(arg);
}

struct spool_rd {
	struct spool *sp;
	uint64_t start, len;
	struct spool_waiter w;          /* .arg: the connection; NULL .park: blocking reads */
	char digest[REGFS_DIGEST_MAX];
	char name[ROUTE_NAME_MAX];
};

/* Up to max bytes at off: > 0, or 0 after suspending the connection (the
 * wake resumes it), or spool_read's end/failure (<= 0, not -EAGAIN). */
static ssize_t spool_rd_read(struct spool_rd *x, uint64_t off, char *buf, size_t max,
			     bool *parked)
{
	*parked = false;
	if (!x->w.park)
		return spool_read(x->sp, off, buf, max, READ_STALL_MS);
	for (;;) {
		ssize_t n = spool_read(x->sp, off, buf, max, 0);
		if (n != -EAGAIN)
			return n;
		if (spool_watch(x->sp, off, &x->w) == 0) {
			*parked = true;
			return 0;
		}
		/* a byte (or the end) came between the read and the watch */
	}
}

static ssize_t spool_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct spool_rd *x = cls;
	if (x->len != MHD_SIZE_UNKNOWN && max > x->len - pos)
		max = (size_t)(x->len - pos);
	if (max == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	bool parked;
	ssize_t n = spool_rd_read(x, x->start + pos, buf, max, &parked);
	if (n > 0 || parked)
		return n; /* 0 only with the connection suspended */
	if (n == 0 && (x->len == MHD_SIZE_UNKNOWN || pos == x->len))
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* the fetch failed (logged once by it): cut the connection, so the
	 * client sees a failed transfer rather than a short blob */
	log_debug("proxy: blob %s of %s: response cut at byte %" PRIu64 " (%s)", x->digest,
		  x->name, x->start + pos, n ? strerror((int)-n) : "ended early");
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void spool_rd_free(void *cls)
{
	struct spool_rd *x = cls;
	/* never queued here: a queued waiter's connection is suspended, and a
	 * suspended connection's response is not freed (the daemon is stopped
	 * only after proxies_release_waiters woke them all) */
	spool_unwatch(x->sp, &x->w);
	spool_unref(x->sp);
	free(x);
}

/* The response of [start, start+len) of the spool (len MHD_SIZE_UNKNOWN:
 * to its end); takes over the reference sp. */
static struct MHD_Response *spool_response(struct request *q, struct spool *sp, uint64_t start,
					   uint64_t len)
{
	struct spool_rd *x = calloc(1, sizeof *x);
	if (!x) {
		spool_unref(sp);
		return NULL;
	}
	*x = (struct spool_rd){.sp = sp, .start = start, .len = len};
	if (can_suspend(q->conn))
		x->w = (struct spool_waiter){.park = conn_park, .wake = conn_wake, .arg = q->conn};
	snprintf(x->digest, sizeof x->digest, "%.135s", q->rt.ref);
	snprintf(x->name, sizeof x->name, "%s", q->rt.name);
	struct MHD_Response *resp = MHD_create_response_from_callback(len, 256 * 1024, spool_cb, x,
								      spool_rd_free);
	if (!resp)
		spool_rd_free(x);
	return resp;
}

/* A GET waiting for the size of its blob (the upstream has not answered
 * yet), its connection suspended: kept in the connection's context
 * (conn.h) until the handler runs again on the resume. */
struct size_wait {
	struct spool_waiter w;          /* .arg: the connection */
	struct spool *sp;               /* the request's reference */
	uint64_t t0_us;                 /* the request's start: its access line counts the wait */
	char digest[REGFS_DIGEST_MAX];
	char name[ROUTE_NAME_MAX];
};

void proxy_blob_conn_done(struct conn_ctx *cx)
{
	struct size_wait *sw = cx ? cx->proxy : NULL;
	if (!sw)
		return;
	cx->proxy = NULL;
	spool_unwatch(sw->sp, &sw->w);
	spool_unref(sw->sp);
	free(sw);
}

/* The spool this request waited on, if the handler runs again after a
 * resume (a reference for the caller), else NULL. */
static struct spool *size_wait_take(struct request *q)
{
	struct conn_ctx *cx = conn_ctx_of(q->conn);
	struct size_wait *sw = cx ? cx->proxy : NULL;
	if (!sw)
		return NULL;
	struct spool *sp = NULL;
	if (!strcmp(sw->digest, q->rt.ref) && !strcmp(sw->name, q->rt.name)) {
		sp = sw->sp;
		sw->sp = NULL;
		q->t0_us = sw->t0_us; /* the handler's second run is the same request */
	}
	cx->proxy = NULL;
	if (sw->sp)
		spool_unref(sw->sp);
	free(sw);
	return sp;
}

/* The blob's total size: 0 with it, or the failure; or 0 with *parked set
 * when the connection was suspended to wait for it (the reference sp then
 * belongs to the wait record until size_wait_take). */
static int size_or_park(struct request *q, struct spool *sp, uint64_t *total, bool *parked)
{
	*parked = false;
	struct conn_ctx *cx = can_suspend(q->conn) ? conn_ctx_of(q->conn) : NULL;
	for (;;) {
		int rc = spool_wait_size(sp, cx ? 0 : READ_STALL_MS, total);
		if (rc != -EAGAIN)
			return rc;
		struct size_wait *sw = calloc(1, sizeof *sw);
		if (!sw)
			return spool_wait_size(sp, READ_STALL_MS, total); /* block, then */
		sw->w = (struct spool_waiter){.park = conn_park, .wake = conn_wake, .arg = q->conn};
		sw->sp = sp;
		sw->t0_us = q->t0_us;
		snprintf(sw->digest, sizeof sw->digest, "%.135s", q->rt.ref);
		snprintf(sw->name, sizeof sw->name, "%s", q->rt.name);
		cx->proxy = sw;
		if (spool_watch(sp, SPOOL_WATCH_SIZE, &sw->w) == 0) {
			*parked = true;
			return 0;
		}
		cx->proxy = NULL; /* the size (or the end) came meanwhile */
		free(sw);
	}
}

/* GET answered from the spool sp (the caller's reference, taken over):
 * once the size is known, the whole blob or the asked range. */
static enum MHD_Result serve_spool(struct registry *r, struct request *q, const struct proxy *p,
				   struct spool *sp)
{
	uint64_t total = 0;
	bool parked = false;
	int rc = size_or_park(q, sp, &total, &parked);
	if (parked)
		return MHD_YES; /* no answer yet: the resume runs the handler again */
	if (rc) {
		spool_unref(sp);
		struct regfs_err e = {0};
		regfs_errf(&e, rc, "%s", rc == -ETIMEDOUT ? "no answer in time"
					 : rc == -EPROTO ? "its bytes do not hash to the digest"
					 : strerror(-rc));
		return upstream_failed(r, q, p, rc, &e);
	}
	uint64_t start = 0, end = total ? total - 1 : 0;
	int ranged = blob_parse_range(request_header(q, MHD_HTTP_HEADER_RANGE), total, &start, &end);
	if (ranged < 0) {
		spool_unref(sp);
		return blob_range_unsatisfiable(r, q, total);
	}
	uint64_t len = total ? end - start + 1 : 0;
	struct MHD_Response *resp = spool_response(q, sp, start, len);
	if (resp) {
		blob_headers(resp, q->rt.ref);
		if (ranged > 0) {
			char cr[96];
			snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, total);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		}
		notify_emit(r, q, &(struct notify_target){"pull", "application/octet-stream",
			    q->rt.ref, total, NULL, true});
	}
	return respond(r, q, ranged > 0 ? 206 : 200, resp, len);
}

/* Set while proxy_blob hands a request it just linked back to h_blob: if
 * the link does not show, h_blob calls us again and we must not loop. */
static _Thread_local bool relinked;

static bool blob_stored(struct registry *r, const char *digest)
{
	char *b = regfs_layout_blob_data(digest);
	struct regfs_stat_info st;
	/* blob data is an object: no directory question (S3: no LIST on a miss) */
	bool ok = b && regfs_storage_stat_object(r->st, b, &st, NULL) == 0;
	free(b);
	return ok;
}

enum MHD_Result proxy_blob(struct registry *r, struct request *q)
{
	const char *un = NULL;
	const struct proxy *p = proxy_of(r, q->rt.name, &un);
	char upname[ROUTE_NAME_MAX + 16]; /* Docker Hub's "library/" added */
	if (!p || !p->flights || !un || proxy_upstream_name(p, un, upname, sizeof upname))
		return respond_errorf(r, q, 404, "BLOB_UNKNOWN", "blob unknown to registry: %s in %s",
				      q->rt.ref, q->rt.name);
	if (request_is_head(q))
		return head_upstream(r, q, p, upname);
	struct spool *waited = size_wait_take(q);
	if (waited)
		return serve_spool(r, q, p, waited); /* resumed: the flight it joined */
	struct regfs_err e = {0};
	if (!relinked && blob_stored(r, q->rt.ref)) {
		/* stored for someone else: this repository's upstream must have it */
		uint64_t size = 0;
		int rc = regfs_client_blob_size(p->up, upname, q->rt.ref, &size, &e);
		if (rc)
			return upstream_failed(r, q, p, rc, &e);
		rc = link_stored(r, p, q->rt.name, q->rt.ref, &e);
		if (rc == 0) {
			relinked = true;
			enum MHD_Result ret = h_blob(r, q); /* served from storage */
			relinked = false;
			return ret;
		}
		if (rc != -EAGAIN)
			return respond_storage_error(r, q, &e);
		regfs_err_clear(&e);
	}
	struct spool *sp = flight_join(r, p, q->rt.name, upname, q->rt.ref, &e);
	if (!sp) {
		log_error("proxy: blob %s of %s: cannot start its fetch: %s", q->rt.ref, q->rt.name,
			  regfs_err_str(&e));
		return respond_errorf(r, q, 503, "UNAVAILABLE", "blob %s of %s cannot be fetched "
				      "now: %s", q->rt.ref, q->rt.name, regfs_err_str(&e));
	}
	return serve_spool(r, q, p, sp);
}
