/* fuzz_manifest.c — libFuzzer target: regfs_manifest_parse (lib/oci.c) on
 * arbitrary bytes, as the registry calls it on a manifest PUT. The first
 * input byte picks the Content-Type the body comes with (none, each known
 * type, one with parameters, an unknown one); the rest is the body. A parse
 * that succeeds must give a result the registry can use without checking
 * again: valid digests, sizes >= 0, the arrays its kind has. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regfs/log.h"
#include "regfs/oci.h"

static const char *const content_types[] = {
	NULL,
	REGFS_MT_OCI_MANIFEST,
	REGFS_MT_OCI_INDEX,
	REGFS_MT_DOCKER_MANIFEST,
	REGFS_MT_DOCKER_LIST,
	REGFS_MT_DOCKER_V1_SIGNED,
	"application/vnd.oci.image.manifest.v1+json; charset=utf-8",
	"application/json",
	"",
	"text/plain",
};
#define N_TYPES (sizeof content_types / sizeof content_types[0])

static void check_descriptor(const struct regfs_descriptor *d)
{
	if (!regfs_digest_valid(d->digest) || d->size < 0)
		abort();
	if (d->media_type)
		(void)regfs_layer_ext(d->media_type);
}

static void check(const struct regfs_manifest *m)
{
	if (!m->media_type || !regfs_media_type_is_manifest(m->media_type))
		abort();
	if (m->kind == REGFS_MANIFEST_INDEX) {
		if (m->has_config || m->n_layers)
			abort();
	} else if (m->kind != REGFS_MANIFEST_IMAGE || m->n_manifests) {
		abort();
	}
	if (m->has_config)
		check_descriptor(&m->config);
	if (m->has_subject)
		check_descriptor(&m->subject);
	for (size_t i = 0; i < m->n_layers; i++)
		check_descriptor(&m->layers[i]);
	for (size_t i = 0; i < m->n_manifests; i++)
		check_descriptor(&m->manifests[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		regfs_log_set_level(REGFS_LOG_ERROR);
	if (size == 0)
		return 0;
	const char *ct = content_types[data[0] % N_TYPES];
	struct regfs_manifest *m = NULL;
	struct regfs_err err = {0};
	int rc = regfs_manifest_parse((const char *)data + 1, size - 1, ct, &m, &err);
	if (rc == 0) {
		if (!m)
			abort();
		check(m);
		regfs_manifest_free(m);
	} else if (m || rc >= 0 || !regfs_err_str(&err)[0]) {
		abort(); /* a refusal leaves nothing allocated and says why */
	}
	return 0;
}
