/* front.c — see front.h. */
#include "front.h"

#include "conn.h"
#include "framing.h"
#include "registry.h"

#include <regfs/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>

#define PENDING_MAX 4096      /* connections waiting for their headers */
#define PEEK_MIN (4 * 1024)
#define PEEK_MAX (64 * 1024)  /* libmicrohttpd's per-connection buffer */
#define METHOD_MAX 16         /* longer than any HTTP method in use */
#define TICK_MS 250

struct pending {
	int fd;
	struct sockaddr_storage sa;
	socklen_t sl;
	uint64_t t0_ms;
};

struct front {
	struct registry *r;
	struct MHD_Daemon *d;
	int lfd, ep, stop_fd;
	bool tls;
	pthread_t th;
	struct pending *p;
	size_t n;
	size_t peek_cap;
	unsigned char *buf;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the verdict ---- */

static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A header line's bytes (without its CRLF) a field may not hold: NUL, and a
 * CR that does not end the line (RFC 9112 section 2.2: a bare CR is
 * refused, not guessed at). */
static bool bad_field_bytes(const unsigned char *p, size_t len)
{
	return memchr(p, '\0', len) || memchr(p, '\r', len);
}

/* "Host:" at the start of a header line, in any case. */
static bool is_host(const unsigned char *p, size_t len)
{
	return len >= 5 && strncasecmp((const char *)p, "host:", 5) == 0;
}

/* The header lines from `p` on: PASS at the empty line, EMPTY_NAME at a line
 * starting with ':', BAD_HEADER at a line folded onto the previous one
 * (obs-fold, which RFC 9112 section 5.2 lets a server refuse) or holding a
 * NUL or a bare CR, NO_HOST at the end of an HTTP/1.1 request without a
 * Host (RFC 9112 section 3.2), else WAIT / TOO_LARGE. */
static enum front_verdict judge_headers(const unsigned char *p, const unsigned char *end,
					bool full, bool http11)
{
	bool host = false;
	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		size_t len = (size_t)(nl - p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len == 0)
			return http11 && !host ? FRONT_NO_HOST : FRONT_PASS;
		if (p[0] == ':')
			return FRONT_EMPTY_NAME;
		if (p[0] == ' ' || p[0] == '\t' || bad_field_bytes(p, len))
			return FRONT_BAD_HEADER;
		host = host || is_host(p, len);
		p = nl + 1;
	}
	return full ? FRONT_TOO_LARGE : FRONT_WAIT;
}

enum front_verdict front_judge(const unsigned char *buf, size_t n, bool full)
{
	if (n == 0)
		return FRONT_WAIT;
	if (buf[0] == 0x16) /* TLS record type "handshake": a ClientHello */
		return FRONT_TLS;
	size_t i = 0;
	while (i < n && i <= METHOD_MAX && is_tchar(buf[i]))
		i++;
	if (i > METHOD_MAX)
		return FRONT_NOT_HTTP;
	if (i == n)
		return full ? FRONT_NOT_HTTP : FRONT_WAIT;
	if (i == 0 || buf[i] != ' ')
		return FRONT_NOT_HTTP;
	const unsigned char *nl = memchr(buf + i, '\n', n - i);
	if (!nl)
		return full ? FRONT_LINE_TOO_LONG : FRONT_WAIT;
	size_t ll = (size_t)(nl - buf);
	if (ll && buf[ll - 1] == '\r')
		ll--;
	static const char v11[] = " HTTP/1.1";
	bool http11 = ll >= sizeof v11 - 1 && !memcmp(buf + ll - (sizeof v11 - 1), v11, sizeof v11 - 1);
	return judge_headers(nl + 1, buf + n, full, http11);
}

/* ---- answering ---- */

static void peer_str(const struct pending *pc, char *out, size_t size)
{
	const struct sockaddr *sa = (const struct sockaddr *)&pc->sa;
	snprintf(out, size, "?");
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  (socklen_t)size);
}

/* At most one refusal line a second per kind (a verdict, or LOG_CONN for
 * connection limits), plus a count of those left out: a flood of bad
 * connections must not become a flood of log lines. Called by the front's
 * thread only. */
#define LOG_CONN (FRONT_TOO_LARGE + 1)

static bool log_allowed(int kind)
{
	static uint64_t last_ms[LOG_CONN + 1];
	static unsigned long dropped[LOG_CONN + 1];
	uint64_t now = mono_ms();
	if (last_ms[kind] && now - last_ms[kind] < 1000) {
		dropped[kind]++;
		return false;
	}
	if (dropped[kind])
		log_warn("http: %lu more refusal(s) like the next line in the last %llu ms (not "
			 "logged one by one)", dropped[kind],
			 (unsigned long long)(now - last_ms[kind]));
	last_ms[kind] = now;
	dropped[kind] = 0;
	return true;
}

/* Writes a short error response and closes: the unread request bytes are
 * drained first, so that the close does not reset the connection before
 * the client has read the answer. Best effort: the socket is non-blocking. */
static void answer_close(int fd, unsigned status, const char *reason, const char *msg)
{
	char body[400], head[300];
	unsigned char junk[4096];
	for (int i = 0; i < 16 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++)
		;
	int bl = snprintf(body, sizeof body, "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]}\n",
			  status == 400 ? "UNSUPPORTED" : "UNKNOWN", msg);
	int hl = snprintf(head, sizeof head, "HTTP/1.1 %u %s\r\nContent-Type: application/json; "
			  "charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
			  status, reason, bl);
	if (send(fd, head, (size_t)hl, MSG_NOSIGNAL | MSG_DONTWAIT) == hl)
		send(fd, body, (size_t)bl, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* Removes pending[i] (its fd is closed by the caller or handed over). */
static void drop(struct front *f, size_t i)
{
	epoll_ctl(f->ep, EPOLL_CTL_DEL, f->p[i].fd, NULL);
	f->p[i] = f->p[--f->n];
}

/* What each refusal answers, and why (the log line's tail). */
struct refusal {
	unsigned status;
	const char *reason, *msg, *why;
};

static struct refusal refusal_of(enum front_verdict v)
{
	switch (v) {
	case FRONT_TLS:
		return (struct refusal){400, "Bad Request", "this port speaks plain HTTP, not TLS",
			"a client speaks TLS to the plain-HTTP port (use http://, or configure "
			"http.tls)"};
	case FRONT_EMPTY_NAME:
		return (struct refusal){400, "Bad Request", "a header line has an empty name",
			"a header line with an empty name"};
	case FRONT_BAD_HEADER:
		return (struct refusal){400, "Bad Request", "a header line is folded or holds a "
			"NUL or a bare CR", "a header line folded (obs-fold) or holding a NUL or a "
			"bare CR"};
	case FRONT_NO_HOST:
		return (struct refusal){400, "Bad Request", "an HTTP/1.1 request needs a Host header",
			"an HTTP/1.1 request without Host"};
	case FRONT_LINE_TOO_LONG:
		return (struct refusal){414, "URI Too Long", "request line too long",
			"request line longer than regfs.limits.requestline + "
			"regfs.limits.headersize"};
	case FRONT_TOO_LARGE:
		return (struct refusal){431, "Request Header Fields Too Large",
			"request line and headers too large", "request line and headers larger "
			"than regfs.limits.requestline + regfs.limits.headersize"};
	default:
		return (struct refusal){400, "Bad Request", "not an HTTP request",
			"bytes that are not an HTTP request"};
	}
}

static void refuse(struct front *f, size_t i, enum front_verdict v)
{
	struct pending pc = f->p[i];
	drop(f, i);
	struct refusal rf = refusal_of(v);
	if (log_allowed((int)v)) {
		char peer[64];
		peer_str(&pc, peer, sizeof peer);
		log_warn("http: connection from %s answered %u and closed: %s", peer, rf.status,
			 rf.why);
	}
	answer_close(pc.fd, rf.status, rf.reason, rf.msg);
}

/* Hands pending[i] to libmicrohttpd (which closes it if it cannot take it:
 * the per-address or total connection limit). */
static void pass(struct front *f, size_t i)
{
	struct pending pc = f->p[i];
	drop(f, i);
	if (MHD_add_connection(f->d, pc.fd, (const struct sockaddr *)&pc.sa, pc.sl) != MHD_YES &&
	    log_allowed(LOG_CONN)) {
		char peer[64];
		peer_str(&pc, peer, sizeof peer);
		log_warn("http: connection from %s refused: %s (regfs.limits.connsperclient %d, "
			 "or the server's 4096 connections)", peer, strerror(errno),
			 f->r->cfg->limits.connsperclient);
	}
}

/* `hup`: the client will send nothing more (EPOLLRDHUP). */
static void on_ready(struct front *f, size_t i, bool hup)
{
	int fd = f->p[i].fd;
	ssize_t n = recv(fd, f->buf, f->peek_cap, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) { /* closed before a request: nothing to answer */
		drop(f, i);
		close(fd);
		return;
	}
	enum front_verdict v = front_judge(f->buf, (size_t)n, (size_t)n == f->peek_cap);
	if (v == FRONT_PASS)
		pass(f, i);
	else if (v != FRONT_WAIT)
		refuse(f, i, v);
	else if (hup) /* half a request, and the client has stopped sending */
		refuse(f, i, FRONT_NOT_HTTP);
}

/* Connections from the address of `ss` waiting here. */
static int pending_from(const struct front *f, const struct sockaddr_storage *ss)
{
	int k = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct sockaddr_storage *o = &f->p[i].sa;
		if (o->ss_family != ss->ss_family)
			continue;
		if (ss->ss_family == AF_INET)
			k += !memcmp(&((const struct sockaddr_in *)o)->sin_addr,
				     &((const struct sockaddr_in *)ss)->sin_addr, sizeof(struct in_addr));
		else if (ss->ss_family == AF_INET6)
			k += !memcmp(&((const struct sockaddr_in6 *)o)->sin6_addr,
				     &((const struct sockaddr_in6 *)ss)->sin6_addr,
				     sizeof(struct in6_addr));
	}
	return k;
}

/* Takes one accepted connection: straight to the daemon on TLS, else into
 * the pending set (refused when it is full, or full for this address). */
static void take(struct front *f, int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
	if (f->tls) {
		MHD_add_connection(f->d, fd, (const struct sockaddr *)ss, sl);
		return;
	}
	int per = f->r->cfg->limits.connsperclient;
	struct pending pc = {.fd = fd, .sa = *ss, .sl = sl, .t0_ms = mono_ms()};
	if (f->n >= PENDING_MAX || (per > 0 && pending_from(f, ss) >= per)) {
		if (!log_allowed(LOG_CONN)) {
			close(fd);
			return;
		}
		char peer[64];
		peer_str(&pc, peer, sizeof peer);
		log_warn("http: connection from %s refused: %s connections are waiting for their "
			 "request headers (regfs.limits.connsperclient %d)", peer,
			 f->n >= PENDING_MAX ? "4096" : "that many", per);
		close(fd);
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd};
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return;
	}
	f->p[f->n++] = pc;
}

static void accept_all(struct front *f)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(f->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EMFILE && errno != ENFILE)
				return;
			/* out of descriptors: the listening socket stays readable,
			 * so pause instead of spinning on it */
			if (log_allowed(LOG_CONN))
				log_warn("http: cannot accept a connection: %s", strerror(errno));
			nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
			return;
		}
		take(f, fd, &ss, sl);
	}
}

/* Closes the connections whose headers did not arrive within
 * regfs.limits.requesttimeout (408); one log line per sweep. */
static void sweep(struct front *f)
{
	uint64_t now = mono_ms(), lim = (uint64_t)f->r->cfg->limits.requesttimeout_s * 1000;
	unsigned cut = 0;
	char first[64] = "";
	for (size_t i = 0; i < f->n;) {
		if (now - f->p[i].t0_ms < lim) {
			i++;
			continue;
		}
		struct pending pc = f->p[i];
		if (!cut++)
			peer_str(&pc, first, sizeof first);
		drop(f, i);
		answer_close(pc.fd, 408, "Request Timeout",
			     "the request line and headers did not arrive in time");
	}
	if (cut)
		log_warn("http: closed %u connection(s) (first from %s) whose request line and "
			 "headers did not arrive within regfs.limits.requesttimeout (%llds): 408",
			 cut, first, (long long)f->r->cfg->limits.requesttimeout_s);
}

/* ---- keep-alive connections waiting for their next request ---- */

struct tracked {
	struct tracked *prev, *next;
	int fd;
	atomic_bool active;          /* a request is being handled */
	_Atomic uint64_t since_ms;   /* when it began to wait for a request */
};

/* Every connection the daemon holds; one server per process. The lock is
 * taken at a connection's start and close and by the sweep, never per
 * request. */
static pthread_mutex_t tr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tracked tr_head = {&tr_head, &tr_head, -1, false, 0};

void front_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	struct tracked *t = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		t = ci ? calloc(1, sizeof *t) : NULL;
		if (!t)
			return; /* not tracked: only the inactivity timeout applies */
		t->fd = ci->connect_fd;
		atomic_store(&t->since_ms, mono_ms());
		pthread_mutex_lock(&tr_lock);
		t->next = tr_head.next;
		t->prev = &tr_head;
		tr_head.next->prev = t;
		tr_head.next = t;
		pthread_mutex_unlock(&tr_lock);
		*socket_context = t;
	} else if (t) {
		/* before libmicrohttpd closes the fd: the sweep, which shuts
		 * fds down under the same lock, can never touch a reused one */
		pthread_mutex_lock(&tr_lock);
		t->prev->next = t->next;
		t->next->prev = t->prev;
		pthread_mutex_unlock(&tr_lock);
		free(t);
		*socket_context = NULL;
	}
}

static struct tracked *tracked_of(struct MHD_Connection *c)
{
	struct conn_ctx *cx = conn_ctx_of(c);
	return cx ? cx->front : NULL;
}

void front_request_started(struct MHD_Connection *c)
{
	struct tracked *t = tracked_of(c);
	if (t)
		atomic_store(&t->active, true);
}

void front_request_done(struct MHD_Connection *c)
{
	struct tracked *t = tracked_of(c);
	if (t) {
		atomic_store(&t->since_ms, mono_ms());
		atomic_store(&t->active, false);
	}
}

/* Shuts down the daemon's connections that waited longer than
 * regfs.limits.requesttimeout for a request; one log line per sweep. */
static void sweep_kept(struct front *f)
{
	uint64_t now = mono_ms(), lim = (uint64_t)f->r->cfg->limits.requesttimeout_s * 1000;
	unsigned cut = 0;
	pthread_mutex_lock(&tr_lock);
	for (struct tracked *t = tr_head.next; t != &tr_head; t = t->next) {
		if (atomic_load(&t->active) || now - atomic_load(&t->since_ms) < lim)
			continue;
		shutdown(t->fd, SHUT_RDWR);
		atomic_store(&t->since_ms, now); /* once per period, until it closes */
		cut++;
	}
	pthread_mutex_unlock(&tr_lock);
	if (cut)
		log_info("http: closed %u keep-alive connection(s) that sent no complete request "
			 "within regfs.limits.requesttimeout (%llds)", cut,
			 (long long)f->r->cfg->limits.requesttimeout_s);
}

static size_t find(const struct front *f, int fd)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->p[i].fd == fd)
			return i;
	return SIZE_MAX;
}

static void *front_main(void *arg)
{
	struct front *f = arg;
	struct epoll_event ev[64];
	uint64_t last_sweep = mono_ms();
	for (;;) {
		int k = epoll_wait(f->ep, ev, 64, TICK_MS);
		for (int j = 0; j < k; j++) {
			int fd = ev[j].data.fd;
			if (fd == f->stop_fd)
				return NULL;
			if (fd == f->lfd) {
				accept_all(f);
				continue;
			}
			size_t i = find(f, fd);
			if (i != SIZE_MAX)
				on_ready(f, i, ev[j].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
		}
		if (mono_ms() - last_sweep >= TICK_MS) {
			sweep(f);
			sweep_kept(f);
			last_sweep = mono_ms();
		}
	}
}

int front_listen(const struct sockaddr *sa, bool dual_stack, struct regfs_err *err)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return regfs_errf(err, -errno, "socket: %s", strerror(errno));
	int one = 1, v6only = !dual_stack;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	if (bind(fd, sa, sl) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		return regfs_errf(err, -e, "cannot listen: %s", strerror(e));
	}
	return fd;
}

/* The peek buffer: the request line and header limits, within libmicrohttpd's
 * own buffer. */
static size_t peek_cap(const struct regfs_config *cfg)
{
	uint64_t c = cfg->limits.requestline + cfg->limits.headersize + 1024;
	if (!cfg->limits.requestline || !cfg->limits.headersize || c > PEEK_MAX)
		c = PEEK_MAX;
	return c < PEEK_MIN ? PEEK_MIN : (size_t)c;
}

struct front *front_start(struct registry *r, struct MHD_Daemon *d, int lfd, bool tls)
{
	struct front *f = calloc(1, sizeof *f);
	if (f) {
		f->peek_cap = peek_cap(r->cfg);
		f->p = calloc(PENDING_MAX, sizeof *f->p);
		f->buf = malloc(f->peek_cap);
	}
	if (!f || !f->p || !f->buf)
		goto fail;
	f->r = r;
	f->d = d;
	f->lfd = lfd;
	f->tls = tls;
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event el = {.events = EPOLLIN, .data.fd = lfd};
	struct epoll_event es = {.events = EPOLLIN, .data.fd = f->stop_fd};
	if (f->ep < 0 || f->stop_fd < 0 || epoll_ctl(f->ep, EPOLL_CTL_ADD, lfd, &el) ||
	    epoll_ctl(f->ep, EPOLL_CTL_ADD, f->stop_fd, &es) ||
	    pthread_create(&f->th, NULL, front_main, f) != 0)
		goto fail;
	return f;
fail:
	if (f) {
		if (f->ep > 0)
			close(f->ep);
		if (f->stop_fd > 0)
			close(f->stop_fd);
		free(f->p);
		free(f->buf);
		free(f);
	}
	close(lfd);
	return NULL;
}

void front_stop(struct front *f)
{
	if (!f)
		return;
	uint64_t one = 1;
	if (write(f->stop_fd, &one, sizeof one) != sizeof one)
		log_warn("http: cannot stop the connection front: %s", strerror(errno));
	pthread_join(f->th, NULL);
	close(f->lfd);
	for (size_t i = 0; i < f->n; i++)
		close(f->p[i].fd);
	close(f->ep);
	close(f->stop_fd);
	free(f->p);
	free(f->buf);
	free(f);
}
