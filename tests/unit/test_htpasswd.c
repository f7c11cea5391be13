/* test_htpasswd.c — auth.htpasswd's pieces that need no server
 * (registry/htpasswd.h, registry/auth.h): the htpasswd line parser, the
 * bcrypt check against vectors written by Apache's `htpasswd -nbB` (fixed
 * here, and one made by the tool at test time when it is installed), and
 * the Basic Authorization header parser. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "htpasswd.h"

/* `htpasswd -nbB -C 4 alice 'correct horse'` and `-C 5 bob 'p:with:colons'` */
#define ALICE "$2y$04$go3h0eNji58wIen2/S7fa.ZRFYkXYFUrwTFjbZsUi11eC5CpLzNou"
#define BOB "$2y$05$OxtdUgrlCTY0eNGjs.EdtOPoOyGq/uTtD24fc/o839AsqUQvBgqt."

static enum htpasswd_line parse(const char *in, char *user, char *hash)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%s", in);
	char *u = NULL, *h = NULL;
	enum htpasswd_line k = htpasswd_parse_line(buf, &u, &h);
	snprintf(user, 128, "%s", u ? u : "");
	snprintf(hash, 256, "%s", h ? h : "");
	return k;
}

static void test_lines(void **state)
{
	(void)state;
	char u[128], h[256];
	assert_int_equal(parse("alice:" ALICE, u, h), HTPASSWD_BCRYPT);
	assert_string_equal(u, "alice");
	assert_string_equal(h, ALICE);
	assert_int_equal(parse("alice:" ALICE "\r", u, h), HTPASSWD_BCRYPT);
	assert_string_equal(h, ALICE);
	assert_int_equal(parse("x:$2a$04$abc", u, h), HTPASSWD_BCRYPT);
	assert_int_equal(parse("x:$2b$04$abc", u, h), HTPASSWD_BCRYPT);
	/* Apache MD5, SHA1, crypt and plain text: refused */
	assert_int_equal(parse("carol:$apr1$g.FQ1uqD$awXwboPVkGssScRtRMAXN/", u, h), HTPASSWD_OTHER);
	assert_string_equal(u, "carol");
	assert_int_equal(parse("dave:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", u, h), HTPASSWD_OTHER);
	assert_int_equal(parse("eve:plaintext", u, h), HTPASSWD_OTHER);
	assert_int_equal(parse("", u, h), HTPASSWD_SKIP);
	assert_int_equal(parse("   ", u, h), HTPASSWD_SKIP);
	assert_int_equal(parse("# alice:" ALICE, u, h), HTPASSWD_SKIP);
	assert_int_equal(parse("no colon", u, h), HTPASSWD_BAD);
	assert_int_equal(parse(":" ALICE, u, h), HTPASSWD_BAD);
	assert_int_equal(parse("alice:", u, h), HTPASSWD_BAD);
	assert_int_equal(parse("al\tice:" ALICE, u, h), HTPASSWD_BAD);
}

static void test_verify(void **state)
{
	(void)state;
	assert_true(htpasswd_verify(ALICE, "correct horse"));
	assert_true(htpasswd_verify(BOB, "p:with:colons"));
	/* wrong passwords: the same-length comparison path, not an early exit */
	assert_false(htpasswd_verify(ALICE, "correct horsE"));
	assert_false(htpasswd_verify(ALICE, "correct horse "));
	assert_false(htpasswd_verify(ALICE, ""));
	assert_false(htpasswd_verify(BOB, "correct horse"));
	/* a damaged hash or another scheme never verifies */
	assert_false(htpasswd_verify("$2y$04$go3h0eNji58wIen2/S7fa.", "correct horse"));
	assert_false(htpasswd_verify("$apr1$g.FQ1uqD$awXwboPVkGssScRtRMAXN/", "x"));
	assert_false(htpasswd_verify("", ""));
}

/* A line made by the htpasswd tool now, when it is installed. */
static void test_verify_tool(void **state)
{
	(void)state;
	FILE *p = popen("htpasswd -nbB -C 4 tool 'Tool pw 42' 2>/dev/null", "r");
	char line[256] = "";
	if (!p || !fgets(line, sizeof line, p)) {
		if (p)
			pclose(p);
		skip();
	}
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	char *u = NULL, *h = NULL;
	assert_int_equal(htpasswd_parse_line(line, &u, &h), HTPASSWD_BCRYPT);
	assert_string_equal(u, "tool");
	assert_true(htpasswd_verify(h, "Tool pw 42"));
	assert_false(htpasswd_verify(h, "Tool pw 43"));
}

static void test_basic(void **state)
{
	(void)state;
	char u[AUTH_USER_MAX], p[64];
	assert_int_equal(auth_basic_parse("Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==", u, sizeof u, p, sizeof p), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "correct horse");
	/* scheme case-insensitive, padding optional */
	assert_int_equal(auth_basic_parse("basic YWxpY2U6Y29ycmVjdCBob3JzZQ", u, sizeof u, p, sizeof p), 0);
	assert_string_equal(p, "correct horse");
	/* the password keeps its colons: only the first one splits */
	assert_int_equal(auth_basic_parse("Basic Ym9iOnA6d2l0aDpjb2xvbnM=", u, sizeof u, p, sizeof p), 0);
	assert_string_equal(u, "bob");
	assert_string_equal(p, "p:with:colons");
	/* ":" — what clients without credentials send */
	assert_int_equal(auth_basic_parse("Basic Og==", u, sizeof u, p, sizeof p), 0);
	assert_string_equal(u, "");
	assert_string_equal(p, "");
	assert_int_equal(auth_basic_parse("Bearer abc", u, sizeof u, p, sizeof p), -EINVAL);
	assert_int_equal(auth_basic_parse("Basic", u, sizeof u, p, sizeof p), -EINVAL);
	assert_int_equal(auth_basic_parse("Basic !!!!", u, sizeof u, p, sizeof p), -EINVAL);
	assert_int_equal(auth_basic_parse("Basic YWxpY2U=", u, sizeof u, p, sizeof p), -EINVAL); /* no colon */
	assert_int_equal(auth_basic_parse("Basic YQ", u, 2, p, sizeof p), -EINVAL);
	/* "a\0b:c" and "a\nb:c": a NUL or control character is refused */
	assert_int_equal(auth_basic_parse("Basic YQBiOmM=", u, sizeof u, p, sizeof p), -EINVAL);
	assert_int_equal(auth_basic_parse("Basic YQpiOmM=", u, sizeof u, p, sizeof p), -EINVAL);
	/* a password longer than the buffer */
	assert_int_equal(auth_basic_parse("Basic YTpiYmJiYmJiYmJi", u, sizeof u, p, 4), -EINVAL);
	/* a header longer than any credentials we take */
	size_t n = 5000;
	char *big = malloc(n + 8);
	assert_non_null(big);
	memcpy(big, "Basic ", 6);
	memset(big + 6, 'Q', n);
	big[n + 6] = '\0';
	assert_int_equal(auth_basic_parse(big, u, sizeof u, p, sizeof p), -EINVAL);
	free(big);
	assert_int_equal(auth_basic_parse(NULL, u, sizeof u, p, sizeof p), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_verify_tool),
		cmocka_unit_test(test_basic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
