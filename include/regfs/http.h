/* http.h — the libcurl plumbing shared by every HTTP client in libregfs (the
 * registry client, lib/client, and the S3 storage driver, lib/storage/s3_http.c):
 *
 *  - process-wide curl initialisation, done once and thread-safely;
 *  - a share handle (connection cache, DNS cache, TLS sessions) with the
 *    mutexes libcurl needs to use it from many threads;
 *  - a pool of easy handles, so that a request reuses a handle (and through
 *    the share, a warm connection) instead of building one;
 *  - the retry policy: which curl failures are transient, how long to wait
 *    between attempts (exponential backoff, optional jitter).
 *
 * What a request sends, how its answer is captured and what a failure means to
 * the caller stay with each client: they differ (registry auth and Range reads;
 * SigV4 signing and S3 error XML).
 *
 * Ownership: a struct regfs_http is embedded in its owner, set up with
 * regfs_http_init and torn down with regfs_http_cleanup after every handle
 * taken from it was given back. Handles from regfs_http_handle are the
 * caller's until regfs_http_release. All functions are thread-safe except
 * init and cleanup.
 *
 * Errors: regfs_http_init returns 0, -ENOMEM or -EIO (curl could not be
 * initialised; err says so); regfs_http_handle returns NULL on ENOMEM. */
#ifndef REGFS_HTTP_H
#define REGFS_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include <regfs/err.h>

/* The most idle easy handles a pool keeps; more are cleaned up on release. */
#define REGFS_HTTP_POOL_MAX 32

struct regfs_http {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[REGFS_HTTP_POOL_MAX];
	int n_pool;
};

/* Initialise curl (once per process) and `h`'s share handle, sharing
 * connections, DNS answers and TLS sessions between its handles. */
int regfs_http_init(struct regfs_http *h, struct regfs_err *err);

/* Clean up the idle handles and the share. Safe on a zeroed or half-initialised
 * struct (after a failed init). */
void regfs_http_cleanup(struct regfs_http *h);

/* An easy handle from the pool (reset to defaults) or a new one, attached to
 * the share and with signals off (we are multi-threaded). NULL on ENOMEM. */
CURL *regfs_http_handle(struct regfs_http *h);

/* Give a handle back (it must not be in a multi handle any more); NULL is
 * ignored. */
void regfs_http_release(struct regfs_http *h, CURL *e);

/* ---- retry policy ---- */

/* Transient curl failures: the connection broke or never came up, so the same
 * request may well succeed on a new attempt. Both clients retry these; each
 * adds the few its own protocol makes safe (see REGFS_HTTP_TRANSIENT_*). */
enum {
	REGFS_HTTP_TRANSIENT_HTTP2 = 1 << 0,      /* HTTP/2 framing or stream errors */
	REGFS_HTTP_TRANSIENT_TIMEOUT = 1 << 1,    /* CURLE_OPERATION_TIMEDOUT */
	REGFS_HTTP_TRANSIENT_TLS_CONNECT = 1 << 2, /* the TLS handshake failed */
	/* a reused connection the server had closed after part of the body went
	 * out: safe when every attempt sends its body from the start */
	REGFS_HTTP_TRANSIENT_REWIND = 1 << 3,
};
bool regfs_http_transient(CURLcode cc, unsigned extra);

/* Exponential backoff: first_ms, then doubling. With jitter, each wait is
 * lengthened by a random 0..50 % so that many clients do not retry in step. */
struct regfs_http_backoff {
	long next_ms;
	bool jitter;
};
void regfs_http_backoff_init(struct regfs_http_backoff *b, long first_ms, bool jitter);
/* Sleep for the current wait (through EINTR) and double it for the next. */
void regfs_http_backoff_sleep(struct regfs_http_backoff *b);

/* Milliseconds on the monotonic clock (for deadlines). */
int64_t regfs_http_now_ms(void);

#endif
