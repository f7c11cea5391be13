/* Unit tests for lib/base/strvec.c: the vector of owned strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regfs/strvec.h>

static void test_push_copies(void **state)
{
	(void)state;
	struct strvec sv = STRVEC_INIT;
	assert_int_equal(sv.n, 0);
	char s[] = "abc";
	assert_int_equal(strvec_push(&sv, s), 0);
	s[0] = 'X'; /* the vector holds its own copy */
	assert_string_equal(sv.v[0], "abc");
	assert_null(sv.v[1]); /* NULL-terminated */
	strvec_clear(&sv);
	assert_int_equal(sv.n, 0);
	assert_null(sv.v);
	strvec_clear(&sv); /* twice is fine */
}

static void test_push_take(void **state)
{
	(void)state;
	struct strvec sv;
	strvec_init(&sv);
	char *s = strdup("owned");
	assert_int_equal(strvec_push_take(&sv, s), 0);
	assert_ptr_equal(sv.v[0], s);
	/* a failed allocation upstream arrives as NULL */
	assert_int_equal(strvec_push_take(&sv, NULL), -ENOMEM);
	assert_int_equal(sv.n, 1);
	strvec_clear(&sv);
}

static void test_many_sort_uniq(void **state)
{
	(void)state;
	struct strvec sv = STRVEC_INIT;
	char buf[32];
	for (int i = 999; i >= 0; i--) {
		snprintf(buf, sizeof buf, "n%04d", i % 500);
		assert_int_equal(strvec_push(&sv, buf), 0);
	}
	assert_int_equal(sv.n, 1000);
	assert_null(sv.v[1000]);
	strvec_sort(&sv);
	assert_string_equal(sv.v[0], "n0000");
	assert_string_equal(sv.v[1], "n0000");
	assert_string_equal(sv.v[999], "n0499");
	strvec_uniq(&sv);
	assert_int_equal(sv.n, 500);
	assert_null(sv.v[500]);
	for (size_t i = 0; i < sv.n; i++) {
		snprintf(buf, sizeof buf, "n%04zu", i);
		assert_string_equal(sv.v[i], buf);
	}
	strvec_clear(&sv);
}

static void test_empty_sort_take(void **state)
{
	(void)state;
	struct strvec sv = STRVEC_INIT;
	strvec_sort(&sv); /* v is NULL: must not reach qsort */
	strvec_uniq(&sv);
	size_t n = 7;
	assert_null(strvec_take(&sv, &n));
	assert_int_equal(n, 0);
}

static void test_take(void **state)
{
	(void)state;
	struct strvec sv = STRVEC_INIT;
	assert_int_equal(strvec_push(&sv, "b"), 0);
	assert_int_equal(strvec_push(&sv, "a"), 0);
	size_t n = 0;
	char **v = strvec_take(&sv, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "b");
	assert_string_equal(v[1], "a");
	assert_null(v[2]);
	assert_int_equal(sv.n, 0);
	assert_null(sv.v);
	/* the vector is reusable */
	assert_int_equal(strvec_push(&sv, "c"), 0);
	assert_int_equal(sv.n, 1);
	strvec_clear(&sv);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_copies),
		cmocka_unit_test(test_push_take),
		cmocka_unit_test(test_many_sort_uniq),
		cmocka_unit_test(test_empty_sort_take),
		cmocka_unit_test(test_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
