/* Unit tests for config.c: registry:2 config.yml files as operators write
 * them (the shared example loads unchanged), defaults, durations, and the
 * messages a user gets for mistakes (they name the key and the line). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <regfs/config.h>

/* /work/shared/examples/registry-config.yml, verbatim: also loaded from disk
 * below when the tree has it (REGFS_SHARED_EXAMPLES from meson). */
static const char example[] =
	"version: 0.1\n"
	"log:\n"
	"  level: info\n"
	"  formatter: text\n"
	"\n"
	"storage:\n"
	"  s3:\n"
	"    accesskey: videopick\n"
	"    secretkey: secure_minio_password\n"
	"    region: us-east-1\n"
	"    regionendpoint: http://videopick-minio:9000\n"
	"    bucket: docker-registry\n"
	"    encrypt: false\n"
	"    secure: false\n"
	"    v4auth: true\n"
	"    rootdirectory: /\n"
	"\n"
	"  delete:\n"
	"    enabled: true\n"
	"\n"
	"  cache:\n"
	"    blobdescriptor: inmemory\n"
	"\n"
	"http:\n"
	"  addr: 0.0.0.0:5000\n"
	"  headers:\n"
	"    X-Content-Type-Options: [nosniff]\n"
	"\n"
	"health:\n"
	"  storagedriver:\n"
	"    enabled: true\n"
	"    interval: 10s\n"
	"    threshold: 3\n";

static int clear_env(void **state)
{
	(void)state;
	unsetenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
	unsetenv("REGISTRY_HTTP_ADDR");
	unsetenv("REGISTRY_LOG_LEVEL");
	unsetenv("REGISTRY_STORAGE_DELETE_ENABLED");
	unsetenv("REGISTRY_STORAGE_S3_SECRETKEY");
	return 0;
}

static void check_example(const struct regfs_config *c)
{
	assert_string_equal(c->version, "0.1");
	assert_int_equal(c->log_level, REGFS_LOG_INFO);
	assert_false(c->log_json);
	assert_int_equal(c->storage_type, REGFS_STORAGE_S3);
	assert_string_equal(c->s3.accesskey, "videopick");
	assert_string_equal(c->s3.secretkey, "secure_minio_password");
	assert_string_equal(c->s3.region, "us-east-1");
	assert_string_equal(c->s3.regionendpoint, "http://videopick-minio:9000");
	assert_string_equal(c->s3.bucket, "docker-registry");
	assert_string_equal(c->s3.rootdirectory, "/");
	assert_false(c->s3.encrypt);
	assert_false(c->s3.secure);
	assert_true(c->s3.v4auth);
	assert_false(c->s3.skipverify);
	assert_true(c->s3.forcepathstyle); /* regionendpoint set */
	assert_int_equal(c->s3.chunksize, 10 * 1024 * 1024);
	assert_true(c->delete_enabled);
	assert_string_equal(c->http_addr, "0.0.0.0:5000");
	assert_int_equal(c->n_headers, 1);
	assert_string_equal(c->headers[0].name, "X-Content-Type-Options");
	assert_int_equal(c->headers[0].n_values, 1);
	assert_string_equal(c->headers[0].values[0], "nosniff");
	assert_true(c->health_storage.enabled);
	assert_int_equal(c->health_storage.interval_s, 10);
	assert_int_equal(c->health_storage.threshold, 3);
	assert_int_equal(c->warnings, 0);
}

/* Defaults, then y parsed on top; a parse error fails the test. */
static void parse_ok(const char *y, struct regfs_config *c)
{
	struct regfs_err err = {0};
	regfs_config_defaults(c, NULL);
	if (regfs_config_parse(y, strlen(y), c, &err) != 0)
		fail_msg("%s", err.msg);
}

static void test_example(void **state)
{
	(void)state;
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	if (regfs_config_parse(example, strlen(example), &c, &err) != 0)
		fail_msg("%s", err.msg);
	check_example(&c);
	regfs_config_free(&c);

#ifdef REGFS_SHARED_EXAMPLES
	const char *path = REGFS_SHARED_EXAMPLES "/registry-config.yml";
	if (access(path, R_OK) == 0) {
		regfs_config_defaults(&c, NULL);
		if (regfs_config_load(path, &c, &err) != 0)
			fail_msg("%s", err.msg);
		check_example(&c);
		regfs_config_free(&c);
	}
#endif
}

static void test_defaults(void **state)
{
	(void)state;
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_parse("", 0, &c, &err), 0);
	assert_int_equal(c.storage_type, REGFS_STORAGE_FILESYSTEM);
	assert_string_equal(c.fs_rootdirectory, "/var/lib/registry");
	assert_string_equal(c.http_addr, ":5000");
	assert_false(c.delete_enabled);
	assert_false(c.redirect_disable);
	assert_true(c.uploadpurging.enabled);
	assert_int_equal(c.uploadpurging.age_s, 168 * 3600);
	assert_int_equal(c.uploadpurging.interval_s, 24 * 3600);
	assert_false(c.uploadpurging.dryrun);
	assert_false(c.gc.enabled);
	assert_int_equal(c.gc.interval_s, 3600);
	assert_int_equal(c.gc.delay_s, 3600);
	assert_false(c.health_storage.enabled);
	assert_int_equal(c.health_storage.interval_s, 10);
	assert_int_equal(c.health_storage.threshold, 1);
	assert_int_equal(c.log_level, REGFS_LOG_INFO);
	assert_null(c.http_host);
	assert_null(c.tls_certificate);
	assert_int_equal(c.n_headers, 0);
	regfs_config_free(&c);

	/* the no-config serve */
	regfs_config_defaults(&c, "/tmp/x");
	assert_string_equal(c.fs_rootdirectory, "/tmp/x");
	assert_string_equal(c.http_addr, "127.0.0.1:5000");
	regfs_config_free(&c);

	/* s3 defaults */
	const char *y = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n";
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_parse(y, strlen(y), &c, &err), 0);
	assert_int_equal(c.storage_type, REGFS_STORAGE_S3);
	assert_string_equal(c.s3.region, "us-east-1");
	assert_true(c.s3.secure);
	assert_true(c.s3.v4auth);
	assert_false(c.s3.forcepathstyle); /* AWS: virtual-hosted */
	assert_null(c.s3.regionendpoint);
	assert_null(c.s3.accesskey);
	assert_int_equal(c.s3.chunksize, 10485760);
	assert_int_equal(c.s3.multipartcopythresholdsize, 33554432);
	assert_int_equal(c.s3.multipartcopychunksize, 33554432);
	regfs_config_free(&c);
}

static void test_full(void **state)
{
	(void)state;
	const char *y =
		"version: 0.1\n"
		"log:\n  level: debug\n  formatter: logstash\n  fields:\n    service: registry\n"
		"  accesslog:\n    disabled: true\n"
		"storage:\n"
		"  filesystem:\n    rootdirectory: /srv/reg\n"
		"  delete:\n    enabled: yes\n"
		"  redirect:\n    disable: On\n"
		"  maintenance:\n    uploadpurging:\n      enabled: false\n      age: 1h30m\n"
		"      interval: 300ms\n      dryrun: TRUE\n    readonly:\n      enabled: false\n"
		"  cache:\n    blobdescriptor: redis\n"
		"regfs:\n  gc:\n    enabled: true\n    interval: 15m\n    delay: 2h\n    deleteuntagged: true\n"
		"http:\n  addr: :5001\n  host: https://reg.example.com\n  secret: s3cret\n"
		"  headers:\n    X-A: [a, b]\n    X-B:\n      - c\n"
		"  tls:\n    certificate: /c.pem\n    key: /k.pem\n  debug:\n    addr: :5002\n"
		"  http2:\n    disabled: false\n"
		"notifications:\n  endpoints: []\n"
		"auth:\n  htpasswd:\n    realm: x\n    path: /p\n";
	struct regfs_config c;
	parse_ok(y, &c);
	assert_int_equal(c.log_level, REGFS_LOG_DEBUG);
	assert_true(c.log_json);
	assert_int_equal(c.storage_type, REGFS_STORAGE_FILESYSTEM);
	assert_string_equal(c.fs_rootdirectory, "/srv/reg");
	assert_true(c.delete_enabled);
	assert_true(c.redirect_disable);
	assert_false(c.uploadpurging.enabled);
	assert_int_equal(c.uploadpurging.age_s, 5400);
	assert_int_equal(c.uploadpurging.interval_s, 1);
	assert_true(c.uploadpurging.dryrun);
	assert_true(c.gc.enabled);
	assert_int_equal(c.gc.interval_s, 900);
	assert_int_equal(c.gc.delay_s, 7200);
	assert_true(c.gc.deleteuntagged);
	assert_string_equal(c.http_addr, ":5001");
	assert_string_equal(c.http_host, "https://reg.example.com");
	assert_int_equal(c.n_headers, 2);
	assert_string_equal(c.headers[0].name, "X-A");
	assert_int_equal(c.headers[0].n_values, 2);
	assert_string_equal(c.headers[0].values[1], "b");
	assert_string_equal(c.headers[1].values[0], "c");
	assert_string_equal(c.tls_certificate, "/c.pem");
	assert_string_equal(c.tls_key, "/k.pem");
	assert_int_equal(c.warnings, 0); /* known-but-unsupported sections are not "unknown" */
	regfs_config_free(&c);
}

static void test_durations(void **state)
{
	(void)state;
	static const struct { const char *s; int64_t want; } ok[] = {
		{"10s", 10}, {"1m30s", 90}, {"168h", 604800}, {"24h", 86400}, {"300ms", 1},
		{"0", 0}, {"0s", 0}, {"1.5h", 5400}, {"2h45m10s", 9910}, {"1000000000", 1},
		{"5000000000", 5}, {"1500000000", 2}, {"90m", 5400}, {"1us", 1}, {"2000ms", 2},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t got = -1;
		if (regfs_duration_parse(ok[i].s, &got) != 0 || got != ok[i].want)
			fail_msg("duration \"%s\": got %lld, want %lld", ok[i].s, (long long)got,
				 (long long)ok[i].want);
	}
	static const char *const bad[] = {"", "s", "10x", "-1s", "1.2.3s", "h1", "1h 2m", "ten", ".s"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t got;
		if (regfs_duration_parse(bad[i], &got) != -EINVAL)
			fail_msg("duration \"%s\" accepted", bad[i]);
	}
	int64_t got;
	assert_int_equal(regfs_duration_parse("", &got), -EINVAL);

	uint64_t b;
	assert_int_equal(regfs_size_parse("10485760", &b), 0);
	assert_int_equal(b, 10485760);
	assert_int_equal(regfs_size_parse("10MiB", &b), 0);
	assert_int_equal(b, 10485760);
	assert_int_equal(regfs_size_parse("5MB", &b), 0);
	assert_int_equal(b, 5000000);
	assert_int_equal(regfs_size_parse("1GiB", &b), 0);
	assert_int_equal(b, 1073741824ull);
	assert_int_equal(regfs_size_parse("ten", &b), -EINVAL);
	assert_int_equal(regfs_size_parse("-5", &b), -EINVAL);
	assert_int_equal(regfs_size_parse("5 parsecs", &b), -EINVAL);
}

/* Parses `y` expecting -EINVAL with every needle in the message. */
static void bad(const char *y, const char *n1, const char *n2)
{
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	int r = regfs_config_parse(y, strlen(y), &c, &err);
	regfs_config_free(&c);
	if (r != -EINVAL)
		fail_msg("expected -EINVAL for:\n%s\ngot %d", y, r);
	if (!strstr(err.msg, n1) || (n2 && !strstr(err.msg, n2)))
		fail_msg("message \"%s\" lacks \"%s\"/\"%s\"", err.msg, n1, n2 ? n2 : "");
}

static void test_bad_values(void **state)
{
	(void)state;
	bad("version: 0.1\nstorage:\n  delete:\n    enabled: maybe\n",
	    "config.yml line 4: storage.delete.enabled: expected true or false, got \"maybe\"", NULL);
	bad("log:\n  level: loud\n", "line 2: log.level", "\"loud\"");
	bad("log:\n  formatter: xml\n", "log.formatter", "text, json or logstash");
	bad("health:\n  storagedriver:\n    interval: soon\n", "line 3: health.storagedriver.interval", "duration");
	bad("health:\n  storagedriver:\n    threshold: -3\n", "health.storagedriver.threshold", "integer");
	bad("storage:\n  s3:\n    bucket: b\n    chunksize: 1048576\n", "storage.s3.chunksize", "5 MiB");
	bad("storage:\n  s3:\n    bucket: b\n    chunksize: lots\n", "line 4: storage.s3.chunksize", "size");
	bad("storage:\n  s3:\n    region: x\n", "storage.s3.bucket", "required");
	bad("storage:\n  inmemory:\n", "storage.inmemory", "not supported");
	bad("storage:\n  azure:\n    accountname: x\n", "storage.azure", "not supported");
	bad("storage:\n  flesystem:\n    rootdirectory: /x\n", "unknown storage driver \"flesystem\"", NULL);
	bad("http:\n  addr: [a, b]\n", "http.addr", "single value");
	bad("http: 5\n", "http", "section");
	bad("http:\n  headers:\n    X-A: {a: b}\n", "http.headers.X-A", "list");
	bad("storage:\n  delete:\n    enabled: true\n  delete:\n    enabled: false\n", "defined twice", "line 2");
	bad("log: [unclosed\n", "invalid YAML", NULL);
	bad("storage:\n  filesystem:\n    rootdirectory: ''\n", "rootdirectory", "empty");
	bad("regfs:\n  layerindex:\n    workers: 0\n", "regfs.layerindex.workers", "between 1 and 64");
	bad("regfs:\n  layerindex:\n    maxqueue: 0\n", "regfs.layerindex.maxqueue", "at least 1");
	bad("regfs:\n  layerindex:\n    maxsize: huge\n", "regfs.layerindex.maxsize", "size");
}

/* http.tls: minimumtls, clientcas (a list), clientauth and its default,
 * which depends on clientcas as in distribution; mistakes name the key. */
static void test_tls(void **state)
{
	(void)state;
	struct regfs_config c;
	const char *tls = "http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n";
	parse_ok(tls, &c);
	assert_int_equal(regfs_tls_min_version(&c), 2);
	assert_int_equal(c.tls_clientauth, REGFS_TLS_NOCLIENTCERT);
	assert_int_equal(c.tls_clientcas.n, 0);
	regfs_config_free(&c);

	char y[512];
	snprintf(y, sizeof y, "%s    minimumtls: TLS1.3\n    clientcas:\n      - /a.pem\n      - /b.pem\n", tls);
	parse_ok(y, &c);
	assert_int_equal(regfs_tls_min_version(&c), 3);
	assert_int_equal(c.tls_clientcas.n, 2);
	assert_string_equal(c.tls_clientcas.v[1], "/b.pem");
	assert_int_equal(c.tls_clientauth, REGFS_TLS_REQUIRE_AND_VERIFY);
	regfs_config_free(&c);

	snprintf(y, sizeof y, "%s    clientcas: [/a.pem]\n    clientauth: verify-client-cert-if-given\n", tls);
	parse_ok(y, &c);
	assert_int_equal(c.tls_clientauth, REGFS_TLS_VERIFY_IF_GIVEN);
	regfs_config_free(&c);
	snprintf(y, sizeof y, "%s    clientauth: require-any-client-cert\n", tls);
	parse_ok(y, &c);
	assert_int_equal(c.tls_clientauth, REGFS_TLS_REQUIRE_ANY);
	regfs_config_free(&c);

	snprintf(y, sizeof y, "%s    minimumtls: tls1.4\n", tls);
	bad(y, "http.tls.minimumtls", "\"tls1.4\"");
	snprintf(y, sizeof y, "%s    clientauth: always\n", tls);
	bad(y, "http.tls.clientauth", "\"always\"");
	snprintf(y, sizeof y, "%s    clientauth: require-and-verify-client-cert\n", tls);
	bad(y, "http.tls.clientauth", "needs http.tls.clientcas");
	snprintf(y, sizeof y, "%s    clientcas: /a.pem\n", tls);
	bad(y, "line 5: http.tls.clientcas", "list");
	bad("http:\n  tls:\n    clientcas: [/a.pem]\n", "clientcas", "http.tls.certificate");

	/* the scalar keys have their environment overrides, checked the same way */
	setenv("REGISTRY_HTTP_TLS_MINIMUMTLS", "tls1.3", 1);
	parse_ok(tls, &c);
	assert_int_equal(regfs_tls_min_version(&c), 3);
	regfs_config_free(&c);
	setenv("REGISTRY_HTTP_TLS_MINIMUMTLS", "ssl3", 1);
	bad(tls, "http.tls.minimumtls", "\"ssl3\"");
	unsetenv("REGISTRY_HTTP_TLS_MINIMUMTLS");
}

/* regfs.layerindex: defaults (off) and every key. */
static void test_layerindex(void **state)
{
	(void)state;
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_parse("", 0, &c, &err), 0);
	assert_false(c.layerindex.enabled);
	assert_int_equal(c.layerindex.workers, 1);
	assert_int_equal(c.layerindex.maxqueue, 1000);
	assert_int_equal(c.layerindex.rescan_s, 60);
	assert_true(c.layerindex.maxsize == 8192ull << 20);
	regfs_config_free(&c);
	static const char y[] = "regfs:\n  layerindex:\n    enabled: true\n    workers: 3\n"
				"    maxsize: 1GiB\n    maxqueue: 50\n    rescan: 5m\n";
	regfs_config_defaults(&c, NULL);
	if (regfs_config_parse(y, strlen(y), &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(c.layerindex.enabled);
	assert_int_equal(c.layerindex.workers, 3);
	assert_true(c.layerindex.maxsize == 1ull << 30);
	assert_int_equal(c.layerindex.maxqueue, 50);
	assert_int_equal(c.layerindex.rescan_s, 300);
	assert_int_equal(c.warnings, 0);
	regfs_config_free(&c);
}

/* regfs.limits: the defaults docs/config.md gives, every key, and the
 * values that cannot work. */
static void test_limits(void **state)
{
	(void)state;
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_parse("", 0, &c, &err), 0);
	assert_true(c.limits.manifestsize == 4ull << 20);
	assert_int_equal(c.limits.jsondepth, 64);
	assert_int_equal(c.limits.headers, 100);
	assert_true(c.limits.headersize == 16 << 10);
	assert_true(c.limits.requestline == 8 << 10);
	assert_true(c.limits.uploadsize == 0);
	assert_int_equal(c.limits.uploads, 512);
	assert_int_equal(c.limits.uploadsperclient, 128);
	assert_int_equal(c.limits.connsperclient, 256);
	assert_int_equal(c.limits.requesttimeout_s, 30);
	assert_int_equal(c.limits.idletimeout_s, 120);
	assert_int_equal(c.limits.largereads, 64);
	regfs_config_free(&c);
	static const char y[] = "regfs:\n  limits:\n    manifestsize: 1MiB\n    jsondepth: 10\n"
				"    headers: 20\n    headersize: 4KiB\n    requestline: 2KiB\n"
				"    uploadsize: 1GiB\n    uploads: 0\n    uploadsperclient: 3\n"
				"    connsperclient: 0\n    requesttimeout: 5s\n    idletimeout: 1m\n"
				"    largereads: 2\n";
	regfs_config_defaults(&c, NULL);
	if (regfs_config_parse(y, strlen(y), &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(c.limits.manifestsize == 1ull << 20);
	assert_int_equal(c.limits.jsondepth, 10);
	assert_int_equal(c.limits.headers, 20);
	assert_true(c.limits.headersize == 4 << 10);
	assert_true(c.limits.requestline == 2 << 10);
	assert_true(c.limits.uploadsize == 1ull << 30);
	assert_int_equal(c.limits.uploads, 0);
	assert_int_equal(c.limits.uploadsperclient, 3);
	assert_int_equal(c.limits.connsperclient, 0);
	assert_int_equal(c.limits.requesttimeout_s, 5);
	assert_int_equal(c.limits.idletimeout_s, 60);
	assert_int_equal(c.limits.largereads, 2);
	assert_int_equal(c.warnings, 0);
	regfs_config_free(&c);
	bad("regfs:\n  limits:\n    manifestsize: 100MiB\n", "regfs.limits.manifestsize",
	    "between 1KiB and 64MiB");
	bad("regfs:\n  limits:\n    jsondepth: 1\n", "regfs.limits.jsondepth", "between 2 and 1000");
	bad("regfs:\n  limits:\n    uploads: -1\n", "regfs.limits.uploads", "non-negative");
	bad("regfs:\n  limits:\n    largereads: 0\n", "regfs.limits.largereads", "at least 1");
	bad("regfs:\n  limits:\n    requesttimeout: 0s\n", "regfs.limits.requesttimeout", "at least 1s");
}

static void test_notifications(void **state)
{
	(void)state;
	const char *y =
		"notifications:\n  events:\n    includereferences: true\n  endpoints:\n"
		"    - name: alistener\n      disabled: false\n"
		"      url: https://my.listener.com/event\n"
		"      headers:\n        Authorization: [Bearer abc]\n        X-Two: [a, b]\n"
		"      timeout: 500ms\n      threshold: 5\n      backoff: 1m30s\n"
		"      ignoredmediatypes:\n        - application/octet-stream\n"
		"      ignore:\n        mediatypes:\n          - application/x\n"
		"        actions:\n          - pull\n"
		"    - name: second\n      url: http://127.0.0.1:1/\n      disabled: true\n";
	struct regfs_config c;
	parse_ok(y, &c);
	assert_int_equal(c.n_endpoints, 2);
	int64_t ms = 0;
	assert_int_equal(regfs_duration_parse_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(regfs_duration_parse_ms("1", &ms), 0); /* 1 ns, rounded up */
	assert_int_equal(ms, 1);
	struct regfs_notify_endpoint *e = &c.endpoints[0];
	assert_string_equal(e->name, "alistener");
	assert_string_equal(e->url, "https://my.listener.com/event");
	assert_false(e->disabled);
	assert_int_equal(e->n_headers, 2);
	assert_string_equal(e->headers[0].name, "Authorization");
	assert_string_equal(e->headers[0].values[0], "Bearer abc");
	assert_int_equal(e->headers[1].n_values, 2);
	assert_int_equal(e->timeout_ms, 500);
	assert_int_equal(e->threshold, 5);
	assert_int_equal(e->backoff_ms, 90000);
	assert_int_equal(e->n_ignored_mediatypes, 2); /* ignoredmediatypes + ignore.mediatypes */
	assert_string_equal(e->ignored_mediatypes[0], "application/octet-stream");
	assert_string_equal(e->ignored_mediatypes[1], "application/x");
	assert_int_equal(e->n_ignored_actions, 1);
	assert_string_equal(e->ignored_actions[0], "pull");
	/* the reference's defaults */
	e = &c.endpoints[1];
	assert_true(e->disabled);
	assert_int_equal(e->timeout_ms, 1000);
	assert_int_equal(e->threshold, 10);
	assert_int_equal(e->backoff_ms, 1000);
	assert_int_equal(c.warnings, 0);
	regfs_config_free(&c);

	bad("notifications:\n  endpoints:\n    - url: http://x/\n", "endpoints[0].name", "required");
	bad("notifications:\n  endpoints:\n    - name: a\n      url: ftp://x/\n",
	    "endpoints[0].url", "http://");
	bad("notifications:\n  endpoints:\n    - name: a\n      url: http://x/\n"
	    "      timeout: soon\n", "line 5: notifications.endpoints[0].timeout", "duration");
	bad("notifications:\n  endpoints:\n    - name: a\n      url: http://x/\n"
	    "    - name: a\n      url: http://y/\n", "two endpoints are named a", NULL);
	bad("notifications:\n  endpoints:\n    name: a\n", "notifications.endpoints", "list");
	bad("notifications:\n  endpoints:\n    - name: a\n      url: http://x/\n"
	    "      headers: [a]\n", "endpoints[0].headers", "map");
}

/* regfs.usage and regfs.quota (config_quota.c) */
static void test_usage_quota(void **state)
{
	(void)state;
	struct regfs_config c;
	parse_ok("", &c);
	assert_int_equal(c.usage.maxseries, 500);
	assert_int_equal(c.n_quotas, 0);
	regfs_config_free(&c);
	parse_ok("regfs:\n  usage:\n    maxseries: 7\n  quota:\n"
		 "    - repository: \"team/*\"\n      bytes: 10GiB\n      tags: 100\n"
		 "    - repository: solo\n      bytes: 1000\n      color: red\n", &c);
	assert_int_equal(c.usage.maxseries, 7);
	assert_int_equal(c.n_quotas, 2);
	assert_string_equal(c.quotas[0].repository, "team/*");
	assert_true(c.quotas[0].bytes == 10ull << 30);
	assert_int_equal(c.quotas[0].tags, 100);
	assert_string_equal(c.quotas[1].repository, "solo");
	assert_int_equal(c.quotas[1].bytes, 1000);
	assert_int_equal(c.quotas[1].tags, 0);
	assert_int_equal(c.warnings, 1); /* color */
	regfs_config_free(&c);
	bad("regfs:\n  quota:\n    - bytes: 5\n", "regfs.quota[0].repository", "required");
	bad("regfs:\n  quota:\n    - repository: a\n", "regfs.quota[0]", "bytes, tags");
	bad("regfs:\n  quota:\n    - repository: a\n      bytes: lots\n",
	    "line 4: regfs.quota[0].bytes", "size");
	bad("regfs:\n  quota:\n    - repository: a\n      tags: -1\n", "regfs.quota[0].tags",
	    "integer");
	bad("regfs:\n  quota:\n    repository: a\n", "regfs.quota", "list");
	bad("regfs:\n  usage:\n    maxseries: many\n", "regfs.usage.maxseries", NULL);
}

static void test_two_drivers(void **state)
{
	(void)state;
	bad("storage:\n  filesystem:\n    rootdirectory: /x\n  s3:\n    bucket: b\n",
	    "line 2: storage: both filesystem and s3", "exactly one");
	/* an environment variable for the other driver counts as configuring it */
	setenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/x", 1);
	bad("storage:\n  s3:\n    bucket: b\n", "exactly one", NULL);
	unsetenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	const char *y =
		"version: 0.1\n"
		"colour: blue\n"
		"log:\n  levle: debug\n"
		"storage:\n  filesystem:\n    rootdir: /x\n"
		"health:\n  storagedriver:\n    enabled: true\n    intervall: 5s\n";
	struct regfs_config c;
	parse_ok(y, &c);
	assert_int_equal(c.warnings, 4);
	assert_true(c.health_storage.enabled);
	assert_int_equal(c.health_storage.interval_s, 10);
	assert_string_equal(c.fs_rootdirectory, "/var/lib/registry");
	regfs_config_free(&c);
}

static void test_env(void **state)
{
	(void)state;
	setenv("REGISTRY_HTTP_ADDR", "127.0.0.1:6000", 1);
	setenv("REGISTRY_LOG_LEVEL", "warn", 1);
	setenv("REGISTRY_STORAGE_DELETE_ENABLED", "true", 1);
	setenv("REGISTRY_STORAGE_S3_SECRETKEY", "from-env", 1);
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	const char *y = "http:\n  addr: :5000\nstorage:\n  s3:\n    bucket: b\n    secretkey: in-file\n";
	if (regfs_config_parse(y, strlen(y), &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.http_addr, "127.0.0.1:6000");
	assert_int_equal(c.log_level, REGFS_LOG_WARN);
	assert_true(c.delete_enabled);
	assert_string_equal(c.s3.secretkey, "from-env");
	regfs_config_free(&c);

	setenv("REGISTRY_STORAGE_DELETE_ENABLED", "perhaps", 1);
	regfs_config_defaults(&c, NULL);
	regfs_err_clear(&err);
	assert_int_equal(regfs_config_parse("", 0, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "REGISTRY_STORAGE_DELETE_ENABLED"));
	regfs_config_free(&c);
	clear_env(NULL);

	setenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/env/root", 1);
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_parse("", 0, &c, &err), 0);
	assert_string_equal(c.fs_rootdirectory, "/env/root");
	regfs_config_free(&c);
	clear_env(NULL);
}

static void test_load_errors(void **state)
{
	(void)state;
	struct regfs_config c;
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_load("/nonexistent/config.yml", &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/config.yml"));
	regfs_config_free(&c);

	/* errors from a file name the file */
	char path[] = "/tmp/regfs-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *y = "storage:\n  delete:\n    enabled: 2\n";
	assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
	close(fd);
	regfs_config_defaults(&c, NULL);
	regfs_err_clear(&err);
	assert_int_equal(regfs_config_load(path, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "line 3: storage.delete.enabled"));
	regfs_config_free(&c);

	/* a file over 16 MiB is refused before it is parsed; one of exactly
	 * 16 MiB (comments) is read */
	char line[1024];
	memset(line, ' ', sizeof line);
	line[0] = '#';
	line[sizeof line - 1] = '\n';
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	for (int i = 0; i < 16 * 1024; i++)
		assert_int_equal(write(fd, line, sizeof line), (ssize_t)sizeof line);
	regfs_config_defaults(&c, NULL);
	regfs_err_clear(&err);
	assert_int_equal(regfs_config_load(path, &c, &err), 0);
	regfs_config_free(&c);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_load(path, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "larger than 16 MiB"));
	regfs_config_free(&c);
	unlink(path);
}

/* log.fields, log.accesslog, http.debug and the health check lists land in the struct. */
static void test_observability(void **state)
{
	(void)state;
	struct regfs_config c;
	parse_ok("log:\n  fields:\n    service: registry\n    zone: eu\n  accesslog:\n    disabled: true\n"
		 "http:\n  debug:\n    addr: 127.0.0.1:5001\n    prometheus:\n      enabled: true\n"
		 "health:\n  file:\n    - file: /srv/down\n      interval: 3s\n"
		 "  http:\n    - uri: http://x/\n      statuscode: 204\n      timeout: 2s\n      threshold: 4\n"
		 "  tcp:\n    - addr: 127.0.0.1:6379\n", &c);
	assert_int_equal(c.n_log_fields, 2);
	assert_string_equal(c.log_fields[0], "service");
	assert_string_equal(c.log_fields[3], "eu");
	assert_true(c.accesslog_disabled);
	assert_string_equal(c.debug_addr, "127.0.0.1:5001");
	assert_true(c.prometheus_enabled);
	assert_string_equal(c.prometheus_path, "/metrics");
	assert_int_equal(c.n_checks, 3);
	assert_int_equal(c.checks[0].kind, REGFS_CHECK_FILE);
	assert_string_equal(c.checks[0].target, "/srv/down");
	assert_int_equal(c.checks[0].interval_s, 3);
	assert_int_equal(c.checks[1].kind, REGFS_CHECK_HTTP);
	assert_int_equal(c.checks[1].statuscode, 204);
	assert_int_equal(c.checks[1].timeout_s, 2);
	assert_int_equal(c.checks[1].threshold, 4);
	assert_int_equal(c.checks[2].kind, REGFS_CHECK_TCP);
	assert_int_equal(c.checks[2].interval_s, 10);  /* defaults */
	assert_int_equal(c.checks[2].timeout_s, 5);
	assert_int_equal(c.checks[2].threshold, 1);
	assert_int_equal(c.warnings, 0);
	regfs_config_free(&c);
	bad("health:\n  http:\n    - uri: http://x/\n      statuscode: 99\n", "health.http.statuscode", "100-599");
	bad("health:\n  tcp:\n    - timeout: 1s\n", "health.tcp", "addr");
	bad("health:\n  file: /srv/down\n", "health.file", "list");
	bad("log:\n  fields: [a]\n", "log.fields", "map");
}

/* auth.token: distribution's keys; signingalgorithms as a YAML list, a
 * scalar or the environment, all stored comma-joined. */
static void test_auth_token(void **state)
{
	(void)state;
	struct regfs_config c;
	parse_ok("auth:\n  token:\n    realm: https://auth.example/token\n    service: reg\n"
		 "    issuer: iss\n    rootcertbundle: /etc/ca.pem\n    jwks: /etc/keys.json\n"
		 "    signingalgorithms:\n      - RS256\n      - EdDSA\n", &c);
	assert_string_equal(c.token.realm, "https://auth.example/token");
	assert_string_equal(c.token.service, "reg");
	assert_string_equal(c.token.issuer, "iss");
	assert_string_equal(c.token.rootcertbundle, "/etc/ca.pem");
	assert_string_equal(c.token.jwks, "/etc/keys.json");
	assert_string_equal(c.token.signingalgorithms, "RS256,EdDSA");
	regfs_config_free(&c);
	setenv("REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS", "ES256", 1);
	parse_ok("auth:\n  token:\n    realm: r\n    signingalgorithms: RS256\n", &c);
	assert_string_equal(c.token.signingalgorithms, "ES256");
	regfs_config_free(&c);
	unsetenv("REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS");
	struct regfs_err err = {0};
	regfs_config_defaults(&c, NULL);
	const char *bad = "auth:\n  token:\n    signingalgorithms:\n      - {a: b}\n";
	assert_int_equal(regfs_config_parse(bad, strlen(bad), &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "signingalgorithms"));
	regfs_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_example, clear_env),
		cmocka_unit_test_setup(test_defaults, clear_env),
		cmocka_unit_test_setup(test_full, clear_env),
		cmocka_unit_test_setup(test_auth_token, clear_env),
		cmocka_unit_test_setup(test_durations, clear_env),
		cmocka_unit_test_setup(test_bad_values, clear_env),
		cmocka_unit_test_setup(test_tls, clear_env),
		cmocka_unit_test_setup(test_notifications, clear_env),
		cmocka_unit_test_setup(test_layerindex, clear_env),
		cmocka_unit_test_setup(test_limits, clear_env),
		cmocka_unit_test_setup(test_usage_quota, clear_env),
		cmocka_unit_test_setup(test_two_drivers, clear_env),
		cmocka_unit_test_setup(test_unknown_keys, clear_env),
		cmocka_unit_test_setup(test_env, clear_env),
		cmocka_unit_test_setup(test_load_errors, clear_env),
		cmocka_unit_test_setup(test_observability, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
