/* s3.c — the S3 storage driver (distribution's "s3" driver, same keys).
 *
 * Keys: <rootdirectory>/<path without its leading "/">, rootdirectory "" or
 * "/" meaning no prefix — what distribution's s3Path computes, so a bucket
 * written by registry:2 is served unchanged and the other way round.
 * Directories are implicit: a "directory" is a prefix with objects below it.
 *
 * The base (storage.c) has checked every path before it reaches this file.
 * Request layer, retries and error messages: s3_http.c. Reader (streaming
 * GET): s3_reader.c. Writer (multipart upload, append/resume): s3_writer.c,
 * on the calls in s3_multipart.c, which also holds the server-side copies
 * move() uses. No open_fd: S3 objects have no file descriptors. */
#include "s3_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include <regfs/config.h>
#include <regfs/dynbuf.h>
#include <regfs/fmt.h>
#include <regfs/log.h>
#include <regfs/sigv4.h>

#define DELETE_BATCH 1000 /* S3's limit per DeleteObjects request */

struct s3_storage {
	struct regfs_storage base;
	struct s3_client c;
};

static struct s3_client *cl(struct regfs_storage *s) { return &((struct s3_storage *)s)->c; }

/* ---- get / put / stat ---- */

/* Sends rq to the object at `path` (sets rq->key for the call). An answer
 * other than `ok` becomes an error naming `op` (ok 0: any answer is the
 * caller's). rs is always the caller's to free. */
static int send_path(struct s3_client *c, const char *path, struct s3_req *rq, long ok,
		     const char *op, struct s3_resp *rs, struct regfs_err *err)
{
	memset(rs, 0, sizeof *rs);
	char *key = s3_key(c, path);
	if (!key)
		return s3_nomem(err);
	rq->key = key;
	int ret = s3_request(c, rq, rs, err);
	if (ret == 0 && ok && rs->status != ok)
		ret = s3_fail(c, rs, op, key, err);
	rq->key = NULL;
	free(key);
	return ret;
}

static int s3_get(struct regfs_storage *s, const char *path, char **data, size_t *len,
		  struct regfs_err *err)
{
	struct s3_req rq = {.method = "GET"};
	struct s3_resp rs;
	int ret = send_path(cl(s), path, &rq, 200, "reading", &rs, err);
	if (ret == 0 && !rs.body && !(rs.body = strdup("")))
		ret = s3_nomem(err);
	if (ret == 0) {
		*data = rs.body;
		*len = rs.len;
		rs.body = NULL;
	}
	s3_resp_free(&rs);
	return ret;
}

static int s3_put(struct regfs_storage *s, const char *path, const void *data, size_t len,
		  struct regfs_err *err)
{
	struct s3_client *c = cl(s);
	struct s3_hdr h[2] = {{"Content-Type", "application/octet-stream"},
			      {"x-amz-server-side-encryption", "AES256"}};
	struct s3_req rq = {.method = "PUT", .body = data, .body_len = len, .has_body = true,
			    .hdrs = h, .n_hdrs = c->encrypt ? 2 : 1};
	struct s3_resp rs;
	int ret = send_path(c, path, &rq, 200, "writing", &rs, err);
	s3_resp_free(&rs);
	return ret;
}

/* One page of ListObjectsV2 (rs->status 200) or an error. */
static int list_page(struct s3_client *c, const char *prefix, const char *delimiter, int max_keys,
		     const char *token, struct s3_resp *rs, struct regfs_err *err)
{
	char *p = s3_qenc(prefix), *t = token ? s3_qenc(token) : NULL;
	char *q = xasprintf("list-type=2&prefix=%s%s%s&max-keys=%d%s%s", p ? p : "",
			    delimiter ? "&delimiter=" : "", delimiter ? "%2F" : "", max_keys,
			    t ? "&continuation-token=" : "", t ? t : "");
	free(p);
	free(t);
	if (!q)
		return s3_nomem(err);
	struct s3_req rq = {.method = "GET", .query = q};
	int ret = s3_request(c, &rq, rs, err);
	free(q);
	if (ret == 0 && rs->status != 200) {
		ret = s3_fail(c, rs, "listing", prefix, err);
		s3_resp_free(rs);
	}
	return ret;
}

/* Called with each key under a prefix (and, when listing with the "/"
 * delimiter, each common prefix, without its trailing "/"). 0 goes on, > 0
 * stops the listing (each_key returns 0), < 0 stops it with that error. */
typedef int (*key_cb)(const char *key, void *ud);

/* The keys of one page: objects first, then common prefixes. */
static int page_keys(const struct s3_resp *rs, key_cb cb, void *ud)
{
	static const char *const elems[2][2] = {{"Contents", "Key"}, {"CommonPrefixes", "Prefix"}};
	int ret = 0;
	for (int pass = 0; pass < 2 && ret == 0; pass++) {
		size_t pos = 0, n;
		const char *in;
		while (ret == 0 && s3_xml_elem(rs->body, rs->len, elems[pass][0], &pos, &in, &n)) {
			char *k = s3_xml_text(in, n, elems[pass][1]);
			if (!k)
				continue;
			size_t kl = strlen(k);
			if (kl > 0 && k[kl - 1] == '/')
				k[kl - 1] = '\0';
			ret = cb(k, ud);
			free(k);
		}
	}
	return ret;
}

/* Every key starting with `prefix`, page by page (ListObjectsV2). */
static int each_key(struct s3_client *c, const char *prefix, bool delimited, key_cb cb, void *ud,
		    struct regfs_err *err)
{
	char *token = NULL;
	int ret = 0;
	for (int page = 0; page < 1000000 && ret == 0; page++) {
		struct s3_resp rs;
		ret = list_page(c, prefix, delimited ? "/" : NULL, 1000, token, &rs, err);
		if (ret < 0)
			break;
		free(token);
		token = NULL;
		ret = page_keys(&rs, cb, ud);
		char *trunc = s3_xml_text(rs.body, rs.len, "IsTruncated");
		if (ret == 0 && trunc && strcmp(trunc, "true") == 0)
			token = s3_xml_text(rs.body, rs.len, "NextContinuationToken");
		free(trunc);
		s3_resp_free(&rs);
		if (!token)
			break;
	}
	free(token);
	return ret > 0 ? 0 : ret;
}

/* The object at `key`: 1 and *st filled, 0 when there is none, or an error. */
static int stat_object(struct s3_client *c, const char *key, struct regfs_stat_info *st,
		       struct regfs_err *err)
{
	struct s3_req rq = {.method = "HEAD", .key = key};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status == 200) {
		st->size = rs.content_length;
		st->mtime = rs.last_modified;
		st->is_dir = false;
		ret = 1;
	} else if (ret == 0 && rs.status != 404) {
		ret = s3_fail(c, &rs, "checking", key, err);
	}
	s3_resp_free(&rs);
	return ret;
}

/* Not an object: a directory when some key lies below it ("" is the root). */
static int stat_dir(struct s3_client *c, const char *key, struct regfs_stat_info *st,
		    struct regfs_err *err)
{
	char *prefix = xasprintf("%s%s", key, *key ? "/" : "");
	if (!prefix)
		return s3_nomem(err);
	struct s3_resp rs;
	int ret = list_page(c, prefix, NULL, 1, NULL, &rs, err);
	free(prefix);
	if (ret < 0)
		return ret;
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
	return ret;
}

static int s3_stat(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
		   struct regfs_err *err)
{
	memset(st, 0, sizeof *st);
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	if (!key)
		return s3_nomem(err);
	int ret = *key ? stat_object(c, key, st, err) : 0;
	if (ret == 0)
		ret = stat_dir(c, key, st, err);
	free(key);
	return ret < 0 ? ret : 0;
}

/* An object only: its 404 is the answer (no LIST for a directory). */
static int s3_stat_object(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
			  struct regfs_err *err)
{
	memset(st, 0, sizeof *st);
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	if (!key)
		return s3_nomem(err);
	int ret = stat_object(c, key, st, err);
	if (ret == 0)
		ret = regfs_errf(err, -ENOENT, "\"%s\" not found in S3 bucket \"%s\"", key,
				 c->bucket);
	free(key);
	return ret < 0 ? ret : 0;
}

/* ---- list ---- */

struct list_ctx {
	const char *path, *sep, *prefix;
	size_t plen;
	regfs_list_cb cb;
	void *ud;
	bool any;
};

/* Child paths are "<path>/<name>" in storage terms. */
static int list_key(const char *k, void *ud)
{
	struct list_ctx *x = ud;
	if (strlen(k) <= x->plen || strncmp(k, x->prefix, x->plen) != 0)
		return 0;
	char *child = xasprintf("%s%s%s", x->path, x->sep, k + x->plen);
	if (!child)
		return 0;
	x->any = true;
	int stop = x->cb(child, x->ud);
	free(child);
	return stop ? 1 : 0;
}

static int s3_list(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		   struct regfs_err *err)
{
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	char *prefix = key ? xasprintf("%s%s", key, *key ? "/" : "") : NULL;
	if (!prefix) {
		free(key);
		return s3_nomem(err);
	}
	bool root = strcmp(path, "/") == 0;
	struct list_ctx x = {.path = path, .sep = root ? "" : "/", .prefix = prefix,
			     .plen = strlen(prefix), .cb = cb, .ud = ud};
	int ret = each_key(c, prefix, true, list_key, &x, err);
	if (ret == 0 && !x.any && !root)
		ret = regfs_errf(err, -ENOENT, "directory \"%s\" not found in S3 bucket \"%s\"", key, c->bucket);
	free(prefix);
	free(key);
	return ret;
}

int s3_delete_req(struct s3_client *c, const char *key, const char *query, const char *op,
		  struct regfs_err *err)
{
	struct s3_req rq = {.method = "DELETE", .key = key, .query = query};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status != 204 && rs.status != 200 && rs.status != 404)
		ret = s3_fail(c, &rs, op, key, err);
	s3_resp_free(&rs);
	return ret;
}

int s3_delete_key(struct s3_client *c, const char *key, struct regfs_err *err)
{
	return s3_delete_req(c, key, NULL, "deleting", err);
}

/* ---- move: server-side copy (s3_multipart.c), then delete the source ---- */

static int s3_move(struct regfs_storage *s, const char *src, const char *dst, struct regfs_err *err)
{
	struct s3_client *c = cl(s);
	struct regfs_stat_info st;
	int ret = s3_stat(s, src, &st, err);
	if (ret == 0 && st.is_dir)
		ret = regfs_errf(err, -EINVAL, "cannot move \"%s\": it is a directory (S3 moves objects only)", src);
	if (ret < 0)
		return ret;
	char *ks = s3_key(c, src), *kd = s3_key(c, dst);
	if (!ks || !kd)
		ret = s3_nomem(err);
	if (ret == 0)
		ret = s3_copy_object(c, ks, kd, st.size, NULL, err);
	if (ret == 0)
		ret = s3_delete_key(c, ks, err);
	free(ks);
	free(kd);
	return ret;
}

/* ---- delete: an object, or everything under a prefix ---- */

/* The DeleteObjects document for keys[0..n). */
static int delete_body(struct dynbuf *b, char **keys, int n)
{
	int ret = dynbuf_addstr(b, "<Delete><Quiet>true</Quiet>");
	for (int i = 0; i < n && ret == 0; i++) {
		char *e = s3_xml_escape(keys[i]);
		ret = e ? dynbuf_printf(b, "<Object><Key>%s</Key></Object>", e) : -ENOMEM;
		free(e);
	}
	return ret ? ret : dynbuf_addstr(b, "</Delete>");
}

static int delete_batch(struct s3_client *c, char **keys, int n, struct regfs_err *err)
{
	struct dynbuf b = DYNBUF_INIT(DYNBUF_NO_CAP); /* bounded by DELETE_BATCH keys */
	if (delete_body(&b, keys, n) < 0) {
		dynbuf_free(&b);
		return s3_nomem(err);
	}
	const char *body = dynbuf_ptr(&b);
	size_t len = dynbuf_len(&b);
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
	dynbuf_free(&b);
	return ret;
}

struct del_ctx {
	struct s3_client *c;
	const char *key;
	size_t kl;
	char *batch[DELETE_BATCH];
	int n, found;
	struct regfs_err *err;
};

/* Deletes the batched keys (send) or only forgets them (after a failure). */
static int flush_batch(struct del_ctx *x, bool send)
{
	int ret = send && x->n ? delete_batch(x->c, x->batch, x->n, x->err) : 0;
	for (int i = 0; i < x->n; i++)
		free(x->batch[i]);
	x->n = 0;
	return ret;
}

/* Keeps the key itself and key/...: "a/b" must not take "a/bc" with it. */
static int del_key(const char *k, void *ud)
{
	struct del_ctx *x = ud;
	if (x->kl && strcmp(k, x->key) != 0 && !(strncmp(k, x->key, x->kl) == 0 && k[x->kl] == '/'))
		return 0;
	if (!(x->batch[x->n] = strdup(k)))
		return s3_nomem(x->err);
	x->n++;
	x->found++;
	return x->n == DELETE_BATCH ? flush_batch(x, true) : 0;
}

/* Uploads in progress under a deleted directory (a purged _uploads/<id>)
 * would otherwise hold their parts forever: abort them too. How many, or
 * an error. */
static int abort_uploads_under(struct s3_client *c, const char *key, struct regfs_err *err)
{
	size_t kl = strlen(key);
	char *pfx = xasprintf("%s%s", key, kl ? "/" : "");
	if (!pfx)
		return s3_nomem(err);
	int aborted = s3_mpu_abort_prefix(c, pfx, err);
	if (aborted >= 0 && kl) /* the key itself may be an upload */
		aborted += s3_mpu_abort_prefix(c, key, err) > 0;
	free(pfx);
	return aborted;
}

static int s3_del(struct regfs_storage *s, const char *path, struct regfs_err *err)
{
	struct s3_client *c = cl(s);
	struct del_ctx *x = calloc(1, sizeof *x);
	char *key = s3_key(c, path);
	if (!x || !key) {
		free(x);
		free(key);
		return s3_nomem(err);
	}
	*x = (struct del_ctx){.c = c, .key = key, .kl = strlen(key), .err = err};
	/* no delimiter: every key below, at any depth */
	int ret = each_key(c, key, false, del_key, x, err);
	int r2 = flush_batch(x, ret == 0);
	ret = ret ? ret : r2;
	int aborted = ret == 0 ? abort_uploads_under(c, key, err) : 0;
	if (aborted < 0)
		ret = aborted;
	if (ret == 0 && x->found == 0 && aborted == 0)
		ret = regfs_errf(err, -ENOENT, "\"%s\" not found in S3 bucket \"%s\"", key, c->bucket);
	free(x);
	free(key);
	return ret;
}

/* ---- reader (s3_reader.c) ---- */

static int s3_reader(struct regfs_storage *s, const char *path, uint64_t offset,
		     struct regfs_reader **out, struct regfs_err *err)
{
	return s3_reader_open(cl(s), path, offset, out, err);
}

static int s3_writer(struct regfs_storage *s, const char *path, bool append,
		     struct regfs_writer **out, struct regfs_err *err)
{
	return s3_writer_open(cl(s), path, append, out, err);
}

/* ---- url_for: presigned GET ---- */

static int s3_url_for(struct regfs_storage *s, const char *path, int expires_s, char **url,
		      struct regfs_err *err)
{
	struct s3_client *c = cl(s);
	char *key = s3_key(c, path);
	char *kenc = key ? regfs_sigv4_uri_encode(key, strlen(key), true) : NULL;
	char *p = kenc ? xasprintf("%s/%s", c->path_prefix, kenc) : NULL;
	char amz_date[17];
	regfs_sigv4_amz_date(time(NULL), amz_date);
	struct regfs_sigv4_key k = {c->access_key, c->secret_key, c->region, "s3"};
	char *q = p ? regfs_sigv4_presign_query(&k, amz_date, "GET", c->host, p, NULL,
						expires_s > 0 ? expires_s : 1200) : NULL;
	*url = q ? xasprintf("%s/%s?%s", c->base_url, kenc, q) : NULL;
	free(q);
	free(p);
	free(kenc);
	free(key);
	return *url ? 0 : s3_nomem(err);
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
	.stat_object = s3_stat_object,
	.list = s3_list,
	.move = s3_move,
	.del = s3_del,
	.url_for = s3_url_for,
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
		return s3_nomem(err);
	st->base.ops = &s3_ops;
	int ret = s3_client_init(&st->c, cfg, err);
	if (ret == -ENOMEM)
		s3_nomem(err); /* when the client did not say it */
	if (ret < 0) {
		s3_client_cleanup(&st->c);
		free(st);
		return ret;
	}
	*out = &st->base;
	return 0;
}
