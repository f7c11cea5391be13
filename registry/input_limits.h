/* input_limits.h — the bounds of regfs.limits that are counted across requests
 * (the per-request ones are in framing.h and front.h): upload requests in
 * flight, in total and per client address; concurrent reads of manifests
 * too large for the manifest cache; and the process-wide settings applied
 * at start (malloc arenas, the manifest parser's bounds).
 *
 * Counters are process-wide (one server per process), so the functions take
 * the configuration they need and keep no pointer to it. */
#ifndef REGFS_INPUT_LIMITS_H
#define REGFS_INPUT_LIMITS_H

#include <stdbool.h>
#include <microhttpd.h>

#include <regfs/config.h>

struct registry;
struct request;

/* At start, before any request: caps glibc's malloc arenas (each thread
 * that allocates otherwise gets an arena of its own, which keeps freed
 * memory: 16 worker threads × large transient buffers grew the process by
 * over 100 MB under a flood of large GETs) and hands the manifest parser its
 * bounds (regfs.limits.manifestsize, jsondepth). */
void limits_apply(const struct regfs_config *cfg);

/* The arena cap limits_apply sets (REGFS_MALLOC_ARENAS overrides, 1-64). */
int limits_arena_max(void);

/* An upload request (POST/PATCH/PUT on blobs/uploads) on its first callback:
 * true when it is over regfs.limits.uploads or uploadsperclient, in which
 * case it was answered 429 TOOMANYREQUESTS with Retry-After and logged (*res
 * is the result to return; nothing was counted). false: it was counted, and
 * limits_upload_done(c) must be called once when it completes. */
bool limits_upload_refused(struct registry *r, struct request *q, enum MHD_Result *res);
void limits_upload_done(struct MHD_Connection *c);

/* A JSON error answer (status, code, msg: no quotes or backslashes in it)
 * with Retry-After: 1, for refusals a client should simply retry. */
enum MHD_Result limits_respond_busy(struct registry *r, struct request *q, unsigned status,
				    const char *code, const char *msg);

/* A slot for reading a manifest over the cache bound (regfs.limits.largereads);
 * false when all are taken (answer 503). Each true is given back once with
 * limits_large_read_done. */
bool limits_large_read_begin(const struct regfs_config *cfg);
void limits_large_read_done(void);

#endif
