/* s3_multipart.c — the S3 multipart-upload calls the driver uses:
 * CreateMultipartUpload, UploadPartCopy, CompleteMultipartUpload,
 * AbortMultipartUpload and ListMultipartUploads (with paging). The writer
 * (s3_writer.c) and move() (s3.c, multipart copy) build on them. */
#include "s3_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

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
		    const struct s3_part *parts, int n, const struct s3_cond *cond,
		    struct regfs_err *err)
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
	struct s3_hdr h[2] = {{"Content-Type", "application/xml"}, {"If-None-Match", "*"}};
	struct s3_req rq = {.method = "POST", .key = key, .query = q, .hdrs = h,
			    .n_hdrs = cond && cond->if_none_match ? 2 : 1,
			    .body = body, .body_len = len, .has_body = true};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
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
	free(body);
	return ret;
}

int s3_mpu_copy_part(struct s3_client *c, const char *key, const char *upload_id, int num,
		     const char *src_key, int64_t from, int64_t to, const char *src_etag,
		     struct s3_part *out, struct regfs_err *err)
{
	char *src = s3_copy_source(c, src_key);
	char *id = s3_qenc(upload_id);
	char q[512], range[96];
	snprintf(q, sizeof q, "partNumber=%d&uploadId=%s", num, id ? id : "");
	free(id);
	snprintf(range, sizeof range, "bytes=%lld-%lld", (long long)from, (long long)to);
	struct s3_hdr h[4] = {{"x-amz-copy-source", src ? src : ""}};
	size_t nh = 1;
	if (to >= 0)
		h[nh++] = (struct s3_hdr){"x-amz-copy-source-range", range};
	if (src_etag && *src_etag) {
		/* AWS's name, and the one Ceph RGW reads */
		h[nh++] = (struct s3_hdr){"x-amz-copy-source-if-match", src_etag};
		h[nh++] = (struct s3_hdr){"x-amz-copy-if-match", src_etag};
	}
	struct s3_req rq = {.method = "PUT", .key = key, .query = q, .hdrs = h, .n_hdrs = nh,
			    .has_body = true};
	struct s3_resp rs;
	int ret = src ? s3_request(c, &rq, &rs, err) : -ENOMEM;
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
	int ret = s3_mpu_list(c, prefix, false, abort_cb, &a, err);
	if (a.aborted)
		log_debug("s3: aborted %d multipart upload(s) under \"%s\"", a.aborted, prefix);
	return ret < 0 ? ret : a.aborted;
}
