/* http.c — the libcurl plumbing of http.h: global init, the share handle and
 * its locks, the easy-handle pool, and the retry policy (transient failures,
 * backoff). */
#include <regfs/http.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	/* curl_global_init is not thread-safe before 7.84; run it once. */
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* libcurl calls these around every use of shared data, from any thread; one
 * mutex per kind of data so DNS lookups do not wait on the connection cache. */
static void share_lock(CURL *e, curl_lock_data d, curl_lock_access a, void *ud)
{
	(void)e;
	(void)a;
	struct regfs_http *h = ud;
	pthread_mutex_lock(&h->share_locks[d]);
}

static void share_unlock(CURL *e, curl_lock_data d, void *ud)
{
	(void)e;
	struct regfs_http *h = ud;
	pthread_mutex_unlock(&h->share_locks[d]);
}

int regfs_http_init(struct regfs_http *h, struct regfs_err *err)
{
	memset(h, 0, sizeof *h);
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return regfs_errf(err, -EIO, "cannot initialise libcurl: %s",
				  curl_easy_strerror(global_rc));
	pthread_mutex_init(&h->pool_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	h->share = curl_share_init();
	if (!h->share)
		return regfs_errf(err, -ENOMEM, "cannot create the HTTP connection cache");
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

void regfs_http_cleanup(struct regfs_http *h)
{
	/* a failed init may have stopped before the mutexes */
	bool inited = h->share != NULL;
	for (int i = 0; i < h->n_pool; i++)
		curl_easy_cleanup(h->pool[i]);
	h->n_pool = 0;
	if (h->share)
		curl_share_cleanup(h->share);
	h->share = NULL;
	if (!inited)
		return;
	pthread_mutex_destroy(&h->pool_lock);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
}

CURL *regfs_http_handle(struct regfs_http *h)
{
	CURL *e = NULL;
	pthread_mutex_lock(&h->pool_lock);
	if (h->n_pool > 0)
		e = h->pool[--h->n_pool];
	pthread_mutex_unlock(&h->pool_lock);
	if (e)
		curl_easy_reset(e);
	else
		e = curl_easy_init();
	if (e) {
		curl_easy_setopt(e, CURLOPT_SHARE, h->share);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	}
	return e;
}

void regfs_http_release(struct regfs_http *h, CURL *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&h->pool_lock);
	if (h->n_pool < REGFS_HTTP_POOL_MAX) {
		h->pool[h->n_pool++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (e)
		curl_easy_cleanup(e);
}

bool regfs_http_transient(CURLcode cc, unsigned extra)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return true;
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return extra & REGFS_HTTP_TRANSIENT_HTTP2;
	case CURLE_OPERATION_TIMEDOUT:
		return extra & REGFS_HTTP_TRANSIENT_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
		return extra & REGFS_HTTP_TRANSIENT_TLS_CONNECT;
	case CURLE_SEND_FAIL_REWIND:
		return extra & REGFS_HTTP_TRANSIENT_REWIND;
	default:
		return false;
	}
}

void regfs_http_backoff_init(struct regfs_http_backoff *b, long first_ms, bool jitter)
{
	b->next_ms = first_ms;
	b->jitter = jitter;
}

void regfs_http_backoff_sleep(struct regfs_http_backoff *b)
{
	long ms = b->next_ms;
	if (b->jitter)
		ms += rand() % (ms / 2 + 1);
	b->next_ms *= 2;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int64_t regfs_http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
