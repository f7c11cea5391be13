/* Unit tests for hash.h: 64-bit FNV-1a against the published test vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <regfs/hash.h>

static void test_vectors(void **state)
{
	(void)state;
	/* the reference values of FNV-1a 64 */
	assert_true(regfs_fnv1a64_str("") == 0xcbf29ce484222325ULL);
	assert_true(regfs_fnv1a64_str("a") == 0xaf63dc4c8601ec8cULL);
	assert_true(regfs_fnv1a64_str("foobar") == 0x85944171f73967e8ULL);
	assert_true(regfs_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
	assert_true(regfs_fnv1a64(NULL, 0) == REGFS_FNV1A64_INIT);
}

static void test_running(void **state)
{
	(void)state;
	uint64_t h = regfs_fnv1a64("foo", 3);
	h = regfs_fnv1a64_add(h, "bar", 3);
	assert_true(h == regfs_fnv1a64_str("foobar"));
	assert_true(regfs_fnv1a64_add(h, NULL, 0) == h);
	/* bytes above 0x7f hash as unsigned, whatever the sign of char */
	const char hi[] = "\xff\x80";
	assert_true(regfs_fnv1a64_str(hi) == regfs_fnv1a64(hi, 2));
	/* an embedded NUL is hashed by the length form, ends the string form */
	assert_true(regfs_fnv1a64("a\0b", 3) != regfs_fnv1a64_str("a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
