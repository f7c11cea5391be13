/* proxy_spool.h — a spool: one file that one writer fills (a blob arriving
 * from an upstream) while any number of readers read it as it grows.
 *
 * The file lives in a private directory (regfs.proxycache.spooldir) and is
 * unlinked as soon as it is created: the spool's descriptor is the only way
 * to it, so a crash leaves nothing behind and nobody else can write it.
 *
 * States: FILLING (the writer appends), DONE (every byte is there; the size
 * is final), FAILED (the writer gave up: readers get an error for any byte
 * they have not read yet, never a short success). The total size may be
 * known before the bytes (an upstream's Content-Length): then DONE is only
 * reached with exactly that many bytes (spool_finish fails the spool
 * otherwise).
 *
 * Lifetime: reference counted. spool_new returns one reference; whoever
 * keeps a pointer (the fetch, every reader) takes one with spool_ref and
 * drops it with spool_unref; the last drop closes the file.
 *
 * Threading: one writer thread, any number of reader threads; every function
 * is thread-safe. Readers either block (bounded by their timeout) on a
 * condition variable the writer broadcasts after each append and state
 * change, or do not wait at all (timeout 0) and queue a waiter
 * (spool_watch) that the writer wakes: an event-driven server (the HTTP
 * server's suspended connections) waits for a spool without a thread.
 *
 * Pure: no registry, no HTTP; tests/unit/test_proxy_spool.c drives it. */
#ifndef REGFS_PROXY_SPOOL_H
#define REGFS_PROXY_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <regfs/err.h>

struct spool;

enum spool_state { SPOOL_FILLING, SPOOL_DONE, SPOOL_FAILED };

/* Creates an empty FILLING spool: a file in `dir` (the directory is created
 * 0700 when missing), unlinked at once. One reference for the caller.
 * 0, or -errno with err naming the directory. */
int spool_new(const char *dir, struct spool **out, struct regfs_err *err);
/* Creates `dir` (0700) when missing and checks it is a directory of this
 * user that others cannot reach: 0, or -errno with err naming it. */
int spool_dir_check(const char *dir, struct regfs_err *err);
void spool_ref(struct spool *s);
void spool_unref(struct spool *s); /* NULL-safe; the last one frees */

/* ---- the writer ---- */
/* The total size, when known before the bytes (call before the first
 * append). A spool already holding more fails. */
void spool_set_size(struct spool *s, uint64_t total);
/* Appends n bytes and wakes the readers. -EFBIG (and the spool fails) past
 * a known total; -errno of the write (the spool fails) with err set. */
int spool_append(struct spool *s, const void *buf, size_t n, struct regfs_err *err);
/* Every byte is there: DONE, and the size becomes final. When a total was
 * set and the bytes differ, the spool FAILS instead and -EIO is returned. */
int spool_finish(struct spool *s);
/* The writer gave up (code: a negative errno readers get): FAILED. A spool
 * already DONE stays DONE. */
void spool_fail(struct spool *s, int code);

/* ---- readers ---- */
/* Waits until the total size is known (set, or DONE) and returns 0 with it,
 * -EIO (or the failure's code) when the spool failed, -ETIMEDOUT after
 * timeout_ms without it and without a byte arriving; with timeout_ms 0 it
 * does not wait: -EAGAIN when the size is not known yet. */
int spool_wait_size(struct spool *s, int timeout_ms, uint64_t *total);
/* Reads up to len bytes at off, waiting until at least one byte at off is
 * there. Returns the count (> 0; fewer than len when fewer are there yet),
 * 0 when the spool is DONE and off is at or past its end, the failure's
 * code (< 0) once it FAILED (whatever bytes it holds), -ETIMEDOUT
 * when no byte arrived for timeout_ms (with timeout_ms 0: -EAGAIN at once
 * when no byte at off is there yet), or -errno of the read. With a known
 * total the last byte is held back until DONE (the writer verifies the
 * whole first), so no reader ends a full-length read of a blob that then
 * fails. */
ssize_t spool_read(struct spool *s, uint64_t off, void *buf, size_t len, int timeout_ms);

/* A reader's wait without a thread. The waiter belongs to the caller (it
 * must stay valid while queued); the spool links it. */
struct spool_waiter {
	/* Called once by spool_watch, with the spool's lock held, when the
	 * waiter is queued: whatever must happen before a wake may come (the
	 * HTTP server suspends the connection). Must not call the spool. */
	void (*park)(void *arg);
	/* Called once after park, by the thread whose append, size or state
	 * change made the spool worth reading again (the writer, or whoever
	 * fails it), without the spool's lock; the waiter is no longer queued
	 * and the spool no longer touches it. May free the waiter. */
	void (*wake)(void *arg);
	void *arg;
	struct spool_waiter *next; /* the spool's */
	bool queued;               /* the spool's */
};

/* What spool_watch waits for: the total size (SPOOL_WATCH_SIZE), or a byte
 * at this offset. */
#define SPOOL_WATCH_SIZE UINT64_MAX

/* 1 when what `want` asks is there already (or the spool ended): read it
 * (spool_read / spool_wait_size with timeout 0 give it without waiting);
 * nothing is queued. Else 0: w->park(w->arg) ran under the spool's lock and
 * w is queued until the next append, size or state change, which calls
 * w->wake(w->arg) once. A waiter is queued on one spool at a time. */
int spool_watch(struct spool *s, uint64_t want, struct spool_waiter *w);
/* Dequeues w if it is still queued (a reader going away before its wake):
 * true when it was (its wake will not come), false when the wake came or
 * is under way. */
bool spool_unwatch(struct spool *s, struct spool_waiter *w);

/* The state and the bytes written so far (a snapshot). */
enum spool_state spool_state(struct spool *s, uint64_t *filled);

#endif
