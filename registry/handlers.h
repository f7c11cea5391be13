/* handlers.h — the request handlers the route table (route.c) points at,
 * one per endpoint family, each in its module (server.c: base; manifests.c;
 * blobs.c; uploads.c; lists.c: tags, catalog, bulk tags, repository
 * manifests, referrers; bulk.c: bulk manifests). See route_handler in
 * route.h for the calling convention. */
#ifndef REGFS_HANDLERS_H
#define REGFS_HANDLERS_H

#include <microhttpd.h>

struct registry;
struct request;

enum MHD_Result h_not_found(struct registry *r, struct request *q);
enum MHD_Result h_base(struct registry *r, struct request *q);
enum MHD_Result h_manifest(struct registry *r, struct request *q);
enum MHD_Result h_blob(struct registry *r, struct request *q);
enum MHD_Result h_upload_start(struct registry *r, struct request *q);
enum MHD_Result h_upload(struct registry *r, struct request *q);
enum MHD_Result h_tags(struct registry *r, struct request *q);
enum MHD_Result h_catalog(struct registry *r, struct request *q);
enum MHD_Result h_bulk_tags(struct registry *r, struct request *q);
enum MHD_Result h_repo_manifests(struct registry *r, struct request *q);
enum MHD_Result h_bulk_manifests(struct registry *r, struct request *q);
enum MHD_Result h_referrers(struct registry *r, struct request *q);

#endif
