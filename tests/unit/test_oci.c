/* Unit tests for oci.c: manifests and indexes as real clients push them
 * (OCI, Docker schema2, artifacts with subject), and the rejections a user
 * sees (bad JSON, missing fields, bad digests, mismatched media types). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regfs/oci.h>

#define D1 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D2 "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
#define D3 "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"

static struct regfs_manifest *parse_ok(const char *json, const char *ct)
{
	struct regfs_manifest *m = NULL;
	struct regfs_err err = {0};
	int r = regfs_manifest_parse(json, strlen(json), ct, &m, &err);
	if (r != 0)
		fail_msg("parse failed: %d %s", r, err.msg);
	assert_non_null(m);
	return m;
}

/* Expects -EINVAL (or `code`) and a message containing `needle`. */
static void parse_bad(const char *json, const char *ct, int code, const char *needle)
{
	struct regfs_manifest *m = (struct regfs_manifest *)1;
	struct regfs_err err = {0};
	assert_int_equal(regfs_manifest_parse(json, strlen(json), ct, &m, &err), code);
	assert_null(m);
	if (!strstr(err.msg, needle))
		fail_msg("message \"%s\" does not contain \"%s\"", err.msg, needle);
}

static const char oci_manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1469},"
	"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":3370706},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3 "\",\"size\":0,"
	"\"annotations\":{\"org.opencontainers.image.title\":\"x\"}}],"
	"\"annotations\":{\"b\":\"2\",\"a\":\"1\"}}";

static void test_oci_manifest(void **state)
{
	(void)state;
	struct regfs_manifest *m = parse_ok(oci_manifest, REGFS_MT_OCI_MANIFEST);
	assert_int_equal(m->kind, REGFS_MANIFEST_IMAGE);
	assert_string_equal(m->media_type, REGFS_MT_OCI_MANIFEST);
	assert_int_equal(m->schema_version, 2);
	assert_true(m->has_config);
	assert_string_equal(m->config.digest, D1);
	assert_int_equal(m->config.size, 1469);
	assert_string_equal(m->config.media_type, REGFS_MT_OCI_CONFIG);
	assert_int_equal(m->n_layers, 2);
	assert_string_equal(m->layers[0].digest, D2);
	assert_int_equal(m->layers[0].size, 3370706);
	assert_string_equal(regfs_layer_ext(m->layers[0].media_type), "tar.gz");
	assert_string_equal(regfs_layer_ext(m->layers[1].media_type), "tar.zst");
	assert_string_equal(m->layers[1].annotations, "{\"org.opencontainers.image.title\":\"x\"}");
	assert_null(m->layers[0].annotations);
	assert_string_equal(m->annotations, "{\"b\":\"2\",\"a\":\"1\"}");
	assert_false(m->has_subject);
	assert_null(m->artifact_type);
	assert_int_equal(m->n_manifests, 0);
	regfs_manifest_free(m);

	/* no Content-Type, and application/json (not a manifest type): the field wins */
	m = parse_ok(oci_manifest, NULL);
	assert_string_equal(m->media_type, REGFS_MT_OCI_MANIFEST);
	regfs_manifest_free(m);
	m = parse_ok(oci_manifest, "application/json");
	assert_string_equal(m->media_type, REGFS_MT_OCI_MANIFEST);
	regfs_manifest_free(m);
	/* parameters and case in the Content-Type are ignored */
	m = parse_ok(oci_manifest, "Application/vnd.oci.image.manifest.v1+json; charset=utf-8");
	regfs_manifest_free(m);
}

static void test_guess_without_media_type(void **state)
{
	(void)state;
	const char *man = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
			  "\",\"size\":1},\"layers\":[]}";
	struct regfs_manifest *m = parse_ok(man, NULL);
	assert_string_equal(m->media_type, REGFS_MT_OCI_MANIFEST);
	assert_int_equal(m->n_layers, 0);
	assert_null(m->layers);
	regfs_manifest_free(m);
	/* Content-Type used when the field is absent */
	m = parse_ok(man, REGFS_MT_DOCKER_MANIFEST);
	assert_string_equal(m->media_type, REGFS_MT_DOCKER_MANIFEST);
	regfs_manifest_free(m);

	const char *idx = "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\",\"size\":5}]}";
	m = parse_ok(idx, "application/octet-stream");
	assert_int_equal(m->kind, REGFS_MANIFEST_INDEX);
	assert_string_equal(m->media_type, REGFS_MT_OCI_INDEX);
	assert_int_equal(m->n_manifests, 1);
	assert_null(m->manifests[0].media_type); /* old tools omit it */
	assert_false(m->has_config);
	regfs_manifest_free(m);

	parse_bad("{\"schemaVersion\":2}", NULL, -EINVAL, "mediaType");
}

static void test_index_platforms(void **state)
{
	(void)state;
	const char *idx =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":100,"
		"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\",\"size\":200,"
		"\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\",\"size\":300,"
		"\"artifactType\":\"application/vnd.example.sbom\",\"annotations\":{\"k\":\"v\"}}]}";
	struct regfs_manifest *m = parse_ok(idx, REGFS_MT_OCI_INDEX);
	assert_int_equal(m->kind, REGFS_MANIFEST_INDEX);
	assert_int_equal(m->n_manifests, 3);
	assert_string_equal(m->manifests[0].os, "linux");
	assert_string_equal(m->manifests[0].arch, "amd64");
	assert_null(m->manifests[0].variant);
	assert_string_equal(m->manifests[1].arch, "arm");
	assert_string_equal(m->manifests[1].variant, "v7");
	assert_int_equal(m->manifests[1].size, 200);
	assert_null(m->manifests[2].os);
	assert_string_equal(m->manifests[2].artifact_type, "application/vnd.example.sbom");
	assert_string_equal(m->manifests[2].annotations, "{\"k\":\"v\"}");
	assert_int_equal(m->n_layers, 0);
	regfs_manifest_free(m);

	/* empty index is valid */
	m = parse_ok("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}", NULL);
	assert_int_equal(m->n_manifests, 0);
	regfs_manifest_free(m);
}

static void test_docker(void **state)
{
	(void)state;
	const char *man =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":7023,\"digest\":\"" D1 "\"},"
		"\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":32654,\"digest\":\"" D2 "\"},"
		"{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"size\":1,\"digest\":\"" D3 "\","
		"\"urls\":[\"https://example.com/x\"]}]}";
	struct regfs_manifest *m = parse_ok(man, REGFS_MT_DOCKER_MANIFEST);
	assert_int_equal(m->kind, REGFS_MANIFEST_IMAGE);
	assert_string_equal(m->media_type, REGFS_MT_DOCKER_MANIFEST);
	assert_string_equal(m->config.media_type, REGFS_MT_DOCKER_CONFIG);
	assert_int_equal(m->n_layers, 2);
	assert_string_equal(regfs_layer_ext(m->layers[0].media_type), "tar.gz");
	assert_string_equal(regfs_layer_ext(m->layers[1].media_type), "tar.gz");
	regfs_manifest_free(m);

	const char *list =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":["
		"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":7143,\"digest\":\"" D1 "\","
		"\"platform\":{\"architecture\":\"ppc64le\",\"os\":\"linux\"}}]}";
	m = parse_ok(list, REGFS_MT_DOCKER_LIST);
	assert_int_equal(m->kind, REGFS_MANIFEST_INDEX);
	assert_string_equal(m->media_type, REGFS_MT_DOCKER_LIST);
	assert_string_equal(m->manifests[0].arch, "ppc64le");
	assert_string_equal(m->manifests[0].media_type, REGFS_MT_DOCKER_MANIFEST);
	regfs_manifest_free(m);
}

static void test_artifact_subject(void **state)
{
	(void)state;
	const char *man =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"artifactType\":\"application/vnd.example.signature\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" D1 "\",\"size\":2},"
		"\"layers\":[{\"mediaType\":\"application/vnd.example.sig\",\"digest\":\"" D2 "\",\"size\":10}],"
		"\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\",\"size\":527}}";
	struct regfs_manifest *m = parse_ok(man, REGFS_MT_OCI_MANIFEST);
	assert_string_equal(m->artifact_type, "application/vnd.example.signature");
	assert_true(m->has_subject);
	assert_string_equal(m->subject.digest, D3);
	assert_int_equal(m->subject.size, 527);
	assert_string_equal(m->config.media_type, REGFS_MT_OCI_EMPTY);
	assert_string_equal(regfs_layer_ext(m->layers[0].media_type), "blob");
	regfs_manifest_free(m);

	/* artifact with a custom config media type (ORAS style), no artifactType */
	const char *oras =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"" D1 "\",\"size\":2},"
		"\"layers\":[{\"mediaType\":\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":10}]}";
	m = parse_ok(oras, NULL);
	assert_string_equal(m->config.media_type, "application/vnd.cncf.helm.config.v1+json");
	assert_string_equal(regfs_layer_ext(m->layers[0].media_type), "tar.gz");
	regfs_manifest_free(m);

	/* subject on an index */
	const char *idx = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[],"
			  "\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\",\"size\":1}}";
	m = parse_ok(idx, NULL);
	assert_true(m->has_subject);
	regfs_manifest_free(m);
}

static void test_invalid(void **state)
{
	(void)state;
	parse_bad("", NULL, -EINVAL, "not valid JSON");
	parse_bad("{\"schemaVersion\":2,", NULL, -EINVAL, "not valid JSON");
	parse_bad("[1,2]", NULL, -EINVAL, "not a JSON object");
	/* schema1 by field, by content type, by schemaVersion */
	parse_bad("{\"schemaVersion\":1,\"name\":\"a\",\"tag\":\"b\",\"fsLayers\":[]}", NULL, -EINVAL,
		  "schema1 manifests are not supported");
	parse_bad("{\"schemaVersion\":1}", REGFS_MT_DOCKER_V1_SIGNED, -EINVAL, "schema1");
	parse_bad("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v1+json\"}",
		  NULL, -EINVAL, "schema1");
	/* schemaVersion */
	parse_bad("{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}", NULL, -EINVAL,
		  "schemaVersion");
	parse_bad("{\"schemaVersion\":3,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}",
		  NULL, -EINVAL, "schemaVersion must be 2");
	parse_bad("{\"schemaVersion\":\"2\",\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}",
		  NULL, -EINVAL, "schemaVersion must be 2");
	/* unknown media type */
	parse_bad("{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"manifests\":[]}", NULL, -EINVAL,
		  "unsupported manifest media type \"text/plain\"");
	parse_bad("{\"schemaVersion\":2,\"mediaType\":7}", NULL, -EINVAL, "mediaType must be a string");
	/* mismatch between the body and the Content-Type */
	parse_bad(oci_manifest, REGFS_MT_DOCKER_MANIFEST, -EINVAL, "does not match Content-Type");
	parse_bad(oci_manifest, REGFS_MT_OCI_INDEX, -EINVAL, "does not match");
	/* duplicate keys */
	parse_bad("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", NULL, -EINVAL, "JSON");
}

static void test_missing_fields(void **state)
{
	(void)state;
	const char *pre = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",";
	char buf[1024];
#define BAD(body, needle) do { snprintf(buf, sizeof buf, "%s%s}", pre, body); \
	parse_bad(buf, NULL, -EINVAL, needle); } while (0)
	BAD("\"layers\":[]", "config is missing");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1}", "layers is missing");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":{}", "layers must be an array");
	BAD("\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]", "config.mediaType is missing");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"size\":1},\"layers\":[]", "config.digest is missing");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\"},\"layers\":[]", "config.size is missing");
	BAD("\"config\":\"x\",\"layers\":[]", "config must be an object");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":["
	    "{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":1},{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":-1}]",
	    "layers[1].size must be an integer >= 0");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1.5},\"layers\":[]", "config.size must be an integer");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":\"1\"},\"layers\":[]", "config.size must be an integer");
	/* bad digests */
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:abc\",\"size\":1},\"layers\":[]",
	    "config.digest is not a valid digest");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"md5:d41d8cd98f00b204e9800998ecf8427e\",\"size\":1},\"layers\":[]",
	    "md5:d41d8cd98f00b204e9800998ecf8427e");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[{\"mediaType\":\"a/b\","
	    "\"digest\":\"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\",\"size\":1}]",
	    "layers[0].digest is not a valid digest");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":5,\"size\":1},\"layers\":[]", "config.digest");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[],"
	    "\"subject\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:zz\",\"size\":1}", "subject.digest");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[],\"annotations\":{\"a\":1}",
	    "annotations.a must be a string");
	BAD("\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[],\"artifactType\":[]",
	    "artifactType must be a string");
#undef BAD
	parse_bad("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}", NULL, -EINVAL,
		  "manifests is missing");
	parse_bad("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":"
		  "[{\"digest\":\"" D1 "\",\"size\":1,\"platform\":\"linux\"}]}", NULL, -EINVAL,
		  "manifests[0].platform must be an object");

	/* too big */
	size_t big = REGFS_MANIFEST_MAX + 1;
	char *b = malloc(big);
	memset(b, ' ', big);
	struct regfs_manifest *m = NULL;
	assert_int_equal(regfs_manifest_parse(b, big, NULL, &m, NULL), -EFBIG);
	free(b);
}

static void test_media_types(void **state)
{
	(void)state;
	assert_true(regfs_media_type_is_manifest(REGFS_MT_OCI_MANIFEST));
	assert_true(regfs_media_type_is_manifest(REGFS_MT_OCI_INDEX));
	assert_true(regfs_media_type_is_manifest(REGFS_MT_DOCKER_MANIFEST));
	assert_true(regfs_media_type_is_manifest(REGFS_MT_DOCKER_LIST));
	assert_false(regfs_media_type_is_manifest(REGFS_MT_DOCKER_V1_SIGNED));
	assert_false(regfs_media_type_is_manifest(REGFS_MT_OCI_CONFIG));
	assert_false(regfs_media_type_is_manifest("application/json"));
	assert_false(regfs_media_type_is_manifest(NULL));
	assert_false(regfs_media_type_is_manifest("application/vnd.oci.image.manifest.v1+jsonx"));
	assert_true(regfs_media_type_is_index(REGFS_MT_OCI_INDEX));
	assert_true(regfs_media_type_is_index(REGFS_MT_DOCKER_LIST "; charset=utf-8"));
	assert_false(regfs_media_type_is_index(REGFS_MT_OCI_MANIFEST));

	static const char *const ext[][2] = {
		{"application/vnd.oci.image.layer.v1.tar+gzip", "tar.gz"},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "tar.gz"},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", "tar.gz"},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "tar.gz"},
		{"application/vnd.oci.image.layer.v1.tar+zstd", "tar.zst"},
		{"application/vnd.docker.image.rootfs.diff.tar.zstd", "tar.zst"},
		{"application/vnd.oci.image.layer.v1.tar", "tar"},
		{"application/vnd.docker.image.rootfs.diff.tar", "tar"},
		{"application/x-tar", "tar"},
		{"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "blob"},
		{"application/vnd.example.sig", "blob"},
		{"application/gzip", "blob"},
	};
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		assert_string_equal(regfs_layer_ext(ext[i][0]), ext[i][1]);
	assert_string_equal(regfs_layer_ext(NULL), "blob");
}

/* regfs_json_depth counts [ and { outside strings and stops past the bound. */
static void test_json_depth(void **state)
{
	(void)state;
	assert_int_equal(regfs_json_depth("{}", 2, 64), 1);
	assert_int_equal(regfs_json_depth("{\"a\":[{\"b\":[]}]}", 17, 64), 4);
	/* brackets inside strings, and escaped quotes, are not nesting */
	const char *str = "{\"a\":\"[[[[\\\"[[[\"}";
	assert_int_equal(regfs_json_depth(str, strlen(str), 64), 1);
	assert_int_equal(regfs_json_depth("[[[]]]", 6, 2), 3);
	assert_int_equal(regfs_json_depth("", 0, 64), 0);
}

/* A JSON bomb is refused on its raw bytes, before the parser recurses; the
 * depth bound is the process's (regfs_manifest_set_limits). */
static void test_depth_limit(void **state)
{
	(void)state;
	size_t n = 100000;
	char *bomb = malloc(2 * n + 1);
	assert_non_null(bomb);
	memset(bomb, '[', n);
	memset(bomb + n, ']', n);
	bomb[2 * n] = '\0';
	parse_bad(bomb, NULL, -EINVAL, "nested deeper than 64 levels");
	free(bomb);
	/* a valid manifest with annotations nested 5 deep passes at 64, not at 4 */
	const char *m = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
			"\"manifests\":[],\"annotations\":{\"a\":\"b\"},\"x\":[[[[]]]]}";
	regfs_manifest_free(parse_ok(m, NULL));
	regfs_manifest_set_limits(0, 4);
	parse_bad(m, NULL, -EINVAL, "nested deeper than 4 levels");
	regfs_manifest_set_limits(16, 0);
	parse_bad(m, NULL, -EFBIG, "more than the 16-byte limit");
	regfs_manifest_set_limits(REGFS_MANIFEST_MAX, REGFS_JSON_DEPTH_MAX);
	regfs_manifest_free(parse_ok(m, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_guess_without_media_type),
		cmocka_unit_test(test_index_platforms),
		cmocka_unit_test(test_docker),
		cmocka_unit_test(test_artifact_subject),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_media_types),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_depth_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
