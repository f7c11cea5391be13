/* tree.h — what the kind families of fs/tree/ share, and nothing outside
 * fs/tree/ uses: the kind tables kind.c puts in kind_ops[], the helpers
 * that build listings, and the write helpers of tagwrite.c / tagdel.c. */
#ifndef REGFS_FS_TREE_TREE_H
#define REGFS_FS_TREE_TREE_H

#include "../mount.h"

/* ---- the kind tables (one per kind; kind.c indexes them) ---- */
extern const struct kind_ops root_kind, dir_kind;                 /* root.c */
extern const struct kind_ops tags_kind, tag_kind;                 /* tags.c */
extern const struct kind_ops manifests_kind;                      /* manifests.c */
extern const struct kind_ops manifest_kind, mjson_kind, blob_kind, layers_kind; /* manifest.c */
extern const struct kind_ops platforms_kind, platlink_kind;       /* platforms.c */
extern const struct kind_ops meta_kind, metafile_kind;            /* meta.c */
extern const struct kind_ops vtop_kind, vdir_kind, vfile_kind, vlink_kind, vspecial_kind,
	viewlink_kind;                                            /* views.c */

/* ---- kind.c: building listings ---- */
/* A growing child list: the first failure is kept in err and makes every
 * later cl_add a no-op; cl_done hands the array over (or frees it and
 * returns err). */
struct clist {
	struct child *v;
	size_t n, cap;
	int err;
};
/* Adds a child named `name` (copied); NULL on failure (l->err set). */
struct child *cl_add(struct clist *l, const char *name, enum node_kind kind, const char *repo);
/* cl_add of a stored blob (digest, size, media type copied). */
struct child *cl_add_blob(struct clist *l, const char *name, enum node_kind k, const char *repo,
			  const char *digest, uint64_t size, const char *mt);
void cl_free(struct clist *l);
int cl_done(struct clist *l, struct child **out, size_t *n);
/* The lookup of a small directory: its list slot, then the name. */
int lookup_by_list(struct mnt *m, struct node *dir, const char *name, struct child *out);
/* "a/b" from "a" and "b" ("b" when a is ""); NULL when out of memory. */
char *path_join(const char *a, const char *b);
/* attr slots of directories: mode 0555, nlink 2; fixed by a digest
 * (IMMUTABLE_TIMEOUT); ttl (version.c: mtime = listing version); ttl and
 * writable (0755 unless -o ro: rm/ln/mv, rmdir work there). */
int attr_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout);
int attr_fixed_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout);
int attr_ttl_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout);
int attr_writable_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout);
/* An xattr value (NUL-terminated string) answered as getxattr does. */
int xattr_reply(const char *v, char *buf, size_t size, size_t *len);

/* ---- root.c: the storage accounting xattrs ---- */
/* user.regfs.bytes / exclusive / shared of the root, a namespace or
 * repository directory (n->arg), or a manifest directory (its tag group):
 * decimal bytes. -ENODATA for other names; -EIO when the walk failed. */
int usage_getxattr(struct mnt *m, struct node *n, const char *name, char *buf, size_t size,
		   size_t *len);
/* Appends those three names to buf[0..*len); -ERANGE when size is short. */
int usage_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len);

/* ---- views.c ---- */
/* Adds a VIEWLINK child: a relative symlink to <view>/<digest> (view
 * ".layers" or ".rootfs"). */
struct child *cl_add_viewlink(struct clist *l, const char *name, const char *repo,
			      const char *digest, const char *view);

/* ---- manifest.c ---- */
/* The manifest n is or belongs to (n->repo, n->digest), held: mcache_get
 * (give it back with mcache_put). */
int node_manifest(struct mnt *m, struct node *n, const struct mentry **e);

/* ---- tags.c ---- */
/* listed_at of TAGS and MANIFESTS: when n's repository's tag list was
 * fetched. */
double tags_listed_at(struct mnt *m, struct node *n);
/* The least trustworthy mtime source of the tags of n's repository: all
 * of them, or (digest not NULL) those resolved to digest. -ENODATA when no
 * resolved tag is there. */
int tags_mtime_source(struct mnt *m, const char *repo, const char *digest, int *src);
/* user.regfs.mtime-source of a TAGS or MANIFEST node (see tags.c). */
int mtime_source_getxattr(struct mnt *m, struct node *n, const char *name, char *buf,
			  size_t size, size_t *len);
/* Appends user.regfs.mtime-source to the names in buf[0..*len) when n has
 * one (a TAGS or MANIFEST node). */
int mtime_source_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len);
extern const char MTIME_SOURCE_XATTR[];

/* The write slots of TAGS (tagwrite.c) and MANIFESTS (manifests.c), and of
 * the directories inside a manifest (rm -r refused: tagwrite.c). */
int tags_unlink(struct mnt *m, struct node *dir, const char *name);
int tags_symlink(struct mnt *m, struct node *dir, const char *link, const char *name,
		 struct fuse_entry_param *e);
int tags_rename(struct mnt *m, struct node *dir, const char *name, struct node *newdir,
		const char *newname, unsigned int flags);
int inside_manifest_unlink(struct mnt *m, struct node *dir, const char *name);
int inside_manifest_rmdir(struct mnt *m, struct node *dir, const char *name);

/* ---- tagwrite.c: what the writes of tags.c and manifests.c share ---- */
/* EPERM (logged) when a --protect rule covers `tag`, else 0. */
int refuse_protected(struct mnt *m, const char *what, const char *repo, const char *tag);
/* Is `tag` of `repo` resolvable (its digest into digest)? */
bool tag_exists(struct mnt *m, const char *repo, const char *tag, char digest[REGFS_DIGEST_MAX]);
/* Puts manifest `digest` of `src` as repo:tag (blob mounts across
 * repositories) and refreshes what shows it. */
int make_tag(struct mnt *m, const char *repo, const char *tag, const char *src,
	     const char *digest);
/* rm -r of a repository: unlinking inside a manifest directory marks the
 * repository and is refused (EROFS); its tags then refuse deletion for a
 * while (recursive_removal), so the rm -r deletes nothing. */
int refuse_recursive(const char *repo, const char *what);
bool recursive_removal(const char *repo);

/* ---- tagdel.c: deleting one tag; what writes remember per repository ---- */
/* Deletes `tag` of `repo` and only it (DELETE by tag, or the fallback
 * described in tagdel.c). A refused or failed delete changes nothing:
 * -EPERM (the registry does not allow deletes), -EACCES, -ENOENT, -EIO. */
int tag_delete(struct mnt *m, const char *repo, const char *tag);
/* Does the registry allow deletes in `repo`? Probed with a DELETE of a
 * digest that cannot exist, kept for the ttl: 0, -EPERM, -EACCES, -EIO.
 * Called before a write that will need a delete, so a refusal changes
 * nothing. A refusal is logged once per call, as "<what> refused: …" with
 * the registry's answer (the user it refused, its error message), also
 * when the answer was kept from an earlier probe. */
int tag_deletes_allowed(struct mnt *m, const char *repo, const char *what);
/* After a write that changed `tags` of `repo`: name caches and the kernel's
 * listings of <repo>/_tags and <repo>/_manifests are refreshed. */
void write_changed(struct mnt *m, const char *repo, const char *const *tags, size_t n);
void write_changed1(struct mnt *m, const char *repo, const char *tag);
/* After `tag` of `repo` was deleted (the tag list was fetched just before,
 * so it is kept, minus that tag: no request until the ttl). */
void write_tag_removed(struct mnt *m, const char *repo, const char *tag);
/* Drops the kernel's entry `name` in the directory `dirpath` (if known). */
void write_inval_entry(struct mnt *m, const char *dirpath, const char *name);
/* Per-repository times the writes remember (a small table; a repository
 * whose name is too long is not remembered). wstate_time reads one field
 * (offsetof(struct wstate, …)), or sets it when `set` is not NULL. */
struct wstate {
	char repo[256];
	double used;
	double probed_at;  /* when deletes_allowed asked the registry */
	int probe_rc;
	char probe_msg[480]; /* the registry's answer to a refused probe, for later writes' logs */
	double notag_at;   /* when DELETE by tag answered "cannot delete tags" */
	double rmr_at;     /* when an rm -r reached the repository's manifests */
};
double wstate_time(const char *repo, size_t field, const double *set);

#endif
