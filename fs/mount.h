/* mount.h — internals of the regfs FUSE daemon shared by the files of fs/.
 *
 * Layering (each file one concept):
 *   main.c      pre-mount checks, FUSE session, teardown
 *   loop.c      the request loop (one reader thread at a time)
 *   ops.c       the one struct fuse_lowlevel_ops table; dispatches by node kind
 *   kinds.c     per-kind tables: what a node lists, looks up, reports as attrs
 *   node.c      the inode table (nodeid <-> node, path -> node, lookup counts)
 *   options.c   the command line: one table of options
 *   cache/      names.h: catalog, tag lists, tag -> digest with ttl;
 *               manifests.h: manifests by digest (memory, backed by blobs);
 *               blobs.h: the on-disk blob cache with LRU size cap
 *   readahead.c blobs read by Range requests; parallel read-ahead
 *   walk.c      parallel full walk: prefetch for du / ls -R, statfs total
 *   write.c     rm / rmdir / ln -s / mv: checks, tagging, undo on failure
 *   tagdel.c    deleting one tag (the registry:2 fallback), delete probe
 *   stats.c     .regfs/status and .regfs/stats
 *
 * Error convention: functions return 0 or a negative errno and log the
 * registry's message once (at warn) where it first shows, so that a FUSE
 * operation that fails with EIO always has a log line that says why. */
#ifndef REGFS_FS_MOUNT_H
#define REGFS_FS_MOUNT_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <regfs/client.h>
#include <regfs/digest.h>
#include <regfs/oci.h>

/* Kernel cache lifetime for what is addressed by digest (never changes). */
#define IMMUTABLE_TIMEOUT 86400.0

struct mount_opts {
	char *url, *mountpoint;
	char *user, *pass;
	char *ca_cert;
	bool insecure;
	bool foreground, debug, ro;
	double ttl;
	int timeout_s;
	int max_parallel;
	char *cache_dir;
	uint64_t cache_size;
	char *protect;       /* comma-separated globs (writes; later issue) */
	char *fuse_opts;     /* -o options passed to FUSE, comma-joined */
};

struct mnt;
struct names_cache;
struct manifest_cache;
struct blob_cache;
struct nodes;

struct fs_stats {
	atomic_uint_fast64_t mc_hits, mc_misses;   /* manifests: memory/disk vs registry */
	atomic_uint_fast64_t bc_hits, bc_misses;   /* blob reads served from disk cache */
	atomic_uint_fast64_t nc_hits, nc_misses;   /* catalog / tag lists within ttl */
	atomic_uint_fast64_t range_reads, walks;
	/* requests from the kernel (a warm du should send none) */
	atomic_uint_fast64_t k_lookup, k_getattr, k_readdir, k_opendir;
};

/* The state of one mount: what main.c sets up and every part of fs/ reaches
 * through its arguments (FUSE handlers: fuse_req_userdata(req)). */
struct mnt {
	struct mount_opts o;
	struct regfs_client *client;
	struct names_cache *nc;
	struct manifest_cache *mc;
	struct blob_cache *bc;
	struct nodes *nodes;
	struct fs_stats st;
	time_t mounted_since;
	char *registry_version;  /* Docker-Distribution-API-Version or "unknown" */
	struct fuse_session *se; /* for kernel cache invalidation after writes */
};

/* The mount a FUSE request is for (the userdata given to fuse_session_new). */
static inline struct mnt *req_mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

double now_mono(void);
/* Runs fn(i, arg) for i in [0, n) on up to `maxpar` threads (for blob GETs,
 * which the client has no batch call for); returns when all are done. */
void par_for(size_t n, int maxpar, void (*fn)(size_t i, void *arg), void *arg);
/* Maps a client error to what the FUSE op returns (ENOENT stays, the rest is
 * EIO) and logs why at warn level. */
int fs_client_errno(int rc, const struct regfs_err *e, const char *what);

/* ---- the caches (fs/cache/) ---- */
#include "cache/blobs.h"
#include "cache/manifests.h"
#include "cache/names.h"

/* ---- readahead.c: blobs read by Range requests, read ahead in parallel ---- */
struct ra;
/* State of one open blob file (ino: its nodeid, for FUSE_NOTIFY_STORE;
 * path: for messages). cl reads the blob, st counts range reads, se (may be
 * NULL) receives what is read ahead; all kept. NULL when out of memory. */
struct ra *ra_new(struct regfs_client *cl, struct fs_stats *st, struct fuse_session *se,
		  const char *repo, const char *digest, uint64_t size, fuse_ino_t ino,
		  const char *path);
/* Answers one FUSE read of the file (reply or error sent here). */
void ra_read(struct ra *ra, fuse_req_t req, size_t size, off_t off);
/* The file was released; prefetches in flight finish and free it. */
void ra_close(struct ra *ra);
/* Stops the prefetch threads (after the request loop ended). */
void ra_shutdown(void);

/* ---- node.c ---- */
enum node_kind {
	K_ROOT = 0, K_DIR, K_TAGS, K_TAG, K_MANIFESTS, K_MANIFEST, K_MJSON, K_BLOB,
	K_LAYERS, K_PLATFORMS, K_PLATLINK, K_META, K_METAFILE, K__COUNT
};
/* What a directory says about one child: enough to make its node. */
struct child {
	char *name;
	enum node_kind kind;
	const char *repo;        /* borrowed from parent (copied into the node) */
	char digest[REGFS_DIGEST_MAX];
	char *arg;               /* tag / platform target / meta file name */
	uint64_t size;
	char *mediatype;
};
void child_clear(struct child *c);

struct node {
	fuse_ino_t id;
	uint64_t nlookup;
	enum node_kind kind;
	char *path;              /* "" for root, "team/app/_tags/latest" */
	const char *repo;        /* repository the node belongs to, NULL at top (shared copy, node.c) */
	const char *digest;      /* "" if none; never NULL (shared copy, node.c) */
	char *arg;
	uint64_t size;
	char *mediatype;
	struct node *next_id, *next_path;
	struct graveyard *old;   /* strings replaced by nodes_rename */
	/* ttl directories (ROOT, DIR, TAGS, MANIFESTS): the version of the
	 * listing, reported as mtime (see dir_version_refresh); guarded by a
	 * mutex in kinds.c. */
	bool lver_known;
	uint64_t lhash;          /* hash of the names last listed */
	struct timespec lmtime;  /* changes exactly when the names do */
	double lvalid;           /* now_mono() until which lmtime holds */
};
struct nodes *nodes_new(void);
void nodes_free(struct nodes *t);
struct node *nodes_root(struct nodes *t);
/* Finds or makes the node for `parent/c->name`, adding `nlookup` lookups. */
struct node *nodes_get(struct nodes *t, struct node *parent, const struct child *c,
		       uint64_t nlookup);
struct node *nodes_by_id(struct nodes *t, fuse_ino_t id);
void nodes_forget(struct nodes *t, fuse_ino_t id, uint64_t n);
/* Path-based lookup of an existing node, NULL if none. The node may be
 * freed by a concurrent forget unless the caller holds a lookup on it: use
 * nodes_ref_by_path (one lookup added; drop it with nodes_forget(t, id, 1))
 * to use it after the call. */
struct node *nodes_by_path(struct nodes *t, const char *path);
struct node *nodes_ref_by_path(struct nodes *t, const char *path);
/* The kernel moved a dentry (rename): the node at old_path now is new_path
 * (and, for a tag, names new_arg). */
int nodes_rename(struct nodes *t, const char *old_path, const char *new_path, const char *new_arg);

/* ---- kinds.c ---- */
struct kind_ops {
	/* Lists children into a malloc'd array (sorted for stable offsets). */
	int (*list)(struct mnt *m, struct node *dir, struct child **out, size_t *n);
	int (*lookup)(struct mnt *m, struct node *dir, const char *name, struct child *out);
	int (*readlink)(struct mnt *m, struct node *n, char *buf, size_t size);
	/* Whole content of small generated files. */
	int (*content)(struct mnt *m, struct node *n, char **buf, size_t *len);
};
extern const struct kind_ops *const kind_ops[K__COUNT];
/* Attributes as last known, without a registry round trip (lookup,
 * readdirplus): a ttl directory whose listing version is stale or unknown
 * gets attr timeout 0, so the kernel asks getattr before trusting it. */
int node_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout);
/* For getattr of a ttl directory: lists it (through the name caches, which
 * refetch what the ttl expired) unless its version is still valid, and moves
 * its mtime when the names changed. The kernel keeps a directory's cached
 * listing exactly while its mtime is unchanged. Errors: the listing's
 * (-EIO registry down, -ENOENT gone). */
int dir_version_refresh(struct mnt *m, struct node *n);
/* getattr of the root: dir_version_refresh, except that while the registry
 * cannot be reached it answers from memory at once (0) and retries in the
 * background (see kinds.c). root_probe_shutdown waits for a retry in flight. */
int root_version_refresh(struct mnt *m, struct node *root);
bool root_is_down(void);
void root_probe_shutdown(void);
/* Forgets the listing version of a directory we changed (rm, ln, mv). */
void dir_version_expire(struct node *n);
bool kind_is_ttl_dir(enum node_kind k);
/* The least trustworthy mtime source of the tags behind n: every tag of a
 * TAGS directory, the tags of n's repository that point at a MANIFEST
 * (what `getfattr _tags/<tag>` reaches: the kernel serves no user.* xattr
 * on a symlink itself). -ENODATA when no resolved tag is behind n. */
int node_mtime_source(struct mnt *m, struct node *n, int *src);
bool kind_is_dir(enum node_kind k);
uint64_t path_hash_ino(const char *path);

/* ---- walk.c ---- */
/* Fetches everything the mount shows (catalog, every tag, every manifest)
 * in parallel; computes the deduplicated stored total. Single flight; a
 * result younger than ttl is reused. */
int walk_total(struct mnt *m, uint64_t *bytes, uint64_t *blocks512);
void walk_start_background(struct mnt *m);
/* Waits for a running walk and prevents new ones (before teardown). */
void walk_shutdown(void);

/* ---- tagdel.c: deleting one tag; what writes remember per repository ---- */
/* Deletes `tag` of `repo` and only it (DELETE by tag, or the fallback
 * described in tagdel.c). A refused or failed delete changes nothing:
 * -EPERM (the registry does not allow deletes), -EACCES, -ENOENT, -EIO. */
int tag_delete(struct mnt *m, const char *repo, const char *tag);
/* Does the registry allow deletes in `repo`? Probed with a DELETE of a
 * digest that cannot exist, kept for the ttl: 0, -EPERM, -EACCES, -EIO.
 * Called before a write that will need a delete, so a refusal changes
 * nothing. */
int tag_deletes_allowed(struct mnt *m, const char *repo);
/* After a write that changed `tags` of `repo`: name caches and the kernel's
 * listings of <repo>/_tags and <repo>/_manifests are refreshed. */
void write_changed(struct mnt *m, const char *repo, const char *const *tags, size_t n);
void write_changed1(struct mnt *m, const char *repo, const char *tag);
/* After `tag` of `repo` was deleted (the tag list was fetched just before,
 * so it is kept, minus that tag: no request until the ttl). */
void write_tag_removed(struct mnt *m, const char *repo, const char *tag);
/* Drops the kernel's entry `name` in the directory `dirpath` (if known). */
void write_inval_entry(struct mnt *m, const char *dirpath, const char *name);
/* Maps a client error of a write to its errno and logs why (ENOENT quietly). */
int write_client_rc(int rc, struct regfs_err *e, const char *what);
/* Per-repository times the writes remember (a small table; a repository
 * whose name is too long is not remembered). wstate_time reads one field
 * (offsetof(struct wstate, …)), or sets it when `set` is not NULL. */
struct wstate {
	char repo[256];
	double used;
	double probed_at;  /* when deletes_allowed asked the registry */
	int probe_rc;
	double notag_at;   /* when DELETE by tag answered "cannot delete tags" */
	double rmr_at;     /* when an rm -r reached the repository's manifests */
};
double wstate_time(const char *repo, size_t field, const double *set);

/* ---- write.c: rm / rmdir / ln -s / mv (FUSE entry points) ---- */
void write_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void write_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void write_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void write_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
/* Any other write: EROFS, with a log line saying what is supported. */
void write_other(fuse_req_t req, const char *what);

/* ---- loop.c: the FUSE request loop (see there why not libfuse's) ---- */
/* Serves se until unmount or signal with up to max_threads threads; 0 or a
 * negative errno from reading /dev/fuse. */
int loop_run(struct fuse_session *se, unsigned max_threads);
/* Called by a request's handler before anything that may wait (a registry
 * request, another thread's fetch, a walk): another thread takes over
 * reading requests. A no-op outside loop threads. */
void loop_may_block(void);
/* CLOCK_REALTIME `ms` milliseconds from now: the deadline of a
 * pthread_cond_timedwait that wakes up to look around. */
struct timespec fs_deadline_ms(long ms);
/* pthread_cond_wait for the caches' single-flight waits: a loop thread about
 * to wait for another's fetch first hands over reading requests. */
static inline int fs_wait(pthread_cond_t *cv, pthread_mutex_t *mu)
{
	loop_may_block();
	return pthread_cond_wait(cv, mu);
}

/* ---- stats.c ---- */
int stats_status_text(struct mnt *m, char **buf, size_t *len);
int stats_json_text(struct mnt *m, char **buf, size_t *len);
/* util.c — .regfs/errors: the last FS_ERRORS_MAX failures, oldest first, one line
 * each: "TIME OP /PATH: MESSAGE". */
#define FS_ERRORS_MAX 100
int fs_errors_text(char **buf, size_t *len);
/* Records one failure for .regfs/errors: op ("read", "rm", ...; NULL: the
 * request being served, see fs_op_begin), path inside the mount (NULL: the
 * request's), msg what failed and the registry's answer. Thread-safe, never
 * fails (truncates). fs_client_errno calls it for every failure it logs. */
void fs_error_note(const char *op, const char *path, const char *msg);
/* A failure or refusal the user sees as an errno: logged at warn and noted
 * for .regfs/errors (of the request being served) in one call. */
void fs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What the calling thread is serving, named in the failures it notes:
 * op and the node's path `dir` (+ "/" + name when name is non-NULL). The
 * strings are borrowed until the request is answered; loop.c clears it
 * before each request. */
void fs_op_begin(const char *op, const char *dir, const char *name);

#endif
