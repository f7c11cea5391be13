/* s3_http.c — the S3 client under the driver: endpoint and addressing style,
 * SigV4 signing of every request (lib/sigv4.c), the S3 retry rules on top of
 * lib/http (handle pool, shared connection cache, backoff), and error
 * messages a user can act on. See s3_internal.h. */
#include "s3_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <regfs/config.h>
#include <regfs/dynbuf.h>
#include <regfs/fmt.h>
#include <regfs/log.h>
#include <regfs/mem.h>
#include <regfs/sigv4.h>

#define MAX_ATTEMPTS 5
/* Bodies up to this size are hashed into x-amz-content-sha256; larger ones
 * (parts of uploads) are sent as UNSIGNED-PAYLOAD to save a SHA-256 pass. */
#define HASH_BODY_MAX (64 * 1024)

/* ---- client setup ---- */

static char *dup_nonempty(const char *a, const char *b)
{
	if (a && *a)
		return strdup(a);
	if (b && *b)
		return strdup(b);
	return NULL;
}

/* Bucket, credentials, region, key prefix and part sizes. */
static int client_settings(struct s3_client *c, const struct regfs_s3_config *cfg,
			   struct regfs_err *err)
{
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
	return 0;
}

/* The endpoint URL: regionendpoint as given (scheme optional), else AWS's;
 * no trailing "/". NULL on ENOMEM. */
static char *endpoint_url(const struct s3_client *c, const struct regfs_s3_config *cfg)
{
	char *ep;
	const char *scheme = cfg->secure ? "https" : "http";
	if (cfg->regionendpoint && *cfg->regionendpoint) {
		if (strstr(cfg->regionendpoint, "://"))
			ep = strdup(cfg->regionendpoint);
		else
			ep = xasprintf("%s://%s", scheme, cfg->regionendpoint);
	} else if (strcmp(c->region, "us-east-1") == 0) {
		ep = xasprintf("%s://s3.amazonaws.com", scheme);
	} else {
		ep = xasprintf("%s://s3.%s.amazonaws.com", scheme, c->region);
	}
	size_t el = ep ? strlen(ep) : 0;
	while (el > 0 && ep[el - 1] == '/')
		ep[--el] = '\0';
	return ep;
}

/* Endpoint, addressing style, Host header and request base URL. */
static int client_endpoint(struct s3_client *c, const struct regfs_s3_config *cfg,
			   bool *path_style, struct regfs_err *err)
{
	char *ep = endpoint_url(c, cfg);
	if (!ep)
		return regfs_errf(err, -ENOMEM, "out of memory setting up the S3 client");
	c->endpoint = ep;
	c->https = strncasecmp(ep, "https://", 8) == 0;
	const char *hostpart = strstr(ep, "://") + 3;
	if (strchr(hostpart, '/'))
		return regfs_errf(err, -EINVAL, "storage.s3.regionendpoint \"%s\" has a path: give scheme://host[:port] only", ep);
	/* Path-style whenever an endpoint is configured (MinIO, Ceph RGW need
	 * it) or asked for; virtual-hosted style on AWS otherwise. */
	*path_style = cfg->forcepathstyle || (cfg->regionendpoint && *cfg->regionendpoint);
	if (*path_style) {
		c->host = strdup(hostpart);
		c->path_prefix = xasprintf("/%s", c->bucket);
		c->base_url = xasprintf("%s/%s", ep, c->bucket);
	} else {
		c->host = xasprintf("%s.%s", c->bucket, hostpart);
		c->path_prefix = strdup("");
		c->base_url = xasprintf("%.*s%s.%s", (int)(hostpart - ep), ep, c->bucket, hostpart);
	}
	/* The Host header omits a default port, as curl sends it. */
	if (c->host) {
		size_t hl = strlen(c->host);
		if ((c->https && hl > 4 && strcmp(c->host + hl - 4, ":443") == 0) ||
		    (!c->https && hl > 3 && strcmp(c->host + hl - 3, ":80") == 0))
			*strrchr(c->host, ':') = '\0';
	}
	return 0;
}

int s3_client_init(struct s3_client *c, const struct regfs_s3_config *cfg, struct regfs_err *err)
{
	memset(c, 0, sizeof *c);
	bool path_style = false;
	int rc = client_settings(c, cfg, err);
	if (!rc)
		rc = client_endpoint(c, cfg, &path_style, err);
	if (rc)
		return rc;
	const char *ca = getenv("AWS_CA_BUNDLE");
	if (c->https && ca && *ca)
		c->ca_bundle = strdup(ca);
	if (!c->bucket || !c->region || !c->root || !c->host || !c->path_prefix || !c->base_url)
		return regfs_errf(err, -ENOMEM, "out of memory setting up the S3 client");
	rc = regfs_http_init(&c->http, err);
	if (rc)
		return rc;
	log_debug("s3: endpoint %s bucket %s root \"%s\" %s-style, chunksize %llu", c->endpoint,
		  c->bucket, c->root, path_style ? "path" : "virtual-hosted",
		  (unsigned long long)c->chunksize);
	return 0;
}

void s3_client_cleanup(struct s3_client *c)
{
	regfs_http_cleanup(&c->http);
	REGFS_FREE_STRS(&c->endpoint, &c->base_url, &c->host, &c->path_prefix, &c->bucket,
			&c->root, &c->access_key, &c->region, &c->ca_bundle);
	regfs_free_secret(c->secret_key);
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
	return xasprintf("%s/%s", c->root, path);
}

char *s3_qenc(const char *s) { return regfs_sigv4_uri_encode(s, strlen(s), false); }

char *s3_copy_source(struct s3_client *c, const char *key)
{
	char *k = regfs_sigv4_uri_encode(key, strlen(key), true);
	char *b = regfs_sigv4_uri_encode(c->bucket, strlen(c->bucket), false);
	char *out = k && b ? xasprintf("/%s/%s", b, k) : NULL;
	free(k);
	free(b);
	return out;
}

/* ---- the request ---- */

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

/* What one attempt writes to: the request's sink takes a 2xx body when it has
 * one; everything else (error bodies, bodies without a sink) is collected. */
struct attempt_ctx {
	CURL *h;
	const struct s3_req *rq;
	struct dynbuf body;
};

static size_t on_write(char *data, size_t sz, size_t n, void *ud)
{
	struct attempt_ctx *ac = ud;
	if (ac->rq->sink) {
		long st = 0;
		curl_easy_getinfo(ac->h, CURLINFO_RESPONSE_CODE, &st);
		if (st >= 200 && st < 300)
			return ac->rq->sink(data, sz * n, ac->rq->sink_ud);
	}
	return dynbuf_add(&ac->body, data, sz * n) == 0 ? sz * n : 0;
}

/* "bytes <a>-<b>/<total>" (or "bytes *" + "/<total>"): the object's size. */
static void parse_range_total(struct s3_resp *rs, const char *v)
{
	const char *slash = strrchr(v, '/');
	if (!slash || slash[1] < '0' || slash[1] > '9')
		return;
	char *e;
	unsigned long long t = strtoull(slash + 1, &e, 10);
	if (*e == '\0') {
		rs->range_total = t;
		rs->has_range_total = true;
	}
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
		rs->has_range_total = false;
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
	else if (strcasecmp(line, "content-range") == 0)
		parse_range_total(rs, v);
	else if (strcasecmp(line, "last-modified") == 0)
		rs->last_modified = (int64_t)curl_getdate(v, NULL);
	return len;
}

/* Transport failures worth another attempt (lib/http's, plus what S3 makes
 * safe). A reused connection the server had closed (e.g. S3 restarted) fails
 * after part of the body went out; curl cannot rewind our callback, but every
 * attempt starts a fresh body from the start, so it is retried too. */
#define S3_TRANSIENT (REGFS_HTTP_TRANSIENT_TIMEOUT | REGFS_HTTP_TRANSIENT_TLS_CONNECT | \
		      REGFS_HTTP_TRANSIENT_REWIND)

static bool retryable_status(long st)
{
	return st == 500 || st == 502 || st == 503 || st == 504 || st == 429;
}

/* The x-amz-content-sha256 value of rq's body. */
static void payload_hash(const struct s3_req *rq, char payload[65])
{
	if (!rq->has_body || rq->body_len == 0)
		snprintf(payload, 65, "%s", REGFS_SIGV4_EMPTY_SHA256);
	else if (rq->body_len <= HASH_BODY_MAX)
		regfs_sigv4_sha256_hex(rq->body, rq->body_len, payload);
	else
		snprintf(payload, 65, "%s", REGFS_SIGV4_UNSIGNED);
}

/* "Authorization: AWS4-HMAC-SHA256 …" for rq, malloc'd; NULL on ENOMEM. */
static char *sign(struct s3_client *c, const struct s3_req *rq, const char *path_enc,
		  const char *amz_date, const char *payload)
{
	size_t nh = rq->n_hdrs + 3;
	struct regfs_sigv4_header *sh = calloc(nh, sizeof *sh);
	if (!sh)
		return NULL;
	sh[0] = (struct regfs_sigv4_header){"host", c->host};
	sh[1] = (struct regfs_sigv4_header){"x-amz-date", amz_date};
	sh[2] = (struct regfs_sigv4_header){"x-amz-content-sha256", payload};
	for (size_t i = 0; i < rq->n_hdrs; i++)
		sh[3 + i] = (struct regfs_sigv4_header){rq->hdrs[i].name, rq->hdrs[i].value};
	struct regfs_sigv4_key k = {c->access_key, c->secret_key, c->region, "s3"};
	struct regfs_sigv4_request sr = {rq->method, path_enc, rq->query, sh, nh, payload};
	char *auth = regfs_sigv4_authorization(&k, amz_date, &sr);
	free(sh);
	char *line = auth ? xasprintf("Authorization: %s", auth) : NULL;
	free(auth);
	return line;
}

/* The signed header list of one attempt; NULL on ENOMEM. */
static struct curl_slist *signed_headers(struct s3_client *c, const struct s3_req *rq,
					 const char *path_enc)
{
	char amz_date[17];
	regfs_sigv4_amz_date(time(NULL), amz_date);
	char payload[65];
	payload_hash(rq, payload);
	char *authline = sign(c, rq, path_enc, amz_date, payload);
	if (!authline)
		return NULL;
	struct curl_slist *hl = NULL;
	char line[1024];
	snprintf(line, sizeof line, "x-amz-date: %s", amz_date);
	hl = curl_slist_append(hl, line);
	snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload);
	hl = curl_slist_append(hl, line);
	hl = curl_slist_append(hl, authline);
	free(authline);
	for (size_t i = 0; i < rq->n_hdrs; i++) {
		snprintf(line, sizeof line, "%s: %s", rq->hdrs[i].name, rq->hdrs[i].value);
		hl = curl_slist_append(hl, line);
	}
	hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
	if (!rq->has_body)
		hl = curl_slist_append(hl, "Content-Type:");
	return hl;
}

/* Timeouts, TLS, method and body of one attempt on the handle. */
static void set_options(struct s3_client *c, CURL *h, const struct s3_req *rq,
			struct upload *up)
{
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A stalled transfer (under 1 KiB/s for 30 s) is abandoned and retried
	 * once: a server that stalls (a full cluster) fails the request within
	 * about a minute instead of holding it for minutes. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (c->https) {
		if (c->ca_bundle)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_bundle);
		if (c->skipverify) {
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (rq->has_body) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, up);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
}

/* One signed attempt on a fresh handle from the pool: 0 with *rc the curl
 * outcome (rs->status on an answer, the collected body in ac->body), or
 * -ENOMEM. */
static int one_attempt(struct s3_client *c, struct attempt_ctx *ac, const char *url,
		       const char *path_enc, struct s3_resp *rs, CURLcode *rc, char *errbuf)
{
	const struct s3_req *rq = ac->rq;
	struct curl_slist *hl = signed_headers(c, rq, path_enc);
	CURL *h = hl ? regfs_http_handle(&c->http) : NULL;
	if (!h) {
		curl_slist_free_all(hl);
		return -ENOMEM;
	}
	ac->h = h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, ac);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
	struct upload up = {rq->body, rq->body_len};
	set_options(c, h, rq, &up);
	errbuf[0] = '\0';
	*rc = curl_easy_perform(h);
	curl_slist_free_all(hl);
	if (*rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
	regfs_http_release(&c->http, h);
	ac->h = NULL;
	return 0;
}

/* The request's signed path and its URL; -ENOMEM. */
static int request_target(struct s3_client *c, const struct s3_req *rq, char **path_enc,
			  char **url)
{
	const char *key = rq->key ? rq->key : "";
	char *kenc = regfs_sigv4_uri_encode(key, strlen(key), true);
	if (!kenc)
		return -ENOMEM;
	/* The bucket itself is "/bucket" path-style and "/" virtual-hosted. */
	*path_enc = *key || !*c->path_prefix ? xasprintf("%s/%s", c->path_prefix, kenc)
					     : strdup(c->path_prefix);
	*url = xasprintf("%s%s%s%s%s", c->base_url, *key ? "/" : (*c->path_prefix ? "" : "/"), kenc,
			 rq->query && *rq->query ? "?" : "", rq->query ? rq->query : "");
	free(kenc);
	if (*path_enc && *url)
		return 0;
	free(*path_enc);
	free(*url);
	return -ENOMEM;
}

int s3_request(struct s3_client *c, const struct s3_req *rq, struct s3_resp *rs,
	       struct regfs_err *err)
{
	memset(rs, 0, sizeof *rs);
	char *path_enc, *url;
	int ret = request_target(c, rq, &path_enc, &url);
	if (ret)
		return regfs_errf(err, ret, "out of memory building an S3 %s request", rq->method);
	CURLcode rc = CURLE_OK;
	char errbuf[CURL_ERROR_SIZE];
	struct attempt_ctx ac = {.rq = rq, .body = DYNBUF_INIT(DYNBUF_NO_CAP)};
	struct regfs_http_backoff bo;
	/* 100 ms, 200, 400, 800 (+ up to 50% jitter): under 2.5 s in all, so a
	 * dead endpoint fails a request quickly instead of hanging it. */
	regfs_http_backoff_init(&bo, 100, true);
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		dynbuf_reset(&ac.body);
		rs->status = 0;
		rs->attempts = attempt + 1;
		ret = one_attempt(c, &ac, url, path_enc, rs, &rc, errbuf);
		if (ret < 0)
			break;
		bool retry = rc != CURLE_OK ? regfs_http_transient(rc, S3_TRANSIENT)
					    : retryable_status(rs->status);
		if (rc == CURLE_OPERATION_TIMEDOUT && attempt >= 1)
			retry = false;
		if (!retry || attempt == MAX_ATTEMPTS - 1 || rq->no_retry)
			break;
		log_debug("s3: %s %s: %s, retrying", rq->method, url,
			  rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "server error");
		regfs_http_backoff_sleep(&bo);
	}
	if (ret < 0)
		regfs_errf(err, ret, "out of memory sending S3 %s %s", rq->method, url);
	else if (rc != CURLE_OK)
		ret = regfs_errf(err, -EIO, "S3 endpoint %s is unreachable (%s, %d attempts): check "
				 "storage.s3.regionendpoint and that the S3 server is running",
				 c->endpoint, errbuf[0] ? errbuf : curl_easy_strerror(rc), rs->attempts);
	/* the body is the caller's now; none at all reads as NULL */
	if (dynbuf_len(&ac.body))
		rs->body = dynbuf_take(&ac.body, &rs->len);
	dynbuf_free(&ac.body);
	free(path_enc);
	free(url);
	return ret;
}

void s3_resp_free(struct s3_resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->len = 0;
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
