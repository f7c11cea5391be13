/* s3_multipart.c — the S3 multipart-upload calls the driver uses:
 * CreateMultipartUpload, UploadPartCopy, CompleteMultipartUpload,
 * AbortMultipartUpload and ListMultipartUploads (with paging), and the
 * server-side copy built on them (one CopyObject, or parts copied in
 * parallel above copythreshold). The writer (s3_writer.c) and move() (s3.c)
 * build on these. */
#include "s3_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/dynbuf.h>
#include <regfs/fmt.h>
#include <regfs/log.h>

void s3_upload_query(char *q, size_t n, int part, const char *upload_id)
{
	char *id = s3_qenc(upload_id);
	if (part > 0)
		snprintf(q, n, "partNumber=%d&uploadId=%s", part, id ? id : "");
	else
		snprintf(q, n, "uploadId=%s", id ? id : "");
	free(id);
}

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
	char q[512];
	s3_upload_query(q, sizeof q, 0, upload_id);
	return s3_delete_req(c, key, q, "aborting a multipart upload", err);
}

int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const struct s3_part *parts, int n, const struct s3_cond *cond,
		    struct regfs_err *err)
{
	struct dynbuf b = DYNBUF_INIT(DYNBUF_NO_CAP); /* n parts of bounded size */
	int ret = dynbuf_addstr(&b, "<CompleteMultipartUpload>");
	for (int i = 0; i < n && ret == 0; i++)
		ret = dynbuf_printf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
				    parts[i].num, parts[i].etag);
	if (ret == 0)
		ret = dynbuf_addstr(&b, "</CompleteMultipartUpload>");
	if (ret < 0) {
		dynbuf_free(&b);
		return s3_nomem(err);
	}
	char q[512];
	s3_upload_query(q, sizeof q, 0, upload_id);
	struct s3_hdr h[2] = {{"Content-Type", "application/xml"}, {"If-None-Match", "*"}};
	struct s3_req rq = {.method = "POST", .key = key, .query = q, .hdrs = h,
			    .n_hdrs = cond && cond->if_none_match ? 2 : 1,
			    .body = dynbuf_ptr(&b), .body_len = dynbuf_len(&b), .has_body = true};
	struct s3_resp rs;
	ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status == 412)
		ret = regfs_errf(err, -EEXIST, "\"%s\" already exists in S3 bucket \"%s\"", key, c->bucket);
	/* S3 may answer 200 and report the failure in the body. */
	else if (ret == 0 && (rs.status != 200 || (rs.body && strstr(rs.body, "<Error>"))))
		ret = s3_fail(c, &rs, "completing a multipart upload", key, err);
	if (ret == 0 && cond && cond->etag_out) {
		char *et = s3_xml_text(rs.body, rs.len, "ETag");
		snprintf(cond->etag_out, 128, "%s", et ? et : "");
		free(et);
	}
	s3_resp_free(&rs);
	dynbuf_free(&b);
	return ret;
}

/* Copies only from the source version with ETag `etag` (none: any): adds
 * AWS's header and the one Ceph RGW reads to h[nh..]; the new count. */
static size_t pin_source(struct s3_hdr *h, size_t nh, const char *etag)
{
	if (etag && *etag) {
		h[nh++] = (struct s3_hdr){"x-amz-copy-source-if-match", etag};
		h[nh++] = (struct s3_hdr){"x-amz-copy-if-match", etag};
	}
	return nh;
}

int s3_mpu_copy_part(struct s3_client *c, const char *key, const char *upload_id, int num,
		     const char *src_key, int64_t from, int64_t to, const char *src_etag,
		     struct s3_part *out, struct regfs_err *err)
{
	char *src = s3_copy_source(c, src_key);
	char q[512], range[96];
	s3_upload_query(q, sizeof q, num, upload_id);
	snprintf(range, sizeof range, "bytes=%lld-%lld", (long long)from, (long long)to);
	struct s3_hdr h[4] = {{"x-amz-copy-source", src ? src : ""}};
	size_t nh = 1;
	if (to >= 0)
		h[nh++] = (struct s3_hdr){"x-amz-copy-source-range", range};
	nh = pin_source(h, nh, src_etag);
	struct s3_req rq = {.method = "PUT", .key = key, .query = q, .hdrs = h, .n_hdrs = nh,
			    .has_body = true};
	struct s3_resp rs;
	int ret = src ? s3_request(c, &rq, &rs, err) : s3_nomem(err);
	free(src);
	if (ret < 0)
		return ret;
	char *etag = NULL;
	if (rs.status == 412)
		ret = regfs_errf(err, -ESTALE, "\"%s\" in S3 bucket \"%s\" changed during a copy",
				 src_key, c->bucket);
	else if (rs.status != 200 || !rs.body || strstr(rs.body, "<Error>") ||
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

int s3_mpu_list(struct s3_client *c, const char *prefix, bool exact,
			int (*cb)(const char *key, const char *id, void *ud), void *ud,
			struct regfs_err *err)
{
	char *pfx = s3_qenc(prefix);
	char *key_marker = NULL, *id_marker = NULL;
	int ret = 0;
	for (int page = 0; page < 10000 && ret == 0; page++) {
		char *km = key_marker ? s3_qenc(key_marker) : NULL;
		char *im = id_marker ? s3_qenc(id_marker) : NULL;
		char *q = xasprintf("uploads&prefix=%s%s%s%s%s", pfx ? pfx : "",
				    km ? "&key-marker=" : "", km ? km : "",
				    im ? "&upload-id-marker=" : "", im ? im : "");
		free(km);
		free(im);
		struct s3_req rq = {.method = "GET", .query = q};
		struct s3_resp rs;
		ret = q ? s3_request(c, &rq, &rs, err) : s3_nomem(err);
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
	int ret = s3_mpu_list(c, prefix, false, abort_cb, &a, err);
	if (a.aborted)
		log_debug("s3: aborted %d multipart upload(s) under \"%s\"", a.aborted, prefix);
	return ret < 0 ? ret : a.aborted;
}

/* ---- server-side copy (move, publish) ---- */

#define COPY_THREADS 8

struct copy_job {
	struct s3_client *c;
	const char *src, *dst, *id, *src_etag;
	uint64_t size;
	int n, next, ret;
	struct s3_part *parts;
	struct regfs_err err;
	pthread_mutex_t lock;
};

static void *copy_worker(void *ud)
{
	struct copy_job *j = ud;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		int i = j->ret == 0 && j->next < j->n ? j->next++ : -1;
		pthread_mutex_unlock(&j->lock);
		if (i < 0)
			return NULL;
		uint64_t chunk = j->c->copy_chunk, from = (uint64_t)i * chunk;
		uint64_t to = from + chunk - 1 < j->size - 1 ? from + chunk - 1 : j->size - 1;
		struct regfs_err e = {0};
		int ret = s3_mpu_copy_part(j->c, j->dst, j->id, i + 1, j->src, (int64_t)from,
					   (int64_t)to, j->src_etag, &j->parts[i], &e);
		j->parts[i].size = to - from + 1;
		if (ret < 0) {
			pthread_mutex_lock(&j->lock);
			if (j->ret == 0) {
				j->ret = ret;
				j->err = e;
			}
			pthread_mutex_unlock(&j->lock);
		}
	}
}

/* One CopyObject. With cond: the source pinned to its ETag (AWS's header
 * and the one Ceph RGW reads) and If-None-Match: * on the destination, for
 * servers that honour it on copies (Ceph RGW 16 ignores it). */
static int copy_single(struct s3_client *c, const char *src, const char *dst,
		       const struct s3_cond *cond, struct regfs_err *err)
{
	char *source = s3_copy_source(c, src);
	if (!source)
		return s3_nomem(err);
	struct s3_hdr h[5] = {{"x-amz-copy-source", source}};
	size_t nh = 1;
	if (c->encrypt)
		h[nh++] = (struct s3_hdr){"x-amz-server-side-encryption", "AES256"};
	nh = pin_source(h, nh, cond ? cond->src_etag : NULL);
	if (cond && cond->if_none_match)
		h[nh++] = (struct s3_hdr){"If-None-Match", "*"};
	struct s3_req rq = {.method = "PUT", .key = dst, .hdrs = h, .n_hdrs = nh, .has_body = true};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	free(source);
	if (ret == 0 && rs.status == 412)
		ret = regfs_errf(err, -ESTALE, "copy of \"%s\" to \"%s\" refused by its condition "
				 "(the source changed, or the destination exists)", src, dst);
	/* CopyObject may fail after answering 200: the error is in the body. */
	else if (ret == 0 && (rs.status != 200 || (rs.body && strstr(rs.body, "<Error>"))))
		ret = s3_fail(c, &rs, "copying", src, err);
	s3_resp_free(&rs);
	return ret;
}

int s3_copy_object(struct s3_client *c, const char *src, const char *dst, uint64_t size,
		   const struct s3_cond *cond, struct regfs_err *err)
{
	if (size <= c->copy_threshold)
		return copy_single(c, src, dst, cond, err);
	char *id = NULL;
	int ret = s3_mpu_create(c, dst, &id, err);
	if (ret < 0)
		return ret;
	int n = (int)((size + c->copy_chunk - 1) / c->copy_chunk);
	struct copy_job j = {.c = c, .src = src, .dst = dst, .id = id, .size = size, .n = n,
			     .src_etag = cond ? cond->src_etag : NULL,
			     .parts = calloc((size_t)n, sizeof(struct s3_part))};
	pthread_mutex_init(&j.lock, NULL);
	if (!j.parts) {
		ret = s3_nomem(err);
	} else {
		/* Parts are copied in parallel, as distribution does: S3 does the
		 * work, we only wait, so a few requests in flight shorten commits. */
		int nt = n < COPY_THREADS ? n : COPY_THREADS, started = 0;
		pthread_t th[COPY_THREADS];
		for (int i = 1; i < nt; i++)
			if (pthread_create(&th[started], NULL, copy_worker, &j) == 0)
				started++;
		copy_worker(&j);
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		ret = j.ret;
		if (ret < 0)
			regfs_errf(err, ret, "%s", regfs_err_str(&j.err));
	}
	if (ret == 0)
		ret = s3_mpu_complete(c, dst, id, j.parts, n,
				      &(struct s3_cond){.if_none_match = cond && cond->if_none_match}, err);
	if (ret < 0)
		s3_mpu_abort(c, dst, id, NULL);
	pthread_mutex_destroy(&j.lock);
	free(j.parts);
	free(id);
	return ret;
}
