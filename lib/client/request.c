/* request.c — one HTTP exchange with the registry: a curl easy handle on the
 * client's shared connection cache (CURLSH), response capture (headers we
 * need, body into memory / a caller buffer / an fd), bounded retries with
 * backoff for idempotent requests, the whole-request deadline, and mapping of
 * failures to the errno table of client.h. */
#include "internal.h"

#include <regfs/log.h>
#include <regfs/mem.h>
#include <regfs/sigv4.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

/* Error bodies are small; do not let a broken server fill memory with one. */
#define ERR_BODY_MAX (64 * 1024)
/* Manifests are <= 4 MiB by spec; catalog pages can be larger. */
#define MEM_BODY_MAX (256u * 1024 * 1024)
#define MAX_ATTEMPTS 4
#define BACKOFF_FIRST_MS 100 /* then doubling, while the deadline allows */

const char *const manifest_accept_hdr =
	"Accept: application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.oci.image.index.v1+json, "
	"application/vnd.docker.distribution.manifest.v2+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json";

static void resp_headers_free(struct resp *r)
{
	REGFS_FREE_STRS(&r->ctype, &r->dcd, &r->location, &r->link, &r->www_auth,
			&r->api_version, &r->extensions, &r->last_modified);
	r->content_length = -1;
}

void resp_free(struct resp *r)
{
	resp_headers_free(r);
	dynbuf_free(&r->body);
	regfs_hasher_free(r->hasher);
	r->hasher = NULL;
}

int call_init(struct call *k, char *url, char *scope, enum sink_kind sink,
	      struct regfs_err *err)
{
	*k = (struct call){.url = url, .scope = scope,
			   .r = {.sink = sink, .content_length = -1}};
	return url && scope ? 0 : regfs_errf(err, -ENOMEM, "out of memory");
}

void call_free(struct call *k)
{
	resp_free(&k->r);
	free(k->url);
	free(k->scope);
	k->url = k->scope = NULL;
}

int call_get(struct regfs_client *c, struct call *k, char *url, const char *repo,
	     _Atomic uint64_t *stat, struct regfs_err *err)
{
	int rc = call_init(k, url, scope_pull(repo), SINK_MEM, err);
	if (rc)
		return rc;
	struct rq q = {.method = "GET", .url = k->url, .scope = k->scope, .idempotent = true};
	atomic_fetch_add_explicit(stat, 1, memory_order_relaxed);
	return client_do(c, &q, &k->r, err);
}

void resp_reset(struct resp *r)
{
	resp_headers_free(r);
	r->status = 0;
	dynbuf_reset(&r->body);
	r->buf_got = 0;
	r->seen = 0;
	/* SINK_FD and SINK_CB are only retried when nothing was written, so the
	 * hasher is fresh; a retried SINK_CB tells its size again. */
	r->cb_sized = false;
}

/* Everything but RFC 3986's unreserved characters is %-escaped: the same rule
 * SigV4 signs with, so one encoder serves both. */
char *url_escape(const char *s)
{
	return regfs_sigv4_uri_encode(s, strlen(s), false);
}

/* ---- capture ---- */

static bool status_ok(long s)
{
	return s >= 200 && s < 300;
}

static char *trimdup(const char *v, size_t n)
{
	while (n && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	return strndup(v, n);
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
	struct resp *r = ud;
	size_t n = size * nitems;
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or 100-continue): forget the last. */
		resp_headers_free(r);
		const char *sp = memchr(line, ' ', n);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		/* The body of a redirect is not the body we want; what this one
		 * may hold depends on its status. */
		dynbuf_free(&r->body);
		dynbuf_init(&r->body, status_ok(r->status) ? MEM_BODY_MAX : ERR_BODY_MAX);
		return n;
	}
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return n;
	size_t kl = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vl = n - kl - 1;
	char **slot = NULL;
#define HDR(name, field) else if (kl == strlen(name) && strncasecmp(line, name, kl) == 0) slot = &r->field;
	if (0) {
	}
	HDR("Content-Type", ctype)
	HDR("Docker-Content-Digest", dcd)
	HDR("Location", location)
	HDR("Link", link)
	HDR("Docker-Distribution-API-Version", api_version)
	HDR("X-Regfs-Extensions", extensions)
	HDR("Last-Modified", last_modified)
	else if (kl == 16 && strncasecmp(line, "WWW-Authenticate", kl) == 0) {
		/* Several challenges may come; prefer Bearer, which we can act on. */
		if (r->www_auth && strncasecmp(r->www_auth, "Bearer", 6) == 0)
			return n;
		slot = &r->www_auth;
	} else if (kl == 14 && strncasecmp(line, "Content-Length", kl) == 0) {
		char *t = trimdup(v, vl);
		if (t)
			r->content_length = strtoll(t, NULL, 10);
		free(t);
		return n;
	}
#undef HDR
	if (slot) {
		free(*slot);
		*slot = trimdup(v, vl);
	}
	return n;
}

/* SINK_CB: the size once, then every chunk, to the caller; a callback's
 * error stops the transfer (reported as a write error with its errno). */
static size_t on_body_cb(struct resp *r, const char *data, size_t n)
{
	int rc = 0;
	if (r->status != 200)
		return n; /* not the blob (a 2xx without its body): nothing to hand on */
	if (!r->cb_sized) {
		r->cb_sized = true;
		if (r->cb->size)
			rc = r->cb->size(r->cb->arg, r->content_length);
	}
	if (rc == 0)
		rc = r->cb->data(r->cb->arg, data, n);
	if (rc) {
		r->write_errno = rc < 0 ? -rc : EIO;
		return 0;
	}
	if (r->hasher)
		regfs_hasher_update(r->hasher, data, n);
	r->written += n;
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct resp *r = ud;
	size_t n = size * nmemb;
	if (!status_ok(r->status) || r->sink == SINK_MEM) {
		int rc = dynbuf_add(&r->body, data, n);
		if (rc == -E2BIG) /* over the cap: abort a body, drop an error's excess */
			return status_ok(r->status) ? 0 : n;
		return rc == 0 ? n : 0;
	}
	switch (r->sink) {
	case SINK_BUF: {
		/* A registry that ignores Range answers 200 with the whole blob:
		 * drop the bytes before the offset we asked for. */
		uint64_t start = r->status == 200 ? r->skip : 0;
		size_t drop = 0;
		if (r->seen < start)
			drop = start - r->seen < n ? (size_t)(start - r->seen) : n;
		r->seen += n;
		size_t room = r->buf_cap - r->buf_got, take = n - drop;
		if (take > room)
			take = room;
		memcpy(r->buf + r->buf_got, data + drop, take);
		r->buf_got += take;
		/* Once the buffer is full, stop instead of downloading the rest
		 * (curl reports a write error, which client_do treats as success). */
		return (r->buf_got == r->buf_cap && take < n - drop) ? 0 : n;
	}
	case SINK_FD: {
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(r->fd, data + off, n - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				r->write_errno = errno;
				return 0;
			}
			off += (size_t)w;
		}
		if (r->hasher)
			regfs_hasher_update(r->hasher, data, n);
		r->written += n;
		return n;
	}
	case SINK_CB:
		return on_body_cb(r, data, n);
	default:
		return n;
	}
}

static size_t on_read(char *dst, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nitems, left = x->q->body_len - x->up_off;
	if (n > left)
		n = left;
	memcpy(dst, (const char *)x->q->body + x->up_off, n);
	x->up_off += n;
	return n;
}

/* Timeouts, TLS and redirects: what every request of this client shares. */
static void set_transport(struct regfs_client *c, CURL *h, const struct rq *q, long timeout_ms)
{
	if (q->stream) {
		/* A multi-GB layer may take minutes: bound stalls, not the total. */
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_s * 1000);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->timeout_s);
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
	}
	curl_easy_setopt(h, CURLOPT_USERAGENT, "regfs/" REGFS_VERSION);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	tls_setopts(c, h);
	if (strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0) {
		/* Blob reads redirect to storage (S3 presigned URLs). curl drops our
		 * Authorization header when the redirect goes to another host/port
		 * (CURLOPT_UNRESTRICTED_AUTH stays off), which is what a presigned
		 * URL needs: it carries its own signature. */
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	}
}

/* The method, and for PUT/POST where the body comes from (a file or memory). */
static void set_method(CURL *h, struct xfer *x, const struct rq *q)
{
	bool put = strcmp(q->method, "PUT") == 0;
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		return;
	}
	if (!put && strcmp(q->method, "POST") != 0) {
		if (strcmp(q->method, "GET") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
		return;
	}
	curl_easy_setopt(h, put ? CURLOPT_UPLOAD : CURLOPT_POST, 1L);
	curl_off_t size;
	if (q->upload_fp) {
		curl_easy_setopt(h, CURLOPT_READDATA, q->upload_fp);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, NULL); /* fread */
		size = (curl_off_t)q->upload_size;
	} else {
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		size = (curl_off_t)q->body_len;
	}
	curl_easy_setopt(h, put ? CURLOPT_INFILESIZE_LARGE : CURLOPT_POSTFIELDSIZE_LARGE, size);
}

int xfer_setup(struct regfs_client *c, struct xfer *x, const struct rq *q, struct resp *r,
	       const char *auth_header, long timeout_ms, struct regfs_err *err)
{
	*x = (struct xfer){.q = q, .r = r, .http = &c->http};
	x->h = regfs_http_handle(&c->http);
	if (!x->h)
		return regfs_errf(err, -ENOMEM, "cannot create an HTTP handle for %s", q->url);
	CURL *h = x->h;
	curl_easy_setopt(h, CURLOPT_URL, q->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	set_transport(c, h, q, timeout_ms);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (r->sink == SINK_BUF || r->sink == SINK_FD || r->sink == SINK_CB)
		/* Blob bodies: fewer, larger reads from the socket than the
		 * default 16 KiB (measured: less CPU per byte on big ranges). */
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	set_method(h, x, q);
	/* No "Expect: 100-continue" round trip on uploads. */
	struct curl_slist *l = curl_slist_append(NULL, "Expect:");
	for (const char *const *hp = q->headers; l && hp && *hp; hp++)
		l = curl_slist_append(l, *hp);
	if (l && auth_header)
		l = curl_slist_append(l, auth_header);
	if (!l) {
		xfer_cleanup(x);
		return regfs_errf(err, -ENOMEM, "out of memory building request for %s", q->url);
	}
	x->hdrs = l;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	return 0;
}

void xfer_done(struct regfs_client *c, struct xfer *x, CURLcode cc)
{
	curl_off_t got = 0;
	if (curl_easy_getinfo(x->h, CURLINFO_SIZE_DOWNLOAD_T, &got) == CURLE_OK && got > 0)
		ST_ADD(c, st_bytes, (uint64_t)got);
	if (cc == CURLE_OK && x->r->status == 0) {
		long st = 0;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
		x->r->status = st;
	}
}

void xfer_cleanup(struct xfer *x)
{
	if (x->h)
		regfs_http_release(x->http, x->h);
	curl_slist_free_all(x->hdrs);
	x->h = NULL;
	x->hdrs = NULL;
}

/* The transport half of client.h's errno table. */
int curl_to_err(struct regfs_client *c, CURLcode cc, const char *errbuf, const char *method,
		const char *url, struct regfs_err *err)
{
	const char *detail = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);
	ST_INC(c, st_errors);
	char alert[CURL_ERROR_SIZE];
	if (tls_client_cert_refused(detail))
		return tls_err(c, cc, detail, method, url, err);
	if (tls_wants_client_cert(c, cc, url, alert, sizeof alert))
		return tls_err(c, cc, alert, method, url, err);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		return regfs_errf(err, -ECONNREFUSED,
				  "%s %s: cannot connect (%s): is the registry running at %s?",
				  method, url, detail, c->url);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return regfs_errf(err, -EHOSTUNREACH,
				  "%s %s: cannot resolve host (%s): check the registry URL %s",
				  method, url, detail, c->url);
	case CURLE_OPERATION_TIMEDOUT:
		return regfs_errf(err, -ETIMEDOUT,
				  "%s %s: no complete answer within %d s (%s): is the registry "
				  "overloaded or unreachable? raise --timeout if it is just slow",
				  method, url, c->timeout_s, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
		return tls_err(c, cc, detail, method, url, err);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return regfs_errf(err, -EINVAL, "%s %s: bad URL (%s): use http://HOST:PORT or https://HOST",
				  method, url, detail);
	default:
		return regfs_errf(err, -EIO, "%s %s: %s (registry %s)", method, url, detail, c->url);
	}
}

/* "UNSUPPORTED: message" from the spec's {"errors":[{code,message}]} body. */
static void registry_error(const struct resp *r, char *code, size_t codesz, char *out,
			   size_t outsz)
{
	code[0] = out[0] = '\0';
	size_t blen = dynbuf_len(&r->body);
	const char *body = dynbuf_ptr(&r->body);
	if (!blen)
		return;
	json_t *j = json_loadb(body, blen, 0, NULL);
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	const char *ec = json_string_value(json_object_get(e0, "code"));
	const char *em = json_string_value(json_object_get(e0, "message"));
	if (ec) {
		snprintf(code, codesz, "%s", ec);
		snprintf(out, outsz, "%s%s%s", ec, em ? ": " : "", em ? em : "");
	} else if (!j) {
		/* Not JSON: keep the start of the text, on one line. */
		size_t i = 0;
		for (; i + 1 < outsz && i < blen && i < 120; i++) {
			char ch = body[i];
			out[i] = (ch == '\n' || ch == '\r') ? ' ' : ch;
		}
		out[i] = '\0';
	}
	json_decref(j);
}

int access_denied(struct regfs_client *c, struct regfs_err *err, const char *fmt, ...)
{
	if (c)
		ST_INC(c, st_errors);
	char what[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return regfs_errf(err, -EACCES, "%s: " CREDS_HINT, what);
}

/* The HTTP-answer half of client.h's errno table. */
int status_err(struct regfs_client *c, const struct resp *r, const char *method,
	       const char *url, const char *what, struct regfs_err *err)
{
	char code[64], msg[256];
	registry_error(r, code, sizeof code, msg, sizeof msg);
	const char *sep = msg[0] ? ": " : "";
	ST_INC(c, st_errors);
	long s = r->status;
	if (s == 404)
		return regfs_errf(err, -ENOENT, "%s not found (%s %s answered 404%s%s)", what,
				  method, url, sep, msg);
	if (s == 401 || s == 403) {
		/* Who was refused, so a refused write says which account lacks
		 * the right (never the secret; an identity token has no name). */
		if (!c->user)
			return access_denied(NULL, err, "%s: access denied to anonymous access (no "
					     "credentials given): %s %s answered %ld%s%s",
					     what, method, url, s, sep, msg);
		return regfs_errf(err, -EACCES, "%s: access denied to user %s (credentials from "
				  "%s): %s %s answered %ld%s%s: the user lacks this right here, or "
				  "its credentials changed; other credentials: --user, "
				  "REGFS_USERNAME/REGFS_PASSWORD or docker login", what,
				  c->identity ? "(docker identity token)" : c->user,
				  c->cred_source, method, url, s, sep, msg);
	}
	if (s == 405 || strcmp(code, "UNSUPPORTED") == 0)
		return regfs_errf(err, -ENOTSUP,
				  "%s: the registry refuses this operation (%s %s answered %ld%s%s); "
				  "deletes may need REGISTRY_STORAGE_DELETE_ENABLED=true",
				  what, method, url, s, sep, msg);
	return regfs_errf(err, -EIO, "%s: %s %s answered HTTP %ld%s%s", what, method, url, s, sep,
			  msg);
}

/* The Authorization line for one attempt of q, or NULL. */
static char *attempt_auth(struct regfs_client *c, const struct rq *q, const char *scope)
{
	if (q->no_auth)
		return q->basic_user ? basic_header(q->basic_user, q->basic_pass) : NULL;
	auth_prefetch(c, scope);
	return auth_header_for(c, scope);
}

/* One attempt: 0 with *cc (and errbuf) the transfer's outcome, where the
 * outcomes that are answers, not failures, count as CURLE_OK; or a negative
 * errno when the request could not even be set up. */
static int attempt_once(struct regfs_client *c, const struct rq *q, struct resp *r,
			int64_t deadline, bool *sent_auth, CURLcode *cc, char *errbuf,
			struct regfs_err *err)
{
	char *auth = attempt_auth(c, q, q->scope ? q->scope : "");
	int64_t left = deadline - regfs_http_now_ms();
	struct xfer x;
	int rc = xfer_setup(c, &x, q, r, auth, (long)(left > 0 ? left : 1), err);
	*sent_auth = !q->no_auth && auth != NULL;
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (rc)
		return rc;
	ST_INC(c, st_requests);
	*cc = curl_easy_perform(x.h);
	xfer_done(c, &x, *cc);
	if (q->upload_fp && *cc != CURLE_OK)
		rewind(q->upload_fp);
	memcpy(errbuf, x.errbuf, CURL_ERROR_SIZE);
	xfer_cleanup(&x);
	log_debug("client: %s %s -> %ld (curl %d)", q->method, q->url, r->status, (int)*cc);

	/* registry:2 answers 416 with the blob's Content-Length and no body:
	 * the status is the answer, the "missing" bytes are not. */
	if (*cc == CURLE_PARTIAL_FILE && r->status == 416)
		*cc = CURLE_OK;
	/* A Range read that filled the caller's buffer aborts on purpose. */
	if (*cc == CURLE_WRITE_ERROR && r->sink == SINK_BUF && status_ok(r->status) &&
	    r->buf_got == r->buf_cap)
		*cc = CURLE_OK;
	return 0;
}

int status_errf(struct regfs_client *c, const struct resp *r, const char *method,
		const char *url, struct regfs_err *err, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return status_err(c, r, method, url, what, err);
}

int client_do(struct regfs_client *c, const struct rq *q, struct resp *r, struct regfs_err *err)
{
	int64_t deadline = regfs_http_now_ms() + (int64_t)c->timeout_s * 1000;
	struct regfs_http_backoff bo;
	regfs_http_backoff_init(&bo, BACKOFF_FIRST_MS, false);
	bool auth_tried = false;
	for (int attempt = 1;; attempt++) {
		bool sent_auth = false;
		CURLcode cc = CURLE_OK;
		char errbuf[CURL_ERROR_SIZE];
		int rc = attempt_once(c, q, r, deadline, &sent_auth, &cc, errbuf, err);
		if (rc)
			return rc;
		if (cc == CURLE_WRITE_ERROR && r->write_errno)
			return regfs_errf(err, -r->write_errno, "%s %s: writing the body failed: %s",
					  q->method, q->url, strerror(r->write_errno));
		bool can_retry = q->idempotent && attempt < MAX_ATTEMPTS &&
				 (q->stream || regfs_http_now_ms() + bo.next_ms < deadline) &&
				 r->written == 0;
		if (cc != CURLE_OK) {
			if (!can_retry || !regfs_http_transient(cc, CLIENT_TRANSIENT))
				return curl_to_err(c, cc, errbuf, q->method, q->url, err);
			log_debug("client: retrying %s %s after: %s", q->method, q->url,
				  errbuf[0] ? errbuf : curl_easy_strerror(cc));
		} else if (r->status == 401 && !q->no_auth && !auth_tried) {
			auth_tried = true;
			rc = auth_on_401(c, r, q->scope ? q->scope : "", sent_auth, err);
			if (rc == -EACCES)
				return 0; /* the caller maps the 401 with its own context */
			if (rc)
				return rc;
			resp_reset(r);
			if (q->upload_fp)
				rewind(q->upload_fp);
			attempt--; /* the auth round trip is not a retry */
			continue;
		} else if ((r->status >= 500 || r->status == 429) && can_retry) {
			log_debug("client: retrying %s %s after HTTP %ld", q->method, q->url,
				  r->status);
		} else {
			return 0;
		}
		ST_INC(c, st_retries);
		resp_reset(r);
		regfs_http_backoff_sleep(&bo);
	}
}
