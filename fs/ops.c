/* ops.c — the one FUSE low-level operations table, a dispatcher in the
 * manner of libfuse's lib/fuse_lowlevel.c: each operation unpacks the
 * request, finds the node, calls the slot of the node's kind
 * (fs/tree/kind.h) and replies. What a node is and does is decided there;
 * this file only speaks FUSE: entry/attr replies with the right timeouts,
 * directories (opened without a round trip and cached by the kernel,
 * versioned by mtime: see fs/tree/version.c), readdirplus, file handles,
 * xattrs and statfs. Writes a kind has no slot for, and every other write,
 * are EROFS with a log line saying what is supported. */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/limits.h> /* XATTR_SIZE_MAX, XATTR_LIST_MAX */
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <regfs/log.h>

#define RANGE_CHUNK (1u << 20)

static struct node *N(struct mnt *m, fuse_ino_t ino)
{
	return nodes_by_id(m->nodes, ino);
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : (rc ? rc : EIO));
}

static void reply_unsupported(fuse_req_t req, const char *what);

static bool no_opendir; /* the kernel opens directories without asking us */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Adaptive readdirplus would fall back to plain readdir + one lookup
	 * per entry for `ls`; always send attributes with the listing. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* The kernel checks a directory's mtime before reusing its cached
	 * listing only with this on (libfuse's default; said explicitly). */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
	conn->max_readahead = RANGE_CHUNK;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mnt *m = req_mnt(req);
	atomic_fetch_add(&m->st.k_lookup, 1);
	struct node *p = N(m, parent);
	if (!p)
		return reply_err(req, -ESTALE);
	fs_op_begin_node("lookup", m->nodes, p, name);
	const struct kind_ops *k = kind_ops[p->kind];
	if (!k->lookup)
		return reply_err(req, -ENOTDIR);
	struct child c;
	int rc = k->lookup(m, p, name, &c);
	if (rc == -ENOENT) {
		/* Negative entry, cached for the ttl: a tag or repository pushed
		 * later shows up once it expires. */
		struct fuse_entry_param e = {.ino = 0, .entry_timeout = m->o.ttl};
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		return reply_err(req, rc);
	struct node *n = nodes_get(m->nodes, p, &c, 1);
	child_clear(&c);
	if (!n)
		return reply_err(req, -ENOMEM);
	struct fuse_entry_param e;
	rc = node_entry(m, n, &e);
	if (rc) {
		nodes_forget(m->nodes, n->id, 1);
		return reply_err(req, rc);
	}
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct mnt *m = req_mnt(req);
	nodes_forget(m->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct mnt *m = req_mnt(req);
	for (size_t i = 0; i < count; i++)
		nodes_forget(m->nodes, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = req_mnt(req);
	atomic_fetch_add(&m->st.k_getattr, 1);
	(void)fi;
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	fs_op_begin_node("stat", m->nodes, n, NULL);
	struct stat st;
	double t;
	const struct kind_ops *k = kind_ops[n->kind];
	int rc = k->refresh ? k->refresh(m, n) : 0;
	if (rc == 0)
		rc = node_attr(m, n, &st, &t);
	if (rc)
		return reply_err(req, rc);
	fuse_reply_attr(req, &st, t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	const struct kind_ops *k = kind_ops[n->kind];
	if (!k->readlink)
		return reply_err(req, -EINVAL);
	fs_op_begin_node("readlink", m->nodes, n, NULL);
	char buf[512];
	int rc = k->readlink(m, n, buf, sizeof buf);
	if (rc)
		return reply_err(req, rc);
	fuse_reply_readlink(req, buf);
}

/* ---- directories ---- */

/* With kernel support, ENOSYS here makes the kernel open every directory
 * itself from now on, with its listing cache on (FOPEN_CACHE_DIR |
 * FOPEN_KEEP_CACHE): a warm `du -s` of the whole mount then runs without a
 * single request to us. Without it, directories fixed by a digest are cached
 * and ttl ones are listed afresh at every open. Either way there is no
 * handle: readdir lists from the name caches at each call. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = req_mnt(req);
	atomic_fetch_add(&m->st.k_opendir, 1);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	const struct kind_ops *k = kind_ops[n->kind];
	if (!S_ISDIR(k->type))
		return reply_err(req, -ENOTDIR);
	if (no_opendir)
		return reply_err(req, -ENOSYS);
	fi->fh = 0;
	if (!(k->flags & KIND_TTL_DIR)) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

struct dirh {
	struct child *v;
	size_t n;
};

static void dirh_clear(struct dirh *d)
{
	for (size_t i = 0; d->v && i < d->n; i++)
		child_clear(&d->v[i]);
	free(d->v);
}

/* The st_ino that stat reports (node_attr), for d_ino in listings: a
 * listing's "." and ".." included, which readdir(3) hides when it is 0. */
static ino_t dir_ino(struct mnt *m, const struct node *dn)
{
	return dn->id == FUSE_ROOT_ID ? FUSE_ROOT_ID : nodes_ino(m->nodes, dn, NULL);
}

/* (the root's parent is outside the mount: FUSE_ROOT_ID) */
static ino_t parent_ino(struct mnt *m, const struct node *dn)
{
	return nodes_parent_ino(m->nodes, dn);
}

static ino_t child_ino(struct mnt *m, const struct node *dn, const struct child *c)
{
	if (kind_ops[c->kind]->flags & KIND_DIGEST_INO)
		return regfs_digest_ino(c->digest);
	return nodes_ino(m->nodes, dn, c->name);
}

/* The listings of directories fixed by a digest (no KIND_TTL_DIR) between
 * two readdir calls of one listing: each call would otherwise list the whole
 * directory again, which makes a directory of n entries (a layer's, say)
 * cost n^2 / entries-per-reply. A listing that one reply finished is kept
 * as its length only (v NULL), for every directory: the kernel learns the
 * end of a listing only from a reply with no entries, so every directory du
 * walks costs a second readdir, which would otherwise list it again (a
 * manifest's from the manifest cache, or from disk once dropped; a ttl
 * directory's _manifests/ every manifest in it) to send nothing. For a ttl
 * directory that answer is the end of the listing its first reply came
 * from, as if the listing were taken at once. A new listing of a ttl
 * directory (offset 0) forgets what was kept of the last one, so a length
 * can end only the listing that stored it or one of the same moment. One
 * entry per directory; a reader takes it out and puts it back after its
 * reply, so no two threads share one. */
#define KEPT_LISTINGS 8
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kept {
	fuse_ino_t id; /* the directory's nodeid (never reused); 0: free */
	struct dirh d;
} kept[KEPT_LISTINGS];
static unsigned kept_next;

/* Caller holds kept_mu: forgets what is kept of directory id. */
static void kept_forget(fuse_ino_t id)
{
	for (size_t i = 0; i < KEPT_LISTINGS; i++)
		if (kept[i].id == id) {
			dirh_clear(&kept[i].d);
			kept[i] = (struct kept){0};
		}
}

static void listing_forget(const struct node *dn)
{
	pthread_mutex_lock(&kept_mu);
	kept_forget(dn->id);
	pthread_mutex_unlock(&kept_mu);
}

/* dn's kept listing, if it can answer a call at off: a full one always, a
 * length-only one only past its end. */
static bool listing_take(const struct node *dn, off_t off, struct dirh *d)
{
	bool found = false;
	pthread_mutex_lock(&kept_mu);
	for (size_t i = 0; i < KEPT_LISTINGS && !found; i++) {
		if (kept[i].id && kept[i].id == dn->id) {
			if (!kept[i].d.v && off < (off_t)kept[i].d.n + 2)
				break; /* a rewind: list again */
			*d = kept[i].d;
			kept[i] = (struct kept){0};
			found = true;
		}
	}
	pthread_mutex_unlock(&kept_mu);
	return found;
}

/* Keeps d (taken over; v NULL: its length only) for dn's next readdir, in
 * place of what was kept of dn; the oldest kept one goes. */
static void listing_keep(const struct node *dn, struct dirh *d)
{
	pthread_mutex_lock(&kept_mu);
	kept_forget(dn->id);
	struct kept old = kept[kept_next];
	kept[kept_next] = (struct kept){dn->id, *d};
	kept_next = (kept_next + 1) % KEPT_LISTINGS;
	pthread_mutex_unlock(&kept_mu);
	dirh_clear(&old.d);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct mnt *m = req_mnt(req);
	(void)fi;
	atomic_fetch_add(&m->st.k_readdir, 1);
	struct node *dn = N(m, ino);
	if (!dn)
		return reply_err(req, -ESTALE);
	const struct kind_ops *k = kind_ops[dn->kind];
	if (!k->list)
		return reply_err(req, -ENOTDIR);
	fs_op_begin_node("readdir", m->nodes, dn, NULL);
	if (off == 0 && k->listing_start)
		k->listing_start(m, dn);
	/* Offsets are indexes into the sorted listing; a listing that changes
	 * between two calls (ttl expiry) may repeat or skip an entry, as on
	 * any network file system. */
	struct dirh dh, *d = &dh;
	bool fixed = !(k->flags & KIND_TTL_DIR);
	if (!fixed && off == 0)
		listing_forget(dn); /* a new listing */
	if (!(off > 0 && listing_take(dn, off, d))) {
		int lrc = k->list(m, dn, &d->v, &d->n);
		if (lrc)
			return reply_err(req, lrc);
	}
	char *buf = malloc(size);
	if (!buf) {
		dirh_clear(d);
		return reply_err(req, -ENOMEM);
	}
	size_t pos = 0;
	/* Offsets: 0 ".", 1 "..", 2+i child i; an entry's off is the next one. */
	off_t i;
	for (i = off; i < (off_t)d->n + 2; i++) {
		size_t sz;
		const char *name = i == 0 ? "." : i == 1 ? ".." : d->v[i - 2].name;
		if (i < 2 || !plus) {
			struct stat st = {0};
			st.st_mode = i < 2 ? S_IFDIR : kind_ops[d->v[i - 2].kind]->type;
			st.st_ino = i == 0 ? dir_ino(m, dn) : i == 1 ? parent_ino(m, dn)
					      : child_ino(m, dn, &d->v[i - 2]);
			if (plus) {
				/* ino 0: no attributes, the kernel looks it up when needed;
				 * d_ino must not be 0 (readdir(3) skips such entries). */
				struct fuse_entry_param e = {.attr = st};
				sz = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, i + 1);
			} else {
				sz = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
			}
			if (sz > size - pos)
				break;
			pos += sz;
			continue;
		}
		struct node *n = nodes_get(m->nodes, dn, &d->v[i - 2], 1);
		struct fuse_entry_param e;
		if (!n || node_entry(m, n, &e) != 0) {
			/* No attributes for this one (e.g. a tag deleted meanwhile):
			 * ino 0 tells the kernel to look it up when it needs it. */
			if (n)
				nodes_forget(m->nodes, n->id, 1);
			memset(&e, 0, sizeof e);
			e.attr.st_mode = kind_ops[d->v[i - 2].kind]->type;
			e.attr.st_ino = child_ino(m, dn, &d->v[i - 2]);
			n = NULL;
		}
		sz = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, i + 1);
		if (sz > size - pos) {
			if (n)
				nodes_forget(m->nodes, n->id, 1); /* not handed over */
			break;
		}
		pos += sz;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
	if (fixed && i < (off_t)d->n + 2) {
		listing_keep(dn, d); /* more to come */
	} else if (pos > 0 && i == (off_t)d->n + 2) {
		/* Ended here: the call that asks past the end finds its length. */
		dirh_clear(d);
		*d = (struct dirh){NULL, d->n};
		listing_keep(dn, d);
	} else {
		dirh_clear(d);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

/* ---- files ---- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return reply_unsupported(req, "writing a file");
	const struct kind_ops *k = kind_ops[n->kind];
	if (S_ISDIR(k->type))
		return reply_err(req, -EISDIR);
	fs_op_begin_node("open", m->nodes, n, NULL);
	struct fh *h = calloc(1, sizeof *h);
	if (!h)
		return reply_err(req, -ENOMEM);
	h->fd = -1;
	h->ops = k;
	atomic_store(&h->ref, 1);
	int rc = k->open ? k->open(m, n, fi, h) : -EINVAL;
	if (rc) {
		fh_put(h);
		return reply_err(req, rc);
	}
	fi->fh = (uintptr_t)h;
	nodes_open(m->nodes, n, 1); /* never dropped while open (reaper.c) */
	if (fuse_reply_open(req, fi) != 0) { /* interrupted: no release will come */
		nodes_open(m->nodes, n, -1);
		fh_put(h);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	atomic_fetch_add(&h->ref, 1);
	if (h->ops->read)
		h->ops->read(h, req, size, off);
	else
		fh_read(h, req, size, off);
	fh_put(h);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = req_mnt(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	struct node *n = N(m, ino);
	if (n)
		nodes_open(m->nodes, n, -1);
	if (h)
		fh_put(h);
	fuse_reply_err(req, 0);
}

/* ---- xattrs: user.regfs.* (which a node has: its kind's slots) ---- */

/* xattr values and name lists: a small reply from the stack, a larger one
 * (a layer entry's xattrs can be up to the kernel's 64 KiB) from the heap. */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	const struct kind_ops *k = kind_ops[n->kind];
	char small[512], *buf = small;
	size_t len = 0, cap = size > XATTR_SIZE_MAX ? XATTR_SIZE_MAX : size;
	if (cap > sizeof small && !(buf = malloc(cap)))
		return reply_err(req, -ENOMEM);
	int rc = k->getxattr ? k->getxattr(m, n, name, buf, cap, &len) : -ENODATA;
	if (rc)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	if (buf != small)
		free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	const struct kind_ops *k = kind_ops[n->kind];
	char *buf = k->listxattr ? malloc(XATTR_LIST_MAX) : NULL;
	size_t len = 0;
	int rc = !k->listxattr ? 0 : buf ? k->listxattr(m, n, buf, XATTR_LIST_MAX, &len) : -ENOMEM;
	if (rc)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

/* ---- statfs: the walk's total, never waiting on a registry that hangs ----
 *
 * A system-wide `df` asks every mount. The total comes from the walk
 * (walk.c), which can take many requests; statfs runs it in a thread and
 * waits while the registry makes progress (bytes arrive), giving up after
 * --timeout without any: then it answers the last total
 * known, and so does every statfs until that walk ends. */
static pthread_mutex_t sfmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sfcv = PTHREAD_COND_INITIALIZER;
static bool sf_running, sf_gave_up;
static uint64_t sf_gen, sf_blocks;

static void *statfs_walk(void *arg)
{
	struct mnt *m = arg;
	uint64_t bytes = 0, blocks = 0;
	int rc = walk_total(m, &bytes, &blocks); /* on failure: the last total known */
	if (rc)
		log_warn("statfs: the registry's total could not be computed; df reports the "
			 "last one known (%llu bytes)", (unsigned long long)bytes);
	pthread_mutex_lock(&sfmu);
	sf_blocks = blocks;
	sf_running = false;
	sf_gen++;
	pthread_cond_broadcast(&sfcv);
	pthread_mutex_unlock(&sfmu);
	return NULL;
}

static uint64_t registry_progress(struct mnt *m)
{
	struct regfs_client_stats cs = {0};
	if (m->client)
		regfs_client_get_stats(m->client, &cs);
	return cs.bytes_fetched; /* a request that times out brings none */
}

/* Caller holds sfmu; returns with it held. */
static void statfs_wait(struct mnt *m, uint64_t gen)
{
	loop_may_block();
	uint64_t seen = registry_progress(m);
	double quiet_since = now_mono();
	while (sf_gen == gen) {
		struct timespec ts = fs_abstime(0.2);
		pthread_cond_timedwait(&sfcv, &sfmu, &ts);
		uint64_t p = registry_progress(m);
		if (p != seen) {
			seen = p;
			quiet_since = now_mono();
		} else if (now_mono() - quiet_since >= m->o.timeout_s) {
			sf_gave_up = true;
			log_warn("statfs: no answer from the registry for %d s; df reports the last "
				 "total known", m->o.timeout_s);
			return;
		}
	}
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct mnt *m = req_mnt(req);
	(void)ino;
	fs_op_begin("statfs", "", NULL);
	pthread_mutex_lock(&sfmu);
	if (!sf_running) {
		if (fs_thread_detached(statfs_walk, m) == 0) {
			sf_running = true;
			sf_gave_up = false;
		} else {
			log_warn("statfs: cannot start a thread; df reports the last total known");
		}
	}
	if (sf_running && !sf_gave_up)
		statfs_wait(m, sf_gen);
	struct statvfs sv = {0};
	sv.f_bsize = sv.f_frsize = 512;
	sv.f_blocks = sf_blocks;
	pthread_mutex_unlock(&sfmu);
	sv.f_bfree = sv.f_bavail = 0;
	sv.f_files = sv.f_ffree = 0;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ---- writes: the kinds' write slots; everything else is EROFS ---- */

/* EROFS, with a log line saying what the mount supports. */
static void reply_unsupported(fuse_req_t req, const char *what)
{
	fuse_reply_err(req, -fs_unsupported(req_mnt(req), what));
}

/* The directory a write happens in, after the checks every write has;
 * NULL when the reply was sent. */
static struct node *write_dir(fuse_req_t req, fuse_ino_t parent, const char *op,
			      const char *name)
{
	struct mnt *m = req_mnt(req);
	loop_may_block(); /* writes go to the registry */
	struct node *p = N(m, parent);
	if (!p)
		return reply_err(req, -ESTALE), NULL;
	fs_op_begin_node(op, m->nodes, p, name);
	if (m->o.ro)
		return reply_err(req, -EROFS), NULL;
	return p;
}

/* rm and rmdir: the directory's unlink or rmdir slot. */
static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct mnt *m = req_mnt(req);
	struct node *p = write_dir(req, parent, dir ? "rmdir" : "rm", name);
	if (!p)
		return;
	const struct kind_ops *k = kind_ops[p->kind];
	int (*slot)(struct mnt *, struct node *, const char *) = dir ? k->rmdir : k->unlink;
	int rc = slot ? slot(m, p, name)
		      : fs_unsupported(m, dir ? "rmdir outside _manifests" : "rm outside _tags");
	fuse_reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, true);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct mnt *m = req_mnt(req);
	struct node *p = write_dir(req, parent, "ln -s", name);
	if (!p)
		return;
	const struct kind_ops *k = kind_ops[p->kind];
	struct fuse_entry_param e;
	int rc = k->symlink ? k->symlink(m, p, link, name, &e)
			    : fs_unsupported(m, "ln -s outside _tags");
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_entry(req, &e);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct mnt *m = req_mnt(req);
	loop_may_block(); /* writes go to the registry */
	struct node *p = N(m, parent), *np = N(m, newparent);
	if (!p || !np)
		return reply_err(req, -ESTALE);
	fs_op_begin_node("mv", m->nodes, p, name);
	if (m->o.ro)
		return reply_err(req, -EROFS);
	const struct kind_ops *k = kind_ops[p->kind];
	int rc = k->rename ? k->rename(m, p, name, np, newname, flags)
			   : fs_unsupported(m, "mv outside _tags");
	fuse_reply_err(req, -rc);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino; (void)a; (void)to_set; (void)fi;
	reply_unsupported(req, "chmod/chown/truncate/touch");
}
static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t r)
{
	(void)p; (void)n; (void)m; (void)r;
	reply_unsupported(req, "mknod");
}
static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{
	(void)p; (void)n; (void)m;
	reply_unsupported(req, "mkdir");
}
static void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn)
{
	(void)i; (void)np; (void)nn;
	reply_unsupported(req, "ln (hard link)");
}
static void op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m,
		      struct fuse_file_info *fi)
{
	(void)p; (void)n; (void)m; (void)fi;
	reply_unsupported(req, "creating a file");
}
static void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v,
			size_t s, int f)
{
	(void)i; (void)n; (void)v; (void)s; (void)f;
	reply_unsupported(req, "setxattr");
}
static void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{
	(void)i; (void)n;
	reply_unsupported(req, "removexattr");
}

const struct fuse_lowlevel_ops regfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
};
