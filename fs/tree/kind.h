/* kind.h — what a node of the mount is: its kind, and the table of what
 * each kind does (the manual of struct kind_ops below).
 *
 * Every node has a kind (enum node_kind). kind_ops[kind] says everything
 * that depends on it: whether it is a directory and how it lists and looks
 * up its children, its attributes, how it is opened and read, its link
 * target, its xattrs, which writes it takes. ops.c turns each FUSE request
 * into one call of a slot and a reply, and never tests a kind itself. The
 * kinds live by family in fs/tree/ (root.c, tags.c, manifests.c, manifest.c,
 * platforms.c, meta.c); a new kind is a new table there plus one row in
 * kind.c's kind_ops[].
 *
 * Conventions of every slot: the mount comes first; 0 or a negative errno,
 * the failure logged once where it first shows (see mount.h). A NULL slot
 * means "not supported" and the FUSE operation answers the default written
 * next to the slot. */
#ifndef REGFS_FS_TREE_KIND_H
#define REGFS_FS_TREE_KIND_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <regfs/digest.h>

struct mnt;
struct node;
struct ra;

enum node_kind {
	K_ROOT = 0, K_DIR, K_TAGS, K_TAG, K_MANIFESTS, K_MANIFEST, K_MJSON, K_BLOB,
	K_LAYERS, K_PLATFORMS, K_PLATLINK, K_META, K_METAFILE,
	K_VTOP, K_VDIR, K_VFILE, K_VLINK, K_VSPECIAL, K_VIEWLINK, K__COUNT
};

/* What a directory says about one child: enough to make its node
 * (nodes_get copies the strings; priv is handed over, see below). */
struct child {
	char *name;
	enum node_kind kind;
	const char *repo;        /* borrowed from parent (copied into the node) */
	char digest[REGFS_DIGEST_MAX];
	char *arg;               /* tag / platform target / meta file name */
	uint64_t size;
	char *mediatype;
	/* The kind's own payload for the node (NULL: none). nodes_get moves it
	 * into a node it creates (and sets it NULL here); child_clear frees
	 * what is left with the kind's priv_free. */
	void *priv;
};
/* Frees the strings and the payload; the child is zeroed. */
void child_clear(struct child *c);

/* An open file, made by a kind's open slot and kept in fi->fh until
 * release. The default read and release (kind.c: fh_read, fh_put) serve
 * the four ways a file is read today; a kind with its own read/release
 * slots may use priv instead. */
enum fh_type { FH_MEM, FH_OWNED, FH_FD, FH_RANGE };
struct fh {
	atomic_int ref;     /* open + reads in flight: the kernel may send
	                     * release while an async read is being served */
	const struct kind_ops *ops; /* the kind that opened it */
	enum fh_type type;
	const char *data;   /* FH_MEM: bytes owned by someone living longer (the manifest cache) */
	char *owned;        /* FH_OWNED: generated content, freed with the handle */
	size_t len;
	int fd;             /* FH_FD: -1 otherwise */
	struct ra *ra;      /* FH_RANGE (readahead.c) */
	void *priv;
};

/* Flags of a kind. */
enum {
	/* A directory whose listing comes from the name caches (ttl): its
	 * mtime is the version of the listing (fs/tree/version.c), its name
	 * expires with the ttl, and the kernel may not cache its listing
	 * forever. */
	KIND_TTL_DIR = 1 << 0,
	/* Attributes never change but the name may go (a manifest in
	 * _manifests/): the entry expires with the ttl. */
	KIND_NAME_TTL = 1 << 1,
	/* A stored blob: st_ino comes from the digest (regfs_digest_ino), so
	 * du counts it once however many repositories show it. */
	KIND_DIGEST_INO = 1 << 2,
};

struct kind_ops {
	const char *name;        /* for messages and tests */
	mode_t type;             /* S_IFDIR, S_IFLNK or S_IFREG: d_type in listings;
	                          * only S_IFDIR can be opened as a directory
	                          * (else ENOTDIR) and is never opened as a file
	                          * (EISDIR) */
	unsigned flags;          /* KIND_* */

	/* ---- directories ---- */
	/* Children into a malloc'd array, sorted (readdir offsets are indexes
	 * into it). NULL: not a directory (readdir ENOTDIR). */
	int (*list)(struct mnt *m, struct node *dir, struct child **out, size_t *n);
	/* One child by name. -ENOENT becomes a negative entry cached for the
	 * ttl. NULL: ENOTDIR. */
	int (*lookup)(struct mnt *m, struct node *dir, const char *name, struct child *out);
	/* readdir is about to list dir from offset 0. NULL: nothing. */
	void (*listing_start)(struct mnt *m, struct node *dir);

	/* ---- attributes ---- */
	/* n's attributes and their timeout, without a registry round trip where
	 * the kind can (lookup and readdirplus call it for every entry). The
	 * common fields (owner, times = mount time, st_ino = path hash,
	 * timeout = ttl) are filled in before (node_attr). NULL: EIO. */
	int (*attr)(struct mnt *m, struct node *n, struct stat *st, double *timeout);
	/* getattr: bring what attr reports up to date first (ttl directories
	 * list themselves: fs/tree/version.c). NULL: nothing to do. */
	int (*refresh)(struct mnt *m, struct node *n);
	/* KIND_TTL_DIR: when the data its listing came from was fetched
	 * (now_mono() scale); its version holds until then + ttl. NULL: now. */
	double (*listed_at)(struct mnt *m, struct node *n);

	/* ---- files ---- */
	/* Opens n for reading: fills h (type and data, fd or ra) and may set
	 * fi->keep_cache / fi->direct_io. NULL: EINVAL (EISDIR for a
	 * directory). */
	int (*open)(struct mnt *m, struct node *n, struct fuse_file_info *fi, struct fh *h);
	/* Answers one read of h (reply or error sent here). NULL: fh_read. */
	void (*read)(struct fh *h, fuse_req_t req, size_t size, off_t off);
	/* Frees what open put in h (not h itself). NULL: fh_release. */
	void (*release)(struct fh *h);
	/* Whole content of a small generated file (its size for stat, too).
	 * NULL: not such a file. */
	int (*content)(struct mnt *m, struct node *n, char **buf, size_t *len);
	/* Link target into buf (NUL-terminated, truncated to size). NULL:
	 * EINVAL (not a symlink). */
	int (*readlink)(struct mnt *m, struct node *n, char *buf, size_t size);

	/* ---- xattrs (user.regfs.*) ---- */
	/* Value of xattr `name` into buf (size 0: only its length in *len);
	 * -ERANGE when size is too small. NULL: ENODATA. */
	int (*getxattr)(struct mnt *m, struct node *n, const char *name, char *buf, size_t size,
			size_t *len);
	/* The names n has, each NUL-terminated, into buf (at most size bytes,
	 * large enough for every name of the kind). NULL: none. */
	int (*listxattr)(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len);

	/* ---- writes, on the directory the name is in ----
	 * Called after the generic checks (the node exists; -o ro answers
	 * EROFS). 0 or a negative errno. NULL: EROFS with a log line saying
	 * what the mount supports (fs_unsupported). */
	int (*unlink)(struct mnt *m, struct node *dir, const char *name);
	int (*rmdir)(struct mnt *m, struct node *dir, const char *name);
	/* On success *e is the entry of the new link (its lookup counted). */
	int (*symlink)(struct mnt *m, struct node *dir, const char *link, const char *name,
		       struct fuse_entry_param *e);
	int (*rename)(struct mnt *m, struct node *dir, const char *name, struct node *newdir,
		      const char *newname, unsigned int flags);

	/* ---- payload ---- */
	/* Frees node->priv / child->priv of this kind. NULL: priv is not
	 * owned (unused, or static data). */
	void (*priv_free)(void *priv);
};

extern const struct kind_ops *const kind_ops[K__COUNT];
bool kind_is_dir(enum node_kind k);
bool kind_is_ttl_dir(enum node_kind k);

/* Attributes as last known: the common fields, then the kind's attr slot.
 * A ttl directory whose listing version is stale or unknown gets attr
 * timeout 0, so the kernel asks getattr before trusting it. */
int node_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout);

/* The entry of n for a lookup-like reply (lookup, readdirplus, symlink):
 * node_attr, and the name's timeout (the ttl where the name may go). */
int node_entry(struct mnt *m, struct node *n, struct fuse_entry_param *e);

/* The default file handle: reads from memory, a file descriptor or by
 * Range requests (readahead.c); fh_put drops one reference and frees the
 * handle with the last (the kind's release slot, or fh_release, first). */
void fh_read(struct fh *h, fuse_req_t req, size_t size, off_t off);
void fh_release(struct fh *h);
void fh_put(struct fh *h);

/* ---- fs/tree/version.c: listing versions of ttl directories ---- */
/* The payload (node->priv) of a KIND_TTL_DIR node: the version of its
 * listing, reported as mtime. Made by the first refresh; guarded by a
 * mutex of version.c. */
struct dir_version {
	bool known;
	uint64_t hash;           /* of the names last listed (0: after an outage) */
	struct timespec mtime;   /* changes exactly when the names do */
	double valid;            /* now_mono() until which mtime holds */
};
/* n's version, made (unknown) when it has none; NULL when out of memory.
 * Its fields may be read or set without the mutex only while no other
 * thread uses n (unit tests). */
struct dir_version *dir_version_of(struct node *n);
/* For getattr of a ttl directory: lists it (through the name caches, which
 * refetch what the ttl expired) unless its version is still valid, and moves
 * its mtime when the names changed. The kernel keeps a directory's cached
 * listing exactly while its mtime is unchanged. 0 for other kinds. Errors:
 * the listing's (-EIO registry down, -ENOENT gone), -ENOMEM. */
int dir_version_refresh(struct mnt *m, struct node *n);
/* Forgets the listing version of a directory we changed (rm, ln, mv). */
void dir_version_expire(struct node *n);
/* Fills st_mtim/st_ctim and the attr timeout of a ttl directory from its
 * listing version (timeout 0 while unknown or expired). */
void dir_version_attr(struct node *n, struct stat *st, double *timeout);
/* The registry could not be reached: a new mtime for n, kept until its next
 * successful listing, so the kernel forgets what it listed before. */
void dir_version_outage(struct node *n);

/* ---- fs/tree/root.c: the root while the registry is unreachable ---- */
/* getattr of the root: dir_version_refresh, except that while the registry
 * cannot be reached it answers from memory at once (0) and retries in the
 * background. root_probe_shutdown waits for a retry in flight. */
int root_version_refresh(struct mnt *m, struct node *root);
bool root_is_down(void);
void root_probe_shutdown(void);

#endif
