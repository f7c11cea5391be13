/* maint.h — the background jobs of `serve`: upload purging, the storage
 * health check and online GC, started and stopped with the server. */
#ifndef REGFS_MAINT_H
#define REGFS_MAINT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/err.h>

struct registry;
struct jbuf;

/* Starts the configured jobs; 0 (a job that cannot start is logged). */
int maint_start(struct registry *r);
/* Asks the jobs to stop and joins them. */
void maint_stop(struct registry *r);
/* Sets *stopping under `lock`, wakes every waiter on `cond`, and joins the
 * n threads: the one way a pool of background threads is told to end. */
void maint_join_threads(pthread_mutex_t *lock, pthread_cond_t *cond, bool *stopping,
			const pthread_t *threads, int n);
/* true when a health check is failing (health.storagedriver after its
 * threshold, or a health.file/http/tcp check): msg says which and why.
 * Lock-free when all is well (atomic loads). */
bool maint_unhealthy(struct registry *r, char *msg, size_t cap);
/* Appends {"<check>":{"status":"ok"}|{"status":"failing","error":"…"},…}
 * for every configured check (storagedriver_<driver>, file:<path>,
 * http:<uri>, tcp:<addr>); returns the number failing. */
int maint_health_json(struct registry *r, struct jbuf *b);
/* One pass of upload purging: removes uploads older than age_s (only lists
 * them when dryrun). 0 or a negative errno with err filled. */
/* When upload `uuid` of `name` started (its startedat, else file times);
 * -1 when unknown. */
int64_t upload_started_at(struct registry *r, const char *name, const char *uuid);
int purge_uploads(struct registry *r, int64_t age_s, bool dryrun, struct regfs_err *err);

#endif
