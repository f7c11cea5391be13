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
 * is thread-safe. Readers block (bounded by their timeout) on a condition
 * variable the writer broadcasts after each append and state change.
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
 * timeout_ms without it and without a byte arriving. */
int spool_wait_size(struct spool *s, int timeout_ms, uint64_t *total);
/* Reads up to len bytes at off, waiting until at least one byte at off is
 * there. Returns the count (> 0; fewer than len when fewer are there yet),
 * 0 when the spool is DONE and off is at or past its end, the failure's
 * code (< 0) once it FAILED (whatever bytes it holds), -ETIMEDOUT
 * when no byte arrived for timeout_ms, or -errno of the read. With a known
 * total the last byte is held back until DONE (the writer verifies the
 * whole first), so no reader ends a full-length read of a blob that then
 * fails. */
ssize_t spool_read(struct spool *s, uint64_t off, void *buf, size_t len, int timeout_ms);

/* The state and the bytes written so far (a snapshot). */
enum spool_state spool_state(struct spool *s, uint64_t *filled);

#endif
