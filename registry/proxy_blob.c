/* proxy_blob.c — blobs of cached repositories that are not stored yet
 * (proxy.h). Placeholder until the spool-based implementation lands: the
 * blob is unknown. */
#include "proxy.h"
#include "request.h"
#include "respond.h"

enum MHD_Result proxy_blob(struct registry *r, struct request *q)
{
	return respond_errorf(r, q, 404, "BLOB_UNKNOWN", "blob unknown to registry: %s",
			      q->rt.ref);
}
