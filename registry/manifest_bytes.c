/* manifest_bytes.c — the bytes of manifest blobs in memory, keyed by digest,
 * and manifest_load, the one way handlers read a manifest from storage.
 *
 * Manifests are content-addressed, so a cached entry can never be stale: the
 * bytes of sha256:X are the bytes of sha256:X on every instance. Whether the
 * manifest still belongs to a repository (tag link, revision link) is read
 * from storage on every request by the handlers, never cached here, so
 * several instances sharing one storage stay consistent.
 *
 * Direct-mapped table with a byte budget: a new entry replaces the one in its
 * slot; entries are reference-counted so a reader holding one is never freed
 * under it. */
#include "manifest_bytes.h"

#include "input_limits.h"
#include "registry.h"
#include "request.h"
#include "respond.h"
#include "server.h"

#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/oci.h>
#include <regfs/sflight.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_SLOTS 4096
#define MC_ENTRY_MAX (512 * 1024)

struct mc_slot {
	char digest[REGFS_DIGEST_MAX];
	struct manifest_entry *e;
};

/* First loads of large manifests run one at a time per lane (lane = slot %
 * MC_LANES): a burst of GETs of one uncached large manifest loads it once,
 * the others wait and then find its entry, instead of each holding a copy
 * and a parse tree of it at once. */
#define MC_LANES 16

struct manifest_bytes {
	pthread_mutex_t lock;
	size_t budget, used;
	struct mc_slot slots[MC_SLOTS];
	struct sflight_group lanes_g;
	struct sflight lanes[MC_LANES];
};

struct manifest_bytes *manifest_bytes_new(size_t budget_bytes)
{
	struct manifest_bytes *mc = calloc(1, sizeof *mc);
	if (!mc)
		return NULL;
	pthread_mutex_init(&mc->lock, NULL);
	sflight_group_init(&mc->lanes_g, NULL);
	mc->budget = budget_bytes;
	return mc;
}

static void entry_free(struct manifest_entry *e)
{
	if (!e)
		return;
	free(e->data);
	free(e->media_type);
	free(e->artifact_type);
	free(e->annotations);
	for (int i = 0; i < 2; i++)
		if (e->resp[i])
			MHD_destroy_response(e->resp[i]);
	free(e);
}

/* bytes + the copy a prepared response holds + bookkeeping */
static size_t entry_cost(const struct manifest_entry *e)
{
	return e->data ? 2 * e->len + 512 : 1024; /* a streamed entry: metadata only */
}

void manifest_bytes_free(struct manifest_bytes *mc)
{
	if (!mc)
		return;
	for (size_t i = 0; i < MC_SLOTS; i++)
		entry_free(mc->slots[i].e);
	sflight_group_destroy(&mc->lanes_g);
	pthread_mutex_destroy(&mc->lock);
	free(mc);
}

static size_t slot_of(const char *digest)
{
	const char *hex = strchr(digest, ':');
	uint64_t h = 0;
	for (const char *p = hex ? hex + 1 : digest; *p && p < (hex ? hex + 13 : digest + 12); p++)
		h = h * 16 + (uint64_t)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10);
	return (size_t)(h % MC_SLOTS);
}

static struct manifest_entry *cache_get(struct manifest_bytes *mc, const char *digest)
{
	struct mc_slot *s = &mc->slots[slot_of(digest)];
	struct manifest_entry *e = NULL;
	pthread_mutex_lock(&mc->lock);
	if (s->e && strcmp(s->digest, digest) == 0) {
		e = s->e;
		e->refs++;
	}
	pthread_mutex_unlock(&mc->lock);
	return e;
}

void manifest_bytes_release(struct manifest_bytes *mc, struct manifest_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&mc->lock);
	bool last = --e->refs == 0;
	pthread_mutex_unlock(&mc->lock);
	if (last)
		entry_free(e);
}

/* Inserts e (holding one reference for the caller already). */
static void cache_insert(struct manifest_bytes *mc, const char *digest, struct manifest_entry *e)
{
	if ((e->data && e->len > MC_ENTRY_MAX) || entry_cost(e) > mc->budget)
		return;
	struct mc_slot *s = &mc->slots[slot_of(digest)];
	struct manifest_entry *old = NULL;
	pthread_mutex_lock(&mc->lock);
	if (s->e) {
		old = s->e;
		mc->used -= entry_cost(old);
		s->e = NULL;
		if (--old->refs != 0)
			old = NULL; /* a reader still holds it; it frees it */
	}
	if (mc->used + entry_cost(e) <= mc->budget) {
		memcpy(s->digest, digest, strlen(digest) + 1);
		s->e = e;
		e->refs++;
		mc->used += entry_cost(e);
	}
	pthread_mutex_unlock(&mc->lock);
	entry_free(old);
}

/* The headers of a manifest GET/HEAD answer. */
static void manifest_headers(struct registry *r, struct MHD_Response *resp,
			     const struct manifest_entry *e, const char *digest, int64_t mtime)
{
	char etag[REGFS_DIGEST_MAX + 2], date[40];
	snprintf(etag, sizeof etag, "\"%s\"", digest);
	http_date(mtime, date);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, e->media_type);
	MHD_add_response_header(resp, "Docker-Content-Digest", digest);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	add_common_headers(r, resp);
}

enum MHD_Result manifest_bytes_respond(struct registry *r, struct request *q,
				       struct manifest_entry *e, const char *digest,
				       int64_t mtime)
{
	struct manifest_bytes *mc = r->mb;
	bool head = request_is_head(q);
	int h = head ? 1 : 0;
	enum MHD_Result ret;
	/* The lock is held across queueing: a response replaced by another
	 * thread (tag re-pushed, new mtime) is destroyed only after we queued
	 * ours, which holds MHD's own reference. */
	pthread_mutex_lock(&mc->lock);
	if (!e->resp[h] || e->resp_mtime[h] != mtime) {
		struct MHD_Response *resp =
			head ? response_head(e->len)
			     : MHD_create_response_from_buffer(e->len, e->data, MHD_RESPMEM_MUST_COPY);
		if (!resp) {
			pthread_mutex_unlock(&mc->lock);
			return MHD_NO;
		}
		manifest_headers(r, resp, e, digest, mtime);
		if (e->resp[h])
			MHD_destroy_response(e->resp[h]);
		e->resp[h] = resp;
		e->resp_mtime[h] = mtime;
	}
	ret = MHD_queue_response(q->conn, 200, e->resp[h]);
	pthread_mutex_unlock(&mc->lock);
	request_done(r, q, 200, head ? 0 : e->len); /* outside the lock */
	return ret;
}

/* Media type for a manifest our parser refused (e.g. schema 1 written by an
 * old registry:2): what its JSON says, else by schemaVersion. */
static char *guess_media_type(const char *data, size_t len)
{
	/* bytes our parser refused may be nested arbitrarily deep */
	json_t *j = regfs_json_depth(data, len, REGFS_JSON_DEPTH_MAX) <= REGFS_JSON_DEPTH_MAX
			    ? json_loadb(data, len, 0, NULL)
			    : NULL;
	const char *mt = NULL;
	char *out;
	if (j) {
		mt = json_string_value(json_object_get(j, "mediaType"));
		if (!mt && json_integer_value(json_object_get(j, "schemaVersion")) == 1)
			mt = json_object_get(j, "signatures") ? REGFS_MT_DOCKER_V1_SIGNED
							      : "application/vnd.docker.distribution.manifest.v1+json";
	}
	out = strdup(mt ? mt : "application/octet-stream");
	json_decref(j);
	return out;
}

/* Reads, verifies and parses the manifest blob `digest` into a new entry
 * (one reference, not cached). */
static int load_verified(struct registry *r, const char *digest, struct manifest_entry **out,
			 struct regfs_err *err)
{
	enum regfs_digest_alg alg;
	if (regfs_digest_parse(digest, &alg, NULL, err))
		return -EINVAL;
	char *path = regfs_layout_blob_data(digest);
	if (!path)
		return -ENOMEM;
	struct manifest_entry *e = calloc(1, sizeof *e);
	if (!e) {
		free(path);
		return -ENOMEM;
	}
	int rc = regfs_storage_get(r->st, path, &e->data, &e->len, err);
	if (rc) {
		free(path);
		entry_free(e);
		return rc;
	}
	char got[REGFS_DIGEST_MAX];
	regfs_digest_buf(alg, e->data, e->len, got);
	if (strcmp(got, digest) != 0) {
		log_error("blob %s holds content with digest %s: the storage is corrupt; "
			  "delete the blob and push the image again", path, got);
		free(path);
		entry_free(e);
		return regfs_errf(err, -EIO, "stored manifest %s is corrupt (content hashes to %s)",
				  digest, got);
	}
	free(path);
	struct regfs_manifest *m = NULL;
	if (regfs_manifest_parse(e->data, e->len, NULL, &m, NULL) == 0) {
		e->media_type = strdup(m->media_type ? m->media_type : "application/octet-stream");
		if (m->has_subject)
			memcpy(e->subject, m->subject.digest, sizeof e->subject);
		const char *at = m->artifact_type;
		if (!at && m->kind == REGFS_MANIFEST_IMAGE && m->has_config)
			at = m->config.media_type;
		if (at)
			e->artifact_type = strdup(at);
		if (m->annotations)
			e->annotations = strdup(m->annotations);
		regfs_manifest_free(m);
	} else {
		e->media_type = guess_media_type(e->data, e->len);
	}
	if (!e->media_type) {
		entry_free(e);
		return -ENOMEM;
	}
	e->refs = 1;
	*out = e;
	return 0;
}

int manifest_load(struct registry *r, const char *digest, struct manifest_entry **out,
		  struct regfs_err *err)
{
	*out = cache_get(r->mb, digest);
	if (*out && (*out)->data)
		return 0;
	bool streamed = *out != NULL; /* its bytes are not kept: read them, do not cache */
	manifest_bytes_release(r->mb, *out);
	*out = NULL;
	int rc = load_verified(r, digest, out, err);
	if (!rc && !streamed)
		cache_insert(r->mb, digest, *out);
	return rc;
}

/* A large manifest's first load: verified and parsed once (in its lane,
 * holding a large-read slot), then only its metadata is kept. */
static int load_large(struct registry *r, const char *digest, struct manifest_entry **out,
		      struct regfs_err *err)
{
	struct manifest_bytes *mc = r->mb;
	struct sflight *lane = &mc->lanes[slot_of(digest) % MC_LANES];
	pthread_mutex_lock(&mc->lanes_g.mu);
	while (!sflight_claim(lane, 0))
		sflight_wait_idle(&mc->lanes_g, lane);
	pthread_mutex_unlock(&mc->lanes_g.mu);
	int rc = 0;
	*out = cache_get(mc, digest); /* loaded while this thread waited */
	if (!*out && !limits_large_read_begin(r->cfg))
		rc = -EAGAIN;
	else if (!*out) {
		rc = load_verified(r, digest, out, err);
		limits_large_read_done();
		if (!rc) {
			free((*out)->data);
			(*out)->data = NULL;
			cache_insert(mc, digest, *out);
		}
	}
	pthread_mutex_lock(&mc->lanes_g.mu);
	sflight_end(&mc->lanes_g, lane, false); /* the value lives in the cache */
	pthread_mutex_unlock(&mc->lanes_g.mu);
	return rc;
}

int manifest_load_meta(struct registry *r, const char *digest, struct manifest_entry **out,
		       struct regfs_err *err)
{
	*out = cache_get(r->mb, digest);
	if (*out)
		return 0;
	char *path = regfs_layout_blob_data(digest);
	struct regfs_stat_info st = {0};
	int rc = path ? regfs_storage_stat(r->st, path, &st, err) : -ENOMEM;
	free(path);
	if (rc)
		return rc;
	if (st.size <= MC_ENTRY_MAX)
		return manifest_load(r, digest, out, err);
	return load_large(r, digest, out, err);
}

/* ---- streamed answers ---- */

struct stream_ctx {
	struct regfs_reader *rd;
	struct regfs_hasher *h;
	char digest[REGFS_DIGEST_MAX];
	uint64_t pos, len;
};

/* Hashes as it streams: the bytes were verified when first loaded, and a
 * copy damaged since is caught before its last byte goes out (the client
 * sees a cut response, never a complete wrong one). */
static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream_ctx *x = cls;
	if (x->len - x->pos < max)
		max = (size_t)(x->len - x->pos);
	ssize_t n = regfs_reader_read(x->rd, buf, max, NULL);
	if (n <= 0) {
		log_error("manifest %s: the stored blob ended after %llu of %llu bytes", x->digest,
			  (unsigned long long)x->pos, (unsigned long long)x->len);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	regfs_hasher_update(x->h, buf, (size_t)n);
	x->pos += (uint64_t)n;
	if (x->pos == x->len) {
		char got[REGFS_DIGEST_MAX];
		regfs_hasher_final(x->h, got);
		if (strcmp(got, x->digest)) {
			log_error("blob %s holds content with digest %s: the storage is corrupt; "
				  "delete the blob and push the image again", x->digest, got);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	return n;
}

static void stream_free(void *cls)
{
	struct stream_ctx *x = cls;
	regfs_reader_close(x->rd);
	regfs_hasher_free(x->h);
	free(x);
	limits_large_read_done();
}

/* A response streaming the stored blob of `e` (holds a large-read slot
 * until MHD frees it). NULL with *rc set on failure. */
static struct MHD_Response *stream_body(struct registry *r, const struct manifest_entry *e,
					const char *digest, int *rc, struct regfs_err *err)
{
	enum regfs_digest_alg alg;
	struct stream_ctx *x = calloc(1, sizeof *x);
	char *path = regfs_layout_blob_data(digest);
	*rc = !x || !path ? -ENOMEM : regfs_digest_parse(digest, &alg, NULL, err);
	if (!*rc && !(x->h = regfs_hasher_new(alg)))
		*rc = -ENOMEM;
	if (!*rc)
		*rc = regfs_storage_reader(r->st, path, 0, &x->rd, err);
	free(path);
	struct MHD_Response *resp = NULL;
	if (!*rc) {
		snprintf(x->digest, sizeof x->digest, "%s", digest);
		x->len = e->len;
		resp = MHD_create_response_from_callback(e->len, 64 * 1024, stream_cb, x,
							 stream_free);
		if (resp)
			return resp; /* stream_free gives the slot back */
		*rc = -ENOMEM;
	}
	if (x) {
		regfs_reader_close(x->rd);
		regfs_hasher_free(x->h);
		free(x);
	}
	limits_large_read_done();
	return NULL;
}

enum MHD_Result manifest_bytes_stream(struct registry *r, struct request *q,
				      const struct manifest_entry *e, const char *digest,
				      int64_t mtime)
{
	bool head = request_is_head(q);
	if (!head && !limits_large_read_begin(r->cfg))
		return limits_respond_busy(r, q, 503, "UNAVAILABLE", "too many large manifests "
					   "being read at once (regfs.limits.largereads): retry");
	struct regfs_err err = {0};
	int rc = 0;
	struct MHD_Response *resp = head ? response_head(e->len)
					 : stream_body(r, e, digest, &rc, &err);
	if (rc)
		return respond_storage_error(r, q, &err);
	if (resp)
		manifest_headers(r, resp, e, digest, mtime);
	return respond(r, q, 200, resp, head ? 0 : e->len);
}
