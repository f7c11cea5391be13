/* oci.h — OCI / Docker media types and manifest/index parsing (OCI Image and
 * Distribution Spec v1.1); the name, tag and reference grammar is names.h.
 *
 * Parsing keeps no reference to the input buffer; the result is owned by the
 * caller and released with regfs_manifest_free(). */
#ifndef REGFS_OCI_H
#define REGFS_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <regfs/digest.h>
#include <regfs/err.h>
#include <regfs/names.h>

#define REGFS_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define REGFS_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define REGFS_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define REGFS_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define REGFS_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REGFS_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define REGFS_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define REGFS_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

#define REGFS_MANIFEST_MAX (4 * 1024 * 1024)  /* default manifest size bound */
#define REGFS_JSON_DEPTH_MAX 64                /* default JSON nesting bound */

enum regfs_manifest_kind { REGFS_MANIFEST_IMAGE = 1, REGFS_MANIFEST_INDEX = 2 };

struct regfs_descriptor {
	char *media_type;             /* may be NULL in indexes written by old tools */
	char digest[REGFS_DIGEST_MAX];
	int64_t size;
	char *artifact_type;          /* NULL if absent */
	char *os, *arch, *variant;    /* platform (index children), NULL if absent */
	char *annotations;            /* compact JSON object text, NULL if absent */
};

struct regfs_manifest {
	enum regfs_manifest_kind kind;
	char *media_type;             /* effective media type (field, else content type, else guessed) */
	int schema_version;
	bool has_config;
	struct regfs_descriptor config;
	struct regfs_descriptor *layers;     size_t n_layers;
	struct regfs_descriptor *manifests;  size_t n_manifests;  /* index children */
	bool has_subject;
	struct regfs_descriptor subject;
	char *artifact_type;          /* NULL if absent */
	char *annotations;            /* compact JSON object text, NULL if absent */
};

/* Parses and validates a manifest or index. `content_type` (may be NULL) is
 * the Content-Type it was pushed or served with; when the JSON has a
 * mediaType they must agree. Validates: JSON object, schemaVersion 2, known
 * media type, descriptors with valid digest and size >= 0.
 * -EINVAL with a message that names the offending field otherwise
 * (schema1: "schema1 manifests are not supported", and JSON nested deeper
 * than the depth bound, checked on the raw bytes before any parser recurses);
 * -EFBIG when len exceeds the size bound (the registry answers 413). The
 * effective media_type is stored without parameters. */
int regfs_manifest_parse(const char *data, size_t len, const char *content_type,
			 struct regfs_manifest **out, struct regfs_err *err);
void regfs_manifest_free(struct regfs_manifest *m);

/* Process-wide bounds of regfs_manifest_parse: bytes (default
 * REGFS_MANIFEST_MAX) and JSON nesting depth (default REGFS_JSON_DEPTH_MAX).
 * The registry sets them from regfs.limits at start, before any request;
 * 0 leaves a bound unchanged. */
void regfs_manifest_set_limits(size_t max_bytes, int max_depth);

/* The nesting depth of JSON text: the deepest run of open [ and { outside
 * strings. Stops at the first level over `max` and returns max + 1, so a
 * "bomb" of a million '[' costs no more than max levels of bookkeeping.
 * Does not validate the JSON otherwise. */
int regfs_json_depth(const char *data, size_t len, int max);

bool regfs_media_type_is_manifest(const char *mt); /* image manifest or index types */
bool regfs_media_type_is_index(const char *mt);

/* File extension for a layer blob in the mount: "tar.gz", "tar.zst", "tar", "blob". */
const char *regfs_layer_ext(const char *media_type);

#endif
