/* Unit tests for lib/client/ parts that need no server: WWW-Authenticate
 * parsing, Link pagination, URL normalisation, Basic headers, credentials
 * from a docker config. Everything that talks HTTP is covered by
 * tests/integration/client_api.sh against real registries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/client/internal.h"

static void test_challenge(void **state)
{
	(void)state;
	const char *h = "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
			"scope=\"repository:team/app:pull,push\",error=\"insufficient_scope\"";
	char *v = challenge_param(h, "realm");
	assert_string_equal(v, "https://auth.example/token");
	free(v);
	v = challenge_param(h, "service");
	assert_string_equal(v, "registry.example");
	free(v);
	/* The comma inside the quotes belongs to the value. */
	v = challenge_param(h, "SCOPE");
	assert_string_equal(v, "repository:team/app:pull,push");
	free(v);
	assert_null(challenge_param(h, "nonce"));
	/* Unquoted values, spaces after commas, escaped quotes. */
	v = challenge_param("Basic realm=fake, charset=\"UTF-8\"", "realm");
	assert_string_equal(v, "fake");
	free(v);
	v = challenge_param("Bearer realm=\"a\\\"b\"", "realm");
	assert_string_equal(v, "a\"b");
	free(v);
	assert_null(challenge_param("Bearer", "realm"));
}

static struct regfs_client *client(const char *url)
{
	struct regfs_client_opts o = {.url = url, .docker_config = "/nonexistent/config.json"};
	struct regfs_client *c = NULL;
	struct regfs_err e = {0};
	unsetenv("REGFS_USERNAME");
	assert_int_equal(regfs_client_new(&o, &c, &e), 0);
	return c;
}

static void test_link(void **state)
{
	(void)state;
	struct regfs_client *c = client("http://127.0.0.1:5000/");
	char *n = link_next(c, "</v2/_catalog?last=b&n=2>; rel=\"next\"");
	assert_string_equal(n, "http://127.0.0.1:5000/v2/_catalog?last=b&n=2");
	free(n);
	n = link_next(c, "<https://other/v2/x/tags/list?last=t>; rel=\"prev\", "
			 "<https://other/v2/x/tags/list?last=u>; rel=\"next\"");
	assert_string_equal(n, "https://other/v2/x/tags/list?last=u");
	free(n);
	assert_null(link_next(c, "</v2/_catalog?last=a>; rel=\"prev\""));
	assert_null(link_next(c, ""));
	regfs_client_free(c);
}

static void test_url(void **state)
{
	(void)state;
	struct regfs_client *c = client("https://reg.example:5000/v2/");
	assert_string_equal(c->url, "https://reg.example:5000");
	assert_string_equal(c->host, "reg.example:5000");
	assert_int_equal(c->timeout_s, 10);
	assert_int_equal(c->max_parallel, 16);
	regfs_client_free(c);

	struct regfs_client_opts o = {.url = "reg.example:5000"};
	struct regfs_err e = {0};
	assert_int_equal(regfs_client_new(&o, &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "http://reg.example:5000"));

	char *s = url_escape("repository:a/b:pull,push");
	assert_string_equal(s, "repository%3Aa%2Fb%3Apull%2Cpush");
	free(s);
}

static void test_basic_and_docker_config(void **state)
{
	(void)state;
	char *h = basic_header("alice", "s3cret");
	assert_string_equal(h, "Authorization: Basic YWxpY2U6czNjcmV0");
	free(h);

	char path[] = "/tmp/regfs-test-client-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	/* base64("alice:s3:cret") — a password may contain ':'. */
	const char *json = "{\"auths\":{\"other:5000\":{\"auth\":\"ZXZlOng=\"},"
			   "\"https://reg.example:5000/v1/\":{\"auth\":\"YWxpY2U6czM6Y3JldA==\"}}}";
	assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	unsetenv("REGFS_USERNAME");
	struct regfs_client_opts o = {.url = "https://reg.example:5000", .docker_config = path};
	struct regfs_client *c = NULL;
	struct regfs_err e = {0};
	assert_int_equal(regfs_client_new(&o, &c, &e), 0);
	assert_string_equal(c->user, "alice");
	assert_string_equal(c->pass, "s3:cret");
	regfs_client_free(c);

	/* Explicit credentials win over the docker config. */
	o.user = "bob";
	o.pass = "pw";
	assert_int_equal(regfs_client_new(&o, &c, &e), 0);
	assert_string_equal(c->user, "bob");
	regfs_client_free(c);

	/* No entry for this host: anonymous. */
	o = (struct regfs_client_opts){.url = "http://elsewhere:5000", .docker_config = path};
	assert_int_equal(regfs_client_new(&o, &c, &e), 0);
	assert_null(c->user);
	regfs_client_free(c);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_basic_and_docker_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
