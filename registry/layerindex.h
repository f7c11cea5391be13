/* layerindex.h — push-time layer indexes (regfs.layerindex, see
 * docs/api-extensions.md "layer-index"): the queue of manifests whose layers
 * await an index, the background workers that build them, their storage,
 * their garbage collection and the endpoint that serves them.
 *
 * Storage (outside registry:2's blobs/ and repositories/, which it and
 * registry:2 never list):
 *   /docker/registry/v2/_regfs/layerindex/<alg>/<hex[0:2]>/<hex>/data
 *       the encoded index of the layer blob <alg>:<hex> (immutable: an index
 *       is a function of the blob's bytes, so any instance may write it, and
 *       two writing it at once write the same thing atomically);
 *   …/<hex>/error   why the layer has no index (not a tar, over maxsize):
 *       written instead of data, so the layer is not tried again;
 *   /docker/registry/v2/_regfs/layerindex-queue/<alg>-<hex>
 *       one marker per pushed image manifest whose layers are to be indexed;
 *       deleted once every layer has an index or an error record. The queue
 *       in memory is only a cache of these markers: a restart, a full queue
 *       or a crash of the instance that wrote a marker leaves it for a later
 *       scan (at start, then every `rescan`) of any instance. */
#ifndef REGFS_LAYERINDEX_H
#define REGFS_LAYERINDEX_H

#include <stdbool.h>
#include <stdint.h>

#include <regfs/err.h>

#include "route.h"

struct registry;
struct regfs_manifest;

/* Starts the workers when regfs.layerindex.enabled (r->li set); 0, or a
 * negative errno when they cannot start (logged; the registry serves on). */
int layerindex_start(struct registry *r);
/* Stops the workers (a build in progress ends at its next read) and frees
 * r->li. Markers not yet done stay in storage. Safe when never started. */
void layerindex_stop(struct registry *r);

/* After a manifest PUT stored `m` (digest `digest`): when indexing is on and
 * `m` has tar layers, writes the queue marker (one small storage write) and
 * wakes a worker. Never fails the push: a marker that cannot be written is
 * logged. */
void layerindex_enqueue(struct registry *r, const struct regfs_manifest *m, const char *digest);

/* GC: removes every index (and error record) whose layer blob is gone, and
 * queue markers whose manifest is gone. Counts removals in *removed (may be
 * NULL). dry_run: only counts. 0 or a negative errno with err filled. */
int layerindex_gc(struct registry *r, bool dry_run, uint64_t *removed, struct regfs_err *err);

/* True when the registry advertises the layer-index extension. */
bool layerindex_enabled(const struct registry *r);

/* GET/HEAD /v2/<name>/_regfs/layerindex/<digest>. */
route_handler_fn h_layer_index;

#endif
