/* Unit tests for the small parts of lib/base: formatted allocation (fmt.c),
 * the shared qsort comparators (cmp.c) and the freeing helpers (mem.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <regfs/base64.h>
#include <regfs/cmp.h>
#include <regfs/fmt.h>
#include <regfs/mem.h>

static void test_xasprintf(void **state)
{
	(void)state;
	char *s = xasprintf("%s/%d", "dir", 7);
	assert_string_equal(s, "dir/7");
	free(s);
	s = xasprintf("%s", "");
	assert_string_equal(s, "");
	free(s);
	char big[5000];
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = 0;
	s = xasprintf("<%s>", big);
	assert_int_equal(strlen(s), 5000 + 1);
	free(s);
}

static void test_cmp_str(void **state)
{
	(void)state;
	char *v[] = {"b", "a", "c", "a"};
	regfs_qsort(v, 4, sizeof *v, regfs_cmp_str);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "a");
	assert_string_equal(v[2], "b");
	assert_string_equal(v[3], "c");
	/* structs whose first member is the key */
	struct tag { char *name; int n; } t[] = {{"z", 1}, {"m", 2}, {"a", 3}};
	regfs_qsort(t, 3, sizeof *t, regfs_cmp_str);
	assert_string_equal(t[0].name, "a");
	assert_int_equal(t[0].n, 3);
	assert_int_equal(t[2].n, 1);
}

static void test_cmp_numbers(void **state)
{
	(void)state;
	uint64_t u[] = {UINT64_MAX, 0, 5, 1ULL << 63};
	regfs_qsort(u, 4, sizeof *u, regfs_cmp_u64);
	assert_true(u[0] == 0 && u[1] == 5 && u[2] == 1ULL << 63 && u[3] == UINT64_MAX);
	int64_t i[] = {INT64_MAX, INT64_MIN, 0, -1};
	regfs_qsort(i, 4, sizeof *i, regfs_cmp_i64);
	assert_true(i[0] == INT64_MIN && i[1] == -1 && i[2] == 0 && i[3] == INT64_MAX);
	size_t z[] = {3, SIZE_MAX, 1};
	regfs_qsort(z, 3, sizeof *z, regfs_cmp_size);
	assert_true(z[0] == 1 && z[1] == 3 && z[2] == SIZE_MAX);
	int x, y;
	void *p[] = {&y, &x, &y, &x};
	regfs_qsort(p, 4, sizeof *p, regfs_cmp_ptr);
	assert_ptr_equal(p[0], p[1]);
	assert_ptr_equal(p[2], p[3]);
	assert_int_equal(regfs_cmp_ptr(&p[0], &p[2]) < 0, 1);
}

static void test_qsort_empty(void **state)
{
	(void)state;
	regfs_qsort(NULL, 0, sizeof(char *), regfs_cmp_str);
	char *one[] = {"x"};
	regfs_qsort(one, 1, sizeof *one, regfs_cmp_str);
	assert_string_equal(one[0], "x");
}

static void test_free_helpers(void **state)
{
	(void)state;
	struct { char *a, *b, *c; } s = {strdup("a"), NULL, strdup("c")};
	REGFS_FREE_STRS(&s.a, &s.b, &s.c);
	assert_null(s.a);
	assert_null(s.b);
	assert_null(s.c);
	REGFS_FREE_STRS(&s.a); /* again: all NULL now */
	regfs_free_secret(strdup("hunter2"));
	regfs_free_secret(NULL);
}

/* RFC 4648 section 10's vectors, both alphabets, and what must be refused. */
static void test_base64(void **state)
{
	(void)state;
	static const char *const vec[][2] = {
		{"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"},
		{"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
	};
	unsigned char out[16];
	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		ssize_t n = regfs_base64_decode(vec[i][0], strlen(vec[i][0]), false, out, sizeof out);
		assert_int_equal(n, strlen(vec[i][1]));
		assert_memory_equal(out, vec[i][1], (size_t)n);
	}
	/* 0xfb 0xff: "+/8" in the standard alphabet, "-_8" in base64url */
	assert_int_equal(regfs_base64_decode("+/8", 3, false, out, sizeof out), 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(regfs_base64_decode("-_8", 3, true, out, sizeof out), 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(regfs_base64_decode("-_8", 3, false, out, sizeof out), -EINVAL);
	assert_int_equal(regfs_base64_decode("+/8", 3, true, out, sizeof out), -EINVAL);
	assert_int_equal(regfs_base64_decode("Zg==", 4, true, out, sizeof out), -EINVAL);
	assert_int_equal(regfs_base64_decode("Zm9vY", 5, false, out, sizeof out), -EINVAL);
	assert_int_equal(regfs_base64_decode("Zm9v", 4, false, out, 2), -ENOSPC);
	assert_true(regfs_base64_max(8) >= 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xasprintf),   cmocka_unit_test(test_cmp_str),
		cmocka_unit_test(test_cmp_numbers), cmocka_unit_test(test_qsort_empty),
		cmocka_unit_test(test_free_helpers), cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
