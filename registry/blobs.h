/* blobs.h — the prepared HEAD responses of blobs (one per digest: blobs are
 * immutable, so size, digest and ETag headers never change), and what every
 * blob answer shares (ranges, headers) for the pull-through cache. */
#ifndef REGFS_BLOBS_H
#define REGFS_BLOBS_H

#include <stdint.h>
#include <microhttpd.h>

struct headcache;
struct registry;
struct request;

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range (h may be
 * NULL) against size. Returns 1 with [*start, *end] set, 0 when there is no
 * usable Range header (serve everything), -1 when unsatisfiable (416). */
int blob_parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *end);
/* The headers of every blob answer: Content-Type, Docker-Content-Digest,
 * ETag, Accept-Ranges, Cache-Control. */
void blob_headers(struct MHD_Response *resp, const char *digest);
/* 416 with Content-Range "bytes *\/total": a Range no byte of the blob satisfies. */
enum MHD_Result blob_range_unsatisfiable(struct registry *r, struct request *q, uint64_t total);

struct headcache *headcache_new(void);      /* NULL on ENOMEM */
void headcache_free(struct headcache *hc);

#endif
