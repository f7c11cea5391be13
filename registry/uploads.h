/* uploads.h — what the rest of the registry needs of blob uploads: the cache
 * of running hash states (one per registry), the release of an upload
 * left in progress by an aborted request, and the storing of a blob that
 * arrives by other means than an upload (the pull-through cache). */
#ifndef REGFS_UPLOADS_H
#define REGFS_UPLOADS_H

#include <stdint.h>
#include <sys/types.h>

#include <regfs/digest.h>
#include <regfs/err.h>

struct registry;
struct upcache;
struct upload_op;

/* upload_hashes.c: the running hash state of uploads by uuid, one cache per
 * registry, safe across threads. */
struct upcache *upcache_new(void);          /* NULL on ENOMEM */
void upcache_free(struct upcache *uc);
/* Takes (removes) the cached hasher for uuid, of algorithm alg, and the
 * upload offset it has hashed up to; NULL if none (the caller owns it). */
struct regfs_hasher *upcache_take(struct upcache *uc, const char *uuid,
				  enum regfs_digest_alg alg, uint64_t *offset);
/* Gives h back (ownership passes to the cache), hashed up to offset;
 * evicts the oldest entry. */
void upcache_give(struct upcache *uc, const char *uuid, enum regfs_digest_alg alg,
		  struct regfs_hasher *h, uint64_t offset);
/* Closes the upload's writer (what was written stays resumable) and frees
 * `op` (NULL: nothing). */
void upload_op_free(struct upload_op *op);
/* Logs that the request carrying `op` (repository `name`) was cut before its
 * end (the client closed or half-closed the connection mid-body, or a
 * timeout), from client address `peer`: what stays stored and resumable.
 * Called before upload_op_free. */
void upload_op_cut(const struct upload_op *op, const char *name, const char *peer);

/* A source of bytes for upload_store: up to n bytes into buf; the count,
 * 0 at the end, or a negative errno (with e set). */
typedef ssize_t upload_src_fn(void *arg, void *buf, size_t n, struct regfs_err *e);

/* Stores the bytes `src` gives as blob `digest` linked in repository `name`,
 * exactly as a finished upload is stored: a session under the repository's
 * _uploads (the usage model sees it), the bytes hashed as they are written,
 * and only when they hash to `digest`: published to the blob's data path
 * (a blob already there is kept and this copy discarded) and the
 * repository's layer link written, under the online GC's protocol. The
 * session is removed in every case. *size: the bytes read from src.
 * 0; -EPROTO when the bytes do not match digest (nothing stored); src's
 * error; -EFBIG over regfs.limits.uploadsize; storage errors (e set). */
int upload_store(struct registry *r, const char *name, const char *digest, upload_src_fn *src,
		 void *arg, uint64_t *size, struct regfs_err *e);

#endif
