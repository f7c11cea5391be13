/* s3_writer.c — the S3 driver's writer: an S3 multipart upload whose state
 * lives in the bucket, as distribution's S3 driver keeps it, so an upload
 * continues after a restart and on any instance sharing the bucket.
 *
 * - Data is buffered up to `chunksize` and sent as parts of exactly that
 *   size (S3 wants >= 5 MiB for every part but the last).
 * - close() without commit sends what is buffered as a last, possibly small
 *   part, and creates the multipart upload if there was none yet: nothing
 *   stays in memory, and Writer(append=true) elsewhere finds the upload with
 *   ListMultipartUploads(prefix=key) and its size with ListParts.
 * - A resumed upload whose last part is smaller than 5 MiB cannot take more
 *   parts after it. On the first write we do what distribution does: complete
 *   the upload into the key (a small last part is allowed there), start a new
 *   upload, and seed it with the old bytes: re-read into the buffer when under
 *   5 MiB in total, else server-side copied as part 1 (UploadPartCopy).
 * - commit() of data that never left the buffer is one plain PUT; otherwise
 *   the last part is sent and CompleteMultipartUpload makes the object.
 * - cancel() aborts the multipart upload. */
#include "s3_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

struct s3_writer {
	struct regfs_writer w;
	struct s3_client *c;
	char *key;
	char *upload_id;      /* NULL until the multipart upload exists */
	struct s3_part *parts;
	int n_parts, cap_parts;
	uint64_t uploaded;    /* sum of the parts' sizes */
	char *buf;            /* chunksize bytes */
	size_t blen;
	bool needs_fixup;     /* resumed with a small last part */
	bool done;            /* committed or cancelled */
};

/* ---- multipart primitives ---- */

int s3_mpu_create(struct s3_client *c, const char *key, char **upload_id, struct regfs_err *err)
{
	struct s3_hdr enc = {"x-amz-server-side-encryption", "AES256"};
	struct s3_req rq = {.method = "POST", .key = key, .query = "uploads",
			    .hdrs = &enc, .n_hdrs = c->encrypt ? 1 : 0, .has_body = true};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 200)
		ret = s3_fail(c, &rs, "starting a multipart upload", key, err);
	if (ret == 0) {
		*upload_id = s3_xml_text(rs.body, rs.len, "UploadId");
		if (!*upload_id)
			ret = regfs_errf(err, -EIO, "S3 at %s answered CreateMultipartUpload for \"%s\" without an UploadId",
					 c->endpoint, key);
	}
	s3_resp_free(&rs);
	return ret;
}

int s3_mpu_abort(struct s3_client *c, const char *key, const char *upload_id, struct regfs_err *err)
{
	char *id = s3_qenc(upload_id);
	char q[512];
	snprintf(q, sizeof q, "uploadId=%s", id ? id : "");
	free(id);
	struct s3_req rq = {.method = "DELETE", .key = key, .query = q};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 204 && rs.status != 200 && rs.status != 404)
		ret = s3_fail(c, &rs, "aborting a multipart upload", key, err);
	s3_resp_free(&rs);
	return ret;
}

int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const struct s3_part *parts, int n, struct regfs_err *err)
{
	size_t cap = 128 + (size_t)n * 200;
	char *body = malloc(cap);
	if (!body)
		return -ENOMEM;
	size_t len = (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(body + len, cap - len,
					"<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
					parts[i].num, parts[i].etag);
	len += (size_t)snprintf(body + len, cap - len, "</CompleteMultipartUpload>");
	char *id = s3_qenc(upload_id);
	char q[512];
	snprintf(q, sizeof q, "uploadId=%s", id ? id : "");
	free(id);
	struct s3_hdr ct = {"Content-Type", "application/xml"};
	struct s3_req rq = {.method = "POST", .key = key, .query = q, .hdrs = &ct, .n_hdrs = 1,
			    .body = body, .body_len = len, .has_body = true};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	/* S3 may answer 200 and report the failure in the body. */
	if (ret == 0 && (rs.status != 200 || (rs.body && strstr(rs.body, "<Error>"))))
		ret = s3_fail(c, &rs, "completing a multipart upload", key, err);
	s3_resp_free(&rs);
	free(body);
	return ret;
}

int s3_mpu_copy_part(struct s3_client *c, const char *key, const char *upload_id, int num,
		     const char *src_key, int64_t from, int64_t to, struct s3_part *out,
		     struct regfs_err *err)
{
	char *src = s3_copy_source(c, src_key);
	char *id = s3_qenc(upload_id);
	char q[512], range[96];
	snprintf(q, sizeof q, "partNumber=%d&uploadId=%s", num, id ? id : "");
	free(id);
	snprintf(range, sizeof range, "bytes=%lld-%lld", (long long)from, (long long)to);
	struct s3_hdr h[2] = {{"x-amz-copy-source", src ? src : ""}, {"x-amz-copy-source-range", range}};
	struct s3_req rq = {.method = "PUT", .key = key, .query = q, .hdrs = h, .n_hdrs = to >= 0 ? 2 : 1,
			    .has_body = true};
	struct s3_resp rs;
	int ret = src ? s3_request(c, &rq, &rs, err) : -ENOMEM;
	free(src);
	if (ret < 0)
		return ret;
	char *etag = NULL;
	if (rs.status != 200 || !rs.body || strstr(rs.body, "<Error>") ||
	    !(etag = s3_xml_text(rs.body, rs.len, "ETag")))
		ret = s3_fail(c, &rs, "copying a part", src_key, err);
	if (ret == 0) {
		out->num = num;
		snprintf(out->etag, sizeof out->etag, "%s", etag);
	}
	free(etag);
	s3_resp_free(&rs);
	return ret;
}

static int list_uploads(struct s3_client *c, const char *prefix, bool exact,
			int (*cb)(const char *key, const char *id, void *ud), void *ud,
			struct regfs_err *err)
{
	char *pfx = s3_qenc(prefix);
	char *key_marker = NULL, *id_marker = NULL;
	int ret = 0;
	for (int page = 0; page < 10000 && ret == 0; page++) {
		char *km = key_marker ? s3_qenc(key_marker) : NULL;
		char *im = id_marker ? s3_qenc(id_marker) : NULL;
		char *q = NULL;
		if (asprintf(&q, "uploads&prefix=%s%s%s%s%s", pfx ? pfx : "", km ? "&key-marker=" : "",
			     km ? km : "", im ? "&upload-id-marker=" : "", im ? im : "") < 0)
			q = NULL;
		free(km);
		free(im);
		struct s3_req rq = {.method = "GET", .query = q};
		struct s3_resp rs;
		ret = q ? s3_request(c, &rq, &rs, err) : -ENOMEM;
		free(q);
		if (ret < 0)
			break;
		if (rs.status != 200) {
			ret = s3_fail(c, &rs, "listing multipart uploads", prefix, err);
			s3_resp_free(&rs);
			break;
		}
		size_t pos = 0, n;
		const char *in;
		while (ret == 0 && s3_xml_elem(rs.body, rs.len, "Upload", &pos, &in, &n)) {
			char *k = s3_xml_text(in, n, "Key"), *id = s3_xml_text(in, n, "UploadId");
			if (k && id && (!exact || strcmp(k, prefix) == 0))
				ret = cb(k, id, ud);
			free(k);
			free(id);
		}
		char *trunc = s3_xml_text(rs.body, rs.len, "IsTruncated");
		bool more = trunc && strcmp(trunc, "true") == 0;
		free(trunc);
		free(key_marker);
		free(id_marker);
		key_marker = s3_xml_text(rs.body, rs.len, "NextKeyMarker");
		id_marker = s3_xml_text(rs.body, rs.len, "NextUploadIdMarker");
		s3_resp_free(&rs);
		if (!more || !key_marker)
			break;
	}
	free(key_marker);
	free(id_marker);
	free(pfx);
	return ret > 0 ? 0 : ret;
}

struct abort_ctx {
	struct s3_client *c;
	struct regfs_err *err;
	int aborted;
};

static int abort_cb(const char *key, const char *id, void *ud)
{
	struct abort_ctx *a = ud;
	int ret = s3_mpu_abort(a->c, key, id, a->err);
	if (ret == 0)
		a->aborted++;
	return ret;
}

int s3_mpu_abort_prefix(struct s3_client *c, const char *prefix, struct regfs_err *err)
{
	struct abort_ctx a = {c, err, 0};
	int ret = list_uploads(c, prefix, false, abort_cb, &a, err);
	if (a.aborted)
		log_debug("s3: aborted %d multipart upload(s) under \"%s\"", a.aborted, prefix);
	return ret < 0 ? ret : a.aborted;
}

/* ---- the writer ---- */

static int add_part(struct s3_writer *w, const struct s3_part *p)
{
	if (w->n_parts == w->cap_parts) {
		int cap = w->cap_parts ? w->cap_parts * 2 : 16;
		struct s3_part *np = realloc(w->parts, (size_t)cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		w->parts = np;
		w->cap_parts = cap;
	}
	w->parts[w->n_parts++] = *p;
	w->uploaded += p->size;
	return 0;
}

static int ensure_upload(struct s3_writer *w, struct regfs_err *err)
{
	if (w->upload_id)
		return 0;
	return s3_mpu_create(w->c, w->key, &w->upload_id, err);
}

/* Sends the buffer as the next part (any size; only the last may be small). */
static int flush_part(struct s3_writer *w, struct regfs_err *err)
{
	int ret = ensure_upload(w, err);
	if (ret < 0)
		return ret;
	struct s3_part p = {.num = w->n_parts ? w->parts[w->n_parts - 1].num + 1 : 1, .size = w->blen};
	char *id = s3_qenc(w->upload_id);
	char q[512];
	snprintf(q, sizeof q, "partNumber=%d&uploadId=%s", p.num, id ? id : "");
	free(id);
	struct s3_req rq = {.method = "PUT", .key = w->key, .query = q, .body = w->buf,
			    .body_len = w->blen, .has_body = true};
	struct s3_resp rs;
	ret = s3_request(w->c, &rq, &rs, err);
	if (ret == 0 && (rs.status != 200 || !rs.etag[0]))
		ret = s3_fail(w->c, &rs, "uploading a part", w->key, err);
	if (ret == 0) {
		snprintf(p.etag, sizeof p.etag, "%s", rs.etag);
		ret = add_part(w, &p);
		w->blen = 0;
	}
	s3_resp_free(&rs);
	return ret;
}

/* Resumed with a small last part: fold what exists into a fresh upload. */
static int fixup(struct s3_writer *w, struct regfs_err *err)
{
	int ret = s3_mpu_complete(w->c, w->key, w->upload_id, w->parts, w->n_parts, err);
	if (ret < 0)
		return ret;
	uint64_t total = w->uploaded;
	free(w->upload_id);
	w->upload_id = NULL;
	w->n_parts = 0;
	w->uploaded = 0;
	ret = s3_mpu_create(w->c, w->key, &w->upload_id, err);
	if (ret < 0)
		return ret;
	if (total < S3_MIN_PART) {
		struct s3_req rq = {.method = "GET", .key = w->key};
		struct s3_resp rs;
		ret = s3_request(w->c, &rq, &rs, err);
		if (ret == 0 && rs.status != 200)
			ret = s3_fail(w->c, &rs, "re-reading an upload's tail", w->key, err);
		if (ret == 0 && rs.len != total)
			ret = regfs_errf(err, -EIO, "S3 upload \"%s\" changed while resuming (%zu bytes, expected %llu)",
					 w->key, rs.len, (unsigned long long)total);
		if (ret == 0) {
			memcpy(w->buf, rs.body, rs.len);
			w->blen = rs.len;
		}
		s3_resp_free(&rs);
		return ret;
	}
	struct s3_part p = {.size = total};
	ret = s3_mpu_copy_part(w->c, w->key, w->upload_id, 1, w->key, 0, (int64_t)total - 1, &p, err);
	if (ret == 0)
		ret = add_part(w, &p);
	return ret;
}

static ssize_t w_write(struct regfs_writer *rw, const void *buf, size_t len, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	if (w->done)
		return regfs_errf(err, -EINVAL, "write to a committed or cancelled S3 upload \"%s\"", w->key);
	if (w->needs_fixup && len > 0) {
		int ret = fixup(w, err);
		if (ret < 0)
			return ret;
		w->needs_fixup = false;
	}
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		size_t room = (size_t)w->c->chunksize - w->blen;
		size_t n = left < room ? left : room;
		memcpy(w->buf + w->blen, p, n);
		w->blen += n;
		p += n;
		left -= n;
		if (w->blen == w->c->chunksize) {
			int ret = flush_part(w, err);
			if (ret < 0)
				return ret;
		}
	}
	return (ssize_t)len;
}

static uint64_t w_size(struct regfs_writer *rw)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	return w->uploaded + w->blen;
}

static int w_commit(struct regfs_writer *rw, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	if (w->done)
		return regfs_errf(err, -EINVAL, "S3 upload \"%s\" was already committed or cancelled", w->key);
	int ret;
	if (!w->upload_id && w->n_parts == 0) {
		/* Everything is still in memory: one plain PUT. */
		struct s3_hdr enc = {"x-amz-server-side-encryption", "AES256"};
		struct s3_req rq = {.method = "PUT", .key = w->key, .body = w->buf, .body_len = w->blen,
				    .has_body = true, .hdrs = &enc, .n_hdrs = w->c->encrypt ? 1 : 0};
		struct s3_resp rs;
		ret = s3_request(w->c, &rq, &rs, err);
		if (ret == 0 && rs.status != 200)
			ret = s3_fail(w->c, &rs, "writing", w->key, err);
		s3_resp_free(&rs);
	} else {
		ret = 0;
		/* S3 refuses to complete an upload without parts: send even an empty one. */
		if (w->blen > 0 || w->n_parts == 0)
			ret = flush_part(w, err);
		if (ret == 0)
			ret = s3_mpu_complete(w->c, w->key, w->upload_id, w->parts, w->n_parts, err);
	}
	if (ret == 0)
		w->done = true;
	return ret;
}

static int w_cancel(struct regfs_writer *rw, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	w->blen = 0;
	w->done = true;
	if (!w->upload_id)
		return 0;
	return s3_mpu_abort(w->c, w->key, w->upload_id, err);
}

static void w_free(struct s3_writer *w)
{
	free(w->key);
	free(w->upload_id);
	free(w->parts);
	free(w->buf);
	free(w);
}

static int w_close(struct regfs_writer *rw, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	int ret = 0;
	if (!w->done) {
		/* Leave everything in the bucket so that append=true resumes. */
		if (w->blen > 0)
			ret = flush_part(w, err);
		else
			ret = ensure_upload(w, err);
	}
	w_free(w);
	return ret;
}

struct find_ctx {
	char *id;
};

static int find_cb(const char *key, const char *id, void *ud)
{
	(void)key;
	struct find_ctx *f = ud;
	/* Uploads come in initiation order: the last one is the newest. */
	free(f->id);
	f->id = strdup(id);
	return f->id ? 0 : -ENOMEM;
}

static int list_parts(struct s3_writer *w, struct regfs_err *err)
{
	char *id = s3_qenc(w->upload_id);
	int marker = 0, ret = 0;
	for (int page = 0; page < 100 && ret == 0; page++) {
		char q[512];
		snprintf(q, sizeof q, "uploadId=%s&part-number-marker=%d", id ? id : "", marker);
		struct s3_req rq = {.method = "GET", .key = w->key, .query = q};
		struct s3_resp rs;
		ret = s3_request(w->c, &rq, &rs, err);
		if (ret < 0)
			break;
		if (rs.status != 200) {
			ret = s3_fail(w->c, &rs, "listing an upload's parts", w->key, err);
			s3_resp_free(&rs);
			break;
		}
		size_t pos = 0, n;
		const char *in;
		while (ret == 0 && s3_xml_elem(rs.body, rs.len, "Part", &pos, &in, &n)) {
			char *num = s3_xml_text(in, n, "PartNumber"), *etag = s3_xml_text(in, n, "ETag"),
			     *size = s3_xml_text(in, n, "Size");
			if (num && etag && size) {
				struct s3_part p = {.num = atoi(num), .size = strtoull(size, NULL, 10)};
				snprintf(p.etag, sizeof p.etag, "%s", etag);
				ret = add_part(w, &p);
			}
			free(num);
			free(etag);
			free(size);
		}
		char *trunc = s3_xml_text(rs.body, rs.len, "IsTruncated");
		char *next = s3_xml_text(rs.body, rs.len, "NextPartNumberMarker");
		bool more = trunc && strcmp(trunc, "true") == 0 && next;
		marker = next ? atoi(next) : 0;
		free(trunc);
		free(next);
		s3_resp_free(&rs);
		if (!more)
			break;
	}
	free(id);
	return ret;
}

int s3_writer_open(struct s3_client *c, const char *path, bool append, struct regfs_writer **out,
		   struct regfs_err *err)
{
	*out = NULL;
	struct s3_writer *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->c = c;
	w->key = s3_key(c, path);
	w->buf = malloc((size_t)c->chunksize);
	if (!w->key || !w->buf) {
		w_free(w);
		return -ENOMEM;
	}
	w->w = (struct regfs_writer){w_write, w_size, w_commit, w_cancel, w_close};
	if (append) {
		struct find_ctx f = {NULL};
		int ret = list_uploads(c, w->key, true, find_cb, &f, err);
		if (ret == 0 && !f.id)
			ret = regfs_errf(err, -ENOENT, "no upload in progress at \"%s\" in S3 bucket \"%s\"",
					 w->key, c->bucket);
		w->upload_id = f.id;
		if (ret == 0)
			ret = list_parts(w, err);
		if (ret < 0) {
			w_free(w);
			return ret;
		}
		w->needs_fixup = w->n_parts > 0 && w->parts[w->n_parts - 1].size < S3_MIN_PART;
	}
	*out = &w->w;
	return 0;
}
