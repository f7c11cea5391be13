/* Unit tests for layout.c: registry:2's exact paths, and no escapes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <regfs/layout.h>

#define D "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void check(char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_paths(void **state)
{
	(void)state;
	check(regfs_layout_blob_data(D), "/docker/registry/v2/blobs/sha256/e3/" H "/data");
	check(regfs_layout_layer_link("a/b", D), "/docker/registry/v2/repositories/a/b/_layers/sha256/" H "/link");
	check(regfs_layout_revision_link("a", D), "/docker/registry/v2/repositories/a/_manifests/revisions/sha256/" H "/link");
	check(regfs_layout_tag_current("a", "v1"), "/docker/registry/v2/repositories/a/_manifests/tags/v1/current/link");
	check(regfs_layout_tag_index_link("a", "v1", D), "/docker/registry/v2/repositories/a/_manifests/tags/v1/index/sha256/" H "/link");
	check(regfs_layout_upload_data("a", "0f0e0d0c-0b0a-4908-8706-050403020100"),
	      "/docker/registry/v2/repositories/a/_uploads/0f0e0d0c-0b0a-4908-8706-050403020100/data");
}

static void test_rejects(void **state)
{
	(void)state;
	assert_null(regfs_layout_blob_data("sha256:../../x"));
	assert_null(regfs_layout_repo("../etc"));
	assert_null(regfs_layout_tag_current("a", "../../b"));
	assert_null(regfs_layout_upload_data("a", "../../../../etc/passwd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
