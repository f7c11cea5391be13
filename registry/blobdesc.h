/* blobdesc.h — the blob descriptor cache (registry:2's
 * storage.cache.blobdescriptor: inmemory).
 *
 * Remembers positive answers only: "repository R links digest D" and
 * "digest D's data is N bytes", so a blob GET or HEAD skips the storage
 * requests that found them (on S3, a HEAD each). A missing answer is never
 * cached: absence is always asked of the storage.
 *
 * Bounded: a fixed number of slots chosen at creation; a new entry replaces
 * whatever shared its slot. Fresh for `ttl_ms`: an older entry reads as
 * absent, so the caller asks the storage again. That bound is what limits a
 * stale answer when another process (another instance on the same bucket,
 * offline garbage-collect) removes a link or a blob; in this process every
 * path that removes one calls blobdesc_forget_link() or blobdesc_forget_blob()
 * right after the storage delete. (A lookup that read the link just before
 * a concurrent delete may note it just after the forget: that entry too is
 * bounded by ttl_ms.)
 *
 * Thread-safe (one mutex). Every function accepts bd == NULL (the cache off):
 * lookups miss, notes and forgets do nothing. */
#ifndef REGFS_REGISTRY_BLOBDESC_H
#define REGFS_REGISTRY_BLOBDESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blobdesc;

/* slots > 0, ttl_ms >= 0 (0: every entry is stale at once). NULL on ENOMEM.
 * Memory: slots * (32 bytes + the key, repository name + digest). */
struct blobdesc *blobdesc_new(size_t slots, int64_t ttl_ms);
void blobdesc_free(struct blobdesc *bd); /* NULL-safe */

/* Tests: the clock entries are timed by (milliseconds, monotonic); NULL
 * restores CLOCK_MONOTONIC. */
void blobdesc_set_clock(struct blobdesc *bd, int64_t (*now_ms)(void));

/* Does `repo` link `digest` (a fresh positive entry)? */
bool blobdesc_linked(struct blobdesc *bd, const char *repo, const char *digest);
void blobdesc_note_linked(struct blobdesc *bd, const char *repo, const char *digest);
/* The size of `digest`'s data (a fresh entry): true and *size set. */
bool blobdesc_size(struct blobdesc *bd, const char *digest, uint64_t *size);
void blobdesc_note_size(struct blobdesc *bd, const char *digest, uint64_t size);

/* After a push linked `digest` into `repo`: the link, and the size when
 * the caller published the data itself (size non-NULL; a blob that was
 * already stored is sized by the next GET or stat instead). */
void blobdesc_note_pushed(struct blobdesc *bd, const char *repo, const char *digest,
			  const uint64_t *size);

/* After a link of `digest` in `repo` was removed (blob DELETE, manifest
 * revision delete, GC's link sweep). */
void blobdesc_forget_link(struct blobdesc *bd, const char *repo, const char *digest);
/* After `digest`'s data was removed (or found missing): its size and every
 * repository's link entry for it. */
void blobdesc_forget_blob(struct blobdesc *bd, const char *digest);
/* Everything (e.g. a whole repository removed). */
void blobdesc_clear(struct blobdesc *bd);

/* The registry's cache from its config (storage.cache.blobdescriptor,
 * storage.cache.blobdescriptorsize) into r->bd: NULL (off) unless
 * "inmemory"; an unknown value is logged and leaves it off. -ENOMEM. */
struct registry;
struct regfs_err;
int blobdesc_open(struct registry *r, struct regfs_err *err);

/* How long a positive entry is believed before the storage is asked again:
 * the bound on a stale answer after another process removes a link. */
#define BLOBDESC_TTL_MS 60000

/* Entries held now, fresh or not (tests, metrics). */
size_t blobdesc_count(struct blobdesc *bd);

#endif
