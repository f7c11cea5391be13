/* gc.h — garbage collection of blobs (offline command and online runs) and
 * the hooks writers call so that an online run never sweeps a blob they are
 * about to reference (gc.c explains the protocol). */
#ifndef REGFS_GC_H
#define REGFS_GC_H

#include <stdbool.h>
#include <stdint.h>

#include <regfs/err.h>

struct registry;

struct gc_opts {
	bool dry_run;
	bool delete_untagged;
	int64_t delay_s;      /* online GC: keep blobs younger than this (0 offline) */
	bool online;          /* consult r->recent before each delete */
	bool quiet;           /* no stdout (online: log instead) */
};
struct gc_stats {
	uint64_t marked, swept, bytes, manifests_deleted, links_removed;
};
/* One run: mark, delete untagged (if asked), sweep. 0 or a negative errno
 * with err filled; `out` may be NULL. */
int gc_run(struct registry *r, const struct gc_opts *o, struct gc_stats *out,
	   struct regfs_err *err);

/* A writer brackets "note, check, link" with gc_writer_begin/end, and notes
 * every digest it is about to reference. */
void gc_writer_begin(struct registry *r);
void gc_writer_end(struct registry *r);
void gc_note_referenced(struct registry *r, const char *digest);

/* The start of an online run, for every deleter that follows this protocol
 * (gc_run, the pull-through cache's expiry): waits for writers half-way
 * through "note, check, link" (gc_rw for writing), then drops the notes
 * older than `before` (unix s). */
void gc_recent_prune(struct registry *r, int64_t before);

/* Every blob digest under blobs/ (sha256 and sha512), sorted, appended to
 * out (a strvec the caller clears): the sweep's list, and the storage
 * accounting's (usage.c). 0 or a negative errno with err filled. */
struct strvec;
int gc_list_blobs(struct registry *r, struct strvec *out, struct regfs_err *err);

#endif
