/* ops.c — the one FUSE low-level operations table.
 *
 * Every request is dispatched by the node's kind to kinds.c; this file only
 * speaks FUSE: entry/attr replies with the right timeouts, directories
 * (opened without a round trip and cached by the kernel, versioned by mtime:
 * see kinds.c), readdirplus, file handles (manifest bytes
 * from memory, blobs from the disk cache or by Range requests), xattrs and
 * statfs. Tag/manifest writes are in write.c; every other write is EROFS. */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <regfs/log.h>

/* Blobs up to this size are fetched whole into the disk cache on open (one
 * verified request); bigger ones are read by Range requests (readahead.c). */
#define FILL_MAX (64ull << 20)
#define RANGE_CHUNK (1u << 20)

static struct node *N(struct mnt *m, fuse_ino_t ino)
{
	return nodes_by_id(m->nodes, ino);
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : (rc ? rc : EIO));
}

int ops_entry(struct mnt *m, struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	double t;
	int rc = node_attr(m, n, &e->attr, &t);
	if (rc)
		return rc;
	e->ino = n->id;
	e->attr_timeout = t;
	/* A manifest's content never changes but whether the repository still
	 * has it does: its name in _manifests/ expires with the ttl. So do the
	 * names of ttl directories, whatever their attributes' timeout (0 while
	 * their listing version is unknown, which must not cost a lookup at
	 * every path walk through them). */
	e->entry_timeout = n->kind == K_MANIFEST || kind_is_ttl_dir(n->kind) ? m->o.ttl : t;
	return 0;
}

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
	fs_op_begin("lookup", p->path, name);
	const struct kind_ops *ops = kind_ops[p->kind];
	if (!ops->lookup)
		return reply_err(req, -ENOTDIR);
	struct child c;
	int rc = ops->lookup(m, p, name, &c);
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
	rc = ops_entry(m, n, &e);
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
	fs_op_begin("stat", n->path, NULL);
	struct stat st;
	double t;
	int rc = n->kind == K_ROOT ? root_version_refresh(m, n) : dir_version_refresh(m, n);
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
	if (!kind_ops[n->kind]->readlink)
		return reply_err(req, -EINVAL);
	fs_op_begin("readlink", n->path, NULL);
	char buf[512];
	int rc = kind_ops[n->kind]->readlink(m, n, buf, sizeof buf);
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
	if (!kind_is_dir(n->kind))
		return reply_err(req, -ENOTDIR);
	if (no_opendir)
		return reply_err(req, -ENOSYS);
	fi->fh = 0;
	if (!kind_is_ttl_dir(n->kind)) {
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
	for (size_t i = 0; i < d->n; i++)
		child_clear(&d->v[i]);
	free(d->v);
}

static mode_t kind_mode(enum node_kind k)
{
	if (kind_is_dir(k))
		return S_IFDIR;
	if (k == K_TAG || k == K_PLATLINK)
		return S_IFLNK;
	return S_IFREG;
}

/* The st_ino that stat reports (kinds.c), for d_ino in listings: a
 * listing's "." and ".." included, which readdir(3) hides when it is 0. */
static ino_t dir_ino(const struct node *dn)
{
	return dn->kind == K_ROOT ? FUSE_ROOT_ID : path_hash_ino(dn->path);
}

static ino_t parent_ino(const struct node *dn)
{
	const char *slash = strrchr(dn->path, '/');
	if (dn->kind == K_ROOT || !slash)
		return FUSE_ROOT_ID; /* the root's parent is outside the mount */
	char p[4096];
	snprintf(p, sizeof p, "%.*s", (int)(slash - dn->path), dn->path);
	return path_hash_ino(p);
}

static ino_t child_ino(const struct node *dn, const struct child *c)
{
	if (c->kind == K_BLOB || c->kind == K_MJSON)
		return regfs_digest_ino(c->digest);
	char p[4096];
	snprintf(p, sizeof p, "%s%s%s", dn->path, *dn->path ? "/" : "", c->name);
	return path_hash_ino(p);
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
	if (!kind_is_dir(dn->kind))
		return reply_err(req, -ENOTDIR);
	fs_op_begin("readdir", dn->path, NULL);
	if (dn->kind == K_ROOT && off == 0 && !root_is_down())
		walk_start_background(m); /* (down: it would only queue before this listing) */
	/* Offsets are indexes into the sorted listing; a listing that changes
	 * between two calls (ttl expiry) may repeat or skip an entry, as on
	 * any network file system. */
	struct dirh dh, *d = &dh;
	int lrc = kind_ops[dn->kind]->list(m, dn, &d->v, &d->n);
	if (lrc)
		return reply_err(req, lrc);
	char *buf = malloc(size);
	if (!buf) {
		dirh_clear(d);
		return reply_err(req, -ENOMEM);
	}
	size_t pos = 0;
	/* Offsets: 0 ".", 1 "..", 2+i child i; an entry's off is the next one. */
	for (off_t i = off; i < (off_t)d->n + 2; i++) {
		size_t sz;
		const char *name = i == 0 ? "." : i == 1 ? ".." : d->v[i - 2].name;
		if (i < 2 || !plus) {
			struct stat st = {0};
			st.st_mode = i < 2 ? S_IFDIR : kind_mode(d->v[i - 2].kind);
			st.st_ino = i == 0 ? dir_ino(dn) : i == 1 ? parent_ino(dn)
					      : child_ino(dn, &d->v[i - 2]);
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
		if (!n || ops_entry(m, n, &e) != 0) {
			/* No attributes for this one (e.g. a tag deleted meanwhile):
			 * ino 0 tells the kernel to look it up when it needs it. */
			if (n)
				nodes_forget(m->nodes, n->id, 1);
			memset(&e, 0, sizeof e);
			e.attr.st_mode = kind_mode(d->v[i - 2].kind);
			e.attr.st_ino = child_ino(dn, &d->v[i - 2]);
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
	dirh_clear(d);
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

enum fh_kind { FH_MEM, FH_OWNED, FH_FD, FH_RANGE };

struct fh {
	atomic_int ref;     /* open + reads in flight: the kernel may send
	                     * release while an async read is being served */
	enum fh_kind kind;
	const char *data;   /* FH_MEM: manifest bytes owned by mcache */
	char *owned;        /* FH_OWNED: generated content */
	size_t len;
	int fd;             /* FH_FD */
	struct ra *ra;      /* FH_RANGE (readahead.c) */
};

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return write_other(req, "writing a file");
	if (kind_is_dir(n->kind))
		return reply_err(req, -EISDIR);
	fs_op_begin("open", n->path, NULL);
	struct fh *h = calloc(1, sizeof *h);
	if (!h)
		return reply_err(req, -ENOMEM);
	h->fd = -1;
	atomic_store(&h->ref, 1);
	int rc = 0;
	if (n->kind == K_MJSON) {
		const struct mentry *e;
		rc = manifest_cache_get(m->mc, n->repo, n->digest, &e);
		if (rc == 0) {
			h->kind = FH_MEM;
			h->data = e->data;
			h->len = e->len;
			fi->keep_cache = 1;
		}
	} else if (n->kind == K_METAFILE) {
		rc = kind_ops[n->kind]->content(m, n, &h->owned, &h->len);
		h->kind = FH_OWNED;
		fi->direct_io = 1; /* changes on every read */
	} else if (n->kind == K_BLOB) {
		fi->keep_cache = 1;
		int fd = blob_cache_open(m->bc, n->digest);
		if (fd >= 0) {
			atomic_fetch_add(&m->st.bc_hits, 1);
		} else if (n->size <= FILL_MAX) {
			fd = blob_cache_fill(m->bc, m->client, n->repo, n->digest, n->size);
			if (fd < 0 && fd != -ENOSYS && fd != -EFBIG)
				rc = fd;
		}
		if (fd >= 0) {
			h->kind = FH_FD;
			h->fd = fd;
		} else if (rc == 0) {
			h->kind = FH_RANGE;
			h->ra = ra_new(m->client, &m->st, m->se, n->repo, n->digest, n->size, ino,
				       n->path);
			if (!h->ra)
				rc = -ENOMEM;
		}
	} else {
		rc = -EINVAL;
	}
	if (rc) {
		free(h->owned);
		free(h);
		return reply_err(req, rc);
	}
	fi->fh = (uintptr_t)h;
	fuse_reply_open(req, fi);
}

static void do_read(fuse_req_t req, struct fh *h, size_t size, off_t off)
{
	if (h->kind == FH_MEM || h->kind == FH_OWNED) {
		const char *d = h->kind == FH_MEM ? h->data : h->owned;
		if ((size_t)off >= h->len)
			return (void)fuse_reply_buf(req, NULL, 0);
		size_t n = h->len - (size_t)off < size ? h->len - (size_t)off : size;
		fuse_reply_buf(req, d + off, n);
		return;
	}
	if (h->kind == FH_FD) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = h->fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	ra_read(h->ra, req, size, off);
}

static void fh_put(struct fh *h)
{
	if (atomic_fetch_sub(&h->ref, 1) != 1)
		return;
	if (h->fd >= 0)
		close(h->fd);
	ra_close(h->ra);
	free(h->owned);
	free(h);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	atomic_fetch_add(&h->ref, 1);
	do_read(req, h, size, off);
	fh_put(h);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	if (h)
		fh_put(h);
	fuse_reply_err(req, 0);
}

/* ---- xattrs: user.regfs.digest / user.regfs.mediatype / user.regfs.mtime-source ----
 *
 * mtime-source (pushed / created / unknown, see enum mtime_src) is on
 * _tags/ and on the manifest directories tags point at: Linux serves no
 * user.* xattr on a symlink, so `getfattr -n user.regfs.mtime-source
 * _tags/<tag>` follows the link to the manifest, which answers for the tags
 * of its repository that point at it (the least trustworthy of them). */

static const char MTIME_SOURCE[] = "user.regfs.mtime-source";

static int xattr_value(struct mnt *m, struct node *n, const char *name, char *buf, size_t size,
		       size_t *len)
{
	const char *v = NULL;
	if (n->kind != K_MJSON && n->kind != K_BLOB && n->kind != K_MANIFEST && n->kind != K_TAGS)
		return -ENODATA;
	if (strcmp(name, MTIME_SOURCE) == 0) {
		int src;
		int rc = node_mtime_source(m, n, &src);
		if (rc)
			return rc;
		v = mtime_src_name(src);
	} else if (n->kind == K_TAGS) {
		return -ENODATA;
	} else if (strcmp(name, "user.regfs.digest") == 0) {
		v = n->digest;
	} else if (strcmp(name, "user.regfs.mediatype") == 0) {
		v = n->mediatype;
		if (n->kind == K_MANIFEST) {
			const struct mentry *e;
			int rc = manifest_cache_get(m->mc, n->repo, n->digest, &e);
			if (rc)
				return rc;
			v = e->m->media_type;
		}
	}
	if (!v)
		return -ENODATA;
	*len = strlen(v);
	if (size && size < *len)
		return -ERANGE;
	if (size)
		memcpy(buf, v, *len);
	return 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	char buf[512];
	size_t len;
	if (strcmp(name, MTIME_SOURCE) == 0)
		loop_may_block(); /* may resolve the repository's tags */
	int rc = xattr_value(m, n, name, buf, size ? (size < sizeof buf ? size : sizeof buf) : 0,
			     &len);
	if (rc)
		return reply_err(req, rc);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mnt *m = req_mnt(req);
	struct node *n = N(m, ino);
	if (!n)
		return reply_err(req, -ESTALE);
	static const char names[] = "user.regfs.digest\0user.regfs.mediatype\0";
	char buf[sizeof names + sizeof MTIME_SOURCE];
	size_t len = 0;
	if (n->kind == K_MJSON || n->kind == K_BLOB || n->kind == K_MANIFEST) {
		memcpy(buf, names, sizeof names - 1);
		len = sizeof names - 1;
	}
	int src;
	if (n->kind == K_MANIFEST || n->kind == K_TAGS)
		loop_may_block(); /* node_mtime_source may resolve tags */
	if ((n->kind == K_MANIFEST || n->kind == K_TAGS) && node_mtime_source(m, n, &src) == 0) {
		memcpy(buf + len, MTIME_SOURCE, sizeof MTIME_SOURCE);
		len += sizeof MTIME_SOURCE;
	}
	if (size == 0)
		return (void)fuse_reply_xattr(req, len);
	if (size < len)
		return reply_err(req, -ERANGE);
	fuse_reply_buf(req, buf, len);
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
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
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
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, statfs_walk, m) == 0) {
			sf_running = true;
			sf_gave_up = false;
		} else {
			log_warn("statfs: cannot start a thread; df reports the last total known");
		}
		pthread_attr_destroy(&at);
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

/* ---- writes: write.c; everything else is EROFS with a log line ---- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino; (void)a; (void)to_set; (void)fi;
	write_other(req, "chmod/chown/truncate/touch");
}
static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t r)
{
	(void)p; (void)n; (void)m; (void)r;
	write_other(req, "mknod");
}
static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{
	(void)p; (void)n; (void)m;
	write_other(req, "mkdir");
}
static void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn)
{
	(void)i; (void)np; (void)nn;
	write_other(req, "ln (hard link)");
}
static void op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m,
		      struct fuse_file_info *fi)
{
	(void)p; (void)n; (void)m; (void)fi;
	write_other(req, "creating a file");
}
static void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v,
			size_t s, int f)
{
	(void)i; (void)n; (void)v; (void)s; (void)f;
	write_other(req, "setxattr");
}
static void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{
	(void)i; (void)n;
	write_other(req, "removexattr");
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
	.unlink = write_unlink,
	.rmdir = write_rmdir,
	.symlink = write_symlink,
	.rename = write_rename,
	.link = op_link,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
};
