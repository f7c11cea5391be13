/* manifests.c — GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>.
 *
 * Hot path (GET/HEAD): one small link read (by tag) or one stat (by digest)
 * per request, then the manifest bytes from the content-addressed cache.
 * Tag and revision links are read from storage every time, so a tag moved or
 * deleted by another instance sharing the storage is seen at once.
 *
 * PUT write order is chosen for crash safety: manifest blob (atomic put),
 * then revision link, then the tag's index link, then its current link.
 * A crash in between leaves at most an unreferenced blob or an untagged
 * revision, never a link to missing content. */
#include "blobdesc.h"
#include "framing.h"
#include "gc.h"
#include "handlers.h"
#include "layerindex.h"
#include "input_limits.h"
#include "manifest_bytes.h"
#include "manifests.h"
#include "notify.h"
#include "proxy.h"
#include "quota.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"
#include "usage.h"

#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/names.h>
#include <regfs/oci.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a valid reference names. */
enum ref_kind { REF_TAG, REF_DIGEST };

/* 404 for a reference that did not resolve: NAME_UNKNOWN when the repository
 * itself does not exist (registry:2 answers so), else MANIFEST_UNKNOWN. */
static enum MHD_Result unknown_manifest(struct registry *r, struct request *q)
{
	if (!repo_known(r, q->rt.name))
		return respond_name_unknown(r, q);
	return respond_errorf(r, q, 404, "MANIFEST_UNKNOWN", "manifest unknown: %s:%s", q->rt.name,
			      q->rt.ref);
}

/* Validates name and reference; answers the error itself and returns false. */
static bool check_ref(struct registry *r, struct request *q, enum ref_kind *kind,
		      enum MHD_Result *ret)
{
	if (!q->rt.name_ok) {
		*ret = respond_errorf(r, q, 400, "NAME_INVALID", "invalid repository name: %s",
				      q->rt.name);
		return false;
	}
	struct regfs_err e = {0};
	int rk = q->rt.ref_truncated ? -EINVAL : regfs_reference_kind(q->rt.ref, &e);
	if (rk >= 0) {
		*kind = rk == 1 ? REF_DIGEST : REF_TAG;
		return true;
	}
	if (strchr(q->rt.ref, ':'))
		*ret = respond_errorf(r, q, 400, "DIGEST_INVALID", "invalid digest \"%.140s\": "
				      "expected sha256:<64 lowercase hex> or sha512:<128 lowercase "
				      "hex>", q->rt.ref);
	else if (q->m != HTTP_PUT)
		/* a name no tag can have names no manifest: registry:2's router
		 * answers 404, and conformance tools probe with such names
		 * expecting MANIFEST_UNKNOWN */
		*ret = respond_errorf(r, q, 404, "MANIFEST_UNKNOWN", "manifest unknown: %s:%.140s "
				      "(not a valid tag)", q->rt.name, q->rt.ref);
	else
		*ret = respond_errorf(r, q, 400, "TAG_INVALID", "invalid tag \"%.140s\": expected "
				      "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", q->rt.ref);
	return false;
}

/* Resolves the reference to a digest and the mtime of the link that names
 * it in this repository. -ENOENT when not there. */
static int resolve(struct registry *r, const struct route *rt, enum ref_kind kind,
		   char digest[REGFS_DIGEST_MAX], int64_t *mtime, struct regfs_err *err)
{
	if (kind == REF_TAG) {
		char *p = regfs_layout_tag_current(rt->name, rt->ref);
		if (!p)
			return -ENOMEM;
		int rc = repo_read_link(r, p, digest, mtime, err);
		free(p);
		return rc;
	}
	char *p = regfs_layout_revision_link(rt->name, rt->ref);
	if (!p)
		return -ENOMEM;
	struct regfs_stat_info st;
	int rc = regfs_storage_stat(r->st, p, &st, err);
	free(p);
	if (rc)
		return rc;
	*mtime = st.mtime;
	memcpy(digest, rt->ref, strlen(rt->ref) + 1);
	return 0;
}

static enum MHD_Result get_manifest(struct registry *r, struct request *q, enum ref_kind kind)
{
	char digest[REGFS_DIGEST_MAX];
	int64_t mtime = 0;
	struct regfs_err e = {0};
	int rc = resolve(r, &q->rt, kind, digest, &mtime, &e);
	if (rc == -ENOENT)
		return unknown_manifest(r, q);
	if (rc)
		return respond_storage_error(r, q, &e);
	struct manifest_entry *m = NULL;
	rc = manifest_load_meta(r, digest, &m, &e);
	if (rc == -EAGAIN)
		return limits_respond_busy(r, q, 503, "UNAVAILABLE", "too many large manifests "
					   "being read at once (regfs.limits.largereads): retry");
	if (rc == -ENOENT)
		return respond_errorf(r, q, 404, "MANIFEST_UNKNOWN", "manifest %s is linked in %s "
				      "but its blob is missing from storage", digest, q->rt.name);
	if (rc)
		return respond_storage_error(r, q, &e);

	const char *inm = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	enum MHD_Result ret;
	if (inm && strstr(inm, digest)) {
		char etag[REGFS_DIGEST_MAX + 2];
		snprintf(etag, sizeof etag, "\"%s\"", digest);
		struct MHD_Response *resp = response_empty();
		if (resp) {
			MHD_add_response_header(resp, "Docker-Content-Digest", digest);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
		}
		ret = respond(r, q, 304, resp, 0);
	} else {
		ret = m->data ? manifest_bytes_respond(r, q, m, digest, mtime)
			      : manifest_bytes_stream(r, q, m, digest, mtime);
		if (!request_is_head(q))
			notify_emit(r, q, &(struct notify_target){"pull", m->media_type, digest, m->len,
				    kind == REF_TAG ? q->rt.ref : NULL, false});
	}
	manifest_bytes_release(r->mb, m);
	return ret;
}

/* ---- PUT ---- */

static bool is_foreign_layer(const char *mt)
{
	return mt && (strstr(mt, ".foreign.") || strstr(mt, ".nondistributable."));
}

/* Is `digest` in this repository: linked (`link`, a _layers or revision
 * link, consumed) and its data present? Marks it first for online GC (gc.c:
 * a blob noted here is not swept by a GC pass running now). */
static bool linked_and_stored(struct registry *r, const char *digest, char *link)
{
	gc_note_referenced(r, digest);
	char *data = regfs_layout_blob_data(digest);
	bool ok = repo_exists(r, link, NULL) && repo_exists(r, data, NULL);
	free(link);
	free(data);
	return ok;
}

static bool blob_present(struct registry *r, const char *name, const char *digest)
{
	return linked_and_stored(r, digest, regfs_layout_layer_link(name, digest));
}

static bool revision_present(struct registry *r, const char *name, const char *digest)
{
	return linked_and_stored(r, digest, regfs_layout_revision_link(name, digest));
}

static enum MHD_Result blob_unknown(struct registry *r, struct request *q, const char *code,
				    const char *what,
				    const char *digest)
{
	char detail[REGFS_DIGEST_MAX + 32];
	snprintf(detail, sizeof detail, "{\"digest\":\"%s\"}", digest);
	char msg[REGFS_DIGEST_MAX + ROUTE_NAME_MAX + 128];
	snprintf(msg, sizeof msg, "%s %s is not in repository %s: push it first", what, digest,
		 q->rt.name);
	return respond_error(r, q, 400, code, msg, detail);
}

/* Writes the manifest blob, the revision link and (for a tag) the tag links. */
static int store_manifest(struct registry *r, const char *name, const char *tag,
			  const char *digest, const char *body, size_t len, struct regfs_err *err)
{
	char *blob = regfs_layout_blob_data(digest);
	char *rev = regfs_layout_revision_link(name, digest);
	char *idx = tag ? regfs_layout_tag_index_link(name, tag, digest) : NULL;
	char *cur = tag ? regfs_layout_tag_current(name, tag) : NULL;
	int rc = -ENOMEM;
	if (!blob || !rev || (tag && (!idx || !cur)))
		goto out;
	gc_note_referenced(r, digest);
	struct regfs_stat_info st;
	rc = 0;
	if (regfs_storage_stat(r->st, blob, &st, NULL) != 0 || st.size != len)
		rc = regfs_storage_put(r->st, blob, body, len, err);
	if (rc == 0)
		rc = repo_write_link(r, rev, digest, err);
	if (rc == 0 && tag)
		rc = repo_write_link(r, idx, digest, err);
	if (rc == 0 && tag)
		rc = repo_write_link(r, cur, digest, err);
out:
	free(blob);
	free(rev);
	free(idx);
	free(cur);
	return rc;
}

/* A manifest body nested deeper than regfs.limits.jsondepth: 400, logged
 * with the client address (checked on the raw bytes, before any parser). */
static enum MHD_Result too_deep(struct registry *r, struct request *q, int maxd)
{
	char peer[64];
	framing_peer(q->conn, peer, sizeof peer);
	log_warn("manifest PUT %s:%s from %s refused (400): JSON nested deeper than "
		 "regfs.limits.jsondepth (%d)", q->rt.name, q->rt.ref, peer, maxd);
	return respond_errorf(r, q, 400, "MANIFEST_INVALID", "manifest invalid: JSON nested "
			      "deeper than %d levels (regfs.limits.jsondepth)", maxd);
}

/* The first blob or child manifest `m` references that the repository does
 * not hold: answered 400 MANIFEST_BLOB_UNKNOWN into *ret, true. False when
 * every reference is there (foreign layers are not ours to hold). */
static bool refuse_missing_refs(struct registry *r, struct request *q,
				const struct regfs_manifest *m, enum MHD_Result *ret)
{
	const char *what = NULL, *missing = NULL;
	if (m->has_config && !blob_present(r, q->rt.name, m->config.digest))
		what = "config blob", missing = m->config.digest;
	for (size_t i = 0; !what && i < m->n_layers; i++)
		if (!is_foreign_layer(m->layers[i].media_type) &&
		    !blob_present(r, q->rt.name, m->layers[i].digest))
			what = "layer blob", missing = m->layers[i].digest;
	for (size_t i = 0; !what && i < m->n_manifests; i++)
		if (!revision_present(r, q->rt.name, m->manifests[i].digest))
			what = "child manifest", missing = m->manifests[i].digest;
	if (!what)
		return false;
	*ret = blob_unknown(r, q, "MANIFEST_BLOB_UNKNOWN", what, missing);
	return true;
}

/* 201 for a stored manifest (Location, Docker-Content-Digest, OCI-Subject),
 * and its push event. `tag` NULL: pushed by digest. */
static enum MHD_Result respond_pushed(struct registry *r, struct request *q,
				      const struct regfs_manifest *m, const char *digest,
				      const char *tag)
{
	struct MHD_Response *resp = response_empty();
	if (resp) {
		char loc[ROUTE_NAME_MAX + REGFS_DIGEST_MAX + 32];
		snprintf(loc, sizeof loc, "/v2/%s/manifests/%s", q->rt.name, digest);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
		MHD_add_response_header(resp, "Docker-Content-Digest", digest);
		if (m->has_subject)
			MHD_add_response_header(resp, "OCI-Subject", m->subject.digest);
	}
	log_debug("manifest %s pushed to %s%s%s", digest, q->rt.name, tag ? ":" : "",
		  tag ? tag : "");
	notify_emit(r, q, &(struct notify_target){"push", m->media_type, digest, jb_len(&q->body),
		    tag, false});
	return respond(r, q, 201, resp, 0);
}

static enum MHD_Result put_manifest_done(struct registry *r, struct request *q, enum ref_kind kind)
{
	if (q->fail.status)
		return respond_error(r, q, (unsigned)q->fail.status,
				     q->fail.code, q->fail.msg, NULL);
	int maxd = r->cfg->limits.jsondepth;
	if (regfs_json_depth(jb_ptr(&q->body), jb_len(&q->body), maxd) > maxd)
		return too_deep(r, q, maxd);
	enum regfs_digest_alg alg = REGFS_SHA256;
	if (kind == REF_DIGEST)
		regfs_digest_parse(q->rt.ref, &alg, NULL, NULL);
	char digest[REGFS_DIGEST_MAX];
	regfs_digest_buf(alg, jb_ptr(&q->body), jb_len(&q->body), digest);
	if (kind == REF_DIGEST && strcmp(digest, q->rt.ref) != 0)
		return respond_errorf(r, q, 400, "DIGEST_INVALID", "manifest content hashes to %s, not %s as the "
				      "URL says", digest, q->rt.ref);
	const char *ct = request_header(q, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct regfs_manifest *m = NULL;
	struct regfs_err e = {0};
	if (regfs_manifest_parse(jb_ptr(&q->body), jb_len(&q->body), ct, &m, &e) != 0)
		return respond_errorf(r, q, 400, "MANIFEST_INVALID", "manifest invalid: %s", regfs_err_str(&e));
	enum MHD_Result ret;
	const char *tag = kind == REF_TAG ? q->rt.ref : NULL;
	/* quota: from the check to the push recorded in the accounting (quota.h) */
	struct quota_hold hold;
	char qmsg[512];
	int qrc = quota_admit(r, q->rt.name, tag, digest, jb_len(&q->body), m, &hold, qmsg,
			      sizeof qmsg);
	if (qrc) {
		regfs_manifest_free(m);
		if (qrc == -EDQUOT)
			return respond_error(r, q, 403, "DENIED", qmsg, NULL);
		return respond_errorf(r, q, 503, "UNAVAILABLE", "%s has a quota and the storage "
				      "accounting that checks it is %s; retry shortly", q->rt.name,
				      qrc == -EAGAIN ? "still being built" : "out of memory");
	}
	/* online GC: from the first check to the last link written (gc.c) */
	gc_writer_begin(r);
	bool writer = true;
	if (refuse_missing_refs(r, q, m, &ret))
		goto out;
	if (store_manifest(r, q->rt.name, tag, digest, jb_ptr(&q->body), jb_len(&q->body),
			   &e) != 0) {
		ret = respond_storage_error(r, q, &e);
		goto out;
	}
	/* counted before the writer ends: the proxy cache's expiry deletes a
	 * blob the usage model says nothing references, once its note is pruned */
	usage_manifest_pushed(r, q->rt.name, tag, digest, jb_len(&q->body), m);
	gc_writer_end(r);
	writer = false;
	quota_release(&hold);
	layerindex_enqueue(r, m, digest);
	ret = respond_pushed(r, q, m, digest, tag);
out:
	if (writer)
		gc_writer_end(r);
	quota_release(&hold);
	regfs_manifest_free(m);
	return ret;
}

/* A manifest body over regfs.limits.manifestsize: refused (413), nothing
 * stored; logged with the client address. */
static enum MHD_Result manifest_too_large(struct registry *r, struct request *q, const char *size)
{
	char peer[64];
	framing_peer(q->conn, peer, sizeof peer);
	unsigned long long max = (unsigned long long)r->cfg->limits.manifestsize;
	log_warn("manifest PUT %s:%s from %s refused (413): %s bytes, over "
		 "regfs.limits.manifestsize (%llu)", q->rt.name, q->rt.ref, peer, size, max);
	return respond_errorf(r, q, 413, "SIZE_INVALID", "manifest of %s bytes exceeds the "
			      "%llu-byte limit (regfs.limits.manifestsize)", size, max);
}

static enum MHD_Result put_manifest(struct registry *r, struct request *q, enum ref_kind kind)
{
	size_t max = (size_t)r->cfg->limits.manifestsize;
	if (!q->started) {
		q->started = true;
		const char *cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > max)
			return manifest_too_large(r, q, cl);
		jb_init(&q->body, max);
		return MHD_YES;
	}
	if (*q->size) {
		if (!q->fail.status) {
			jb_add(&q->body, q->data, *q->size);
			if (jb_error(&q->body) == -ENOMEM)
				return MHD_NO;
			if (jb_error(&q->body)) {
				q->fail.status = 413;
				q->fail.code = "SIZE_INVALID";
				snprintf(q->fail.msg, sizeof q->fail.msg, "manifest exceeds the "
					 "%zu-byte limit (regfs.limits.manifestsize)", max);
				char peer[64];
				framing_peer(q->conn, peer, sizeof peer);
				log_warn("manifest PUT %s:%s from %s refused (413): over "
					 "regfs.limits.manifestsize (%zu)", q->rt.name, q->rt.ref,
					 peer, max);
			}
		}
		*q->size = 0;
		return MHD_YES;
	}
	return put_manifest_done(r, q, kind);
}

/* ---- for the pull-through cache (manifests.h) ---- */

enum MHD_Result manifest_serve(struct registry *r, struct request *q)
{
	return get_manifest(r, q, strchr(q->rt.ref, ':') ? REF_DIGEST : REF_TAG);
}

int manifest_store_fetched(struct registry *r, const char *name, const char *tag,
			   const char *digest, const char *body, size_t len,
			   const char *content_type, struct regfs_err *err)
{
	unsigned long long max = (unsigned long long)r->cfg->limits.manifestsize;
	if (len > max)
		return regfs_errf(err, -EFBIG, "manifest of %zu bytes exceeds the %llu-byte limit "
				  "(regfs.limits.manifestsize)", len, max);
	int maxd = r->cfg->limits.jsondepth;
	if (regfs_json_depth(body, len, maxd) > maxd)
		return regfs_errf(err, -EBADMSG, "manifest JSON nested deeper than %d levels "
				  "(regfs.limits.jsondepth)", maxd);
	struct regfs_manifest *m = NULL;
	struct regfs_err pe = {0};
	if (regfs_manifest_parse(body, len, content_type, &m, &pe) != 0)
		return regfs_errf(err, -EBADMSG, "not a valid manifest: %s", regfs_err_str(&pe));
	gc_writer_begin(r);
	int rc = store_manifest(r, name, tag, digest, body, len, err);
	if (rc == 0) /* inside the writer, as for a PUT */
		usage_manifest_pushed(r, name, tag, digest, len, m);
	gc_writer_end(r);
	regfs_manifest_free(m);
	return rc;
}

/* ---- DELETE ---- */

static char *dir_of(char *path)
{
	char *s = path ? strrchr(path, '/') : NULL;
	if (s)
		*s = '\0';
	return path;
}

static enum MHD_Result delete_manifest(struct registry *r, struct request *q, enum ref_kind kind)
{
	struct regfs_err e = {0};
	if (kind == REF_TAG) {
		char *tagdir = regfs_layout_tag_dir(q->rt.name, q->rt.ref);
		char *cur = regfs_layout_tag_current(q->rt.name, q->rt.ref);
		bool exists = repo_exists(r, cur, NULL);
		int rc = exists ? regfs_storage_del(r->st, tagdir, &e) : -ENOENT;
		free(tagdir);
		free(cur);
		if (rc == 0) {
			usage_tag_deleted(r, q->rt.name, q->rt.ref);
			log_info("tag %s:%s deleted", q->rt.name, q->rt.ref);
			notify_emit(r, q, &(struct notify_target){"delete", .tag = q->rt.ref});
		}
		return respond_removed(r, q, rc, &e, 202, unknown_manifest);
	}
	char *rev = dir_of(regfs_layout_revision_link(q->rt.name, q->rt.ref));
	int rc = rev ? regfs_storage_del(r->st, rev, &e) : -ENOMEM;
	free(rev);
	blobdesc_forget_link(r->bd, q->rt.name, q->rt.ref);
	if (rc == -ENOENT)
		return unknown_manifest(r, q);
	if (rc)
		return respond_storage_error(r, q, &e);
	/* every tag that points at it goes too (registry:2 does the same) */
	struct strvec tags = {0};
	repo_list_tags(r, q->rt.name, &tags, NULL);
	for (size_t i = 0; i < tags.n; i++) {
		char d[REGFS_DIGEST_MAX];
		char *cur = regfs_layout_tag_current(q->rt.name, tags.v[i]);
		if (cur && repo_read_link(r, cur, d, NULL, NULL) == 0 && strcmp(d, q->rt.ref) == 0) {
			char *tagdir = regfs_layout_tag_dir(q->rt.name, tags.v[i]);
			if (tagdir && regfs_storage_del(r->st, tagdir, &e) == 0)
				log_info("tag %s:%s deleted with manifest %s", q->rt.name, tags.v[i],
					 q->rt.ref);
			free(tagdir);
		}
		free(cur);
	}
	strvec_clear(&tags);
	usage_manifest_deleted(r, q->rt.name, q->rt.ref);
	log_info("manifest %s deleted from %s", q->rt.ref, q->rt.name);
	notify_emit(r, q, &(struct notify_target){"delete", .digest = q->rt.ref});
	return respond_body(r, q, 202, NULL, "", 0);
}

enum MHD_Result h_manifest(struct registry *r, struct request *q)
{
	enum ref_kind kind;
	enum MHD_Result ret;
	if (!q->started || q->m != HTTP_PUT) {
		if (!check_ref(r, q, &kind, &ret))
			return ret;
	} else {
		kind = strchr(q->rt.ref, ':') ? REF_DIGEST : REF_TAG;
	}
	if (q->m == HTTP_PUT)
		return put_manifest(r, q, kind);
	if (q->m != HTTP_DELETE)
		return q->proxy ? proxy_manifest(r, q) : get_manifest(r, q, kind);
	if (!r->cfg->delete_enabled)
		return respond_errorf(r, q, 405, "UNSUPPORTED", "deletes are disabled on this "
				      "registry (storage.delete.enabled: false)");
	return delete_manifest(r, q, kind);
}
