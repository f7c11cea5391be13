/* respond.c — building and queueing HTTP responses: the spec's JSON error
 * bodies, configured http.headers on every response, dates, the access log. */
#include "respond.h"

#include "jsonbuf.h"
#include "registry.h"
#include "request.h"
#include "server.h"

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

enum MHD_Result respond(struct registry *r, struct request *q, unsigned status,
			struct MHD_Response *resp, uint64_t bytes)
{
	if (!resp) {
		log_error("%s %s: out of memory building the response", q->method, q->url);
		return MHD_NO;
	}
	add_common_headers(r, resp);
	enum MHD_Result ret = respond_shared(r, q, status, resp, bytes);
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

enum MHD_Result respond_shared(struct registry *r, struct request *q, unsigned status,
			       struct MHD_Response *resp, uint64_t bytes)
{
	enum MHD_Result ret = MHD_queue_response(q->conn, status, resp);
	request_done(r, q, status, bytes);
	return ret;
}

static ssize_t no_body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls; (void)pos; (void)buf; (void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

struct MHD_Response *response_head(uint64_t len)
{
	/* the GET's headers (Content-Length included) and no body: a sized
	 * callback response that MHD never reads for HEAD */
	return MHD_create_response_from_callback(len, 4096, no_body_cb, NULL, NULL);
}

struct MHD_Response *response_empty(void)
{
	return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

enum MHD_Result respond_body(struct registry *r, struct request *q, unsigned status,
			     const char *content_type, const char *body, size_t len)
{
	bool head = request_is_head(q);
	struct MHD_Response *resp =
		head ? response_head(len)
		     : MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp && content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return respond(r, q, status, resp, head ? 0 : len);
}

/* The distribution error body, with one extra header (hname NULL: none). */
static enum MHD_Result error_answer(struct registry *r, struct request *q, unsigned status,
				    const char *code, const char *msg, const char *detail_json,
				    const char *hname, const char *hvalue)
{
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{\"errors\":[{\"code\":");
	jb_json_str(&b, code);
	jb_puts(&b, ",\"message\":");
	jb_json_str(&b, msg);
	if (detail_json) {
		jb_puts(&b, ",\"detail\":");
		jb_puts(&b, detail_json);
	}
	jb_puts(&b, "}]}\n");
	if (jb_error(&b)) {
		jb_free(&b);
		return MHD_NO;
	}
	if (status >= 500)
		log_warn("%s %s: %u %s: %s", q->method, q->url, status, code, msg);
	else
		log_debug("%s %s: %u %s: %s", q->method, q->url, status, code, msg);
	bool head = request_is_head(q);
	size_t len = jb_len(&b);
	struct MHD_Response *resp =
		head ? response_head(len)
		     : MHD_create_response_from_buffer(len, (void *)jb_ptr(&b), MHD_RESPMEM_MUST_COPY);
	jb_free(&b);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/json; charset=utf-8");
		if (hname && hvalue)
			MHD_add_response_header(resp, hname, hvalue);
	}
	return respond(r, q, status, resp, head ? 0 : len);
}

enum MHD_Result respond_error(struct registry *r, struct request *q, unsigned status,
			      const char *code, const char *msg, const char *detail_json)
{
	return error_answer(r, q, status, code, msg, detail_json, NULL, NULL);
}

enum MHD_Result respond_error_with(struct registry *r, struct request *q, unsigned status,
				   const char *code, const char *msg, const char *hname,
				   const char *hvalue)
{
	return error_answer(r, q, status, code, msg, NULL, hname, hvalue);
}

enum MHD_Result respond_errorf(struct registry *r, struct request *q, unsigned status,
			       const char *code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return respond_error(r, q, status, code, msg, NULL);
}

enum MHD_Result respond_storage_error(struct registry *r, struct request *q,
				      const struct regfs_err *err)
{
	int code = err ? err->code : -EIO;
	unsigned status = (code == -EIO || code == -EACCES) ? 503 : 500;
	return respond_errorf(r, q, status, "UNKNOWN", "storage failed: %s", regfs_err_str(err));
}

enum MHD_Result respond_removed(struct registry *r, struct request *q, int rc,
				const struct regfs_err *e, unsigned status,
				route_handler unknown)
{
	if (rc == -ENOENT)
		return unknown(r, q);
	if (rc)
		return respond_storage_error(r, q, e);
	return respond_body(r, q, status, NULL, "", 0);
}

enum MHD_Result respond_name_unknown(struct registry *r, struct request *q)
{
	return respond_errorf(r, q, 404, "NAME_UNKNOWN", "repository name not known to registry: %s",
			      q->rt.name);
}
