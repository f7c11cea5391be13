/* request.h — the context of one HTTP request as every handler sees it:
 * connection, method, path, parsed route and its table row, start time,
 * the body chunk of the current callback and the state kept across
 * callbacks (an early failure to answer once the body is drained, the
 * manifest body, the upload in progress).
 *
 * Body-less requests live on the stack of the server's callback (no
 * allocation); requests with a body are allocated once by the server, which
 * calls request_free_body and frees them when libmicrohttpd reports them
 * complete. */
#ifndef REGFS_REQUEST_H
#define REGFS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

#include "jsonbuf.h"
#include "route.h"

struct upload_op;
struct proxy;

/* A failure decided while the body still arrives: answered at the end. */
struct request_failure {
	unsigned status;              /* 0: none */
	const char *code;
	char msg[600];
};

struct request {
	struct MHD_Connection *conn;
	const char *method;           /* as sent */
	enum http_method m;
	const char *url;              /* origin-form path */
	uint64_t t0_us;               /* now_us() when the request began */
	struct route rt;
	const struct route_entry *route;
	/* this callback's body chunk: *size bytes at data (a handler consumes
	 * them by setting *size to 0) */
	const char *data;
	size_t *size;
	bool started;                 /* false on the first (headers-only) callback */
	struct request_failure fail;  /* manifest PUT: over the size cap */
	struct jbuf body;             /* manifest PUT body (capped at REGFS_MANIFEST_MAX) */
	struct upload_op *up;         /* upload PATCH/PUT/POST */
	/* auth_request (auth.h), once per request */
	bool authed;                  /* the check ran */
	bool from_ok;                 /* a cross-repository mount may read its source */
	char user[128];               /* who (AUTH_USER_MAX); "" anonymous: access lines */
	/* proxy_route (proxy.h): the upstream owning rt.name, NULL for a local one */
	const struct proxy *proxy;
};

/* Starts `q` for (c, method, url): time, method, route and its row. Sets
 * only what a request needs (the hot path runs it per GET); the body state
 * is empty. */
void request_init(struct request *q, struct MHD_Connection *c, const char *method,
		  const char *url);

/* Releases the body state (manifest bytes, upload in progress). */
void request_free_body(struct request *q);

/* true for HEAD (the GET's headers, no body). */
static inline bool request_is_head(const struct request *q)
{
	return q->m == HTTP_HEAD;
}

/* A request header's value (NULL when absent). */
static inline const char *request_header(const struct request *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

/* A query parameter's value (NULL when absent). */
static inline const char *request_query(const struct request *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

#endif
