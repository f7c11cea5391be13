/* respond.c — building and queueing HTTP responses: the spec's JSON error
 * bodies, configured http.headers on every response, dates, the access log,
 * and a tiny string builder for hand-made JSON on hot paths. */
#include "registry.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void http_date(int64_t t, char out[40])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void rfc3339(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

enum MHD_Result respond(struct registry *r, struct MHD_Connection *c, const char *method,
			const char *url, uint64_t t0_us, unsigned status,
			struct MHD_Response *resp, uint64_t bytes)
{
	if (!resp) {
		log_error("%s %s: out of memory building the response", method, url);
		return MHD_NO;
	}
	add_common_headers(r, resp);
	enum MHD_Result ret = respond_shared(r, c, method, url, t0_us, status, resp, bytes);
	MHD_destroy_response(resp);
	return ret;
}

void add_common_headers(struct registry *r, struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
	for (int i = 0; i < r->cfg->n_headers; i++) {
		const struct regfs_header *h = &r->cfg->headers[i];
		for (int j = 0; j < h->n_values; j++)
			MHD_add_response_header(resp, h->name, h->values[j]);
	}
}

enum MHD_Result respond_shared(struct registry *r, struct MHD_Connection *c, const char *method,
			       const char *url, uint64_t t0_us, unsigned status,
			       struct MHD_Response *resp, uint64_t bytes)
{
	(void)r;
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	access_log(method, url, t0_us, status, bytes);
	return ret;
}

void access_log(const char *method, const char *url, uint64_t t0_us, unsigned status,
		uint64_t bytes)
{
	if (regfs_log_get_level() >= REGFS_LOG_INFO) {
		uint64_t us = now_us() - t0_us;
		log_info("%s %s %u %llu %llu.%03llums", method, url, status,
			 (unsigned long long)bytes, (unsigned long long)(us / 1000),
			 (unsigned long long)(us % 1000));
	}
}

ssize_t no_body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls; (void)pos; (void)buf; (void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

enum MHD_Result respond_body(struct registry *r, struct MHD_Connection *c, const char *method,
			     const char *url, uint64_t t0_us, unsigned status,
			     const char *content_type, const char *body, size_t len, bool head)
{
	struct MHD_Response *resp;
	if (head) {
		/* HEAD: the GET's headers (Content-Length included) and no body;
		 * a sized callback response that MHD never reads for HEAD. */
		resp = MHD_create_response_from_callback(len, 4096, no_body_cb, NULL, NULL);
	} else {
		resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	}
	if (resp && content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return respond(r, c, method, url, t0_us, status, resp, head ? 0 : len);
}

enum MHD_Result respond_error(struct registry *r, struct MHD_Connection *c, const char *method,
			      const char *url, uint64_t t0_us, unsigned status,
			      const char *code, const char *msg, const char *detail_json)
{
	struct sbuf b = {0};
	sb_puts(&b, "{\"errors\":[{\"code\":");
	sb_json_str(&b, code);
	sb_puts(&b, ",\"message\":");
	sb_json_str(&b, msg);
	if (detail_json) {
		sb_puts(&b, ",\"detail\":");
		sb_puts(&b, detail_json);
	}
	sb_puts(&b, "}]}\n");
	if (b.oom) {
		sb_free(&b);
		return MHD_NO;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (status >= 500)
		log_warn("%s %s: %u %s: %s", method, url, status, code, msg);
	else
		log_debug("%s %s: %u %s: %s", method, url, status, code, msg);
	enum MHD_Result ret = respond_body(r, c, method, url, t0_us, status,
					   "application/json; charset=utf-8", b.s, b.len, head);
	sb_free(&b);
	return ret;
}

enum MHD_Result respond_errorf(struct registry *r, struct MHD_Connection *c, const char *method,
			       const char *url, uint64_t t0_us, unsigned status,
			       const char *code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return respond_error(r, c, method, url, t0_us, status, code, msg, NULL);
}

enum MHD_Result respond_storage_error(struct registry *r, struct MHD_Connection *c,
				      const char *method, const char *url, uint64_t t0_us,
				      const struct regfs_err *err)
{
	int code = err ? err->code : -EIO;
	unsigned status = (code == -EIO || code == -EACCES) ? 503 : 500;
	return respond_errorf(r, c, method, url, t0_us, status, "UNKNOWN",
			      "storage failed: %s", regfs_err_str(err));
}

/* ---- string builder ---- */

static bool sb_grow(struct sbuf *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_grow(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sb_puts(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_json_str(struct sbuf *b, const char *s)
{
	sb_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"': sb_add(b, "\\\"", 2); break;
		case '\\': sb_add(b, "\\\\", 2); break;
		case '\n': sb_add(b, "\\n", 2); break;
		case '\r': sb_add(b, "\\r", 2); break;
		case '\t': sb_add(b, "\\t", 2); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof esc, "\\u%04x", *p);
				sb_add(b, esc, 6);
			} else {
				sb_add(b, (const char *)p, 1);
			}
		}
	}
	sb_add(b, "\"", 1);
}

void sb_free(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}
