/* server.c — the HTTP server of `regfs-registry serve`: libmicrohttpd with a
 * thread pool (each thread its own epoll loop; storage calls may block, so
 * several threads keep other connections moving), keep-alive, optional TLS,
 * request routing, per-request state, signals: SIGHUP reloads (lifecycle.c),
 * SIGTERM/SIGINT drain within http.draintimeout, systemd is told (sdnotify.c). */
#include "server.h"

#include "blobs.h"
#include "digestset.h"
#include "handlers.h"
#include "debug.h"
#include "lifecycle.h"
#include "layerindex.h"
#include "maint.h"
#include "metrics.h"
#include "manifest_bytes.h"
#include "notify.h"
#include "registry.h"
#include "request.h"
#include "respond.h"
#include "sdnotify.h"
#include "uploads.h"
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
/* con_cls set by on_uri: the raw request target carries a control character */
static struct request bad_target;

/* true for a control character (0x00-0x1f, 0x7f) */
static bool is_ctl(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Called by libmicrohttpd with the raw request target, before it decodes
 * %XX. The decoded path is a C string: "%00" would silently cut it (".../a%00b"
 * naming tag "a"), so a path whose decoded form holds any control character
 * is marked here and refused on the first access-handler call. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls; (void)c;
	for (const char *p = uri; *p && *p != '?'; p++) {
		if (is_ctl((unsigned char)*p))
			return &bad_target;
		if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0 &&
		    is_ctl((unsigned char)(hexval(p[1]) * 16 + hexval(p[2]))))
			return &bad_target;
	}
	return &fresh;
}

/* Framing facts gathered over the request's headers (RFC 9112 section 6). */
struct framing {
	unsigned n_cl, n_te;
	bool bad_cl, bad_te, bad_name;
	char what[160];
};

static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool all_digits(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return false;
	return true;
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      size_t key_size, const char *value, size_t value_size)
{
	(void)kind; (void)value_size;
	struct framing *f = cls;
	bool tok = key_size > 0;
	for (size_t i = 0; i < key_size; i++)
		tok = tok && is_tchar((unsigned char)key[i]);
	if (!tok) {
		f->bad_name = true;
		snprintf(f->what, sizeof f->what, "header name \"%.60s\" is not a token "
			 "(empty, or space before the colon)", key);
		return MHD_YES;
	}
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		f->n_cl++;
		f->bad_cl = f->bad_cl || !value || !all_digits(value);
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->n_te++;
		f->bad_te = f->bad_te || !value || strcasecmp(value, "chunked");
	}
	return MHD_YES;
}

/* Checks the request's framing headers before any body byte is read; 0 when
 * sound, else the status to refuse with (400, or 501 for a transfer coding
 * other than plain chunked) and a message in f->what. A request whose
 * framing is ambiguous must be refused, not guessed: a proxy in front could
 * read its body differently and the rest become a second, smuggled request. */
static unsigned framing_check(struct MHD_Connection *c, struct framing *f)
{
	memset(f, 0, sizeof *f);
	MHD_get_connection_values_n(c, MHD_HEADER_KIND, framing_header, f);
	if (f->bad_name)
		return 400;
	if (f->n_cl > 1 || f->bad_cl) {
		snprintf(f->what, sizeof f->what, "%s Content-Length",
			 f->n_cl > 1 ? "repeated" : "invalid");
		return 400;
	}
	if (f->n_cl && f->n_te) {
		snprintf(f->what, sizeof f->what, "both Content-Length and Transfer-Encoding");
		return 400;
	}
	if (f->n_te > 1 || f->bad_te) {
		snprintf(f->what, sizeof f->what, "Transfer-Encoding other than a single \"chunked\"");
		return 501;
	}
	return 0;
}

/* Refusals on the first access-handler call, which comes after the
 * headers, before the body: a refusal queued there is answered at once and
 * libmicrohttpd closes the connection without reading a body it has not
 * handed over. */

/* A path whose decoded form holds a control character (on_uri). */
static enum MHD_Result refuse_bad_target(struct registry *r, struct MHD_Connection *c,
					 const char *method, const char *url)
{
	struct request q;
	request_init(&q, c, method, url);
	log_warn("http: %s %.200s refused (400): control character in the path", method, url);
	return respond_errorf(r, &q, 400, "NAME_INVALID", "the request path holds a control "
			      "character (raw or %%-encoded): refused");
}

/* true when the framing is refused (*res: the result to return). */
static bool refuse_bad_framing(struct registry *r, struct MHD_Connection *c, const char *method,
			       const char *url, enum MHD_Result *res)
{
	struct framing f;
	unsigned st = framing_check(c, &f);
	if (!st)
		return false;
	struct request q;
	request_init(&q, c, method, url);
	log_warn("http: %s %.200s refused (%u): %s", method, url, st, f.what);
	*res = respond_errorf(r, &q, st, st == 501 ? "UNSUPPORTED" : "UNKNOWN",
			      "malformed request framing: %s", f.what);
	return true;
}

/* An absolute-form target ("http://host:port/v2/", RFC 9112 section 3.2.2)
 * names the same resource as its path: servers must accept it. */
static const char *origin_path(const char *url)
{
	const char *p = NULL;
	if (!strncasecmp(url, "http://", 7))
		p = url + 7;
	else if (!strncasecmp(url, "https://", 8))
		p = url + 8;
	if (!p)
		return url;
	const char *slash = strchr(p, '/');
	return slash ? slash : "/";
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
	};
	regfs_log_fields(REGFS_LOG_INFO, f, (int)(sizeof f / sizeof f[0]), "%s %s %u %llu %llu.%03llums",
			 q->method, q->url, status, (unsigned long long)bytes,
			 (unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
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
	url = origin_path(url);
	if (!q || q == &fresh || q == &bad_target) {
		enum MHD_Result res;
		atomic_fetch_add(&in_flight, 1);
		if (q == &bad_target) {
			*con_cls = &no_state;
			return refuse_bad_target(r, c, method, url);
		}
		if (refuse_bad_framing(r, c, method, url, &res)) {
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
	(void)cls; (void)c;
	struct request *q = *con_cls;
	if (q && q != &fresh && q != &bad_target)
		atomic_fetch_sub(&in_flight, 1); /* reached the access handler */
	if (!q || q == &no_state || q == &fresh || q == &bad_target) {
		*con_cls = NULL;
		return;
	}
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("request ended early (code %d)", (int)toe);
	if (is_upload(q))
		metrics_uploads_in_flight(-1);
	request_free_body(q);
	free(q);
	*con_cls = NULL;
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

/* A whole (small) file: the TLS certificate and key. */
static char *read_file(const char *path, struct regfs_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		regfs_errf(err, -errno, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	struct dynbuf b;
	dynbuf_init(&b, DYNBUF_NO_CAP);
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = dynbuf_add(&b, chunk, n);
	fclose(f);
	char *s = rc ? NULL : dynbuf_take(&b, NULL);
	dynbuf_free(&b);
	if (!s)
		regfs_errf(err, -ENOMEM, "out of memory reading %s", path);
	return s;
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
	r->gc_online = cfg->gc.enabled;
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
	return 0;
}

void registry_close(struct registry *r)
{
	notify_close(r);
	usage_free(r);
	manifest_bytes_free(r->mb);
	upcache_free(r->uc);
	headcache_free(r->hc);
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

/* IPv6 wildcard listeners also take IPv4 (DUAL_STACK), or only the
 * address's own family. */
enum stack { ADDRESS_FAMILY, DUAL_STACK };

static struct MHD_Daemon *start_daemon(struct registry *r, const struct sockaddr *sa,
				       enum stack stack, const char *cert, const char *key)
{
	const char *pc = getenv("REGFS_REGISTRY_PER_CONNECTION");
	bool per_conn = pc && *pc == '1';
	unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_USE_ITC |
			 (per_conn ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					     MHD_USE_POLL
				   : MHD_USE_EPOLL_INTERNAL_THREAD);
	if (stack == DUAL_STACK)
		flags |= MHD_USE_DUAL_STACK;
	if (cert)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem tls_opts[] = {
		{MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
		{MHD_OPTION_END, 0, NULL},
	};
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, r,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, r,
				MHD_OPTION_SOCK_ADDR, sa,
				MHD_OPTION_THREAD_POOL_SIZE, per_conn ? 0u : pool_size(),
				MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, conn_memory(),
				MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
				MHD_OPTION_URI_LOG_CALLBACK, on_uri, r,
				MHD_OPTION_ARRAY, cert ? tls_opts : tls_opts + 2,
				MHD_OPTION_END);
}

/* http.tls: the certificate and key files, read whole (both NULL when TLS
 * is not configured). */
static int load_tls(struct regfs_config *cfg, char **cert, char **key, struct regfs_err *err)
{
	*cert = *key = NULL;
	if (!cfg->tls_certificate && !cfg->tls_key)
		return 0;
	if (!cfg->tls_certificate || !cfg->tls_key)
		return regfs_errf(err, -EINVAL, "http.tls needs both certificate and key");
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return regfs_errf(err, -ENOTSUP, "http.tls is set but this libmicrohttpd was "
				  "built without TLS (gnutls); install a TLS-enabled "
				  "libmicrohttpd or terminate TLS in a proxy");
	*cert = read_file(cfg->tls_certificate, err);
	*key = *cert ? read_file(cfg->tls_key, err) : NULL;
	if (!*cert || !*key) {
		free(*cert);
		*cert = NULL;
		regfs_err_prefix(err, "http.tls: ");
		return -EINVAL;
	}
	return 0;
}

/* Stops accepting at once (the listening socket is closed: a new client is
 * refused, not queued), lets the requests in flight finish for up to
 * `timeout_s`, then stops the background jobs and the daemon, which cuts the
 * rest. Returns how many requests were cut. */
static unsigned drain_and_stop(struct registry *reg, struct MHD_Daemon *d, int64_t timeout_s)
{
	MHD_socket ls = MHD_quiesce_daemon(d);
	if (ls != MHD_INVALID_SOCKET)
		close(ls);
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

/* Starts the daemon on `ss`; NULL when the address cannot be bound. */
static struct MHD_Daemon *listen_on(struct registry *reg, struct sockaddr_storage *ss, bool any,
				    const char *cert, const char *key)
{
	struct MHD_Daemon *d = NULL;
	if (any && ss->ss_family == AF_INET) {
		/* ":5000" binds every address, IPv6 too when the host has it */
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any,
					  .sin6_port = ((struct sockaddr_in *)ss)->sin_port};
		d = start_daemon(reg, (struct sockaddr *)&s6, DUAL_STACK, cert, key);
	}
	if (!d)
		d = start_daemon(reg, (struct sockaddr *)ss, ADDRESS_FAMILY, cert, key);
	return d;
}

int server_run(struct regfs_config *cfg, const char *config_path, struct regfs_err *err)
{
	struct registry reg;
	char *cert = NULL, *key = NULL;
	int rc = load_tls(cfg, &cert, &key, err);
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
	struct MHD_Daemon *d = listen_on(&reg, &ss, any, cert, key);
	if (!d) {
		rc = regfs_errf(err, -EADDRINUSE, "cannot listen on %s (in use, or not an address "
				"of this host); set http.addr to a free host:port", cfg->http_addr);
		registry_close(&reg);
		goto out_tls;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	log_info("regfs-registry %s listening on %s (port %u, %s storage%s)", REGFS_VERSION,
		 cfg->http_addr, info ? (unsigned)info->port : 0u, regfs_storage_name(reg.st),
		 cert ? ", TLS" : "");
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
	free(cert);
	free(key);
	return rc;
}
