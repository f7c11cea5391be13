/* usage.c — see usage.h: the accounting's lifecycle and the hooks of the
 * write paths. Every hook takes the one lock, updates the model in memory
 * and returns; a hook that runs out of memory logs it (the figures of that
 * repository are then recomputed at its next change, and exact again after
 * a restart). */
#include "usage.h"

#include "metrics.h"
#include "registry.h"
#include "usage_internal.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>

static int render_gauges(void *ud, struct dynbuf *b)
{
	return usage_render_metrics(ud, b);
}

int usage_start(struct registry *r)
{
	struct usage *u = calloc(1, sizeof *u);
	if (!u || !(u->model = usage_model_new(r->cfg->gc.deleteuntagged)) ||
	    !(u->touched = digestset_new())) {
		if (u)
			usage_model_free(u->model);
		free(u);
		log_error("out of memory: storage accounting (the usage extension) is off");
		return -ENOMEM;
	}
	pthread_mutex_init(&u->lock, NULL);
	u->upload_age_s = r->cfg->uploadpurging.age_s;
	u->maxseries = r->cfg->usage.maxseries;
	r->usage = u;
	if (pthread_create(&u->thread, NULL, usage_walk_thread, r) == 0)
		u->thread_started = true;
	else
		log_error("cannot start the storage accounting walk: the usage extension "
			  "will answer 503 until a restart");
	metrics_set_gauges(render_gauges, r);
	return 0;
}

void usage_stop(struct registry *r)
{
	struct usage *u = r->usage;
	if (!u || !u->thread_started)
		return;
	atomic_store(&u->stop, true);
	pthread_join(u->thread, NULL);
	u->thread_started = false;
}

void usage_free(struct registry *r)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	usage_stop(r);
	metrics_set_gauges(NULL, NULL);
	usage_model_free(u->model);
	digestset_free(u->touched);
	pthread_mutex_destroy(&u->lock);
	free(u);
	r->usage = NULL;
}

bool usage_ready(struct registry *r)
{
	return r->usage && atomic_load(&r->usage->ready);
}

void usage_touch(struct usage *u, const char *key)
{
	if (u->touched && digestset_add(u->touched, key) < 0) {
		/* the walk could then override this hook's news: start over is
		 * not possible, so say the figures may be off */
		log_warn("storage accounting: out of memory noting a change during the startup "
			 "walk; figures may be off until a restart");
	}
}

static void oom(int rc, const char *what, const char *repo)
{
	if (rc)
		log_warn("storage accounting: out of memory recording %s in %s; its figures "
			 "may be off until its next change", what, repo);
}

void usage_manifest_pushed(struct registry *r, const char *repo, const char *tag,
			   const char *digest, size_t len, const struct regfs_manifest *m)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	usage_touch(u, digest);
	int rc = usage_model_blob_stored(u->model, digest, len);
	if (rc == 0)
		rc = usage_model_manifest(u->model, digest, m);
	if (rc == 0)
		rc = usage_model_revision_add(u->model, repo, digest);
	if (rc == 0 && tag)
		rc = usage_model_tag_set(u->model, repo, tag, digest);
	pthread_mutex_unlock(&u->lock);
	oom(rc, "a manifest push", repo);
}

void usage_tag_deleted(struct registry *r, const char *repo, const char *tag)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	int rc = usage_model_tag_remove(u->model, repo, tag);
	pthread_mutex_unlock(&u->lock);
	oom(rc, "a tag deletion", repo);
}

void usage_manifest_deleted(struct registry *r, const char *repo, const char *digest)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	int rc = usage_model_revision_remove(u->model, repo, digest);
	pthread_mutex_unlock(&u->lock);
	oom(rc, "a manifest deletion", repo);
}

void usage_upload_progress(struct registry *r, const char *repo, const char *uuid,
			   uint64_t size)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	usage_touch(u, uuid);
	int rc = usage_model_upload_set(u->model, repo, uuid, size, (int64_t)time(NULL));
	pthread_mutex_unlock(&u->lock);
	oom(rc, "an upload", repo);
}

void usage_upload_ended(struct registry *r, const char *repo, const char *uuid,
			const char *digest, uint64_t size)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	usage_touch(u, uuid);
	usage_model_upload_remove(u->model, uuid);
	/* the repository exists (its _uploads or _layers): listed, as the walk lists it */
	int rc = usage_model_repo_touch(u->model, repo);
	if (rc == 0 && digest) {
		usage_touch(u, digest);
		rc = usage_model_blob_stored(u->model, digest, size);
	}
	pthread_mutex_unlock(&u->lock);
	oom(rc, "a blob upload", digest ? digest : uuid);
}

void usage_repo_seen(struct registry *r, const char *repo)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	int rc = usage_model_repo_touch(u->model, repo);
	pthread_mutex_unlock(&u->lock);
	oom(rc, "a new repository", repo);
}

void usage_blob_deleted(struct registry *r, const char *digest)
{
	struct usage *u = r->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	usage_touch(u, digest);
	usage_model_blob_removed(u->model, digest);
	pthread_mutex_unlock(&u->lock);
}

int usage_blob_referenced(struct registry *r, const char *digest)
{
	if (!usage_ready(r))
		return -EAGAIN;
	struct usage *u = r->usage;
	pthread_mutex_lock(&u->lock);
	uint32_t n = usage_model_blob_nrepos(u->model, digest);
	pthread_mutex_unlock(&u->lock);
	return n > 0;
}

int usage_would_be(struct registry *r, const char *repo, const char *tag, const char *digest,
		   size_t len, const struct regfs_manifest *m, struct usage_repo_figures *now,
		   struct usage_repo_figures *then, uint64_t *added)
{
	if (!usage_ready(r))
		return -EAGAIN;
	struct usage *u = r->usage;
	pthread_mutex_lock(&u->lock);
	int rc = usage_model_would_be(u->model, repo, tag, digest, len, m, now, then, added);
	pthread_mutex_unlock(&u->lock);
	return rc;
}
