/* test_route.c — regfs-registry's route table and path router
 * (registry/route.c): names with '/' and with components that look like
 * endpoints, references, uploads; the methods and the access of every
 * (route, method) pair. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "route.h"

/* One path and what the router must make of it. name/ref NULL: not
 * checked; name_ok: 1 valid, 0 invalid, -1 not checked. */
struct path_case {
	const char *path;
	enum route_kind kind;
	const char *name, *ref;
	int name_ok;
};

static const struct path_case paths[] = {
	/* the base and the lists */
	{"/v2/", R_BASE, NULL, NULL, -1},
	{"/v2", R_BASE, NULL, NULL, -1},
	{"/v2/_catalog", R_CATALOG, NULL, NULL, -1},
	{"/v2/_regfs/tags", R_BULK_TAGS, NULL, NULL, -1},
	{"/v2/team/app/tags/list", R_TAGS, "team/app", NULL, 1},
	{"/v2/team/app/_regfs/manifests", R_REPO_MANIFESTS, "team/app", NULL, -1},
	/* bulk-manifests is not the repo-manifests route of a repository "" */
	{"/v2/_regfs/manifests", R_BULK_MANIFESTS, NULL, NULL, -1},
	{"/v2/_regfs/manifests/", R_BULK_MANIFESTS, NULL, NULL, -1},
	{"/v2/_regfs/usage", R_USAGE, NULL, NULL, -1},
	{"/v2//_regfs/manifests", R_REPO_MANIFESTS, NULL, NULL, 0},
	{"/v2/x/_regfs/manifests", R_REPO_MANIFESTS, "x", NULL, -1},
	/* layer indexes: the name is what precedes "/_regfs/layerindex/" */
	{"/v2/team/app/_regfs/layerindex/sha256:abc", R_LAYER_INDEX, "team/app", "sha256:abc", 1},
	{"/v2/x/_regfs/layerindex/sha256:abc", R_LAYER_INDEX, "x", "sha256:abc", 1},
	{"/v2/x/_regfs/layerindex/", R_NOT_FOUND, NULL, NULL, -1},
	{"/v2/_regfs/layerindex/sha256:abc", R_NOT_FOUND, NULL, NULL, -1}, /* no name */
	{"/v2/x/layerindex/sha256:abc", R_NOT_FOUND, NULL, NULL, -1},
	/* a repository named ".../_regfs" cannot exist ("_" starts no component) */
	{"/v2/a/_regfs/layerindex/manifests/v1", R_MANIFEST, "a/_regfs/layerindex", NULL, 0},
	{"/v3/x", R_NOT_FOUND, NULL, NULL, -1},
	{"/v2/x", R_NOT_FOUND, NULL, NULL, -1},
	{"/v2/manifests/latest", R_NOT_FOUND, NULL, NULL, -1}, /* no name */
	/* manifests and blobs */
	{"/v2/a/b/c/manifests/latest", R_MANIFEST, "a/b/c", "latest", -1},
	/* a repository whose name has a "blobs" or "manifests" component */
	{"/v2/x/blobs/manifests/v1", R_MANIFEST, "x/blobs", NULL, -1},
	{"/v2/x/manifests/blobs/sha256:abc", R_BLOB, "x/manifests", "sha256:abc", -1},
	{"/v2/x/referrers/sha256:abc", R_REFERRERS, "x", NULL, -1},
	{"/v2/x/manifests/", R_NOT_FOUND, NULL, NULL, -1},
	/* uploads */
	{"/v2/team/app/blobs/uploads/", R_UPLOAD_START, "team/app", NULL, -1},
	{"/v2/team/app/blobs/uploads", R_UPLOAD_START, NULL, NULL, -1},
	{"/v2/team/app/blobs/uploads/0b3c7a6e-1111-4222-8333-444455556666", R_UPLOAD, "team/app",
	 "0b3c7a6e-1111-4222-8333-444455556666", -1},
	{"/v2/a/blobs/blobs/uploads/", R_UPLOAD_START, "a/blobs", NULL, -1},
	/* invalid names */
	{"/v2/Team/manifests/v1", R_MANIFEST, NULL, NULL, 0},
	{"/v2/a/../b/manifests/v1", R_MANIFEST, NULL, NULL, 0},
	{"/v2/a//b/manifests/v1", R_MANIFEST, NULL, NULL, 0},
};

static void test_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		const struct path_case *c = &paths[i];
		struct route rt;
		route_parse(c->path, &rt);
		print_message("%s\n", c->path);
		assert_int_equal(rt.kind, c->kind);
		if (c->name)
			assert_string_equal(rt.name, c->name);
		if (c->ref)
			assert_string_equal(rt.ref, c->ref);
		if (c->name_ok >= 0)
			assert_int_equal(rt.name_ok, c->name_ok);
	}
}

static void test_long_name_and_ref(void **state)
{
	(void)state;
	char longp[600] = "/v2/";
	memset(longp + 4, 'a', 300);
	strcpy(longp + 304, "/manifests/v1");
	struct route rt;
	route_parse(longp, &rt);
	assert_int_equal(rt.kind, R_MANIFEST);
	assert_false(rt.name_ok);
	char longr[400] = "/v2/a/manifests/";
	size_t k = strlen(longr);
	memset(longr + k, 't', 300);
	longr[k + 300] = '\0';
	route_parse(longr, &rt);
	assert_true(rt.ref_truncated);
}

/* The name grammar's 255-character bound holds through the router: a name
 * of 255 characters is routed whole and valid, one of 256 is invalid (not
 * cut to 255 and accepted). */
static void test_name_length_bound(void **state)
{
	(void)state;
	char path[600];
	for (size_t len = 254; len <= 257; len++) {
		strcpy(path, "/v2/");
		memset(path + 4, 'a', len);
		path[4 + len / 2] = '/'; /* two components: "aaa/aaa" */
		strcpy(path + 4 + len, "/tags/list");
		struct route rt;
		route_parse(path, &rt);
		print_message("name of %zu characters\n", len);
		assert_int_equal(rt.kind, R_TAGS);
		assert_int_equal(rt.name_ok, len <= 255);
		if (len <= 255)
			assert_int_equal(strlen(rt.name), len);
	}
}

/* Every (route, method) pair: allowed or not, and the access it needs.
 * '-' not allowed; N none, P pull, W push (write), D delete, C catalog. */
static const struct {
	enum route_kind kind;
	const char *access;   /* GET HEAD PUT POST PATCH DELETE other */
} access_cases[] = {
	{R_NOT_FOUND,      "NNNNNNN"},
	{R_BASE,           "NN-----"},
	{R_CATALOG,        "CC-----"},
	{R_BULK_TAGS,      "CC-----"},
	{R_TAGS,           "PP-----"},
	{R_MANIFEST,       "PPW--D-"},
	{R_BLOB,           "PP---D-"},
	{R_UPLOAD_START,   "---W---"},
	{R_UPLOAD,         "WWW-WW-"},
	{R_REFERRERS,      "PP-----"},
	{R_REPO_MANIFESTS, "PP-----"},
	{R_BULK_MANIFESTS, "CC-----"},
	{R_LAYER_INDEX,    "PP-----"},
	{R_USAGE,          "CC-----"},
};

static void test_access(void **state)
{
	(void)state;
	static const char letter[] = {[ACCESS_NONE] = 'N', [ACCESS_PULL] = 'P',
				      [ACCESS_PUSH] = 'W', [ACCESS_DELETE] = 'D',
				      [ACCESS_CATALOG] = 'C'};
	assert_int_equal(sizeof access_cases / sizeof access_cases[0], R__COUNT);
	for (size_t i = 0; i < R__COUNT; i++) {
		const struct route_entry *e = route_entry_of(access_cases[i].kind);
		assert_int_equal(e->kind, access_cases[i].kind);
		assert_non_null(e->handler);
		char got[HTTP__COUNT + 1] = {0};
		for (int m = 0; m < HTTP__COUNT; m++)
			got[m] = route_allows(e, (enum http_method)m) ? letter[e->access[m]] : '-';
		print_message("%s\n", e->shape);
		assert_string_equal(got, access_cases[i].access);
	}
}

static void test_methods(void **state)
{
	(void)state;
	static const char *names[HTTP__COUNT] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE",
						 "OPTIONS"};
	for (int m = 0; m < HTTP__COUNT; m++)
		assert_int_equal(http_method_parse(names[m]), m);
	assert_int_equal(http_method_parse("get"), HTTP_OTHER);
	assert_int_equal(http_method_parse("PUTS"), HTTP_OTHER);
	assert_int_equal(http_method_parse(""), HTTP_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_long_name_and_ref),
		cmocka_unit_test(test_name_length_bound),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_methods),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
