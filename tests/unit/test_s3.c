/* Unit tests for the S3 driver's offline parts: object keys (distribution's
 * s3Path), endpoint and addressing style, config validation, credentials from
 * the environment, and the XML scanner on S3's documented response shapes.
 * The network side is tested against a real RGW by
 * tests/integration/s3_storage.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/config.h>
#include "../../lib/storage/s3_internal.h"

static struct regfs_s3_config base(void)
{
	struct regfs_s3_config c = {0};
	c.accesskey = "AK";
	c.secretkey = "SK";
	c.bucket = "docker-registry";
	c.regionendpoint = "http://videopick-minio:9000";
	return c;
}

static void key_is(const char *root, const char *path, const char *want)
{
	struct regfs_s3_config cfg = base();
	cfg.rootdirectory = (char *)root;
	struct s3_client c;
	assert_int_equal(s3_client_init(&c, &cfg, NULL), 0);
	char *k = s3_key(&c, path);
	assert_string_equal(k, want);
	free(k);
	s3_client_cleanup(&c);
}

static void test_keys(void **state)
{
	(void)state;
	key_is("/", "/docker/registry/v2/blobs", "docker/registry/v2/blobs");
	key_is("", "/docker/registry/v2/blobs", "docker/registry/v2/blobs");
	key_is(NULL, "/a", "a");
	key_is("/pfx/x/", "/docker/registry/v2/k", "pfx/x/docker/registry/v2/k");
	key_is("pfx", "/docker", "pfx/docker");
	key_is("/pfx", "/", "pfx");
	key_is("/", "/", "");
}

static void test_endpoints(void **state)
{
	(void)state;
	struct regfs_s3_config cfg = base();
	struct s3_client c;
	/* regionendpoint set: path-style, scheme from the endpoint */
	assert_int_equal(s3_client_init(&c, &cfg, NULL), 0);
	assert_string_equal(c.base_url, "http://videopick-minio:9000/docker-registry");
	assert_string_equal(c.host, "videopick-minio:9000");
	assert_string_equal(c.path_prefix, "/docker-registry");
	assert_int_equal(c.chunksize, 10 << 20);
	assert_int_equal(c.copy_threshold, 32 << 20);
	assert_string_equal(c.region, "us-east-1");
	assert_false(c.https);
	s3_client_cleanup(&c);
	/* no scheme: secure decides; the default port is left out of Host */
	cfg.regionendpoint = "minio.example:443";
	cfg.secure = true;
	assert_int_equal(s3_client_init(&c, &cfg, NULL), 0);
	assert_string_equal(c.base_url, "https://minio.example:443/docker-registry");
	assert_string_equal(c.host, "minio.example");
	assert_true(c.https);
	s3_client_cleanup(&c);
	/* AWS: virtual-hosted style */
	cfg.regionendpoint = NULL;
	cfg.region = "eu-west-1";
	assert_int_equal(s3_client_init(&c, &cfg, NULL), 0);
	assert_string_equal(c.base_url, "https://docker-registry.s3.eu-west-1.amazonaws.com");
	assert_string_equal(c.host, "docker-registry.s3.eu-west-1.amazonaws.com");
	assert_string_equal(c.path_prefix, "");
	s3_client_cleanup(&c);
	/* …unless forcepathstyle */
	cfg.forcepathstyle = true;
	assert_int_equal(s3_client_init(&c, &cfg, NULL), 0);
	assert_string_equal(c.base_url, "https://s3.eu-west-1.amazonaws.com/docker-registry");
	s3_client_cleanup(&c);
}

/* s3_client_init refuses cfg with -EINVAL and a message containing want. */
static void refused(const struct regfs_s3_config *cfg, const char *want)
{
	struct regfs_err err = {0};
	struct s3_client c;
	assert_int_equal(s3_client_init(&c, cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, want));
	s3_client_cleanup(&c);
}

/* Whether a client made from cfg uses the CA bundle at path (asserting
 * that it has no other). */
static bool has_ca_bundle(const struct regfs_s3_config *cfg, const char *path)
{
	struct s3_client c;
	assert_int_equal(s3_client_init(&c, cfg, NULL), 0);
	bool has = c.ca_bundle != NULL;
	if (has)
		assert_string_equal(c.ca_bundle, path);
	s3_client_cleanup(&c);
	return has;
}

static void test_config_errors(void **state)
{
	(void)state;
	struct regfs_s3_config cfg = base();
	struct s3_client c;
	cfg.chunksize = 1 << 20;
	refused(&cfg, "chunksize");
	cfg = base();
	cfg.bucket = NULL;
	refused(&cfg, "storage.s3.bucket");

	/* credentials from the environment when the config has none */
	cfg = base();
	cfg.accesskey = cfg.secretkey = NULL;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	refused(&cfg, "AWS_ACCESS_KEY_ID");
	setenv("AWS_ACCESS_KEY_ID", "ENVAK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSK", 1);
	assert_int_equal(s3_client_init(&c, &cfg, NULL), 0);
	assert_string_equal(c.access_key, "ENVAK");
	s3_client_cleanup(&c);
	/* AWS_CA_BUNDLE applies to https only */
	setenv("AWS_CA_BUNDLE", "/etc/ssl/ca.pem", 1);
	assert_false(has_ca_bundle(&cfg, "/etc/ssl/ca.pem"));
	cfg.regionendpoint = "https://minio:9000";
	assert_true(has_ca_bundle(&cfg, "/etc/ssl/ca.pem"));
}

static void test_xml(void **state)
{
	(void)state;
	/* ListObjectsV2's shape (S3 API reference), with a top-level <Prefix>
	 * that must not be confused with CommonPrefixes/Prefix. */
	const char *x =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><Prefix>a/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
		"<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
		"<Contents><Key>a/x&amp;y</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
		"<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size></Contents>"
		"<Contents><Key>a/z</Key><Size>0</Size></Contents>"
		"<CommonPrefixes><Prefix>a/sub/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	size_t len = strlen(x), pos = 0, n;
	const char *in;
	assert_true(s3_xml_elem(x, len, "Contents", &pos, &in, &n));
	char *k = s3_xml_text(in, n, "Key"), *e = s3_xml_text(in, n, "ETag"), *lm = s3_xml_text(in, n, "LastModified");
	assert_string_equal(k, "a/x&y");
	assert_string_equal(e, "\"fba9dede5f27731c9771645a39863328\"");
	assert_int_equal(s3_iso8601(lm), 1255369830);
	free(k);
	free(e);
	free(lm);
	assert_true(s3_xml_elem(x, len, "Contents", &pos, &in, &n));
	assert_false(s3_xml_elem(x, len, "Contents", &pos, &in, &n));
	pos = 0;
	assert_true(s3_xml_elem(x, len, "CommonPrefixes", &pos, &in, &n));
	char *p = s3_xml_text(in, n, "Prefix");
	assert_string_equal(p, "a/sub/");
	free(p);
	char *t = s3_xml_text(x, len, "NextContinuationToken");
	assert_string_equal(t, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	free(t);
	/* <KeyCount> must not match a search for <Key> */
	pos = 0;
	assert_true(s3_xml_elem(x, len, "Key", &pos, &in, &n));
	assert_int_equal(n, strlen("a/x&amp;y"));
	/* errors */
	const char *err = "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>"
			  "<BucketName>b</BucketName></Error>";
	char *code = s3_xml_text(err, strlen(err), "Code");
	assert_string_equal(code, "NoSuchBucket");
	free(code);
	assert_null(s3_xml_text(err, strlen(err), "Missing"));
	char *esc = s3_xml_escape("a<b>&'\"");
	assert_string_equal(esc, "a&lt;b&gt;&amp;&apos;&quot;");
	free(esc);
}

/* The base layer in front of the S3 driver, offline: the path rule, the
 * driver's label on errors, and the optional operations. */
static void test_base(void **state)
{
	(void)state;
	struct regfs_s3_config cfg = base();
	struct regfs_storage *s = NULL;
	struct regfs_err err = {0};
	assert_int_equal(regfs_storage_s3_new(&cfg, &s, &err), 0);
	assert_string_equal(regfs_storage_name(s), "s3");
	/* the same rule as the filesystem driver: "//" is refused too */
	const char *bad[] = {"", "a", "/a//b", "/a/", "/a/../b", "/.", "/", NULL};
	for (int i = 0; bad[i]; i++) {
		regfs_err_clear(&err);
		assert_int_equal(regfs_storage_put(s, bad[i], "x", 1, &err), -EINVAL);
		assert_true(strncmp(err.msg, "s3 storage: invalid path", 24) == 0);
		assert_int_equal(regfs_storage_del(s, bad[i], NULL), -EINVAL);
		struct regfs_writer *w = NULL;
		assert_int_equal(regfs_storage_writer(s, bad[i], true, &w, NULL), -EINVAL);
		assert_null(w);
	}
	assert_int_equal(regfs_storage_stat(s, "/a//b", &(struct regfs_stat_info){0}, NULL), -EINVAL);
	assert_true(regfs_storage_supports(s, REGFS_STORAGE_URL_FOR));
	assert_true(regfs_storage_supports(s, REGFS_STORAGE_HEALTH));
	assert_false(regfs_storage_supports(s, REGFS_STORAGE_OPEN_FD));
	int fd = 0;
	uint64_t size;
	regfs_err_clear(&err);
	assert_int_equal(regfs_storage_open_fd(s, "/x", &fd, &size, &err), -ENOTSUP);
	assert_int_equal(fd, -1);
	assert_string_equal(err.msg, "s3 storage has no file descriptors");
	/* presigning needs no network */
	char *url = NULL;
	assert_int_equal(regfs_storage_url_for(s, "/docker/k", 60, &url, NULL), 0);
	assert_non_null(strstr(url, "http://videopick-minio:9000/docker-registry/docker/k?"));
	free(url);
	regfs_storage_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_xml),
		cmocka_unit_test(test_base),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
