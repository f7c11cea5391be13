/* s3.c — the S3 storage driver (distribution's "s3" driver, same keys).
 *
 * Keys: <rootdirectory>/<path without its leading "/">, rootdirectory "" or
 * "/" meaning no prefix — what distribution's s3Path computes, so a bucket
 * written by registry:2 is served unchanged and the other way round.
 * Directories are implicit: a "directory" is a prefix with objects below it.
 *
 * Request layer, retries and error messages: s3_http.c. Reader (streaming
 * GET): s3_reader.c. Writer (multipart upload, append/resume): s3_writer.c,
 * on the calls in s3_multipart.c. */
#include "s3_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include <regfs/config.h>
#include <regfs/log.h>
#include <regfs/sigv4.h>

#define DELETE_BATCH 1000 /* S3's limit per DeleteObjects request */

struct s3_storage {
	struct regfs_storage base;
	struct s3_client c;
};

static struct s3_client *cl(struct regfs_storage *s) { return &((struct s3_storage *)s)->c; }

static int check_path(const char *path, struct regfs_err *err)
{
	if (!path || path[0] != '/')
		return regfs_errf(err, -EINVAL, "invalid storage path \"%s\": must start with /", path ? path : "");
	for (const char *p = path; *p;) {
		const char *e = strchr(p + 1, '/');
		size_t n = e ? (size_t)(e - p - 1) : strlen(p + 1);
		if ((n == 1 && p[1] == '.') || (n == 2 && p[1] == '.' && p[2] == '.'))
			return regfs_errf(err, -EINVAL, "invalid storage path \"%s\": no . or .. components", path);
		if (!e)
			break;
		p = e;
	}
	return 0;
}

/* ---- get / put / stat ---- */

static int s3_get(struct regfs_storage *s, const char *path, char **data, size_t *len,
		  struct regfs_err *err)
{
	*data = NULL;
	*len = 0;
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	if (!key)
		return -ENOMEM;
	struct s3_req rq = {.method = "GET", .key = key};
	struct s3_resp rs;
	ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 200)
		ret = s3_fail(c, &rs, "reading", key, err);
	if (ret == 0) {
		if (!rs.body) {
			rs.body = strdup("");
			if (!rs.body)
				ret = -ENOMEM;
		}
		*data = rs.body;
		*len = rs.len;
		rs.body = NULL;
	}
	s3_resp_free(&rs);
	free(key);
	return ret;
}

static int s3_put(struct regfs_storage *s, const char *path, const void *data, size_t len,
		  struct regfs_err *err)
{
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	if (!key)
		return -ENOMEM;
	struct s3_hdr h[2] = {{"Content-Type", "application/octet-stream"},
			      {"x-amz-server-side-encryption", "AES256"}};
	struct s3_req rq = {.method = "PUT", .key = key, .body = data, .body_len = len, .has_body = true,
			    .hdrs = h, .n_hdrs = c->encrypt ? 2 : 1};
	struct s3_resp rs;
	ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 200)
		ret = s3_fail(c, &rs, "writing", key, err);
	s3_resp_free(&rs);
	free(key);
	return ret;
}

/* One page of ListObjectsV2. The caller frees *body. */
static int list_page(struct s3_client *c, const char *prefix, const char *delimiter, int max_keys,
		     const char *token, struct s3_resp *rs, struct regfs_err *err)
{
	char *p = s3_qenc(prefix), *t = token ? s3_qenc(token) : NULL;
	char *q = NULL;
	int n = asprintf(&q, "list-type=2&prefix=%s%s%s&max-keys=%d%s%s", p ? p : "",
			 delimiter ? "&delimiter=" : "", delimiter ? "%2F" : "", max_keys,
			 t ? "&continuation-token=" : "", t ? t : "");
	free(p);
	free(t);
	if (n < 0)
		return -ENOMEM;
	struct s3_req rq = {.method = "GET", .query = q};
	int ret = s3_request(c, &rq, rs, err);
	free(q);
	if (ret == 0 && rs->status != 200) {
		ret = s3_fail(c, rs, "listing", prefix, err);
		s3_resp_free(rs);
	}
	return ret;
}

static int s3_stat(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
		   struct regfs_err *err)
{
	memset(st, 0, sizeof *st);
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	if (!key)
		return -ENOMEM;
	struct s3_resp rs;
	if (*key) {
		struct s3_req rq = {.method = "HEAD", .key = key};
		ret = s3_request(c, &rq, &rs, err);
		if (ret == 0 && rs.status == 200) {
			st->size = rs.content_length;
			st->mtime = rs.last_modified;
			st->is_dir = false;
			s3_resp_free(&rs);
			free(key);
			return 0;
		}
		if (ret == 0 && rs.status != 404)
			ret = s3_fail(c, &rs, "checking", key, err);
		s3_resp_free(&rs);
		if (ret < 0) {
			free(key);
			return ret;
		}
	}
	/* Not an object: a directory when some key lies below it. */
	char *prefix = NULL;
	if (asprintf(&prefix, "%s%s", key, *key ? "/" : "") < 0) {
		free(key);
		return -ENOMEM;
	}
	ret = list_page(c, prefix, NULL, 1, NULL, &rs, err);
	if (ret == 0) {
		size_t pos = 0, n;
		const char *in;
		if (s3_xml_elem(rs.body, rs.len, "Contents", &pos, &in, &n)) {
			st->is_dir = true;
			char *lm = s3_xml_text(in, n, "LastModified");
			st->mtime = s3_iso8601(lm);
			free(lm);
		} else if (*key) {
			ret = regfs_errf(err, -ENOENT, "\"%s\" not found in S3 bucket \"%s\"", key, c->bucket);
		} else {
			st->is_dir = true; /* the (empty) root */
		}
		s3_resp_free(&rs);
	}
	free(prefix);
	free(key);
	return ret;
}

/* ---- list ---- */

static int s3_list(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		   struct regfs_err *err)
{
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	char *prefix = NULL;
	if (!key || asprintf(&prefix, "%s%s", key, *key ? "/" : "") < 0) {
		free(key);
		return -ENOMEM;
	}
	/* Child paths are "<path>/<name>" in storage terms. */
	const char *sep = strcmp(path, "/") == 0 ? "" : "/";
	size_t plen = strlen(prefix);
	char *token = NULL;
	bool any = false, stop = false;
	for (int page = 0; page < 1000000 && ret == 0 && !stop; page++) {
		struct s3_resp rs;
		ret = list_page(c, prefix, "/", 1000, token, &rs, err);
		if (ret < 0)
			break;
		free(token);
		token = NULL;
		size_t pos = 0, n;
		const char *in;
		/* Objects first, then common prefixes (sub-"directories"). */
		for (int pass = 0; pass < 2 && !stop; pass++) {
			pos = 0;
			const char *elem = pass == 0 ? "Contents" : "CommonPrefixes";
			const char *field = pass == 0 ? "Key" : "Prefix";
			while (!stop && s3_xml_elem(rs.body, rs.len, elem, &pos, &in, &n)) {
				char *k = s3_xml_text(in, n, field);
				if (!k)
					continue;
				size_t kl = strlen(k);
				if (kl > 0 && k[kl - 1] == '/')
					k[--kl] = '\0';
				if (kl > plen && strncmp(k, prefix, plen) == 0) {
					char *child = NULL;
					if (asprintf(&child, "%s%s%s", path, sep, k + plen) >= 0) {
						any = true;
						if (cb(child, ud) != 0)
							stop = true;
						free(child);
					}
				}
				free(k);
			}
		}
		char *trunc = s3_xml_text(rs.body, rs.len, "IsTruncated");
		if (trunc && strcmp(trunc, "true") == 0)
			token = s3_xml_text(rs.body, rs.len, "NextContinuationToken");
		free(trunc);
		s3_resp_free(&rs);
		if (!token)
			break;
	}
	free(token);
	if (ret == 0 && !any && strcmp(path, "/") != 0)
		ret = regfs_errf(err, -ENOENT, "directory \"%s\" not found in S3 bucket \"%s\"", key, c->bucket);
	free(prefix);
	free(key);
	return ret;
}

/* ---- move: server-side copy, then delete the source ---- */

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
		return -ENOMEM;
	struct s3_hdr h[5] = {{"x-amz-copy-source", source}};
	size_t nh = 1;
	if (c->encrypt)
		h[nh++] = (struct s3_hdr){"x-amz-server-side-encryption", "AES256"};
	if (cond && cond->src_etag && *cond->src_etag) {
		h[nh++] = (struct s3_hdr){"x-amz-copy-source-if-match", cond->src_etag};
		h[nh++] = (struct s3_hdr){"x-amz-copy-if-match", cond->src_etag};
	}
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
		ret = -ENOMEM;
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

int s3_delete_key(struct s3_client *c, const char *key, struct regfs_err *err)
{
	struct s3_req rq = {.method = "DELETE", .key = key};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 204 && rs.status != 200 && rs.status != 404)
		ret = s3_fail(c, &rs, "deleting", key, err);
	s3_resp_free(&rs);
	return ret;
}

static int s3_move(struct regfs_storage *s, const char *src, const char *dst, struct regfs_err *err)
{
	int ret = check_path(src, err);
	if (ret == 0)
		ret = check_path(dst, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	struct regfs_stat_info st;
	ret = s3_stat(s, src, &st, err);
	if (ret == 0 && st.is_dir)
		ret = regfs_errf(err, -EINVAL, "cannot move \"%s\": it is a directory (S3 moves objects only)", src);
	if (ret < 0)
		return ret;
	char *ks = s3_key(c, src), *kd = s3_key(c, dst);
	if (!ks || !kd)
		ret = -ENOMEM;
	if (ret == 0)
		ret = s3_copy_object(c, ks, kd, st.size, NULL, err);
	if (ret == 0)
		ret = s3_delete_key(c, ks, err);
	free(ks);
	free(kd);
	return ret;
}

/* ---- delete: an object, or everything under a prefix ---- */

static int delete_batch(struct s3_client *c, char **keys, int n, struct regfs_err *err)
{
	size_t cap = 64, len = 0;
	for (int i = 0; i < n; i++)
		cap += strlen(keys[i]) * 6 + 32;
	char *body = malloc(cap);
	if (!body)
		return -ENOMEM;
	len += (size_t)snprintf(body, cap, "<Delete><Quiet>true</Quiet>");
	for (int i = 0; i < n; i++) {
		char *e = s3_xml_escape(keys[i]);
		len += (size_t)snprintf(body + len, cap - len, "<Object><Key>%s</Key></Object>", e ? e : "");
		free(e);
	}
	len += (size_t)snprintf(body + len, cap - len, "</Delete>");
	/* DeleteObjects requires Content-MD5 (base64). */
	unsigned char md5[16];
	unsigned int mlen = 16;
	EVP_Digest(body, len, md5, &mlen, EVP_md5(), NULL);
	char md5b64[32];
	EVP_EncodeBlock((unsigned char *)md5b64, md5, 16);
	struct s3_hdr h[2] = {{"Content-MD5", md5b64}, {"Content-Type", "application/xml"}};
	struct s3_req rq = {.method = "POST", .query = "delete", .hdrs = h, .n_hdrs = 2, .body = body,
			    .body_len = len, .has_body = true};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 200)
		ret = s3_fail(c, &rs, "deleting objects", keys[0], err);
	if (ret == 0 && rs.body && strstr(rs.body, "<Error>")) {
		size_t pos = 0, en;
		const char *in;
		if (s3_xml_elem(rs.body, rs.len, "Error", &pos, &in, &en)) {
			char *k = s3_xml_text(in, en, "Key"), *code = s3_xml_text(in, en, "Code");
			ret = regfs_errf(err, -EIO, "S3 at %s did not delete \"%s\": %s", c->endpoint,
					 k ? k : "?", code ? code : "?");
			free(k);
			free(code);
		}
	}
	s3_resp_free(&rs);
	free(body);
	return ret;
}

static int s3_del(struct regfs_storage *s, const char *path, struct regfs_err *err)
{
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	if (!key)
		return -ENOMEM;
	size_t kl = strlen(key);
	char **batch = calloc(DELETE_BATCH, sizeof *batch);
	int nb = 0, found = 0;
	char *token = NULL;
	if (!batch)
		ret = -ENOMEM;
	/* List with prefix=key (no delimiter) and keep key itself and key/...:
	 * "a/b" must not take "a/bc" with it. */
	for (int page = 0; ret == 0 && page < 1000000; page++) {
		struct s3_resp rs;
		ret = list_page(c, key, NULL, 1000, token, &rs, err);
		if (ret < 0)
			break;
		free(token);
		token = NULL;
		size_t pos = 0, n;
		const char *in;
		while (ret == 0 && s3_xml_elem(rs.body, rs.len, "Contents", &pos, &in, &n)) {
			char *k = s3_xml_text(in, n, "Key");
			if (!k)
				continue;
			if (kl == 0 || strcmp(k, key) == 0 || (strncmp(k, key, kl) == 0 && k[kl] == '/')) {
				batch[nb++] = k;
				found++;
				if (nb == DELETE_BATCH) {
					ret = delete_batch(c, batch, nb, err);
					for (int i = 0; i < nb; i++)
						free(batch[i]);
					nb = 0;
				}
			} else {
				free(k);
			}
		}
		char *trunc = s3_xml_text(rs.body, rs.len, "IsTruncated");
		if (trunc && strcmp(trunc, "true") == 0)
			token = s3_xml_text(rs.body, rs.len, "NextContinuationToken");
		free(trunc);
		s3_resp_free(&rs);
		if (!token)
			break;
	}
	if (ret == 0 && nb > 0)
		ret = delete_batch(c, batch, nb, err);
	for (int i = 0; i < nb; i++)
		free(batch[i]);
	free(batch);
	free(token);
	/* Uploads in progress under a deleted directory (a purged _uploads/<id>)
	 * would otherwise hold their parts forever: abort them too. */
	int aborted = 0;
	if (ret == 0) {
		char *pfx = NULL;
		if (asprintf(&pfx, "%s%s", key, kl ? "/" : "") >= 0) {
			aborted = s3_mpu_abort_prefix(c, pfx, err);
			if (aborted >= 0 && kl) /* the key itself may be an upload */
				aborted += s3_mpu_abort_prefix(c, key, err) > 0;
			free(pfx);
		}
		if (aborted < 0)
			ret = aborted;
	}
	if (ret == 0 && found == 0 && aborted == 0)
		ret = regfs_errf(err, -ENOENT, "\"%s\" not found in S3 bucket \"%s\"", key, c->bucket);
	free(key);
	return ret;
}

/* ---- reader (s3_reader.c) ---- */

static int s3_reader(struct regfs_storage *s, const char *path, uint64_t offset,
		     struct regfs_reader **out, struct regfs_err *err)
{
	*out = NULL;
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	return s3_reader_open(cl(s), path, offset, out, err);
}

static int s3_writer(struct regfs_storage *s, const char *path, bool append,
		     struct regfs_writer **out, struct regfs_err *err)
{
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	return s3_writer_open(cl(s), path, append, out, err);
}

/* ---- url_for: presigned GET ---- */

static int s3_url_for(struct regfs_storage *s, const char *path, int expires_s, char **url,
		      struct regfs_err *err)
{
	*url = NULL;
	int ret = check_path(path, err);
	if (ret < 0)
		return ret;
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	char *kenc = key ? regfs_sigv4_uri_encode(key, strlen(key), true) : NULL;
	char *p = NULL;
	if (!kenc || asprintf(&p, "%s/%s", c->path_prefix, kenc) < 0)
		p = NULL;
	char amz_date[17];
	regfs_sigv4_amz_date(time(NULL), amz_date);
	struct regfs_sigv4_key k = {c->access_key, c->secret_key, c->region, "s3"};
	char *q = p ? regfs_sigv4_presign_query(&k, amz_date, "GET", c->host, p, NULL,
						expires_s > 0 ? expires_s : 1200) : NULL;
	if (!q || asprintf(url, "%s/%s?%s", c->base_url, kenc, q) < 0) {
		*url = NULL;
		ret = -ENOMEM;
	}
	free(q);
	free(p);
	free(kenc);
	free(key);
	return ret;
}

/* ---- health: HEAD the bucket ---- */

static int s3_health(struct regfs_storage *s, struct regfs_err *err)
{
	struct s3_client *c = cl(s);
	struct s3_req rq = {.method = "HEAD"};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 200) {
		if (rs.status == 404) /* HEAD has no body to say NoSuchBucket */
			ret = regfs_errf(err, -EIO, "S3 bucket \"%s\" does not exist at %s: create it or fix storage.s3.bucket",
					 c->bucket, c->endpoint);
		else
			ret = s3_fail(c, &rs, "checking the bucket", c->bucket, err);
	}
	s3_resp_free(&rs);
	return ret;
}

static void s3_free(struct regfs_storage *s)
{
	struct s3_storage *st = (struct s3_storage *)s;
	s3_client_cleanup(&st->c);
	free(st);
}

static const struct regfs_storage_ops s3_ops = {
	.name = "s3",
	.get = s3_get,
	.put = s3_put,
	.reader = s3_reader,
	.writer = s3_writer,
	.stat = s3_stat,
	.list = s3_list,
	.move = s3_move,
	.del = s3_del,
	.url_for = s3_url_for,
	.open_fd = NULL,
	.health = s3_health,
	.free = s3_free,
};

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int regfs_storage_s3_new(const struct regfs_s3_config *cfg, struct regfs_storage **out,
			 struct regfs_err *err)
{
	*out = NULL;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, curl_init_once);
	struct s3_storage *st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	st->base.ops = &s3_ops;
	int ret = s3_client_init(&st->c, cfg, err);
	if (ret < 0) {
		s3_client_cleanup(&st->c);
		free(st);
		return ret;
	}
	*out = &st->base;
	return 0;
}
