/* digestset.h — a set of digests, each with the time it was last added: the
 * online GC's notes of recently referenced blobs. Not thread-safe (the
 * registry guards it with gc_lock). */
#ifndef REGFS_DIGESTSET_H
#define REGFS_DIGESTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct digestset;

struct digestset *digestset_new(void);                       /* NULL on ENOMEM */
void digestset_free(struct digestset *s);
int digestset_add(struct digestset *s, const char *digest);  /* 1 added, 0 present, <0 oom */
/* Same, remembering `when` (the latest time wins for an entry already present). */
int digestset_add_at(struct digestset *s, const char *digest, int64_t when);
/* Drops every entry added with a time before `cutoff`. 0 or -ENOMEM (set unchanged). */
int digestset_prune_before(struct digestset *s, int64_t cutoff);
bool digestset_has(const struct digestset *s, const char *digest);
size_t digestset_count(const struct digestset *s);
void digestset_clear(struct digestset *s);

#endif
