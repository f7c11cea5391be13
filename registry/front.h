/* front.h — the connection front of the plain-HTTP listener: it accepts the
 * connections itself and hands each one to libmicrohttpd
 * (MHD_add_connection) only once its first request's line and headers have
 * arrived and look like HTTP. libmicrohttpd 0.9.75 cannot refuse these by
 * itself:
 *   - bytes that are not HTTP and hold no line feed (a TLS ClientHello, most
 *     binary garbage): it waits for a line until the client gives up;
 *   - a header line with an empty name (": value"): it drops the line
 *     without telling the server;
 *   - a client sending its headers a byte at a time: its inactivity timeout
 *     restarts on every byte.
 * Here they are answered 400 (408 for the slow client, 414/431 for a
 * request line / header block over the limits) and closed at once, with a log line naming the
 * client address and the limit. The check only peeks (MSG_PEEK): the bytes
 * stay in the socket for libmicrohttpd, and requests after the first on a
 * keep-alive connection cost nothing here.
 *
 * One thread, one epoll set; connections waiting for their headers are
 * bounded in number (4096, and regfs.limits.connsperclient per address). On
 * a TLS listener connections are handed over at once (libmicrohttpd runs the
 * handshake). */
#ifndef REGFS_FRONT_H
#define REGFS_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <regfs/err.h>

#include <microhttpd.h>

struct registry;
struct front;

/* A listening socket on `sa` (IPv6 wildcard with `dual_stack`: IPv4 too);
 * the fd or -errno with err naming the address. */
int front_listen(const struct sockaddr *sa, bool dual_stack, struct regfs_err *err);

/* Starts accepting on `lfd` (taken over: closed by front_stop) for `d`.
 * NULL on failure (out of memory, no thread); `lfd` is then closed. */
struct front *front_start(struct registry *r, struct MHD_Daemon *d, int lfd, bool tls);

/* Stops accepting: the listening socket is closed (new clients are refused,
 * not queued) and connections still waiting for their headers are closed.
 * Connections already handed over are left to the daemon. NULL: nothing. */
void front_stop(struct front *f);

/* Requests after the first on a keep-alive connection: libmicrohttpd's
 * inactivity timeout restarts on every byte, so a client could send the
 * next request a byte at a time for ever. Each connection is tracked from
 * the server's connection callback (front_notify, cls: the registry, with
 * its slot of the connection's context, conn.h); the access handler marks the start of each request's handling
 * (front_request_started: its headers are in) and the completion callback
 * its end (front_request_done). The front's thread shuts down (and the
 * daemon then closes) a connection that has waited for its next request's
 * headers longer than regfs.limits.requesttimeout, counted from the end of
 * the previous response (or from the hand-over): an idle keep-alive
 * connection is closed after that time too. */
void front_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		  enum MHD_ConnectionNotificationCode code);
void front_request_started(struct MHD_Connection *c);
void front_request_done(struct MHD_Connection *c);

/* The verdict on the first bytes of a connection (pure; unit-tested). */
enum front_verdict {
	FRONT_WAIT,        /* not enough bytes yet */
	FRONT_PASS,        /* the request line and headers are complete and sound */
	FRONT_TLS,         /* a TLS handshake record */
	FRONT_NOT_HTTP,    /* not an HTTP request line */
	FRONT_EMPTY_NAME,  /* a header line with an empty name */
	FRONT_BAD_HEADER,  /* a folded header line, or one holding a NUL or a bare CR */
	FRONT_NO_HOST,     /* an HTTP/1.1 request without Host */
	FRONT_LINE_TOO_LONG, /* no end of the request line within the buffer */
	FRONT_TOO_LARGE,   /* no end of headers within the buffer */
};
/* `full`: `n` is all the buffer can hold (no more bytes will be looked at). */
enum front_verdict front_judge(const unsigned char *buf, size_t n, bool full);

#endif
