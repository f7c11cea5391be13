/* s3_http.c — the S3 client under the driver: endpoint and addressing style,
 * a pool of curl easy handles sharing one connection cache (CURLSH), SigV4
 * signing of every request (lib/sigv4.c), bounded retries with backoff, and
 * error messages a user can act on. See s3_internal.h. */
#include "s3_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <regfs/config.h>
#include <regfs/log.h>
#include <regfs/sigv4.h>

#define MAX_ATTEMPTS 5
/* Bodies up to this size are hashed into x-amz-content-sha256; larger ones
 * (parts of uploads) are sent as UNSIGNED-PAYLOAD to save a SHA-256 pass. */
#define HASH_BODY_MAX (64 * 1024)

/* ---- client setup ---- */

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
	(void)h;
	(void)a;
	struct s3_client *c = ud;
	pthread_mutex_lock(&c->share_locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud)
{
	(void)h;
	struct s3_client *c = ud;
	pthread_mutex_unlock(&c->share_locks[d]);
}

static char *dup_nonempty(const char *a, const char *b)
{
	if (a && *a)
		return strdup(a);
	if (b && *b)
		return strdup(b);
	return NULL;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = NULL;
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int s3_client_init(struct s3_client *c, const struct regfs_s3_config *cfg, struct regfs_err *err)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->pool_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);

	if (!cfg->bucket || !*cfg->bucket)
		return regfs_errf(err, -EINVAL, "storage.s3.bucket is not set: name the bucket to store images in");
	c->bucket = strdup(cfg->bucket);
	c->access_key = dup_nonempty(cfg->accesskey, getenv("AWS_ACCESS_KEY_ID"));
	c->secret_key = dup_nonempty(cfg->secretkey, getenv("AWS_SECRET_ACCESS_KEY"));
	if (!c->access_key || !c->secret_key)
		return regfs_errf(err, -EINVAL, "no S3 credentials: set storage.s3.accesskey and secretkey, "
				  "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	c->region = strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");

	const char *rd = cfg->rootdirectory ? cfg->rootdirectory : "";
	while (*rd == '/')
		rd++;
	c->root = strdup(rd);
	if (c->root) {
		size_t n = strlen(c->root);
		while (n > 0 && c->root[n - 1] == '/')
			c->root[--n] = '\0';
	}

	c->chunksize = cfg->chunksize ? cfg->chunksize : (uint64_t)10 << 20;
	if (c->chunksize < S3_MIN_PART)
		return regfs_errf(err, -EINVAL, "storage.s3.chunksize %llu is too small: S3 needs at least %llu (5 MiB)",
				  (unsigned long long)c->chunksize, (unsigned long long)S3_MIN_PART);
	c->copy_threshold = cfg->multipartcopythresholdsize ? cfg->multipartcopythresholdsize : (uint64_t)32 << 20;
	c->copy_chunk = cfg->multipartcopychunksize ? cfg->multipartcopychunksize : (uint64_t)32 << 20;
	if (c->copy_chunk < S3_MIN_PART)
		return regfs_errf(err, -EINVAL, "storage.s3.multipartcopychunksize %llu is too small: S3 needs at least 5 MiB",
				  (unsigned long long)c->copy_chunk);
	c->skipverify = cfg->skipverify;
	c->encrypt = cfg->encrypt;

	/* Endpoint: regionendpoint as given (scheme optional), else AWS's. */
	char *ep;
	if (cfg->regionendpoint && *cfg->regionendpoint) {
		if (strstr(cfg->regionendpoint, "://"))
			ep = strdup(cfg->regionendpoint);
		else
			ep = fmt("%s://%s", cfg->secure ? "https" : "http", cfg->regionendpoint);
	} else if (strcmp(c->region, "us-east-1") == 0) {
		ep = fmt("%s://s3.amazonaws.com", cfg->secure ? "https" : "http");
	} else {
		ep = fmt("%s://s3.%s.amazonaws.com", cfg->secure ? "https" : "http", c->region);
	}
	if (!ep)
		return -ENOMEM;
	size_t el = strlen(ep);
	while (el > 0 && ep[el - 1] == '/')
		ep[--el] = '\0';
	c->endpoint = ep;
	c->https = strncasecmp(ep, "https://", 8) == 0;
	const char *hostpart = strstr(ep, "://") + 3;
	if (strchr(hostpart, '/'))
		return regfs_errf(err, -EINVAL, "storage.s3.regionendpoint \"%s\" has a path: give scheme://host[:port] only", ep);
	/* Path-style whenever an endpoint is configured (MinIO, Ceph RGW need
	 * it) or asked for; virtual-hosted style on AWS otherwise. */
	bool path_style = cfg->forcepathstyle || (cfg->regionendpoint && *cfg->regionendpoint);
	if (path_style) {
		c->host = strdup(hostpart);
		c->path_prefix = fmt("/%s", c->bucket);
		c->base_url = fmt("%s/%s", ep, c->bucket);
	} else {
		c->host = fmt("%s.%s", c->bucket, hostpart);
		c->path_prefix = strdup("");
		c->base_url = fmt("%.*s%s.%s", (int)(hostpart - ep), ep, c->bucket, hostpart);
	}
	/* The Host header omits a default port, as curl sends it. */
	if (c->host) {
		size_t hl = strlen(c->host);
		if ((c->https && hl > 4 && strcmp(c->host + hl - 4, ":443") == 0) ||
		    (!c->https && hl > 3 && strcmp(c->host + hl - 3, ":80") == 0))
			*strrchr(c->host, ':') = '\0';
	}
	const char *ca = getenv("AWS_CA_BUNDLE");
	if (c->https && ca && *ca)
		c->ca_bundle = strdup(ca);
	if (!c->bucket || !c->region || !c->root || !c->host || !c->path_prefix || !c->base_url)
		return -ENOMEM;

	c->share = curl_share_init();
	if (!c->share)
		return -ENOMEM;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	log_debug("s3: endpoint %s bucket %s root \"%s\" %s-style, chunksize %llu", c->endpoint,
		  c->bucket, c->root, path_style ? "path" : "virtual-hosted",
		  (unsigned long long)c->chunksize);
	return 0;
}

void s3_client_cleanup(struct s3_client *c)
{
	for (int i = 0; i < c->n_pool; i++)
		curl_easy_cleanup(c->pool[i]);
	c->n_pool = 0;
	if (c->share)
		curl_share_cleanup(c->share);
	free(c->endpoint);
	free(c->base_url);
	free(c->host);
	free(c->path_prefix);
	free(c->bucket);
	free(c->root);
	free(c->access_key);
	if (c->secret_key) {
		memset(c->secret_key, 0, strlen(c->secret_key));
		free(c->secret_key);
	}
	free(c->region);
	free(c->ca_bundle);
	pthread_mutex_destroy(&c->pool_lock);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
}

/* ---- keys ---- */

char *s3_key(struct s3_client *c, const char *path)
{
	while (*path == '/')
		path++;
	if (!*c->root)
		return strdup(path);
	if (!*path)
		return strdup(c->root);
	return fmt("%s/%s", c->root, path);
}

char *s3_qenc(const char *s) { return regfs_sigv4_uri_encode(s, strlen(s), false); }

char *s3_copy_source(struct s3_client *c, const char *key)
{
	char *k = regfs_sigv4_uri_encode(key, strlen(key), true);
	char *b = regfs_sigv4_uri_encode(c->bucket, strlen(c->bucket), false);
	char *out = k && b ? fmt("/%s/%s", b, k) : NULL;
	free(k);
	free(b);
	return out;
}

/* ---- the request ---- */

static CURL *pool_get(struct s3_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->pool_lock);
	if (c->n_pool > 0)
		h = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void pool_put(struct s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->n_pool < S3_POOL_MAX) {
		c->pool[c->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

struct upload {
	const char *p;
	size_t left;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t want = sz * n;
	if (want > u->left)
		want = u->left;
	memcpy(buf, u->p, want);
	u->p += want;
	u->left -= want;
	return want;
}

static size_t on_write(char *data, size_t sz, size_t n, void *ud)
{
	struct s3_resp *rs = ud;
	size_t len = sz * n;
	if (rs->len + len + 1 > rs->cap) {
		size_t cap = rs->cap ? rs->cap : 4096;
		if (rs->content_length + 1 > cap && rs->content_length < ((uint64_t)1 << 32))
			cap = (size_t)rs->content_length + 1;
		while (cap < rs->len + len + 1)
			cap *= 2;
		char *p = realloc(rs->body, cap);
		if (!p)
			return 0;
		rs->body = p;
		rs->cap = cap;
	}
	memcpy(rs->body + rs->len, data, len);
	rs->len += len;
	rs->body[rs->len] = '\0';
	return len;
}

/* Successful response bodies go to the request's sink when it has one. */
struct sink_ctx {
	CURL *h;
	const struct s3_req *rq;
	struct s3_resp *rs;
};

static size_t on_write_sink(char *data, size_t sz, size_t n, void *ud)
{
	struct sink_ctx *sc = ud;
	long st = 0;
	curl_easy_getinfo(sc->h, CURLINFO_RESPONSE_CODE, &st);
	if (st >= 200 && st < 300)
		return sc->rq->sink(data, sz * n, sc->rq->sink_ud);
	return on_write(data, sz, n, sc->rs);
}

static size_t on_header(char *data, size_t sz, size_t n, void *ud)
{
	struct s3_resp *rs = ud;
	size_t len = sz * n;
	char line[512];
	size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
	memcpy(line, data, l);
	line[l] = '\0';
	while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		line[--l] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (redirect, 100): reset */
		rs->etag[0] = '\0';
		rs->content_length = 0;
		return len;
	}
	char *colon = strchr(line, ':');
	if (!colon)
		return len;
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ')
		v++;
	if (strcasecmp(line, "etag") == 0)
		snprintf(rs->etag, sizeof rs->etag, "%s", v);
	else if (strcasecmp(line, "content-length") == 0)
		rs->content_length = strtoull(v, NULL, 10);
	else if (strcasecmp(line, "last-modified") == 0)
		rs->last_modified = (int64_t)curl_getdate(v, NULL);
	return len;
}

static bool retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	/* a reused connection the server had closed (e.g. S3 restarted) fails
	 * after part of the body went out; curl cannot rewind our callback, but
	 * every attempt starts a fresh body from the start, so retry it */
	case CURLE_SEND_FAIL_REWIND:
		return true;
	default:
		return false;
	}
}

static bool retryable_status(long st)
{
	return st == 500 || st == 502 || st == 503 || st == 504 || st == 429;
}

static void backoff(int attempt)
{
	/* 100 ms, 200, 400, 800 (+ up to 50% jitter): under 2.5 s in all, so a
	 * dead endpoint fails a request quickly instead of hanging it. */
	long ms = 100L << attempt;
	ms += rand() % (ms / 2 + 1);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int one_attempt(struct s3_client *c, CURL *h, const struct s3_req *rq, const char *url,
		       const char *path_enc, struct s3_resp *rs, CURLcode *rc, char *errbuf)
{
	char amz_date[17];
	regfs_sigv4_amz_date(time(NULL), amz_date);
	char payload[65];
	if (!rq->has_body || rq->body_len == 0)
		snprintf(payload, sizeof payload, "%s", REGFS_SIGV4_EMPTY_SHA256);
	else if (rq->body_len <= HASH_BODY_MAX)
		regfs_sigv4_sha256_hex(rq->body, rq->body_len, payload);
	else
		snprintf(payload, sizeof payload, "%s", REGFS_SIGV4_UNSIGNED);

	size_t nh = rq->n_hdrs + 3;
	struct regfs_sigv4_header *sh = calloc(nh, sizeof *sh);
	if (!sh)
		return -ENOMEM;
	sh[0] = (struct regfs_sigv4_header){"host", c->host};
	sh[1] = (struct regfs_sigv4_header){"x-amz-date", amz_date};
	sh[2] = (struct regfs_sigv4_header){"x-amz-content-sha256", payload};
	for (size_t i = 0; i < rq->n_hdrs; i++)
		sh[3 + i] = (struct regfs_sigv4_header){rq->hdrs[i].name, rq->hdrs[i].value};
	struct regfs_sigv4_key k = {c->access_key, c->secret_key, c->region, "s3"};
	struct regfs_sigv4_request sr = {rq->method, path_enc, rq->query, sh, nh, payload};
	char *auth = regfs_sigv4_authorization(&k, amz_date, &sr);
	free(sh);
	if (!auth)
		return -ENOMEM;

	struct curl_slist *hl = NULL;
	char line[1024];
	snprintf(line, sizeof line, "x-amz-date: %s", amz_date);
	hl = curl_slist_append(hl, line);
	snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload);
	hl = curl_slist_append(hl, line);
	char *authline = fmt("Authorization: %s", auth);
	free(auth);
	hl = curl_slist_append(hl, authline);
	free(authline);
	for (size_t i = 0; i < rq->n_hdrs; i++) {
		snprintf(line, sizeof line, "%s: %s", rq->hdrs[i].name, rq->hdrs[i].value);
		hl = curl_slist_append(hl, line);
	}
	hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
	if (!rq->has_body)
		hl = curl_slist_append(hl, "Content-Type:");

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A stalled transfer (under 1 KiB/s for 30 s) is abandoned and retried
	 * once: a server that stalls (a full cluster) fails the request within
	 * about a minute instead of holding it for minutes. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	struct sink_ctx sc = {h, rq, rs};
	if (rq->sink) {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write_sink);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &sc);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
	if (c->https) {
		if (c->ca_bundle)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_bundle);
		if (c->skipverify) {
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
	struct upload up = {rq->body, rq->body_len};
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (rq->has_body) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &up);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	errbuf[0] = '\0';
	*rc = curl_easy_perform(h);
	curl_slist_free_all(hl);
	if (*rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
	return 0;
}

int s3_request(struct s3_client *c, const struct s3_req *rq, struct s3_resp *rs,
	       struct regfs_err *err)
{
	memset(rs, 0, sizeof *rs);
	const char *key = rq->key ? rq->key : "";
	char *kenc = regfs_sigv4_uri_encode(key, strlen(key), true);
	if (!kenc)
		return -ENOMEM;
	/* The bucket itself is "/bucket" path-style and "/" virtual-hosted. */
	char *path_enc = *key || !*c->path_prefix ? fmt("%s/%s", c->path_prefix, kenc)
						  : strdup(c->path_prefix);
	char *url = fmt("%s%s%s%s%s", c->base_url, *key ? "/" : (*c->path_prefix ? "" : "/"), kenc,
			rq->query && *rq->query ? "?" : "", rq->query ? rq->query : "");
	free(kenc);
	CURL *h = pool_get(c);
	if (!path_enc || !url || !h) {
		free(path_enc);
		free(url);
		if (h)
			curl_easy_cleanup(h);
		return -ENOMEM;
	}
	int ret = 0;
	CURLcode rc = CURLE_OK;
	char errbuf[CURL_ERROR_SIZE];
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		rs->len = 0;
		if (rs->body)
			rs->body[0] = '\0';
		rs->status = 0;
		rs->attempts = attempt + 1;
		ret = one_attempt(c, h, rq, url, path_enc, rs, &rc, errbuf);
		if (ret < 0)
			break;
		bool retry = rc != CURLE_OK ? retryable_curl(rc) : retryable_status(rs->status);
		if (rc == CURLE_OPERATION_TIMEDOUT && attempt >= 1)
			retry = false;
		if (!retry || attempt == MAX_ATTEMPTS - 1 || rq->no_retry)
			break;
		log_debug("s3: %s %s: %s, retrying", rq->method, url,
			  rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "server error");
		backoff(attempt);
	}
	if (ret == 0 && rc != CURLE_OK)
		ret = regfs_errf(err, -EIO, "S3 endpoint %s is unreachable (%s, %d attempts): check "
				 "storage.s3.regionendpoint and that the S3 server is running",
				 c->endpoint, errbuf[0] ? errbuf : curl_easy_strerror(rc), rs->attempts);
	pool_put(c, h);
	free(path_enc);
	free(url);
	return ret;
}

void s3_resp_free(struct s3_resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->len = rs->cap = 0;
}

int s3_fail(struct s3_client *c, const struct s3_resp *rs, const char *op, const char *key,
	    struct regfs_err *err)
{
	char *code = rs->body ? s3_xml_text(rs->body, rs->len, "Code") : NULL;
	char *msg = rs->body ? s3_xml_text(rs->body, rs->len, "Message") : NULL;
	const char *cd = code ? code : "";
	int ret;
	if (strcmp(cd, "NoSuchBucket") == 0) {
		ret = regfs_errf(err, -EIO, "S3 bucket \"%s\" does not exist at %s: create it or fix storage.s3.bucket",
				 c->bucket, c->endpoint);
	} else if (rs->status == 404 || strcmp(cd, "NoSuchKey") == 0 || strcmp(cd, "NoSuchUpload") == 0) {
		ret = regfs_errf(err, -ENOENT, "%s: \"%s\" not found in S3 bucket \"%s\"%s%s", op,
				 key ? key : "", c->bucket, *cd ? " " : "", cd);
	} else if (rs->status == 403 && strcmp(cd, "RequestTimeTooSkewed") == 0) {
		ret = regfs_errf(err, -EACCES, "S3 at %s refused the request: this machine's clock differs too much from the server's; fix the clock (NTP)",
				 c->endpoint);
	} else if (rs->status == 403 || rs->status == 401) {
		ret = regfs_errf(err, -EACCES, "S3 rejected the credentials for access key %s at %s (%s%s%s): check "
				 "storage.s3.accesskey and secretkey (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the user's rights on bucket \"%s\"",
				 c->access_key, c->endpoint, *cd ? cd : "HTTP 403", msg && *msg ? ": " : "",
				 msg ? msg : "", c->bucket);
	} else if (rs->status == 301 || strcmp(cd, "PermanentRedirect") == 0 ||
		   strcmp(cd, "AuthorizationHeaderMalformed") == 0) {
		ret = regfs_errf(err, -EIO, "S3 at %s says bucket \"%s\" is in another region (%s): fix storage.s3.region",
				 c->endpoint, c->bucket, *cd ? cd : "HTTP 301");
	} else {
		ret = regfs_errf(err, -EIO, "S3 %s of \"%s\" at %s failed: HTTP %ld %s%s%s (after %d attempt%s)", op,
				 key ? key : "", c->endpoint, rs->status, cd, msg && *msg ? ": " : "",
				 msg ? msg : "", rs->attempts, rs->attempts == 1 ? "" : "s");
	}
	free(code);
	free(msg);
	return ret;
}
