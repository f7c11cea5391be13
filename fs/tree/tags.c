/* tags.c — <repo>/_tags: TAGS (the repository's tags, listed from its tag
 * list, ttl) and TAG (a symlink ../_manifests/<digest>, mtime the push or
 * build time); the tag time source xattr user.regfs.mtime-source. The
 * writes (rm, ln -s, mv) are in tagwrite.c. */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char MTIME_SOURCE_XATTR[] = "user.regfs.mtime-source";

static int tags_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	struct tagset *ts;
	int rc = names_tags(m->nc, dir->repo, &ts);
	if (rc)
		return rc;
	/* `ls -l` (and readdirplus) need every tag's digest and time: get them
	 * in one parallel batch now rather than one request per getattr. */
	names_resolve_all(m->nc, dir->repo, ts);
	struct clist l = {0};
	for (size_t i = 0; i < ts->n; i++) {
		/* A non-conforming registry's tag with '/' would fail the whole
		 * listing in the kernel; it could not be looked up anyway. */
		if (!regfs_tag_valid(ts->t[i].tag))
			continue;
		struct child *c = cl_add(&l, ts->t[i].tag, K_TAG, dir->repo);
		if (c && !(c->arg = strdup(ts->t[i].tag)))
			l.err = -ENOMEM;
	}
	tagset_put(ts);
	return cl_done(&l, out, n);
}

static int tags_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	memset(out, 0, sizeof *out);
	if (!regfs_tag_valid(name))
		return -ENOENT;
	char digest[REGFS_DIGEST_MAX];
	int rc = names_resolve(m->nc, dir->repo, name, digest, NULL);
	if (rc)
		return rc;
	out->name = strdup(name);
	out->arg = strdup(name);
	out->kind = K_TAG;
	out->repo = dir->repo;
	if (!out->name || !out->arg) {
		child_clear(out);
		return -ENOMEM;
	}
	return 0;
}

/* When the tag list the listing came from was fetched. */
double tags_listed_at(struct mnt *m, struct node *n)
{
	double at = now_mono();
	struct tagset *t;
	if (names_tags(m->nc, n->repo, &t) == 0) {
		at = t->at;
		tagset_put(t);
	}
	return at;
}

static int tag_readlink(struct mnt *m, struct node *n, char *buf, size_t size)
{
	char digest[REGFS_DIGEST_MAX];
	int rc = names_resolve(m->nc, n->repo, n->arg, digest, NULL);
	if (rc)
		return rc;
	snprintf(buf, size, "../_manifests/%s", digest);
	return 0;
}

static int tag_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	(void)timeout;
	char digest[REGFS_DIGEST_MAX];
	int64_t mtime = 0;
	int rc = names_resolve(m->nc, n->repo, n->arg, digest, &mtime);
	if (rc)
		return rc;
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_size = (off_t)(strlen("../_manifests/") + strlen(digest));
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = (time_t)mtime;
	return 0;
}

/* ---- tag time sources (xattr user.regfs.mtime-source) ----
 *
 * pushed / created / unknown (see enum mtime_src), on _tags/ and on the
 * manifest directories tags point at: Linux serves no user.* xattr on a
 * symlink, so `getfattr -n user.regfs.mtime-source _tags/<tag>` follows the
 * link to the manifest, which answers for the tags of its repository that
 * point at it (the least trustworthy of them). */

int tags_mtime_source(struct mnt *m, const char *repo, const char *digest, int *src)
{
	loop_may_block(); /* may resolve the repository's tags */
	struct tagset *ts;
	int rc = names_tags(m->nc, repo, &ts);
	if (rc)
		return rc == -ENOENT ? -ENODATA : rc;
	names_resolve_all(m->nc, repo, ts);
	int worst = -1;
	struct tag_read tr;
	for (size_t i = 0; i < ts->n; i++) {
		if (!names_tag_read(m->nc, &ts->t[i], &tr))
			continue;
		if (digest && strcmp(tr.digest, digest) != 0)
			continue;
		if (worst < 0 || tr.mtime_src < worst)
			worst = tr.mtime_src;
	}
	tagset_put(ts);
	if (worst < 0)
		return -ENODATA;
	*src = worst;
	return 0;
}

/* TAGS: every tag; MANIFEST: the tags on its digest. */
static int node_mtime_source(struct mnt *m, struct node *n, int *src)
{
	return tags_mtime_source(m, n->repo, n->kind == K_TAGS ? NULL : n->digest, src);
}

int mtime_source_getxattr(struct mnt *m, struct node *n, const char *name, char *buf,
			  size_t size, size_t *len)
{
	if (strcmp(name, MTIME_SOURCE_XATTR) != 0)
		return -ENODATA;
	int src;
	int rc = node_mtime_source(m, n, &src);
	if (rc)
		return rc;
	return xattr_reply(mtime_src_name(src), buf, size, len);
}

int mtime_source_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	int src;
	if (size >= *len + sizeof MTIME_SOURCE_XATTR && node_mtime_source(m, n, &src) == 0) {
		memcpy(buf + *len, MTIME_SOURCE_XATTR, sizeof MTIME_SOURCE_XATTR);
		*len += sizeof MTIME_SOURCE_XATTR;
	}
	return 0;
}

static int tags_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	*len = 0;
	return mtime_source_listxattr(m, n, buf, size, len);
}

const struct kind_ops tags_kind = {
	.name = "tags", .type = S_IFDIR, .flags = KIND_TTL_DIR,
	.list = tags_list, .lookup = tags_lookup,
	.attr = attr_writable_dir, .refresh = dir_version_refresh, .listed_at = tags_listed_at,
	.getxattr = mtime_source_getxattr, .listxattr = tags_listxattr,
	.unlink = tags_unlink, .symlink = tags_symlink, .rename = tags_rename,
	.priv_free = free,
};

const struct kind_ops tag_kind = {
	.name = "tag", .type = S_IFLNK,
	.attr = tag_attr, .readlink = tag_readlink,
};
