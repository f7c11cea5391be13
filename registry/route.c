/* route.c — the route table (every endpoint: path shape, methods, the access
 * each method needs, handler) and the parser that maps a request path to an
 * endpoint of the distribution API.
 *
 * Repository names contain '/' and may contain components such as "blobs" or
 * "manifests", so the path is read from its end: the endpoint is decided by
 * the last one to three components (references and uuids never contain '/'),
 * and everything before them is the name. This is the same resolution as
 * registry:2's anchored regular expressions, without regex cost per request. */
#include "route.h"

#include "handlers.h"
#include "layerindex.h"
#include "usage.h"

#include <regfs/names.h>

#include <string.h>

#define M(x) (1u << HTTP_##x)
#define READ_METHODS (M(GET) | M(HEAD))
#define PULL_ACCESS {[HTTP_GET] = ACCESS_PULL, [HTTP_HEAD] = ACCESS_PULL}

/* Indexed by enum route_kind. */
static const struct route_entry routes[R__COUNT] = {
	[R_NOT_FOUND] = {R_NOT_FOUND, "(anything else)", NULL, false,
			 M(GET) | M(HEAD) | M(PUT) | M(POST) | M(PATCH) | M(DELETE) | M(OTHER),
			 {0}, h_not_found},
	[R_BASE] = {R_BASE, "/v2/", "/v2/", false, READ_METHODS, {0}, h_base},
	[R_CATALOG] = {R_CATALOG, "/v2/_catalog", NULL, false, READ_METHODS,
		       {[HTTP_GET] = ACCESS_CATALOG, [HTTP_HEAD] = ACCESS_CATALOG}, h_catalog},
	[R_BULK_TAGS] = {R_BULK_TAGS, "/v2/_regfs/tags", NULL, false, READ_METHODS,
			 {[HTTP_GET] = ACCESS_CATALOG, [HTTP_HEAD] = ACCESS_CATALOG}, h_bulk_tags},
	[R_TAGS] = {R_TAGS, "/v2/<name>/tags/list", NULL, true, READ_METHODS, PULL_ACCESS, h_tags},
	[R_MANIFEST] = {R_MANIFEST, "/v2/<name>/manifests/<reference>", "manifests", true,
			READ_METHODS | M(PUT) | M(DELETE),
			{[HTTP_GET] = ACCESS_PULL, [HTTP_HEAD] = ACCESS_PULL,
			 [HTTP_PUT] = ACCESS_PUSH, [HTTP_DELETE] = ACCESS_DELETE},
			h_manifest},
	[R_BLOB] = {R_BLOB, "/v2/<name>/blobs/<digest>", "blobs", true, READ_METHODS | M(DELETE),
		    {[HTTP_GET] = ACCESS_PULL, [HTTP_HEAD] = ACCESS_PULL,
		     [HTTP_DELETE] = ACCESS_DELETE},
		    h_blob},
	[R_UPLOAD_START] = {R_UPLOAD_START, "/v2/<name>/blobs/uploads/", NULL, true, M(POST),
			    {[HTTP_POST] = ACCESS_PUSH}, h_upload_start},
	/* reading an upload's progress or cancelling it is part of pushing */
	[R_UPLOAD] = {R_UPLOAD, "/v2/<name>/blobs/uploads/<uuid>", "uploads", true,
		      READ_METHODS | M(PATCH) | M(PUT) | M(DELETE),
		      {[HTTP_GET] = ACCESS_PUSH, [HTTP_HEAD] = ACCESS_PUSH,
		       [HTTP_PATCH] = ACCESS_PUSH, [HTTP_PUT] = ACCESS_PUSH,
		       [HTTP_DELETE] = ACCESS_PUSH},
		      h_upload},
	[R_REFERRERS] = {R_REFERRERS, "/v2/<name>/referrers/<digest>", NULL, true, READ_METHODS,
			 PULL_ACCESS, h_referrers},
	[R_REPO_MANIFESTS] = {R_REPO_MANIFESTS, "/v2/<name>/_regfs/manifests", NULL, true,
			      READ_METHODS, PULL_ACCESS, h_repo_manifests},
	[R_BULK_MANIFESTS] = {R_BULK_MANIFESTS, "/v2/_regfs/manifests", NULL, false, READ_METHODS,
			      {[HTTP_GET] = ACCESS_CATALOG, [HTTP_HEAD] = ACCESS_CATALOG},
			      h_bulk_manifests},
	[R_LAYER_INDEX] = {R_LAYER_INDEX, "/v2/<name>/_regfs/layerindex/<digest>", NULL, true,
			   READ_METHODS, PULL_ACCESS, h_layer_index},
	[R_USAGE] = {R_USAGE, "/v2/_regfs/usage", NULL, false, READ_METHODS,
		     {[HTTP_GET] = ACCESS_CATALOG, [HTTP_HEAD] = ACCESS_CATALOG}, h_usage},
};

const struct route_entry *route_entry_of(enum route_kind kind)
{
	return &routes[(unsigned)kind < R__COUNT ? kind : R_NOT_FOUND];
}

bool route_allows(const struct route_entry *e, enum http_method m)
{
	return (e->methods & (1u << m)) != 0;
}

enum http_method http_method_parse(const char *m)
{
	switch (m[0]) {
	case 'G': return strcmp(m, "GET") ? HTTP_OTHER : HTTP_GET;
	case 'H': return strcmp(m, "HEAD") ? HTTP_OTHER : HTTP_HEAD;
	case 'D': return strcmp(m, "DELETE") ? HTTP_OTHER : HTTP_DELETE;
	case 'P':
		if (!strcmp(m, "PUT"))
			return HTTP_PUT;
		if (!strcmp(m, "POST"))
			return HTTP_POST;
		return strcmp(m, "PATCH") ? HTTP_OTHER : HTTP_PATCH;
	default: return HTTP_OTHER;
	}
}

static bool ends_with(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);
	return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* Copies s[0..n) into dst (cap bytes); false if it does not fit. */
static bool copy(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap) {
		if (cap) {
			memcpy(dst, s, cap - 1);
			dst[cap - 1] = '\0';
		}
		return false;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

static void set_name(struct route *rt, const char *s, size_t n)
{
	rt->name_ok = copy(rt->name, sizeof rt->name, s, n) && regfs_name_valid(rt->name);
}

static void set_ref(struct route *rt, const char *s, size_t n)
{
	rt->ref_truncated = !copy(rt->ref, sizeof rt->ref, s, n);
}

/* The endpoints with a fixed path after "/v2/" (p), or whose name is all
 * that precedes a fixed suffix. true when p is one of them. */
static bool parse_fixed(const char *p, size_t n, struct route *rt)
{
	static const struct { const char *path; enum route_kind kind; } fixed[] = {
		{"_catalog", R_CATALOG},
		{"_regfs/tags", R_BULK_TAGS},
		/* before the "<name>/_regfs/manifests" rule: this one has no name */
		{"_regfs/manifests", R_BULK_MANIFESTS},
		{"_regfs/usage", R_USAGE},
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		size_t k = strlen(fixed[i].path);
		if (!strncmp(p, fixed[i].path, k) && (p[k] == '\0' || !strcmp(p + k, "/"))) {
			rt->kind = fixed[i].kind;
			return true;
		}
	}
	if (ends_with(p, n, "/tags/list") || ends_with(p, n, "/tags/list/")) {
		rt->kind = R_TAGS;
		set_name(rt, p, n - (p[n - 1] == '/' ? 11 : 10));
		return true;
	}
	if (ends_with(p, n, "/_regfs/manifests")) {
		rt->kind = R_REPO_MANIFESTS;
		set_name(rt, p, n - 17);
		return true;
	}
	return false;
}

void route_parse(const char *path, struct route *rt)
{
	memset(rt, 0, sizeof *rt);
	rt->kind = R_NOT_FOUND;
	if (strncmp(path, "/v2", 3) != 0)
		return;
	const char *p = path + 3;
	if (*p == '\0' || strcmp(p, "/") == 0) {
		rt->kind = R_BASE;
		return;
	}
	if (*p != '/')
		return;
	p++; /* p: "<rest>" after "/v2/" */
	size_t n = strlen(p);
	if (parse_fixed(p, n, rt))
		return;
	/* last component L = p[l0..n), previous P = p[p0..l0-1) */
	const char *slash = memrchr(p, '/', n);
	if (!slash)
		return;
	size_t l0 = (size_t)(slash - p) + 1;
	const char *prev = l0 >= 2 ? memrchr(p, '/', l0 - 1) : NULL;
	size_t p0 = prev ? (size_t)(prev - p) + 1 : 0;
	size_t plen = l0 - 1 - p0;
	const char *P = p + p0;
	const char *L = p + l0;
	size_t llen = n - l0;

#define IS(x, len, lit) ((len) == sizeof(lit) - 1 && memcmp((x), lit, sizeof(lit) - 1) == 0)
	if (IS(P, plen, "uploads") && p0 >= 7 && memcmp(p + p0 - 7, "/blobs/", 7) == 0) {
		/* <name>/blobs/uploads/<uuid or empty> */
		rt->kind = llen ? R_UPLOAD : R_UPLOAD_START;
		set_name(rt, p, p0 - 7);
		set_ref(rt, L, llen);
		return;
	}
	if (IS(P, plen, "layerindex") && p0 >= 8 && memcmp(p + p0 - 8, "/_regfs/", 8) == 0) {
		/* <name>/_regfs/layerindex/<digest> */
		rt->kind = llen ? R_LAYER_INDEX : R_NOT_FOUND;
		set_name(rt, p, p0 - 8);
		set_ref(rt, L, llen);
		return;
	}
	if (IS(P, plen, "blobs") && IS(L, llen, "uploads")) {
		rt->kind = R_UPLOAD_START;
		set_name(rt, p, p0 ? p0 - 1 : 0);
		return;
	}
	if (p0 == 0)
		return; /* need a name before the endpoint */
	if (IS(P, plen, "manifests"))
		rt->kind = R_MANIFEST;
	else if (IS(P, plen, "blobs"))
		rt->kind = R_BLOB;
	else if (IS(P, plen, "referrers"))
		rt->kind = R_REFERRERS;
	else
		return;
#undef IS
	if (llen == 0) {
		rt->kind = R_NOT_FOUND;
		return;
	}
	set_name(rt, p, p0 - 1);
	set_ref(rt, L, llen);
}
