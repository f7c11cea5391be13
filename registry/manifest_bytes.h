/* manifest_bytes.h — the bytes of manifests, by digest, in memory: what
 * manifest_load read and verified from storage, with what handlers need of
 * the parsed manifest (media type, subject, artifact type, annotations) and
 * the GET/HEAD responses prepared for it.
 *
 * Manifests are content-addressed, so an entry is never stale. Entries are
 * reference-counted: manifest_load hands out a reference, which the caller
 * gives back with manifest_bytes_release. */
#ifndef REGFS_MANIFEST_BYTES_H
#define REGFS_MANIFEST_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

#include <regfs/digest.h>
#include <regfs/err.h>

struct registry;
struct request;
struct manifest_bytes;

struct manifest_entry {
	char *data;                       /* NULL: streamed (manifest_load_meta) */
	size_t len;
	char *media_type;
	char subject[REGFS_DIGEST_MAX];   /* "" when none */
	char *artifact_type;              /* effective (artifactType or config.mediaType), may be NULL */
	char *annotations;                /* JSON object text or NULL */
	int refs;
	/* prepared GET [0] and HEAD [1] responses for one Last-Modified value
	 * (MHD responses can be queued many times); guarded by the cache lock */
	struct MHD_Response *resp[2];
	int64_t resp_mtime[2];
};

/* A cache holding at most `budget_bytes`; NULL on ENOMEM. */
struct manifest_bytes *manifest_bytes_new(size_t budget_bytes);
void manifest_bytes_free(struct manifest_bytes *mb);
/* Gives back a reference from manifest_load (NULL: nothing). */
void manifest_bytes_release(struct manifest_bytes *mb, struct manifest_entry *e);
/* Answers GET/HEAD of manifest `e` (named by `digest`) with a response
 * prepared once per (entry, Last-Modified) and shared between requests. */
enum MHD_Result manifest_bytes_respond(struct registry *r, struct request *q,
				       struct manifest_entry *e, const char *digest,
				       int64_t mtime);
/* The manifest blob `digest`, from the cache or from storage (verified
 * against the digest when loaded). -ENOENT when not stored, -EIO when the
 * stored bytes do not match, -ENOMEM. */
int manifest_load(struct registry *r, const char *digest, struct manifest_entry **out,
		  struct regfs_err *err);

/* For GET/HEAD: the same, except that a manifest over the cache's entry
 * bound (512 KiB) is read, verified and parsed once, and then only its
 * metadata is kept: the entry's `data` is NULL and manifest_bytes_stream
 * answers it from storage. Such a first load takes a large-read slot
 * (input_limits.h): -EAGAIN when none is free. */
int manifest_load_meta(struct registry *r, const char *digest, struct manifest_entry **out,
		       struct regfs_err *err);

/* Answers GET/HEAD of a metadata-only entry by streaming the stored blob
 * (64 KiB at a time, hashed as it goes: a copy damaged since it was verified
 * is cut before its last byte). A GET holds a large-read slot until the
 * response is freed: 503 with Retry-After when none is free. */
enum MHD_Result manifest_bytes_stream(struct registry *r, struct request *q,
				      const struct manifest_entry *e, const char *digest,
				      int64_t mtime);

#endif
