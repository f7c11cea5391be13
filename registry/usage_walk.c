/* usage_walk.c — the startup walk of the storage accounting (usage.h): every
 * blob with its size, every repository's revisions, tags and uploads, every
 * manifest parsed once. Runs in its own thread while the registry serves;
 * storage is read without the lock, and each result is applied under it
 * only if no hook spoke about that blob, upload or repository meanwhile
 * (usage.h explains why nothing is lost). A failed walk is retried every
 * 10 s until it succeeds or the registry stops.
 *
 * REGFS_USAGE_WALK_PAUSE_MS (tests): a pause after each repository, so a
 * test can change the registry while the walk is certainly still running. */
#include "gc.h"
#include "maint.h"
#include "manifest_bytes.h"
#include "registry.h"
#include "repo.h"
#include "respond.h"
#include "usage_internal.h"

#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/oci.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_S 10
#define REPO_TRIES 3  /* reads of a repository hooks keep changing, before applying anyway */

struct walk {
	struct registry *r;
	struct usage *u;
	uint64_t blobs, repos;
	long pause_ms;
};

static bool stopping(struct walk *w)
{
	return atomic_load(&w->u->stop);
}

static int walk_blobs(struct walk *w, struct regfs_err *err)
{
	struct strvec all = {0};
	int rc = gc_list_blobs(w->r, &all, err);
	for (size_t i = 0; i < all.n && rc == 0 && !stopping(w); i++) {
		char *data = regfs_layout_blob_data(all.v[i]);
		struct regfs_stat_info st;
		int src = data ? regfs_storage_stat(w->r->st, data, &st, err) : -ENOMEM;
		free(data);
		if (src == -ENOENT) {
			regfs_err_clear(err);
			continue; /* deleted since the listing */
		}
		if (src) {
			rc = src;
			break;
		}
		pthread_mutex_lock(&w->u->lock);
		if (!digestset_has(w->u->touched, all.v[i]))
			rc = usage_model_blob_stored(w->u->model, all.v[i], st.size);
		pthread_mutex_unlock(&w->u->lock);
		w->blobs++;
	}
	strvec_clear(&all);
	if (rc == -ENOMEM && !err->code)
		regfs_errf(err, rc, "out of memory");
	return rc;
}

/* Parses manifest `digest` into the model unless known, and its children
 * (gc.c reads them the same way). One it cannot read is skipped, as gc.c
 * skips it. */
static int learn_manifest(struct walk *w, const char *digest, int depth)
{
	pthread_mutex_lock(&w->u->lock);
	bool known = usage_model_manifest_known(w->u->model, digest);
	pthread_mutex_unlock(&w->u->lock);
	if (known || depth > 16)
		return 0;
	struct manifest_entry *e = NULL;
	if (manifest_load(w->r, digest, &e, NULL) != 0)
		return 0;
	struct regfs_manifest *m = NULL;
	int prc = regfs_manifest_parse(e->data, e->len, e->media_type, &m, NULL);
	manifest_bytes_release(w->r->mb, e);
	if (prc)
		return 0;
	pthread_mutex_lock(&w->u->lock);
	int rc = usage_model_manifest(w->u->model, digest, m);
	pthread_mutex_unlock(&w->u->lock);
	for (size_t i = 0; i < m->n_manifests && rc == 0; i++)
		rc = learn_manifest(w, m->manifests[i].digest, depth + 1);
	regfs_manifest_free(m);
	return rc;
}

/* Revisions and tags (name, digest pairs) of a repository, as stored now. */
static int read_repo(struct walk *w, const char *name, struct strvec *revs, struct strvec *tags,
		     struct regfs_err *err)
{
	int rc = repo_list_revisions(w->r, name, revs, err);
	if (rc == -ENOENT) {
		rc = 0;
		regfs_err_clear(err);
	}
	struct strvec names = {0};
	if (rc == 0 && repo_list_tags(w->r, name, &names, NULL) != 0)
		strvec_clear(&names); /* no tags directory */
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		char d[REGFS_DIGEST_MAX];
		char *cur = regfs_layout_tag_current(name, names.v[i]);
		int lrc = cur ? repo_read_link(w->r, cur, d, NULL, NULL) : -ENOMEM;
		free(cur);
		if (lrc == 0)
			rc = strvec_push(tags, names.v[i]) || strvec_push(tags, d) ? -ENOMEM : 0;
		else if (lrc == -ENOMEM)
			rc = lrc;
		/* else: a tag without a readable current link names nothing (gc.c) */
	}
	strvec_clear(&names);
	for (size_t i = 0; i < revs->n && rc == 0; i++)
		rc = learn_manifest(w, revs->v[i], 0);
	return rc;
}

static int uuid_cb(const char *path, void *ud)
{
	const char *b = regfs_path_base(path);
	if (regfs_layout_uuid_valid(b))
		return strvec_push(ud, b) ? 1 : 0;
	return 0;
}

static void walk_uploads(struct walk *w, const char *name)
{
	char *dir = regfs_layout_uploads_dir(name);
	struct strvec uuids = {0};
	if (dir)
		regfs_storage_list(w->r->st, dir, uuid_cb, &uuids, NULL);
	free(dir);
	for (size_t i = 0; i < uuids.n; i++) {
		char *p = regfs_layout_upload_data(name, uuids.v[i]);
		struct regfs_stat_info st = {0};
		bool have = p && regfs_storage_stat(w->r->st, p, &st, NULL) == 0;
		free(p);
		int64_t t = upload_started_at(w->r, name, uuids.v[i]);
		pthread_mutex_lock(&w->u->lock);
		if (have && !digestset_has(w->u->touched, uuids.v[i]))
			usage_model_upload_set(w->u->model, name, uuids.v[i], st.size,
					       t < 0 ? (int64_t)time(NULL) : t);
		pthread_mutex_unlock(&w->u->lock);
	}
	strvec_clear(&uuids);
}

static int walk_repo(const char *name, void *ud)
{
	struct walk *w = ud;
	if (stopping(w))
		return -ECANCELED;
	int rc = 0;
	for (int attempt = 1; rc == 0; attempt++) {
		pthread_mutex_lock(&w->u->lock);
		uint64_t gen0 = usage_model_repo_gen(w->u->model, name);
		pthread_mutex_unlock(&w->u->lock);
		struct strvec revs = {0}, tags = {0};
		struct regfs_err e = {0};
		rc = read_repo(w, name, &revs, &tags, &e);
		if (rc)
			log_warn("storage accounting: reading %s: %s", name, regfs_err_str(&e));
		pthread_mutex_lock(&w->u->lock);
		bool same = usage_model_repo_gen(w->u->model, name) == gen0;
		if (rc == 0 && (same || attempt >= REPO_TRIES))
			rc = usage_model_repo_replace(w->u->model, name, &revs, &tags);
		pthread_mutex_unlock(&w->u->lock);
		strvec_clear(&revs);
		strvec_clear(&tags);
		if (same || attempt >= REPO_TRIES)
			break;
	}
	if (rc == 0)
		walk_uploads(w, name);
	w->repos++;
	if (w->pause_ms > 0)
		nanosleep(&(struct timespec){w->pause_ms / 1000, (w->pause_ms % 1000) * 1000000},
			  NULL);
	return rc;
}

static bool sleep_unless_stopped(struct usage *u, int s)
{
	for (int i = 0; i < s * 10 && !atomic_load(&u->stop); i++)
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	return !atomic_load(&u->stop);
}

void *usage_walk_thread(void *arg)
{
	struct registry *r = arg;
	struct usage *u = r->usage;
	for (;;) {
		const char *pause = getenv("REGFS_USAGE_WALK_PAUSE_MS");
		struct walk w = {.r = r, .u = u, .pause_ms = pause ? strtol(pause, NULL, 10) : 0};
		if (w.pause_ms > 10000)
			w.pause_ms = 10000;
		struct regfs_err e = {0};
		uint64_t t0 = now_us();
		int rc = walk_blobs(&w, &e);
		if (rc == 0)
			rc = repo_walk(r, walk_repo, &w, &e);
		if (rc == 0) {
			struct usage_totals t;
			pthread_mutex_lock(&u->lock);
			digestset_free(u->touched);
			u->touched = NULL;
			usage_model_totals(u->model, 0, &t);
			pthread_mutex_unlock(&u->lock);
			atomic_store(&u->ready, true);
			log_info("storage accounting built in %" PRIu64 " ms: %" PRIu64 " blobs, %" PRIu64
				 " repositories, %" PRIu64 " bytes stored, %" PRIu64 " referenced",
				 (now_us() - t0) / 1000, w.blobs, w.repos, t.stored, t.referenced);
			return NULL;
		}
		if (atomic_load(&u->stop))
			return NULL;
		log_error("storage accounting: the startup walk failed (%s); retrying in %d s "
			  "(the usage extension answers 503 meanwhile)", regfs_err_str(&e), RETRY_S);
		if (!sleep_unless_stopped(u, RETRY_S))
			return NULL;
	}
}
