/* usage_out.c — .regfs/usage (JSON) and .regfs/usage.txt (a table for
 * people): the walk's accounting (usage.h) per repository, the registry's
 * total, the retention view and, where the registry offers the usage
 * extension, its own stored / referenced / garbage figures. The format is
 * documented in docs/mount.md. */
#include "mount.h"
#include "usage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <regfs/cmp.h>
#include <regfs/dynbuf.h>
#include <regfs/log.h>
#include <regfs/progress.h>

#define J(v) json_integer((json_int_t)(v))

static const char *const bucket_name[USAGE_BUCKETS] = {"<1d", "<7d", "<30d", ">=30d",
						       "unknown"};

static json_t *repo_json(const struct usage *u, const struct usage_repo *r)
{
	json_t *top = json_array();
	for (size_t i = 0; top && i < r->n_top; i++) {
		char d[REGFS_DIGEST_MAX];
		usage_blob_digest(u, r->top[i].blob, d);
		json_array_append_new(top, json_pack("{s:s,s:o}", "digest", d, "size",
						     J(r->top[i].size)));
	}
	if (!top)
		return NULL;
	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "name", r->name, "tags", J(r->tags),
			 "manifests", J(r->manifests), "bytes", J(r->fig.bytes), "exclusive",
			 J(r->fig.exclusive), "shared", J(r->fig.shared), "blobs", J(r->fig.blobs),
			 "largest_layers", top);
}

static json_t *retention_json(const struct usage_retention *rt)
{
	json_t *b = json_array();
	for (int i = 0; b && i < USAGE_BUCKETS; i++)
		json_array_append_new(b, json_pack("{s:s,s:o,s:o}", "age", bucket_name[i], "tags",
						   J(rt->tags[i]), "bytes", J(rt->bytes[i])));
	if (!b)
		return NULL;
	return json_pack("{s:o,s:{s:o,s:o,s:o},s:o}", "buckets", b, "delete_older_than",
			 "1", J(rt->older_than[0]), "7", J(rt->older_than[1]), "30",
			 J(rt->older_than[2]), "untagged", J(rt->untagged));
}

/* The usage extension's figures, or JSON null where the registry has none
 * (a failure is logged: the rest of the file still stands). */
static json_t *registry_json(struct mnt *m)
{
	if (!regfs_client_has_ext(m->client, "usage"))
		return json_null();
	struct regfs_usage g;
	struct regfs_err e = {0};
	int rc = regfs_client_usage(m->client, &g, &e);
	if (rc) {
		fs_warn(".regfs/usage: the registry's usage figures: %s", regfs_err_str(&e));
		return json_null();
	}
	return json_pack("{s:o,s:o,s:{s:o,s:o,s:o,s:o}}", "stored", J(g.stored), "referenced",
			 J(g.referenced), "garbage", "blobs", J(g.garbage_blobs), "manifests",
			 J(g.garbage_manifests), "uploads", J(g.garbage_uploads), "total",
			 J(g.garbage_total));
}

static json_t *usage_json(struct mnt *m, const struct usage *u, int64_t now)
{
	struct usage_fig t;
	usage_total(u, &t);
	struct usage_retention rt;
	usage_retention(u, now, &rt);
	json_t *repos = json_array();
	for (size_t i = 0; repos && i < usage_n_repos(u); i++)
		if (json_array_append_new(repos, repo_json(u, usage_repo_at(u, i)))) {
			json_decref(repos);
			repos = NULL;
		}
	json_t *ret = retention_json(&rt), *reg = registry_json(m);
	if (!repos || !ret || !reg) {
		json_decref(repos);
		json_decref(ret);
		json_decref(reg);
		return NULL;
	}
	return json_pack("{s:{s:o,s:o,s:o},s:o,s:o,s:o,s:o}", "total", "bytes", J(t.bytes), "blobs",
			 J(t.blobs), "du_bytes", J(t.blocks * 512), "now", J(now), "repositories",
			 repos, "retention", ret, "registry", reg);
}

static int get_json(struct mnt *m, json_t **out)
{
	loop_may_block(); /* may walk the registry */
	struct usage *u;
	int rc = walk_usage(m, &u);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	*out = usage_json(m, u, (int64_t)time(NULL));
	usage_put(u);
	return *out ? 0 : -ENOMEM;
}

int usage_json_text(struct mnt *m, char **buf, size_t *len)
{
	json_t *j;
	int rc = get_json(m, &j);
	if (rc)
		return rc;
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	struct dynbuf b;
	dynbuf_init(&b, SIZE_MAX);
	rc = dynbuf_addstr(&b, s) || dynbuf_addstr(&b, "\n") ? -ENOMEM : 0;
	free(s);
	if (rc) {
		dynbuf_free(&b);
		return rc;
	}
	*buf = dynbuf_take(&b, len);
	return *buf ? 0 : -ENOMEM;
}

/* ---- usage.txt ---- */

static const char *hb(uint64_t v, char s[32])
{
	regfs_progress_human(v, s, 32);
	return s;
}

/* Repositories by bytes, largest first (then by name). */
static int by_bytes(const void *a, const void *b)
{
	const struct usage_repo *x = *(const struct usage_repo *const *)a,
				*y = *(const struct usage_repo *const *)b;
	if (x->fig.bytes != y->fig.bytes)
		return x->fig.bytes < y->fig.bytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void text_repos(struct dynbuf *b, const struct usage *u, const struct usage_repo **v)
{
	size_t n = usage_n_repos(u);
	for (size_t i = 0; i < n; i++)
		v[i] = usage_repo_at(u, i);
	regfs_qsort(v, n, sizeof *v, by_bytes);
	char h1[32], h2[32], h3[32];
	dynbuf_printf(b, "%-40s %5s %9s %10s %10s %10s  %s\n", "REPOSITORY", "TAGS", "MANIFESTS",
		      "BYTES", "EXCLUSIVE", "SHARED", "(bytes exclusive shared)");
	for (size_t i = 0; i < n; i++) {
		const struct usage_repo *r = v[i];
		dynbuf_printf(b, "%-40s %5llu %9llu %10s %10s %10s  (%llu %llu %llu)\n", r->name,
			      (unsigned long long)r->tags, (unsigned long long)r->manifests,
			      hb(r->fig.bytes, h1), hb(r->fig.exclusive, h2), hb(r->fig.shared, h3),
			      (unsigned long long)r->fig.bytes, (unsigned long long)r->fig.exclusive,
			      (unsigned long long)r->fig.shared);
	}
	dynbuf_addstr(b, "\nlargest layers (repository: size digest)\n");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i]->n_top; k++) {
			char d[REGFS_DIGEST_MAX];
			usage_blob_digest(u, v[i]->top[k].blob, d);
			dynbuf_printf(b, "  %s: %s (%llu) %s\n", v[i]->name,
				      hb(v[i]->top[k].size, h1), (unsigned long long)v[i]->top[k].size,
				      d);
		}
}

static void text_retention(struct dynbuf *b, const struct usage *u, int64_t now)
{
	struct usage_retention rt;
	usage_retention(u, now, &rt);
	char h[32];
	dynbuf_addstr(b, "\nretention: bytes by the age of the newest tag reaching them\n");
	for (int i = 0; i < USAGE_BUCKETS; i++)
		dynbuf_printf(b, "  %-8s %6llu tags %10s (%llu)\n", bucket_name[i],
			      (unsigned long long)rt.tags[i], hb(rt.bytes[i], h),
			      (unsigned long long)rt.bytes[i]);
	for (int j = 0; j < 3; j++)
		dynbuf_printf(b, "  deleting tags older than %d days frees %s (%llu) after a "
			      "garbage collection\n", usage_bucket_days[j], hb(rt.older_than[j], h),
			      (unsigned long long)rt.older_than[j]);
	dynbuf_printf(b, "  reached by no tag (untagged manifests): %s (%llu)\n",
		      hb(rt.untagged, h), (unsigned long long)rt.untagged);
}

static void text_registry(struct dynbuf *b, json_t *reg)
{
	if (!json_is_object(reg)) {
		dynbuf_addstr(b, "\nregistry: no usage extension (stored and garbage bytes "
				 "unknown)\n");
		return;
	}
	json_t *g = json_object_get(reg, "garbage");
	dynbuf_printf(b, "\nregistry: stored %lld, referenced %lld, garbage %lld (blobs %lld, "
		      "manifests %lld, uploads %lld)\n",
		      (long long)json_integer_value(json_object_get(reg, "stored")),
		      (long long)json_integer_value(json_object_get(reg, "referenced")),
		      (long long)json_integer_value(json_object_get(g, "total")),
		      (long long)json_integer_value(json_object_get(g, "blobs")),
		      (long long)json_integer_value(json_object_get(g, "manifests")),
		      (long long)json_integer_value(json_object_get(g, "uploads")));
}

int usage_table_text(struct mnt *m, char **buf, size_t *len)
{
	loop_may_block();
	struct usage *u;
	int rc = walk_usage(m, &u);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	size_t n = usage_n_repos(u);
	const struct usage_repo **v = malloc((n ? n : 1) * sizeof *v);
	json_t *reg = v ? registry_json(m) : NULL;
	if (!reg) {
		free(v);
		usage_put(u);
		return -ENOMEM;
	}
	struct usage_fig t;
	usage_total(u, &t);
	struct dynbuf b;
	dynbuf_init(&b, SIZE_MAX);
	char h[32];
	dynbuf_printf(&b, "total: %s (%llu bytes in %llu blobs; du -s -B1: %llu)\n\n",
		      hb(t.bytes, h), (unsigned long long)t.bytes, (unsigned long long)t.blobs,
		      (unsigned long long)t.blocks * 512);
	text_repos(&b, u, v);
	text_retention(&b, u, (int64_t)time(NULL));
	text_registry(&b, reg);
	json_decref(reg);
	free(v);
	usage_put(u);
	*buf = dynbuf_take(&b, len);
	return *buf ? 0 : -ENOMEM;
}
