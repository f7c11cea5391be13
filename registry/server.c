/* server.c — the HTTP server of `regfs-registry serve`: libmicrohttpd with a
 * thread pool (each thread its own epoll loop; storage calls may block, so
 * several threads keep other connections moving), keep-alive, optional TLS,
 * request routing, per-request state, signals: SIGHUP reloads (lifecycle.c),
 * SIGTERM/SIGINT drain within http.draintimeout, systemd is told (sdnotify.c). */
#include "server.h"

#include "auth.h"
#include "blobdesc.h"
#include "blobs.h"
#include "digestset.h"
#include "handlers.h"
#include "debug.h"
#include "conn.h"
#include "framing.h"
#include "front.h"
#include "lifecycle.h"
#include "layerindex.h"
#include "input_limits.h"
#include "maint.h"
#include "metrics.h"
#include "manifest_bytes.h"
#include "notify.h"
#include "proxy.h"
#include "registry.h"
#include "request.h"
#include "respond.h"
#include "sdnotify.h"
#include "tls.h"
#include "uploads.h"
#include "proxy.h"
#include "usage.h"

#include <regfs/dynbuf.h>
#include <regfs/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16
/* Per-connection memory pool; the read buffer (and so the upload chunk size)
 * is carved from it. libmicrohttpd zeroes the used part of the pool between
 * keep-alive requests, so a big pool costs every small request a big memset:
 * REGFS_REGISTRY_CONN_MEMORY overrides for tuning. */
#define CONN_MEMORY (64 * 1024)
#define MANIFEST_CACHE_BYTES (6u * 1024 * 1024)

/* ---- GET /v2/ and unknown paths ---- */

enum MHD_Result h_base(struct registry *r, struct request *q)
{
	char msg[600];
	if (maint_unhealthy(r, msg, sizeof msg))
		return respond_error(r, q, 503, "UNAVAILABLE", msg, NULL);
	bool head = request_is_head(q);
	struct MHD_Response *resp =
		head ? response_head(2)
		     : MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
		MHD_add_response_header(resp, "X-Regfs-Extensions",
					layerindex_enabled(r)
						? "bulk-tags,repo-manifests,bulk-manifests,usage,layer-index"
						: "bulk-tags,repo-manifests,bulk-manifests,usage");
	}
	return respond(r, q, 200, resp, head ? 0 : 2);
}

enum MHD_Result h_not_found(struct registry *r, struct request *q)
{
	return respond_errorf(r, q, 404, "NOT_FOUND", "no such endpoint: %s %s (the API lives "
			      "under /v2/)", q->method, q->url);
}

/* The checks every route shares, on the first callback of a request: the
 * method (405), then the repository name (400); then the route's handler. */
static enum MHD_Result dispatch(struct registry *r, struct request *q)
{
	const struct route_entry *e = q->route;
	if (!q->started) {
		/* The path first: a name outside the grammar names nothing, whatever
		 * the method (400 before 405, on every route). */
		if (e->named && !q->rt.name_ok)
			return respond_errorf(r, q, 400, "NAME_INVALID",
					      "invalid repository name: %s", q->rt.name);
		if (!route_allows(e, q->m))
			return respond_errorf(r, q, 405, "UNSUPPORTED", "method %s not allowed on %s",
					      q->method, e->noun ? e->noun : q->url);
		enum MHD_Result res;
		/* before auth: ?ns= may make the name ours (proxy.h) */
		if (e->named && r->proxies && !proxy_route(r, q, &res))
			return res;
	}
	if (!q->authed) {
		enum MHD_Result res;
		q->authed = true;
		if (!auth_request(r, q, &res))
			return res;
	}
	return e->handler(r, q);
}

static struct request no_state;
/* con_cls set by on_uri for a sound request line: the access handler has not
 * run yet */
static struct request fresh;
/* Requests between the first access-handler call (all headers received) and
 * their completion: what a drain waits for. Idle keep-alive connections and
 * requests still sending their headers are not counted: they do not hold a
 * stop back. A counted request's con_cls is no_state or its own state, and
 * libmicrohttpd reports the completion of every request it handed to the
 * access handler, however it ends. One server per process. */
static atomic_uint in_flight;
/* The listener's front (front.h); one server per process. */
static struct front *the_front;
/* con_cls set by on_uri: the raw request target carries a control character */
static struct request bad_target;

/* con_cls set by on_uri: the raw request target is longer than
 * regfs.limits.requestline */
static struct request long_target;

/* Called by libmicrohttpd with the raw request target, before it decodes
 * %XX: a target framing.h refuses is marked here and answered on the first
 * access-handler call. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)c;
	struct registry *r = cls;
	switch (framing_target_check(uri, r->cfg->limits.requestline)) {
	case TARGET_CTL:
		return &bad_target;
	case TARGET_LONG:
		return &long_target;
	default:
		return &fresh;
	}
}

/* A sentinel that on_uri set: the request has no state of its own yet. */
static bool is_sentinel(const struct request *q)
{
	return q == &fresh || q == &bad_target || q == &long_target;
}

static bool has_body(const char *m)
{
	return !strcmp(m, "PUT") || !strcmp(m, "POST") || !strcmp(m, "PATCH");
}

void request_done(struct registry *r, const struct request *q, unsigned status,
		  uint64_t bytes)
{
	uint64_t us = now_us() - q->t0_us;
	metrics_request(q->rt.kind, q->m, status, bytes, us);
	if (r->cfg->accesslog_disabled || regfs_log_get_level() < REGFS_LOG_INFO)
		return;
	/* q->url is the path alone (libmicrohttpd keeps the query apart), and
	 * no header is logged: no credential can reach the line */
	struct regfs_log_field f[] = {
		{"method", q->method, 0}, {"path", q->url, 0}, {"status", NULL, status},
		{"bytes", NULL, (long long)bytes}, {"duration_us", NULL, (long long)us},
		{"user", q->user, 0},
	};
	/* the user only once authenticated ("" is anonymous: no field) */
	int nf = (int)(sizeof f / sizeof f[0]) - (q->user[0] ? 0 : 1);
	regfs_log_fields(REGFS_LOG_INFO, f, nf, "%s %s %u %llu %llu.%03llums%s%s",
			 q->method, q->url, status, (unsigned long long)bytes,
			 (unsigned long long)(us / 1000), (unsigned long long)(us % 1000),
			 q->user[0] ? " user=" : "", q->user);
}

/* An upload request with a body: counted in flight while it lasts. */
static bool is_upload(const struct request *q)
{
	return q->route && (q->route->kind == R_UPLOAD || q->route->kind == R_UPLOAD_START);
}

/* Runs the handler on a request with a body and counts the bytes it took. */
static enum MHD_Result dispatch_body(struct registry *r, struct request *q)
{
	size_t before = *q->size;
	enum MHD_Result res = dispatch(r, q);
	if (before > *q->size)
		metrics_received(before - *q->size);
	return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	(void)version;
	struct registry *r = cls;
	struct request *q = *con_cls;
	url = framing_origin_path(url);
	if (!q || is_sentinel(q)) {
		if (r->tls && !tls_conn_allowed(c))
			return MHD_NO; /* not counted in flight yet */
		enum MHD_Result res;
		atomic_fetch_add(&in_flight, 1);
		front_request_started(c);
		if (q == &bad_target || q == &long_target) {
			*con_cls = &no_state;
			return framing_refuse_target(r, c, method, url,
						     q == &bad_target ? TARGET_CTL : TARGET_LONG);
		}
		if (framing_refuse_headers(r, c, method, url, &res)) {
			*con_cls = &no_state;
			return res;
		}
		/* libmicrohttpd 0.9.75 closes the connection after a response
		 * queued on the first (headers-only) callback; answering on the
		 * second keeps it alive. Body-less requests need no state: a
		 * sentinel marks that the first callback happened. */
		if (!has_body(method)) {
			*con_cls = &no_state;
			return MHD_YES;
		}
		q = malloc(sizeof *q);
		if (!q) {
			/* con_cls stays `fresh`: completed, and so not counted */
			atomic_fetch_sub(&in_flight, 1);
			return MHD_NO;
		}
		request_init(q, c, method, url);
		if (is_upload(q) && limits_upload_refused(r, q, &res)) {
			free(q);
			*con_cls = &no_state;
			return res;
		}
		*con_cls = q;
		if (is_upload(q))
			metrics_uploads_in_flight(1);
	} else if (q == &no_state) {
		if (*size) {
			*size = 0; /* a body on GET/DELETE: ignored */
			return MHD_YES;
		}
		/* the hot path: one stack request, no allocation */
		struct request sq;
		request_init(&sq, c, method, url);
		sq.data = data;
		sq.size = size;
		return dispatch(r, &sq);
	}
	q->data = data;
	q->size = size;
	return dispatch_body(r, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	struct request *q = *con_cls;
	front_request_done(c);
	proxy_blob_conn_done(conn_ctx_of(c));
	if (q && !is_sentinel(q))
		atomic_fetch_sub(&in_flight, 1); /* reached the access handler */
	if (!q || q == &no_state || is_sentinel(q)) {
		*con_cls = NULL;
		return;
	}
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("request ended early (code %d)", (int)toe);
	if (is_upload(q)) {
		if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && q->up) {
			char peer[64];
			framing_peer(c, peer, sizeof peer);
			upload_op_cut(q->up, q->rt.name, peer);
		}
		metrics_uploads_in_flight(-1);
		limits_upload_done(c);
	}
	request_free_body(q);
	free(q);
	*con_cls = NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION: the connection's context (conn.h), with a
 * slot for the front's tracking and one for TLS. Without a context (out of
 * memory) the connection is shut down: a TLS connection must never
 * handshake without its credentials and client-certificate check. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct registry *r = cls;
	struct conn_ctx *cx = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		cx = calloc(1, sizeof *cx);
		*socket_context = cx;
		if (!cx) {
			const union MHD_ConnectionInfo *fi =
				MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
			log_error("http: out of memory for a new connection; closing it");
			if (fi)
				shutdown(fi->connect_fd, SHUT_RDWR);
			return;
		}
	}
	if (!cx)
		return;
	front_notify(r, c, &cx->front, code);
	if (r->tls)
		tls_on_connection(r->tls, c, &cx->tls, code);
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		proxy_blob_conn_done(cx);
		free(cx);
		*socket_context = NULL;
	}
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* a TLS hello on the plain port (clients probing https first, as skopeo
	 * does) is routine: keep it out of warnings */
	if (strstr(msg, "Request malformed") || strstr(msg, "syntactically incorrect"))
		log_debug("http: %s", msg);
	else if (strstr(msg, "handshake message out of context"))
		/* libmicrohttpd's words for any failed TLS handshake; the refusals
		 * of ours (client certificates, plain HTTP) are logged by tls.c */
		log_info("http: a TLS handshake failed (the client left, refused our "
			 "certificate, or offered no TLS version or cipher we allow)");
	else
		log_warn("http: %s", msg);
}

/* ---- listen address ---- */

/* "host:port", ":port", "[v6]:port" -> sockaddr. */
int server_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		      bool *any, struct regfs_err *err)
{
	char host[256] = "", port[16] = "";
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof port)
		return regfs_errf(err, -EINVAL, "http.addr \"%s\": expected host:port or :port", addr);
	snprintf(port, sizeof port, "%s", colon + 1);
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host)
		return regfs_errf(err, -EINVAL, "http.addr \"%s\": host too long", addr);
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	*any = host[0] == '\0' || !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0 || !ai)
		return regfs_errf(err, -EINVAL, "http.addr \"%s\": cannot resolve: %s", addr,
				  gai_strerror(rc));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ---- lifecycle ---- */

int registry_open(struct registry *r, struct regfs_config *cfg, struct regfs_err *err)
{
	memset(r, 0, sizeof *r);
	r->cfg = cfg;
	pthread_mutex_init(&r->health_lock, NULL);
	pthread_mutex_init(&r->gc_lock, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* a GC run waiting for the barrier must not starve behind pushes */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->gc_rw, &ra);
	pthread_rwlockattr_destroy(&ra);
	/* the cache's expiry deletes blobs under the same protocol (proxy_expire.c) */
	r->gc_online = cfg->gc.enabled || proxy_expire_wanted(cfg);
	pthread_mutex_init(&r->bg_lock, NULL);
	pthread_cond_init(&r->bg_cond, NULL);
	int rc = regfs_storage_open(cfg, &r->st, err);
	if (rc)
		return rc;
	regfs_storage_set_timing(metrics_storage_action);
	r->mb = manifest_bytes_new(MANIFEST_CACHE_BYTES);
	r->uc = upcache_new();
	r->recent = digestset_new();
	r->hc = headcache_new();
	if (!r->mb || !r->uc || !r->recent || !r->hc)
		return regfs_errf(err, -ENOMEM, "out of memory");
	rc = blobdesc_open(r, err);
	if (rc)
		return rc;
	rc = proxies_open(r, err);
	if (rc)
		return rc;
	return auth_open(&r->auth, cfg, err);
}

void registry_close(struct registry *r)
{
	notify_close(r);
	auth_close(r->auth);
	proxies_close(r);
	usage_free(r);
	manifest_bytes_free(r->mb);
	upcache_free(r->uc);
	headcache_free(r->hc);
	blobdesc_free(r->bd);
	digestset_free(r->recent);
	regfs_storage_free(r->st);
	pthread_mutex_destroy(&r->health_lock);
	pthread_mutex_destroy(&r->gc_lock);
	pthread_rwlock_destroy(&r->gc_rw);
	pthread_mutex_destroy(&r->bg_lock);
	pthread_cond_destroy(&r->bg_cond);
	memset(r, 0, sizeof *r);
}

/* THREADS, or REGFS_REGISTRY_THREADS (tuning, benchmarks). */
static unsigned pool_size(void)
{
	const char *e = getenv("REGFS_REGISTRY_THREADS");
	long n = e ? strtol(e, NULL, 10) : 0;
	return n > 0 && n <= 256 ? (unsigned)n : THREADS;
}

static size_t conn_memory(void)
{
	const char *e = getenv("REGFS_REGISTRY_CONN_MEMORY");
	long n = e ? strtol(e, NULL, 10) : 0;
	return n >= 8192 && n <= (16 << 20) ? (size_t)n : CONN_MEMORY;
}

/* The daemon takes its connections from the front (front.h), which owns
 * the listening socket: no listening socket of its own. */
static struct MHD_Daemon *start_daemon(struct registry *r, struct tls *tls)
{
	const char *pc = getenv("REGFS_REGISTRY_PER_CONNECTION");
	bool per_conn = pc && *pc == '1';
	unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET |
			 (per_conn ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					     MHD_USE_POLL
				   /* a response waiting for a cached blob's bytes suspends its
				    * connection rather than block a pool thread (proxy_blob.c);
				    * not with a thread per connection (it just blocks there) */
				   : MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME);
	struct MHD_OptionItem tls_opts[TLS_MHD_OPTIONS] = {{MHD_OPTION_END, 0, NULL}};
	if (tls) {
		flags |= MHD_USE_TLS;
		tls_mhd_options(tls, tls_opts);
	}
	const struct regfs_config *cfg = r->cfg;
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, r,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, r,
				MHD_OPTION_THREAD_POOL_SIZE, per_conn ? 0u : pool_size(),
				MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
				/* regfs.limits: 0 is "no limit" for both */
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->limits.connsperclient,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->limits.idletimeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, conn_memory(),
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, r,
				MHD_OPTION_URI_LOG_CALLBACK, on_uri, r,
				MHD_OPTION_ARRAY, tls_opts,
				MHD_OPTION_END);
}

/* Stops accepting at once (the listening socket is closed: a new client is
 * refused, not queued), lets the requests in flight finish for up to
 * `timeout_s`, then stops the background jobs and the daemon, which cuts the
 * rest. Returns how many requests were cut. */
static unsigned drain_and_stop(struct registry *reg, struct MHD_Daemon *d, int64_t timeout_s)
{
	front_stop(the_front);
	the_front = NULL;
	struct timespec now, end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)timeout_s;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (atomic_load(&in_flight) == 0 || now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	unsigned cut = atomic_load(&in_flight);
	maint_stop(reg);
	/* libmicrohttpd aborts when stopped with a suspended connection */
	proxies_release_waiters(reg);
	MHD_stop_daemon(d);
	return cut;
}

static void notify_systemd(const char *msg)
{
	int rc = sd_notify_send(msg);
	if (rc)
		log_warn("systemd notification \"%s\" to NOTIFY_SOCKET %s failed: %s", msg,
			 getenv("NOTIFY_SOCKET"), strerror(-rc));
}

/* Takes signals until SIGTERM/SIGINT (returned); SIGHUP reloads. */
static int wait_for_stop(const sigset_t *set, const char *config_path, struct regfs_config *cfg,
			 struct registry *reg)
{
	for (;;) {
		int sig = 0;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			return sig;
		/* systemd >= 253 (Type=notify-reload) wants the clock with it */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		char msg[64];
		snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
			 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
		notify_systemd(msg);
		lifecycle_reload(config_path, cfg, reg);
		notify_systemd("READY=1");
	}
}

/* Signals are taken synchronously by this thread; every thread started from
 * here on (MHD's pool, background jobs) inherits the blocked mask. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Listens on `ss` (":5000" binds every address, IPv6 too when the host has
 * it) and starts the daemon behind the front; NULL on failure (err says
 * why). *port: the port bound. */
static struct MHD_Daemon *listen_on(struct registry *reg, struct sockaddr_storage *ss, bool any,
				    struct tls *tls, unsigned *port, struct regfs_err *err)
{
	int lfd = -1;
	if (any && ss->ss_family == AF_INET) {
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any,
					  .sin6_port = ((struct sockaddr_in *)ss)->sin_port};
		lfd = front_listen((struct sockaddr *)&s6, true, NULL);
	}
	if (lfd < 0)
		lfd = front_listen((struct sockaddr *)ss, false, err);
	if (lfd < 0)
		return NULL;
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	*port = 0;
	if (getsockname(lfd, (struct sockaddr *)&bound, &bl) == 0)
		*port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
							  : ((struct sockaddr_in *)&bound)->sin_port);
	struct MHD_Daemon *d = start_daemon(reg, tls);
	if (!d) {
		close(lfd);
		regfs_errf(err, -EINVAL, "libmicrohttpd did not start (see the log above)");
		return NULL;
	}
	the_front = front_start(reg, d, lfd, tls != NULL);
	if (!the_front) {
		MHD_stop_daemon(d);
		regfs_errf(err, -ENOMEM, "cannot start the connection front");
		return NULL;
	}
	return d;
}

int server_run(struct regfs_config *cfg, const char *config_path, struct regfs_err *err)
{
	struct registry reg;
	struct tls *tls = NULL;
	int rc = tls_open(cfg, &tls, err);
	if (rc)
		return rc;
	struct sockaddr_storage ss;
	socklen_t sl;
	bool any = false;
	rc = server_parse_addr(cfg->http_addr ? cfg->http_addr : ":5000", &ss, &sl, &any, err);
	if (rc)
		goto out_tls;

	sigset_t set;
	block_signals(&set);
	limits_apply(cfg);

	rc = registry_open(&reg, cfg, err);
	if (rc) {
		registry_close(&reg);
		goto out_tls;
	}
	rc = notify_open(&reg, err);
	if (rc) {
		registry_close(&reg);
		goto out_tls;
	}
	reg.tls = tls;
	unsigned port = 0;
	struct regfs_err le = {0};
	struct MHD_Daemon *d = listen_on(&reg, &ss, any, tls, &port, &le);
	if (!d) {
		rc = regfs_errf(err, -EADDRINUSE, "cannot listen on %s (%s: in use, or not an "
				"address of this host); set http.addr to a free host:port",
				cfg->http_addr, le.msg);
		registry_close(&reg);
		goto out_tls;
	}
	log_info("regfs-registry %s listening on %s (port %u, %s storage%s)", REGFS_VERSION,
		 cfg->http_addr, port, regfs_storage_name(reg.st),
		 tls ? ", TLS" : "");
	maint_start(&reg);
	struct MHD_Daemon *dbg = NULL;
	rc = debug_start(&reg, &dbg, err);
	if (rc) {
		drain_and_stop(&reg, d, 0);
		registry_close(&reg);
		goto out_tls;
	}
	notify_systemd("READY=1");

	int sig = wait_for_stop(&set, config_path, cfg, &reg);
	/* new clients are refused from here on, before the log line says so */
	front_stop(the_front);
	the_front = NULL;
	int64_t drain_s = cfg->http_drain_s;
	notify_systemd("STOPPING=1");
	log_info("signal %d (%s): stopping; new connections refused, requests in flight get "
		 "up to %" PRId64 "s (http.draintimeout)", sig, strsignal(sig), drain_s);
	debug_stop(dbg);
	unsigned cut = drain_and_stop(&reg, d, drain_s);
	registry_close(&reg);
	if (cut)
		log_warn("stopped: %u request(s) in flight cut off at the end of "
			 "http.draintimeout (%" PRId64 "s)", cut, drain_s);
	else
		log_info("stopped: no request cut off");
	rc = 0;
out_tls:
	tls_close(tls);
	return rc;
}
