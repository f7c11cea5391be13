/* uploads.h — what the rest of the registry needs of blob uploads: the cache
 * of running hash states (one per registry) and the release of an upload
 * left in progress by an aborted request. */
#ifndef REGFS_UPLOADS_H
#define REGFS_UPLOADS_H

struct upcache;
struct upload_op;

struct upcache *upcache_new(void);          /* NULL on ENOMEM */
void upcache_free(struct upcache *uc);
/* Closes the upload's writer (what was written stays resumable) and frees
 * `op` (NULL: nothing). */
void upload_op_free(struct upload_op *op);
/* Logs that the request carrying `op` (repository `name`) was cut before its
 * end (the client closed or half-closed the connection mid-body, or a
 * timeout), from client address `peer`: what stays stored and resumable.
 * Called before upload_op_free. */
void upload_op_cut(const struct upload_op *op, const char *name, const char *peer);

#endif
