/* notify.c — see notify.h.
 *
 * The endpoint set is swapped whole on reload: notify_emit holds the
 * notifier's rwlock for reading while it queues (a few pointer moves per
 * endpoint), notify_reload takes it for writing only to swap the pointer, so
 * an emitter never sees an endpoint being freed. Each endpoint has its own
 * mutex and condition for its queue, a ring of serialized events (the JSON
 * of one event each, built once per emit and copied per endpoint). */
#include "notify.h"

#include "jsonbuf.h"
#include "metrics.h"
#include "registry.h"
#include "request.h"

#include <regfs/clock.h>
#include <regfs/fmt.h>
#include <regfs/http.h>
#include <regfs/log.h>
#include <regfs/strvec.h>

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ENVELOPE_TYPE "application/vnd.docker.distribution.events.v2+json"
#define BLOB_MEDIA_TYPE "application/octet-stream"

struct nt_ep {
	char *name, *url;
	struct curl_slist *hdrs;       /* Content-Type and the configured headers */
	long timeout_ms, backoff_ms;
	int threshold;
	struct strvec ign_mt, ign_act;
	struct regfs_http *http;       /* the notifier's */

	pthread_mutex_t lock;          /* guards what follows */
	pthread_cond_t cond;
	char *q[NOTIFY_QUEUE_MAX];     /* ring: q[(head + i) % MAX], i < n */
	size_t head, n;
	bool stop, started;
	uint64_t dropped;              /* since start */
	uint64_t sent, failed_posts;   /* since start */
	uint64_t burst;                /* drops in the current burst (0: none) */
	pthread_t th;
};

struct nt_set {
	struct nt_ep **ep;
	int n;
};

struct notifier {
	pthread_rwlock_t lock;         /* guards `set` (the pointer) */
	struct nt_set *set;
	struct regfs_http http;
	char instance_id[40];
	char source_addr[300];         /* hostname:port, as registry:2 */
};

/* ---- event building ---- */

static void uuid4(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
		/* never fails for 16 bytes once the pool is up; a clock mix is
		 * enough for an id that only has to be unique in practice */
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)clock();
		for (size_t i = 0; i < sizeof b; i++)
			b[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)(i * 37);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* RFC 3339 in UTC with nanoseconds, as Go's time.RFC3339Nano. */
static void timestamp(char out[48])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char d[32];
	strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 48, "%s.%09ldZ", d, (long)ts.tv_nsec);
}

/* A request header, NULL when absent or when `q` has no connection (an
 * event made outside an HTTP request: unit tests, background jobs). */
static const char *header(const struct request *q, const char *name)
{
	return q->conn ? request_header(q, name) : NULL;
}

/* The client's "ip:port" ("[ip6]:port"), "" when unknown. */
static void client_addr(const struct request *q, char *out, size_t cap)
{
	out[0] = '\0';
	if (!q->conn)
		return;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	char h[NI_MAXHOST], p[NI_MAXSERV];
	if (getnameinfo(sa, sl, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV))
		return;
	snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
}

static void json_field(struct jbuf *b, const char *key, const char *v, bool comma)
{
	jb_printf(b, "%s\"%s\":", comma ? "," : "", key);
	jb_json_str(b, v ? v : "");
}

static void target_json(struct registry *r, const struct request *q,
			const struct notify_target *t, struct jbuf *b)
{
	jb_puts(b, "\"target\":{");
	json_field(b, "repository", q->rt.name, false);
	if (t->media_type)
		json_field(b, "mediaType", t->media_type, true);
	if (t->digest) {
		jb_printf(b, ",\"size\":%" PRIu64 ",\"length\":%" PRIu64, t->size, t->size);
		json_field(b, "digest", t->digest, true);
		/* http.host when set (the name clients use), else the Host header */
		const char *host = header(q, MHD_HTTP_HEADER_HOST);
		char *url = r->cfg->http_host
			? xasprintf("%s/v2/%s/%s/%s", r->cfg->http_host, q->rt.name,
				    t->blob ? "blobs" : "manifests", t->digest)
			: xasprintf("http://%s/v2/%s/%s/%s", host ? host : "localhost", q->rt.name,
				    t->blob ? "blobs" : "manifests", t->digest);
		json_field(b, "url", url, true);
		free(url);
	}
	if (t->tag)
		json_field(b, "tag", t->tag, true);
	jb_puts(b, "}");
}

/* One event as JSON (malloc'd), NULL on ENOMEM. */
static char *event_json(struct registry *r, struct notifier *nt, const struct request *q,
			const struct notify_target *t)
{
	char id[37], rid[37], ts[48], addr[NI_MAXHOST + NI_MAXSERV + 4];
	uuid4(id);
	uuid4(rid);
	timestamp(ts);
	client_addr(q, addr, sizeof addr);
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{");
	json_field(&b, "id", id, false);
	json_field(&b, "timestamp", ts, true);
	json_field(&b, "action", t->action, true);
	jb_puts(&b, ",");
	target_json(r, q, t, &b);
	jb_puts(&b, ",\"request\":{");
	json_field(&b, "id", rid, false);
	json_field(&b, "addr", addr, true);
	json_field(&b, "host", header(q, MHD_HTTP_HEADER_HOST), true);
	json_field(&b, "method", q->method, true);
	json_field(&b, "useragent", header(q, MHD_HTTP_HEADER_USER_AGENT), true);
	jb_puts(&b, "},\"actor\":{},\"source\":{");
	json_field(&b, "addr", nt->source_addr, false);
	json_field(&b, "instanceID", nt->instance_id, true);
	jb_puts(&b, "}}");
	if (jb_error(&b)) {
		jb_free(&b);
		return NULL;
	}
	return jb_take(&b, NULL);
}

/* ---- queueing ---- */

static bool listed(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; s && i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

/* Appends `ev` (adopted; freed when dropped). Caller holds e->lock. */
static void enqueue_locked(struct nt_ep *e, char *ev)
{
	if (!ev || e->n == NOTIFY_QUEUE_MAX) {
		free(ev);
		e->dropped++;
		metrics_count(METRICS_NOTIFY_DROPPED, 1);
		if (e->burst++ == 0)
			log_warn("notifications: endpoint %s: queue full (%d events waiting) or out of "
				 "memory: dropping events until it drains", e->name, NOTIFY_QUEUE_MAX);
		return;
	}
	if (e->burst) {
		log_warn("notifications: endpoint %s: %" PRIu64 " events were dropped (%" PRIu64
			 " since start)", e->name, e->burst, e->dropped);
		e->burst = 0;
	}
	e->q[(e->head + e->n) % NOTIFY_QUEUE_MAX] = ev;
	e->n++;
	pthread_cond_signal(&e->cond);
}

void notify_emit(struct registry *r, const struct request *q, const struct notify_target *t)
{
	/* notify_reload may create the notifier while requests run */
	struct notifier *nt = __atomic_load_n(&r->nt, __ATOMIC_ACQUIRE);
	if (!nt)
		return;
	pthread_rwlock_rdlock(&nt->lock);
	struct nt_set *s = nt->set;
	char *ev = s && s->n ? event_json(r, nt, q, t) : NULL;
	for (int i = 0; s && i < s->n; i++) {
		struct nt_ep *e = s->ep[i];
		const char *mt = t->media_type;
		if (listed(&e->ign_act, t->action) || listed(&e->ign_mt, mt))
			continue;
		pthread_mutex_lock(&e->lock);
		enqueue_locked(e, ev ? strdup(ev) : NULL);
		pthread_mutex_unlock(&e->lock);
	}
	pthread_rwlock_unlock(&nt->lock);
	free(ev);
}

void notify_get_stats(struct registry *r, struct notify_stats *out)
{
	memset(out, 0, sizeof *out);
	struct notifier *nt = __atomic_load_n(&r->nt, __ATOMIC_ACQUIRE);
	if (!nt)
		return;
	pthread_rwlock_rdlock(&nt->lock);
	for (int i = 0; nt->set && i < nt->set->n; i++) {
		struct nt_ep *e = nt->set->ep[i];
		pthread_mutex_lock(&e->lock);
		out->sent += e->sent;
		out->dropped += e->dropped;
		out->queued += e->n;
		out->failed_posts += e->failed_posts;
		pthread_mutex_unlock(&e->lock);
	}
	pthread_rwlock_unlock(&nt->lock);
}

/* ---- sending ---- */

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
	(void)p; (void)u;
	return sz * n;
}

/* POSTs the envelope of `k` events from the head of the queue. 0 when the
 * endpoint answered 2xx/3xx (registry:2's rule), else -EIO with `why` set. */
static int post(struct nt_ep *e, size_t k, char *why, size_t cap)
{
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	jb_puts(&b, "{\"events\":[");
	pthread_mutex_lock(&e->lock); /* the ring may wrap while emitters append */
	for (size_t i = 0; i < k; i++) {
		jb_puts(&b, i ? "," : "");
		jb_puts(&b, e->q[(e->head + i) % NOTIFY_QUEUE_MAX]);
	}
	pthread_mutex_unlock(&e->lock);
	jb_puts(&b, "]}");
	CURL *h = jb_error(&b) ? NULL : regfs_http_handle(e->http);
	if (!h) {
		jb_free(&b);
		snprintf(why, cap, "out of memory");
		return -EIO;
	}
	char err[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, e->url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, jb_ptr(&b));
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)jb_len(&b));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "regfs-registry/" REGFS_VERSION " notifications");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	regfs_http_release(e->http, h);
	jb_free(&b);
	if (cc != CURLE_OK) {
		snprintf(why, cap, "%s", err[0] ? err : curl_easy_strerror(cc));
		return -EIO;
	}
	if (status < 200 || status >= 400) {
		snprintf(why, cap, "HTTP status %ld", status);
		return -EIO;
	}
	return 0;
}

/* Waits `ms` or until stopped. Caller holds e->lock. */
static void backoff_wait(struct nt_ep *e, long ms)
{
	struct timespec ts = regfs_deadline_ms(ms);
	while (!e->stop && pthread_cond_timedwait(&e->cond, &e->lock, &ts) != ETIMEDOUT)
		;
}

/* After a POST: drop what was sent, or count the failure and back off.
 * Caller holds e->lock. */
static void after_post(struct nt_ep *e, size_t k, int rc, int *fails, const char *why)
{
	if (rc == 0) {
		for (size_t i = 0; i < k; i++) {
			free(e->q[e->head]);
			e->head = (e->head + 1) % NOTIFY_QUEUE_MAX;
		}
		e->n -= k;
		e->sent += k;
		metrics_count(METRICS_NOTIFY_SENT, k);
		if (*fails >= e->threshold)
			log_info("notifications: endpoint %s is up again after %d failed attempts",
				 e->name, *fails);
		*fails = 0;
		return;
	}
	++*fails;
	e->failed_posts++;
	metrics_count(METRICS_NOTIFY_FAILED, 1);
	if (*fails < e->threshold)
		log_warn("notifications: endpoint %s (%s): POST of %zu events failed (%s); "
			 "retrying in %ld ms", e->name, e->url, k, why, e->backoff_ms);
	else if (*fails == e->threshold)
		log_error("notifications: endpoint %s (%s) is down: %d failures in a row, the last: "
			  "%s; retrying every %ld ms, events queue up (at most %d)", e->name, e->url,
			  *fails, why, e->backoff_ms, NOTIFY_QUEUE_MAX);
	else
		log_debug("notifications: endpoint %s still down: %s", e->name, why);
	backoff_wait(e, e->backoff_ms);
}

static void *sender(void *arg)
{
	struct nt_ep *e = arg;
	int fails = 0;
	char why[CURL_ERROR_SIZE + 64];
	pthread_mutex_lock(&e->lock);
	for (;;) {
		while (!e->stop && e->n == 0)
			pthread_cond_wait(&e->cond, &e->lock);
		if (e->stop)
			break;
		size_t k = e->n < NOTIFY_BATCH_MAX ? e->n : NOTIFY_BATCH_MAX;
		pthread_mutex_unlock(&e->lock);
		/* only this thread removes events, so the first k stay put */
		int rc = post(e, k, why, sizeof why);
		pthread_mutex_lock(&e->lock);
		after_post(e, k, rc, &fails, why);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- endpoints ---- */

static void ep_free(struct nt_ep *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->q[(e->head + i) % NOTIFY_QUEUE_MAX]);
	free(e->name);
	free(e->url);
	curl_slist_free_all(e->hdrs);
	strvec_clear(&e->ign_mt);
	strvec_clear(&e->ign_act);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
}

static int ep_headers(struct nt_ep *e, const struct regfs_notify_endpoint *c)
{
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: " ENVELOPE_TYPE);
	for (int i = 0; l && i < c->n_headers; i++) {
		for (int j = 0; l && j < c->headers[i].n_values; j++) {
			char *line = xasprintf("%s: %s", c->headers[i].name, c->headers[i].values[j]);
			struct curl_slist *nl = line ? curl_slist_append(l, line) : NULL;
			free(line);
			if (!nl)
				curl_slist_free_all(l);
			l = nl;
		}
	}
	e->hdrs = l;
	return l ? 0 : -ENOMEM;
}

/* A stopped endpoint (no thread yet) from its configuration; NULL on ENOMEM. */
static struct nt_ep *ep_new(struct notifier *nt, const struct regfs_notify_endpoint *c)
{
	struct nt_ep *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	e->http = &nt->http;
	e->name = strdup(c->name);
	e->url = strdup(c->url);
	e->timeout_ms = (long)c->timeout_ms;
	e->backoff_ms = (long)c->backoff_ms;
	e->threshold = c->threshold > 0 ? c->threshold : 1;
	int rc = e->name && e->url ? ep_headers(e, c) : -ENOMEM;
	for (int i = 0; !rc && i < c->n_ignored_mediatypes; i++)
		rc = strvec_push(&e->ign_mt, c->ignored_mediatypes[i]);
	for (int i = 0; !rc && i < c->n_ignored_actions; i++)
		rc = strvec_push(&e->ign_act, c->ignored_actions[i]);
	if (rc) {
		ep_free(e);
		return NULL;
	}
	return e;
}

/* Stops and joins e's thread (it finishes the POST in flight). */
static void ep_stop(struct nt_ep *e)
{
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	if (e->started)
		pthread_join(e->th, NULL);
	e->started = false;
}

static void set_free(struct nt_set *s, const char *why)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++) {
		ep_stop(s->ep[i]);
		if (s->ep[i]->n)
			log_warn("notifications: endpoint %s: %zu queued events not delivered (%s)",
				 s->ep[i]->name, s->ep[i]->n, why);
		ep_free(s->ep[i]);
	}
	free(s->ep);
	free(s);
}

/* The enabled endpoints of cfg, threads not started. NULL on ENOMEM. */
static struct nt_set *set_new(struct notifier *nt, const struct regfs_config *cfg)
{
	struct nt_set *s = calloc(1, sizeof *s);
	if (!s || !(s->ep = calloc((size_t)cfg->n_endpoints + 1, sizeof *s->ep))) {
		free(s);
		return NULL;
	}
	for (int i = 0; i < cfg->n_endpoints; i++) {
		if (cfg->endpoints[i].disabled)
			continue;
		if (!(s->ep[s->n] = ep_new(nt, &cfg->endpoints[i]))) {
			set_free(s, "out of memory");
			return NULL;
		}
		s->n++;
	}
	return s;
}

static void set_start(struct nt_set *s)
{
	for (int i = 0; i < s->n; i++) {
		struct nt_ep *e = s->ep[i];
		e->started = pthread_create(&e->th, NULL, sender, e) == 0;
		if (!e->started)
			log_error("notifications: endpoint %s: cannot start its sender thread; its "
				  "events will queue up and be dropped", e->name);
		else
			log_info("notifications: sending events to endpoint %s (%s)", e->name, e->url);
	}
}

/* Moves the events still queued in `from` (stopped) in front of those of
 * `to`'s endpoint of the same name (not started yet). */
static void set_transfer(struct nt_set *from, struct nt_set *to)
{
	for (int i = 0; i < from->n; i++) {
		struct nt_ep *o = from->ep[i];
		for (int j = 0; o->n && j < to->n; j++) {
			struct nt_ep *e = to->ep[j];
			if (strcmp(e->name, o->name) != 0)
				continue;
			pthread_mutex_lock(&e->lock);
			while (o->n && e->n < NOTIFY_QUEUE_MAX) {
				size_t last = (o->head + o->n - 1) % NOTIFY_QUEUE_MAX;
				e->head = (e->head + NOTIFY_QUEUE_MAX - 1) % NOTIFY_QUEUE_MAX;
				e->q[e->head] = o->q[last];
				e->n++;
				o->n--;
			}
			pthread_mutex_unlock(&e->lock);
		}
	}
}

/* ---- lifecycle ---- */

static void source_addr(struct notifier *nt, const char *http_addr)
{
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	const char *port = http_addr ? strrchr(http_addr, ':') : NULL;
	snprintf(nt->source_addr, sizeof nt->source_addr, "%s%s", host, port ? port : "");
}

/* A notifier for cfg's endpoints, threads started; NULL when there are
 * none (nothing to send to: no curl, no threads) or on error (err set). */
static struct notifier *notifier_new(const struct regfs_config *cfg, struct regfs_err *err)
{
	struct notifier *nt = calloc(1, sizeof *nt);
	if (!nt) {
		regfs_errf(err, -ENOMEM, "notifications: out of memory");
		return NULL;
	}
	if (regfs_http_init(&nt->http, err) != 0) {
		free(nt);
		return NULL;
	}
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* a reload waiting to swap the set must not starve behind requests */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&nt->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	uuid4(nt->instance_id);
	source_addr(nt, cfg->http_addr);
	nt->set = set_new(nt, cfg);
	if (!nt->set) {
		regfs_http_cleanup(&nt->http);
		pthread_rwlock_destroy(&nt->lock);
		free(nt);
		regfs_errf(err, -ENOMEM, "notifications: out of memory");
		return NULL;
	}
	set_start(nt->set);
	return nt;
}

int notify_open(struct registry *r, struct regfs_err *err)
{
	r->nt = NULL;
	if (r->cfg->n_endpoints == 0)
		return 0;
	struct notifier *nt = notifier_new(r->cfg, err);
	if (!nt)
		return err && err->code ? err->code : -ENOMEM;
	__atomic_store_n(&r->nt, nt, __ATOMIC_RELEASE);
	return 0;
}

int notify_reload(struct registry *r, const struct regfs_config *cfg, struct regfs_err *err)
{
	if (!r->nt) {
		if (cfg->n_endpoints == 0)
			return 0;
		struct notifier *nt = notifier_new(cfg, err);
		if (!nt)
			return err && err->code ? err->code : -ENOMEM;
		__atomic_store_n(&r->nt, nt, __ATOMIC_RELEASE);
		return 0;
	}
	struct notifier *nt = r->nt;
	struct nt_set *s = set_new(nt, cfg);
	if (!s)
		return regfs_errf(err, -ENOMEM, "notifications: out of memory; endpoints unchanged");
	pthread_rwlock_wrlock(&nt->lock);
	struct nt_set *old = nt->set;
	nt->set = s;
	pthread_rwlock_unlock(&nt->lock);
	for (int i = 0; i < old->n; i++)
		ep_stop(old->ep[i]);
	set_transfer(old, s);
	set_free(old, "endpoint removed by a configuration reload");
	set_start(s);
	log_info("notifications: %d endpoints after reload", s->n);
	return 0;
}

void notify_close(struct registry *r)
{
	struct notifier *nt = r->nt;
	if (!nt)
		return;
	set_free(nt->set, "the registry is stopping");
	regfs_http_cleanup(&nt->http);
	pthread_rwlock_destroy(&nt->lock);
	free(nt);
	r->nt = NULL;
}
