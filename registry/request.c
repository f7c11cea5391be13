/* request.c — starting and ending the per-request context (request.h). */
#include "request.h"

#include "respond.h"
#include "uploads.h"

void request_init(struct request *q, struct MHD_Connection *c, const char *method,
		  const char *url)
{
	/* field by field, not a memset: the route's name and reference
	 * buffers and the failure message are written only when used */
	q->conn = c;
	q->method = method;
	q->m = http_method_parse(method);
	q->url = url;
	q->t0_us = now_us();
	route_parse(url, &q->rt);
	q->route = route_entry_of(q->rt.kind);
	q->data = NULL;
	q->size = NULL;
	q->started = false;
	q->fail.status = 0;
	q->fail.code = NULL;
	jb_init(&q->body, JB_NO_CAP);
	q->up = NULL;
	q->authed = false;
	q->proxy = NULL;
	q->from_ok = true;
	q->user[0] = '\0';
}

void request_free_body(struct request *q)
{
	upload_op_free(q->up);
	q->up = NULL;
	jb_free(&q->body);
}
