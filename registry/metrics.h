/* metrics.h — regfs-registry's counters, served as Prometheus text on the
 * debug listener (debug.h, http.debug.prometheus). Process-wide: every
 * function is thread-safe and lock-free (relaxed atomics), cheap enough for
 * the hot path of every request.
 *
 * Names follow distribution (registry:2) where it has one:
 *   registry_http_requests_total{method,code,handler}          counter
 *   registry_http_request_duration_seconds{handler}            histogram
 *   registry_http_response_size_bytes{handler}                 histogram
 *   registry_storage_action_seconds{driver,action}             histogram
 * and ours (docs/registry.md, "Metrics", lists them all):
 *   regfs_http_uploads_in_flight                               gauge
 *   regfs_http_received_bytes_total / regfs_http_sent_bytes_total
 *   and one counter per enum metrics_counter below.
 * handler is the route ("base", "manifest", "blob", "blob_upload",
 * "blob_upload_chunk", "tags", "catalog", "referrers", …). */
#ifndef REGFS_METRICS_H
#define REGFS_METRICS_H

#include <stdint.h>

#include <regfs/dynbuf.h>

#include "route.h"

/* Plain counters other modules bump with metrics_count. A new one is a row
 * here and its name and help in metrics.c's table. */
enum metrics_counter {
	METRICS_GC_RUNS,              /* regfs_gc_runs_total: online GC runs finished */
	METRICS_GC_FAILED,            /* regfs_gc_failures_total: online GC runs failed */
	METRICS_GC_BLOBS_SWEPT,       /* regfs_gc_blobs_swept_total */
	METRICS_GC_BYTES_FREED,       /* regfs_gc_freed_bytes_total */
	METRICS_LAYER_INDEXES_BUILT,  /* regfs_layer_indexes_built_total */
	METRICS_AUTH_FAILURES,        /* regfs_auth_failures_total */
	METRICS_NOTIFY_SENT,          /* regfs_notifications_sent_total: events delivered */
	METRICS_NOTIFY_DROPPED,       /* regfs_notifications_dropped_total: queue full */
	METRICS_NOTIFY_FAILED,        /* regfs_notifications_failed_posts_total */
	METRICS__COUNT
};

/* Adds n to a counter. */
void metrics_count(enum metrics_counter c, uint64_t n);

/* One answered request: its route, method, status, response body bytes
 * and time taken (µs). */
void metrics_request(enum route_kind k, enum http_method m, unsigned status, uint64_t bytes,
		     uint64_t us);

/* Request body bytes taken in (uploads, manifest PUTs). */
void metrics_received(uint64_t n);

/* An upload request (POST/PATCH/PUT with a body under /blobs/uploads/)
 * begins (+1) or ends (-1). */
void metrics_uploads_in_flight(int delta);

/* The storage timing hook (regfs_storage_set_timing). */
void metrics_storage_action(const char *driver, const char *action, uint64_t us);

/* Gauges computed by another module at each scrape (the storage accounting,
 * usage.h): `render` appends its series to b and returns 0 or a dynbuf
 * error. One provider; NULL removes it. */
void metrics_set_gauges(int (*render)(void *ud, struct dynbuf *b), void *ud);

/* Appends the Prometheus text exposition (format 0.0.4) of every metric
 * to b. 0, or -ENOMEM / -E2BIG from the dynbuf. */
int metrics_render(struct dynbuf *b);

#endif
