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
#include "handlers.h"
#include "jsonbuf.h"
#include "lists.h"
#include "manifest_bytes.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"

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

/* {"name":…,"tags":[…],"manifests":[…]} for one repository. */
static void put_repo(struct registry *r, struct jbuf *b, const char *name)
{
	json_repo_tags(r, b, name);
	jb_puts(b, ",\"manifests\":[");
	bool first = true;
	struct strvec revs = {0};
	repo_list_revisions(r, name, &revs, NULL); /* a repo without revisions: [] */
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
		jb_printf(b, "%s{\"digest\":\"%s\"", first ? "" : ",", revs.v[i]);
		first = false;
		struct manifest_entry *m = NULL;
		struct regfs_err e = {0};
		if (manifest_load(r, revs.v[i], &m, &e) == 0) {
			jb_puts(b, ",\"mediaType\":");
			jb_json_str(b, m->media_type);
		} else {
			/* Missing or corrupt blob: listed without content, so the client's
			 * GET by digest gets (and reports) the registry's own error. */
			m = NULL;
		}
		jb_printf(b, ",\"pushed\":\"%s\"", ts);
		if (m && utf8_valid((const unsigned char *)m->data, m->len)) {
			jb_puts(b, ",\"content\":");
			jb_json_bytes(b, m->data, m->len);
		}
		if (m)
			manifest_bytes_release(r->mb, m);
		jb_puts(b, "}");
	}
	strvec_clear(&revs);
	jb_puts(b, "]}");
}

enum MHD_Result h_bulk_manifests(struct registry *r, struct request *q)
{
	static const struct repos_listing bulk_manifests = {
		.default_n = BULK_DEFAULT_N, .max_n = BULK_MAX_N,
		.link_base = "/v2/_regfs/manifests", .put = put_repo,
		.page_bytes = BULK_PAGE_BYTES, .page_us = BULK_PAGE_US,
		.oom_msg = "out of memory building the bulk-manifests page; ask for a smaller n",
	};
	return answer_repos(r, q, &bulk_manifests);
}
