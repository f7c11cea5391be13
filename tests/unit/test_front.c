/* Unit tests for front.c's verdict on the first bytes of a plain-HTTP
 * connection: what is handed to libmicrohttpd, what waits for more bytes,
 * and what is answered 400/431 at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "front.h"

static enum front_verdict judge(const char *s, bool full)
{
	return front_judge((const unsigned char *)s, strlen(s), full);
}

static void test_pass_and_wait(void **state)
{
	(void)state;
	assert_int_equal(judge("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", false), FRONT_PASS);
	/* bare LF line ends, and a body after the headers */
	assert_int_equal(judge("PUT /v2/a HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}", false),
			 FRONT_PASS);
	assert_int_equal(judge("", false), FRONT_WAIT);
	assert_int_equal(judge("G", false), FRONT_WAIT);
	assert_int_equal(judge("GET /v2/ HT", false), FRONT_WAIT);
	assert_int_equal(judge("GET /v2/ HTTP/1.1\r\nHost: x\r\n", false), FRONT_WAIT);
	assert_int_equal(judge("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r", false), FRONT_WAIT);
}

static void test_refused(void **state)
{
	(void)state;
	const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0xc4, 0x01, 0x00};
	assert_int_equal(front_judge(hello, sizeof hello, false), FRONT_TLS);
	const unsigned char bin[] = {0x81, 'G', 'E', 'T', ' '};
	assert_int_equal(front_judge(bin, sizeof bin, false), FRONT_NOT_HTTP);
	assert_int_equal(judge(" GET / HTTP/1.1\r\n\r\n", false), FRONT_NOT_HTTP);
	assert_int_equal(judge("GET\t/ HTTP/1.1\r\n\r\n", false), FRONT_NOT_HTTP);
	assert_int_equal(judge("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n\r\n", false),
			 FRONT_NOT_HTTP);
	assert_int_equal(judge("GET / HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n", false),
			 FRONT_EMPTY_NAME);
	/* obs-fold, a bare CR, a NUL in a field */
	assert_int_equal(judge("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  more\r\n\r\n", false),
			 FRONT_BAD_HEADER);
	assert_int_equal(judge("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tmore\r\n\r\n", false),
			 FRONT_BAD_HEADER);
	assert_int_equal(judge("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", false),
			 FRONT_BAD_HEADER);
	const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
	assert_int_equal(front_judge((const unsigned char *)nul, sizeof nul - 1, false),
			 FRONT_BAD_HEADER);
	/* Host: required in HTTP/1.1 (any case), not in HTTP/1.0 */
	assert_int_equal(judge("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", false), FRONT_NO_HOST);
	assert_int_equal(judge("GET / HTTP/1.1\r\nhOsT: x\r\n\r\n", false), FRONT_PASS);
	assert_int_equal(judge("GET / HTTP/1.0\r\n\r\n", false), FRONT_PASS);
	assert_int_equal(judge("GET / HTTP/1.1\n\n", false), FRONT_NO_HOST);
	/* a full buffer with no end of headers, or no end of the method */
	assert_int_equal(judge("GET / HTTP/1.1\r\nX: aaaa", true), FRONT_TOO_LARGE);
	assert_int_equal(judge("GET /aaaaaaaaaa", true), FRONT_LINE_TOO_LONG);
	assert_int_equal(judge("GETGET", true), FRONT_NOT_HTTP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_and_wait),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
