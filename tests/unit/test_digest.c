/* Unit tests for digest.c: parsing and hashing against known vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <regfs/digest.h>

static const char *EMPTY256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void test_parse_valid(void **state)
{
	(void)state;
	enum regfs_digest_alg alg;
	const char *hex;
	assert_int_equal(regfs_digest_parse(EMPTY256, &alg, &hex, NULL), 0);
	assert_int_equal(alg, REGFS_SHA256);
	assert_string_equal(hex, EMPTY256 + 7);
}

static void test_parse_invalid(void **state)
{
	(void)state;
	struct regfs_err e = {0};
	assert_int_equal(regfs_digest_parse("sha256:totallywrong", NULL, NULL, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "totallywrong"));
	assert_false(regfs_digest_valid("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(regfs_digest_valid("md5:d41d8cd98f00b204e9800998ecf8427e"));
	assert_false(regfs_digest_valid("sha256"));
	assert_false(regfs_digest_valid(""));
	assert_false(regfs_digest_valid("sha256:../../etc/passwd"));
}

static void test_hash_streaming_equals_oneshot(void **state)
{
	(void)state;
	char a[REGFS_DIGEST_MAX], b[REGFS_DIGEST_MAX], c[REGFS_DIGEST_MAX];
	regfs_digest_buf(REGFS_SHA256, "", 0, a);
	assert_string_equal(a, EMPTY256);

	struct regfs_hasher *h = regfs_hasher_new(REGFS_SHA256);
	regfs_hasher_update(h, "ab", 2);
	struct regfs_hasher *d = regfs_hasher_dup(h);
	regfs_hasher_update(h, "c", 1);
	regfs_hasher_final(h, b);
	regfs_hasher_free(h);
	assert_string_equal(b, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	regfs_hasher_final(d, c);
	regfs_hasher_free(d);
	regfs_digest_buf(REGFS_SHA256, "ab", 2, a);
	assert_string_equal(a, c);
}

static void test_ino_stable(void **state)
{
	(void)state;
	unsigned long long i = regfs_digest_ino(EMPTY256);
	assert_true(i == regfs_digest_ino(EMPTY256));
	assert_true(i > 1);
	assert_true((i & ~(1ULL << 63)) == 0x63b0c44298fc1c14ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_hash_streaming_equals_oneshot),
		cmocka_unit_test(test_ino_stable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
