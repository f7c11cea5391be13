/* metrics.c — see metrics.h. Every counter is a relaxed atomic in static
 * storage: an update is a few atomic adds and no lock; metrics_render reads
 * them one by one, so a scrape racing a request may see its count before its
 * duration (Prometheus tolerates that, every value is monotonic). */
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef _Atomic uint64_t counter;

/* Bucket upper bounds. Durations: Prometheus' defaults (as distribution),
 * in µs. Sizes: 100 B to 1 GB, ×10. */
static const uint64_t dur_le_us[] = {5000, 10000, 25000, 50000, 100000, 250000,
				     500000, 1000000, 2500000, 5000000, 10000000};
static const char *const dur_le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
				     "0.5", "1", "2.5", "5", "10"};
#define NDUR (sizeof dur_le_us / sizeof dur_le_us[0])
static const uint64_t size_le[] = {100, 1000, 10000, 100000, 1000000, 10000000,
				   100000000, 1000000000};
#define NSIZE (sizeof size_le / sizeof size_le[0])

struct histo_dur { counter b[NDUR + 1]; counter sum_us; };
struct histo_size { counter b[NSIZE + 1]; counter sum; };

#define CODES 500 /* statuses 100..599 */
static counter g_requests[R__COUNT][HTTP__COUNT][CODES];
static struct histo_dur g_dur[R__COUNT];
static struct histo_size g_size[R__COUNT];
static counter g_received;
static _Atomic int64_t g_uploads;
static counter g_counters[METRICS__COUNT];

/* metrics_set_gauges; a scrape reads both under gauges_lock */
static pthread_mutex_t gauges_lock = PTHREAD_MUTEX_INITIALIZER;
static int (*g_gauges)(void *ud, struct dynbuf *b);
static void *g_gauges_ud;

static const char *const actions[] = {"GetContent", "PutContent", "Reader", "Writer", "Stat",
				      "List", "Move", "Delete", "RedirectURL", "OpenFd", "Health"};
#define NACT (sizeof actions / sizeof actions[0])
static struct histo_dur g_storage[NACT];
static _Atomic(const char *) g_driver;

static const char *const handler_names[R__COUNT] = {
	[R_NOT_FOUND] = "not_found", [R_BASE] = "base", [R_CATALOG] = "catalog",
	[R_BULK_TAGS] = "bulk_tags", [R_TAGS] = "tags", [R_MANIFEST] = "manifest",
	[R_BLOB] = "blob", [R_UPLOAD_START] = "blob_upload", [R_UPLOAD] = "blob_upload_chunk",
	[R_REFERRERS] = "referrers", [R_REPO_MANIFESTS] = "repo_manifests",
	[R_BULK_MANIFESTS] = "bulk_manifests", [R_USAGE] = "usage",
};
static const char *const method_names[HTTP__COUNT] = {"GET", "HEAD", "PUT", "POST", "PATCH",
						      "DELETE", "OTHER"};

static const struct { const char *name, *help; } counter_info[METRICS__COUNT] = {
	[METRICS_GC_RUNS] = {"regfs_gc_runs_total", "Online garbage collection runs finished."},
	[METRICS_GC_FAILED] = {"regfs_gc_failures_total", "Online garbage collection runs that failed."},
	[METRICS_GC_BLOBS_SWEPT] = {"regfs_gc_blobs_swept_total", "Blobs removed by online garbage collection."},
	[METRICS_GC_BYTES_FREED] = {"regfs_gc_freed_bytes_total", "Bytes freed by online garbage collection."},
	[METRICS_LAYER_INDEXES_BUILT] = {"regfs_layer_indexes_built_total", "Layer indexes built."},
	[METRICS_AUTH_FAILURES] = {"regfs_auth_failures_total", "Requests refused for bad or missing credentials."},
	[METRICS_NOTIFY_SENT] = {"regfs_notifications_sent_total", "Notification events delivered to an endpoint."},
	[METRICS_NOTIFY_DROPPED] = {"regfs_notifications_dropped_total", "Notification events dropped (an endpoint's queue was full)."},
	[METRICS_NOTIFY_FAILED] = {"regfs_notifications_failed_posts_total", "Notification POSTs that failed (retried after backoff)."},
};

static inline void add(counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t get(counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void observe_dur(struct histo_dur *h, uint64_t us)
{
	size_t i = 0;
	while (i < NDUR && us > dur_le_us[i])
		i++;
	add(&h->b[i], 1);
	add(&h->sum_us, us);
}

void metrics_count(enum metrics_counter c, uint64_t n)
{
	if ((unsigned)c < METRICS__COUNT)
		add(&g_counters[c], n);
}

void metrics_request(enum route_kind k, enum http_method m, unsigned status, uint64_t bytes,
		     uint64_t us)
{
	if ((unsigned)k >= R__COUNT || (unsigned)m >= HTTP__COUNT || status < 100 || status > 599)
		return;
	add(&g_requests[k][m][status - 100], 1);
	observe_dur(&g_dur[k], us);
	size_t i = 0;
	while (i < NSIZE && bytes > size_le[i])
		i++;
	add(&g_size[k].b[i], 1);
	add(&g_size[k].sum, bytes); /* also the sent total: summed at render, one add less here */
}

void metrics_received(uint64_t n)
{
	add(&g_received, n);
}

void metrics_uploads_in_flight(int delta)
{
	atomic_fetch_add_explicit(&g_uploads, delta, memory_order_relaxed);
}

void metrics_storage_action(const char *driver, const char *action, uint64_t us)
{
	for (size_t i = 0; i < NACT; i++) {
		if (actions[i] == action || !strcmp(actions[i], action)) {
			if (!atomic_load_explicit(&g_driver, memory_order_relaxed))
				atomic_store(&g_driver, driver);
			observe_dur(&g_storage[i], us);
			return;
		}
	}
}

/* ---- rendering ---- */

static int head(struct dynbuf *b, const char *name, const char *type, const char *help)
{
	return dynbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series: `labels` is the label set without braces. */
static int render_dur(struct dynbuf *b, const char *name, const char *labels,
		      struct histo_dur *h)
{
	uint64_t cum = 0;
	int rc = 0;
	for (size_t i = 0; i < NDUR && !rc; i++) {
		cum += get(&h->b[i]);
		rc = dynbuf_printf(b, "%s_bucket{%s,le=\"%s\"} %llu\n", name, labels, dur_le[i],
				   (unsigned long long)cum);
	}
	cum += get(&h->b[NDUR]);
	uint64_t s = get(&h->sum_us);
	return rc ? rc : dynbuf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %llu.%06llu\n"
				       "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum,
				       name, labels, (unsigned long long)(s / 1000000),
				       (unsigned long long)(s % 1000000), name, labels,
				       (unsigned long long)cum);
}

static int render_size(struct dynbuf *b, const char *labels, struct histo_size *h)
{
	const char *name = "registry_http_response_size_bytes";
	uint64_t cum = 0;
	int rc = 0;
	for (size_t i = 0; i < NSIZE && !rc; i++) {
		cum += get(&h->b[i]);
		rc = dynbuf_printf(b, "%s_bucket{%s,le=\"%llu\"} %llu\n", name, labels,
				   (unsigned long long)size_le[i], (unsigned long long)cum);
	}
	cum += get(&h->b[NSIZE]);
	return rc ? rc : dynbuf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %llu\n"
				       "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum,
				       name, labels, (unsigned long long)get(&h->sum), name, labels,
				       (unsigned long long)cum);
}

/* true when the handler answered at least one request (its series shown) */
static bool handler_used(enum route_kind k)
{
	for (size_t i = 0; i <= NDUR; i++)
		if (get(&g_dur[k].b[i]))
			return true;
	return false;
}

static int render_requests(struct dynbuf *b)
{
	int rc = head(b, "registry_http_requests_total", "counter",
		      "Total number of HTTP requests made, by method, status code and handler.");
	for (int k = 0; k < R__COUNT && !rc; k++)
		for (int m = 0; m < HTTP__COUNT && !rc; m++)
			for (int c = 0; c < CODES && !rc; c++) {
				uint64_t n = get(&g_requests[k][m][c]);
				if (n)
					rc = dynbuf_printf(b, "registry_http_requests_total{code=\"%d\","
							   "handler=\"%s\",method=\"%s\"} %llu\n",
							   c + 100, handler_names[k], method_names[m],
							   (unsigned long long)n);
			}
	return rc;
}

static int render_http_histograms(struct dynbuf *b)
{
	char labels[64];
	int rc = head(b, "registry_http_request_duration_seconds", "histogram",
		      "The HTTP request latencies in seconds, by handler.");
	for (int k = 0; k < R__COUNT && !rc; k++) {
		if (!handler_used((enum route_kind)k))
			continue;
		snprintf(labels, sizeof labels, "handler=\"%s\"", handler_names[k]);
		rc = render_dur(b, "registry_http_request_duration_seconds", labels, &g_dur[k]);
	}
	rc = rc ? rc : head(b, "registry_http_response_size_bytes", "histogram",
			    "The HTTP response body sizes in bytes, by handler.");
	for (int k = 0; k < R__COUNT && !rc; k++) {
		if (!handler_used((enum route_kind)k))
			continue;
		snprintf(labels, sizeof labels, "handler=\"%s\"", handler_names[k]);
		rc = render_size(b, labels, &g_size[k]);
	}
	return rc;
}

static int render_storage(struct dynbuf *b)
{
	const char *driver = atomic_load(&g_driver);
	int rc = head(b, "registry_storage_action_seconds", "histogram",
		      "The number of seconds that the storage action takes, by driver and action.");
	char labels[96];
	for (size_t i = 0; i < NACT && !rc && driver; i++) {
		uint64_t n = 0;
		for (size_t j = 0; j <= NDUR; j++)
			n += get(&g_storage[i].b[j]);
		if (!n)
			continue;
		snprintf(labels, sizeof labels, "action=\"%s\",driver=\"%s\"", actions[i], driver);
		rc = render_dur(b, "registry_storage_action_seconds", labels, &g_storage[i]);
	}
	return rc;
}

static int render_ours(struct dynbuf *b)
{
	int rc = head(b, "regfs_http_uploads_in_flight", "gauge",
		      "Blob upload requests (POST, PATCH, PUT with a body) being received.");
	rc = rc ? rc : dynbuf_printf(b, "regfs_http_uploads_in_flight %lld\n",
				     (long long)atomic_load(&g_uploads));
	rc = rc ? rc : head(b, "regfs_http_received_bytes_total", "counter",
			    "Request body bytes received (uploads, manifests).");
	rc = rc ? rc : dynbuf_printf(b, "regfs_http_received_bytes_total %llu\n",
				     (unsigned long long)get(&g_received));
	rc = rc ? rc : head(b, "regfs_http_sent_bytes_total", "counter",
			    "Response body bytes sent.");
	uint64_t sent = 0;
	for (int k = 0; k < R__COUNT; k++)
		sent += get(&g_size[k].sum);
	rc = rc ? rc : dynbuf_printf(b, "regfs_http_sent_bytes_total %llu\n",
				     (unsigned long long)sent);
	for (int i = 0; i < METRICS__COUNT && !rc; i++) {
		rc = head(b, counter_info[i].name, "counter", counter_info[i].help);
		rc = rc ? rc : dynbuf_printf(b, "%s %llu\n", counter_info[i].name,
					     (unsigned long long)get(&g_counters[i]));
	}
	return rc;
}

void metrics_set_gauges(int (*render)(void *ud, struct dynbuf *b), void *ud)
{
	pthread_mutex_lock(&gauges_lock);
	g_gauges = render;
	g_gauges_ud = ud;
	pthread_mutex_unlock(&gauges_lock);
}

int metrics_render(struct dynbuf *b)
{
	int rc = render_requests(b);
	rc = rc ? rc : render_http_histograms(b);
	rc = rc ? rc : render_storage(b);
	rc = rc ? rc : render_ours(b);
	/* held while rendering: usage_free removes the provider before freeing */
	pthread_mutex_lock(&gauges_lock);
	if (!rc && g_gauges)
		rc = g_gauges(g_gauges_ud, b);
	pthread_mutex_unlock(&gauges_lock);
	return rc;
}
