/* test_route.c — regfs-registry's path router (registry/route.c): names with
 * '/' and with components that look like endpoints, references, uploads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "route.h"

static struct route R(const char *path)
{
	struct route rt;
	route_parse(path, &rt);
	return rt;
}

static void test_base_and_lists(void **state)
{
	(void)state;
	assert_int_equal(R("/v2/").kind, R_BASE);
	assert_int_equal(R("/v2").kind, R_BASE);
	assert_int_equal(R("/v2/_catalog").kind, R_CATALOG);
	assert_int_equal(R("/v2/_regfs/tags").kind, R_BULK_TAGS);
	struct route rt = R("/v2/team/app/tags/list");
	assert_int_equal(rt.kind, R_TAGS);
	assert_string_equal(rt.name, "team/app");
	assert_true(rt.name_ok);
	rt = R("/v2/team/app/_regfs/manifests");
	assert_int_equal(rt.kind, R_REPO_MANIFESTS);
	assert_string_equal(rt.name, "team/app");
	/* bulk-manifests is not the repo-manifests route of a repository "" */
	assert_int_equal(R("/v2/_regfs/manifests").kind, R_BULK_MANIFESTS);
	assert_int_equal(R("/v2/_regfs/manifests/").kind, R_BULK_MANIFESTS);
	rt = R("/v2//_regfs/manifests");
	assert_int_equal(rt.kind, R_REPO_MANIFESTS);
	assert_false(rt.name_ok);
	rt = R("/v2/x/_regfs/manifests");
	assert_int_equal(rt.kind, R_REPO_MANIFESTS);
	assert_string_equal(rt.name, "x");
	assert_int_equal(R("/v3/x").kind, R_NOT_FOUND);
	assert_int_equal(R("/v2/x").kind, R_NOT_FOUND);
	assert_int_equal(R("/v2/manifests/latest").kind, R_NOT_FOUND); /* no name */
}

static void test_manifests_blobs(void **state)
{
	(void)state;
	struct route rt = R("/v2/a/b/c/manifests/latest");
	assert_int_equal(rt.kind, R_MANIFEST);
	assert_string_equal(rt.name, "a/b/c");
	assert_string_equal(rt.ref, "latest");
	/* a repository whose name has a "blobs" or "manifests" component */
	rt = R("/v2/x/blobs/manifests/v1");
	assert_int_equal(rt.kind, R_MANIFEST);
	assert_string_equal(rt.name, "x/blobs");
	rt = R("/v2/x/manifests/blobs/sha256:abc");
	assert_int_equal(rt.kind, R_BLOB);
	assert_string_equal(rt.name, "x/manifests");
	assert_string_equal(rt.ref, "sha256:abc");
	rt = R("/v2/x/referrers/sha256:abc");
	assert_int_equal(rt.kind, R_REFERRERS);
	assert_string_equal(rt.name, "x");
	assert_int_equal(R("/v2/x/manifests/").kind, R_NOT_FOUND);
}

static void test_uploads(void **state)
{
	(void)state;
	struct route rt = R("/v2/team/app/blobs/uploads/");
	assert_int_equal(rt.kind, R_UPLOAD_START);
	assert_string_equal(rt.name, "team/app");
	assert_int_equal(R("/v2/team/app/blobs/uploads").kind, R_UPLOAD_START);
	rt = R("/v2/team/app/blobs/uploads/0b3c7a6e-1111-4222-8333-444455556666");
	assert_int_equal(rt.kind, R_UPLOAD);
	assert_string_equal(rt.name, "team/app");
	assert_string_equal(rt.ref, "0b3c7a6e-1111-4222-8333-444455556666");
	rt = R("/v2/a/blobs/blobs/uploads/");
	assert_int_equal(rt.kind, R_UPLOAD_START);
	assert_string_equal(rt.name, "a/blobs");
}

static void test_invalid_names(void **state)
{
	(void)state;
	assert_false(R("/v2/Team/manifests/v1").name_ok);
	assert_false(R("/v2/a/../b/manifests/v1").name_ok);
	assert_false(R("/v2/a//b/manifests/v1").name_ok);
	char longp[600] = "/v2/";
	for (int i = 0; i < 300; i++)
		strcat(longp, "a");
	strcat(longp, "/manifests/v1");
	struct route rt = R(longp);
	assert_int_equal(rt.kind, R_MANIFEST);
	assert_false(rt.name_ok);
	char longr[400] = "/v2/a/manifests/";
	for (int i = 0; i < 300; i++)
		strcat(longr, "t");
	rt = R(longr);
	assert_true(rt.ref_truncated);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_and_lists),
		cmocka_unit_test(test_manifests_blobs),
		cmocka_unit_test(test_uploads),
		cmocka_unit_test(test_invalid_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
