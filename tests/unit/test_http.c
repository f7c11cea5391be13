/* Unit tests for lib/http/http.c: the handle pool, the transient-failure
 * classes and the backoff of the shared libcurl plumbing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <regfs/http.h>

static void test_pool(void **state)
{
	(void)state;
	struct regfs_http h;
	struct regfs_err err = {0};
	assert_int_equal(regfs_http_init(&h, &err), 0);
	CURL *a = regfs_http_handle(&h);
	CURL *b = regfs_http_handle(&h);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	regfs_http_release(&h, a);
	/* the idle handle is reused rather than a new one built */
	CURL *c = regfs_http_handle(&h);
	assert_ptr_equal(c, a);
	regfs_http_release(&h, b);
	regfs_http_release(&h, c);
	regfs_http_release(&h, NULL);
	/* more than the pool keeps: the extra ones are cleaned up on release */
	CURL *many[REGFS_HTTP_POOL_MAX + 3];
	for (int i = 0; i < REGFS_HTTP_POOL_MAX + 3; i++)
		assert_non_null(many[i] = regfs_http_handle(&h));
	for (int i = 0; i < REGFS_HTTP_POOL_MAX + 3; i++)
		regfs_http_release(&h, many[i]);
	assert_int_equal(h.n_pool, REGFS_HTTP_POOL_MAX);
	regfs_http_cleanup(&h);

	struct regfs_http zero = {0}; /* cleanup of a never-initialised struct */
	regfs_http_cleanup(&zero);
}

static void test_transient(void **state)
{
	(void)state;
	const CURLcode always[] = {CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
				   CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE};
	for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
		assert_true(regfs_http_transient(always[i], 0));
	const struct {
		CURLcode cc;
		unsigned flag;
	} opt[] = {
		{CURLE_HTTP2, REGFS_HTTP_TRANSIENT_HTTP2},
		{CURLE_HTTP2_STREAM, REGFS_HTTP_TRANSIENT_HTTP2},
		{CURLE_OPERATION_TIMEDOUT, REGFS_HTTP_TRANSIENT_TIMEOUT},
		{CURLE_SSL_CONNECT_ERROR, REGFS_HTTP_TRANSIENT_TLS_CONNECT},
		{CURLE_SEND_FAIL_REWIND, REGFS_HTTP_TRANSIENT_REWIND},
	};
	for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
		assert_false(regfs_http_transient(opt[i].cc, 0));
		assert_true(regfs_http_transient(opt[i].cc, opt[i].flag));
		assert_false(regfs_http_transient(opt[i].cc, ~opt[i].flag & 0xfu));
	}
	/* never: the request itself is wrong */
	assert_false(regfs_http_transient(CURLE_URL_MALFORMAT, ~0u));
	assert_false(regfs_http_transient(CURLE_COULDNT_RESOLVE_HOST, ~0u));
	assert_false(regfs_http_transient(CURLE_PEER_FAILED_VERIFICATION, ~0u));
	assert_false(regfs_http_transient(CURLE_OK, ~0u));
}

static void test_backoff(void **state)
{
	(void)state;
	struct regfs_http_backoff b;
	regfs_http_backoff_init(&b, 2, false);
	int64_t t0 = regfs_http_now_ms();
	regfs_http_backoff_sleep(&b); /* 2 ms */
	assert_int_equal(b.next_ms, 4);
	regfs_http_backoff_sleep(&b); /* 4 ms */
	assert_int_equal(b.next_ms, 8);
	assert_true(regfs_http_now_ms() - t0 >= 6);
	/* jitter lengthens a wait by at most half, never shortens it */
	regfs_http_backoff_init(&b, 10, true);
	t0 = regfs_http_now_ms();
	regfs_http_backoff_sleep(&b);
	int64_t took = regfs_http_now_ms() - t0;
	assert_true(took >= 10);
	assert_int_equal(b.next_ms, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool), cmocka_unit_test(test_transient),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
