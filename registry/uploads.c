/* uploads.c — blob uploads: POST (session, monolithic, cross-repo mount),
 * PATCH (chunked with Content-Range, or streamed), GET status, PUT to
 * finish, DELETE to cancel.
 *
 * Upload state lives in storage (_uploads/<uuid>/data and startedat), so a
 * restarted registry, or another instance behind the same load balancer,
 * continues any upload. The running hash is only a cache: uuid -> (hasher,
 * offset). When it is missing (other instance, restart, eviction) or its
 * offset differs from the stored size, the stored data is hashed again from
 * the start with a storage reader.
 *
 * Bodies are streamed: every chunk MHD hands us goes to the storage writer
 * and the hasher at once; nothing holds a whole blob in memory.
 *
 * One request at a time per upload: PATCH and PUT hold the storage writer,
 * whose lock spans every instance sharing the storage (storage.h); a second
 * request gets 416 until the first is over.
 *
 * A blob becomes visible only after its digest is verified, by publishing
 * the upload data into blobs/…/data (create-if-absent, still under the
 * lock, so nothing can write it any more); a blob already stored is never
 * touched: that upload is discarded. Then the repository's _layers link is
 * written; then the upload directory is removed. A wrong digest removes the
 * upload and stores nothing. */
#include "uploads.h"

#include "content_range.h"
#include "framing.h"
#include "blobdesc.h"
#include "gc.h"
#include "handlers.h"
#include "notify.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"
#include "usage.h"

#include <regfs/layout.h>
#include <regfs/names.h>
#include <regfs/log.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- per-request upload operation ---- */

/* OP_SESSION and OP_MOUNTED did their work on the first callback and answer
 * at the end (a response queued on the first callback closes the
 * connection in libmicrohttpd 0.9.75); any body they get is discarded. */
enum op_mode { OP_PATCH, OP_PUT, OP_POST_MONO, OP_SESSION, OP_MOUNTED };

struct upload_op {
	enum op_mode mode;
	char uuid[40];
	char digest[REGFS_DIGEST_MAX];     /* expected (PUT / monolithic POST) */
	enum regfs_digest_alg alg;
	struct regfs_writer *w;
	struct regfs_hasher *h;
	uint64_t size;                     /* bytes stored so far */
	bool failed;
	bool too_large;                    /* over regfs.limits.uploadsize */
	struct regfs_err err;
	struct registry *r;
};

void upload_op_free(struct upload_op *op)
{
	if (!op)
		return;
	/* an aborted request: keep what was written resumable, drop the hash
	 * state (it is rebuilt from storage if the client continues) */
	if (op->w)
		regfs_writer_close(op->w, NULL);
	regfs_hasher_free(op->h);
	free(op);
}

void upload_op_cut(const struct upload_op *op, const char *name, const char *peer)
{
	if (op->mode == OP_SESSION || op->mode == OP_MOUNTED || op->too_large)
		return; /* done on the first callback, or removed and logged */
	log_warn("upload %s in %s: the request from %s ended before its body did (the client "
		 "closed the connection); the %" PRIu64 " bytes stored stay resumable at that "
		 "offset, the unfinished request wrote nothing else", op->uuid, name, peer,
		 op->size);
}

static void new_uuid(char out[40])
{
	unsigned char b[16];
	if (getrandom(b, sizeof b, 0) != sizeof b) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof b; i++)
			b[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 8 * 8)) ^ (unsigned char)rand();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Location of an upload or blob: relative, or under http.host when set. */
static void location(struct registry *r, char *out, size_t cap, const char *name,
		     const char *what, const char *id)
{
	const char *host = r->cfg->http_host ? r->cfg->http_host : "";
	size_t hl = strlen(host);
	while (hl && host[hl - 1] == '/')
		hl--;
	snprintf(out, cap, "%.*s/v2/%s/%s/%s", (int)hl, host, name, what, id);
}

/* An answer describing an upload's progress: 202/204, and 416 (with a JSON
 * Content-Type, as registry:2) for a chunk that does not start there. */
static enum MHD_Result upload_progress(struct registry *r, struct request *q, unsigned status,
				       const char *uuid, uint64_t stored)
{
	struct MHD_Response *resp = response_empty();
	if (resp) {
		char loc[ROUTE_NAME_MAX + 160], range[48];
		location(r, loc, sizeof loc, q->rt.name, "blobs/uploads", uuid);
		snprintf(range, sizeof range, "0-%" PRIu64, stored ? stored - 1 : 0);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RANGE, range);
		MHD_add_response_header(resp, "Docker-Upload-UUID", uuid);
		if (status == 416)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						"application/json; charset=utf-8");
	}
	return respond(r, q, status, resp, 0);
}

static enum MHD_Result blob_created(struct registry *r, struct request *q, const char *digest)
{
	struct MHD_Response *resp = response_empty();
	if (resp) {
		char loc[ROUTE_NAME_MAX + 160];
		location(r, loc, sizeof loc, q->rt.name, "blobs", digest);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
		MHD_add_response_header(resp, "Docker-Content-Digest", digest);
	}
	return respond(r, q, 201, resp, 0);
}

static enum MHD_Result upload_unknown(struct registry *r, struct request *q)
{
	return respond_errorf(r, q, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry: "
			      "%s in %s (it finished, was cancelled or purged; start a new "
			      "upload)", q->rt.ref, q->rt.name);
}

/* Another request holds the session (its lock): 416, as for a chunk that
 * does not start where the upload is; the client asks GET for the progress
 * once that request is over. */
static enum MHD_Result upload_busy(struct registry *r, struct request *q)
{
	log_info("upload %s in %s: refused %s, another request is writing this upload",
		 q->rt.ref, q->rt.name, q->method);
	return respond_errorf(r, q, 416, "BLOB_UPLOAD_INVALID", "upload %s is in use by another "
			      "request: one request at a time per upload; retry after it "
			      "finishes (GET the upload for its progress)", q->rt.ref);
}

static bool session_exists(struct registry *r, const char *name, const char *uuid)
{
	char *p = regfs_layout_upload_startedat(name, uuid);
	bool ok = repo_exists(r, p, NULL);
	free(p);
	return ok;
}

/* Answers a failed operation on a session: gone (404), held by another
 * request (416), storage (5xx). */
static enum MHD_Result session_failed(struct registry *r, struct request *q, int rc,
				      const struct regfs_err *e)
{
	if (rc == -ENOENT)
		return upload_unknown(r, q);
	if (rc == -EBUSY)
		return upload_busy(r, q);
	return respond_storage_error(r, q, e);
}

/* The route's uuid is valid and its session exists. */
static bool known_session(struct registry *r, const struct request *q)
{
	return !q->rt.ref_truncated && regfs_layout_uuid_valid(q->rt.ref) &&
	       session_exists(r, q->rt.name, q->rt.ref);
}

/* The writer lost its session while writing (S3: its lease was taken over
 * or deleted; filesystem: its file was deleted): 404 when the upload is
 * gone (cancelled), else 416 (another request has it). */
static enum MHD_Result session_lost(struct registry *r, struct request *q)
{
	if (!session_exists(r, q->rt.name, q->up->uuid))
		return upload_unknown(r, q);
	return upload_busy(r, q);
}

/* Creates _uploads/<uuid>/startedat (RFC 3339, as registry:2 writes it). */
static int session_create(struct registry *r, const char *name, char uuid[40],
			  struct regfs_err *err)
{
	new_uuid(uuid);
	char *p = regfs_layout_upload_startedat(name, uuid);
	if (!p)
		return -ENOMEM;
	char ts[32];
	rfc3339((int64_t)time(NULL), ts);
	int rc = regfs_storage_put(r->st, p, ts, strlen(ts), err);
	free(p);
	if (rc == 0)
		usage_upload_progress(r, name, uuid, 0);
	return rc;
}

/* Hash of the first `size` stored bytes, read back from storage. */
static int rehash(struct registry *r, const char *name, const char *uuid,
		  enum regfs_digest_alg alg, uint64_t size, struct regfs_hasher **out,
		  struct regfs_err *err)
{
	struct regfs_hasher *h = regfs_hasher_new(alg);
	if (!h)
		return -ENOMEM;
	if (size == 0) {
		*out = h;
		return 0;
	}
	char *p = regfs_layout_upload_data(name, uuid);
	struct regfs_reader *rd = NULL;
	int rc = p ? regfs_storage_reader(r->st, p, 0, &rd, err) : -ENOMEM;
	free(p);
	char *buf = rc ? NULL : malloc(256 * 1024);
	if (!rc && !buf)
		rc = -ENOMEM;
	uint64_t got = 0;
	while (rc == 0 && got < size) {
		size_t want = size - got < 256 * 1024 ? (size_t)(size - got) : 256 * 1024;
		ssize_t n = rd->read(rd, buf, want, err);
		if (n < 0)
			rc = (int)n;
		else if (n == 0)
			rc = regfs_errf(err, -EIO, "upload %s: stored data ends at %" PRIu64
					" bytes, expected %" PRIu64, uuid, got, size);
		else {
			regfs_hasher_update(h, buf, (size_t)n);
			got += (uint64_t)n;
		}
	}
	free(buf);
	if (rd)
		rd->close(rd);
	if (rc) {
		regfs_hasher_free(h);
		return rc;
	}
	log_debug("upload %s: hash state rebuilt from %" PRIu64 " stored bytes", uuid, size);
	*out = h;
	return 0;
}

/* Opens the writer and the matching hasher for an existing or new session. */
static int op_open(struct registry *r, const char *name, struct upload_op *op, bool append,
		   struct regfs_err *err)
{
	char *p = regfs_layout_upload_data(name, op->uuid);
	int rc = p ? regfs_storage_writer(r->st, p, append, &op->w, err) : -ENOMEM;
	free(p);
	if (rc)
		return rc;
	op->size = regfs_writer_size(op->w);
	uint64_t off = 0;
	op->h = upcache_take(r->uc, op->uuid, op->alg, &off);
	if (op->h && off != op->size) {
		regfs_hasher_free(op->h);
		op->h = NULL;
	}
	if (!op->h)
		rc = rehash(r, name, op->uuid, op->alg, op->size, &op->h, err);
	return rc;
}

/* A Content-Range must describe the body exactly: refused (416) before the
 * session is opened when its length is not the Content-Length, or a bound
 * overflows. Without Content-Length (chunked) the length is not known here.
 * MHD_YES when the request may go on. */
static enum MHD_Result range_matches_body(struct registry *r, struct request *q, bool *refused)
{
	*refused = false;
	const char *cr = request_header(q, MHD_HTTP_HEADER_CONTENT_RANGE);
	if (!cr || !*cr)
		return MHD_YES;
	uint64_t a, b;
	int rc = regfs_content_range_parse(cr, &a, &b);
	if (rc == -EINVAL)
		return MHD_YES; /* answered 400 below, with the session's state */
	const char *cl = request_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
	if (rc == 0 && (!cl || regfs_content_range_fits(a, b, n)))
		return MHD_YES;
	*refused = true;
	return respond_errorf(r, q, 416, "BLOB_UPLOAD_INVALID", "Content-Range \"%.100s\" does not "
			      "match the body (%s bytes): nothing stored; send "
			      "<start>-<start+length-1>", cr, cl ? cl : "?");
}

static void op_fail(struct upload_op *op, int rc)
{
	if (!op->failed) {
		op->failed = true;
		if (!op->err.code)
			regfs_errf(&op->err, rc, "upload %s: storage write failed", op->uuid);
	}
}

/* Would `more` bytes take an upload of `stored` past regfs.limits.uploadsize? */
static bool over_size(const struct registry *r, uint64_t stored, uint64_t more)
{
	uint64_t max = r->cfg->limits.uploadsize;
	return max && (more > max || stored > max - more);
}

/* The Content-Length of the request takes the upload past the limit. */
static bool body_over_size(const struct registry *r, const struct request *q, uint64_t stored)
{
	const char *cl = request_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return cl && over_size(r, stored, strtoull(cl, NULL, 10));
}

/* An upload past regfs.limits.uploadsize: the whole session is removed
 * (nothing of it stays or becomes a blob) and logged. */
static void remove_too_large(struct registry *r, struct request *q)
{
	struct upload_op *op = q->up;
	if (op->w) {
		regfs_writer_cancel(op->w, NULL);
		regfs_writer_close(op->w, NULL);
		op->w = NULL;
	}
	char *d = regfs_layout_upload_dir(q->rt.name, op->uuid);
	if (d)
		regfs_storage_del(r->st, d, NULL);
	free(d);
	char peer[64];
	framing_peer(q->conn, peer, sizeof peer);
	unsigned long long max = (unsigned long long)r->cfg->limits.uploadsize;
	log_warn("upload %s in %s from %s refused (413): over regfs.limits.uploadsize (%llu "
		 "bytes); the upload was removed", op->uuid, q->rt.name, peer, max);
}

/* The same, answered 413 (the size was known before the body). */
static enum MHD_Result upload_too_large(struct registry *r, struct request *q)
{
	remove_too_large(r, q);
	unsigned long long max = (unsigned long long)r->cfg->limits.uploadsize;
	return respond_errorf(r, q, 413, "SIZE_INVALID", "the upload exceeds the %llu-byte limit "
			      "(regfs.limits.uploadsize): it was removed, nothing is stored", max);
}

static void op_consume(struct upload_op *op, const char *data, size_t n)
{
	/* !op->w: the request was refused and its writer released */
	if (op->failed || !op->w || op->mode == OP_SESSION || op->mode == OP_MOUNTED)
		return;
	if (over_size(op->r, op->size, n)) {
		op->too_large = op->failed = true;
		return;
	}
	ssize_t w = regfs_writer_write(op->w, data, n, &op->err);
	if (w < 0 || (size_t)w != n) {
		op_fail(op, w < 0 ? (int)w : -EIO);
		return;
	}
	regfs_hasher_update(op->h, data, n);
	op->size += n;
}

/* The upload's digest is already stored: the verified upload is discarded
 * and the stored blob left as it is (blobs are immutable). A size that
 * differs means the stored copy is damaged: say so, but never replace it. */
static void note_existing(struct registry *r, const char *digest, uint64_t size)
{
	char *dst = regfs_layout_blob_data(digest);
	struct regfs_stat_info st;
	if (dst && repo_exists(r, dst, &st) && st.size != size)
		log_error("blob %s: stored copy has %" PRIu64 " bytes but a verified upload of it has %"
			  PRIu64 "; the stored copy is damaged: restore it from a backup (it was not "
			  "replaced)", digest, st.size, size);
	else
		log_debug("blob %s already stored: upload discarded", digest);
	free(dst);
}

/* Publishes the committed upload as blob `digest` (create-if-absent, with
 * the session lock still held) and links it into the repository. */
static int publish_and_link(struct registry *r, const char *name, struct upload_op *op,
			    const char *digest, struct regfs_err *e)
{
	char *dst = regfs_layout_blob_data(digest);
	char *link = regfs_layout_layer_link(name, digest);
	int rc = (!dst || !link) ? -ENOMEM : 0;
	gc_writer_begin(r);
	gc_note_referenced(r, digest);
	if (rc == 0)
		rc = regfs_writer_publish(op->w, dst, e);
	bool existed = rc == -EEXIST;
	/* discarded: remove the data while the lock is still held, so a request
	 * waiting for the session finds it gone rather than resumable */
	if (existed)
		regfs_writer_cancel(op->w, NULL);
	regfs_writer_close(op->w, NULL); /* releases the lock; nothing left to lose */
	op->w = NULL;
	if (existed) {
		note_existing(r, digest, op->size);
		rc = 0;
	}
	if (rc == 0)
		rc = repo_write_link(r, link, digest, e);
	if (rc == 0) /* a pull right after the push asks storage for the data only */
		blobdesc_note_pushed(r->bd, name, digest, existed ? NULL : &op->size);
	gc_writer_end(r);
	free(dst);
	free(link);
	return rc;
}

/* Finishes PUT / monolithic POST: verify, publish, link, drop the session. */
static enum MHD_Result op_finish(struct registry *r, struct request *q)
{
	struct upload_op *op = q->up;
	struct regfs_err e = {0};
	char got[REGFS_DIGEST_MAX];
	int rc = regfs_writer_commit(op->w, &e);
	char *updir = regfs_layout_upload_dir(q->rt.name, op->uuid);
	if (rc) {
		regfs_writer_close(op->w, NULL);
		op->w = NULL;
		free(updir);
		if (rc == -ENOENT || rc == -EBUSY)
			return session_lost(r, q);
		return respond_storage_error(r, q, &e);
	}
	regfs_hasher_final(op->h, got);
	regfs_hasher_free(op->h);
	op->h = NULL;
	if (strcmp(got, op->digest) != 0) {
		regfs_writer_close(op->w, NULL);
		op->w = NULL;
		if (updir)
			regfs_storage_del(r->st, updir, NULL);
		free(updir);
		usage_upload_ended(r, q->rt.name, op->uuid, NULL, 0);
		char detail[2 * REGFS_DIGEST_MAX + 48];
		snprintf(detail, sizeof detail, "{\"expected\":\"%s\",\"actual\":\"%s\"}", op->digest, got);
		char msg[3 * REGFS_DIGEST_MAX];
		snprintf(msg, sizeof msg, "provided digest %s does not match uploaded content (%s); "
			 "the upload was discarded", op->digest, got);
		return respond_error(r, q, 400, "DIGEST_INVALID", msg, detail);
	}
	/* The writer (and its lock) stays open through the publish, so no other
	 * request can write the data between verification and publication. */
	rc = publish_and_link(r, q->rt.name, op, got, &e);
	if (updir)
		regfs_storage_del(r->st, updir, NULL);
	usage_upload_ended(r, q->rt.name, op->uuid, rc == 0 ? got : NULL, op->size);
	free(updir);
	if (rc == -ENOENT) /* cancelled while it was being finished */
		return upload_unknown(r, q);
	if (rc)
		return respond_storage_error(r, q, &e);
	log_debug("blob %s (%" PRIu64 " bytes) stored in %s", got, op->size, q->rt.name);
	notify_emit(r, q, &(struct notify_target){"push", "application/octet-stream", got, op->size,
		    NULL, true});
	return blob_created(r, q, got);
}

/* Drives the body of PATCH / PUT / monolithic POST once `q->up` is open. */
static enum MHD_Result op_body(struct registry *r, struct request *q)
{
	struct upload_op *op = q->up;
	if (*q->size) {
		op_consume(op, q->data, *q->size);
		*q->size = 0;
		if (op->too_large && op->w) {
			/* a chunked body past the limit: libmicrohttpd 0.9.75 cannot
			 * answer before the body ends, and the rest would only be
			 * drained: the connection is closed now */
			remove_too_large(r, q);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (op->too_large)
		return upload_too_large(r, q);
	if (op->failed) {
		/* the writer state is uncertain: drop the hash state */
		if (op->w) {
			regfs_writer_close(op->w, NULL);
			op->w = NULL;
		}
		return respond_storage_error(r, q, &op->err);
	}
	if (op->mode == OP_SESSION)
		return upload_progress(r, q, 202, op->uuid, 0);
	if (op->mode == OP_MOUNTED)
		return blob_created(r, q, op->digest);
	if (op->mode == OP_PATCH) {
		struct regfs_err e = {0};
		int rc = regfs_writer_close(op->w, &e);
		op->w = NULL;
		if (rc == -ENOENT || rc == -EBUSY)
			return session_lost(r, q);
		if (rc)
			return respond_storage_error(r, q, &e);
		if (!session_exists(r, q->rt.name, op->uuid)) {
			/* cancelled while this PATCH ran (on S3 a DELETE can miss the
			 * lease created at the same moment): drop what it left */
			char *d = regfs_layout_upload_dir(q->rt.name, op->uuid);
			if (d)
				regfs_storage_del(r->st, d, NULL);
			free(d);
			return upload_unknown(r, q);
		}
		upcache_give(r->uc, op->uuid, op->alg, op->h, op->size);
		op->h = NULL;
		usage_upload_progress(r, q->rt.name, op->uuid, op->size);
		return upload_progress(r, q, 202, op->uuid, op->size);
	}
	return op_finish(r, q);
}

static struct upload_op *op_new(struct registry *r, enum op_mode mode)
{
	struct upload_op *op = calloc(1, sizeof *op);
	if (op) {
		op->mode = mode;
		op->r = r;
		op->alg = REGFS_SHA256;
	}
	return op;
}

/* ---- blobs from elsewhere (uploads.h: upload_store) ---- */

/* src's bytes into op's writer and hasher until src ends. */
static int store_copy(struct upload_op *op, upload_src_fn *src, void *arg, struct regfs_err *e)
{
	enum { BUF = 256 * 1024 };
	char *buf = malloc(BUF);
	if (!buf)
		return regfs_errf(e, -ENOMEM, "out of memory");
	int rc = 0;
	for (;;) {
		ssize_t n = src(arg, buf, BUF, e);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		op_consume(op, buf, (size_t)n);
		if (op->failed) {
			rc = op->too_large ? regfs_errf(e, -EFBIG, "blob over regfs.limits.uploadsize")
					   : op->err.code;
			if (op->err.code && e && !e->code)
				*e = op->err;
			break;
		}
	}
	free(buf);
	return rc;
}

/* Commits op's writer and checks what it holds hashes to op->digest. */
static int store_verify(struct upload_op *op, struct regfs_err *e)
{
	int rc = regfs_writer_commit(op->w, e);
	if (rc)
		return rc;
	char got[REGFS_DIGEST_MAX];
	regfs_hasher_final(op->h, got);
	if (strcmp(got, op->digest) != 0)
		return regfs_errf(e, -EPROTO, "the %" PRIu64 " bytes to store hash to %s, not %s: "
				  "nothing stored", op->size, got, op->digest);
	return 0;
}

int upload_store(struct registry *r, const char *name, const char *digest, upload_src_fn *src,
		 void *arg, uint64_t *size, struct regfs_err *e)
{
	struct upload_op *op = op_new(r, OP_PUT);
	if (!op)
		return regfs_errf(e, -ENOMEM, "out of memory");
	snprintf(op->digest, sizeof op->digest, "%s", digest);
	int rc = regfs_digest_parse(digest, &op->alg, NULL, NULL);
	op->h = rc ? NULL : regfs_hasher_new(op->alg);
	if (rc || !op->h)
		rc = regfs_errf(e, rc ? rc : -ENOMEM, "cannot hash digest %s", digest);
	if (!rc)
		rc = session_create(r, name, op->uuid, e);
	char *p = rc ? NULL : regfs_layout_upload_data(name, op->uuid);
	if (!rc)
		rc = p ? regfs_storage_writer(r->st, p, false, &op->w, e) : -ENOMEM;
	free(p);
	if (!rc)
		rc = store_copy(op, src, arg, e);
	if (!rc)
		rc = store_verify(op, e);
	if (!rc)
		rc = publish_and_link(r, name, op, digest, e);
	if (op->w) { /* failed before the publish: drop the data */
		regfs_writer_cancel(op->w, NULL);
		regfs_writer_close(op->w, NULL);
		op->w = NULL;
	}
	char *d = op->uuid[0] ? regfs_layout_upload_dir(name, op->uuid) : NULL;
	if (d)
		regfs_storage_del(r->st, d, NULL);
	free(d);
	if (op->uuid[0])
		usage_upload_ended(r, name, op->uuid, rc == 0 ? digest : NULL, op->size);
	*size = op->size;
	upload_op_free(op);
	return rc;
}

/* ---- endpoints ---- */

/* POST: a new session, a monolithic upload, or a cross-repository mount. */
enum MHD_Result h_upload_start(struct registry *r, struct request *q)
{
	if (q->started)
		return q->up ? op_body(r, q) : MHD_NO;
	q->started = true;
	struct regfs_err e = {0};
	const char *mount = request_query(q, "mount");
	const char *from = request_query(q, "from");
	const char *dg = request_query(q, "digest");
	/* q->from_ok: the client may read `from` (auth.h); if not, a new
	 * session as for an unknown blob, so nothing of `from` shows */
	if (mount && regfs_digest_valid(mount) && from && regfs_name_valid(from) && q->from_ok) {
		char *src = regfs_layout_layer_link(from, mount);
		char *blob = regfs_layout_blob_data(mount);
		gc_writer_begin(r);
		gc_note_referenced(r, mount);
		struct regfs_stat_info st = {0};
		if (repo_exists(r, src, NULL) && repo_exists(r, blob, &st)) {
			char *dst = regfs_layout_layer_link(q->rt.name, mount);
			int rc = dst ? repo_write_link(r, dst, mount, &e) : -ENOMEM;
			gc_writer_end(r);
			free(dst);
			free(src);
			free(blob);
			if (rc)
				return respond_storage_error(r, q, &e);
			log_debug("blob %s mounted from %s into %s", mount, from, q->rt.name);
			usage_repo_seen(r, q->rt.name);
			notify_emit(r, q, &(struct notify_target){"mount", "application/octet-stream",
				    mount, st.size, NULL, true});
			q->up = op_new(r, OP_MOUNTED);
			if (!q->up)
				return MHD_NO;
			snprintf(q->up->digest, sizeof q->up->digest, "%s", mount);
			return MHD_YES;
		}
		gc_writer_end(r);
		free(src);
		free(blob);
		/* not mountable: fall back to a new session, as the spec says */
	}
	enum regfs_digest_alg alg = REGFS_SHA256;
	if (dg && regfs_digest_parse(dg, &alg, NULL, NULL) != 0)
		return respond_errorf(r, q, 400, "DIGEST_INVALID", "invalid digest parameter "
				      "\"%.140s\"", dg);
	struct upload_op *op = op_new(r, dg ? OP_POST_MONO : OP_SESSION);
	if (!op)
		return MHD_NO;
	q->up = op;
	op->alg = alg;
	if (dg)
		snprintf(op->digest, sizeof op->digest, "%s", dg);
	int rc = session_create(r, q->rt.name, op->uuid, &e);
	if (rc)
		return respond_storage_error(r, q, &e);
	char *p = regfs_layout_upload_data(q->rt.name, op->uuid);
	rc = p ? regfs_storage_writer(r->st, p, false, &op->w, &e) : -ENOMEM;
	free(p);
	if (rc)
		return respond_storage_error(r, q, &e);
	if (!dg) {
		/* a plain session: the empty data object makes it resumable */
		rc = regfs_writer_close(op->w, &e);
		op->w = NULL;
		if (rc)
			return respond_storage_error(r, q, &e);
		return MHD_YES;
	}
	if (body_over_size(r, q, 0))
		return upload_too_large(r, q);
	op->h = regfs_hasher_new(alg);
	if (!op->h)
		return MHD_NO;
	return MHD_YES;
}

/* PATCH (mode OP_PATCH) or PUT (OP_PUT) of an upload session. */
static enum MHD_Result patch_or_put(struct registry *r, struct request *q, enum op_mode mode)
{
	if (q->started)
		return op_body(r, q);
	q->started = true;
	const char *uuid = q->rt.ref;
	if (!known_session(r, q))
		return upload_unknown(r, q);
	bool refused;
	enum MHD_Result res = range_matches_body(r, q, &refused);
	if (refused)
		return res;
	struct upload_op *op = op_new(r, mode);
	if (!op)
		return MHD_NO;
	q->up = op;
	snprintf(op->uuid, sizeof op->uuid, "%.36s", uuid);
	if (mode == OP_PUT) {
		const char *dg = request_query(q, "digest");
		if (!dg || regfs_digest_parse(dg, &op->alg, NULL, NULL) != 0)
			return respond_errorf(r, q, 400, "DIGEST_INVALID", "PUT to finish an upload needs a valid "
					      "?digest= parameter (got \"%.140s\")", dg ? dg : "");
		snprintf(op->digest, sizeof op->digest, "%s", dg);
	}
	struct regfs_err e = {0};
	int rc = op_open(r, q->rt.name, op, true, &e);
	if (rc)
		return session_failed(r, q, rc, &e);
	const char *cr = request_header(q, MHD_HTTP_HEADER_CONTENT_RANGE);
	uint64_t a, b;
	if (cr && *cr && (regfs_content_range_parse(cr, &a, &b) || a != op->size)) {
		/* refused: release the session before answering, so the client's
		 * next request does not find it still held by this one */
		regfs_writer_close(op->w, NULL);
		op->w = NULL;
	}
	if (cr && *cr) {
		if (regfs_content_range_parse(cr, &a, &b))
			return respond_errorf(r, q, 400, "BLOB_UPLOAD_INVALID", "invalid Content-Range \"%.100s\": "
					      "expected <start>-<end>", cr);
		if (a != op->size) {
			/* out of order: tell the client where we are */
			log_debug("upload %s: chunk starts at %" PRIu64 ", stored size is %" PRIu64,
				  op->uuid, a, op->size);
			return upload_progress(r, q, 416, op->uuid, op->size);
		}
	}
	if (body_over_size(r, q, op->size))
		return upload_too_large(r, q);
	return MHD_YES;
}

/* DELETE: cancels the upload. */
static enum MHD_Result upload_cancel(struct registry *r, struct request *q)
{
	if (!known_session(r, q))
		return upload_unknown(r, q);
	struct regfs_err e = {0};
	char *d = regfs_layout_upload_dir(q->rt.name, q->rt.ref);
	int rc = d ? regfs_storage_del(r->st, d, &e) : -ENOMEM;
	free(d);
	if (rc == 0)
		usage_upload_ended(r, q->rt.name, q->rt.ref, NULL, 0);
	return respond_removed(r, q, rc, &e, 204, upload_unknown);
}

/* GET/HEAD: the upload's progress. */
static enum MHD_Result upload_status(struct registry *r, struct request *q)
{
	const char *uuid = q->rt.ref;
	if (!known_session(r, q))
		return upload_unknown(r, q);
	struct regfs_err e = {0};
	/* The stored object's size, without taking the session's lock; an
	 * upload distribution's S3 driver left in progress has no object yet:
	 * only a writer knows its size. */
	char *p = regfs_layout_upload_data(q->rt.name, uuid);
	struct regfs_stat_info st = {0};
	int rc = p ? regfs_storage_stat(r->st, p, &st, &e) : -ENOMEM;
	uint64_t stored = st.size;
	struct regfs_writer *w = NULL;
	if (rc == -ENOENT)
		rc = regfs_storage_writer(r->st, p, true, &w, &e);
	free(p);
	if (rc)
		return session_failed(r, q, rc, &e);
	if (w) {
		stored = w->size(w);
		w->close(w, NULL);
	}
	return upload_progress(r, q, 204, uuid, stored);
}

enum MHD_Result h_upload(struct registry *r, struct request *q)
{
	switch (q->m) {
	case HTTP_PATCH: return patch_or_put(r, q, OP_PATCH);
	case HTTP_PUT: return patch_or_put(r, q, OP_PUT);
	case HTTP_DELETE: return upload_cancel(r, q);
	default: return upload_status(r, q);
	}
}
