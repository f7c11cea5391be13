/* layerindex.c — the layer-index extension of regfs-registry
 * (docs/api-extensions.md): GET /v2/<name>/_regfs/layerindex/<digest>,
 * checked against the digest the registry sends with it. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <regfs/digest.h>
#include <regfs/names.h>

/* The first error code of a registry error body into code[64] ("" if none). */
static void error_code(const struct resp *r, char code[64])
{
	code[0] = '\0';
	json_t *j = json_loadb(dynbuf_ptr(&r->body), dynbuf_len(&r->body), 0, NULL);
	const char *s = json_string_value(
		json_object_get(json_array_get(json_object_get(j, "errors"), 0), "code"));
	if (s)
		snprintf(code, 64, "%s", s);
	json_decref(j);
}

/* A 200 answer: the body must hash to the Docker-Content-Digest sent with it. */
static int check_body(struct regfs_client *c, const struct resp *r, const char *url,
		      struct regfs_err *err)
{
	enum regfs_digest_alg alg;
	if (!r->dcd || regfs_digest_parse(r->dcd, &alg, NULL, NULL) != 0) {
		ST_INC(c, st_errors);
		return regfs_errf(err, -EPROTO, "GET %s: the layer index came without a valid "
				  "Docker-Content-Digest header (docs/api-extensions.md)", url);
	}
	char got[REGFS_DIGEST_MAX];
	regfs_digest_buf(alg, dynbuf_ptr(&r->body), dynbuf_len(&r->body), got);
	if (strcmp(got, r->dcd) != 0) {
		ST_INC(c, st_errors);
		return regfs_errf(err, -EBADMSG, "GET %s: the layer index hashes to %s, not %s as "
				  "the registry says: refused (altered on the way, or a registry "
				  "bug)", url, got, r->dcd);
	}
	return 0;
}

/* A non-200 answer to errno and message. */
static int answer_err(struct regfs_client *c, const struct resp *r, const char *url,
		      const char *repo, const char *digest, struct regfs_err *err)
{
	char code[64];
	error_code(r, code);
	if (r->status == 404 && !strcmp(code, "LAYER_INDEX_UNKNOWN"))
		return regfs_errf(err, -ENOENT, "layer %s has no index on the registry (not "
				  "built yet, or not indexable): build it from the blob", digest);
	char what[400];
	snprintf(what, sizeof what, "layer index of %s in %s", digest, repo);
	return status_err(c, r, "GET", url, what, err);
}

int regfs_client_layer_index(struct regfs_client *c, const char *repo, const char *digest,
			     char **buf, size_t *len, struct regfs_err *err)
{
	*buf = NULL;
	*len = 0;
	if (!repo || !regfs_name_valid(repo))
		return regfs_errf(err, -EINVAL, "\"%s\" is not a valid repository name",
				  repo ? repo : "(null)");
	if (!digest || !regfs_digest_valid(digest))
		return regfs_errf(err, -EINVAL, "\"%s\" is not a valid digest",
				  digest ? digest : "(null)");
	if (!regfs_client_has_ext(c, "layer-index"))
		return regfs_errf(err, -ENOTSUP, "registry %s does not offer the layer-index "
				  "extension: build the index from the blob", c->url);
	struct call k;
	int rc = call_get(c, &k, xasprintf("%s/v2/%s/_regfs/layerindex/%s", c->url, repo, digest),
			  repo, &c->st_blob_reads, err);
	if (!rc && k.r.status != 200)
		rc = answer_err(c, &k.r, k.url, repo, digest, err);
	if (!rc)
		rc = check_body(c, &k.r, k.url, err);
	if (!rc) {
		*buf = dynbuf_take(&k.r.body, len); /* the caller's now */
		if (!*buf)
			rc = regfs_errf(err, -ENOMEM, "out of memory");
	}
	call_free(&k);
	return rc;
}
