/* Unit tests of the pull-through cache's configuration (lib/config_proxy.c):
 * registry:2's `proxy:` section, regfs.proxies, the REGISTRY_PROXY_*
 * environment, and the messages of every refusal (they name the key); then
 * the routing of registry/proxy.c built from such a configuration: which
 * upstream owns a name, which one a containerd ?ns= host names, the name
 * asked upstream (Docker Hub's library/), and the ?ns= rewrite. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/config.h>

#include "proxy.h"
#include "proxy_internal.h"
#include "registry.h"
#include "route.h"


static void clear_env(void)
{
	unsetenv("REGISTRY_PROXY_REMOTEURL");
	unsetenv("REGISTRY_PROXY_USERNAME");
	unsetenv("REGISTRY_PROXY_PASSWORD");
	unsetenv("REGISTRY_PROXY_TTL");
}

static void parse_ok(const char *y, struct regfs_config *c)
{
	struct regfs_err err = {0};
	regfs_config_defaults(c, "/tmp/regfs-test-proxy");
	if (regfs_config_parse(y, strlen(y), c, &err) != 0)
		fail_msg("%s\nfor:\n%s", err.msg, y);
}

/* The parse fails with -EINVAL and a message holding n1 (and n2). */
static void bad(const char *y, const char *n1, const char *n2)
{
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, "/tmp/regfs-test-proxy");
	int r = regfs_config_parse(y, strlen(y), &c, &err);
	regfs_config_free(&c);
	if (r != -EINVAL)
		fail_msg("expected -EINVAL for:\n%s\ngot %d", y, r);
	if (!strstr(err.msg, n1) || (n2 && !strstr(err.msg, n2)))
		fail_msg("message \"%s\" lacks \"%s\"/\"%s\"", err.msg, n1, n2 ? n2 : "");
}

static void test_defaults(void **state)
{
	(void)state;
	clear_env();
	struct regfs_config c;
	parse_ok("", &c);
	assert_int_equal(c.n_proxies, 0);
	assert_int_equal(c.proxycache_interval_s, 600);
	assert_int_equal(c.proxycache_minrate, 1024);
	assert_int_equal(c.proxycache_minrate_grace_s, 60);
	regfs_config_free(&c);
	parse_ok("regfs:\n  proxycache:\n    minrate: 2KiB\n    minrategrace: 2m\n", &c);
	assert_int_equal(c.proxycache_minrate, 2048);
	assert_int_equal(c.proxycache_minrate_grace_s, 120);
	regfs_config_free(&c);
	parse_ok("regfs:\n  proxycache:\n    minrate: 0\n", &c); /* no minimum */
	assert_int_equal(c.proxycache_minrate, 0);
	regfs_config_free(&c);
	parse_ok("proxy:\n", &c); /* an empty section: no cache */
	assert_int_equal(c.n_proxies, 0);
	regfs_config_free(&c);
	/* registry:2 caches only with a remoteurl: without one, a warning */
	parse_ok("proxy:\n  remoteurl: \"\"\n  username: u\n", &c);
	assert_int_equal(c.n_proxies, 0);
	assert_int_equal(c.warnings, 1);
	regfs_config_free(&c);
	parse_ok("proxy:\n  ttl: 1h\nregfs:\n  proxies:\n    - prefix: a\n"
		 "      remoteurl: http://h\n", &c);
	assert_int_equal(c.n_proxies, 1);
	assert_string_equal(c.proxies[0].prefix, "a");
	regfs_config_free(&c);
}

/* registry:2's form, as its documentation writes it */
static void test_registry2(void **state)
{
	(void)state;
	clear_env();
	struct regfs_config c;
	parse_ok("proxy:\n  remoteurl: https://registry-1.docker.io/\n  username: u\n"
		 "  password: secret\n  ttl: 72h\n", &c);
	assert_int_equal(c.n_proxies, 1);
	assert_string_equal(c.proxies[0].prefix, "");
	assert_string_equal(c.proxies[0].remoteurl, "https://registry-1.docker.io");
	assert_string_equal(c.proxies[0].username, "u");
	assert_string_equal(c.proxies[0].password, "secret");
	assert_int_equal(c.proxies[0].ttl_s, 72 * 3600);
	assert_int_equal(c.proxies[0].revalidate_s, 60);
	assert_int_equal(c.warnings, 0);
	regfs_config_free(&c);
	/* a prefix makes no sense there (warned, ignored); our other keys are taken */
	parse_ok("proxy:\n  remoteurl: http://up:5000\n  prefix: x\n  color: red\n"
		 "  ns: [docker.io]\n  revalidate: 5s\n", &c);
	assert_string_equal(c.proxies[0].prefix, "");
	assert_null(c.proxies[0].username);
	assert_int_equal(c.proxies[0].ttl_s, 168 * 3600);
	assert_int_equal(c.proxies[0].n_ns, 1);
	assert_int_equal(c.proxies[0].revalidate_s, 5);
	assert_int_equal(c.warnings, 2);
	regfs_config_free(&c);
}

static void test_regfs_proxies(void **state)
{
	(void)state;
	clear_env();
	struct regfs_config c;
	parse_ok("regfs:\n  proxycache:\n    interval: 30s\n  proxies:\n"
		 "    - prefix: dockerhub/\n      remoteurl: https://registry-1.docker.io\n"
		 "      ns: [docker.io, mirror.example]\n      revalidate: 5m\n      ttl: 0\n"
		 "    - prefix: cache/quay\n      remoteurl: http://127.0.0.1:5001\n"
		 "      ns: quay.io\n      cacert: /etc/ca.pem\n      username: a\n", &c);
	assert_int_equal(c.proxycache_interval_s, 30);
	assert_int_equal(c.n_proxies, 2);
	assert_string_equal(c.proxies[0].prefix, "dockerhub");
	assert_int_equal(c.proxies[0].n_ns, 2);
	assert_string_equal(c.proxies[0].ns[1], "mirror.example");
	assert_int_equal(c.proxies[0].revalidate_s, 300);
	assert_int_equal(c.proxies[0].ttl_s, 0);
	assert_string_equal(c.proxies[1].prefix, "cache/quay");
	assert_int_equal(c.proxies[1].n_ns, 1);
	assert_string_equal(c.proxies[1].ns[0], "quay.io");
	assert_string_equal(c.proxies[1].cacert, "/etc/ca.pem");
	assert_string_equal(c.proxies[1].username, "a");
	assert_null(c.proxies[1].password);
	assert_int_equal(c.warnings, 0);
	regfs_config_free(&c);
	/* keys left empty (a template's unset values) are not set */
	parse_ok("regfs:\n  proxies:\n    - prefix: a\n      remoteurl: http://h\n"
		 "      username:\n      password: \"\"\n      ns:\n      cacert:\n", &c);
	assert_null(c.proxies[0].username);
	assert_null(c.proxies[0].password);
	assert_null(c.proxies[0].cacert);
	assert_int_equal(c.proxies[0].n_ns, 0);
	regfs_config_free(&c);
}

static void test_refusals(void **state)
{
	(void)state;
	clear_env();
	const char *up = "      remoteurl: http://up:5000\n";
	char y[512];
	bad("proxy:\n  remoteurl: http://a:1\nregfs:\n  proxies:\n    - prefix: b\n"
	    "      remoteurl: http://b:1\n", "proxy and regfs.proxies", NULL);
	bad("proxy:\n  remoteurl: ftp://x\n", "proxy.remoteurl", "http");
	bad("proxy:\n  remoteurl: https://\n", "proxy.remoteurl", NULL);
	bad("proxy:\n  remoteurl: https://h/v2/x\n", "proxy.remoteurl", "no path");
	bad("proxy:\n  remoteurl: https://u:p@h\n", "proxy.remoteurl", NULL);
	bad("proxy:\n  remoteurl: http://h\n  ttl: soon\n", "line 3: proxy.ttl", "duration");
	bad("proxy: [a]\n", "proxy", "section");
	bad("regfs:\n  proxies:\n    prefix: a\n", "regfs.proxies", "list");
	bad("regfs:\n  proxies:\n    - remoteurl: http://h\n", "regfs.proxies[0].prefix",
	    "required");
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: Docker\n%s", up);
	bad(y, "regfs.proxies[0].prefix", "\"Docker\"");
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a//b\n%s", up);
	bad(y, "regfs.proxies[0].prefix", NULL);
	bad("regfs:\n  proxies:\n    - prefix: a\n", "regfs.proxies[0].remoteurl", "required");
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a\n%s    - prefix: a/b\n%s",
		 up, up);
	bad(y, "regfs.proxies[1].prefix \"a/b\" lies inside regfs.proxies[0].prefix \"a\"",
	    NULL);
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a/b\n%s    - prefix: a\n%s",
		 up, up);
	bad(y, "regfs.proxies[0].prefix \"a/b\" lies inside regfs.proxies[1].prefix \"a\"",
	    NULL);
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a\n%s    - prefix: a/\n%s",
		 up, up);
	bad(y, "duplicates", NULL);
	/* "ab" is not inside "a" */
	struct regfs_config c;
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a\n%s    - prefix: ab\n%s",
		 up, up);
	parse_ok(y, &c);
	regfs_config_free(&c);
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a\n%s      ns: [a/b]\n", up);
	bad(y, "regfs.proxies[0].ns", "host");
	snprintf(y, sizeof y, "regfs:\n  proxies:\n    - prefix: a\n%s      revalidate: x\n", up);
	bad(y, "regfs.proxies[0].revalidate", "duration");
	bad("regfs:\n  proxycache:\n    interval: 0s\n", "regfs.proxycache.interval", NULL);
	/* no message carries a password */
	struct regfs_err err = {0};
	const char *pw = "proxy:\n  remoteurl: nope\n  password: hunter2\n";
	regfs_config_defaults(&c, "/tmp/regfs-test-proxy");
	assert_int_equal(regfs_config_parse(pw, strlen(pw), &c, &err), -EINVAL);
	assert_null(strstr(err.msg, "hunter2"));
	regfs_config_free(&c);
}

/* REGISTRY_PROXY_* as registry:2 reads them: they win over the file and
 * create the section when the file has none */
/* A remoteurl holding credentials is refused without repeating them. */
static void test_url_creds(void **state)
{
	(void)state;
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, "/tmp/regfs-test-proxy");
	const char *y = "proxy:\n  remoteurl: https://bob:S3cretPw@h\n";
	assert_int_equal(regfs_config_parse(y, strlen(y), &c, &err), -EINVAL);
	regfs_config_free(&c);
	assert_non_null(strstr(err.msg, "credentials in the URL"));
	assert_null(strstr(err.msg, "S3cretPw"));
}

static void test_env(void **state)
{
	(void)state;
	clear_env();
	struct regfs_config c;
	setenv("REGISTRY_PROXY_REMOTEURL", "https://env.example", 1);
	setenv("REGISTRY_PROXY_PASSWORD", "pw", 1);
	parse_ok("", &c);
	assert_int_equal(c.n_proxies, 1);
	assert_string_equal(c.proxies[0].prefix, "");
	assert_string_equal(c.proxies[0].remoteurl, "https://env.example");
	assert_string_equal(c.proxies[0].password, "pw");
	regfs_config_free(&c);
	setenv("REGISTRY_PROXY_TTL", "1h", 1);
	parse_ok("proxy:\n  remoteurl: http://file:1\n  username: f\n", &c);
	assert_int_equal(c.n_proxies, 1);
	assert_string_equal(c.proxies[0].remoteurl, "https://env.example");
	assert_string_equal(c.proxies[0].username, "f");
	assert_int_equal(c.proxies[0].ttl_s, 3600);
	regfs_config_free(&c);
	/* the environment's proxy: with regfs.proxies is the same conflict */
	bad("regfs:\n  proxies:\n    - prefix: a\n      remoteurl: http://h\n",
	    "proxy and regfs.proxies", NULL);
	setenv("REGISTRY_PROXY_TTL", "later", 1);
	bad("", "REGISTRY_PROXY_TTL", "duration");
	clear_env();
}

/* A registry with just the configuration and the upstreams (no storage:
 * nothing here touches it, and proxies_open contacts no upstream). */
static void open_proxies(const char *y, struct regfs_config *c, struct registry *r)
{
	parse_ok(y, c);
	memset(r, 0, sizeof *r);
	r->cfg = c;
	struct regfs_err err = {0};
	if (proxies_open(r, &err) != 0)
		fail_msg("proxies_open: %s", err.msg);
}

static void close_proxies(struct regfs_config *c, struct registry *r)
{
	proxies_close(r);
	assert_null(r->proxies);
	regfs_config_free(c);
}

static void test_proxy_of(void **state)
{
	(void)state;
	clear_env();
	struct regfs_config c;
	struct registry r;
	open_proxies("regfs:\n  proxies:\n"
		     "    - prefix: hub\n      remoteurl: https://registry-1.docker.io\n"
		     "      revalidate: 10m\n      ttl: 2m\n"
		     "    - prefix: cache/quay\n      remoteurl: https://quay.io:443/\n"
		     "      ns: [mirror.example:5000]\n", &c, &r);
	assert_non_null(r.proxies);
	assert_int_equal(r.proxies->n, 2);
	const struct proxy *hub = &r.proxies->v[0], *quay = &r.proxies->v[1];
	assert_string_equal(hub->host, "registry-1.docker.io");
	assert_string_equal(quay->host, "quay.io:443");
	assert_string_equal(quay->remoteurl, "https://quay.io:443");
	assert_int_equal(hub->revalidate_s, 120); /* bounded by ttl */
	assert_int_equal(quay->revalidate_s, 60);
	assert_non_null(hub->up);
	const char *un = NULL;
	assert_ptr_equal(proxy_of(&r, "hub/library/alpine", &un), hub);
	assert_string_equal(un, "library/alpine");
	assert_ptr_equal(proxy_of(&r, "cache/quay/org/img", &un), quay);
	assert_string_equal(un, "org/img");
	assert_null(proxy_of(&r, "hub", &un));          /* the prefix alone: a local name */
	assert_null(proxy_of(&r, "hubble/x", &un));     /* a longer first component */
	assert_null(proxy_of(&r, "cache/other", &un));
	assert_null(proxy_of(&r, "team/app", &un));
	close_proxies(&c, &r);

	assert_null(proxy_ns_foreign(&r, "ghcr.io")); /* other names stay local */
	close_proxies(&c, &r);

	/* registry:2's proxy: owns every name */
	open_proxies("proxy:\n  remoteurl: https://registry-1.docker.io\n", &c, &r);
	assert_ptr_equal(proxy_of(&r, "team/app", &un), &r.proxies->v[0]);
	assert_string_equal(un, "team/app");
	/* a ?ns= naming another registry is not answered with Docker Hub's image */
	assert_ptr_equal(proxy_ns_foreign(&r, "ghcr.io"), &r.proxies->v[0]);
	assert_null(proxy_ns_foreign(&r, "docker.io"));
	assert_null(proxy_ns_foreign(&r, NULL));
	close_proxies(&c, &r);
	/* a Docker Hub mirror as the upstream: ns says which registry it is */
	open_proxies("proxy:\n  remoteurl: https://mirror.gcr.io\n  ns: [docker.io]\n", &c, &r);
	assert_null(proxy_ns_foreign(&r, "docker.io"));
	assert_ptr_equal(proxy_for_ns(&r, "index.docker.io"), &r.proxies->v[0]);
	assert_non_null(proxy_ns_foreign(&r, "quay.io"));
	close_proxies(&c, &r);

	/* a CA bundle that cannot be read: the registry does not start */
	parse_ok("regfs:\n  proxies:\n    - prefix: a\n      remoteurl: https://h\n"
		 "      cacert: /nonexistent/ca.pem\n", &c);
	memset(&r, 0, sizeof r);
	r.cfg = &c;
	struct regfs_err err = {0};
	assert_int_equal(proxies_open(&r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "regfs.proxies[0].cacert: cannot read /nonexistent/ca.pem"));
	close_proxies(&c, &r);

	/* nothing configured */
	open_proxies("", &c, &r);
	assert_null(r.proxies);
	assert_null(proxy_of(&r, "team/app", &un));
	assert_null(proxy_for_ns(&r, "docker.io"));
	close_proxies(&c, &r);
}

static void test_ns(void **state)
{
	(void)state;
	clear_env();
	struct regfs_config c;
	struct registry r;
	open_proxies("regfs:\n  proxies:\n"
		     "    - prefix: hub\n      remoteurl: https://index.docker.io\n"
		     "    - prefix: q\n      remoteurl: http://127.0.0.1:5001\n"
		     "      ns: [quay.io, Mirror.Example:5000]\n", &c, &r);
	const struct proxy *hub = &r.proxies->v[0], *q = &r.proxies->v[1];
	/* Docker Hub's names are one upstream */
	assert_ptr_equal(proxy_for_ns(&r, "docker.io"), hub);
	assert_ptr_equal(proxy_for_ns(&r, "registry-1.docker.io"), hub);
	assert_ptr_equal(proxy_for_ns(&r, "INDEX.docker.io"), hub);
	assert_ptr_equal(proxy_for_ns(&r, "127.0.0.1:5001"), q);
	assert_ptr_equal(proxy_for_ns(&r, "quay.io"), q);
	assert_ptr_equal(proxy_for_ns(&r, "mirror.example:5000"), q);
	assert_null(proxy_for_ns(&r, "mirror.example"));  /* the port is part of the host */
	assert_null(proxy_for_ns(&r, "127.0.0.1"));
	assert_null(proxy_for_ns(&r, "ghcr.io"));
	assert_null(proxy_for_ns(&r, ""));
	assert_null(proxy_for_ns(&r, NULL));

	char out[ROUTE_NAME_MAX];
	assert_int_equal(proxy_ns_rewrite(hub, "library/alpine", out, sizeof out), 0);
	assert_string_equal(out, "hub/library/alpine");
	/* "hub/" + 251 characters is 255, a name's maximum; one more does not fit */
	char lng[253];
	memset(lng, 'a', sizeof lng - 1);
	lng[251] = '\0';
	assert_int_equal(proxy_ns_rewrite(hub, lng, out, sizeof out), 0);
	assert_int_equal(strlen(out), 255);
	lng[251] = 'a';
	lng[252] = '\0';
	assert_int_equal(proxy_ns_rewrite(hub, lng, out, sizeof out), -ENAMETOOLONG);
	assert_int_equal(proxy_ns_rewrite(hub, "Alpine", out, sizeof out), -EINVAL);
	assert_int_equal(proxy_ns_rewrite(hub, "x", out, 5), -ENAMETOOLONG);

	/* Docker Hub: one-component names are official images under library/ */
	assert_true(proxy_is_dockerhub(hub));
	assert_false(proxy_is_dockerhub(q));
	assert_int_equal(proxy_upstream_name(hub, "alpine", out, sizeof out), 0);
	assert_string_equal(out, "library/alpine");
	assert_int_equal(proxy_upstream_name(hub, "bitnami/redis", out, sizeof out), 0);
	assert_string_equal(out, "bitnami/redis");
	assert_int_equal(proxy_upstream_name(q, "alpine", out, sizeof out), 0);
	assert_string_equal(out, "alpine");
	assert_int_equal(proxy_upstream_name(hub, "alpine", out, 8), -ENAMETOOLONG);
	close_proxies(&c, &r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_registry2),
		cmocka_unit_test(test_regfs_proxies),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_url_creds),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_proxy_of),
		cmocka_unit_test(test_ns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
