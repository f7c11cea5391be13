/* ext.c — regfs-registry API extensions (docs/api-extensions.md): bulk tag
 * listing and per-repository manifest listing. Both answer -ENOTSUP without
 * a request when GET /v2/ did not advertise them. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <regfs/names.h>

#define MAX_PAGES 100000

/* RFC 3339 UTC ("2026-11-28T08:00:00Z", fractions ignored) → unix time; 0 if bad. */
static int64_t rfc3339(const char *s)
{
	struct tm tm = {0};
	if (!s)
		return 0;
	const char *e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!e)
		return 0;
	time_t t = timegm(&tm);
	/* An explicit offset ("+02:00") shifts to UTC. */
	e += strspn(e, ".0123456789");
	if ((*e == '+' || *e == '-') && strlen(e) >= 6) {
		int h = (e[1] - '0') * 10 + (e[2] - '0'), m = (e[4] - '0') * 10 + (e[5] - '0');
		t += (*e == '+' ? -1 : 1) * (h * 3600 + m * 60);
	}
	return t > 0 ? (int64_t)t : 0;
}

void regfs_repo_tags_free(struct regfs_repo_tags *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++) {
		free(r[i].name);
		for (size_t k = 0; k < r[i].n_tags; k++)
			free(r[i].tags[k].tag);
		free(r[i].tags);
	}
	free(r);
}

static int tag_info_set(struct regfs_tag_info *t, const char *tag, const char *digest,
			const char *pushed)
{
	t->tag = tag ? strdup(tag) : NULL;
	snprintf(t->digest, sizeof t->digest, "%s", digest ? digest : "");
	t->pushed = rfc3339(pushed);
	return (tag && !t->tag) ? -ENOMEM : 0;
}

static int parse_repo(json_t *jr, struct regfs_repo_tags *out)
{
	*out = (struct regfs_repo_tags){0};
	const char *name = json_string_value(json_object_get(jr, "name"));
	json_t *tags = json_object_get(jr, "tags");
	if (!name || (tags && !json_is_array(tags)))
		return -EPROTO;
	out->name = strdup(name);
	size_t nt = json_array_size(tags);
	out->tags = nt ? calloc(nt, sizeof *out->tags) : NULL;
	if (!out->name || (nt && !out->tags))
		return -ENOMEM;
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t) {
		const char *tag = json_string_value(json_object_get(t, "tag"));
		const char *dg = json_string_value(json_object_get(t, "digest"));
		if (!tag || !dg || !regfs_digest_valid(dg))
			return -EPROTO;
		int rc = tag_info_set(&out->tags[out->n_tags], tag, dg,
				      json_string_value(json_object_get(t, "pushed")));
		if (rc)
			return rc;
		out->n_tags++;
	}
	return 0;
}

int regfs_client_bulk_tags(struct regfs_client *c, struct regfs_repo_tags **out, size_t *n,
			   struct regfs_err *err)
{
	*out = NULL;
	*n = 0;
	if (!regfs_client_has_ext(c, "bulk-tags"))
		return regfs_errf(err, -ENOTSUP,
				  "registry %s does not offer the bulk-tags extension: list tags "
				  "per repository instead", c->url);
	char *url = xasprintf("%s/v2/_regfs/tags?n=1000", c->url);
	int rc = url ? 0 : regfs_errf(err, -ENOMEM, "out of memory");
	struct regfs_repo_tags *v = NULL;
	size_t nv = 0;
	for (int page = 0; url && !rc; page++) {
		if (page >= MAX_PAGES) {
			rc = regfs_errf(err, -EPROTO, "GET %s: the Link pages loop", url);
			break;
		}
		struct rq q = {.method = "GET", .url = url, .scope = "registry:catalog:*",
			       .idempotent = true};
		struct resp r = {.sink = SINK_MEM, .content_length = -1};
		ST_INC(c, st_tag_lists);
		rc = client_do(c, &q, &r, err);
		if (!rc && r.status != 200)
			rc = status_err(c, &r, "GET", url, "bulk tag list", err);
		json_t *j = rc ? NULL : json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
		json_t *repos = json_object_get(j, "repositories");
		if (!rc && !json_is_array(repos))
			rc = -EPROTO;
		size_t add = json_array_size(repos);
		if (!rc && add) {
			struct regfs_repo_tags *nvp = realloc(v, (nv + add) * sizeof *v);
			if (!nvp)
				rc = -ENOMEM;
			else
				v = nvp;
		}
		for (size_t i = 0; !rc && i < add; i++) {
			rc = parse_repo(json_array_get(repos, i), &v[nv]);
			nv++; /* counted even on failure so the free below sees it */
		}
		json_decref(j);
		if (rc == -EPROTO) {
			ST_INC(c, st_errors);
			regfs_errf(err, rc, "GET %s: the answer does not match docs/api-extensions.md "
				   "(bulk-tags)", url);
		} else if (rc == -ENOMEM) {
			regfs_errf(err, rc, "out of memory");
		}
		char *next = !rc && r.link ? link_next(c, r.link) : NULL;
		resp_free(&r);
		free(url);
		url = next;
	}
	free(url);
	if (rc) {
		regfs_repo_tags_free(v, nv);
		return rc;
	}
	*out = v;
	*n = nv;
	return 0;
}

/* One entry per manifest; `tag` is its tags joined with "," (tags cannot
 * contain commas), or NULL when the manifest is untagged. */
int regfs_client_repo_manifests(struct regfs_client *c, const char *repo,
				struct regfs_tag_info **out, size_t *n, struct regfs_err *err)
{
	*out = NULL;
	*n = 0;
	if (!repo || !regfs_name_valid(repo))
		return regfs_errf(err, -EINVAL, "\"%s\" is not a valid repository name",
				  repo ? repo : "(null)");
	if (!regfs_client_has_ext(c, "repo-manifests"))
		return regfs_errf(err, -ENOTSUP,
				  "registry %s does not offer the repo-manifests extension: list "
				  "tags and fetch their manifests instead", c->url);
	char *url = xasprintf("%s/v2/%s/_regfs/manifests", c->url, repo);
	char *scope = scope_pull(repo);
	struct resp r = {.sink = SINK_MEM, .content_length = -1};
	struct regfs_tag_info *v = NULL;
	size_t nv = 0;
	json_t *j = NULL;
	int rc = 0;
	if (!url || !scope) {
		rc = regfs_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	struct rq q = {.method = "GET", .url = url, .scope = scope, .idempotent = true};
	ST_INC(c, st_tag_lists);
	rc = client_do(c, &q, &r, err);
	if (!rc && r.status != 200) {
		char what[300];
		snprintf(what, sizeof what, "manifests of repository %s", repo);
		rc = status_err(c, &r, "GET", url, what, err);
	}
	if (rc)
		goto out;
	j = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
	json_t *ms = json_object_get(j, "manifests");
	size_t nm = json_array_size(ms);
	if (!json_is_array(ms))
		goto bad;
	v = nm ? calloc(nm, sizeof *v) : NULL;
	if (nm && !v) {
		rc = regfs_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nm; i++) {
		json_t *m = json_array_get(ms, i);
		const char *dg = json_string_value(json_object_get(m, "digest"));
		if (!dg || !regfs_digest_valid(dg))
			goto bad;
		struct membuf tags = {0};
		size_t k;
		json_t *t;
		json_array_foreach(json_object_get(m, "tags"), k, t) {
			const char *s = json_string_value(t);
			if (!s)
				continue;
			if ((tags.len && membuf_append(&tags, ",", 1)) ||
			    membuf_append(&tags, s, strlen(s))) {
				membuf_free(&tags);
				rc = regfs_errf(err, -ENOMEM, "out of memory");
				goto out;
			}
		}
		rc = tag_info_set(&v[nv], tags.data, dg,
				  json_string_value(json_object_get(m, "pushed")));
		membuf_free(&tags);
		nv++;
		if (rc) {
			regfs_errf(err, rc, "out of memory");
			goto out;
		}
	}
	goto out;
bad:
	ST_INC(c, st_errors);
	rc = regfs_errf(err, -EPROTO,
			"GET %s: the answer does not match docs/api-extensions.md (repo-manifests)",
			url);
out:
	json_decref(j);
	resp_free(&r);
	free(url);
	free(scope);
	if (rc) {
		for (size_t i = 0; i < nv; i++)
			free(v[i].tag);
		free(v);
		return rc;
	}
	*out = v;
	*n = nv;
	return 0;
}

void regfs_tag_info_free(struct regfs_tag_info *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		free(t[i].tag);
	free(t);
}
