/* views.c — the layer views: what is inside the layers, without pulling.
 *
 *   VTOP      .layers/ and .rootfs/ at the root: list NOTHING (so du, find
 *             and ls -R of the mount never walk into them); a lookup of
 *             "sha256:<hex>" gives the top of one layer's tar (.layers/) or
 *             of one image's merged layers (.rootfs/, whiteouts applied)
 *   VDIR      a directory inside a view
 *   VFILE     a regular file (or a hard link: same st_ino, st_nlink names)
 *   VLINK     a symlink (its target as the layer stores it)
 *   VSPECIAL  a char/block device or a fifo (stat only)
 *   VIEWLINK  _manifests/<digest>/layers/N and _manifests/<digest>/rootfs:
 *             relative symlinks into .layers/ and .rootfs/
 *
 * A view node's digest is the layer's (.layers/) or the manifest's
 * (.rootfs/), its arg the path inside ("" the top); which view it is is its
 * path's first component. Each call resolves the path again in the index
 * (O(log n)), which the layer cache (fs/cache/layers.h) loads, builds or
 * keeps in memory. Mode, owner, times, size, device numbers and xattrs come
 * from the tar headers; st_blocks is 0 (views are not storage: du stays
 * storage accounting). Everything is immutable (IMMUTABLE_TIMEOUT). */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <regfs/hash.h>

/* What a view node is: the entry holding it, and the references that keep
 * it alive (one of lv / rv). */
struct vres {
	struct lview *lv;
	struct rview *rv;
	const struct layer_index *ix;    /* NULL: the made-up root of an image */
	struct lview *data_lv;           /* the layer the entry's data is read from */
	size_t entry;
	int64_t midx;                    /* .rootfs/: index in the merged tree */
	uint64_t ino;
	uint32_t nlink;
};

static bool is_rootfs(struct mnt *m, const struct node *n)
{
	return strcmp(nodes_top(m->nodes, n), ".rootfs") == 0;
}

static uint64_t view_ino(const char *digest, uint64_t k)
{
	uint64_t h = regfs_fnv1a64_str(digest);
	return regfs_fnv1a64_add(h, &k, sizeof k) | (1ULL << 63);
}

static void vres_put(struct mnt *m, struct vres *r)
{
	layer_cache_put(m->lc, r->lv);
	layer_cache_rput(m->lc, r->rv);
	memset(r, 0, sizeof *r);
}

/* .rootfs/<digest>: the image's merged tree (its manifest from the
 * repository the mount saw it in). */
static int rootfs_get(struct mnt *m, const char *digest, struct rview **rv)
{
	char repo[1024];
	if (layer_cache_repo(m->lc, digest, repo, sizeof repo, NULL))
		return -ENOENT;
	const struct mentry *e;
	int rc = mcache_get(m->mc, repo, digest, &e);
	if (rc)
		return rc;
	if (e->m->kind == REGFS_MANIFEST_INDEX)
		rc = -ENOENT; /* an index has no filesystem: its platforms do */
	else
		rc = layer_cache_rget(m->lc, m->client, repo, digest, e->m->layers, e->m->n_layers,
				      rv);
	mcache_put(m->mc, e);
	return rc;
}

static int resolve_rootfs(struct mnt *m, const struct node *n, struct vres *r)
{
	int rc = rootfs_get(m, n->digest, &r->rv);
	if (rc)
		return rc;
	r->midx = layer_merged_find(r->rv->mt, n->arg ? n->arg : "");
	if (r->midx < 0)
		return -ENOENT;
	const struct layer_merged_entry *me = layer_merged_get(r->rv->mt, (size_t)r->midx);
	r->ino = view_ino(n->digest, me->ino);
	r->nlink = me->is_dir ? 2 : me->nlink;
	if (me->layer == LAYER_MERGED_NONE)
		return 0; /* the root, when no layer has an entry for it */
	r->data_lv = r->rv->layers[me->layer];
	r->ix = r->data_lv->ix;
	r->entry = me->entry;
	return 0;
}

/* Resolves a view node (its references in r: vres_put). */
static int view_resolve(struct mnt *m, const struct node *n, struct vres *r)
{
	memset(r, 0, sizeof *r);
	if (!m->lc)
		return -ENOENT;
	if (is_rootfs(m, n)) {
		int rc = resolve_rootfs(m, n, r);
		if (rc)
			vres_put(m, r);
		return rc;
	}
	int rc = layer_cache_get(m->lc, m->client, NULL, n->digest, 0, &r->lv);
	if (rc)
		return rc;
	long i = layer_index_find(r->lv->ix, n->arg ? n->arg : "");
	if (i < 0) {
		vres_put(m, r);
		return -ENOENT;
	}
	r->ix = r->lv->ix;
	r->data_lv = r->lv;
	r->entry = (size_t)i;
	const struct layer_entry *e = layer_index_entry(r->ix, r->entry);
	size_t data = e->type == LAYER_HARDLINK && e->link_index != LAYER_NONE ? e->link_index
									    : r->entry;
	r->ino = view_ino(n->digest, data);
	r->nlink = e->type == LAYER_DIR ? 2 : r->lv->nlink[r->entry];
	return 0;
}

/* The entry whose inode a name shows: a hard link's target (its mode,
 * owner, times, size and xattrs), else the entry itself. */
static const struct layer_entry *data_entry(const struct layer_index *ix, size_t i)
{
	const struct layer_entry *e = layer_index_entry(ix, i);
	if (e->type == LAYER_HARDLINK && e->link_index != LAYER_NONE)
		return layer_index_entry(ix, e->link_index);
	return e;
}

static enum node_kind kind_of(const struct layer_entry *e)
{
	switch (e ? e->type : LAYER_DIR) {
	case LAYER_DIR: return K_VDIR;
	case LAYER_SYMLINK: return K_VLINK;
	case LAYER_REG: case LAYER_HARDLINK: return K_VFILE;
	default: return K_VSPECIAL;
	}
}

/* The child named `name` of the resolved directory r, into c (name, kind,
 * digest, arg = its path inside the view). */
static int view_child(struct mnt *m, const struct node *dir, struct vres *r, const char *name,
		      struct child *c)
{
	(void)m;
	const struct layer_entry *e;
	if (r->rv) {
		int64_t k = layer_merged_child(r->rv->mt, (size_t)r->midx, name);
		if (k < 0)
			return (int)k;
		const struct layer_merged_entry *me = layer_merged_get(r->rv->mt, (size_t)k);
		e = layer_index_entry(r->rv->layers[me->layer]->ix, me->entry);
	} else {
		long k = layer_index_child(r->ix, r->entry, name);
		if (k < 0)
			return (int)k;
		e = layer_index_entry(r->ix, (size_t)k);
	}
	memset(c, 0, sizeof *c);
	c->name = strdup(name);
	c->arg = path_join(dir->arg ? dir->arg : "", name);
	c->kind = kind_of(e);
	c->size = e->size;
	snprintf(c->digest, sizeof c->digest, "%s", dir->digest);
	if (!c->name || !c->arg) {
		child_clear(c);
		return -ENOMEM;
	}
	return 0;
}

static int vdir_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	struct vres r;
	int rc = view_resolve(m, dir, &r);
	if (rc)
		return rc;
	rc = r.rv || r.ix ? view_child(m, dir, &r, name, out) : -ENOENT;
	vres_put(m, &r);
	return rc;
}

/* The name of the k-th child of the resolved directory r; NULL past the
 * end. */
static const char *child_name(const struct vres *r, size_t k)
{
	if (r->rv) {
		int64_t c = layer_merged_child_at(r->rv->mt, (size_t)r->midx, k);
		return c < 0 ? NULL : layer_merged_get(r->rv->mt, (size_t)c)->name;
	}
	size_t first, n;
	if (layer_index_children(r->ix, r->entry, &first, &n) || k >= n)
		return NULL;
	return layer_index_entry(r->ix, first + k)->name;
}

static int vdir_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	struct vres r;
	int rc = view_resolve(m, dir, &r);
	if (rc)
		return rc;
	struct clist l = {0};
	const char *name;
	for (size_t k = 0; (name = child_name(&r, k)) && !l.err; k++) {
		struct child c;
		rc = view_child(m, dir, &r, name, &c);
		if (rc) {
			l.err = rc;
			break;
		}
		struct child *slot = cl_add(&l, name, c.kind, NULL);
		if (slot) {
			slot->arg = c.arg;
			c.arg = NULL;
			slot->size = c.size;
			memcpy(slot->digest, c.digest, sizeof c.digest);
		}
		child_clear(&c);
	}
	vres_put(m, &r);
	return cl_done(&l, out, n);
}

static int view_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	struct vres r;
	int rc = view_resolve(m, n, &r);
	if (rc)
		return rc;
	*timeout = IMMUTABLE_TIMEOUT;
	st->st_ino = r.ino;
	st->st_nlink = r.nlink;
	st->st_blocks = 0;
	if (!r.ix) { /* an image's made-up root */
		st->st_mode = S_IFDIR | 0755;
		st->st_uid = st->st_gid = 0;
		st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = 0;
		vres_put(m, &r);
		return 0;
	}
	const struct layer_entry *e = data_entry(r.ix, r.entry);
	st->st_mode = layer_entry_st_mode(e);
	if (n->kind == K_VDIR)
		st->st_mode = S_IFDIR | (st->st_mode & 07777);
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_size = e->type == LAYER_SYMLINK ? (off_t)strlen(e->link ? e->link : "")
		      : e->type == LAYER_DIR ? 0 : (off_t)e->size;
	st->st_mtim = (struct timespec){.tv_sec = e->mtime, .tv_nsec = e->mtime_nsec};
	st->st_ctim = st->st_atim = st->st_mtim;
	if (e->type == LAYER_CHR || e->type == LAYER_BLK)
		st->st_rdev = makedev(e->devmajor, e->devminor);
	vres_put(m, &r);
	return 0;
}

static int vlink_readlink(struct mnt *m, struct node *n, char *buf, size_t size)
{
	struct vres r;
	int rc = view_resolve(m, n, &r);
	if (rc)
		return rc;
	const struct layer_entry *e = r.ix ? layer_index_entry(r.ix, r.entry) : NULL;
	if (!e || e->type != LAYER_SYMLINK || !e->link)
		rc = -EINVAL;
	else
		snprintf(buf, size, "%s", e->link);
	vres_put(m, &r);
	return rc;
}

/* ---- xattrs: the pax SCHILY.xattr.* records of the entry ---- */

static int view_getxattr(struct mnt *m, struct node *n, const char *name, char *buf, size_t size,
			 size_t *len)
{
	struct vres r;
	int rc = view_resolve(m, n, &r);
	if (rc)
		return rc;
	rc = -ENODATA;
	const struct layer_entry *e = r.ix ? data_entry(r.ix, r.entry) : NULL;
	for (uint32_t k = 0; e && k < e->nxattrs; k++) {
		if (strcmp(e->xattrs[k].name, name) != 0)
			continue;
		*len = e->xattrs[k].len;
		rc = size && size < *len ? -ERANGE : 0;
		if (rc == 0 && size)
			memcpy(buf, e->xattrs[k].value, *len);
		break;
	}
	vres_put(m, &r);
	return rc;
}

static int view_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	struct vres r;
	int rc = view_resolve(m, n, &r);
	if (rc)
		return rc;
	*len = 0;
	const struct layer_entry *e = r.ix ? data_entry(r.ix, r.entry) : NULL;
	for (uint32_t k = 0; e && k < e->nxattrs && rc == 0; k++) {
		size_t l = strlen(e->xattrs[k].name) + 1;
		if (*len + l > size)
			rc = -ERANGE;
		else
			memcpy(buf + *len, e->xattrs[k].name, l);
		*len += l;
	}
	vres_put(m, &r);
	return rc;
}

/* ---- reading a file ---- */

struct vfh {
	pthread_mutex_t mu;            /* one read at a time uses the cursor */
	struct vres r;
	struct layer_cursor *cur;      /* the last span decoded */
	struct mnt *m;
};

static int vfile_open(struct mnt *m, struct node *n, struct fuse_file_info *fi, struct fh *h)
{
	struct vfh *v = calloc(1, sizeof *v);
	if (!v)
		return -ENOMEM;
	int rc = view_resolve(m, n, &v->r);
	if (rc == 0 && !v->r.ix)
		rc = -EISDIR;
	if (rc == 0 && !(v->cur = layer_cursor_new()))
		rc = -ENOMEM;
	if (rc) {
		vres_put(m, &v->r);
		free(v);
		return rc;
	}
	pthread_mutex_init(&v->mu, NULL);
	v->m = m;
	h->priv = v;
	fi->keep_cache = 1;
	return 0;
}

static void vfile_read(struct fh *h, fuse_req_t req, size_t size, off_t off)
{
	struct vfh *v = h->priv;
	loop_may_block(); /* a span may be fetched and inflated */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	pthread_mutex_lock(&v->mu);
	ssize_t n = layer_cache_read(v->m->lc, v->m->client, NULL, v->r.data_lv, v->r.entry,
				     (uint64_t)off, buf, size, v->cur);
	pthread_mutex_unlock(&v->mu);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void vfile_release(struct fh *h)
{
	struct vfh *v = h->priv;
	if (!v)
		return;
	layer_cursor_free(v->cur);
	vres_put(v->m, &v->r);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

/* ---- .layers/ and .rootfs/: lookup-only ---- */

static int vtop_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	(void)m, (void)dir;
	*out = NULL;
	*n = 0;
	return 0;
}

/* "sha256:<hex>": the top of a layer (building its index on first use) or
 * of an image; not found unless the mount knows where the digest lives. */
static int vtop_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	if (!regfs_digest_valid(name))
		return -ENOENT;
	memset(out, 0, sizeof *out);
	out->kind = K_VDIR;
	snprintf(out->digest, sizeof out->digest, "%s", name);
	out->name = strdup(name);
	out->arg = strdup("");
	if (!out->name || !out->arg) {
		child_clear(out);
		return -ENOMEM;
	}
	struct node probe = {.parent = dir, .name = name, .digest = name, .arg = ""};
	struct vres r;
	int rc = view_resolve(m, &probe, &r);
	vres_put(m, &r);
	if (rc)
		child_clear(out);
	return rc;
}

/* ---- _manifests/<digest>/layers/N and _manifests/<digest>/rootfs ---- */

/* "../" once per component above the link, then .layers/<digest> (arg
 * ".layers") or .rootfs/<digest> (arg ".rootfs"). */
static int viewlink_target(struct mnt *m, const struct node *n, char *buf, size_t size)
{
	size_t up = nodes_depth(m->nodes, n);
	up = up ? up - 1 : 0; /* the link's own directory and those above it */
	size_t k = 0;
	for (size_t i = 0; i < up; i++) {
		if (k + 3 >= size)
			return -ENAMETOOLONG;
		memcpy(buf + k, "../", 3);
		k += 3;
	}
	int w = snprintf(buf + k, size - k, "%s/%s", n->arg ? n->arg : ".layers", n->digest);
	return w < 0 || (size_t)w >= size - k ? -ENAMETOOLONG : 0;
}

static int viewlink_readlink(struct mnt *m, struct node *n, char *buf, size_t size)
{
	return viewlink_target(m, n, buf, size);
}

static int viewlink_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	char t[4096];
	int rc = viewlink_target(m, n, t, sizeof t);
	if (rc)
		return rc;
	st->st_mode = S_IFLNK | 0777;
	st->st_size = (off_t)strlen(t);
	st->st_nlink = 1;
	*timeout = IMMUTABLE_TIMEOUT;
	return 0;
}

struct child *cl_add_viewlink(struct clist *l, const char *name, const char *repo,
			      const char *digest, const char *view)
{
	struct child *c = cl_add(l, name, K_VIEWLINK, repo);
	if (!c)
		return NULL;
	snprintf(c->digest, sizeof c->digest, "%s", digest);
	if (!(c->arg = strdup(view)))
		l->err = -ENOMEM;
	return c;
}

const struct kind_ops vtop_kind = {
	.name = "layer views", .type = S_IFDIR,
	.list = vtop_list, .lookup = vtop_lookup, .attr = attr_fixed_dir,
};

const struct kind_ops vdir_kind = {
	.name = "view directory", .type = S_IFDIR,
	.list = vdir_list, .lookup = vdir_lookup, .attr = view_attr,
	.getxattr = view_getxattr, .listxattr = view_listxattr,
};

const struct kind_ops vfile_kind = {
	.name = "view file", .type = S_IFREG,
	.attr = view_attr, .open = vfile_open, .read = vfile_read, .release = vfile_release,
	.getxattr = view_getxattr, .listxattr = view_listxattr,
};

const struct kind_ops vlink_kind = {
	.name = "view symlink", .type = S_IFLNK,
	.attr = view_attr, .readlink = vlink_readlink,
	.getxattr = view_getxattr, .listxattr = view_listxattr,
};

/* type 0: readdir says DT_UNKNOWN (a device or a fifo; stat tells which) */
const struct kind_ops vspecial_kind = {
	.name = "view device/fifo", .type = 0,
	.attr = view_attr, .getxattr = view_getxattr, .listxattr = view_listxattr,
};

const struct kind_ops viewlink_kind = {
	.name = "view link", .type = S_IFLNK,
	.attr = viewlink_attr, .readlink = viewlink_readlink,
};
