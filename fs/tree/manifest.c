/* manifest.c — one manifest's directory and what it holds:
 *
 *   MANIFEST  _manifests/<digest>/: manifest.json + config.json + layers/
 *             + rootfs (a link into .rootfs/, views.c) (an image) or
 *             index.json + platforms/ (an index)
 *   MJSON     the manifest's own bytes (from memory)
 *   BLOB      a config or layer blob (disk cache, or Range requests)
 *   LAYERS    layers/: N.<ext> blob files in manifest order, and N: a link
 *             to the layer's contents in .layers/ (views.c)
 *
 * All fixed by the digest: listings and attributes never change. The
 * stored blobs (MJSON, BLOB) carry the du semantics (kind.c) and the xattrs
 * user.regfs.digest and user.regfs.mediatype; a MANIFEST has those and the
 * tag time source. Removing anything here is refused as an rm -r of the
 * repository (tagwrite.c). */
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blobs up to this size are fetched whole into the disk cache on open (one
 * verified request); bigger ones are read by Range requests (readahead.c). */
#define FILL_MAX (64ull << 20)

int node_manifest(struct mnt *m, struct node *n, const struct mentry **e)
{
	return mcache_get(m->mc, n->repo, n->digest, e);
}

/* The views (.layers/, .rootfs/) find a digest's repository by what the
 * mount has shown: the image and each of its layers. */
static void note_layers(struct mnt *m, const char *repo, const struct mentry *e)
{
	layer_cache_note_repo(m->lc, e->digest, repo, e->len);
	for (size_t i = 0; i < e->m->n_layers; i++)
		layer_cache_note_repo(m->lc, e->m->layers[i].digest, repo,
				      (uint64_t)e->m->layers[i].size);
}

static int manifest_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	const struct mentry *e;
	int rc = node_manifest(m, dir, &e);
	if (rc)
		return rc;
	const struct regfs_manifest *man = e->m;
	struct clist l = {0};
	if (man->kind == REGFS_MANIFEST_INDEX) {
		cl_add_blob(&l, "index.json", K_MJSON, dir->repo, e->digest, e->len, man->media_type);
		struct child *c = cl_add(&l, "platforms", K_PLATFORMS, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", e->digest);
	} else {
		if (man->has_config)
			cl_add_blob(&l, "config.json", K_BLOB, dir->repo, man->config.digest,
				    (uint64_t)man->config.size, man->config.media_type);
		struct child *c = cl_add(&l, "layers", K_LAYERS, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", e->digest);
		cl_add_blob(&l, "manifest.json", K_MJSON, dir->repo, e->digest, e->len,
			    man->media_type);
		cl_add_viewlink(&l, "rootfs", dir->repo, e->digest, ".rootfs");
		note_layers(m, dir->repo, e);
	}
	mcache_put(m->mc, e);
	return cl_done(&l, out, n);
}

static int layers_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	const struct mentry *e;
	int rc = node_manifest(m, dir, &e);
	if (rc)
		return rc;
	note_layers(m, dir->repo, e);
	struct clist l = {0};
	for (size_t i = 0; i < e->m->n_layers; i++) {
		const struct regfs_descriptor *d = &e->m->layers[i];
		char name[64];
		snprintf(name, sizeof name, "%zu", i);
		cl_add_viewlink(&l, name, dir->repo, d->digest, ".layers");
		snprintf(name, sizeof name, "%zu.%s", i, regfs_layer_ext(d->media_type));
		cl_add_blob(&l, name, K_BLOB, dir->repo, d->digest, (uint64_t)d->size, d->media_type);
	}
	mcache_put(m->mc, e);
	return cl_done(&l, out, n);
}

/* ---- stored blobs: MJSON, BLOB ---- */

static int blob_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	(void)m;
	st->st_mode = S_IFREG | 0444;
	st->st_size = (off_t)n->size;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_ino = regfs_digest_ino(n->digest);
	st->st_nlink = 2; /* >= 2 so GNU du dedups by inode */
	*timeout = IMMUTABLE_TIMEOUT;
	return 0;
}

/* The manifest's bytes, copied from the manifest cache: the handle may
 * outlive the cache's copy (dropped past its memory budget). */
static int mjson_open(struct mnt *m, struct node *n, struct fuse_file_info *fi, struct fh *h)
{
	const struct mentry *e;
	int rc = node_manifest(m, n, &e);
	if (rc)
		return rc;
	char *copy = malloc(e->len ? e->len : 1);
	if (copy) {
		memcpy(copy, e->data, e->len);
		h->type = FH_OWNED;
		h->owned = copy;
		h->len = e->len;
		fi->keep_cache = 1;
	}
	mcache_put(m->mc, e);
	return copy ? 0 : -ENOMEM;
}

/* From the disk cache (filled whole on open up to FILL_MAX), else by Range
 * requests with read-ahead. */
static int blob_open(struct mnt *m, struct node *n, struct fuse_file_info *fi, struct fh *h)
{
	int rc = 0;
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
		h->type = FH_FD;
		h->fd = fd;
	} else if (rc == 0) {
		h->type = FH_RANGE;
		char path[NODE_PATH_MAX]; /* for messages: the name alone when too long */
		nodes_path(m->nodes, n, path, sizeof path);
		h->ra = ra_new(m->client, &m->st, m->se, n->repo, n->digest, n->size, n->id, path);
		if (!h->ra)
			rc = -ENOMEM;
	}
	return rc;
}

static const char BLOB_XATTRS[] = "user.regfs.digest\0user.regfs.mediatype\0";

static int blob_getxattr(struct mnt *m, struct node *n, const char *name, char *buf,
			 size_t size, size_t *len)
{
	(void)m;
	if (strcmp(name, "user.regfs.digest") == 0)
		return xattr_reply(n->digest, buf, size, len);
	if (strcmp(name, "user.regfs.mediatype") == 0)
		return xattr_reply(node_mediatype(n), buf, size, len);
	return -ENODATA;
}

static int blob_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	(void)m, (void)n;
	*len = 0;
	if (size < sizeof BLOB_XATTRS - 1)
		return -ERANGE;
	memcpy(buf, BLOB_XATTRS, sizeof BLOB_XATTRS - 1);
	*len = sizeof BLOB_XATTRS - 1;
	return 0;
}

/* ---- MANIFEST: the blob xattrs (media type from the manifest) and the
 * tag time source ---- */

static int manifest_getxattr(struct mnt *m, struct node *n, const char *name, char *buf,
			     size_t size, size_t *len)
{
	if (strcmp(name, MTIME_SOURCE_XATTR) == 0)
		return mtime_source_getxattr(m, n, name, buf, size, len);
	int rc = usage_getxattr(m, n, name, buf, size, len);
	if (rc != -ENODATA)
		return rc;
	if (strcmp(name, "user.regfs.mediatype") != 0)
		return blob_getxattr(m, n, name, buf, size, len);
	const struct mentry *e;
	rc = node_manifest(m, n, &e);
	if (rc)
		return rc;
	rc = xattr_reply(e->m->media_type, buf, size, len);
	mcache_put(m->mc, e);
	return rc;
}

static int manifest_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	int rc = blob_listxattr(m, n, buf, size, len);
	if (!rc)
		rc = mtime_source_listxattr(m, n, buf, size, len);
	return rc ? rc : usage_listxattr(m, n, buf, size, len);
}

const struct kind_ops manifest_kind = {
	.name = "manifest", .type = S_IFDIR, .flags = KIND_NAME_TTL,
	.list = manifest_list, .lookup = lookup_by_list, .attr = attr_fixed_dir,
	.getxattr = manifest_getxattr, .listxattr = manifest_listxattr,
	.unlink = inside_manifest_unlink, .rmdir = inside_manifest_rmdir,
};

const struct kind_ops mjson_kind = {
	.name = "manifest bytes", .type = S_IFREG, .flags = KIND_DIGEST_INO,
	.attr = blob_attr, .open = mjson_open,
	.getxattr = blob_getxattr, .listxattr = blob_listxattr,
};

const struct kind_ops blob_kind = {
	.name = "blob", .type = S_IFREG, .flags = KIND_DIGEST_INO,
	.attr = blob_attr, .open = blob_open,
	.getxattr = blob_getxattr, .listxattr = blob_listxattr,
};

const struct kind_ops layers_kind = {
	.name = "layers", .type = S_IFDIR,
	.list = layers_list, .lookup = lookup_by_list, .attr = attr_fixed_dir,
	.unlink = inside_manifest_unlink, .rmdir = inside_manifest_rmdir,
};
