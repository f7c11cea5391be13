/* test_fs_mpack.c — how the mount's manifest cache keeps a parsed manifest
 * (fs/cache/mpack.c): packed into one block, every field equal to what
 * regfs_manifest_parse gave; media types shared between manifests; past the
 * intern table's bound, or longer than any media type, strings copied
 * instead, still equal. Run under ASan
 * (CI) the single free() of a packed manifest also checks that nothing
 * points outside its block or leaks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/manifests_internal.h"

#define D(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
	c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static struct regfs_manifest *parse(const char *json)
{
	struct regfs_manifest *m = NULL;
	struct regfs_err e = {0};
	int rc = regfs_manifest_parse(json, strlen(json), NULL, &m, &e);
	if (rc)
		fail_msg("parse: %s", regfs_err_str(&e));
	return m;
}

static void str_eq(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void desc_eq(const struct regfs_descriptor *a, const struct regfs_descriptor *b)
{
	str_eq(a->media_type, b->media_type);
	assert_string_equal(a->digest, b->digest);
	assert_int_equal(a->size, b->size);
	str_eq(a->artifact_type, b->artifact_type);
	str_eq(a->os, b->os);
	str_eq(a->arch, b->arch);
	str_eq(a->variant, b->variant);
	str_eq(a->annotations, b->annotations);
}

static void manifest_eq(const struct regfs_manifest *a, const struct regfs_manifest *b)
{
	assert_int_equal(a->kind, b->kind);
	str_eq(a->media_type, b->media_type);
	assert_int_equal(a->schema_version, b->schema_version);
	assert_int_equal(a->has_config, b->has_config);
	desc_eq(&a->config, &b->config);
	assert_int_equal(a->n_layers, b->n_layers);
	for (size_t i = 0; i < a->n_layers; i++)
		desc_eq(&a->layers[i], &b->layers[i]);
	assert_int_equal(a->n_manifests, b->n_manifests);
	for (size_t i = 0; i < a->n_manifests; i++)
		desc_eq(&a->manifests[i], &b->manifests[i]);
	assert_int_equal(a->has_subject, b->has_subject);
	desc_eq(&a->subject, &b->subject);
	str_eq(a->artifact_type, b->artifact_type);
	str_eq(a->annotations, b->annotations);
}

static const char image[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"artifactType\":\"application/vnd.example.sbom\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D("a") "\",\"size\":7},"
	"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D("b") "\",\"size\":100,"
	"\"annotations\":{\"org.opencontainers.image.title\":\"x.tar.gz\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D("c") "\",\"size\":200}],"
	"\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D("d") "\",\"size\":300},"
	"\"annotations\":{\"k\":\"v\"}}";

static const char index_json[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D("e") "\",\"size\":10,"
	"\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D("f") "\",\"size\":11,"
	"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}";

/* manifest_pack, its size checked against what it holds at least. */
static struct regfs_manifest *pack(const struct regfs_manifest *m)
{
	size_t bytes = 0;
	struct regfs_manifest *p = manifest_pack(m, &bytes);
	if (p)
		assert_true(bytes >= sizeof *p + (m->n_layers + m->n_manifests) *
						  sizeof(struct regfs_descriptor));
	return p;
}

static void test_fields_equal(void **state)
{
	(void)state;
	const char *docs[] = {image, index_json};
	for (size_t i = 0; i < 2; i++) {
		struct regfs_manifest *m = parse(docs[i]);
		struct regfs_manifest *p = pack(m);
		assert_non_null(p);
		manifest_eq(m, p);
		regfs_manifest_free(m);
		/* p stands alone once m is gone. */
		struct regfs_manifest *again = parse(docs[i]);
		manifest_eq(again, p);
		regfs_manifest_free(again);
		free(p);
	}
}

static void test_media_types_shared(void **state)
{
	(void)state;
	struct regfs_manifest *m = parse(image);
	struct regfs_manifest *a = pack(m), *b = pack(m);
	regfs_manifest_free(m);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_equal(a->media_type, b->media_type);
	assert_ptr_equal(a->layers[0].media_type, b->layers[1].media_type);
	assert_ptr_equal(a->layers[0].media_type, b->layers[0].media_type);
	/* Annotations differ between manifests: each block has its own. */
	assert_ptr_not_equal(a->annotations, b->annotations);
	assert_string_equal(a->annotations, b->annotations);
	free(a);
	free(b);
}

/* More distinct artifact types than the intern table holds: the ones past
 * the bound are copied into their manifest's block, and read back equal. */
static void test_past_intern_bound(void **state)
{
	(void)state;
	static char doc[2048];
	for (int i = 0; i < MPACK_INTERN_MAX + 50; i++) {
		snprintf(doc, sizeof doc,
			 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			 "\"artifactType\":\"application/vnd.example.t%d\","
			 "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" D("a")
			 "\",\"size\":2},\"layers\":[]}", i);
		struct regfs_manifest *m = parse(doc);
		struct regfs_manifest *p = pack(m);
		assert_non_null(p);
		manifest_eq(m, p);
		char want[64];
		snprintf(want, sizeof want, "application/vnd.example.t%d", i);
		assert_string_equal(p->artifact_type, want);
		regfs_manifest_free(m);
		free(p);
	}
}

/* A media type longer than any real one is not kept for the process's
 * life: each manifest has its own copy, freed with it. */
static void test_long_not_interned(void **state)
{
	(void)state;
	static char doc[2048], at[MPACK_INTERN_LEN + 40];
	memset(at, 'x', sizeof at - 1);
	at[sizeof at - 1] = 0;
	memcpy(at, "application/", 12);
	snprintf(doc, sizeof doc,
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"artifactType\":\"%s\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\","
		 "\"digest\":\"" D("a") "\",\"size\":2},\"layers\":[]}", at);
	struct regfs_manifest *m = parse(doc);
	struct regfs_manifest *a = pack(m), *b = pack(m);
	regfs_manifest_free(m);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->artifact_type, at);
	assert_string_equal(b->artifact_type, at);
	assert_ptr_not_equal(a->artifact_type, b->artifact_type);
	assert_ptr_equal(a->media_type, b->media_type);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_equal),
		cmocka_unit_test(test_media_types_shared),
		cmocka_unit_test(test_past_intern_bound),
		cmocka_unit_test(test_long_not_interned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
