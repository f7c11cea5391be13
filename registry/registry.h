/* registry.h — `struct registry`: the state of one regfs-registry process
 * (configuration, storage driver, in-memory caches, online-GC bookkeeping,
 * background threads). Every request handler and background job receives it.
 * Each module's own functions are declared in that module's header
 * (route.h, request.h, respond.h, repo.h, manifest_bytes.h, …).
 *
 * Storage is reached only through include/regfs/storage.h and paths built
 * with include/regfs/layout.h, so every handler works on any driver. */
#ifndef REGFS_REGISTRY_H
#define REGFS_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <regfs/config.h>
#include <regfs/err.h>
#include <regfs/storage.h>

struct manifest_bytes;
struct upcache;
struct headcache;
struct blobdesc;
struct digestset;
struct notifier;
struct check_state;
struct layerindex;
struct tls;
struct auth;
struct usage;
struct proxies;

struct registry {
	struct regfs_config *cfg;       /* borrowed */
	struct regfs_storage *st;       /* owned */
	struct manifest_bytes *mb;      /* manifest bytes by digest (immutable content) */
	struct upcache *uc;             /* upload hash state by uuid */
	struct headcache *hc;           /* prepared HEAD blob responses by digest */
	struct blobdesc *bd;            /* blob descriptor cache (blobdesc.h); NULL: off */
	struct notifier *nt;            /* notifications (notify.h); NULL: none */
	struct layerindex *li;          /* push-time layer indexes; NULL when off (layerindex.h) */
	struct tls *tls;                /* http.tls, borrowed; NULL: plain HTTP (tls.h) */
	struct auth *auth;              /* auth.<scheme>; NULL: everyone allowed (auth.h) */
	/* storage accounting (usage.h); NULL: off (offline commands). Atomic:
	 * usage_start publishes it after the request threads have started. */
	struct usage *_Atomic usage;
	struct proxies *proxies;        /* pull-through cache (proxy.h); NULL: none configured */

	/* health.storagedriver: written by the health thread, read by GET /v2/. */
	atomic_int storage_down;        /* 1 after `threshold` consecutive failures */
	pthread_mutex_t health_lock;
	char health_msg[512];
	struct check_state *checks;     /* health.file/http/tcp: cfg->n_checks, maint.c */

	/* Online GC (regfs.gc), see gc.c: writers that make a blob referenced
	 * (manifest PUT, upload finish, mount) hold gc_rw for reading while they
	 * note the digest in `recent` (under gc_lock), check it and write their
	 * links. A GC run takes gc_rw for writing once, to clear `recent` at a
	 * point where no such writer is half-way; the sweeper skips any digest
	 * in `recent`, checked and deleted under gc_lock. */
	pthread_rwlock_t gc_rw;
	pthread_mutex_t gc_lock;
	struct digestset *recent;
	bool gc_online;                 /* online GC configured: notes are kept */

	/* background threads */
	pthread_mutex_t bg_lock;
	pthread_cond_t bg_cond;
	bool stopping;
	int n_bg;
	pthread_t bg[5];
};

/* Fills `r` for `cfg` (borrowed; must outlive r): opens the storage and
 * creates the caches. On error `err` says why; call registry_close anyway. */
int registry_open(struct registry *r, struct regfs_config *cfg, struct regfs_err *err);
/* Releases what registry_open made; `r` is zeroed. */
void registry_close(struct registry *r);

#endif
