/* internal.h — what the files of lib/client/ share; not a public interface.
 *
 * request.c  one HTTP exchange (curl easy handle on the shared connection
 *            cache), response capture, retries, status → errno mapping
 * auth.c     credentials (opts, env, docker config), WWW-Authenticate
 *            parsing, the Bearer token flow and the per-scope token cache
 * client.c   regfs_client_new/free, ping, extensions, stats
 * api.c      catalog, tags, manifests, blobs, writes
 * ext.c      regfs-registry extensions (bulk tags, repo manifests)
 * layerindex.c  the layer-index extension
 * batch.c    parallel manifests / tags on the curl multi interface
 * tls.c      TLS options of every handle, the messages of TLS failures
 * creds.c    docker config.json: auths, credHelpers, credsStore */
#ifndef REGFS_CLIENT_INTERNAL_H
#define REGFS_CLIENT_INTERNAL_H

#include <regfs/client.h>
#include <regfs/dynbuf.h>
#include <regfs/fmt.h>
#include <regfs/http.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

struct token {
	char *scope; /* our cache key: the scope we asked for ("" for /v2/) */
	char *value;
	time_t expires;
	struct token *next;
};

enum auth_mode { AUTH_UNKNOWN = 0, AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct regfs_client {
	char *url;    /* "http://host:port", no trailing slash */
	char *origin; /* scheme://host[:port] of url, for relative Links */
	char *host;   /* host[:port], for docker config and messages */
	char *user, *pass;
	bool identity; /* pass is a docker identity token (user "<token>"): auth.c */
	const char *cred_source; /* "--user", "REGFS_USERNAME", "docker config …" */
	char *ca_cert, *client_cert, *client_key; /* paths (tls.c) */
	bool insecure;
	int timeout_s, max_parallel;

	struct regfs_http http; /* connection cache and handle pool of every request */

	pthread_mutex_t lock; /* guards everything below */
	enum auth_mode mode;
	char *realm, *service; /* last Bearer challenge */
	struct token *tokens;
	bool ext_known;
	char *extensions; /* X-Regfs-Extensions of GET /v2/ */

	_Atomic uint64_t st_requests, st_manifest_gets, st_tag_lists, st_catalog_pages,
		st_blob_reads, st_writes, st_bytes, st_retries, st_errors, st_token_fetches;
};

/* The end of every "credentials refused" message: where credentials come from. */
#define CREDS_HINT "use --user USER[:PASS], REGFS_USERNAME/REGFS_PASSWORD or docker login"
/* -EACCES with "<fmt ...>: " CREDS_HINT as the message; counts an error in
 * c's statistics (c may be NULL when the caller counted it already). */
int access_denied(struct regfs_client *c, struct regfs_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- one response ---- */
enum sink_kind { SINK_MEM = 0, SINK_BUF, SINK_FD, SINK_NONE, SINK_CB };

struct resp {
	long status;
	char *ctype, *dcd, *location, *link, *www_auth, *api_version, *extensions,
		*last_modified;
	int64_t content_length; /* -1 when absent */

	enum sink_kind sink;
	/* SINK_MEM body; the error body of any non-2xx answer. Capped by what
	 * the status allows (request.c: MEM_BODY_MAX, ERR_BODY_MAX). */
	struct dynbuf body;
	/* SINK_BUF: a Range read into the caller's buffer */
	char *buf;
	size_t buf_cap, buf_got;
	uint64_t skip; /* offset asked for: dropped when the answer is a 200 */
	uint64_t seen; /* body bytes received so far */
	/* SINK_FD: stream to fd, hashing */
	int fd;
	struct regfs_hasher *hasher;
	uint64_t written;
	int write_errno;
	/* SINK_CB: the caller's callbacks (hashing as SINK_FD) */
	const struct regfs_blob_sink *cb;
	bool cb_sized; /* cb->size ran */
};
void resp_free(struct resp *r);
/* Drops what an attempt captured so the request can be sent again. */
void resp_reset(struct resp *r);

/* What one API call owns: its URL, its Bearer scope and the answer. */
struct call {
	char *url, *scope;
	struct resp r;
};
/* Takes over url and scope, either of which may be NULL after a failed
 * allocation: then -ENOMEM with err set (call_free is still right). */
int call_init(struct call *k, char *url, char *scope, enum sink_kind sink,
	      struct regfs_err *err);
void call_free(struct call *k);
/* GET `url` (taken over, as call_init) with pull access to `repo` into
 * memory, counting it in *stat: the shape of every read of a registry
 * extension. 0 with k->r filled (any status) or -errno with err set; the
 * caller always call_frees k. */
int call_get(struct regfs_client *c, struct call *k, char *url, const char *repo,
	     _Atomic uint64_t *stat, struct regfs_err *err);

/* ---- one request ---- */
struct rq {
	const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *url;    /* absolute */
	const char *scope;  /* Bearer scope for this request; NULL = none ("") */
	const char *const *headers; /* extra headers, NULL-terminated, may be NULL */
	const void *body;   /* PUT/POST body (or upload_fp) */
	size_t body_len;
	FILE *upload_fp;    /* PUT body read from this file (upload_size bytes) */
	int64_t upload_size;
	bool idempotent;    /* retry on connection errors and 5xx */
	bool stream;        /* big body: no total deadline, fail after timeout_s without a byte */
	bool no_auth;       /* token fetches: never run the auth flow */
	const char *basic_user, *basic_pass; /* no_auth requests: Basic creds */
};

/* An easy handle set up for one attempt (used directly and by batch.c). */
struct xfer {
	CURL *h;             /* from c->http's pool, given back by xfer_cleanup */
	struct regfs_http *http;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	const struct rq *q;
	struct resp *r;
	size_t up_off;
};
/* auth_header: full "Authorization: …" line or NULL. */
int xfer_setup(struct regfs_client *c, struct xfer *x, const struct rq *q, struct resp *r,
	       const char *auth_header, long timeout_ms, struct regfs_err *err);
/* After the transfer ended with cc: count its bytes, take its status. */
void xfer_done(struct regfs_client *c, struct xfer *x, CURLcode cc);
void xfer_cleanup(struct xfer *x);

/* Runs q until there is an HTTP answer (any status; 401 after the auth flow
 * ran, 5xx after retries). 0 with r filled, or a negative errno for transport
 * failures (connect, timeout, TLS) with err set naming the URL. */
int client_do(struct regfs_client *c, const struct rq *q, struct resp *r, struct regfs_err *err);
/* Maps curl failures to the header's errno table with a message. */
int curl_to_err(struct regfs_client *c, CURLcode cc, const char *errbuf, const char *method,
		const char *url, struct regfs_err *err);
/* Maps a non-success HTTP answer to an errno with a message naming `what`. */
int status_err(struct regfs_client *c, const struct resp *r, const char *method,
	       const char *url, const char *what, struct regfs_err *err);
/* status_err with `what` formatted. */
int status_errf(struct regfs_client *c, const struct resp *r, const char *method,
		const char *url, struct regfs_err *err, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* The curl failures worth another attempt (http.h), for the registry client. */
#define CLIENT_TRANSIENT REGFS_HTTP_TRANSIENT_HTTP2

/* ---- TLS (tls.c) ---- */
/* CA bundle, client certificate/key and --insecure on a handle. */
void tls_setopts(struct regfs_client *c, CURL *h);
/* Does curl's error text say the server refused (or wanted) our client
 * certificate (a TLS alert)? */
bool tls_client_cert_refused(const char *errbuf);
/* After a transport failure of an https request made without a client
 * certificate: does the server want one? Asked with one more handshake
 * (TLS 1.2, which sends nothing else); its alert text into alert. */
bool tls_wants_client_cert(struct regfs_client *c, CURLcode cc, const char *url, char *alert,
			   size_t n);
/* One line for a TLS failure (counted by the caller): which certificate
 * (the server's subject and issuer, read by one more handshake that
 * sends nothing), why (detail: curl's text with the X509 verify error), and
 * the option that fixes it. -EIO, or -EACCES when the server refused our
 * client certificate or wanted one. */
int tls_err(struct regfs_client *c, CURLcode cc, const char *detail, const char *method,
	    const char *url, struct regfs_err *err);

/* ---- auth (auth.c, creds.c) ---- */
/* Credentials for c->host from the docker config at path (creds.c's order:
 * credHelpers, credsStore, auths). 0 with c->user/pass/cred_source set or
 * left NULL (nothing for this host, no file), or -errno with err naming the
 * file, the helper and what it said. */
int docker_config_creds(struct regfs_client *c, const char *path, struct regfs_err *err);
int creds_resolve(struct regfs_client *c, const struct regfs_client_opts *o,
		  struct regfs_err *err);
/* malloc'd "Authorization: …" header for scope, or NULL when none applies. */
char *auth_header_for(struct regfs_client *c, const char *scope);
/* Handles a 401: learns the scheme; for Bearer fetches a token for the
 * challenge's scope and caches it under `scope`. 0 = retry the request,
 * -EACCES = nothing more to try (err set), other negative = token fetch failed. */
int auth_on_401(struct regfs_client *c, const struct resp *r, const char *scope,
		bool sent_auth, struct regfs_err *err);
/* Ensures valid tokens for scopes when the registry uses Bearer (learning the
 * scheme with GET /v2/ if needed), with few token requests (several scopes per
 * token). Used before a batch. Fails only when the registry cannot be checked. */
/* Before a request on a Bearer registry: fetch the scope's token now instead
 * of learning from a 401 (saves a round trip per new repository/expiry). */
void auth_prefetch(struct regfs_client *c, const char *scope);
int auth_prepare_many(struct regfs_client *c, const char *const *scopes, size_t n,
		      struct regfs_err *err);
void tokens_free(struct token *t);
/* malloc'd "Authorization: Basic …" line. */
char *basic_header(const char *user, const char *pass);
/* Parses one auth-param list; returns malloc'd value of key or NULL. */
char *challenge_param(const char *hdr, const char *key);

/* ---- helpers ---- */
char *url_escape(const char *s);
char *scope_pull(const char *repo);
/* Next-page URL from a Link header (absolute, malloc'd) or NULL. */
char *link_next(struct regfs_client *c, const char *link);
int strv_push(struct regfs_strv *s, const char *v);
int manifest_fill(struct regfs_client *c, const char *repo, const char *ref, struct resp *r,
		  struct regfs_manifest_resp *out, struct regfs_err *err);
int tags_parse(struct regfs_client *c, const char *repo, const char *url, struct resp *r,
	       struct regfs_strv *out, struct regfs_err *err);

/* One 200 page of a Link-paginated listing; 0 to go on, or a negative errno
 * (-EPROTO / -EBADMSG count as the registry's errors). */
typedef int page_fn(const char *url, const char *body, size_t len, void *arg,
		    struct regfs_err *err);
struct pages {
	const char *scope;         /* Bearer scope of every page */
	const char *what;          /* "repository catalog", for messages */
	_Atomic uint64_t *counter; /* the statistic each page counts in */
	page_fn *page;
	void *arg;
};
/* GETs `first` (taken over; NULL = ENOMEM) and every page its Link headers
 * lead to, handing each body to pg->page. Stops at the first error, at a Link
 * to the same page, or after MAX_PAGES (-EPROTO). */
int walk_pages(struct regfs_client *c, char *first, const struct pages *pg,
	       struct regfs_err *err);
#define MAX_PAGES 100000

extern const char *const manifest_accept_hdr;
/* ext.c: one bulk-manifests page (body of `url`) → cb per repository, each
 * content verified against its digest (-EBADMSG on a mismatch, -EPROTO on
 * a body that is not the documented shape; err says which). Split out of
 * regfs_client_bulk_manifests so unit tests can feed it canned pages. */
/* One usage-extension answer into *u (zeroed first): 0, or -EPROTO when it
 * is not the documented shape (a figure missing, negative or not an
 * integer). Exposed for the unit tests. */
struct regfs_usage;
int usage_parse(const char *body, size_t len, struct regfs_usage *u);
int bulk_manifests_page(const char *url, const char *body, size_t len, regfs_repo_bulk_cb cb,
			void *arg, struct regfs_err *err);

#define ST_INC(c, f) atomic_fetch_add_explicit(&(c)->f, 1, memory_order_relaxed)
#define ST_ADD(c, f, n) atomic_fetch_add_explicit(&(c)->f, (n), memory_order_relaxed)

#endif
