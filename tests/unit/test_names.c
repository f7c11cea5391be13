/* Unit tests for names.c: the spec's name and tag grammar. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <regfs/names.h>

static void test_names(void **state)
{
	(void)state;
	const char *good[] = {"a", "library/ubuntu", "team/app/worker", "a.b_c__d---e", "x0/y1", NULL};
	const char *bad[] = {"", "A", "/a", "a/", "a//b", "a..b", "a___b", "-a", "a-", "_tags",
			     "a/_manifests", "a/../b", "a b", NULL};
	for (int i = 0; good[i]; i++)
		assert_true(regfs_name_valid(good[i]));
	for (int i = 0; bad[i]; i++)
		assert_false(regfs_name_valid(bad[i]));
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = 0;
	assert_false(regfs_name_valid(longname));
}

static void test_tags(void **state)
{
	(void)state;
	assert_true(regfs_tag_valid("latest"));
	assert_true(regfs_tag_valid("_x.Y-1"));
	assert_false(regfs_tag_valid(".x"));
	assert_false(regfs_tag_valid("-x"));
	assert_false(regfs_tag_valid("a/b"));
	assert_false(regfs_tag_valid(""));
	char t[200];
	memset(t, 'a', 129);
	t[129] = 0;
	assert_false(regfs_tag_valid(t));
	t[128] = 0;
	assert_true(regfs_tag_valid(t));
}

static void test_reference_kind(void **state)
{
	(void)state;
	assert_int_equal(regfs_reference_kind("latest", NULL), 0);
	assert_int_equal(regfs_reference_kind("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", NULL), 1);
	assert_true(regfs_reference_kind("sha256:totallywrong", NULL) < 0);
	assert_true(regfs_reference_kind("..", NULL) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_reference_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
