/* blobs.h — the prepared HEAD responses of blobs (one per digest: blobs are
 * immutable, so size, digest and ETag headers never change). */
#ifndef REGFS_BLOBS_H
#define REGFS_BLOBS_H

struct headcache;

struct headcache *headcache_new(void);      /* NULL on ENOMEM */
void headcache_free(struct headcache *hc);

#endif
