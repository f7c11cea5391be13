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
#include <fcntl.h>
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
	/* another host's URL is asked of ours: it would get our credentials */
	assert_string_equal(n, "http://127.0.0.1:5000/v2/x/tags/list?last=u");
	free(n);
	n = link_next(c, "<http://127.0.0.1:5000/v2/_catalog?last=c>; rel=\"next\"");
	assert_string_equal(n, "http://127.0.0.1:5000/v2/_catalog?last=c");
	free(n);
	n = link_next(c, "<http://127.0.0.1:50001/v2/_catalog?last=c>; rel=\"next\"");
	assert_string_equal(n, "http://127.0.0.1:5000/v2/_catalog?last=c");
	free(n);
	n = link_next(c, "<file:///etc/passwd>; rel=\"next\"");
	assert_string_equal(n, "http://127.0.0.1:5000/etc/passwd");
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
	/* credentials in the URL: refused, and the message does not repeat them */
	o.url = "https://bob:hunter2@reg.example/x";
	assert_int_equal(regfs_client_new(&o, &c, &e), -EINVAL);
	assert_null(strstr(e.msg, "hunter2"));
	/* an '@' after the host is part of the path, not credentials */
	o.url = "https://reg.example/a@b";
	o.docker_config = "/nonexistent/config.json";
	assert_int_equal(regfs_client_new(&o, &c, &e), 0);
	regfs_client_free(c);

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

/* An identitytoken in auths is an identity token (sent as an OAuth2 refresh
 * token); a plain entry is not. */
static void test_docker_config_identity_token(void **state)
{
	(void)state;
	char path[] = "/tmp/regfs-test-client-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *json = "{\"auths\":{\"reg.example\":{\"auth\":\"\",\"identitytoken\":\"idt-123\"}}}";
	assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	unsetenv("REGFS_USERNAME");
	struct regfs_client_opts o = {.url = "https://reg.example", .docker_config = path};
	struct regfs_client *c = NULL;
	struct regfs_err e = {0};
	assert_int_equal(regfs_client_new(&o, &c, &e), 0);
	assert_true(c->identity);
	assert_string_equal(c->user, "<token>");
	assert_string_equal(c->pass, "idt-123");
	/* handed to a second client as resolved: the same, no file read */
	struct regfs_creds cr;
	assert_int_equal(regfs_client_creds(c, &cr), 0);
	regfs_client_free(c);
	struct regfs_client_opts o2 = {.url = "https://reg.example", .creds = &cr,
				       .docker_config = "/nonexistent/config.json"};
	assert_int_equal(regfs_client_new(&o2, &c, &e), 0);
	assert_true(c->identity);
	assert_string_equal(c->user, "<token>");
	assert_string_equal(c->pass, "idt-123");
	assert_string_equal(c->cred_source, "docker config identitytoken");
	regfs_client_free(c);
	regfs_creds_free(&cr);
	assert_null(cr.pass);
	/* a name that is a path is never run */
	fd = open(path, O_WRONLY | O_TRUNC);
	json = "{\"credsStore\":\"../x\"}";
	assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	assert_int_equal(regfs_client_new(&o, &c, &e), -EINVAL);
	assert_non_null(strstr(regfs_err_str(&e), "not a docker-credential-* name"));
	unlink(path);
}

/* bulk-manifests pages (bulk_manifests_page): canned bodies, digests computed
 * with sha256sum outside this program. */
#define D_A1 "sha256:e346432021b04179518d9614f3560ccd71354a4ee101ddcb893d6959a9d6301c" /* {"a":1}\n */
#define D_A2 "sha256:0f117a2ab60ad469a0ac81c31e1a5a9bc833e7792983400278ea770db93d0aae" /* {"a":2}\n */
#define D_E  "sha256:cda516738eb07e9a1701275e8ba725b8604fc9d27185454a98f81478abb790cf" /* {"n":"é"} */

struct seen {
	int repos, stop_at;
	char names[4][64];
	size_t n_tags[4], n_manifests[4];
	char tag0[64], tag0_digest[REGFS_DIGEST_MAX];
	int64_t tag0_pushed;
	char content[4][64];
	size_t len[4];
	bool has_content[4];
	char media0[80];
};

static int seen_cb(const struct regfs_repo_bulk *rb, void *arg)
{
	struct seen *s = arg;
	int k = s->repos++;
	if (k >= 4)
		return -E2BIG;
	snprintf(s->names[k], sizeof s->names[k], "%s", rb->name);
	s->n_tags[k] = rb->n_tags;
	s->n_manifests[k] = rb->n_manifests;
	if (k == 0 && rb->n_tags) {
		snprintf(s->tag0, sizeof s->tag0, "%s", rb->tags[0].tag);
		snprintf(s->tag0_digest, sizeof s->tag0_digest, "%s", rb->tags[0].digest);
		s->tag0_pushed = rb->tags[0].pushed;
	}
	for (size_t i = 0; i < rb->n_manifests && k == 0 && i < 4; i++) {
		s->has_content[i] = rb->manifests[i].content != NULL;
		s->len[i] = rb->manifests[i].len;
		if (rb->manifests[i].content)
			memcpy(s->content[i], rb->manifests[i].content, rb->manifests[i].len);
	}
	if (k == 0 && rb->n_manifests && rb->manifests[0].media_type)
		snprintf(s->media0, sizeof s->media0, "%s", rb->manifests[0].media_type);
	return s->stop_at && s->repos == s->stop_at ? -ECANCELED : 0;
}

static const char page_ok[] =
	"{\"repositories\":["
	"{\"name\":\"team/app\",\"tags\":[{\"tag\":\"latest\",\"digest\":\"" D_A1 "\","
	"\"pushed\":\"2026-11-28T08:00:00Z\"}],\"manifests\":["
	"{\"digest\":\"" D_A1 "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"pushed\":\"2026-11-28T08:00:00Z\",\"content\":\"{\\\"a\\\":1}\\n\"},"
	"{\"digest\":\"" D_E "\",\"pushed\":\"2026-11-28T08:00:00Z\","
	"\"content\":\"{\\\"n\\\":\\\"\xc3\xa9\\\"}\"},"
	"{\"digest\":\"" D_A2 "\",\"pushed\":\"2026-11-28T08:00:00Z\"}]},"
	"{\"name\":\"empty\",\"tags\":[],\"manifests\":[]}]}";

static void test_bulk_manifests_page(void **state)
{
	(void)state;
	struct seen s = {0};
	struct regfs_err e = {0};
	assert_int_equal(bulk_manifests_page("u", page_ok, strlen(page_ok), seen_cb, &s, &e), 0);
	assert_int_equal(s.repos, 2);
	assert_string_equal(s.names[0], "team/app");
	assert_string_equal(s.names[1], "empty");
	assert_int_equal(s.n_tags[0], 1);
	assert_string_equal(s.tag0, "latest");
	assert_string_equal(s.tag0_digest, D_A1);
	assert_int_equal(s.tag0_pushed, 1795852800); /* date -d 2026-11-28T08:00:00Z +%s */
	assert_int_equal(s.n_manifests[0], 3);
	assert_string_equal(s.media0, "application/vnd.oci.image.manifest.v1+json");
	assert_true(s.has_content[0]);
	assert_int_equal(s.len[0], 8);
	assert_memory_equal(s.content[0], "{\"a\":1}\n", 8);
	assert_true(s.has_content[1]);
	assert_memory_equal(s.content[1], "{\"n\":\"\xc3\xa9\"}", s.len[1]);
	assert_false(s.has_content[2]); /* no content: the caller fetches it by digest */
	assert_int_equal(s.n_tags[1], 0);
	assert_int_equal(s.n_manifests[1], 0);

	/* cb stops the walk: its errno comes back, no later repository is seen */
	s = (struct seen){.stop_at = 1};
	e = (struct regfs_err){0};
	assert_int_equal(bulk_manifests_page("u", page_ok, strlen(page_ok), seen_cb, &s, &e),
			 -ECANCELED);
	assert_int_equal(s.repos, 1);
}

static void test_bulk_manifests_tampered(void **state)
{
	(void)state;
	/* content of {"a":2} under the digest of {"a":1}: refused, cb never runs */
	static const char bad[] =
		"{\"repositories\":[{\"name\":\"r\",\"tags\":[],\"manifests\":["
		"{\"digest\":\"" D_A1 "\",\"content\":\"{\\\"a\\\":2}\\n\"}]}]}";
	struct seen s = {0};
	struct regfs_err e = {0};
	assert_int_equal(bulk_manifests_page("u", bad, strlen(bad), seen_cb, &s, &e), -EBADMSG);
	assert_int_equal(s.repos, 0);
	assert_non_null(strstr(e.msg, D_A1));
	assert_non_null(strstr(e.msg, D_A2)); /* says what it hashed to */

	/* not the documented shape */
	static const char *const proto[] = {
		"not json",
		"{\"repos\":[]}",
		"{\"repositories\":[{\"tags\":[]}]}",
		"{\"repositories\":[{\"name\":\"r\",\"manifests\":[{\"digest\":\"md5:x\"}]}]}",
		"{\"repositories\":[{\"name\":\"r\",\"manifests\":[{\"digest\":\"" D_A1 "\",\"content\":7}]}]}",
		"{\"repositories\":[{\"name\":\"r\",\"tags\":[{\"tag\":\"t\"}]}]}",
	};
	for (size_t i = 0; i < sizeof proto / sizeof *proto; i++) {
		s = (struct seen){0};
		e = (struct regfs_err){0};
		assert_int_equal(bulk_manifests_page("u", proto[i], strlen(proto[i]), seen_cb, &s, &e),
				 -EPROTO);
		assert_int_equal(s.repos, 0);
		assert_non_null(strstr(e.msg, "bulk-manifests"));
	}
}

/* The usage extension's answer (docs/api-extensions.md): every figure read,
 * a wrong shape refused. */
static void test_usage_parse(void **state)
{
	(void)state;
	static const char ok[] =
		"{\"stored\": 9000000000, \"referenced\": 700, \"garbage\": {\"blobs\": 10, "
		"\"manifests\": 20, \"uploads\": 30, \"total\": 60}, \"repositories\": "
		"[{\"name\": \"a\", \"tags\": 1, \"manifests\": 1, \"bytes\": 5, "
		"\"exclusive\": 5, \"shared\": 0}, {\"name\": \"b\"}]}";
	struct regfs_usage u;
	assert_int_equal(usage_parse(ok, strlen(ok), &u), 0);
	assert_int_equal(u.stored, 9000000000ull);
	assert_int_equal(u.referenced, 700);
	assert_int_equal(u.garbage_blobs, 10);
	assert_int_equal(u.garbage_manifests, 20);
	assert_int_equal(u.garbage_uploads, 30);
	assert_int_equal(u.garbage_total, 60);
	assert_int_equal(u.n_repos, 2);
	static const char *const bad[] = {
		"",
		"[]",
		"{\"stored\": 1, \"referenced\": 1}",
		"{\"stored\": -1, \"referenced\": 1, \"garbage\": {\"blobs\": 0, \"manifests\": 0, "
		"\"uploads\": 0, \"total\": 0}}",
		"{\"stored\": 1.5, \"referenced\": 1, \"garbage\": {\"blobs\": 0, \"manifests\": 0, "
		"\"uploads\": 0, \"total\": 0}}",
		"{\"stored\": 1, \"referenced\": 1, \"garbage\": {\"blobs\": 0, \"manifests\": 0, "
		"\"uploads\": 0}}",
		"{\"stored\": 1, \"referenced\": 1, \"garbage\": {\"blobs\": 0, \"manifests\": 0, "
		"\"uploads\": 0, \"total\": 0}, \"repositories\": {}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(usage_parse(bad[i], strlen(bad[i]), &u), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_basic_and_docker_config),
		cmocka_unit_test(test_docker_config_identity_token),
		cmocka_unit_test(test_bulk_manifests_page),
		cmocka_unit_test(test_bulk_manifests_tampered),
		cmocka_unit_test(test_usage_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
