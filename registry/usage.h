/* usage.h — storage accounting of a serving regfs-registry (the usage
 * extension, docs/api-extensions.md): the model of usage_model.h, built once
 * at start by a walk of the storage in a background thread and then kept up
 * to date by the write paths, which call the hooks below after their storage
 * writes succeeded. No request walks the storage.
 *
 * Changes made while the walk runs are not lost: every hook updates the model
 * at once (idempotently); the walk applies a repository only if no hook
 * changed that repository since the walk started reading it (a generation
 * counter; else it reads it again), and never overrides a blob or upload a
 * hook has spoken about.
 *
 * One mutex guards the model; hooks hold it for an in-memory update (no
 * storage access under it). Manifest GET/HEAD never call in here. Every hook
 * is a no-op when accounting is off (r->usage NULL: the offline commands). */
#ifndef REGFS_USAGE_H
#define REGFS_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/dynbuf.h>

#include "route.h"

struct registry;
struct regfs_manifest;
struct usage_repo_figures;

/* Creates the accounting and starts its walk (serve). 0 or -ENOMEM (then
 * accounting is off, logged). */
int usage_start(struct registry *r);
/* Stops the walk if it still runs (joins it); the model stays for requests
 * still in flight until usage_free. */
void usage_stop(struct registry *r);
/* Frees the accounting (registry_close). */
void usage_free(struct registry *r);
/* true once the startup walk finished. */
bool usage_ready(struct registry *r);

/* ---- hooks, each after the storage change succeeded ---- */
/* A manifest was stored and linked in `repo` (tag NULL: by digest). */
void usage_manifest_pushed(struct registry *r, const char *repo, const char *tag,
			   const char *digest, size_t len, const struct regfs_manifest *m);
/* A tag was deleted. */
void usage_tag_deleted(struct registry *r, const char *repo, const char *tag);
/* A manifest revision was deleted from `repo` (with the tags naming it). */
void usage_manifest_deleted(struct registry *r, const char *repo, const char *digest);
/* An upload's data has `size` bytes (after a PATCH). */
void usage_upload_progress(struct registry *r, const char *repo, const char *uuid,
			   uint64_t size);
/* An upload ended: committed as blob `digest` of `size` bytes (digest NULL:
 * cancelled, purged or discarded). */
void usage_upload_ended(struct registry *r, const char *repo, const char *uuid,
			const char *digest, uint64_t size);
/* A repository came to exist without a manifest (a blob mounted into it). */
void usage_repo_seen(struct registry *r, const char *repo);
/* A blob's data was deleted (GC sweep). */
void usage_blob_deleted(struct registry *r, const char *digest);

/* ---- reading ---- */
/* GET /v2/_regfs/usage (usage_http.c). */
route_handler_fn h_usage;
/* The regfs_storage_* gauges (Prometheus text) appended to b; nothing while
 * the walk runs. 0 or a dynbuf error. */
int usage_render_metrics(struct registry *r, struct dynbuf *b);

/* Whether some repository references blob `digest`, as gc.c's mark phase
 * decides (the model's reference counts): 1 yes, 0 no, -EAGAIN while the
 * startup walk runs or when accounting is off (then nobody knows). The
 * pull-through cache's expiry asks it under gc_lock (proxy_expire.c). */
int usage_blob_referenced(struct registry *r, const char *digest);

/* ---- quotas (quota.c uses these) ---- */
/* The repository's figures now and if `m` (digest, len bytes) were pushed to it with
 * `tag` (NULL: by digest), and the exclusive bytes that push adds.
 * -EAGAIN while the walk runs; -ENOMEM. */
int usage_would_be(struct registry *r, const char *repo, const char *tag, const char *digest,
		   size_t len, const struct regfs_manifest *m, struct usage_repo_figures *now,
		   struct usage_repo_figures *then, uint64_t *added);

#endif
