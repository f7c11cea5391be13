/* storage.h — the storage-driver interface (distribution's StorageDriver).
 *
 * A driver stores opaque objects under "/"-separated paths relative to its
 * root (e.g. "/docker/registry/v2/blobs/sha256/ab/ab…/data"); the driver adds
 * its own root (a directory, or a bucket + prefix). Paths always start with
 * "/" and never contain empty, "." or ".." components (callers build them
 * through layout.h; the base still rejects anything else with -EINVAL).
 *
 * The registry, garbage collection and tests speak only to the
 * regfs_storage_* functions and to layout.h. Layers:
 *   storage.c   the base: checks paths once, names the driver in every
 *               error, answers -ENOTSUP for optional operations a driver
 *               lacks, then calls the driver's table
 *   fs.c        the filesystem driver
 *   s3*.c       the S3 driver (s3_internal.h lists its files)
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

/* A sequential reader from an offset, from regfs_storage_reader(). The
 * methods are the driver's; callers use regfs_reader_read() and
 * regfs_reader_close() (end of this file). */
struct regfs_reader {
	/* Reads up to len bytes; returns bytes read (0 at end) or negative errno. */
	ssize_t (*read)(struct regfs_reader *r, void *buf, size_t len, struct regfs_err *err);
	void (*close)(struct regfs_reader *r);
	const char *driver; /* set by regfs_storage_reader(): the driver's name */
	/* The object's whole size when the driver learnt it while opening (S3:
	 * from the GET's Content-Range or Content-Length), so a caller needs no
	 * stat beforehand; size_known false otherwise. */
	uint64_t size;
	bool size_known;
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
 * brought back by that request.
 *
 * From regfs_storage_writer(). The methods are the driver's; callers use the
 * regfs_writer_* functions (end of this file). */
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
	const char *driver; /* set by regfs_storage_writer(): the driver's name */
};

struct regfs_storage;

/* What a driver implements. The base layer (storage.c) has already checked
 * every path it passes (see "Paths" below), so a driver handles only its
 * backend. Every operation fills err on failure; the base makes sure the
 * message names the driver. Optional operations may be NULL: the base then
 * answers -ENOTSUP with a message. Callers never use this table: they call
 * the regfs_storage_* functions below. */
struct regfs_storage_ops {
	const char *name; /* "filesystem", "s3" */
	int (*get)(struct regfs_storage *s, const char *path, char **data, size_t *len,
		   struct regfs_err *err);
	int (*put)(struct regfs_storage *s, const char *path, const void *data, size_t len,
		   struct regfs_err *err);
	int (*reader)(struct regfs_storage *s, const char *path, uint64_t offset,
		      struct regfs_reader **out, struct regfs_err *err);
	int (*writer)(struct regfs_storage *s, const char *path, bool append,
		      struct regfs_writer **out, struct regfs_err *err);
	int (*stat)(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
		    struct regfs_err *err);
	/* Optional: stat of a path that can only be an object (see
	 * regfs_storage_stat_object); NULL means stat() answers. */
	int (*stat_object)(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
			   struct regfs_err *err);
	int (*list)(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		    struct regfs_err *err);
	int (*move)(struct regfs_storage *s, const char *src, const char *dst,
		    struct regfs_err *err);
	int (*del)(struct regfs_storage *s, const char *path, struct regfs_err *err);
	/* Optional. */
	int (*url_for)(struct regfs_storage *s, const char *path, int expires_s, char **url,
		       struct regfs_err *err);
	int (*open_fd)(struct regfs_storage *s, const char *path, int *fd, uint64_t *size,
		       struct regfs_err *err);
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

/* ---- the operations (storage.c) ---------------------------------------------
 *
 * Paths: every path must start with "/" and consist of non-empty components
 * other than "." and ".." ("/a//b", "/a/" and "/a/./b" are refused). "/"
 * alone names the root and is accepted only by stat() and list(). A path that
 * breaks the rule is refused with -EINVAL before the driver sees it.
 *
 * Errors: besides the codes in the heading, every failure fills err (when
 * non-NULL and still empty) with a message that starts with the driver's
 * label ("filesystem storage: ", "s3 storage: "). */

/* "filesystem" or "s3": for logs. */
const char *regfs_storage_name(const struct regfs_storage *s);

/* Timing of storage operations (regfs-registry's
 * registry_storage_action_seconds): when a hook is set, every regfs_storage_*
 * operation that reaches its driver calls it once, on the calling thread,
 * with the driver's name, distribution's action name (GetContent,
 * PutContent, Reader, Writer, Stat, List, Move, Delete, RedirectURL, OpenFd,
 * Health) and the microseconds it took, failures included. Reads and writes
 * through a reader or writer are not timed (they are per chunk). The hook
 * must be cheap and thread-safe; NULL (the default) turns timing off. The
 * setting is process-wide. */
typedef void (*regfs_storage_timing_fn)(const char *driver, const char *action, uint64_t us);
void regfs_storage_set_timing(regfs_storage_timing_fn fn);

/* Whole-object read (small objects: links, manifests). *data is malloc'd
 * (NUL-terminated for convenience, *len excludes the NUL); caller frees.
 * -EISDIR for a directory; -EFBIG for an object over the driver's limit for
 * whole-object reads (filesystem: 64 MiB). */
int regfs_storage_get(struct regfs_storage *s, const char *path, char **data, size_t *len,
		      struct regfs_err *err);
/* Whole-object atomic write: readers see the old or the new content. */
int regfs_storage_put(struct regfs_storage *s, const char *path, const void *data, size_t len,
		      struct regfs_err *err);
/* A sequential reader from `offset` (past the end reads 0 bytes). The caller
 * closes it with regfs_reader_close(). */
int regfs_storage_reader(struct regfs_storage *s, const char *path, uint64_t offset,
			 struct regfs_reader **out, struct regfs_err *err);
/* A writer (see struct regfs_writer); -EBUSY when another writer holds the
 * path, -ENOENT with append when nothing is there to continue. */
int regfs_storage_writer(struct regfs_storage *s, const char *path, bool append,
			 struct regfs_writer **out, struct regfs_err *err);
int regfs_storage_stat(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
		       struct regfs_err *err);
/* Stat of a path the caller knows can only be an object (a link file, blob
 * data), never a directory: a missing object is -ENOENT without the
 * directory question (S3: one HEAD, no LIST after its 404). What a directory
 * at `path` answers is the driver's (filesystem: its stat; S3: -ENOENT):
 * callers asking about directories use regfs_storage_stat(). Timed as
 * "Stat". */
int regfs_storage_stat_object(struct regfs_storage *s, const char *path,
			      struct regfs_stat_info *st, struct regfs_err *err);
/* Immediate children of a directory (order unspecified). -ENOENT if missing,
 * -ENOTDIR when `path` is an object. */
int regfs_storage_list(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		       struct regfs_err *err);
/* Atomic rename of an object; overwrites dst (never use it for blobs:
 * uploads publish through their writer, see publish above). */
int regfs_storage_move(struct regfs_storage *s, const char *src, const char *dst,
		       struct regfs_err *err);
/* Deletes an object or a whole subtree. -ENOENT if nothing was there. */
int regfs_storage_del(struct regfs_storage *s, const char *path, struct regfs_err *err);

/* The optional operations: -ENOTSUP when the driver has none.
 * regfs_storage_supports() tells beforehand, for callers that choose a path
 * (sendfile or a reader) without filling an error. */
enum regfs_storage_optional {
	REGFS_STORAGE_URL_FOR,
	REGFS_STORAGE_OPEN_FD,
	REGFS_STORAGE_HEALTH,
};
bool regfs_storage_supports(const struct regfs_storage *s, enum regfs_storage_optional op);
/* A URL a client can GET the object from directly (S3 presigned), valid for
 * `expires_s`. *url malloc'd. */
int regfs_storage_url_for(struct regfs_storage *s, const char *path, int expires_s, char **url,
			  struct regfs_err *err);
/* An open read-only fd for sendfile (filesystem); the caller closes it. */
int regfs_storage_open_fd(struct regfs_storage *s, const char *path, int *fd, uint64_t *size,
			  struct regfs_err *err);
/* A cheap check that the backend answers. */
int regfs_storage_health(struct regfs_storage *s, struct regfs_err *err);

/* Frees the driver (NULL-safe). Readers and writers must be closed first. */
void regfs_storage_free(struct regfs_storage *s);

/* ---- readers and writers ----------------------------------------------------
 * Their methods, for callers: the same as calling through the struct, and
 * publish() checks `dst` with the path rule above. */
ssize_t regfs_reader_read(struct regfs_reader *r, void *buf, size_t len, struct regfs_err *err);
void regfs_reader_close(struct regfs_reader *r); /* NULL-safe */
ssize_t regfs_writer_write(struct regfs_writer *w, const void *buf, size_t len,
			   struct regfs_err *err);
uint64_t regfs_writer_size(struct regfs_writer *w);
int regfs_writer_commit(struct regfs_writer *w, struct regfs_err *err);
int regfs_writer_cancel(struct regfs_writer *w, struct regfs_err *err);
int regfs_writer_publish(struct regfs_writer *w, const char *dst, struct regfs_err *err);
int regfs_writer_close(struct regfs_writer *w, struct regfs_err *err); /* NULL-safe */

#endif
