/* Unit tests for sigv4.c against the values AWS publishes:
 *  - the Signature Version 4 test suite (get-vanilla, post-vanilla,
 *    get-vanilla-query-order-key-case; credentials AKIDEXAMPLE, service
 *    "service", 20150830T123600Z);
 *  - the S3 API reference examples of header-based auth (GET Object with a
 *    Range, PUT Object, GET Bucket lifecycle, GET Bucket with a query;
 *    AKIAIOSFODNN7EXAMPLE, 20130524T000000Z) and of query-parameter auth
 *    (the presigned GET of test.txt valid 86400 s).
 * The expected strings are AWS's, not computed by this code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <regfs/sigv4.h>

static const struct regfs_sigv4_key suite_key = {
	"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};
static const struct regfs_sigv4_key s3_key = {
	"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};

static char *suite_sign(const char *method, const char *query)
{
	struct regfs_sigv4_header h[] = {
		{"Host", "example.amazonaws.com"},
		{"X-Amz-Date", "20150830T123600Z"},
	};
	struct regfs_sigv4_request r = {method, "/", query, h, 2, REGFS_SIGV4_EMPTY_SHA256};
	return regfs_sigv4_authorization(&suite_key, "20150830T123600Z", &r);
}

static void test_suite_get_vanilla(void **state)
{
	(void)state;
	char *a = suite_sign("GET", NULL);
	assert_string_equal(a, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
			       "SignedHeaders=host;x-amz-date, "
			       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	free(a);
}

static void test_suite_post_vanilla(void **state)
{
	(void)state;
	char *a = suite_sign("POST", "");
	assert_non_null(strstr(a, "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
	free(a);
}

static void test_suite_query_order(void **state)
{
	(void)state;
	char *a = suite_sign("GET", "Param2=value2&Param1=value1");
	assert_non_null(strstr(a, "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
	free(a);
}

static void test_s3_get_object_range(void **state)
{
	(void)state;
	struct regfs_sigv4_header h[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"Range", "bytes=0-9"},
		{"x-amz-content-sha256", REGFS_SIGV4_EMPTY_SHA256},
		{"x-amz-date", "20130524T000000Z"},
	};
	struct regfs_sigv4_request r = {"GET", "/test.txt", NULL, h, 4, REGFS_SIGV4_EMPTY_SHA256};
	/* The documented string to sign carries this hash of the canonical request. */
	char *canon = regfs_sigv4_canonical_request(&r);
	char hash[65];
	regfs_sigv4_sha256_hex(canon, strlen(canon), hash);
	assert_string_equal(hash, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	free(canon);
	char *a = regfs_sigv4_authorization(&s3_key, "20130524T000000Z", &r);
	assert_string_equal(a, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
			       "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			       "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	free(a);
}

static void test_s3_put_object(void **state)
{
	(void)state;
	const char *body = "Welcome to Amazon S3.";
	char body_hash[65];
	regfs_sigv4_sha256_hex(body, strlen(body), body_hash);
	assert_string_equal(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	/* The key "test$file.text" is sent encoded. */
	char *path = regfs_sigv4_uri_encode("/test$file.text", 15, true);
	assert_string_equal(path, "/test%24file.text");
	struct regfs_sigv4_header h[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
		{"x-amz-date", "20130524T000000Z"},
		{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"x-amz-content-sha256", body_hash},
	};
	struct regfs_sigv4_request r = {"PUT", path, NULL, h, 5, body_hash};
	char *a = regfs_sigv4_authorization(&s3_key, "20130524T000000Z", &r);
	assert_non_null(strstr(a, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "));
	assert_non_null(strstr(a, "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
	free(a);
	free(path);
}

static char *s3_bucket_get(const char *query)
{
	struct regfs_sigv4_header h[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"x-amz-date", "20130524T000000Z"},
		{"x-amz-content-sha256", REGFS_SIGV4_EMPTY_SHA256},
	};
	struct regfs_sigv4_request r = {"GET", "/", query, h, 3, REGFS_SIGV4_EMPTY_SHA256};
	return regfs_sigv4_authorization(&s3_key, "20130524T000000Z", &r);
}

static void test_s3_bucket_queries(void **state)
{
	(void)state;
	/* A parameter without a value canonicalizes as "lifecycle=". */
	char *a = s3_bucket_get("lifecycle");
	assert_non_null(strstr(a, "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
	free(a);
	/* Unsorted on purpose: the signer must sort. */
	a = s3_bucket_get("prefix=J&max-keys=2");
	assert_non_null(strstr(a, "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
	free(a);
}

static void test_s3_presign(void **state)
{
	(void)state;
	char *q = regfs_sigv4_presign_query(&s3_key, "20130524T000000Z", "GET",
					    "examplebucket.s3.amazonaws.com", "/test.txt", NULL, 86400);
	assert_string_equal(q, "X-Amz-Algorithm=AWS4-HMAC-SHA256"
			       "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
			       "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
			       "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	free(q);
}

static void test_uri_encode_and_date(void **state)
{
	(void)state;
	char *e = regfs_sigv4_uri_encode("a b/c+d=é~_-.", strlen("a b/c+d=é~_-."), false);
	assert_string_equal(e, "a%20b%2Fc%2Bd%3D%C3%A9~_-.");
	free(e);
	e = regfs_sigv4_uri_encode("docker/registry/v2/x:y", 22, true);
	assert_string_equal(e, "docker/registry/v2/x%3Ay");
	free(e);
	char d[17];
	regfs_sigv4_amz_date(1440938160, d); /* 2015-08-30T12:36:00Z */
	assert_string_equal(d, "20150830T123600Z");
	/* Header values are trimmed and inner spaces collapsed; names lowercased. */
	struct regfs_sigv4_header h[] = {{"My-Header1", "  a   b   c  "}, {"HOST", "h"}};
	struct regfs_sigv4_request r = {"GET", "/", NULL, h, 2, "x"};
	char *c = regfs_sigv4_canonical_request(&r);
	assert_string_equal(c, "GET\n/\n\nhost:h\nmy-header1:a b c\n\nhost;my-header1\nx");
	free(c);
	/* A repeated name is one line, its values joined with ","; no headers at
	 * all leave the headers block empty. */
	struct regfs_sigv4_header rep[] = {{"X-A", "v"}, {"Host", "h"}, {"x-a", " v "}};
	struct regfs_sigv4_request rr = {"PUT", "/k", "b=2&a=1", rep, 3, "x"};
	c = regfs_sigv4_canonical_request(&rr);
	assert_string_equal(c, "PUT\n/k\na=1&b=2\nhost:h\nx-a:v,v\n\nhost;x-a\nx");
	free(c);
	struct regfs_sigv4_request none = {"GET", "", NULL, NULL, 0, NULL};
	c = regfs_sigv4_canonical_request(&none);
	assert_string_equal(c, "GET\n/\n\n\n\nUNSIGNED-PAYLOAD");
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_get_vanilla),
		cmocka_unit_test(test_suite_post_vanilla),
		cmocka_unit_test(test_suite_query_order),
		cmocka_unit_test(test_s3_get_object_range),
		cmocka_unit_test(test_s3_put_object),
		cmocka_unit_test(test_s3_bucket_queries),
		cmocka_unit_test(test_s3_presign),
		cmocka_unit_test(test_uri_encode_and_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
