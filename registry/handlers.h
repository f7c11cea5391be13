/* handlers.h — the request handlers the route table (route.c) points at,
 * one per endpoint family, each in its module (server.c: base; manifests.c;
 * blobs.c; uploads.c; lists.c: tags, catalog, bulk tags, repository
 * manifests, referrers; bulk.c: bulk manifests). See route_handler in
 * route.h for the calling convention. */
#ifndef REGFS_HANDLERS_H
#define REGFS_HANDLERS_H

#include "route.h"

route_handler_fn h_not_found, h_base, h_manifest, h_blob, h_upload_start, h_upload, h_tags,
	h_catalog, h_bulk_tags, h_repo_manifests, h_bulk_manifests, h_referrers;

#endif
