/* lists.c — the listing endpoints: tags list, _catalog, referrers, and the
 * regfs extensions (bulk tags, repository manifests; docs/api-extensions.md).
 * All lists are sorted lexically (strcmp) and paginated with n/last and a
 * `Link: <…>; rel="next"` header while more entries remain. */
#include "lists.h"

#include "handlers.h"
#include "manifest_bytes.h"
#include "proxy_internal.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"

#include <regfs/layout.h>
#include <regfs/names.h>
#include <regfs/oci.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATALOG_DEFAULT_N 100   /* registry:2's default page for _catalog */
#define PAGE_MAX 100000

/* n: -1 when absent. Returns -EINVAL for a malformed n. */
int page_params(struct MHD_Connection *c, int *n, const char **last)
{
	const char *ns = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
	*last = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "last");
	*n = -1;
	if (ns && *ns) {
		char *e;
		long v = strtol(ns, &e, 10);
		if (*e || v < 0)
			return -EINVAL;
		*n = v > PAGE_MAX ? PAGE_MAX : (int)v;
	}
	return 0;
}

void page_slice(const struct strvec *l, int n, const char *last, size_t *from, size_t *to)
{
	size_t i = 0;
	if (last && *last) {
		/* first entry strictly after `last` (binary search; l is sorted) */
		size_t lo = 0, hi = l->n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (strcmp(l->v[mid], last) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	*from = i;
	*to = (n < 0 || i + (size_t)n > l->n) ? l->n : i + (size_t)n;
}

int repos_page(struct registry *r, int n, const char *last, struct strvec *repos,
	       size_t *from, size_t *to, struct regfs_err *err)
{
	memset(repos, 0, sizeof *repos);
	if (repo_list_all(r, repos, err)) {
		strvec_clear(repos);
		return -EIO;
	}
	page_slice(repos, n, last, from, to);
	return 0;
}

/* Adds Link: <base?last=…&n=…>; rel="next" when entries remain after `to`. */
static void add_link(struct MHD_Response *resp, const char *base, const struct strvec *l,
		     size_t to, int n)
{
	if (!resp || n <= 0 || to >= l->n || to == 0)
		return;
	char link[1024];
	snprintf(link, sizeof link, "<%s?last=%s&n=%d>; rel=\"next\"", base, l->v[to - 1], n);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, link);
}

enum MHD_Result json_answer(struct registry *r, struct request *q, struct jbuf *b,
				   const char *link_base, const struct strvec *l, size_t to,
				   int n, const char *ctype, const char *extra_name,
				   const char *extra_value)
{
	if (jb_error(b)) {
		jb_free(b);
		return MHD_NO;
	}
	bool head = request_is_head(q);
	size_t len = jb_len(b);
	struct MHD_Response *resp;
	if (head) {
		resp = response_head(len);
	} else {
		/* the response owns the bytes (a page can be MBs: no copy) */
		char *body = jb_take(b, NULL);
		resp = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
		if (!resp)
			free(body);
	}
	jb_free(b);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					ctype ? ctype : "application/json; charset=utf-8");
		if (l)
			add_link(resp, link_base, l, to, n);
		if (extra_name)
			MHD_add_response_header(resp, extra_name, extra_value);
	}
	return respond(r, q, 200, resp, head ? 0 : len);
}

bool page_or_400(struct registry *r, struct request *q, int *n, const char **last,
			enum MHD_Result *ret)
{
	if (page_params(q->conn, n, last) == 0)
		return true;
	*ret = respond_errorf(r, q, 400, "PAGINATION_NUMBER_INVALID",
			      "invalid n: expected a non-negative integer");
	return false;
}

void json_repo_tags(struct registry *r, struct jbuf *b, const char *name)
{
	jb_puts(b, "{\"name\":");
	jb_json_str(b, name);
	jb_puts(b, ",\"tags\":[");
	struct strvec tags = {0};
	repo_list_tags(r, name, &tags, NULL);
	bool first = true;
	for (size_t j = 0; j < tags.n; j++) {
		char d[REGFS_DIGEST_MAX], ts[32];
		int64_t mt = 0;
		char *cur = regfs_layout_tag_current(name, tags.v[j]);
		int rc = cur ? repo_read_link(r, cur, d, &mt, NULL) : -ENOMEM;
		free(cur);
		if (rc)
			continue; /* a tag being deleted right now */
		rfc3339(mt, ts);
		jb_puts(b, first ? "{\"tag\":" : ",{\"tag\":");
		first = false;
		jb_json_str(b, tags.v[j]);
		jb_printf(b, ",\"digest\":\"%s\",\"pushed\":\"%s\"}", d, ts);
	}
	strvec_clear(&tags);
	jb_puts(b, "]");
}

enum MHD_Result h_tags(struct registry *r, struct request *q)
{
	int n;
	const char *last;
	enum MHD_Result ret;
	if (!page_or_400(r, q, &n, &last, &ret))
		return ret;
	struct strvec tags = {0};
	struct regfs_err e = {0};
	/* a cached repository lists its upstream's tags, the stored ones when
	 * the upstream cannot be asked */
	int rc = q->proxy && proxy_list_tags(r, q, &tags) == 0
			 ? 0
			 : repo_list_tags(r, q->rt.name, &tags, &e);
	if (rc == -ENOENT) {
		strvec_clear(&tags);
		if (!repo_known(r, q->rt.name))
			return respond_name_unknown(r, q);
		rc = 0;
	}
	if (rc) {
		strvec_clear(&tags);
		return respond_storage_error(r, q, &e);
	}
	size_t from, to;
	page_slice(&tags, n, last, &from, &to);
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{\"name\":");
	jb_json_str(&b, q->rt.name);
	jb_puts(&b, ",\"tags\":[");
	for (size_t i = from; i < to; i++) {
		if (i > from)
			jb_add(&b, ",", 1);
		jb_json_str(&b, tags.v[i]);
	}
	jb_puts(&b, "]}\n");
	char base[ROUTE_NAME_MAX + 32];
	snprintf(base, sizeof base, "/v2/%s/tags/list", q->rt.name);
	ret = json_answer(r, q, &b, base, &tags, to, n, NULL, NULL, NULL);
	strvec_clear(&tags);
	return ret;
}

enum MHD_Result answer_repos(struct registry *r, struct request *q,
			     const struct repos_listing *l)
{
	int n;
	const char *last;
	enum MHD_Result ret;
	if (!page_or_400(r, q, &n, &last, &ret))
		return ret;
	if (n < 0)
		n = l->default_n;
	if (l->max_n && n > l->max_n)
		n = l->max_n;
	struct strvec repos;
	struct regfs_err e = {0};
	size_t from, to;
	if (repos_page(r, n, last, &repos, &from, &to, &e))
		return respond_storage_error(r, q, &e);
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{\"repositories\":[");
	for (size_t i = from; i < to && !jb_error(&b); i++) {
		if (i > from)
			jb_add(&b, ",", 1);
		l->put(r, &b, repos.v[i]);
		if ((l->page_bytes && jb_len(&b) >= l->page_bytes) ||
		    (l->page_us && now_us() - q->t0_us >= l->page_us))
			to = i + 1; /* the rest through the Link */
	}
	jb_puts(&b, "]}\n");
	if (jb_error(&b) && l->oom_msg) {
		jb_free(&b);
		strvec_clear(&repos);
		return respond_error(r, q, 503, "UNAVAILABLE", l->oom_msg, NULL);
	}
	ret = json_answer(r, q, &b, l->link_base, &repos, to, n, NULL, NULL, NULL);
	strvec_clear(&repos);
	return ret;
}

static void put_name(struct registry *r, struct jbuf *b, const char *name)
{
	(void)r;
	jb_json_str(b, name);
}

enum MHD_Result h_catalog(struct registry *r, struct request *q)
{
	static const struct repos_listing catalog = {
		.default_n = CATALOG_DEFAULT_N, .link_base = "/v2/_catalog", .put = put_name,
	};
	return answer_repos(r, q, &catalog);
}

static void put_tags(struct registry *r, struct jbuf *b, const char *name)
{
	json_repo_tags(r, b, name);
	jb_puts(b, "}");
}

enum MHD_Result h_bulk_tags(struct registry *r, struct request *q)
{
	static const struct repos_listing bulk_tags = {
		.default_n = -1, .link_base = "/v2/_regfs/tags", .put = put_tags,
	};
	return answer_repos(r, q, &bulk_tags);
}

enum MHD_Result h_repo_manifests(struct registry *r, struct request *q)
{
	if (!repo_known(r, q->rt.name))
		return respond_name_unknown(r, q);
	struct strvec revs = {0}, tags = {0};
	struct regfs_err e = {0};
	if (repo_list_revisions(r, q->rt.name, &revs, &e)) {
		strvec_clear(&revs);
		return respond_storage_error(r, q, &e);
	}
	repo_list_tags(r, q->rt.name, &tags, NULL);
	/* tag -> digest, read once */
	char (*tagd)[REGFS_DIGEST_MAX] = calloc(tags.n ? tags.n : 1, REGFS_DIGEST_MAX);
	if (!tagd) {
		strvec_clear(&revs);
		strvec_clear(&tags);
		return MHD_NO;
	}
	for (size_t j = 0; j < tags.n; j++) {
		char *cur = regfs_layout_tag_current(q->rt.name, tags.v[j]);
		if (!cur || repo_read_link(r, cur, tagd[j], NULL, NULL) != 0)
			tagd[j][0] = '\0';
		free(cur);
	}
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{\"name\":");
	jb_json_str(&b, q->rt.name);
	jb_puts(&b, ",\"manifests\":[");
	bool any = false;
	for (size_t i = 0; i < revs.n; i++) {
		char ts[32];
		struct regfs_stat_info st = {0};
		char *link = regfs_layout_revision_link(q->rt.name, revs.v[i]);
		/* A revision directory without its link is a deleted manifest
		 * (GET by digest answers 404; bulk-manifests leaves it out too). */
		bool linked = link && repo_exists(r, link, &st);
		free(link);
		if (!linked)
			continue;
		rfc3339(st.mtime, ts);
		jb_printf(&b, "%s{\"digest\":\"%s\",\"pushed\":\"%s\",\"tags\":[", any ? "," : "",
			  revs.v[i], ts);
		any = true;
		bool first = true;
		for (size_t j = 0; j < tags.n; j++) {
			if (strcmp(tagd[j], revs.v[i]) != 0)
				continue;
			if (!first)
				jb_add(&b, ",", 1);
			first = false;
			jb_json_str(&b, tags.v[j]);
		}
		jb_puts(&b, "]}");
	}
	jb_puts(&b, "]}\n");
	free(tagd);
	strvec_clear(&revs);
	strvec_clear(&tags);
	return json_answer(r, q, &b, NULL, NULL, 0, 0, NULL, NULL, NULL);
}

/* GET /v2/<name>/referrers/<digest>: an OCI index of the repository's
 * manifests whose subject is <digest>, computed by scanning its revisions
 * (manifest bytes come from the cache, so repeated calls are cheap). */
enum MHD_Result h_referrers(struct registry *r, struct request *q)
{
	if (q->rt.ref_truncated || !regfs_digest_valid(q->rt.ref))
		return respond_errorf(r, q, 400, "DIGEST_INVALID", "invalid digest \"%.140s\"", q->rt.ref);
	const char *filter = request_query(q, "artifactType");
	if (filter && !*filter)
		filter = NULL;
	struct strvec revs = {0};
	struct regfs_err e = {0};
	if (repo_list_revisions(r, q->rt.name, &revs, &e)) {
		strvec_clear(&revs);
		return respond_storage_error(r, q, &e);
	}
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{\"schemaVersion\":2,\"mediaType\":\"" REGFS_MT_OCI_INDEX "\",\"manifests\":[");
	bool first = true;
	for (size_t i = 0; i < revs.n; i++) {
		struct manifest_entry *m = NULL;
		if (manifest_load(r, revs.v[i], &m, NULL) != 0)
			continue;
		if (strcmp(m->subject, q->rt.ref) == 0 &&
		    (!filter || (m->artifact_type && !strcmp(filter, m->artifact_type)))) {
			jb_puts(&b, first ? "{" : ",{");
			first = false;
			jb_puts(&b, "\"mediaType\":");
			jb_json_str(&b, m->media_type);
			jb_printf(&b, ",\"digest\":\"%s\",\"size\":%zu", revs.v[i], m->len);
			if (m->artifact_type) {
				jb_puts(&b, ",\"artifactType\":");
				jb_json_str(&b, m->artifact_type);
			}
			if (m->annotations) {
				jb_puts(&b, ",\"annotations\":");
				jb_puts(&b, m->annotations);
			}
			jb_puts(&b, "}");
		}
		manifest_bytes_release(r->mb, m);
	}
	jb_puts(&b, "]}\n");
	strvec_clear(&revs);
	return json_answer(r, q, &b, NULL, NULL, 0, 0, REGFS_MT_OCI_INDEX,
			   filter ? "OCI-Filters-Applied" : NULL, filter ? "artifactType" : NULL);
}
