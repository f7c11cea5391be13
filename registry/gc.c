/* gc.c — garbage collection, offline (`regfs-registry garbage-collect`) and
 * online (regfs.gc in `serve`).
 *
 * Mark: every manifest revision of every repository, what it references
 * (config, layers) and, for indexes, every child manifest and what those
 * reference, recursively. With delete-untagged, manifests that no tag reaches
 * (directly, as an index child, or as a referrer whose subject is reached)
 * are deleted first and not marked. Sweep: every blob under blobs/ that is
 * not marked is deleted, and repositories' _layers links to it removed.
 *
 * Online safety (several threads of this process):
 *   - blobs whose data is younger than `delay` are never swept, nor manifests
 *     (revision links) younger than `delay` deleted as untagged: a push in
 *     flight uploads blobs and child manifests before the manifest or index
 *     that references them;
 *   - a writer that references a blob (manifest PUT, upload finish, mount)
 *     holds gc_rw for reading and notes the digest in `recent` before it
 *     checks the blob exists (a HEAD that finds a blob notes it too: clients
 *     skip uploading blobs that exist); the run starts by taking gc_rw for
 *     writing and dropping notes older than `delay`, so every writer that
 *     noted before has written its links (the mark phase sees them) and every
 *     note younger than `delay` stays until the run ends; mtimes are whole
 *     seconds, so "younger" is compared inclusively; the sweeper checks `recent` and deletes under
 *     gc_lock. So a manifest PUT either sees the blob deleted (and fails
 *     with MANIFEST_BLOB_UNKNOWN) or the blob is kept.
 *   - several instances: notes are per process, so only `delay` protects a
 *     push served by another instance; run online GC on one instance, with a
 *     delay longer than any push takes (docs/registry.md). */
#include "gc.h"

#include "blobdesc.h"
#include "digestset.h"
#include "layerindex.h"
#include "manifest_bytes.h"
#include "registry.h"
#include "repo.h"
#include "usage.h"

#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/oci.h>
#include <regfs/progress.h>

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void gc_writer_begin(struct registry *r)
{
	if (r->gc_online)
		pthread_rwlock_rdlock(&r->gc_rw);
}

void gc_writer_end(struct registry *r)
{
	if (r->gc_online)
		pthread_rwlock_unlock(&r->gc_rw);
}

void gc_note_referenced(struct registry *r, const char *digest)
{
	if (!r->gc_online || !r->recent)
		return;
	pthread_mutex_lock(&r->gc_lock);
	digestset_add_at(r->recent, digest, (int64_t)time(NULL));
	pthread_mutex_unlock(&r->gc_lock);
}

void gc_recent_prune(struct registry *r, int64_t before)
{
	/* barrier: writers half-way through "note, check, link" finish first */
	pthread_rwlock_wrlock(&r->gc_rw);
	/* Notes live for `delay`, not one run: a client that checked a blob
	 * (HEAD, mount, upload) may take that long to send the manifest. */
	pthread_mutex_lock(&r->gc_lock);
	if (digestset_prune_before(r->recent, before) < 0)
		digestset_clear(r->recent);
	pthread_mutex_unlock(&r->gc_lock);
	pthread_rwlock_unlock(&r->gc_rw);
}

struct gc {
	struct registry *r;
	const struct gc_opts *o;
	struct gc_stats *s;
	struct digestset *marked;
	struct digestset *visited;   /* manifests whose references are marked */
	struct digestset *swept;
	int64_t now;
	/* offline on a terminal: stderr shows how far the run is (inactive
	 * otherwise: regfs_progress_* are then no-ops) */
	struct regfs_progress progress;
};

static void say(struct gc *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct gc *g, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (g->o->quiet) {
		log_info("gc: %s", msg);
	} else {
		regfs_progress_clear(&g->progress);
		printf("%s\n", msg);
		if (g->progress.on)
			fflush(stdout); /* before the progress line is drawn again */
	}
}

static int mark(struct gc *g, const char *digest)
{
	int rc = digestset_add(g->marked, digest);
	if (rc == 1)
		g->s->marked++;
	return rc < 0 ? rc : 0;
}

/* Marks a manifest and everything it references, recursively for indexes.
 * A missing or unparsable manifest is reported and skipped; a storage error
 * aborts the run (sweeping on partial knowledge could delete live blobs). */
static int mark_manifest(struct gc *g, const char *repo, const char *digest, int depth,
			 struct regfs_err *err)
{
	int rc = mark(g, digest);
	if (rc)
		return rc;
	if (digestset_has(g->visited, digest) || depth > 16)
		return 0;
	if (digestset_add(g->visited, digest) < 0)
		return -ENOMEM;
	struct manifest_entry *e = NULL;
	struct regfs_err le = {0};
	rc = manifest_load(g->r, digest, &e, &le);
	if (rc == -ENOENT || rc == -EINVAL) {
		log_warn("gc: %s: manifest %s cannot be read (%s); skipping it", repo, digest,
			 regfs_err_str(&le));
		return 0;
	}
	if (rc == -EIO && strstr(le.msg, "corrupt")) {
		log_warn("gc: %s: %s", repo, le.msg);
		return 0;
	}
	if (rc)
		return regfs_errf(err, rc, "reading manifest %s of %s: %s", digest, repo,
				  regfs_err_str(&le));
	struct regfs_manifest *m = NULL;
	if (regfs_manifest_parse(e->data, e->len, e->media_type, &m, NULL) != 0) {
		manifest_bytes_release(g->r->mb, e);
		log_debug("gc: %s: manifest %s has no references we understand", repo, digest);
		return 0;
	}
	manifest_bytes_release(g->r->mb, e);
	if (m->has_config)
		rc = mark(g, m->config.digest);
	for (size_t i = 0; rc == 0 && i < m->n_layers; i++)
		rc = mark(g, m->layers[i].digest);
	for (size_t i = 0; rc == 0 && i < m->n_manifests; i++)
		rc = mark_manifest(g, repo, m->manifests[i].digest, depth + 1, err);
	regfs_manifest_free(m);
	return rc;
}

/* With delete-untagged: which revisions are reached from tags. */
static int reached_set(struct gc *g, const char *repo, const struct strvec *revs,
		       struct digestset *reached, struct regfs_err *err)
{
	struct strvec tags = {0};
	int rc = repo_list_tags(g->r, repo, &tags, err);
	if (rc == -ENOENT) {
		rc = 0;
		regfs_err_clear(err);
	}
	for (size_t i = 0; rc == 0 && i < tags.n; i++) {
		char d[REGFS_DIGEST_MAX];
		char *cur = regfs_layout_tag_current(repo, tags.v[i]);
		if (cur && repo_read_link(g->r, cur, d, NULL, NULL) == 0)
			rc = digestset_add(reached, d) < 0 ? -ENOMEM : 0;
		free(cur);
	}
	strvec_clear(&tags);
	/* closure: index children of reached manifests, and referrers whose
	 * subject is reached (a signature of a kept image stays) */
	for (bool changed = true; rc == 0 && changed;) {
		changed = false;
		for (size_t i = 0; i < revs->n; i++) {
			struct manifest_entry *e = NULL;
			if (manifest_load(g->r, revs->v[i], &e, NULL) != 0)
				continue;
			bool in = digestset_has(reached, revs->v[i]);
			if (!in && e->subject[0] && digestset_has(reached, e->subject)) {
				digestset_add(reached, revs->v[i]);
				changed = true;
				in = true;
			}
			if (in && regfs_media_type_is_index(e->media_type)) {
				struct regfs_manifest *m = NULL;
				if (regfs_manifest_parse(e->data, e->len, e->media_type, &m, NULL) == 0) {
					for (size_t k = 0; k < m->n_manifests; k++)
						if (digestset_add(reached, m->manifests[k].digest) == 1)
							changed = true;
					regfs_manifest_free(m);
				}
			}
			manifest_bytes_release(g->r->mb, e);
		}
	}
	return rc;
}

static int gc_repo(const char *repo, void *ud)
{
	struct gc *g = ud;
	struct regfs_err *err = NULL;
	struct strvec revs = {0};
	struct regfs_err e = {0};
	int rc = repo_list_revisions(g->r, repo, &revs, &e);
	if (rc) {
		log_error("gc: listing manifests of %s failed: %s", repo, regfs_err_str(&e));
		strvec_clear(&revs);
		return rc;
	}
	struct digestset *reached = NULL;
	if (g->o->delete_untagged) {
		reached = digestset_new();
		if (!reached || reached_set(g, repo, &revs, reached, &e) != 0) {
			digestset_free(reached);
			strvec_clear(&revs);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < revs.n && rc == 0; i++) {
		const char *d = revs.v[i];
		if (reached && !digestset_has(reached, d)) {
			char *link = regfs_layout_revision_link(repo, d);
			struct regfs_stat_info st = {0};
			bool young = g->o->delay_s > 0 && repo_exists(g->r, link, &st) &&
				     st.mtime >= g->now - g->o->delay_s;
			if (young) {
				free(link);
				rc = mark_manifest(g, repo, d, 0, &e);
				continue;
			}
			/* online: an index PUT that just noted this manifest as its
			 * child keeps it (same protocol as blobs, see above) */
			if (g->o->online)
				pthread_mutex_lock(&g->r->gc_lock);
			bool noted = g->o->online && digestset_has(g->r->recent, d);
			if (!noted) {
				say(g, "%s: manifest eligible for deletion: %s", repo, d);
				g->s->manifests_deleted++;
				char *s = link ? strrchr(link, '/') : NULL;
				if (!g->o->dry_run && s) {
					*s = '\0';
					if (regfs_storage_del(g->r->st, link, NULL) == 0)
						usage_manifest_deleted(g->r, repo, d);
					blobdesc_forget_link(g->r->bd, repo, d);
				}
			}
			if (g->o->online)
				pthread_mutex_unlock(&g->r->gc_lock);
			free(link);
			if (noted)
				rc = mark_manifest(g, repo, d, 0, &e);
			continue;
		}
		rc = mark_manifest(g, repo, d, 0, &e);
	}
	if (rc)
		log_error("gc: %s: %s", repo, regfs_err_str(&e));
	regfs_progress_update(&g->progress, g->progress.items + 1, 0);
	(void)err;
	digestset_free(reached);
	strvec_clear(&revs);
	return rc;
}

/* ---- sweep ---- */

struct blob_list {
	struct strvec digests;
	const char *alg;
	int rc;
};

static int blob_hex_cb(const char *path, void *ud)
{
	struct blob_list *b = ud;
	char d[REGFS_DIGEST_MAX + 8];
	snprintf(d, sizeof d, "%s:%s", b->alg, regfs_path_base(path));
	if (regfs_digest_valid(d))
		b->rc = strvec_push(&b->digests, d);
	return b->rc != 0;
}

struct prefix_list {
	struct strvec dirs;
};

static int prefix_cb(const char *path, void *ud)
{
	struct prefix_list *p = ud;
	return strvec_push(&p->dirs, path) != 0;
}

int gc_list_blobs(struct registry *r, struct strvec *out, struct regfs_err *err)
{
	static const char *const algs[] = {"sha256", "sha512"};
	int rc = 0;
	for (size_t a = 0; a < 2 && rc == 0; a++) {
		char dir[64];
		snprintf(dir, sizeof dir, REGFS_LAYOUT_BLOBS "/%s", algs[a]);
		struct prefix_list p = {0};
		rc = regfs_storage_list(r->st, dir, prefix_cb, &p, err);
		if (rc == -ENOENT) {
			rc = 0;
			regfs_err_clear(err);
		}
		struct blob_list b = {.alg = algs[a]};
		for (size_t i = 0; i < p.dirs.n && rc == 0; i++) {
			rc = regfs_storage_list(r->st, p.dirs.v[i], blob_hex_cb, &b, err);
			if (rc == -ENOENT || rc == -ENOTDIR) {
				rc = 0;
				regfs_err_clear(err);
			}
			if (rc == 0)
				rc = b.rc;
		}
		for (size_t i = 0; i < b.digests.n && rc == 0; i++)
			rc = strvec_push(out, b.digests.v[i]);
		strvec_clear(&b.digests);
		strvec_clear(&p.dirs);
	}
	strvec_sort(out);
	return rc;
}

static int sweep(struct gc *g, struct regfs_err *err)
{
	struct strvec blobs = {0};
	int rc = gc_list_blobs(g->r, &blobs, err);
	if (!g->o->quiet)
		regfs_progress_begin(&g->progress, stderr, "sweep", "blobs", blobs.n);
	for (size_t i = 0; i < blobs.n && rc == 0; i++) {
		const char *d = blobs.v[i];
		/* items: blobs checked; bytes: bytes freed so far */
		regfs_progress_update(&g->progress, i + 1, g->s->bytes);
		if (digestset_has(g->marked, d))
			continue;
		char *data = regfs_layout_blob_data(d);
		char *dir = regfs_layout_blob_dir(d);
		struct regfs_stat_info st = {0};
		bool exists = repo_exists(g->r, data, &st);
		if (g->o->delay_s > 0 && exists && st.mtime >= g->now - g->o->delay_s) {
			free(data);
			free(dir);
			continue; /* too young: a push may be about to reference it */
		}
		bool deleted = false;
		if (!g->o->dry_run && dir) {
			if (g->o->online)
				pthread_mutex_lock(&g->r->gc_lock);
			if (!(g->o->online && digestset_has(g->r->recent, d)))
				deleted = regfs_storage_del(g->r->st, dir, NULL) == 0;
			blobdesc_forget_blob(g->r->bd, d);
			if (deleted)
				usage_blob_deleted(g->r, d);
			if (g->o->online)
				pthread_mutex_unlock(&g->r->gc_lock);
			if (!deleted) {
				free(data);
				free(dir);
				continue;
			}
		}
		say(g, "blob eligible for deletion: %s", d);
		g->s->swept++;
		g->s->bytes += st.size;
		if (deleted || g->o->dry_run)
			rc = digestset_add(g->swept, d) < 0 ? -ENOMEM : 0;
		free(data);
		free(dir);
	}
	regfs_progress_update(&g->progress, g->progress.items, g->s->bytes);
	regfs_progress_end(&g->progress);
	strvec_clear(&blobs);
	return rc;
}

/* Removes _layers links to blobs swept in this run. */
static int unlink_repo(const char *repo, void *ud)
{
	struct gc *g = ud;
	struct strvec layers = {0};
	repo_list_layers(g->r, repo, &layers, NULL);
	for (size_t i = 0; i < layers.n; i++) {
		if (!digestset_has(g->swept, layers.v[i]))
			continue;
		g->s->links_removed++;
		if (g->o->dry_run)
			continue;
		char *link = regfs_layout_layer_link(repo, layers.v[i]);
		char *s = link ? strrchr(link, '/') : NULL;
		if (s) {
			*s = '\0';
			regfs_storage_del(g->r->st, link, NULL);
			blobdesc_forget_link(g->r->bd, repo, layers.v[i]);
		}
		free(link);
	}
	strvec_clear(&layers);
	return 0;
}

int gc_run(struct registry *r, const struct gc_opts *o, struct gc_stats *out,
	   struct regfs_err *err)
{
	memset(out, 0, sizeof *out);
	struct gc g = {.r = r, .o = o, .s = out, .now = (int64_t)time(NULL)};
	g.marked = digestset_new();
	g.visited = digestset_new();
	g.swept = digestset_new();
	int rc = (g.marked && g.visited && g.swept) ? 0 : -ENOMEM;
	if (rc == 0 && o->online)
		gc_recent_prune(r, g.now - o->delay_s);
	if (!o->quiet)
		regfs_progress_begin(&g.progress, stderr, "mark", "repositories", 0);
	g.progress.no_bytes = true;
	if (rc == 0)
		rc = repo_walk(r, gc_repo, &g, err);
	regfs_progress_end(&g.progress);
	if (rc == 0)
		rc = sweep(&g, err);
	if (rc == 0 && digestset_count(g.swept))
		rc = repo_walk(r, unlink_repo, &g, err);
	/* indexes of layers swept now or by earlier runs, markers of gone manifests;
	 * a failure there leaves only orphaned indexes: logged, the run stands */
	struct regfs_err lie = {0};
	if (rc == 0 && layerindex_gc(r, o->dry_run, NULL, &lie) != 0)
		log_warn("gc: layer indexes of swept blobs not removed: %s", regfs_err_str(&lie));
	if (rc == 0 && !o->quiet)
		printf("\n%" PRIu64 " blobs marked, %" PRIu64 " blobs eligible for deletion, %" PRIu64
		       " bytes%s\n", out->marked, out->swept, out->bytes,
		       o->dry_run ? " (dry run: nothing deleted)" : "");
	if (rc && err && !err->code)
		regfs_errf(err, rc, "garbage collection failed");
	digestset_free(g.marked);
	digestset_free(g.visited);
	digestset_free(g.swept);
	return rc;
}
