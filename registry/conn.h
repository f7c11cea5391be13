/* conn.h — what the server keeps per connection: libmicrohttpd's one
 * socket context, shared by the modules that follow a connection from its
 * start to its close. server.c's MHD_OPTION_NOTIFY_CONNECTION callback
 * allocates it when the connection starts, hands each module its own slot
 * (front_notify: `front`, tls_on_connection: `tls`), and frees it after
 * both have released their slot at the close. Each module finds its slot
 * again with conn_ctx_of(). */
#ifndef REGFS_CONN_H
#define REGFS_CONN_H

#include <microhttpd.h>

struct conn_ctx {
	void *front;   /* front.c's tracking record */
	void *tls;     /* tls.c's per-connection state; NULL on a plain listener */
	void *proxy;   /* proxy_blob.c: a blob GET suspended until its size is known;
	                * dropped at the request's end (proxy_blob_conn_done) */
};

/* The context of `c`, NULL when none was allocated (out of memory). */
static inline struct conn_ctx *conn_ctx_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

#endif
