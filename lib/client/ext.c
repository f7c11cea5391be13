/* ext.c — regfs-registry API extensions (docs/api-extensions.md): bulk tag
 * listing and per-repository manifest listing. Both answer -ENOTSUP without
 * a request when GET /v2/ did not advertise them. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <regfs/names.h>


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

/* The tag and digest of one {"tag", "digest", "pushed"} entry (pointers into
 * t): -EPROTO when either is missing or the digest is not valid. */
static int tag_entry(json_t *t, const char **tag, const char **dg)
{
	*tag = json_string_value(json_object_get(t, "tag"));
	*dg = json_string_value(json_object_get(t, "digest"));
	return *tag && *dg && regfs_digest_valid(*dg) ? 0 : -EPROTO;
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
		const char *tag, *dg;
		int rc = tag_entry(t, &tag, &dg);
		if (!rc)
			rc = tag_info_set(&out->tags[out->n_tags], tag, dg,
					  json_string_value(json_object_get(t, "pushed")));
		if (rc)
			return rc;
		out->n_tags++;
	}
	return 0;
}

/* The regfs-registry listings span all repositories: the catalog scope,
 * counted as tag lists. Takes ownership of `first`. */
static int get_pages(struct regfs_client *c, char *first, const char *what, page_fn *page,
		     void *arg, struct regfs_err *err)
{
	struct pages pg = {.scope = "registry:catalog:*", .what = what,
			   .counter = &c->st_tag_lists, .page = page, .arg = arg};
	return walk_pages(c, first, &pg, err);
}

struct tags_acc {
	struct regfs_repo_tags *v;
	size_t n;
};

/* One bulk-tags page: appends its repositories to the accumulator. */
static int bulk_tags_page(const char *url, const char *body, size_t len, void *arg,
			  struct regfs_err *err)
{
	struct tags_acc *a = arg;
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	json_t *repos = json_object_get(j, "repositories");
	int rc = json_is_array(repos) ? 0 : -EPROTO;
	size_t add = json_array_size(repos);
	if (!rc && add) {
		struct regfs_repo_tags *nv = realloc(a->v, (a->n + add) * sizeof *nv);
		if (!nv)
			rc = -ENOMEM;
		else
			a->v = nv;
	}
	for (size_t i = 0; !rc && i < add; i++) {
		rc = parse_repo(json_array_get(repos, i), &a->v[a->n]);
		a->n++; /* counted even on failure so the caller's free sees it */
	}
	json_decref(j);
	if (rc == -EPROTO)
		regfs_errf(err, rc, "GET %s: the answer does not match docs/api-extensions.md "
			   "(bulk-tags)", url);
	else if (rc == -ENOMEM)
		regfs_errf(err, rc, "out of memory");
	return rc;
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
	struct tags_acc a = {0};
	int rc = get_pages(c, xasprintf("%s/v2/_regfs/tags?n=1000", c->url), "bulk tag list",
			   bulk_tags_page, &a, err);
	if (rc) {
		regfs_repo_tags_free(a.v, a.n);
		return rc;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

/* One entry of a repo-manifests answer into *t (zeroed): 0, -EPROTO when it
 * is not the documented shape, -ENOMEM. */
static int manifest_entry(json_t *m, struct regfs_tag_info *t)
{
	const char *dg = json_string_value(json_object_get(m, "digest"));
	if (!dg || !regfs_digest_valid(dg))
		return -EPROTO;
	struct dynbuf tags = DYNBUF_INIT(DYNBUF_NO_CAP);
	bool any = false; /* no tags at all: NULL, not "" */
	size_t k;
	json_t *tj;
	json_array_foreach(json_object_get(m, "tags"), k, tj) {
		const char *s = json_string_value(tj);
		if (!s)
			continue;
		if ((dynbuf_len(&tags) && dynbuf_addstr(&tags, ",")) || dynbuf_addstr(&tags, s)) {
			dynbuf_free(&tags);
			return -ENOMEM;
		}
		any = true;
	}
	int rc = tag_info_set(t, any ? dynbuf_ptr(&tags) : NULL, dg,
			      json_string_value(json_object_get(m, "pushed")));
	dynbuf_free(&tags);
	return rc;
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
	struct call k;
	struct regfs_tag_info *v = NULL;
	size_t nv = 0;
	json_t *j = NULL;
	int rc = call_get(c, &k, xasprintf("%s/v2/%s/_regfs/manifests", c->url, repo), repo,
			  &c->st_tag_lists, err);
	if (!rc && k.r.status != 200)
		rc = status_errf(c, &k.r, "GET", k.url, err, "manifests of repository %s", repo);
	if (rc)
		goto out;
	j = json_loadb(dynbuf_ptr(&k.r.body), dynbuf_len(&k.r.body), 0, NULL);
	json_t *ms = json_object_get(j, "manifests");
	size_t nm = json_array_size(ms);
	if (!json_is_array(ms))
		goto bad;
	v = nm ? calloc(nm, sizeof *v) : NULL;
	if (nm && !v) {
		rc = regfs_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nm && !rc; i++)
		rc = manifest_entry(json_array_get(ms, i), &v[nv++]);
	if (rc == -EPROTO)
		goto bad;
	if (rc)
		regfs_errf(err, rc, "out of memory");
	goto out;
bad:
	ST_INC(c, st_errors);
	rc = regfs_errf(err, -EPROTO,
			"GET %s: the answer does not match docs/api-extensions.md (repo-manifests)",
			k.url);
out:
	json_decref(j);
	call_free(&k);
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

/* ---- usage ---- */

/* A JSON number that is a byte count: integer, >= 0. */
static int u64_of(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EPROTO;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int usage_fields(json_t *j, struct regfs_usage *u)
{
	json_t *g = json_object_get(j, "garbage");
	json_t *repos = json_object_get(j, "repositories");
	if (!json_is_object(g) || (repos && !json_is_array(repos)))
		return -EPROTO;
	u->n_repos = json_array_size(repos);
	int rc = u64_of(json_object_get(j, "stored"), &u->stored);
	if (!rc)
		rc = u64_of(json_object_get(j, "referenced"), &u->referenced);
	if (!rc)
		rc = u64_of(json_object_get(g, "blobs"), &u->garbage_blobs);
	if (!rc)
		rc = u64_of(json_object_get(g, "manifests"), &u->garbage_manifests);
	if (!rc)
		rc = u64_of(json_object_get(g, "uploads"), &u->garbage_uploads);
	if (!rc)
		rc = u64_of(json_object_get(g, "total"), &u->garbage_total);
	return rc;
}

int usage_parse(const char *body, size_t len, struct regfs_usage *u)
{
	memset(u, 0, sizeof *u);
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	int rc = json_is_object(j) ? usage_fields(j, u) : -EPROTO;
	json_decref(j);
	return rc;
}

int regfs_client_usage(struct regfs_client *c, struct regfs_usage *out, struct regfs_err *err)
{
	memset(out, 0, sizeof *out);
	if (!regfs_client_has_ext(c, "usage"))
		return regfs_errf(err, -ENOTSUP,
				  "registry %s does not offer the usage extension", c->url);
	/* registry-wide figures: the catalog's scope, as the bulk listings.
	 * n=0: the totals alone. They are in every page, whole (not a page's
	 * share), so no repository list is read: the answer's size does not
	 * grow with the registry, and no total is mixed from two moments. */
	struct call k;
	int rc = call_init(&k, xasprintf("%s/v2/_regfs/usage?n=0", c->url),
			   strdup("registry:catalog:*"), SINK_MEM, err);
	if (!rc) {
		struct rq q = {.method = "GET", .url = k.url, .scope = k.scope, .idempotent = true};
		rc = client_do(c, &q, &k.r, err);
	}
	if (!rc && k.r.status != 200)
		rc = status_errf(c, &k.r, "GET", k.url, err, "storage usage");
	if (!rc) {
		rc = usage_parse(dynbuf_ptr(&k.r.body), dynbuf_len(&k.r.body), out);
		if (rc) {
			ST_INC(c, st_errors);
			regfs_errf(err, rc, "GET %s: the answer does not match "
				   "docs/api-extensions.md (usage)", k.url);
		}
	}
	call_free(&k);
	return rc;
}

/* ---- bulk-manifests ---- */

/* Parses one repository object into the caller's scratch arrays (pointers
 * into j, valid while the page's JSON lives). */
static int bulk_repo(json_t *jr, struct regfs_repo_bulk *rb, struct regfs_tag_info *tv,
		     struct regfs_manifest_info *mv)
{
	json_t *tags = json_object_get(jr, "tags"), *ms = json_object_get(jr, "manifests");
	rb->name = json_string_value(json_object_get(jr, "name"));
	if (!rb->name || !regfs_name_valid(rb->name) || (tags && !json_is_array(tags)) ||
	    (ms && !json_is_array(ms)))
		return -EPROTO;
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t) {
		const char *tag, *dg;
		if (tag_entry(t, &tag, &dg))
			return -EPROTO;
		struct regfs_tag_info *ti = &tv[rb->n_tags++];
		ti->tag = (char *)tag; /* the client's, read-only for cb (see client.h) */
		snprintf(ti->digest, sizeof ti->digest, "%s", dg);
		ti->pushed = rfc3339(json_string_value(json_object_get(t, "pushed")));
	}
	json_array_foreach(ms, i, t) {
		const char *dg = json_string_value(json_object_get(t, "digest"));
		json_t *content = json_object_get(t, "content");
		if (!dg || !regfs_digest_valid(dg) || (content && !json_is_string(content)))
			return -EPROTO;
		struct regfs_manifest_info *mi = &mv[rb->n_manifests++];
		snprintf(mi->digest, sizeof mi->digest, "%s", dg);
		mi->media_type = json_string_value(json_object_get(t, "mediaType"));
		mi->pushed = rfc3339(json_string_value(json_object_get(t, "pushed")));
		mi->content = json_string_value(content);
		mi->len = content ? json_string_length(content) : 0;
	}
	rb->tags = tv;
	rb->manifests = mv;
	return 0;
}

/* Verifies every content of rb against its digest: the bytes become visible
 * (to cb, and through it to the mount) only after this. */
static int bulk_verify(const char *url, const struct regfs_repo_bulk *rb, struct regfs_err *err)
{
	for (size_t i = 0; i < rb->n_manifests; i++) {
		const struct regfs_manifest_info *mi = &rb->manifests[i];
		if (!mi->content)
			continue;
		enum regfs_digest_alg alg;
		if (regfs_digest_parse(mi->digest, &alg, NULL, NULL))
			return regfs_errf(err, -EPROTO, "GET %s: %s is not a digest", url, mi->digest);
		char got[REGFS_DIGEST_MAX];
		regfs_digest_buf(alg, mi->content, mi->len, got);
		if (strcmp(got, mi->digest) != 0)
			return regfs_errf(err, -EBADMSG,
					  "GET %s: manifest %s of %s arrived with content that hashes "
					  "to %s: refused (altered between the registry and here, e.g. "
					  "by a proxy, or a registry bug); fetch it by digest to see "
					  "what the registry itself serves", url, mi->digest, rb->name,
					  got);
	}
	return 0;
}

int bulk_manifests_page(const char *url, const char *body, size_t len, regfs_repo_bulk_cb cb,
			void *arg, struct regfs_err *err)
{
	/* JSON_ALLOW_NUL: the bytes of a manifest may in principle hold \u0000;
	 * json_string_length then gives the true length. */
	json_t *j = json_loadb(body ? body : "", len, JSON_ALLOW_NUL, NULL);
	json_t *repos = json_object_get(j, "repositories");
	int rc = 0;
	struct regfs_tag_info *tv = NULL;
	struct regfs_manifest_info *mv = NULL;
	if (!json_is_array(repos)) {
		rc = -EPROTO;
		goto out;
	}
	size_t i;
	json_t *jr;
	json_array_foreach(repos, i, jr) {
		size_t nt = json_array_size(json_object_get(jr, "tags"));
		size_t nm = json_array_size(json_object_get(jr, "manifests"));
		free(tv);
		free(mv);
		tv = calloc(nt ? nt : 1, sizeof *tv);
		mv = calloc(nm ? nm : 1, sizeof *mv);
		if (!tv || !mv) {
			rc = regfs_errf(err, -ENOMEM, "out of memory");
			goto out;
		}
		struct regfs_repo_bulk rb = {0};
		rc = bulk_repo(jr, &rb, tv, mv);
		if (rc)
			goto out;
		rc = bulk_verify(url, &rb, err);
		if (rc)
			goto out;
		rc = cb(&rb, arg);
		if (rc) {
			if (!err || !err->msg[0])
				regfs_errf(err, rc, "bulk-manifests: stopped at repository %s", rb.name);
			goto out;
		}
	}
out:
	if (rc == -EPROTO && (!err || !err->msg[0]))
		regfs_errf(err, rc, "GET %s: the answer does not match docs/api-extensions.md "
			   "(bulk-manifests)", url);
	free(tv);
	free(mv);
	json_decref(j);
	return rc;
}

struct bulk_cb {
	regfs_repo_bulk_cb cb;
	void *arg;
};

static int bulk_manifests_page_cb(const char *url, const char *body, size_t len, void *arg,
				  struct regfs_err *err)
{
	struct bulk_cb *b = arg;
	return bulk_manifests_page(url, body, len, b->cb, b->arg, err);
}

int regfs_client_bulk_manifests(struct regfs_client *c, regfs_repo_bulk_cb cb, void *arg,
				struct regfs_err *err)
{
	if (!regfs_client_has_ext(c, "bulk-manifests"))
		return regfs_errf(err, -ENOTSUP,
				  "registry %s does not offer the bulk-manifests extension: list "
				  "tags and fetch manifests per repository instead", c->url);
	/* n=1000: the server's maximum; it also ends a page at a few MB, so
	 * this asks for "as much as one page may hold". */
	struct bulk_cb b = {cb, arg};
	return get_pages(c, xasprintf("%s/v2/_regfs/manifests?n=1000", c->url),
			 "bulk manifest list", bulk_manifests_page_cb, &b, err);
}
