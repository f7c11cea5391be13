/* mount.h — internals of the regfs FUSE daemon shared by the files of fs/.
 *
 * Layering (each file one concept):
 *   main.c      pre-mount checks, FUSE session, teardown
 *   loop.c      the request loop (one reader thread at a time)
 *   ops.c       the one struct fuse_lowlevel_ops table: finds the node, calls
 *               its kind's slot, replies
 *   tree/       the node kinds, one complete table each (tree/kind.h is the
 *               manual): root.c, tags.c, manifests.c, manifest.c,
 *               platforms.c, meta.c; listing versions (version.c); the tag
 *               writes (tagwrite.c: rm / ln -s / mv checks, tagging, undo;
 *               tagdel.c: deleting one tag, the registry:2 fallback)
 *   node.c      the inode table (nodeid <-> node, (parent, name) -> node,
 *               lookup counts); node_path.c: paths built on demand;
 *               node_bound.c: its memory bound (node_int.h: what they share)
 *   reaper.c    keeps the table in its share of --memory (the kernel drops
 *               the entries used least recently)
 *   options.c   the command line: one table of options
 *   cache/      names.h: catalog, tag lists, tag -> digest with ttl;
 *               manifests.h: manifests by digest (memory, backed by blobs);
 *               blobs.h: the on-disk blob cache with LRU size cap;
 *               layers.h: layer indexes and merged images for the views
 *   readahead.c blobs read by Range requests; parallel read-ahead
 *   walk.c      parallel full walk: prefetch for du / ls -R, statfs total
 *   stats.c     .regfs/status and .regfs/stats, and --metrics (Prometheus text)
 *
 * The mount's state is one struct mnt, passed to whatever needs it (FUSE
 * handlers get it from fuse_req_userdata); each cache is an object created
 * with what it uses, its handle the first parameter of its functions.
 *
 * Error convention: functions return 0 or a negative errno and log the
 * registry's message once (at warn) where it first shows, so that a FUSE
 * operation that fails with EIO always has a log line that says why
 * (client errors: fs_errno_of_client's one policy). */
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

/* --memory's default. */
#define MOUNT_MEMORY_DEFAULT (256ull << 20)

struct mount_opts {
	char *url, *mountpoint;
	char *user, *pass;
	char *ca_cert, *client_cert, *client_key; /* TLS: --ca-cert, mTLS */
	char *password_file; /* --password-file: the password's first line; "-" = stdin */
	bool insecure;
	bool foreground, debug, ro;
	double ttl;
	int timeout_s;
	int max_parallel;
	char *cache_dir;
	uint64_t cache_size;
	/* --memory: the budget of what the mount keeps in memory (the node
	 * table, the manifest cache); each part takes its documented share. */
	uint64_t memory_bytes;
	char *protect;       /* comma-separated globs: tags rm/mv/ln -sf refuse (EPERM) */
	char *fuse_opts;     /* -o options passed to FUSE, comma-joined */
	char *metrics_addr;  /* --metrics host:port: Prometheus text listener, or NULL */
};

struct mnt;
struct MHD_Daemon;
struct names_cache;
struct manifest_cache;
struct blob_cache;
struct layer_cache;
struct nodes;

struct fs_stats {
	atomic_uint_fast64_t mc_hits, mc_misses;   /* manifests: memory/disk vs registry */
	atomic_uint_fast64_t bc_hits, bc_misses;   /* blob reads served from disk cache */
	atomic_uint_fast64_t nc_hits, nc_misses;   /* catalog / tag lists within ttl */
	atomic_uint_fast64_t range_reads, walks;
	/* layer views (.layers/, .rootfs/): bytes fetched from the registry
	 * for them (whole blobs to build an index, Range reads of spans), and
	 * indexes built here, loaded from the disk cache, fetched from the
	 * registry */
	atomic_uint_fast64_t lv_bytes, lv_built, lv_loaded, lv_fetched;
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
	struct layer_cache *lc;  /* the layer views' indexes (cache/layers.h) */
	struct nodes *nodes;
	struct fs_stats st;
	time_t mounted_since;
	char *registry_version;  /* Docker-Distribution-API-Version or "unknown" */
	struct fuse_session *se; /* for kernel cache invalidation after writes */
	struct MHD_Daemon *metrics; /* --metrics listener (stats.c), or NULL */
};

/* The mount a FUSE request is for (the userdata given to fuse_session_new). */
static inline struct mnt *req_mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

double now_mono(void);
/* The realtime clock `seconds` from now: a deadline for
 * pthread_cond_timedwait (default condition variables). */
struct timespec fs_abstime(double seconds);
/* Runs fn(i, arg) for i in [0, n) on up to `maxpar` threads (for blob GETs,
 * which the client has no batch call for); returns when all are done. */
void par_for(size_t n, int maxpar, void (*fn)(size_t i, void *arg), void *arg);
/* Starts fn(arg) on a detached thread: 0 or a negative errno. */
int fs_thread_detached(void *(*fn)(void *), void *arg);
/* Registry client errors as errno values: ONE policy, one table (util.c,
 * where each row says why). A read (lookup, stat, listing, open, read) and
 * a write (rm, rmdir, ln -s, mv) differ only where the user can act on the
 * difference:
 *
 *   client error   read     write    logged
 *   -ENOENT        ENOENT   ENOENT   debug
 *   -ENOMEM        ENOMEM   ENOMEM   no
 *   -EACCES        EIO      EACCES   warn
 *   -ENOTSUP       EIO      EPERM    warn
 *   anything else  EIO      EIO      warn
 *
 * "warn" lines go to .regfs/errors too (fs_warn), with `what` and the
 * registry's message. */
enum fs_use { FS_READ, FS_WRITE };
int fs_errno_of_client(int rc, const struct regfs_err *e, const char *what, enum fs_use use);
static inline int fs_client_errno(int rc, const struct regfs_err *e, const char *what)
{
	return fs_errno_of_client(rc, e, what, FS_READ);
}
static inline int fs_write_errno(int rc, const struct regfs_err *e, const char *what)
{
	return fs_errno_of_client(rc, e, what, FS_WRITE);
}
/* A write the mount does not support: EROFS, with a log line saying what
 * is supported (none under -o ro, where every write is EROFS). */
int fs_unsupported(struct mnt *m, const char *what);

/* ---- the caches (fs/cache/) ---- */
#include "cache/blobs.h"
#include "cache/layers.h"
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

/* ---- node.c: the inode table ---- */
#include "tree/kind.h"

/* A node knows its own name and its parent, not its path: the path of a
 * node 10 levels down would otherwise be stored 10 times over. Paths are
 * built on demand (nodes_path); st_ino, the hash of the path, is computed
 * from the components (nodes_ino) without building it.
 *
 * What may be read without the table lock, while the caller holds a lookup
 * on the node (the kernel's, or nodes_ref_by_path's): id, kind, repo,
 * digest, size, priv, name and arg. A rename replaces name and arg with new
 * strings but keeps the old ones until the node is freed, so a reader never
 * sees freed memory. parent is the table's: read it only through nodes_*
 * (it changes on a rename, under the lock). */
struct node {
	fuse_ino_t id;
	uint64_t nlookup;
	struct node *parent;     /* NULL for the root only; held (parent->kids) */
	const char *name;        /* "" for the root; one component */
	const char *repo;        /* repository the node belongs to, NULL at top (shared copy, node.c) */
	const char *digest;      /* "" if none; never NULL (shared copy, node.c) */
	const char *arg;         /* the kind's: a tag's name, a DIR's path... */
	uint64_t size;
	struct node *next_id, *next_name;
	struct node *lru_prev, *lru_next; /* the memory bound's order (node.c) */
	/* The kind's own payload (struct child's priv, handed over), freed
	 * with the node by kind_ops[kind]->priv_free. What guards it is the
	 * kind's business (ttl directories: their listing version, under a
	 * mutex of fs/tree/version.c). */
	void *priv;
	uint32_t opens;          /* open file handles (nodes_open) */
	uint32_t kids;           /* child nodes that name this one as parent */
	uint8_t kind;            /* enum node_kind */
	uint8_t flags;           /* NODE_F_* (node.c) */
	uint16_t mt;             /* media type: node_mediatype() */
	char inl[];              /* the name, when the node allocation holds it */
};
/* The node's media type (blobs; NULL if none): one shared copy per type. */
const char *node_mediatype(const struct node *n);
struct nodes *nodes_new(void);
void nodes_free(struct nodes *t);
struct node *nodes_root(struct nodes *t);
/* Finds or makes the node for `parent/c->name`, adding `nlookup` lookups.
 * A node it makes takes c->priv (set NULL in c). */
struct node *nodes_get(struct nodes *t, struct node *parent, struct child *c,
		       uint64_t nlookup);
struct node *nodes_by_id(struct nodes *t, fuse_ino_t id);
/* Drops n lookups; at zero the node leaves the kernel's view (by id, by
 * name) and is freed, or, while child nodes still name it as their parent
 * (a renamed one, one held by nodes_ref_by_path), kept for their paths
 * until the last of them is freed. */
void nodes_forget(struct nodes *t, fuse_ino_t id, uint64_t n);
/* Path-based lookup of an existing node ("" is the root, "a/b" walks the
 * components; an empty component or a leading or trailing '/' finds
 * nothing), NULL if none. The node may be freed by a concurrent forget
 * unless the caller holds a lookup on it: use nodes_ref_by_path (one lookup
 * added; drop it with nodes_forget(t, id, 1)) to use it after the call. */
struct node *nodes_by_path(struct nodes *t, const char *path);
struct node *nodes_ref_by_path(struct nodes *t, const char *path);
/* The kernel moved a dentry (rename): the node `name` in directory p now
 * is `newname` in np (and, when new_arg is not NULL, has arg new_arg); its
 * descendants follow (their paths are built from it). A node that was at
 * the new name is unhashed (the kernel drops it). 0, -ENOENT (no such
 * node), -EINVAL (np is the node or below it), -ENOMEM. */
int nodes_move(struct nodes *t, struct node *p, const char *name, struct node *np,
	       const char *newname, const char *new_arg);
/* nodes_move by paths: the node at old_path goes to new_path (whose
 * directory must have a node). */
int nodes_rename(struct nodes *t, const char *old_path, const char *new_path, const char *new_arg);

/* ---- paths, built on demand ----
 * nodes_path writes n's path inside the mount ("" for the root,
 * "team/app/_tags/latest") into the caller's buf of `size` bytes, NUL
 * terminated: its length, or -ENAMETOOLONG when it does not fit (buf then
 * holds "", or the name alone when that fits — for messages). Nothing is
 * allocated. The kernel limits a name, not a path: a path past PATH_MAX can
 * exist in the mount (deep layer views); nodes_ino never needs the path. */
#define NODE_PATH_MAX 4096
int nodes_path(struct nodes *t, const struct node *n, char *buf, size_t size);
/* st_ino of n (name NULL) or of its child `name`: path_hash_ino of the
 * path, computed from the components (no length limit, no allocation). */
uint64_t nodes_ino(struct nodes *t, const struct node *n, const char *name);
/* st_ino of n's directory (FUSE_ROOT_ID for the root and its children,
 * whose directory is the mount's root). */
uint64_t nodes_parent_ino(struct nodes *t, const struct node *n);
/* How many components n's path has (0: the root). */
size_t nodes_depth(struct nodes *t, const struct node *n);
/* The name of n's ancestor just below the root (n's own name when n is
 * there; "" for the root). The string lives as long as that node. */
const char *nodes_top(struct nodes *t, const struct node *n);

/* ---- the memory bound of the table ----
 * Every node the kernel holds costs memory here until the kernel forgets
 * it, and the kernel forgets only under memory pressure of its own: after a
 * du of a large registry it holds every entry. Past a budget, the nodes
 * least recently used are named to the kernel (reaper.c sends
 * FUSE_NOTIFY_INVAL_ENTRY for each), which drops its entry and sends
 * FORGET, which frees the node. A name looked up again gets a new node with
 * the same st_ino and content. */
#define NODES_MEMORY_SHARE 8 /* the table's budget: --memory / this */
struct nodes_usage {
	uint64_t bytes;   /* the nodes' estimated memory (node.c: node_cost) */
	uint64_t budget;  /* 0: unbounded */
	size_t count;     /* nodes, the root excluded */
	uint64_t asked;   /* nodes picked for the kernel to forget, ever */
};
void nodes_usage(struct nodes *t, struct nodes_usage *u);
/* What n counts for in nodes_usage's bytes now (node.c: node_cost). */
uint32_t nodes_cost(struct nodes *t, const struct node *n);
/* Sets the budget in bytes (0: unbounded, the default). */
void nodes_set_budget(struct nodes *t, uint64_t bytes);
/* Waits up to `seconds` for the table to pass its budget; true when it is
 * over it (at once when it already is). */
bool nodes_wait_pressure(struct nodes *t, double seconds);
/* An open file handle of n: +1 at open, -1 at release. An open node is
 * never picked. */
void nodes_open(struct nodes *t, struct node *n, int delta);
/* One entry for the kernel to drop: its directory's nodeid and its name
 * (malloc'd: the caller frees), and the node's own id (for messages). */
struct node_victim {
	fuse_ino_t parent, id;
	char *name;
};
/* Up to max nodes, least recently used first, whose costs bring the table
 * down to 7/8 of its budget (none when under it). Never the root, an open
 * node, one replaced by a rename or a kind change, one whose directory the
 * kernel has forgotten, or one for whose path keep(path, arg) says true
 * (keep may be NULL; called with the table locked: it must not call
 * nodes_*; a path past NODE_PATH_MAX is kept without asking). Picked and kept nodes become the most recently used. The
 * nodes stay until the kernel forgets them. Returns how many are in v. */
size_t nodes_pick_victims(struct nodes *t, struct node_victim *v, size_t max,
			  bool (*keep)(const char *path, void *arg), void *arg);

/* reaper.c: the thread that keeps the table within --memory /
 * NODES_MEMORY_SHARE (after the session is mounted); stopped after the
 * request loop, before the session ends. 0 or a negative errno (logged:
 * the mount then works unbounded). */
int reaper_start(struct mnt *m);
void reaper_stop(struct mnt *m);

/* st_ino of everything but stored blobs: a hash of the path (stable
 * across remounts, clear of the root's and of small numbers). */
uint64_t path_hash_ino(const char *path);

/* ---- walk.c ---- */
/* Fetches everything the mount shows (catalog, every tag, every manifest)
 * in parallel; computes the deduplicated stored total. Single flight; a
 * result younger than ttl is reused. */
int walk_total(struct mnt *m, uint64_t *bytes, uint64_t *blocks512);
void walk_start_background(struct mnt *m);
/* Waits for a running walk and prevents new ones (before teardown). */
void walk_shutdown(void);
/* The storage accounting (usage.h) of the last walk younger than the ttl
 * (walking now when there is none): *out holds one reference (usage_put).
 * The walk's error (-EIO: logged) when it failed; -ENOMEM. */
struct usage;
int walk_usage(struct mnt *m, struct usage **out);

/* ---- usage_out.c: .regfs/usage (JSON) and .regfs/usage.txt ---- */
/* The file's whole content into *buf (malloc'd, the caller frees): 0,
 * -EIO (the walk failed, logged), -ENOMEM. */
int usage_json_text(struct mnt *m, char **buf, size_t *len);
int usage_table_text(struct mnt *m, char **buf, size_t *len);

/* ---- usage_walk.c: the accounting's input from the walk ---- */
/* What the walk counted: n (repository, manifest digest) pairs, te[i] the
 * tag for a tag's target (NULL: an untagged manifest or an index child);
 * the pairs found missing. Repository names are compared by pointer
 * (the walk's catalog names). */
struct tag_ent;
struct usage_walk_in {
	const char *const *repo, *const *digest;
	const struct tag_ent *const *te;
	size_t n;
	const char *const *gone_repo, *const *gone_digest;
	size_t n_gone;
	struct names_cache *nc;    /* te[i]'s fields are read under its lock */
};
/* Builds the accounting from what the walk kept of every manifest it
 * counted (struct walk_table, usage.h): 0 and *out (usage_put), or -ENOMEM. */
struct walk_table;
int usage_from_walk(const struct walk_table *t, const struct usage_walk_in *in,
		    struct usage **out);

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
/* The same counters as Prometheus text (regfs_mount_*); *buf malloc'd. */
int stats_prometheus_text(struct mnt *m, char **buf, size_t *len);
/* --metrics: starts the listener on m->o.metrics_addr (none when unset: 0),
 * serving GET /metrics. After daemonizing (it runs a thread). 0, or -EINVAL
 * (bad address) / -EADDRINUSE with err naming the address. */
int stats_metrics_start(struct mnt *m, struct regfs_err *err);
/* Stops it (nothing when not started). */
void stats_metrics_stop(struct mnt *m);
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
/* fs_op_begin with the directory as a node of t: its path is built only
 * when a failure is noted (the node lives until the request is answered). */
void fs_op_begin_node(const char *op, struct nodes *t, const struct node *dir,
		      const char *name);

#endif
