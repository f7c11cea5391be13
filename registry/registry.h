/* registry.h — internals of regfs-registry shared by its modules (not part of
 * libregfs). One `struct registry` per process: the configuration, the
 * storage driver and the small in-memory caches; request handlers receive it.
 *
 * Storage is reached only through include/regfs/storage.h and paths built
 * with include/regfs/layout.h, so every handler works on any driver. */
#ifndef REGFS_REGISTRY_H
#define REGFS_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

#include <regfs/config.h>
#include <regfs/digest.h>
#include <regfs/err.h>
#include <regfs/storage.h>

struct mcache;
struct upcache;
struct headcache;
struct digestset;

struct registry {
	struct regfs_config *cfg;       /* borrowed */
	struct regfs_storage *st;       /* owned */
	struct mcache *mc;              /* manifest bytes by digest (immutable content) */
	struct upcache *uc;             /* upload hash state by uuid */
	struct headcache *hc;           /* prepared HEAD blob responses by digest */

	/* health.storagedriver: written by the health thread, read by GET /v2/. */
	atomic_int storage_down;        /* 1 after `threshold` consecutive failures */
	pthread_mutex_t health_lock;
	char health_msg[512];

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
	pthread_t bg[4];
};

/* ---- routes (route.c) ---- */
enum route_kind {
	R_NOT_FOUND = 0,
	R_BASE,            /* /v2/ */
	R_CATALOG,         /* /v2/_catalog */
	R_BULK_TAGS,       /* /v2/_regfs/tags */
	R_TAGS,            /* /v2/<name>/tags/list */
	R_MANIFEST,        /* /v2/<name>/manifests/<ref> */
	R_BLOB,            /* /v2/<name>/blobs/<digest> */
	R_UPLOAD_START,    /* /v2/<name>/blobs/uploads/ */
	R_UPLOAD,          /* /v2/<name>/blobs/uploads/<uuid> */
	R_REFERRERS,       /* /v2/<name>/referrers/<digest> */
	R_REPO_MANIFESTS,  /* /v2/<name>/_regfs/manifests */
	R_BULK_MANIFESTS,  /* /v2/_regfs/manifests (bulk.c) */
};

#define ROUTE_NAME_MAX 256
#define ROUTE_REF_MAX 160

struct route {
	enum route_kind kind;
	bool name_ok;                 /* name matches the repository-name grammar */
	char name[ROUTE_NAME_MAX];
	char ref[ROUTE_REF_MAX];      /* tag, digest or uuid; "" when absent */
	bool ref_truncated;           /* the reference did not fit (hence invalid) */
};

/* Parses a request path (already percent-decoded by MHD). Never fails:
 * unknown paths give R_NOT_FOUND. Names are checked with regfs_name_valid
 * (name_ok); references are copied verbatim for the handler to validate. */
void route_parse(const char *path, struct route *rt);

/* ---- responses (respond.c) ---- */

/* Per-request state, allocated only for requests with a body or that need
 * several callbacks; simple GETs run without it. */
struct req {
	uint64_t t0_us;
	bool started;                 /* false on the first (headers-only) callback */
	int kind;                     /* enum route_kind */
	struct route rt;
	/* set when the handler decided early to fail; body is drained */
	int fail_status;
	const char *fail_code;
	char fail_msg[600];
	/* manifest PUT: body buffer (bounded by REGFS_MANIFEST_MAX) */
	char *buf;
	size_t len, cap;
	/* upload PATCH/PUT/POST: */
	struct upload_op *up;
};

uint64_t now_us(void);

/* Adds the configured http.headers and the API version header, logs the
 * access line, queues and releases `resp`. Returns MHD's result. */
enum MHD_Result respond(struct registry *r, struct MHD_Connection *c, const char *method,
			const char *url, uint64_t t0_us, unsigned status,
			struct MHD_Response *resp, uint64_t bytes);

/* The headers every response carries (API version, http.headers). */
void add_common_headers(struct registry *r, struct MHD_Response *resp);
/* Queues a response that already has its common headers and that the
 * caller keeps (shared, cached responses); logs the access line. */
enum MHD_Result respond_shared(struct registry *r, struct MHD_Connection *c, const char *method,
			       const char *url, uint64_t t0_us, unsigned status,
			       struct MHD_Response *resp, uint64_t bytes);

/* The access line (info level): method, path, status, body bytes, time. */
void access_log(const char *method, const char *url, uint64_t t0_us, unsigned status,
		uint64_t bytes);

/* A JSON error body per the distribution spec:
 * {"errors":[{"code":code,"message":msg,"detail":…}]} (detail omitted if NULL). */
enum MHD_Result respond_error(struct registry *r, struct MHD_Connection *c, const char *method,
			      const char *url, uint64_t t0_us, unsigned status,
			      const char *code, const char *msg, const char *detail_json);
/* Same with a printf-style message. */
enum MHD_Result respond_errorf(struct registry *r, struct MHD_Connection *c, const char *method,
			       const char *url, uint64_t t0_us, unsigned status,
			       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
/* Maps a storage error to 500/503 with a JSON error naming it. */
enum MHD_Result respond_storage_error(struct registry *r, struct MHD_Connection *c,
				      const char *method, const char *url, uint64_t t0_us,
				      const struct regfs_err *err);
/* A body copied from `body` with the given Content-Type (NULL: none). */
enum MHD_Result respond_body(struct registry *r, struct MHD_Connection *c, const char *method,
			     const char *url, uint64_t t0_us, unsigned status,
			     const char *content_type, const char *body, size_t len,
			     bool head);

/* RFC 1123 date ("Sat, 28 Nov 2026 08:00:00 GMT") into out[40]. */
void http_date(int64_t t, char out[40]);
/* RFC 3339 UTC ("2026-11-28T08:00:00Z") into out[32]. */
void rfc3339(int64_t t, char out[32]);

/* JSON string escaping into a growing buffer; used by small hand-built bodies. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_json_str(struct sbuf *b, const char *s);
void sb_free(struct sbuf *b);

/* ---- repository helpers over storage (repo.c) ---- */

/* Reads a link file into out (a validated digest). -ENOENT if missing,
 * -EINVAL if the content is not a digest. */
int repo_read_link(struct registry *r, const char *path, char out[REGFS_DIGEST_MAX],
		   int64_t *mtime, struct regfs_err *err);
/* Writes a link (digest text, no newline), atomically. */
int repo_write_link(struct registry *r, const char *path, const char *digest,
		    struct regfs_err *err);
/* true when the path exists. */
bool repo_exists(struct registry *r, const char *path, struct regfs_stat_info *st);
/* true when the repository directory exists. */
bool repo_known(struct registry *r, const char *name);

/* Calls cb for every repository name (a directory under repositories/ with a
 * _manifests, _layers or _uploads child), in no particular order. */
typedef int (*repo_name_cb)(const char *name, void *ud);
int repo_walk(struct registry *r, repo_name_cb cb, void *ud, struct regfs_err *err);

/* A sorted, malloc'd array of malloc'd strings. */
struct strlist {
	char **v;
	size_t n, cap;
};
int strlist_add(struct strlist *l, const char *s);
void strlist_sort(struct strlist *l);
void strlist_free(struct strlist *l);

/* All repository names, sorted. */
int repo_list_all(struct registry *r, struct strlist *out, struct regfs_err *err);
/* Tag names of a repository, sorted. -ENOENT when the repo has no tags dir. */
int repo_list_tags(struct registry *r, const char *name, struct strlist *out,
		   struct regfs_err *err);
/* Manifest digests of a repository (revision links), sorted. */
int repo_list_revisions(struct registry *r, const char *name, struct strlist *out,
			struct regfs_err *err);
/* Layer-link digests of a repository. */
int repo_list_layers(struct registry *r, const char *name, struct strlist *out,
		     struct regfs_err *err);

/* ---- manifest cache (mcache.c) ----
 * Content-addressed, so entries never go stale; bounded in bytes. */
struct mc_entry {
	char *data;
	size_t len;
	char *media_type;
	char subject[REGFS_DIGEST_MAX];   /* "" when none */
	char *artifact_type;              /* effective (artifactType or config.mediaType), may be NULL */
	char *annotations;                /* JSON object text or NULL */
	int refs;
	/* prepared GET [0] and HEAD [1] responses for one Last-Modified value
	 * (MHD responses can be queued many times); guarded by the cache lock */
	struct MHD_Response *resp[2];
	int64_t resp_mtime[2];
};
struct mcache *mcache_new(size_t budget_bytes);
void mcache_free(struct mcache *mc);
/* Returns a referenced entry (release with mcache_put) or NULL. */
struct mc_entry *mcache_get(struct mcache *mc, const char *digest);
void mcache_put(struct mcache *mc, struct mc_entry *e);
/* Answers GET/HEAD of manifest `e` (named by `digest`) with a response
 * prepared once per (entry, Last-Modified) and shared between requests. */
enum MHD_Result mcache_respond(struct registry *r, struct MHD_Connection *c, const char *method,
			       const char *url, uint64_t t0_us, struct mc_entry *e,
			       const char *digest, int64_t mtime, bool head);
/* Loads the manifest blob `digest` from storage (through the cache). The
 * content is verified against the digest when loaded. */
int manifest_load(struct registry *r, const char *digest, struct mc_entry **out,
		  struct regfs_err *err);

/* ---- digest set (digestset.c) ---- */
struct digestset *digestset_new(void);
void digestset_free(struct digestset *s);
int digestset_add(struct digestset *s, const char *digest);  /* 1 added, 0 present, <0 oom */
/* Same, remembering `when` (the latest time wins for an entry already present). */
int digestset_add_at(struct digestset *s, const char *digest, int64_t when);
/* Drops every entry added with a time before `cutoff`. 0 or -ENOMEM (set unchanged). */
int digestset_prune_before(struct digestset *s, int64_t cutoff);
bool digestset_has(const struct digestset *s, const char *digest);
size_t digestset_count(const struct digestset *s);
void digestset_clear(struct digestset *s);

/* ---- handlers ----
 * Every handler is called on each MHD callback of its request: first with
 * q->started == false (headers only; it sets started), then once per body
 * chunk (*size > 0, which it must consume), then with *size == 0 to answer.
 * Requests without a body get one call (started false, *size 0) and must
 * answer at once. */
#define HANDLER_ARGS struct registry *r, struct MHD_Connection *c, const char *method, \
	const char *url, struct req *q, const char *data __attribute__((unused)), \
	size_t *size __attribute__((unused))
enum MHD_Result h_base(HANDLER_ARGS);
enum MHD_Result h_manifest(HANDLER_ARGS);
enum MHD_Result h_blob(HANDLER_ARGS);
enum MHD_Result h_upload(HANDLER_ARGS);
enum MHD_Result h_tags(HANDLER_ARGS);
enum MHD_Result h_catalog(HANDLER_ARGS);
enum MHD_Result h_bulk_tags(HANDLER_ARGS);
enum MHD_Result h_repo_manifests(HANDLER_ARGS);
enum MHD_Result h_bulk_manifests(HANDLER_ARGS);
enum MHD_Result h_referrers(HANDLER_ARGS);
ssize_t no_body_cb(void *cls, uint64_t pos, char *buf, size_t max);
/* Shortcuts inside handlers (r, c, method, url, q in scope). */
#define ERR(status, code, ...) respond_errorf(r, c, method, url, q->t0_us, status, code, __VA_ARGS__)
#define STORAGE_ERR(e) respond_storage_error(r, c, method, url, q->t0_us, e)
void upload_op_free(struct upload_op *op);

/* HEAD blob responses (blobs.c): blobs are immutable, so the response for
 * a digest (size, digest, ETag headers) is prepared once and shared. */
struct headcache *headcache_new(void);
void headcache_free(struct headcache *hc);

/* Upload hash-state cache (uploads.c). */
struct upcache *upcache_new(void);
void upcache_free(struct upcache *uc);

/* Pagination helper shared by tags list, catalog and bulk tags: applies
 * n/last to a sorted list; returns [*from, *to) and whether more remain. */
int page_params(struct MHD_Connection *c, int *n, const char **last);
void page_slice(const struct strlist *l, int n, const char *last, size_t *from, size_t *to);
/* Every repository (sorted) and the page [*from, *to) of it that n/last ask
 * for: the catalog and the bulk extensions. On error (storage) *repos is
 * empty and err says why. */
int repos_page(struct registry *r, int n, const char *last, struct strlist *repos,
	       size_t *from, size_t *to, struct regfs_err *err);

/* ---- server and background jobs ---- */
int server_run(struct regfs_config *cfg, struct regfs_err *err);
int registry_open(struct registry *r, struct regfs_config *cfg, struct regfs_err *err);
void registry_close(struct registry *r);
int maint_start(struct registry *r);
void maint_stop(struct registry *r);
/* One pass of upload purging (also used by tests through the server). */
int purge_uploads(struct registry *r, int64_t age_s, bool dryrun, struct regfs_err *err);

/* ---- garbage collection (gc.c) ---- */
struct gc_opts {
	bool dry_run;
	bool delete_untagged;
	int64_t delay_s;      /* online GC: keep blobs younger than this (0 offline) */
	bool online;          /* consult r->recent before each delete */
	bool quiet;           /* no stdout (online: log instead) */
};
struct gc_stats {
	uint64_t marked, swept, bytes, manifests_deleted, links_removed;
};
int gc_run(struct registry *r, const struct gc_opts *o, struct gc_stats *out,
	   struct regfs_err *err);

/* Online GC hooks (gc.c): a writer brackets "note, check, link" with
 * gc_writer_begin/end, and notes every digest it is about to reference. */
void gc_writer_begin(struct registry *r);
void gc_writer_end(struct registry *r);
void gc_note_referenced(struct registry *r, const char *digest);

#endif
