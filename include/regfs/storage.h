/* storage.h — the storage-driver interface (distribution's StorageDriver).
 *
 * A driver stores opaque objects under "/"-separated paths relative to its
 * root (e.g. "/docker/registry/v2/blobs/sha256/ab/ab…/data"); the driver adds
 * its own root (a directory, or a bucket + prefix). Paths always start with
 * "/" and never contain "." or ".." components (callers build them through
 * layout.h; drivers still reject anything else with -EINVAL).
 *
 * The registry, garbage collection and tests speak only to this interface and
 * to layout.h. Drivers: filesystem (storage_fs.c) and S3 (storage_s3.c).
 *
 * All functions are thread-safe for concurrent calls on different paths and
 * for concurrent readers of the same path. Errors: -ENOENT (path missing),
 * -EIO (backend failed; message names the backend and what to do),
 * -EACCES (backend refused credentials), -EINVAL (bad path), -ENOMEM,
 * -EBUSY (a writer's path is locked by another writer). */
#ifndef REGFS_STORAGE_H
#define REGFS_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <regfs/err.h>

struct regfs_config;

struct regfs_stat_info {
	uint64_t size;   /* bytes; 0 for directories */
	int64_t mtime;   /* seconds since the epoch */
	bool is_dir;
};

/* Called once per immediate child of a listed directory, with its full path.
 * Return non-zero to stop the listing early (list() then returns 0). */
typedef int (*regfs_list_cb)(const char *path, void *ud);

/* A sequential reader from an offset. */
struct regfs_reader {
	/* Reads up to len bytes; returns bytes read (0 at end) or negative errno. */
	ssize_t (*read)(struct regfs_reader *r, void *buf, size_t len, struct regfs_err *err);
	void (*close)(struct regfs_reader *r);
};

/* An append-only writer (distribution's FileWriter). Data written becomes
 * visible at `path` only after commit(); a writer can be reopened with
 * append=true to continue after a process restart, on any instance sharing
 * the storage.
 *
 * Session lock: a writer holds its path exclusively from open to close, for
 * every process and instance sharing the storage (filesystem: an OFD lock on
 * the file, released by the kernel when its holder dies; S3: a lease object
 * "<key>.lock" created with If-None-Match, renewed while writing and taken
 * over only once expired). A second writer on the same path gets -EBUSY.
 * On S3 only append=true takes the lease: append=false (a new object) is
 * for a fresh path nobody else knows yet, such as a new upload's.
 * Opening with append=true never creates the object (-ENOENT when it is
 * gone): a session deleted or published while a request waited is never
 * brought back by that request. */
struct regfs_writer {
	ssize_t (*write)(struct regfs_writer *w, const void *buf, size_t len, struct regfs_err *err);
	uint64_t (*size)(struct regfs_writer *w);  /* total bytes including earlier sessions */
	int (*commit)(struct regfs_writer *w, struct regfs_err *err); /* durable, visible */
	int (*cancel)(struct regfs_writer *w, struct regfs_err *err); /* drop all data */
	/* After commit(), still holding the lock: makes exactly the committed
	 * bytes visible at `dst` if, and only if, nothing is there yet.
	 * 0: published (the writer's path is gone). -EEXIST: `dst` exists and
	 * was not touched; the data stays at the writer's path for the caller to
	 * delete. Nothing else ever writes the published object: on the
	 * filesystem it is a rename (renameat2 RENAME_NOREPLACE, or link+unlink)
	 * of a file only this writer could write; on S3 a server-side copy pinned
	 * to the committed object's ETag, after a HEAD of `dst` (S3 servers
	 * without If-None-Match on copies leave a window in which a concurrent
	 * publish of the same bytes replaces the object with an identical copy). */
	int (*publish)(struct regfs_writer *w, const char *dst, struct regfs_err *err);
	/* Close without commit: what was written so far stays resumable (append).
	 * Releases the lock. Frees w. -ENOENT when the object was deleted while
	 * the writer was open (its data went nowhere). */
	int (*close)(struct regfs_writer *w, struct regfs_err *err);
};

struct regfs_storage;

struct regfs_storage_ops {
	const char *name; /* "filesystem", "s3" */
	/* Whole-object read (small objects: links, manifests). *data is malloc'd
	 * (NUL-terminated for convenience, *len excludes the NUL); caller frees. */
	int (*get)(struct regfs_storage *s, const char *path, char **data, size_t *len,
		   struct regfs_err *err);
	/* Whole-object atomic write: readers see the old or the new content. */
	int (*put)(struct regfs_storage *s, const char *path, const void *data, size_t len,
		   struct regfs_err *err);
	int (*reader)(struct regfs_storage *s, const char *path, uint64_t offset,
		      struct regfs_reader **out, struct regfs_err *err);
	int (*writer)(struct regfs_storage *s, const char *path, bool append,
		      struct regfs_writer **out, struct regfs_err *err);
	int (*stat)(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
		    struct regfs_err *err);
	/* Immediate children of a directory (order unspecified). -ENOENT if missing. */
	int (*list)(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		    struct regfs_err *err);
	/* Atomic rename of an object; overwrites dst (never use it for blobs:
	 * uploads publish through their writer, see publish above). */
	int (*move)(struct regfs_storage *s, const char *src, const char *dst,
		    struct regfs_err *err);
	/* Deletes an object or a whole subtree. -ENOENT if nothing was there. */
	int (*del)(struct regfs_storage *s, const char *path, struct regfs_err *err);
	/* A URL a client can GET the object from directly (S3 presigned), valid for
	 * `expires_s`. -ENOTSUP when the driver has none. *url malloc'd. */
	int (*url_for)(struct regfs_storage *s, const char *path, int expires_s, char **url,
		       struct regfs_err *err);
	/* Optional (may be NULL): an open read-only fd for sendfile. */
	int (*open_fd)(struct regfs_storage *s, const char *path, int *fd, uint64_t *size,
		       struct regfs_err *err);
	/* Optional: a cheap check that the backend answers (health). */
	int (*health)(struct regfs_storage *s, struct regfs_err *err);
	void (*free)(struct regfs_storage *s);
};

/* Every driver's struct starts with this header. */
struct regfs_storage {
	const struct regfs_storage_ops *ops;
};

/* Opens the driver the config selects (storage.filesystem or storage.s3). */
int regfs_storage_open(const struct regfs_config *cfg, struct regfs_storage **out,
		       struct regfs_err *err);

/* Constructors. rootdir is created if missing. */
int regfs_storage_fs_new(const char *rootdir, struct regfs_storage **out, struct regfs_err *err);
struct regfs_s3_config;
int regfs_storage_s3_new(const struct regfs_s3_config *cfg, struct regfs_storage **out,
			 struct regfs_err *err);

/* Convenience wrappers (NULL-safe err). */
static inline int regfs_storage_get(struct regfs_storage *s, const char *p, char **d, size_t *l,
				    struct regfs_err *e) { return s->ops->get(s, p, d, l, e); }
static inline int regfs_storage_put(struct regfs_storage *s, const char *p, const void *d,
				    size_t l, struct regfs_err *e) { return s->ops->put(s, p, d, l, e); }
static inline int regfs_storage_stat(struct regfs_storage *s, const char *p,
				     struct regfs_stat_info *st, struct regfs_err *e)
{ return s->ops->stat(s, p, st, e); }
static inline int regfs_storage_list(struct regfs_storage *s, const char *p, regfs_list_cb cb,
				     void *ud, struct regfs_err *e) { return s->ops->list(s, p, cb, ud, e); }
static inline int regfs_storage_move(struct regfs_storage *s, const char *a, const char *b,
				     struct regfs_err *e) { return s->ops->move(s, a, b, e); }
static inline int regfs_storage_del(struct regfs_storage *s, const char *p, struct regfs_err *e)
{ return s->ops->del(s, p, e); }
static inline void regfs_storage_free(struct regfs_storage *s) { if (s) s->ops->free(s); }

#endif
