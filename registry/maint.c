/* maint.c — background jobs of `serve`: upload purging
 * (storage.maintenance.uploadpurging), the storage health check
 * (health.storagedriver), the health.file/http/tcp checks, online garbage
 * collection (regfs.gc) and the pull-through cache's expiry
 * (regfs.proxycache.interval).
 * Each runs in its own thread and sleeps on a condition variable, so a stop
 * request ends it at once. */
#include "maint.h"

#include "gc.h"
#include "jsonbuf.h"
#include "layerindex.h"
#include "registry.h"
#include "repo.h"
#include "usage.h"
#include "metrics.h"
#include "proxy.h"
#include "respond.h"
#include "server.h"

#include <regfs/layout.h>
#include <regfs/log.h>

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sleeps up to `s` seconds; false when the server is stopping. */
static bool bg_sleep(struct registry *r, int64_t s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(s > 0 ? s : 1);
	pthread_mutex_lock(&r->bg_lock);
	while (!r->stopping) {
		if (pthread_cond_timedwait(&r->bg_cond, &r->bg_lock, &ts) == ETIMEDOUT)
			break;
	}
	bool go = !r->stopping;
	pthread_mutex_unlock(&r->bg_lock);
	return go;
}

/* ---- upload purging ---- */

/* startedat holds RFC 3339 ("2026-11-28T08:00:00.123Z"); registry:2 writes it
 * too. Falls back to the file's mtime. */
int64_t upload_started_at(struct registry *r, const char *name, const char *uuid)
{
	char *p = regfs_layout_upload_startedat(name, uuid);
	char *data = NULL;
	size_t len = 0;
	int64_t t = -1;
	if (p && regfs_storage_get(r->st, p, &data, &len, NULL) == 0) {
		struct tm tm = {0};
		if (strptime(data, "%Y-%m-%dT%H:%M:%S", &tm))
			t = (int64_t)timegm(&tm);
		free(data);
	}
	struct regfs_stat_info st;
	if (t < 0 && p && regfs_storage_stat(r->st, p, &st, NULL) == 0)
		t = st.mtime;
	if (t < 0) {
		/* no startedat: use the upload directory's time */
		char *d = regfs_layout_upload_dir(name, uuid);
		if (d && regfs_storage_stat(r->st, d, &st, NULL) == 0)
			t = st.mtime;
		free(d);
	}
	free(p);
	return t;
}

struct purge_ctx {
	struct registry *r;
	int64_t cutoff;
	bool dryrun;
	int n;
	struct strvec uuids;
};

static int uuid_cb(const char *path, void *ud)
{
	struct purge_ctx *x = ud;
	const char *b = regfs_path_base(path);
	if (regfs_layout_uuid_valid(b))
		strvec_push(&x->uuids, b);
	return 0;
}

static int purge_repo(const char *name, void *ud)
{
	struct purge_ctx *x = ud;
	char *dir = regfs_layout_uploads_dir(name);
	if (!dir)
		return 0;
	regfs_storage_list(x->r->st, dir, uuid_cb, x, NULL);
	free(dir);
	for (size_t i = 0; i < x->uuids.n; i++) {
		int64_t t = upload_started_at(x->r, name, x->uuids.v[i]);
		if (t < 0 || t >= x->cutoff)
			continue;
		if (x->dryrun) {
			log_info("upload purging (dry run): would remove %s upload %s", name,
				 x->uuids.v[i]);
		} else {
			char *d = regfs_layout_upload_dir(name, x->uuids.v[i]);
			if (d && regfs_storage_del(x->r->st, d, NULL) == 0) {
				log_info("upload purging: removed %s upload %s", name, x->uuids.v[i]);
				usage_upload_ended(x->r, name, x->uuids.v[i], NULL, 0);
			}
			free(d);
		}
		x->n++;
	}
	strvec_clear(&x->uuids);
	return 0;
}

int purge_uploads(struct registry *r, int64_t age_s, bool dryrun, struct regfs_err *err)
{
	struct purge_ctx x = {.r = r, .cutoff = (int64_t)time(NULL) - age_s, .dryrun = dryrun};
	int rc = repo_walk(r, purge_repo, &x, err);
	strvec_clear(&x.uuids);
	return rc ? rc : x.n;
}

static void *purge_thread(void *arg)
{
	struct registry *r = arg;
	/* registry:2 waits a little before the first run; so do we */
	if (!bg_sleep(r, 10))
		return NULL;
	do {
		struct regfs_err e = {0};
		int n = purge_uploads(r, r->cfg->uploadpurging.age_s, r->cfg->uploadpurging.dryrun, &e);
		if (n < 0)
			log_warn("upload purging failed: %s", regfs_err_str(&e));
		else if (n > 0)
			log_info("upload purging: %d upload(s) older than %" PRId64 "s %s", n,
				 r->cfg->uploadpurging.age_s,
				 r->cfg->uploadpurging.dryrun ? "found (dry run)" : "removed");
	} while (bg_sleep(r, r->cfg->uploadpurging.interval_s));
	return NULL;
}

/* ---- storage health ---- */

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p; (void)ud;
	return sz * n;
}

static void *health_thread(void *arg)
{
	struct registry *r = arg;
	int fails = 0;
	int threshold = r->cfg->health_storage.threshold > 0 ? r->cfg->health_storage.threshold : 1;
	do {
		struct regfs_err e = {0};
		int rc;
		if (regfs_storage_supports(r->st, REGFS_STORAGE_HEALTH)) {
			rc = regfs_storage_health(r->st, &e);
		} else {
			struct regfs_stat_info st;
			rc = regfs_storage_stat(r->st, REGFS_LAYOUT_ROOT, &st, &e);
			if (rc == -ENOENT)
				rc = 0; /* empty storage answers */
		}
		if (rc == 0) {
			if (atomic_load(&r->storage_down))
				log_info("storage health: %s storage answers again", regfs_storage_name(r->st));
			fails = 0;
			atomic_store(&r->storage_down, 0);
		} else {
			fails++;
			pthread_mutex_lock(&r->health_lock);
			snprintf(r->health_msg, sizeof r->health_msg, "%s (%d consecutive failed "
				 "checks)", regfs_err_str(&e), fails);
			pthread_mutex_unlock(&r->health_lock);
			log_warn("storage health check failed (%d/%d): %s", fails, threshold,
				 regfs_err_str(&e));
			if (fails >= threshold)
				atomic_store(&r->storage_down, 1);
		}
	} while (bg_sleep(r, r->cfg->health_storage.interval_s));
	return NULL;
}

/* ---- health.file, health.http, health.tcp ---- */

/* The state of one configured check (r->checks[i]), written by the checks
 * thread, read by /v2/ and /debug/health. */
struct check_state {
	atomic_int down;
	int fails;                      /* checks thread only */
	int64_t next;                   /* checks thread only: monotonic s of the next run */
	char msg[300];                  /* under r->health_lock */
};

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* A file that exists means unhealthy (registry:2: take an instance out of
 * a load balancer by touching a file). */
static int check_file(const struct regfs_health_check *h, char *msg, size_t cap)
{
	struct stat st;
	if (stat(h->target, &st) == 0) {
		snprintf(msg, cap, "file %s exists", h->target);
		return -1;
	}
	return 0;
}

/* Connects to host:port within the timeout. */
static int check_tcp(const struct regfs_health_check *h, char *msg, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	bool any;
	struct regfs_err e = {0};
	if (server_parse_addr(h->target, &ss, &sl, &any, &e)) {
		snprintf(msg, cap, "tcp %s: %s", h->target, regfs_err_str(&e));
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(msg, cap, "tcp %s: socket: %s", h->target, strerror(errno));
		return -1;
	}
	int rc = connect(fd, (struct sockaddr *)&ss, sl) == 0 ? 0 : -errno;
	if (rc == -EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n = poll(&p, 1, (int)(h->timeout_s * 1000));
		int soerr = 0;
		socklen_t len = sizeof soerr;
		if (n == 0)
			rc = -ETIMEDOUT;
		else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			rc = -errno;
		else
			rc = -soerr;
	}
	close(fd);
	if (rc)
		snprintf(msg, cap, "tcp %s: cannot connect: %s", h->target, strerror(-rc));
	return rc ? -1 : 0;
}

/* GET uri within the timeout; healthy when the status is statuscode. */
static int check_http(const struct regfs_health_check *h, char *msg, size_t cap)
{
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(msg, cap, "http %s: out of memory", h->target);
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, h->target);
	curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)h->timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	CURLcode cc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK) {
		snprintf(msg, cap, "http %s: %s", h->target, curl_easy_strerror(cc));
		return -1;
	}
	if ((unsigned)code != h->statuscode) {
		snprintf(msg, cap, "http %s: status %ld, expected %u", h->target, code, h->statuscode);
		return -1;
	}
	return 0;
}

/* Runs check i, and flips its state after `threshold` failures in a row
 * (a file check at once). */
static void run_check(struct registry *r, int i)
{
	const struct regfs_health_check *h = &r->cfg->checks[i];
	struct check_state *cs = &r->checks[i];
	char msg[sizeof cs->msg] = "";
	int rc = h->kind == REGFS_CHECK_FILE ? check_file(h, msg, sizeof msg)
		 : h->kind == REGFS_CHECK_TCP ? check_tcp(h, msg, sizeof msg)
					      : check_http(h, msg, sizeof msg);
	int threshold = h->kind == REGFS_CHECK_FILE || h->threshold < 1 ? 1 : h->threshold;
	if (rc == 0) {
		if (atomic_load(&cs->down))
			log_info("health check %s passes again", h->target);
		cs->fails = 0;
		atomic_store(&cs->down, 0);
		return;
	}
	cs->fails++;
	pthread_mutex_lock(&r->health_lock);
	snprintf(cs->msg, sizeof cs->msg, "%s", msg);
	pthread_mutex_unlock(&r->health_lock);
	if (!atomic_load(&cs->down))
		log_warn("health check failed (%d/%d): %s", cs->fails, threshold, msg);
	if (cs->fails >= threshold)
		atomic_store(&cs->down, 1);
}

/* One thread runs every check when its interval is due: a slow http or tcp
 * check (bounded by its timeout) delays the others, never a request. */
static void *checks_thread(void *arg)
{
	struct registry *r = arg;
	do {
		int64_t now = mono_s();
		for (int i = 0; i < r->cfg->n_checks; i++) {
			if (r->checks[i].next > now)
				continue;
			run_check(r, i);
			r->checks[i].next = mono_s() + r->cfg->checks[i].interval_s;
		}
	} while (bg_sleep(r, 1));
	return NULL;
}

bool maint_unhealthy(struct registry *r, char *msg, size_t cap)
{
	if (atomic_load(&r->storage_down)) {
		pthread_mutex_lock(&r->health_lock);
		snprintf(msg, cap, "storage is unreachable: %s", r->health_msg);
		pthread_mutex_unlock(&r->health_lock);
		return true;
	}
	for (int i = 0; r->checks && i < r->cfg->n_checks; i++) {
		if (atomic_load(&r->checks[i].down)) {
			pthread_mutex_lock(&r->health_lock);
			snprintf(msg, cap, "health check failed: %s", r->checks[i].msg);
			pthread_mutex_unlock(&r->health_lock);
			return true;
		}
	}
	return false;
}

static void health_entry(struct jbuf *b, const char *name, bool down, const char *msg,
			 bool *first)
{
	jb_puts(b, *first ? "" : ",");
	*first = false;
	jb_json_str(b, name);
	jb_puts(b, down ? ":{\"status\":\"failing\",\"error\":" : ":{\"status\":\"ok\"");
	if (down)
		jb_json_str(b, msg);
	jb_puts(b, "}");
}

int maint_health_json(struct registry *r, struct jbuf *b)
{
	int failing = 0;
	bool first = true;
	jb_puts(b, "{");
	pthread_mutex_lock(&r->health_lock);
	if (r->cfg->health_storage.enabled) {
		char name[64];
		snprintf(name, sizeof name, "storagedriver_%s", regfs_storage_name(r->st));
		bool down = atomic_load(&r->storage_down);
		failing += down;
		health_entry(b, name, down, r->health_msg, &first);
	}
	static const char *const kinds[] = {"file", "http", "tcp"};
	for (int i = 0; r->checks && i < r->cfg->n_checks; i++) {
		char name[320];
		snprintf(name, sizeof name, "%s:%s", kinds[r->cfg->checks[i].kind],
			 r->cfg->checks[i].target);
		bool down = atomic_load(&r->checks[i].down);
		failing += down;
		health_entry(b, name, down, r->checks[i].msg, &first);
	}
	pthread_mutex_unlock(&r->health_lock);
	jb_puts(b, "}\n");
	return failing;
}

/* ---- online GC ---- */

static void *gc_thread(void *arg)
{
	struct registry *r = arg;
	while (bg_sleep(r, r->cfg->gc.interval_s)) {
		struct gc_opts o = {.delete_untagged = r->cfg->gc.deleteuntagged,
				    .delay_s = r->cfg->gc.delay_s, .online = true, .quiet = true};
		struct gc_stats s = {0};
		struct regfs_err e = {0};
		uint64_t t0 = now_us();
		if (gc_run(r, &o, &s, &e) != 0) {
			metrics_count(METRICS_GC_FAILED, 1);
			log_warn("online gc failed: %s", regfs_err_str(&e));
			continue;
		}
		metrics_count(METRICS_GC_RUNS, 1);
		metrics_count(METRICS_GC_BLOBS_SWEPT, s.swept);
		metrics_count(METRICS_GC_BYTES_FREED, s.bytes);
		if (s.swept || s.manifests_deleted)
			log_info("online gc: %" PRIu64 " blobs marked, %" PRIu64 " swept, %" PRIu64
				 " bytes freed, %" PRIu64 " untagged manifests deleted (%" PRIu64 " ms)",
				 s.marked, s.swept, s.bytes, s.manifests_deleted,
				 (now_us() - t0) / 1000);
		else
			log_debug("online gc: %" PRIu64 " blobs marked, nothing to free", s.marked);
	}
	return NULL;
}

/* ---- pull-through cache expiry ---- */

static void *proxy_expire_thread(void *arg)
{
	struct registry *r = arg;
	while (bg_sleep(r, r->cfg->proxycache_interval_s)) {
		int removed = 0;
		struct regfs_err e = {0};
		if (proxy_expire_run(r, &removed, &e) != 0)
			log_warn("proxy expiry pass failed: %s; the next pass tries again",
				 regfs_err_str(&e));
	}
	proxy_pulls_flush_all(r);   /* stopping: pulls since the last pass are kept */
	return NULL;
}

static void bg_spawn(struct registry *r, void *(*fn)(void *), const char *what)
{
	if (r->n_bg >= (int)(sizeof r->bg / sizeof r->bg[0]))
		return;
	if (pthread_create(&r->bg[r->n_bg], NULL, fn, r) == 0)
		r->n_bg++;
	else
		log_error("cannot start the %s thread", what);
}

int maint_start(struct registry *r)
{
	if (r->cfg->uploadpurging.enabled)
		bg_spawn(r, purge_thread, "upload purging");
	if (r->cfg->health_storage.enabled)
		bg_spawn(r, health_thread, "storage health");
	if (r->cfg->n_checks) {
		r->checks = calloc((size_t)r->cfg->n_checks, sizeof *r->checks);
		if (r->checks)
			bg_spawn(r, checks_thread, "health checks");
		else
			log_error("out of memory: health.file/http/tcp checks not started");
	}
	if (r->cfg->gc.enabled) {
		if (!r->cfg->delete_enabled)
			log_warn("online gc is enabled while storage.delete.enabled is false: "
				 "it will still sweep unreferenced blobs");
		bg_spawn(r, gc_thread, "online gc");
	}
	if (r->proxies && proxy_expire_wanted(r->cfg))
		bg_spawn(r, proxy_expire_thread, "proxy cache expiry");
	layerindex_start(r);
	usage_start(r);
	return 0;
}

void maint_join_threads(pthread_mutex_t *lock, pthread_cond_t *cond, bool *stopping,
			const pthread_t *threads, int n)
{
	pthread_mutex_lock(lock);
	*stopping = true;
	pthread_cond_broadcast(cond);
	pthread_mutex_unlock(lock);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
}

void maint_stop(struct registry *r)
{
	usage_stop(r);
	maint_join_threads(&r->bg_lock, &r->bg_cond, &r->stopping, r->bg, r->n_bg);
	r->n_bg = 0;
	free(r->checks);
	r->checks = NULL;
	layerindex_stop(r);
}
