/* test_digestset.c — the digest set of regfs-registry's garbage collection
 * (registry/digestset.c): add/has/count across growth, clear, and pruning
 * by note time (online GC keeps notes for `delay`). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "digestset.h"

static void digest_n(int i, char out[80])
{
	snprintf(out, 80, "sha256:%064x", i);
}

static void test_add_has_grow(void **state)
{
	(void)state;
	struct digestset *s = digestset_new();
	assert_non_null(s);
	char d[80];
	for (int i = 0; i < 5000; i++) {
		digest_n(i * 7, d);
		assert_int_equal(digestset_add(s, d), 1);
	}
	assert_int_equal(digestset_count(s), 5000);
	for (int i = 0; i < 5000; i++) {
		digest_n(i * 7, d);
		assert_true(digestset_has(s, d));
		assert_int_equal(digestset_add(s, d), 0); /* already there */
		digest_n(i * 7 + 1, d);
		assert_false(digestset_has(s, d));
	}
	assert_int_equal(digestset_count(s), 5000);
	digestset_clear(s);
	assert_int_equal(digestset_count(s), 0);
	digest_n(0, d);
	assert_false(digestset_has(s, d));
	assert_int_equal(digestset_add(s, d), 1);
	digestset_free(s);
}

static void test_prune_by_time(void **state)
{
	(void)state;
	struct digestset *s = digestset_new();
	assert_non_null(s);
	char d[80];
	for (int i = 0; i < 1000; i++) {
		digest_n(i, d);
		assert_int_equal(digestset_add_at(s, d, 100 + (i % 10)), 1);
	}
	digest_n(3, d);
	assert_int_equal(digestset_add_at(s, d, 200), 0); /* a later note refreshes */
	assert_int_equal(digestset_prune_before(s, 105), 0);
	/* kept: times 105..109 (500 entries) plus the refreshed one */
	assert_int_equal(digestset_count(s), 501);
	for (int i = 0; i < 1000; i++) {
		digest_n(i, d);
		assert_true(digestset_has(s, d) == (i % 10 >= 5 || i == 3));
	}
	assert_int_equal(digestset_prune_before(s, 201), 0);
	assert_int_equal(digestset_count(s), 0);
	digestset_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_has_grow),
		cmocka_unit_test(test_prune_by_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
