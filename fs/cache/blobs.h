/* blobs.h — the blob cache of the mount (fs/cache/): blobs on disk by
 * digest (--cache-dir), verified before they are stored, least recently used
 * ones deleted beyond --cache-size. Errors: 0 or a negative errno. */
#ifndef REGFS_FS_CACHE_BLOBS_H
#define REGFS_FS_CACHE_BLOBS_H

#include <stddef.h>
#include <stdint.h>

#include <regfs/client.h>

struct fs_stats;
struct blob_cache;

/* NULL: disabled (or out of memory). st (kept) counts the misses of
 * blob_cache_fill. */
struct blob_cache *blob_cache_new(const char *dir, uint64_t cap, struct fs_stats *st);
void blob_cache_free(struct blob_cache *bc);
/* Opens the cached blob (O_RDONLY fd) or -ENOENT. Marks it used. */
int blob_cache_open(struct blob_cache *bc, const char *digest);
/* Stores bytes already verified by the caller. */
int blob_cache_put(struct blob_cache *bc, const char *digest, const void *data, size_t len);
/* Fetches the whole blob with cl (digest-verified) and opens it. The client
 * is a parameter: the disk cache is made before the mount daemonizes, the
 * client after. */
int blob_cache_fill(struct blob_cache *bc, struct regfs_client *cl, const char *repo, const char *digest,
		uint64_t size);
uint64_t blob_cache_used(struct blob_cache *bc);

#endif
