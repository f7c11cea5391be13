/* kind.c — the table of node kinds (kind_ops[]), the attributes every node
 * has, the default file handle, and the helpers the kind families use to
 * build listings. What each kind does is in its family's file:
 *
 *   root.c       ROOT (catalog top + .regfs), DIR (namespace / repository)
 *   tags.c       TAGS (<repo>/_tags), TAG (symlink -> ../_manifests/<digest>)
 *   manifests.c  MANIFESTS (<repo>/_manifests: every manifest reachable)
 *   manifest.c   MANIFEST (one manifest's directory), MJSON (its bytes),
 *                BLOB (config or layer), LAYERS (N.<ext> in manifest order)
 *   platforms.c  PLATFORMS (<os>-<arch>[-<variant>]), PLATLINK (-> ../../<child>)
 *   meta.c       META (.regfs/), METAFILE (status, stats, errors)
 *   views.c      VTOP (.layers/, .rootfs/: lookup only), VDIR, VFILE, VLINK,
 *                VSPECIAL (inside a layer or a merged image), VIEWLINK
 *                (_manifests/<digest>/layers/N and rootfs -> the views)
 *
 * du semantics: stored blobs (KIND_DIGEST_INO) report st_blocks =
 * ceil(size/512), st_ino = regfs_digest_ino(digest), nlink 2, so GNU du
 * counts each blob once however many repositories show it; everything else
 * has st_blocks 0 and st_ino = path_hash_ino(path). */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/fmt.h>

const struct kind_ops *const kind_ops[K__COUNT] = {
	[K_ROOT] = &root_kind,         [K_DIR] = &dir_kind,
	[K_TAGS] = &tags_kind,         [K_TAG] = &tag_kind,
	[K_MANIFESTS] = &manifests_kind, [K_MANIFEST] = &manifest_kind,
	[K_MJSON] = &mjson_kind,       [K_BLOB] = &blob_kind,
	[K_LAYERS] = &layers_kind,     [K_PLATFORMS] = &platforms_kind,
	[K_PLATLINK] = &platlink_kind, [K_META] = &meta_kind,
	[K_METAFILE] = &metafile_kind,
	[K_VTOP] = &vtop_kind,         [K_VDIR] = &vdir_kind,
	[K_VFILE] = &vfile_kind,       [K_VLINK] = &vlink_kind,
	[K_VSPECIAL] = &vspecial_kind, [K_VIEWLINK] = &viewlink_kind,
};

bool kind_is_dir(enum node_kind k)
{
	return (unsigned)k < K__COUNT && S_ISDIR(kind_ops[k]->type);
}

bool kind_is_ttl_dir(enum node_kind k)
{
	return (unsigned)k < K__COUNT && (kind_ops[k]->flags & KIND_TTL_DIR);
}

int node_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	memset(st, 0, sizeof *st);
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = m->mounted_since;
	st->st_ino = nodes_ino(m->nodes, n, NULL);
	*timeout = m->o.ttl;
	const struct kind_ops *k = kind_ops[n->kind];
	return k->attr ? k->attr(m, n, st, timeout) : -EIO;
}

int node_entry(struct mnt *m, struct node *n, struct fuse_entry_param *e)
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
	unsigned f = kind_ops[n->kind]->flags;
	e->entry_timeout = f & (KIND_NAME_TTL | KIND_TTL_DIR) ? m->o.ttl : t;
	return 0;
}

/* ---- the default file handle ---- */

void fh_read(struct fh *h, fuse_req_t req, size_t size, off_t off)
{
	if (h->type == FH_MEM || h->type == FH_OWNED) {
		const char *d = h->type == FH_MEM ? h->data : h->owned;
		if ((size_t)off >= h->len)
			return (void)fuse_reply_buf(req, NULL, 0);
		size_t n = h->len - (size_t)off < size ? h->len - (size_t)off : size;
		fuse_reply_buf(req, d + off, n);
		return;
	}
	if (h->type == FH_FD) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = h->fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	ra_read(h->ra, req, size, off);
}

void fh_release(struct fh *h)
{
	if (h->fd >= 0)
		close(h->fd);
	ra_close(h->ra);
	free(h->owned);
}

void fh_put(struct fh *h)
{
	if (atomic_fetch_sub(&h->ref, 1) != 1)
		return;
	if (h->ops && h->ops->release)
		h->ops->release(h);
	else
		fh_release(h);
	free(h);
}

/* ---- building listings ---- */

struct child *cl_add(struct clist *l, const char *name, enum node_kind kind, const char *repo)
{
	if (l->err)
		return NULL;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct child *nv = realloc(l->v, nc * sizeof *nv);
		if (!nv) {
			l->err = -ENOMEM;
			return NULL;
		}
		l->v = nv;
		l->cap = nc;
	}
	struct child *c = &l->v[l->n];
	memset(c, 0, sizeof *c);
	c->name = strdup(name);
	if (!c->name) {
		l->err = -ENOMEM;
		return NULL;
	}
	c->kind = kind;
	c->repo = repo;
	l->n++;
	return c;
}

struct child *cl_add_blob(struct clist *l, const char *name, enum node_kind k, const char *repo,
			  const char *digest, uint64_t size, const char *mt)
{
	struct child *c = cl_add(l, name, k, repo);
	if (!c)
		return NULL;
	snprintf(c->digest, sizeof c->digest, "%s", digest);
	c->size = size;
	if (mt && !(c->mediatype = strdup(mt)))
		l->err = -ENOMEM;
	return c;
}

void cl_free(struct clist *l)
{
	for (size_t i = 0; i < l->n; i++)
		child_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int cl_done(struct clist *l, struct child **out, size_t *n)
{
	if (l->err) {
		int rc = l->err;
		cl_free(l);
		return rc;
	}
	*out = l->v;
	*n = l->n;
	return 0;
}

int lookup_by_list(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	struct child *v;
	size_t n;
	int rc = kind_ops[dir->kind]->list(m, dir, &v, &n);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		if (rc == -ENOENT && strcmp(v[i].name, name) == 0) {
			*out = v[i];
			rc = 0;
			continue;
		}
		child_clear(&v[i]);
	}
	free(v);
	return rc;
}

char *path_join(const char *a, const char *b)
{
	return xasprintf("%s%s%s", a, *a ? "/" : "", b);
}

int xattr_reply(const char *v, char *buf, size_t size, size_t *len)
{
	if (!v)
		return -ENODATA;
	*len = strlen(v);
	if (size && size < *len)
		return -ERANGE;
	if (size)
		memcpy(buf, v, *len);
	return 0;
}

/* ---- attributes shared by the directory kinds ---- */

int attr_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	(void)m, (void)n, (void)timeout;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	return 0;
}

int attr_fixed_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	*timeout = IMMUTABLE_TIMEOUT;
	return attr_dir(m, n, st, timeout);
}
