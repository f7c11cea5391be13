/* usage_http.c — the usage extension (GET /v2/_regfs/usage,
 * docs/api-extensions.md) and the regfs_storage_* gauges on /metrics, both
 * read from the accounting model (usage.h) under its lock: no storage access.
 *
 * Body: {"stored":N,"referenced":N,"garbage":{"blobs":N,"manifests":N,
 * "uploads":N,"total":N},"repositories":[{"name","tags","manifests","bytes",
 * "exclusive","shared"}…]}, repositories paged by name with n/last and a
 * Link like /v2/_catalog (default: all), or only ?repository=NAME. */
#include "lists.h"
#include "registry.h"
#include "request.h"
#include "respond.h"
#include "usage.h"
#include "usage_internal.h"

#include <regfs/names.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void put_totals(struct jbuf *b, const struct usage_totals *t)
{
	uint64_t g = t->garbage_blobs + t->garbage_manifests + t->garbage_uploads;
	jb_printf(b, "{\"stored\":%" PRIu64 ",\"referenced\":%" PRIu64 ",\"garbage\":{\"blobs\":%"
		  PRIu64 ",\"manifests\":%" PRIu64 ",\"uploads\":%" PRIu64 ",\"total\":%" PRIu64 "}",
		  t->stored, t->referenced, t->garbage_blobs, t->garbage_manifests,
		  t->garbage_uploads, g);
}

static void put_repo(struct jbuf *b, const char *name, const struct usage_repo_figures *f)
{
	jb_puts(b, "{\"name\":");
	jb_json_str(b, name);
	jb_printf(b, ",\"tags\":%" PRIu64 ",\"manifests\":%" PRIu64 ",\"bytes\":%" PRIu64
		  ",\"exclusive\":%" PRIu64 ",\"shared\":%" PRIu64 "}", f->tags, f->manifests,
		  f->bytes, f->exclusive, f->shared);
}

static int64_t upload_cutoff(const struct usage *u)
{
	return (int64_t)time(NULL) - u->upload_age_s;
}

/* ?repository=NAME: that repository only. */
static enum MHD_Result answer_one(struct registry *r, struct request *q, const char *name)
{
	struct usage *u = r->usage;
	if (!regfs_name_valid(name))
		return respond_errorf(r, q, 400, "NAME_INVALID", "invalid repository name: %.256s",
				      name);
	struct usage_totals t;
	struct usage_repo_figures f;
	pthread_mutex_lock(&u->lock);
	usage_model_totals(u->model, upload_cutoff(u), &t);
	int rc = usage_model_repo(u->model, name, &f);
	pthread_mutex_unlock(&u->lock);
	if (rc)
		return respond_errorf(r, q, 404, "NAME_UNKNOWN", "repository name not known to "
				      "registry: %.256s", name);
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	put_totals(&b, &t);
	jb_puts(&b, ",\"repositories\":[");
	put_repo(&b, name, &f);
	jb_puts(&b, "]}\n");
	return json_answer(r, q, &b, NULL, NULL, 0, -1, NULL, NULL, NULL);
}

enum MHD_Result h_usage(struct registry *r, struct request *q)
{
	if (!usage_ready(r))
		return respond_error(r, q, 503, "UNAVAILABLE", "storage accounting is being built "
				     "(the startup walk of the storage runs); retry shortly",
				     "{\"building\":true}");
	const char *one = request_query(q, "repository");
	if (one)
		return answer_one(r, q, one);
	int n;
	const char *last;
	enum MHD_Result ret;
	if (!page_or_400(r, q, &n, &last, &ret))
		return ret;
	struct usage *u = r->usage;
	struct strvec names = {0};
	struct usage_totals t;
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	pthread_mutex_lock(&u->lock);
	usage_model_totals(u->model, upload_cutoff(u), &t);
	int rc = usage_model_repo_names(u->model, &names);
	size_t from = 0, to = 0;
	if (rc == 0) {
		page_slice(&names, n, last, &from, &to);
		put_totals(&b, &t);
		jb_puts(&b, ",\"repositories\":[");
		for (size_t i = from; i < to; i++) {
			struct usage_repo_figures f;
			usage_model_repo(u->model, names.v[i], &f);
			if (i > from)
				jb_puts(&b, ",");
			put_repo(&b, names.v[i], &f);
		}
		jb_puts(&b, "]}\n");
	}
	pthread_mutex_unlock(&u->lock);
	if (rc || jb_error(&b)) {
		jb_free(&b);
		strvec_clear(&names);
		return respond_error(r, q, 503, "UNAVAILABLE", "out of memory building the usage "
				     "answer; ask for a smaller n", NULL);
	}
	ret = json_answer(r, q, &b, "/v2/_regfs/usage", &names, to, n, NULL, NULL, NULL);
	strvec_clear(&names);
	return ret;
}

/* ---- gauges ---- */

struct series {
	const char *name;
	struct usage_repo_figures f;
};

static int by_bytes_desc(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	if (x->f.bytes != y->f.bytes)
		return x->f.bytes < y->f.bytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int render_repos(struct dynbuf *b, struct series *s, size_t n, size_t max)
{
	qsort(s, n, sizeof *s, by_bytes_desc);
	int rc = dynbuf_printf(b, "# HELP regfs_storage_bytes Bytes a repository references: "
			       "exclusive (no other repository references them) or shared. "
			       "Beyond regfs.usage.maxseries repositories, the smaller ones are "
			       "summed under repository=\"_other\".\n"
			       "# TYPE regfs_storage_bytes gauge\n");
	uint64_t oe = 0, os = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (i >= max) {
			oe += s[i].f.exclusive;
			os += s[i].f.shared;
			continue;
		}
		rc = dynbuf_printf(b, "regfs_storage_bytes{kind=\"exclusive\",repository=\"%s\"} %"
				   PRIu64 "\nregfs_storage_bytes{kind=\"shared\",repository=\"%s\"} %"
				   PRIu64 "\n", s[i].name, s[i].f.exclusive, s[i].name, s[i].f.shared);
	}
	if (!rc && n > max)
		rc = dynbuf_printf(b, "regfs_storage_bytes{kind=\"exclusive\",repository=\"_other\"} %"
				   PRIu64 "\nregfs_storage_bytes{kind=\"shared\",repository=\"_other\"} %"
				   PRIu64 "\n", oe, os);
	return rc;
}

int usage_render_metrics(struct registry *r, struct dynbuf *b)
{
	if (!usage_ready(r))
		return 0;
	struct usage *u = r->usage;
	struct strvec names = {0};
	struct usage_totals t;
	pthread_mutex_lock(&u->lock);
	usage_model_totals(u->model, upload_cutoff(u), &t);
	int rc = usage_model_repo_names(u->model, &names);
	struct series *s = rc ? NULL : calloc(names.n ? names.n : 1, sizeof *s);
	for (size_t i = 0; s && i < names.n; i++) {
		s[i].name = names.v[i];
		usage_model_repo(u->model, names.v[i], &s[i].f);
	}
	pthread_mutex_unlock(&u->lock);
	rc = s ? 0 : -ENOMEM;
	uint64_t g = t.garbage_blobs + t.garbage_manifests + t.garbage_uploads;
	if (!rc)
		rc = dynbuf_printf(b, "# HELP regfs_storage_stored_bytes Bytes in storage: blobs, "
				   "manifests and uploads in progress.\n# TYPE regfs_storage_stored_bytes "
				   "gauge\nregfs_storage_stored_bytes %" PRIu64 "\n# HELP "
				   "regfs_storage_garbage_bytes Bytes garbage-collect would free now "
				   "(and upload purging, for abandoned uploads).\n# TYPE "
				   "regfs_storage_garbage_bytes gauge\nregfs_storage_garbage_bytes %"
				   PRIu64 "\n", t.stored, g);
	size_t max = u->maxseries > 0 ? (size_t)u->maxseries : 0;
	if (!rc)
		rc = render_repos(b, s, names.n, max);
	free(s);
	strvec_clear(&names);
	return rc;
}
