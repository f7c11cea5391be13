/* bulk.c — the bulk-manifests extension (docs/api-extensions.md):
 * GET /v2/_regfs/manifests?n=<repos>&last=<repo>.
 *
 * One page gives, for each repository in it, what bulk-tags gives (every tag
 * with its digest and push time) plus every manifest revision it holds, with
 * the manifest's exact bytes as a JSON string. A client that wants the whole
 * registry (the mount's du walk) then needs a handful of requests instead of
 * one per repository and one per manifest.
 *
 * Paging is by repository name, like /v2/_catalog and /v2/_regfs/tags; the
 * page also stops early (with a Link to the rest) once its body passes
 * BULK_PAGE_BYTES or took BULK_PAGE_US to build, so one page stays a few MB
 * and a couple of seconds whatever n asks for. Manifest
 * bytes come through manifest_load (the manifest cache, verified against the
 * digest on load), never read here directly. */
#include "registry.h"

#include <regfs/layout.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BULK_DEFAULT_N 100
#define BULK_MAX_N 1000
#define BULK_PAGE_BYTES (4u * 1024 * 1024) /* soft: a page ends after the repo that passes it */
/* Also soft: a page ends after the repository that takes it past this much
 * work. Manifests are read one at a time; on slow storage (S3: a request
 * each) a 4 MB page could otherwise outlast the client's request timeout. */
#define BULK_PAGE_US (2u * 1000 * 1000)

/* Is [s, s+n) well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF)?
 * Hand-written: a few lines, and jansson offers no validator for raw bytes. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		unsigned cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1; cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2; cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3; cp = c & 0x07;
		} else {
			return false;
		}
		if (k >= n - i)
			return false; /* truncated sequence */
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Appends s[0..n) as a JSON string (the caller checked it is UTF-8).
 * Unlike sb_json_str it takes a length: the bytes are not NUL-terminated
 * and may, in principle, contain NUL (escaped as \u0000). */
static void sb_json_bytes(struct sbuf *b, const char *s, size_t n)
{
	sb_add(b, "\"", 1);
	size_t run = 0; /* start of the current run of bytes that need no escape */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		sb_add(b, s + run, i - run);
		run = i + 1;
		char esc[8];
		switch (ch) {
		case '"': sb_add(b, "\\\"", 2); break;
		case '\\': sb_add(b, "\\\\", 2); break;
		case '\n': sb_add(b, "\\n", 2); break;
		case '\r': sb_add(b, "\\r", 2); break;
		case '\t': sb_add(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			sb_add(b, esc, 6);
		}
	}
	sb_add(b, s + run, n - run);
	sb_add(b, "\"", 1);
}

/* {"name":…,"tags":[…],"manifests":[…]} for one repository. */
static void put_repo(struct registry *r, struct sbuf *b, const char *name)
{
	sb_puts(b, "{\"name\":");
	sb_json_str(b, name);
	sb_puts(b, ",\"tags\":[");
	struct strlist tags = {0};
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
		sb_puts(b, first ? "{\"tag\":" : ",{\"tag\":");
		first = false;
		sb_json_str(b, tags.v[j]);
		sb_printf(b, ",\"digest\":\"%s\",\"pushed\":\"%s\"}", d, ts);
	}
	strlist_free(&tags);

	sb_puts(b, "],\"manifests\":[");
	struct strlist revs = {0};
	repo_list_revisions(r, name, &revs, NULL); /* a repo without revisions: [] */
	first = true;
	for (size_t i = 0; i < revs.n; i++) {
		char ts[32];
		struct regfs_stat_info st = {0};
		char *link = regfs_layout_revision_link(name, revs.v[i]);
		if (!link || !repo_exists(r, link, &st)) {
			free(link);
			continue; /* deleted since the listing */
		}
		free(link);
		rfc3339(st.mtime, ts);
		sb_printf(b, "%s{\"digest\":\"%s\"", first ? "" : ",", revs.v[i]);
		first = false;
		struct mc_entry *m = NULL;
		struct regfs_err e = {0};
		if (manifest_load(r, revs.v[i], &m, &e) == 0) {
			sb_puts(b, ",\"mediaType\":");
			sb_json_str(b, m->media_type);
		} else {
			/* Missing or corrupt blob: listed without content, so the client's
			 * GET by digest gets (and reports) the registry's own error. */
			m = NULL;
		}
		sb_printf(b, ",\"pushed\":\"%s\"", ts);
		if (m && utf8_valid((const unsigned char *)m->data, m->len)) {
			sb_puts(b, ",\"content\":");
			sb_json_bytes(b, m->data, m->len);
		}
		if (m)
			mcache_put(r->mc, m);
		sb_puts(b, "}");
	}
	strlist_free(&revs);
	sb_puts(b, "]}");
}

enum MHD_Result h_bulk_manifests(HANDLER_ARGS)
{
	(void)data; (void)size;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return ERR(405, "UNSUPPORTED", "method %s not allowed on %s", method, url);
	int n;
	const char *last;
	if (page_params(c, &n, &last))
		return ERR(400, "PAGINATION_NUMBER_INVALID",
			   "invalid n: expected a non-negative integer");
	if (n < 0)
		n = BULK_DEFAULT_N;
	if (n > BULK_MAX_N)
		n = BULK_MAX_N;
	struct strlist repos;
	struct regfs_err e = {0};
	size_t from, to;
	if (repos_page(r, n, last, &repos, &from, &to, &e))
		return STORAGE_ERR(&e);
	struct sbuf b = {0};
	sb_puts(&b, "{\"repositories\":[");
	for (size_t i = from; i < to && !b.oom; i++) {
		if (i > from)
			sb_add(&b, ",", 1);
		put_repo(r, &b, repos.v[i]);
		if (b.len >= BULK_PAGE_BYTES || now_us() - q->t0_us >= BULK_PAGE_US)
			to = i + 1; /* the rest through the Link */
	}
	sb_puts(&b, "]}\n");
	if (b.oom) {
		sb_free(&b);
		strlist_free(&repos);
		return ERR(503, "UNAVAILABLE", "out of memory building the bulk-manifests page; "
			   "ask for a smaller n");
	}
	bool head = strcmp(method, "HEAD") == 0;
	struct MHD_Response *resp =
		head ? MHD_create_response_from_callback(b.len, 4096, no_body_cb, NULL, NULL)
		     : MHD_create_response_from_buffer(b.len, b.s, MHD_RESPMEM_MUST_FREE);
	if (resp && !head)
		b.s = NULL; /* the response owns it now (a page can be MBs: no copy) */
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/json; charset=utf-8");
		if (n > 0 && to > from && to < repos.n) {
			char link[ROUTE_NAME_MAX + 96];
			snprintf(link, sizeof link, "</v2/_regfs/manifests?last=%s&n=%d>; rel=\"next\"",
				 repos.v[to - 1], n);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, link);
		}
	}
	size_t len = b.len;
	sb_free(&b);
	strlist_free(&repos);
	return respond(r, c, method, url, q->t0_us, 200, resp, head ? 0 : len);
}
