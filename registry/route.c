/* route.c — maps a request path to an endpoint of the distribution API.
 *
 * Repository names contain '/' and may contain components such as "blobs" or
 * "manifests", so the path is read from its end: the endpoint is decided by
 * the last one to three components (references and uuids never contain '/'),
 * and everything before them is the name. This is the same resolution as
 * registry:2's anchored regular expressions, without regex cost per request. */
#include "registry.h"

#include <regfs/names.h>

#include <string.h>

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
	if (strcmp(p, "_catalog") == 0 || strcmp(p, "_catalog/") == 0) {
		rt->kind = R_CATALOG;
		return;
	}
	if (strcmp(p, "_regfs/tags") == 0 || strcmp(p, "_regfs/tags/") == 0) {
		rt->kind = R_BULK_TAGS;
		return;
	}
	/* Before the "<name>/_regfs/manifests" rule: this one has no name. */
	if (strcmp(p, "_regfs/manifests") == 0 || strcmp(p, "_regfs/manifests/") == 0) {
		rt->kind = R_BULK_MANIFESTS;
		return;
	}
	if (ends_with(p, n, "/tags/list") || ends_with(p, n, "/tags/list/")) {
		size_t k = n - (p[n - 1] == '/' ? 11 : 10);
		rt->kind = R_TAGS;
		set_name(rt, p, k);
		return;
	}
	if (ends_with(p, n, "/_regfs/manifests")) {
		rt->kind = R_REPO_MANIFESTS;
		set_name(rt, p, n - 17);
		return;
	}
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
