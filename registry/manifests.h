/* manifests.h — what manifests.c offers besides its handler (h_manifest,
 * handlers.h): the storage-backed GET/HEAD and the store of a manifest that
 * was fetched rather than pushed, for the pull-through cache
 * (proxy_manifest.c), so a cached manifest is served and written exactly as
 * a pushed one. */
#ifndef REGFS_MANIFESTS_H
#define REGFS_MANIFESTS_H

#include <stddef.h>
#include <microhttpd.h>

#include <regfs/err.h>

struct registry;
struct request;

/* Answers GET/HEAD of q's manifest (q->rt.name, q->rt.ref already checked)
 * from storage: 404 when not stored, as for any repository. */
enum MHD_Result manifest_serve(struct registry *r, struct request *q);

/* Stores manifest `body` (len bytes, hashing to `digest`, of Content-Type
 * `content_type`, may be NULL) in repository `name`, tagged `tag` (NULL: by
 * digest), as a PUT writes it: blob, revision link, tag links, under the
 * online GC's writer protocol, then the usage model's hook. The blobs and
 * child manifests it references need not be present. Checks regfs.limits
 * (manifestsize: -EFBIG; jsondepth, not a manifest: -EBADMSG); storage
 * errors as the driver's. err says what. */
int manifest_store_fetched(struct registry *r, const char *name, const char *tag,
			   const char *digest, const char *body, size_t len,
			   const char *content_type, struct regfs_err *err);

#endif
