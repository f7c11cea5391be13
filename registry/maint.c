/* maint.c — background jobs of `serve`: upload purging
 * (storage.maintenance.uploadpurging), the storage health check
 * (health.storagedriver) and online garbage collection (regfs.gc).
 * Each runs in its own thread and sleeps on a condition variable, so a stop
 * request ends it at once. */
#include "maint.h"

#include "gc.h"
#include "layerindex.h"
#include "registry.h"
#include "repo.h"
#include "respond.h"

#include <regfs/layout.h>
#include <regfs/log.h>

#include <errno.h>
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
static int64_t started_at(struct registry *r, const char *name, const char *uuid)
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
		int64_t t = started_at(x->r, name, x->uuids.v[i]);
		if (t < 0 || t >= x->cutoff)
			continue;
		if (x->dryrun) {
			log_info("upload purging (dry run): would remove %s upload %s", name,
				 x->uuids.v[i]);
		} else {
			char *d = regfs_layout_upload_dir(name, x->uuids.v[i]);
			if (d && regfs_storage_del(x->r->st, d, NULL) == 0)
				log_info("upload purging: removed %s upload %s", name, x->uuids.v[i]);
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

static void *health_thread(void *arg)
{
	struct registry *r = arg;
	int fails = 0;
	int threshold = r->cfg->health_storage.threshold > 0 ? r->cfg->health_storage.threshold : 1;
	do {
		struct regfs_err e = {0};
		int rc;
		if (r->st->ops->health) {
			rc = r->st->ops->health(r->st, &e);
		} else {
			struct regfs_stat_info st;
			rc = regfs_storage_stat(r->st, REGFS_LAYOUT_ROOT, &st, &e);
			if (rc == -ENOENT)
				rc = 0; /* empty storage answers */
		}
		if (rc == 0) {
			if (atomic_load(&r->storage_down))
				log_info("storage health: %s storage answers again", r->st->ops->name);
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
		if (gc_run(r, &o, &s, &e) != 0)
			log_warn("online gc failed: %s", regfs_err_str(&e));
		else if (s.swept || s.manifests_deleted)
			log_info("online gc: %" PRIu64 " blobs marked, %" PRIu64 " swept, %" PRIu64
				 " bytes freed, %" PRIu64 " untagged manifests deleted (%" PRIu64 " ms)",
				 s.marked, s.swept, s.bytes, s.manifests_deleted,
				 (now_us() - t0) / 1000);
		else
			log_debug("online gc: %" PRIu64 " blobs marked, nothing to free", s.marked);
	}
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
	if (r->cfg->gc.enabled) {
		if (!r->cfg->delete_enabled)
			log_warn("online gc is enabled while storage.delete.enabled is false: "
				 "it will still sweep unreferenced blobs");
		bg_spawn(r, gc_thread, "online gc");
	}
	layerindex_start(r);
	return 0;
}

void maint_stop(struct registry *r)
{
	pthread_mutex_lock(&r->bg_lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->bg_cond);
	pthread_mutex_unlock(&r->bg_lock);
	for (int i = 0; i < r->n_bg; i++)
		pthread_join(r->bg[i], NULL);
	r->n_bg = 0;
	layerindex_stop(r);
}
