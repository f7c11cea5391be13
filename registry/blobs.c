/* blobs.c — GET/HEAD/DELETE /v2/<name>/blobs/<digest>.
 *
 * A blob is served to a repository only when that repository links it
 * (_layers link, or a manifest revision link), as registry:2 does: knowing a
 * digest is not enough to read another repository's data.
 *
 * GET uses sendfile through MHD when the driver gives a file descriptor
 * (filesystem), a streaming callback over the driver's reader otherwise, and
 * a 307 redirect when the driver has URLs (S3) and storage.redirect is on.
 * HEAD touches two stats and nothing else; a whole-blob GET without sendfile
 * takes the size from the storage GET's answer (no stat). */
#include "blobs.h"

#include "blobdesc.h"
#include "gc.h"
#include "handlers.h"
#include "notify.h"
#include "proxy.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"
#include "server.h"

#include <regfs/hash.h>
#include <regfs/layout.h>
#include <regfs/log.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int blob_parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *end)
{
	if (!h)
		return 0;
	while (*h == ' ')
		h++;
	if (strncmp(h, "bytes=", 6) != 0)
		return 0;
	h += 6;
	if (strchr(h, ','))
		return 0; /* multiple ranges: we answer the whole blob, as allowed */
	char *e;
	if (*h == '-') {
		uint64_t n = strtoull(h + 1, &e, 10);
		if (e == h + 1 || *e)
			return 0;
		if (n == 0 || size == 0)
			return -1;
		*start = n >= size ? 0 : size - n;
		*end = size - 1;
		return 1;
	}
	if (*h < '0' || *h > '9')
		return 0;
	uint64_t a = strtoull(h, &e, 10);
	if (*e != '-')
		return 0;
	const char *b = e + 1;
	uint64_t z = size ? size - 1 : 0;
	if (*b) {
		z = strtoull(b, &e, 10);
		if (*e)
			return 0;
		if (z < a)
			return 0; /* syntactically invalid: ignore per RFC 9110 */
		if (z >= size)
			z = size - 1;
	}
	if (a >= size)
		return -1;
	*start = a;
	*end = z;
	return 1;
}

/* ---- prepared HEAD responses ---- */

#define HC_SLOTS 1024

struct hc_slot {
	char digest[REGFS_DIGEST_MAX];
	uint64_t size;
	struct MHD_Response *resp;
};

struct headcache {
	pthread_mutex_t lock;
	struct hc_slot s[HC_SLOTS];
};

struct headcache *headcache_new(void)
{
	struct headcache *hc = calloc(1, sizeof *hc);
	if (hc)
		pthread_mutex_init(&hc->lock, NULL);
	return hc;
}

void headcache_free(struct headcache *hc)
{
	if (!hc)
		return;
	for (size_t i = 0; i < HC_SLOTS; i++)
		if (hc->s[i].resp)
			MHD_destroy_response(hc->s[i].resp);
	pthread_mutex_destroy(&hc->lock);
	free(hc);
}

/* The slot of a digest: a hash of the first 16 hex digits. */
static size_t hc_slot_of(const char *digest)
{
	const char *hex = strchr(digest, ':');
	hex = hex ? hex + 1 : digest;
	return (size_t)(regfs_fnv1a64(hex, strnlen(hex, 16)) % HC_SLOTS);
}

void blob_headers(struct MHD_Response *resp, const char *digest)
{
	char etag[ROUTE_REF_MAX + 4];
	snprintf(etag, sizeof etag, "\"%s\"", digest);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(resp, "Docker-Content-Digest", digest);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=31536000");
}

/* HEAD without Range: a shared response per digest (lock held across
 * queueing, so a replaced response outlives our use of it). */
static enum MHD_Result head_cached(struct registry *r, struct request *q, const char *digest,
				   uint64_t total)
{
	struct headcache *hc = r->hc;
	struct hc_slot *sl = &hc->s[hc_slot_of(digest)];
	pthread_mutex_lock(&hc->lock);
	if (!sl->resp || sl->size != total || strcmp(sl->digest, digest) != 0) {
		struct MHD_Response *resp = response_head(total);
		if (!resp) {
			pthread_mutex_unlock(&hc->lock);
			return MHD_NO;
		}
		blob_headers(resp, digest);
		add_common_headers(r, resp);
		if (sl->resp)
			MHD_destroy_response(sl->resp);
		sl->resp = resp;
		sl->size = total;
		snprintf(sl->digest, sizeof sl->digest, "%.135s", digest);
	}
	enum MHD_Result ret = MHD_queue_response(q->conn, 200, sl->resp);
	pthread_mutex_unlock(&hc->lock);
	request_done(r, q, 200, 0); /* outside the lock */
	return ret;
}

struct rd_ctx {
	struct regfs_reader *rd;
};

static ssize_t reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct rd_ctx *x = cls;
	ssize_t n = regfs_reader_read(x->rd, buf, max, NULL);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void reader_free(void *cls)
{
	struct rd_ctx *x = cls;
	if (x->rd)
		regfs_reader_close(x->rd);
	free(x);
}

/* Is there an object (a link file, blob data) at path? One storage request:
 * a missing object never turns into a directory question. */
static bool object_exists(struct registry *r, const char *path)
{
	struct regfs_stat_info st;
	return path && regfs_storage_stat_object(r->st, path, &st, NULL) == 0;
}

/* Is the blob linked in this repository? A fresh positive answer of the
 * blob descriptor cache, else the storage's (and a yes is remembered). */
static bool linked(struct registry *r, const char *name, const char *digest)
{
	if (blobdesc_linked(r->bd, name, digest))
		return true;
	char *p = regfs_layout_layer_link(name, digest);
	bool ok = object_exists(r, p);
	free(p);
	if (!ok) {
		p = regfs_layout_revision_link(name, digest);
		ok = object_exists(r, p);
		free(p);
	}
	if (ok)
		blobdesc_note_linked(r->bd, name, digest);
	return ok;
}

static enum MHD_Result blob_unknown(struct registry *r, struct request *q)
{
	char detail[ROUTE_REF_MAX + 32];
	snprintf(detail, sizeof detail, "{\"digest\":\"%s\"}", q->rt.ref);
	char msg[ROUTE_REF_MAX + ROUTE_NAME_MAX + 64];
	snprintf(msg, sizeof msg, "blob unknown to registry: %s in %s", q->rt.ref, q->rt.name);
	return respond_error(r, q, 404, "BLOB_UNKNOWN", msg, detail);
}

/* A 307 to the driver's URL for the blob (S3 with redirects on); false when
 * there is none and the registry serves the bytes itself. */
static bool redirected(struct registry *r, struct request *q, const char *path,
		       enum MHD_Result *ret)
{
	const char *digest = q->rt.ref;
	if (request_is_head(q) || r->cfg->redirect_disable)
		return false;
	char *u = NULL; /* -ENOTSUP without direct URLs */
	if (regfs_storage_url_for(r->st, path, 1200, &u, NULL) != 0 || !u)
		return false;
	struct MHD_Response *resp = response_empty();
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, u);
		MHD_add_response_header(resp, "Docker-Content-Digest", digest);
	}
	free(u);
	*ret = respond(r, q, 307, resp, 0);
	return true;
}

/* The blob's size, and for a GET a file descriptor when the driver has one
 * (*fd stays -1 otherwise), or, for a whole-object GET on a driver without
 * one (S3), the open reader whose answer carries the size: the GET is the
 * only storage request (no stat first; a missing object is its 404). A HEAD
 * or a ranged GET takes the size from the blob descriptor cache when it
 * holds it, else from a stat. */
static int blob_open(struct registry *r, struct request *q, const char *path, int *fd,
		     struct regfs_reader **rd, uint64_t *total, struct regfs_err *e)
{
	bool head = request_is_head(q);
	int rc;
	if (!head && regfs_storage_supports(r->st, REGFS_STORAGE_OPEN_FD))
		return regfs_storage_open_fd(r->st, path, fd, total, e);
	if (!head && !request_header(q, MHD_HTTP_HEADER_RANGE)) {
		rc = regfs_storage_reader(r->st, path, 0, rd, e);
		if (rc)
			return rc;
		if ((*rd)->size_known) {
			*total = (*rd)->size;
			blobdesc_note_size(r->bd, q->rt.ref, *total);
			return 0;
		}
	}
	if (blobdesc_size(r->bd, q->rt.ref, total))
		return 0;
	struct regfs_stat_info st;
	rc = regfs_storage_stat_object(r->st, path, &st, e);
	*total = st.size;
	if (rc == 0)
		blobdesc_note_size(r->bd, q->rt.ref, *total);
	if (rc && *rd) {
		regfs_reader_close(*rd);
		*rd = NULL;
	}
	return rc;
}

/* The linked blob's data is not in storage: forget what the cache said of
 * it; a cached repository fetches it from upstream, others answer 404. */
static enum MHD_Result data_missing(struct registry *r, struct request *q)
{
	blobdesc_forget_blob(r->bd, q->rt.ref);
	return q->proxy ? proxy_blob(r, q) : blob_unknown(r, q);
}

/* The body of a GET of [start, start+len): sendfile from fd when there is
 * one, else a streaming reader. NULL with *rc set when the reader fails. */
static struct MHD_Response *blob_body(struct registry *r, const char *path, int fd,
				      struct regfs_reader *rd, uint64_t start, uint64_t len,
				      int *rc, struct regfs_err *e)
{
	struct MHD_Response *resp;
	*rc = 0;
	if (fd >= 0 && r->tls) {
		/* no sendfile under TLS, and libmicrohttpd reads an fd response
		 * 4 KiB at a time (one small TLS record each): the reader below
		 * fills the connection's whole buffer */
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		resp = MHD_create_response_from_fd_at_offset64(len, fd, start);
		if (!resp)
			close(fd);
		return resp;
	}
	struct rd_ctx *x = calloc(1, sizeof *x);
	if (x && rd) {
		x->rd = rd; /* opened at 0 by blob_open: a whole-object GET */
		*rc = 0;
	} else {
		*rc = x ? regfs_storage_reader(r->st, path, start, &x->rd, e) : -ENOMEM;
	}
	if (*rc || !x) {
		regfs_reader_close(rd);
		free(x);
		return NULL;
	}
	resp = MHD_create_response_from_callback(len, 256 * 1024, reader_cb, x, reader_free);
	if (!resp)
		reader_free(x);
	return resp;
}

enum MHD_Result blob_range_unsatisfiable(struct registry *r, struct request *q, uint64_t total)
{
	char cr[64];
	struct MHD_Response *resp = response_empty();
	snprintf(cr, sizeof cr, "bytes */%" PRIu64, total);
	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	return respond(r, q, 416, resp, 0);
}

/* GET or HEAD of a blob the repository links, from `path` in storage. */
static enum MHD_Result serve_blob(struct registry *r, struct request *q, const char *path)
{
	const char *digest = q->rt.ref;
	bool head = request_is_head(q);
	struct regfs_err e = {0};
	int fd = -1;
	struct regfs_reader *rd = NULL;
	uint64_t total = 0;
	int rc = blob_open(r, q, path, &fd, &rd, &total, &e);
	if (rc)
		return rc == -ENOENT ? data_missing(r, q) : respond_storage_error(r, q, &e);
	uint64_t start = 0, end = total ? total - 1 : 0;
	const char *rh = request_header(q, MHD_HTTP_HEADER_RANGE);
	int ranged = blob_parse_range(rh, total, &start, &end);
	if (ranged < 0) {
		if (fd >= 0)
			close(fd);
		regfs_reader_close(rd);
		return blob_range_unsatisfiable(r, q, total);
	}
	if (head && ranged == 0)
		return head_cached(r, q, digest, total);
	uint64_t len = total ? end - start + 1 : 0;
	struct MHD_Response *resp = head ? response_head(len)
					 : blob_body(r, path, fd, rd, start, len, &rc, &e);
	if (rc)
		return rc == -ENOENT ? data_missing(r, q) : respond_storage_error(r, q, &e);
	if (resp) {
		blob_headers(resp, digest);
		if (ranged > 0) {
			char cr[96];
			snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, total);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		}
	}
	if (resp && !head)
		notify_emit(r, q, &(struct notify_target){"pull", "application/octet-stream", digest,
			    total, NULL, true});
	return respond(r, q, ranged > 0 ? 206 : 200, resp, head ? 0 : len);
}

/* Would redirected() send this request to the driver's URL? */
static bool redirecting(struct registry *r, struct request *q)
{
	return !request_is_head(q) && !r->cfg->redirect_disable &&
	       regfs_storage_supports(r->st, REGFS_STORAGE_URL_FOR);
}

/* Is the blob's data in storage (the cache's size entry, else a stat)? */
static bool data_present(struct registry *r, const char *digest, const char *path)
{
	uint64_t size;
	if (blobdesc_size(r->bd, digest, &size))
		return true;
	struct regfs_stat_info st;
	if (regfs_storage_stat_object(r->st, path, &st, NULL) != 0)
		return false;
	blobdesc_note_size(r->bd, digest, st.size);
	return true;
}

static enum MHD_Result get_blob(struct registry *r, struct request *q)
{
	char *path = regfs_layout_blob_data(q->rt.ref);
	if (!path)
		return MHD_NO;
	bool have = linked(r, q->rt.name, q->rt.ref);
	enum MHD_Result ret;
	/* A cached repository's blob not linked yet is fetched upstream; a
	 * linked one whose data is missing too: checked here before a redirect
	 * (the client would follow it to nothing), else by serve_blob's own
	 * storage request (data_missing). */
	if (q->proxy && !(have && (!redirecting(r, q) || data_present(r, q->rt.ref, path))))
		ret = proxy_blob(r, q);
	else if (!have)
		ret = blob_unknown(r, q);
	else if (!redirected(r, q, path, &ret)) {
		/* A pushing client skips uploading blobs a HEAD finds: note
		 * before the stat, so online GC keeps the blob for `delay`. */
		if (request_is_head(q))
			gc_note_referenced(r, q->rt.ref);
		ret = serve_blob(r, q, path);
	}
	free(path);
	return ret;
}

static enum MHD_Result delete_blob(struct registry *r, struct request *q)
{
	if (!r->cfg->delete_enabled)
		return respond_errorf(r, q, 405, "UNSUPPORTED", "deletes are disabled on this "
				      "registry (storage.delete.enabled: false)");
	char *link = regfs_layout_layer_link(q->rt.name, q->rt.ref);
	char *s = link ? strrchr(link, '/') : NULL;
	if (s)
		*s = '\0';
	struct regfs_err e = {0};
	int rc = link ? regfs_storage_del(r->st, link, &e) : -ENOMEM;
	free(link);
	if (rc == 0 || rc == -ENOENT)
		blobdesc_forget_link(r->bd, q->rt.name, q->rt.ref);
	if (rc == 0) {
		log_info("blob %s unlinked from %s", q->rt.ref, q->rt.name);
		notify_emit(r, q, &(struct notify_target){"delete", .digest = q->rt.ref, .blob = true});
	}
	return respond_removed(r, q, rc, &e, 202, blob_unknown);
}

enum MHD_Result h_blob(struct registry *r, struct request *q)
{
	if (q->rt.ref_truncated || !regfs_digest_valid(q->rt.ref))
		return respond_errorf(r, q, 400, "DIGEST_INVALID", "invalid digest \"%.140s\": "
				      "expected sha256:<64 lowercase hex>", q->rt.ref);
	if (q->m == HTTP_DELETE)
		return delete_blob(r, q);
	return get_blob(r, q);
}
