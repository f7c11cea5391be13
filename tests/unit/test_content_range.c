/* test_content_range.c — the Content-Range parser of chunked uploads
 * (registry/content_range.c): the forms clients send, and every malformed
 * or overflowing value refused with the right error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>

#include "content_range.h"

struct cr_case {
	const char *h;
	int rc;
	uint64_t start, end; /* checked when rc == 0 */
};

static const struct cr_case cases[] = {
	{"0-9", 0, 0, 9},
	{"bytes=0-9", 0, 0, 9},
	{"bytes 10-19", 0, 10, 19},
	{"10-19/20", 0, 10, 19},
	{"bytes 0-0/*", 0, 0, 0},
	{"0-18446744073709551615", 0, 0, UINT64_MAX},
	{"5-5", 0, 5, 5},
	/* malformed */
	{"", -EINVAL, 0, 0},
	{"bytes", -EINVAL, 0, 0},
	{"bytes=", -EINVAL, 0, 0},
	{"-9", -EINVAL, 0, 0},
	{"0-", -EINVAL, 0, 0},
	{"0", -EINVAL, 0, 0},
	{"9-0", -EINVAL, 0, 0},
	{" 0-9", -EINVAL, 0, 0},
	{"0 -9", -EINVAL, 0, 0},
	{"0- 9", -EINVAL, 0, 0},
	{"+0-9", -EINVAL, 0, 0},
	{"0-+9", -EINVAL, 0, 0},
	{"0--9", -EINVAL, 0, 0},
	{"0-9x", -EINVAL, 0, 0},
	{"0-9\r\n", -EINVAL, 0, 0},
	{"0x0-0x9", -EINVAL, 0, 0},
	{"bytes==0-9", -EINVAL, 0, 0},
	/* a bound over 64 bits is an overflow, not a wrap */
	{"0-99999999999999999999999", -ERANGE, 0, 0},
	{"18446744073709551616-18446744073709551617", -ERANGE, 0, 0},
	{"0-18446744073709551616", -ERANGE, 0, 0},
	/* syntax first: an overflowing bound followed by junk is malformed */
	{"0-99999999999999999999999x", -EINVAL, 0, 0},
};

static void test_content_range_parse_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t a = 7, b = 7;
		int rc = regfs_content_range_parse(cases[i].h, &a, &b);
		print_message("\"%s\" -> %d\n", cases[i].h, rc);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_true(a == cases[i].start);
			assert_true(b == cases[i].end);
		}
	}
}

static void test_content_range_fits_body_length_exactly(void **state)
{
	(void)state;
	assert_true(regfs_content_range_fits(0, 9, 10));
	assert_true(regfs_content_range_fits(10, 10, 1));
	assert_false(regfs_content_range_fits(0, 99, 10));
	assert_false(regfs_content_range_fits(0, 9, 11));
	assert_false(regfs_content_range_fits(0, 0, 0));       /* an empty body has no range */
	assert_false(regfs_content_range_fits(9, 0, 10));      /* end before start */
	/* the whole 64-bit range is 2^64 bytes: no len can say so, none may wrap to it */
	assert_false(regfs_content_range_fits(0, UINT64_MAX, 0));
	assert_true(regfs_content_range_fits(0, UINT64_MAX - 1, UINT64_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_range_parse_cases),
		cmocka_unit_test(test_content_range_fits_body_length_exactly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
