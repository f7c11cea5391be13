/* oci.c — see include/regfs/oci.h
 *
 * Manifest and index parsing with jansson. The parse result copies every
 * string it keeps, so the JSON tree is released before returning.
 *
 * Media type resolution (what the registry stores the manifest as):
 *   1. the JSON "mediaType" field, if present — and it must agree with the
 *      Content-Type when that is itself a manifest type;
 *   2. else the Content-Type, when it is a manifest type;
 *   3. else a guess from the shape: "manifests" → OCI index,
 *      "config" + "layers" → OCI image manifest (OCI made mediaType optional).
 * Docker schema1 is refused outright: it carries no content-addressable
 * config and registry:2 deprecated it. */
#include <regfs/oci.h>
#include <regfs/mem.h>

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"

/* The JSON tree of a manifest costs jansson more than ten times its size (a
 * 3.6 MB object of 250000 keys: ~50 MB), in small blocks that glibc keeps
 * in the calling thread's arena after they are freed: a few such pushes
 * would leave the process 150 MB resident. After parsing a manifest larger
 * than this, the freed pages are handed back (malloc_trim: a few ms, and
 * large manifests are rare). */
#define TRIM_AFTER (256 * 1024)

/* ---- media types ---------------------------------------------------------- */

/* Length of a media type without parameters (";charset=…") or trailing blanks. */
static size_t mt_len(const char *mt)
{
	size_t n = strcspn(mt, ";");
	while (n > 0 && (mt[n - 1] == ' ' || mt[n - 1] == '\t'))
		n--;
	return n;
}

/* Media types compare case-insensitively and ignore parameters (RFC 6838). */
static bool mt_eq(const char *mt, const char *want)
{
	if (!mt)
		return false;
	while (*mt == ' ' || *mt == '\t')
		mt++;
	size_t n = mt_len(mt);
	return n == strlen(want) && strncasecmp(mt, want, n) == 0;
}

bool regfs_media_type_is_index(const char *mt)
{
	return mt_eq(mt, REGFS_MT_OCI_INDEX) || mt_eq(mt, REGFS_MT_DOCKER_LIST);
}

bool regfs_media_type_is_manifest(const char *mt)
{
	return regfs_media_type_is_index(mt) || mt_eq(mt, REGFS_MT_OCI_MANIFEST) ||
	       mt_eq(mt, REGFS_MT_DOCKER_MANIFEST);
}

static bool mt_is_schema1(const char *mt)
{
	return mt_eq(mt, REGFS_MT_DOCKER_V1_SIGNED) || mt_eq(mt, MT_DOCKER_V1);
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* Decided by the suffix, so vendor layer types (helm charts, foreign and
 * nondistributable layers) get the right extension, and "+encrypted"
 * layers, which no tool can open as tar, stay "blob". */
const char *regfs_layer_ext(const char *media_type)
{
	if (!media_type)
		return "blob";
	size_t n = mt_len(media_type);
	if (ends_with(media_type, n, "tar+gzip") || ends_with(media_type, n, "tar.gzip"))
		return "tar.gz";
	if (ends_with(media_type, n, "tar+zstd") || ends_with(media_type, n, "tar.zstd"))
		return "tar.zst";
	if (ends_with(media_type, n, ".tar") || ends_with(media_type, n, "/x-tar") ||
	    ends_with(media_type, n, "/tar"))
		return "tar";
	return "blob";
}

/* ---- parsing -------------------------------------------------------------- */

static void descriptor_clear(struct regfs_descriptor *d)
{
	REGFS_FREE_STRS(&d->media_type, &d->artifact_type, &d->os, &d->arch, &d->variant,
			&d->annotations);
	memset(d, 0, sizeof *d);
}

void regfs_manifest_free(struct regfs_manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	descriptor_clear(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_clear(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->n_manifests; i++)
		descriptor_clear(&m->manifests[i]);
	free(m->manifests);
	descriptor_clear(&m->subject);
	free(m->artifact_type);
	free(m->annotations);
	free(m);
}

/* Optional string member: NULL when absent, -EINVAL when not a string. */
static int opt_string(json_t *obj, const char *key, const char *where, char **out,
		      struct regfs_err *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return regfs_errf(err, -EINVAL, "invalid manifest: %s%s%s must be a string", where,
				  *where ? "." : "", key);
	if (!(*out = strdup(json_string_value(v))))
		return regfs_errf(err, -ENOMEM, "out of memory parsing manifest");
	return 0;
}

/* Optional "annotations": an object of strings, kept as compact JSON text. */
static int opt_annotations(json_t *obj, const char *where, char **out, struct regfs_err *err)
{
	json_t *v = json_object_get(obj, "annotations");
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	const char *sep = *where ? "." : "";
	if (!json_is_object(v))
		return regfs_errf(err, -EINVAL, "invalid manifest: %s%sannotations must be an object", where, sep);
	const char *k;
	json_t *val;
	json_object_foreach(v, k, val) {
		if (!json_is_string(val))
			return regfs_errf(err, -EINVAL, "invalid manifest: %s%sannotations.%s must be a string",
					  where, sep, k);
	}
	if (!(*out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return regfs_errf(err, -ENOMEM, "out of memory parsing manifest");
	return 0;
}

/* One descriptor at `where` ("config", "layers[3]", "manifests[0]", "subject").
 * mediaType is required except for index children (old tools omit it). */
static int parse_descriptor(json_t *obj, const char *where, bool mt_required,
			    struct regfs_descriptor *d, struct regfs_err *err)
{
	int r;
	if (!json_is_object(obj))
		return regfs_errf(err, -EINVAL, "invalid manifest: %s must be an object (a descriptor)", where);
	if ((r = opt_string(obj, "mediaType", where, &d->media_type, err)))
		return r;
	if (mt_required && !d->media_type)
		return regfs_errf(err, -EINVAL, "invalid manifest: %s.mediaType is missing", where);

	json_t *dg = json_object_get(obj, "digest");
	if (!dg)
		return regfs_errf(err, -EINVAL, "invalid manifest: %s.digest is missing", where);
	if (!json_is_string(dg) || !regfs_digest_valid(json_string_value(dg)) ||
	    strlen(json_string_value(dg)) >= sizeof d->digest)
		return regfs_errf(err, -EINVAL,
				  "invalid manifest: %s.digest is not a valid digest (want sha256:<64 hex> or sha512:<128 hex>)%s%s%s",
				  where, json_is_string(dg) ? ", got \"" : "",
				  json_is_string(dg) ? json_string_value(dg) : "", json_is_string(dg) ? "\"" : "");
	strcpy(d->digest, json_string_value(dg));

	json_t *sz = json_object_get(obj, "size");
	if (!sz)
		return regfs_errf(err, -EINVAL, "invalid manifest: %s.size is missing", where);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return regfs_errf(err, -EINVAL, "invalid manifest: %s.size must be an integer >= 0", where);
	d->size = (int64_t)json_integer_value(sz);

	if ((r = opt_string(obj, "artifactType", where, &d->artifact_type, err)) ||
	    (r = opt_annotations(obj, where, &d->annotations, err)))
		return r;

	json_t *pl = json_object_get(obj, "platform");
	if (pl && !json_is_null(pl)) {
		char w[64];
		snprintf(w, sizeof w, "%s.platform", where);
		if (!json_is_object(pl))
			return regfs_errf(err, -EINVAL, "invalid manifest: %s must be an object", w);
		if ((r = opt_string(pl, "os", w, &d->os, err)) ||
		    (r = opt_string(pl, "architecture", w, &d->arch, err)) ||
		    (r = opt_string(pl, "variant", w, &d->variant, err)))
			return r;
	}
	return 0;
}

static int parse_array(json_t *root, const char *key, bool mt_required,
		       struct regfs_descriptor **out, size_t *n_out, struct regfs_err *err)
{
	json_t *arr = json_object_get(root, key);
	if (!arr)
		return regfs_errf(err, -EINVAL, "invalid manifest: %s is missing", key);
	if (!json_is_array(arr))
		return regfs_errf(err, -EINVAL, "invalid manifest: %s must be an array", key);
	size_t n = json_array_size(arr);
	*n_out = 0;
	*out = NULL;
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof **out);
	if (!*out)
		return regfs_errf(err, -ENOMEM, "out of memory parsing manifest");
	for (size_t i = 0; i < n; i++) {
		char where[48];
		snprintf(where, sizeof where, "%s[%zu]", key, i);
		*n_out = i + 1; /* so regfs_manifest_free clears a half-filled entry */
		int r = parse_descriptor(json_array_get(arr, i), where, mt_required, &(*out)[i], err);
		if (r)
			return r;
	}
	return 0;
}

/* Picks the effective media type (see the comment at the top). */
static int resolve_media_type(json_t *root, const char *content_type, char **out,
			      struct regfs_err *err)
{
	json_t *v = json_object_get(root, "mediaType");
	const char *field = NULL;
	if (v) {
		if (!json_is_string(v))
			return regfs_errf(err, -EINVAL, "invalid manifest: mediaType must be a string");
		field = json_string_value(v);
	}
	if (mt_is_schema1(field) || mt_is_schema1(content_type))
		return regfs_errf(err, -EINVAL,
				  "schema1 manifests are not supported; push the image again with a current client (it sends schema2 or OCI)");
	const char *eff = NULL;
	if (field) {
		if (content_type && regfs_media_type_is_manifest(content_type) && !mt_eq(content_type, field))
			return regfs_errf(err, -EINVAL,
					  "manifest mediaType \"%s\" does not match Content-Type \"%s\"", field,
					  content_type);
		eff = field;
	} else if (content_type && regfs_media_type_is_manifest(content_type)) {
		eff = content_type;
	} else if (json_object_get(root, "manifests")) {
		eff = REGFS_MT_OCI_INDEX;
	} else if (json_object_get(root, "config") && json_object_get(root, "layers")) {
		eff = REGFS_MT_OCI_MANIFEST;
	} else {
		return regfs_errf(err, -EINVAL,
				  "invalid manifest: no mediaType, and the Content-Type \"%s\" is not a manifest type; set one of %s, %s, %s, %s",
				  content_type ? content_type : "", REGFS_MT_OCI_MANIFEST, REGFS_MT_OCI_INDEX,
				  REGFS_MT_DOCKER_MANIFEST, REGFS_MT_DOCKER_LIST);
	}
	if (!regfs_media_type_is_manifest(eff))
		return regfs_errf(err, -EINVAL, "unsupported manifest media type \"%s\"", eff);
	/* store without parameters, as it will be served */
	while (*eff == ' ' || *eff == '\t')
		eff++;
	if (!(*out = strndup(eff, mt_len(eff))))
		return regfs_errf(err, -ENOMEM, "out of memory parsing manifest");
	return 0;
}

static int parse_root(json_t *root, const char *content_type, struct regfs_manifest *m,
		      struct regfs_err *err)
{
	int r;
	if (!json_is_object(root))
		return regfs_errf(err, -EINVAL, "invalid manifest: not a JSON object");
	json_t *sv = json_object_get(root, "schemaVersion");
	if (sv && json_is_integer(sv) && json_integer_value(sv) == 1)
		return regfs_errf(err, -EINVAL,
				  "schema1 manifests are not supported; push the image again with a current client (it sends schema2 or OCI)");
	if ((r = resolve_media_type(root, content_type, &m->media_type, err)))
		return r;
	if (!sv)
		return regfs_errf(err, -EINVAL, "invalid manifest: schemaVersion is missing (must be 2)");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return regfs_errf(err, -EINVAL, "invalid manifest: schemaVersion must be 2");
	m->schema_version = 2;

	if (regfs_media_type_is_index(m->media_type)) {
		m->kind = REGFS_MANIFEST_INDEX;
		if ((r = parse_array(root, "manifests", false, &m->manifests, &m->n_manifests, err)))
			return r;
	} else {
		m->kind = REGFS_MANIFEST_IMAGE;
		json_t *cfg = json_object_get(root, "config");
		if (!cfg)
			return regfs_errf(err, -EINVAL, "invalid manifest: config is missing");
		m->has_config = true;
		if ((r = parse_descriptor(cfg, "config", true, &m->config, err)) ||
		    (r = parse_array(root, "layers", true, &m->layers, &m->n_layers, err)))
			return r;
	}
	json_t *subj = json_object_get(root, "subject");
	if (subj && !json_is_null(subj)) {
		m->has_subject = true;
		if ((r = parse_descriptor(subj, "subject", true, &m->subject, err)))
			return r;
	}
	if ((r = opt_string(root, "artifactType", "", &m->artifact_type, err)) ||
	    (r = opt_annotations(root, "", &m->annotations, err)))
		return r;
	return 0;
}

/* Set once at start (regfs_manifest_set_limits), read by every parse. */
static _Atomic size_t max_bytes = REGFS_MANIFEST_MAX;
static _Atomic int max_depth = REGFS_JSON_DEPTH_MAX;

void regfs_manifest_set_limits(size_t bytes, int depth)
{
	if (bytes)
		max_bytes = bytes;
	if (depth > 0)
		max_depth = depth;
}

int regfs_json_depth(const char *data, size_t len, int max)
{
	int depth = 0, deepest = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (in_str) {
			if (ch == '\\')
				i++; /* the escaped character cannot end the string */
			else if (ch == '"')
				in_str = false;
			continue;
		}
		if (ch == '"') {
			in_str = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > deepest && (deepest = depth) > max)
				return max + 1;
		} else if ((ch == ']' || ch == '}') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

int regfs_manifest_parse(const char *data, size_t len, const char *content_type,
			 struct regfs_manifest **out, struct regfs_err *err)
{
	*out = NULL;
	size_t mb = max_bytes;
	int md = max_depth;
	if (len > mb)
		return regfs_errf(err, -EFBIG, "manifest is %zu bytes, more than the %zu-byte limit",
				  len, mb);
	if (regfs_json_depth(data, len, md) > md)
		return regfs_errf(err, -EINVAL, "invalid manifest: JSON nested deeper than %d "
				  "levels (regfs.limits.jsondepth)", md);
	json_error_t je;
	/* Duplicate keys are refused: two readers could otherwise see different
	 * layers in the same bytes. */
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return regfs_errf(err, -EINVAL, "invalid manifest: not valid JSON: %s (line %d, column %d)",
				  je.text, je.line, je.column);
	struct regfs_manifest *m = calloc(1, sizeof *m);
	if (!m) {
		json_decref(root);
		return regfs_errf(err, -ENOMEM, "out of memory parsing manifest");
	}
	int r = parse_root(root, content_type, m, err);
	json_decref(root);
	if (len > TRIM_AFTER)
		malloc_trim(0);
	if (r) {
		regfs_manifest_free(m);
		return r;
	}
	*out = m;
	return 0;
}
