/* notify.h — registry:2's notifications: push, pull and delete events POSTed
 * to the `notifications.endpoints` of the configuration as
 * application/vnd.docker.distribution.events.v2+json envelopes
 * ({"events": [...]}, the reference's fields).
 *
 * A request never waits for an endpoint: notify_emit builds the event, and
 * for each endpoint that does not ignore it (ignoredmediatypes,
 * ignore.mediatypes, ignore.actions) appends a copy to that endpoint's
 * bounded in-memory queue (NOTIFY_QUEUE_MAX events) under a short lock. When
 * the queue is full the event is dropped, counted and logged once per burst.
 * One sender thread per endpoint POSTs what is queued (up to
 * NOTIFY_BATCH_MAX events per envelope) with the endpoint's headers and
 * `timeout`; after a failure it waits `backoff` and sends the same events
 * again; after `threshold` failures in a row the endpoint is logged as down,
 * and as up again when a POST succeeds. Events still queued when the
 * registry stops are lost (logged with their count): delivery is best
 * effort, as in the reference, whose queues live in memory too.
 *
 * Events (as registry:2): manifest GET → pull; manifest PUT → push (tag set
 * when pushed by tag); blob GET → pull, blob upload finished → push, blob
 * mounted from another repository → mount (mediaType application/octet-stream
 * for blobs); manifest DELETE → delete (repository, digest); tag DELETE →
 * delete (repository, tag); blob DELETE → delete. HEAD requests send nothing:
 * a pushing client HEADs every blob it might skip, which is no pull.
 *
 * Threads: notify_emit is safe from any thread. notify_open, notify_reload
 * and notify_close are called by the thread that owns the registry's
 * lifecycle (start, SIGHUP, stop), never concurrently with each other. */
#ifndef REGFS_NOTIFY_H
#define REGFS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <regfs/config.h>
#include <regfs/err.h>

#define NOTIFY_QUEUE_MAX 1024  /* events waiting per endpoint */
#define NOTIFY_BATCH_MAX 32    /* events per POST */

struct registry;
struct request;
struct notifier;

/* What an event is about. NULL fields are left out of the event. */
struct notify_target {
	const char *action;      /* "push", "pull", "delete", "mount" */
	const char *media_type;
	const char *digest;      /* with size and length */
	uint64_t size;
	const char *tag;
	bool blob;               /* url names .../blobs/<digest>, else .../manifests/ */
};

/* Starts r->nt from r->cfg's endpoints (one sender thread each; none when
 * there are none). Call after the signal mask is set: the threads inherit it.
 * 0, or -ENOMEM / -EIO (curl) with err saying why; r->nt is NULL then. */
int notify_open(struct registry *r, struct regfs_err *err);

/* Replaces the endpoints by `cfg`'s (copied: `cfg` need not outlive the
 * call). Events emitted meanwhile are queued for the new endpoints; events
 * still queued for an endpoint of the same name move to its replacement, the
 * others are dropped with a log line. 0 or -ENOMEM (the old endpoints stay). */
int notify_reload(struct registry *r, const struct regfs_config *cfg, struct regfs_err *err);

/* Stops the sender threads (each finishes its POST in flight, bounded by
 * `timeout`) and frees r->nt. NULL r->nt is fine. */
void notify_close(struct registry *r);

/* Counters summed over the current endpoints, for metrics: events sent
 * (acknowledged by the endpoint), dropped (queue full or out of memory),
 * waiting in the queues, and failed POSTs. All 0 without endpoints. */
struct notify_stats {
	uint64_t sent, dropped, queued, failed_posts;
};
void notify_get_stats(struct registry *r, struct notify_stats *out);

/* Queues the event `t` about request `q` (repository q->rt.name) for every
 * endpoint that wants it. Never blocks on the network; cannot fail (a lack
 * of memory drops the event, counted like an overflow). */
void notify_emit(struct registry *r, const struct request *q, const struct notify_target *t);

#endif
