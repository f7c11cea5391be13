/* respond.h — answering a request: the spec's JSON error bodies, the headers
 * every response carries (API version, configured http.headers), the access
 * log line, and the dates responses use.
 *
 * Every function answers `q` on its connection and returns libmicrohttpd's
 * result for the handler to return; MHD_NO (the connection is closed) when
 * the response could not be built for lack of memory. */
#ifndef REGFS_RESPOND_H
#define REGFS_RESPOND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <microhttpd.h>

#include <regfs/err.h>

#include "route.h"

struct registry;
struct request;

/* CLOCK_MONOTONIC in microseconds: request timing. */
uint64_t now_us(void);

/* Adds the common headers, ends the request (request_done), queues and releases
 * `resp` (NULL: out of memory, MHD_NO). */
enum MHD_Result respond(struct registry *r, struct request *q, unsigned status,
			struct MHD_Response *resp, uint64_t bytes);

/* The headers every response carries (API version, http.headers). */
void add_common_headers(struct registry *r, struct MHD_Response *resp);

/* Queues a response that already has its common headers and that the
 * caller keeps (shared, cached responses); ends the request (request_done:
 * access line, metrics). */
enum MHD_Result respond_shared(struct registry *r, struct request *q, unsigned status,
			       struct MHD_Response *resp, uint64_t bytes);

/* A JSON error body per the distribution spec:
 * {"errors":[{"code":code,"message":msg,"detail":…}]} (detail omitted if NULL).
 * HEAD gets the headers only. */
enum MHD_Result respond_error(struct registry *r, struct request *q, unsigned status,
			      const char *code, const char *msg, const char *detail_json);
/* Same without detail, with one more header `hname: hvalue` (hname or hvalue
 * NULL: none): WWW-Authenticate on a 401, Retry-After on a 429 or 503. */
enum MHD_Result respond_error_with(struct registry *r, struct request *q, unsigned status,
				   const char *code, const char *msg, const char *hname,
				   const char *hvalue);
/* Same with a printf-style message. */
enum MHD_Result respond_errorf(struct registry *r, struct request *q, unsigned status,
			       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* 404 NAME_UNKNOWN for the route's repository (registry:2's wording). */
enum MHD_Result respond_name_unknown(struct registry *r, struct request *q);
/* Maps a storage error to 503 (I/O, access) or 500 with a JSON error naming it. */
enum MHD_Result respond_storage_error(struct registry *r, struct request *q,
				      const struct regfs_err *err);
/* A copy of `body` with the given Content-Type (NULL: none); HEAD gets the
 * same headers and no body. */
enum MHD_Result respond_body(struct registry *r, struct request *q, unsigned status,
			     const char *content_type, const char *body, size_t len);
/* The answer to a storage operation that removed something: `status` with
 * an empty body when rc is 0, `unknown(r, q)` when it was not there
 * (-ENOENT), a storage error (e) otherwise. */
enum MHD_Result respond_removed(struct registry *r, struct request *q, int rc,
				const struct regfs_err *e, unsigned status,
				route_handler unknown);
/* An empty response; the caller adds its headers before respond(). */
struct MHD_Response *response_empty(void);
/* A response of `len` bytes whose body is never read: HEAD answers. */
struct MHD_Response *response_head(uint64_t len);

/* RFC 1123 date ("Sat, 28 Nov 2026 08:00:00 GMT") into out[40]. */
void http_date(int64_t t, char out[40]);
/* RFC 3339 UTC ("2026-11-28T08:00:00Z") into out[32]. */
void rfc3339(int64_t t, char out[32]);

#endif
