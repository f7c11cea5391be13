/* tagwrite.c — the writes the mount supports on tags, as the write slots
 * of TAGS (rm, ln -s, mv) and what rmdir in _manifests (manifests.c)
 * shares with them:
 *
 *   rm    <repo>/_tags/<tag>                 delete that tag, and only that tag
 *                                            (tagdel.c)
 *   rmdir <repo>/_manifests/<digest>         delete the manifest (and its tags);
 *                                            refused while an index references it
 *   ln -s ../_manifests/<digest> <repo>/_tags/<new>           tag a manifest
 *   ln -s ../../../other/_manifests/<digest> <repo>/_tags/<new>  copy across
 *                                            repositories (blob mount + put)
 *   ln -sfn …                                retarget: the temporary symlink GNU
 *                                            ln makes is kept pending, not pushed
 *   mv <repo>/_tags/<a> <repo>/_tags/<b>     tag b, then delete a; across
 *                                            repositories EXDEV (mv then copies)
 *
 * Everything a write needs to know is checked before anything is written
 * (protection, existence, whether the registry allows deletes), and a write
 * that fails half way is undone, so a refused or failed write changes
 * nothing. Tags matching --protect globs refuse removal/retargeting with
 * EPERM and a log line naming the rule; with -o ro every write is EROFS;
 * anything else is EROFS with a log line saying what is supported, and
 * rm -r of a repository is refused as a whole (see refuse_recursive).
 *
 * After a change the names cache and the kernel's cached entries for what
 * changed are refreshed, so the change shows at once. (The entry an
 * unlink/rmdir/rename itself touches is updated by the kernel; we
 * invalidate only entries of other directories, which is safe to do from
 * inside the operation.) */
#include "tree.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/log.h>

/* The rule that protects `tag`, or NULL. */
static const char *protected_by(struct mnt *m, const char *tag, char *buf, size_t size)
{
	if (!m->o.protect)
		return NULL;
	snprintf(buf, size, "%s", m->o.protect);
	char *save = NULL;
	/* ',' on the command line; ':' in -o form, where ',' separates options. */
	for (char *p = strtok_r(buf, ",:", &save); p; p = strtok_r(NULL, ",:", &save)) {
		while (*p == ' ')
			p++;
		if (*p && fnmatch(p, tag, 0) == 0)
			return p;
	}
	return NULL;
}

int refuse_protected(struct mnt *m, const char *what, const char *repo, const char *tag)
{
	char buf[1024];
	const char *rule = protected_by(m, tag, buf, sizeof buf);
	if (!rule)
		return 0;
	fs_warn("%s %s:%s refused: the tag is protected (--protect rule '%s')", what, repo, tag, rule);
	return -EPERM;
}

/* Copies manifest `digest` (and for an index its children) from `from` into
 * `repo` by cross-repository blob mounts, then puts it under `ref`. */
static int copy_manifest(struct mnt *m, const char *repo, const char *from, const char *digest,
			 const char *ref, int depth);

/* copy_manifest with the manifest e (held by the caller). */
static int copy_entry(struct mnt *m, const char *repo, const char *from, const char *digest,
		      const char *ref, int depth, const struct mentry *e)
{
	int rc;
	const struct regfs_manifest *man = e->m;
	struct regfs_err err = {0};
	char what[600];
	snprintf(what, sizeof what, "copying %s@%s to %s", from, digest, repo);
	if (strcmp(repo, from) != 0) {
		if (man->has_config && (rc = regfs_client_mount_blob(m->client, repo, from,
								   man->config.digest, &err)))
			return fs_write_errno(rc, &err, what);
		for (size_t i = 0; i < man->n_layers; i++)
			if ((rc = regfs_client_mount_blob(m->client, repo, from,
			    man->layers[i].digest, &err)))
				return fs_write_errno(rc, &err, what);
		for (size_t i = 0; depth < 4 && i < man->n_manifests; i++)
			if ((rc = copy_manifest(m, repo, from, man->manifests[i].digest,
						man->manifests[i].digest, depth + 1)))
				return rc;
	}
	char out[REGFS_DIGEST_MAX];
	rc = regfs_client_put_manifest(m->client, repo, ref, e->data, e->len, man->media_type, out,
				       &err);
	return rc ? fs_write_errno(rc, &err, what) : 0;
}

static int copy_manifest(struct mnt *m, const char *repo, const char *from, const char *digest,
			 const char *ref, int depth)
{
	const struct mentry *e;
	int rc = mcache_get(m->mc, from, digest, &e);
	if (rc)
		return rc;
	rc = copy_entry(m, repo, from, digest, ref, depth, e);
	mcache_put(m->mc, e);
	return rc;
}

/* Resolves a symlink target written into <repo>/_tags to (source repo,
 * digest). Accepts ../_manifests/<d>, ../../…/<other>/_manifests/<d>,
 * <tag> or ../_tags/<tag> style links, and absolute paths into the mount. */
static int parse_target(struct mnt *m, const char *repo, const char *target, char **src,
			char digest[REGFS_DIGEST_MAX])
{
	char *path = NULL;
	size_t ml = strlen(m->o.mountpoint);
	if (target[0] == '/') {
		if (strncmp(target, m->o.mountpoint, ml) != 0 || target[ml] != '/')
			return -EINVAL;
		path = strdup(target + ml + 1);
	} else if (asprintf(&path, "%s/_tags/%s", repo, target) < 0) {
		path = NULL;
	}
	if (!path)
		return -ENOMEM;
	/* Normalize . and .. */
	char *comp[256];
	size_t n = 0;
	char *save = NULL;
	for (char *c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			if (n)
				n--;
			continue;
		}
		if (n == 256) {
			free(path);
			return -EINVAL;
		}
		comp[n++] = c;
	}
	int rc = -EINVAL;
	if (n >= 3 && (strcmp(comp[n - 2], "_manifests") == 0 || strcmp(comp[n - 2], "_tags") == 0)) {
		size_t len = 0;
		for (size_t i = 0; i + 2 < n; i++)
			len += strlen(comp[i]) + 1;
		char *r = malloc(len + 1);
		if (!r) {
			free(path);
			return -ENOMEM;
		}
		r[0] = 0;
		for (size_t i = 0; i + 2 < n; i++) {
			strcat(r, comp[i]);
			if (i + 3 < n)
				strcat(r, "/");
		}
		if (comp[n - 2][1] == 'm' && regfs_digest_valid(comp[n - 1])) {
			snprintf(digest, REGFS_DIGEST_MAX, "%s", comp[n - 1]);
			rc = 0;
		} else if (comp[n - 2][1] == 't') {
			rc = names_resolve(m->nc, r, comp[n - 1], digest, NULL);
		}
		if (rc == 0)
			*src = r;
		else
			free(r);
	}
	free(path);
	return rc;
}

bool tag_exists(struct mnt *m, const char *repo, const char *tag,
		       char digest[REGFS_DIGEST_MAX])
{
	return names_resolve(m->nc, repo, tag, digest, NULL) == 0;
}

#define RMR_HOLD 10.0      /* seconds tag deletes stay refused after rm -r */
#define PENDING_HOLD 60.0  /* seconds a pending ln -sfn link waits for its rename */
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER; /* pend, xh */

/* ---- ln -sfn: pending links ----
 * GNU ln -sfn LINK makes a symlink under a temporary name in the same
 * directory (coreutils' template "CuXXXXXX") and renames it over LINK. Were
 * that symlink a tag, the temporary tag would be pushed first, and a rename
 * onto a protected tag refused only after that push. So a symlink whose
 * name has that shape is kept here, in the mount only, until it is renamed
 * (then the final name is tagged, once) or removed, or PENDING_HOLD passes. */
#define PENDING_N 32
struct pending {
	char repo[256], name[16], src[256];
	char digest[REGFS_DIGEST_MAX];
	double at;  /* 0: free */
};
static struct pending pend[PENDING_N];

static bool temp_name(const char *name)
{
	if (strlen(name) != 8 || name[0] != 'C' || name[1] != 'u')
		return false;
	for (size_t i = 2; i < 8; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

/* Caller holds wmu. The live pending link repo/name, or NULL. */
static struct pending *pending_find(const char *repo, const char *name)
{
	for (size_t i = 0; i < PENDING_N; i++) {
		struct pending *q = &pend[i];
		if (q->at > 0 && now_mono() - q->at > PENDING_HOLD) {
			fs_warn("ln -s %s/_tags/%s: no rename followed within %.0f s; the pending link is "
				 "dropped (nothing was pushed)", q->repo, q->name, PENDING_HOLD);
			q->at = 0;
		}
		if (q->at > 0 && strcmp(q->repo, repo) == 0 && strcmp(q->name, name) == 0)
			return q;
	}
	return NULL;
}

/* Takes (removes) the pending link repo/name into *out; false when none. */
static bool pending_take(const char *repo, const char *name, struct pending *out)
{
	pthread_mutex_lock(&wmu);
	struct pending *q = pending_find(repo, name);
	if (q) {
		*out = *q;
		q->at = 0;
	}
	pthread_mutex_unlock(&wmu);
	return q != NULL;
}

static int pending_add(const char *repo, const char *name, const char *src, const char *digest)
{
	if (strlen(repo) >= sizeof pend[0].repo || strlen(src) >= sizeof pend[0].src)
		return -ENAMETOOLONG;
	int rc = -ENOSPC;
	pthread_mutex_lock(&wmu);
	struct pending *q = pending_find(repo, name);
	for (size_t i = 0; !q && i < PENDING_N; i++)
		if (pend[i].at == 0)
			q = &pend[i];
	if (q) {
		snprintf(q->repo, sizeof q->repo, "%s", repo);
		snprintf(q->name, sizeof q->name, "%s", name);
		snprintf(q->src, sizeof q->src, "%s", src);
		snprintf(q->digest, sizeof q->digest, "%s", digest);
		q->at = now_mono();
		rc = 0;
	}
	pthread_mutex_unlock(&wmu);
	return rc;
}

/* ---- mv across repositories ----
 * rename answers EXDEV; GNU mv then copies: it reads the link
 * (../_manifests/<digest>), makes the same symlink in the other
 * repository's _tags and removes the old tag. The link text names no
 * repository, so the source of the last EXDEV renames is remembered for
 * PENDING_HOLD: a symlink to a digest renamed away from another repository
 * that recently is copied from there (blob mounts from the source). */
#define XHINT_N 8
struct xhint {
	char src[256], digest[REGFS_DIGEST_MAX];
	double at;
};
static struct xhint xh[XHINT_N];
static size_t xh_next;

static void xhint_add(const char *src, const char *digest)
{
	if (strlen(src) >= sizeof xh[0].src)
		return;
	pthread_mutex_lock(&wmu);
	struct xhint *h = &xh[xh_next++ % XHINT_N];
	snprintf(h->src, sizeof h->src, "%s", src);
	snprintf(h->digest, sizeof h->digest, "%s", digest);
	h->at = now_mono();
	pthread_mutex_unlock(&wmu);
}

/* The repository an EXDEV rename of `digest` came from, into src; or false. */
static bool xhint_src(const char *digest, char src[256])
{
	bool found = false;
	pthread_mutex_lock(&wmu);
	for (size_t i = 0; i < XHINT_N && !found; i++)
		if (xh[i].at > 0 && now_mono() - xh[i].at < PENDING_HOLD &&
		    strcmp(xh[i].digest, digest) == 0) {
			memcpy(src, xh[i].src, sizeof xh[i].src);
			found = true;
		}
	pthread_mutex_unlock(&wmu);
	return found;
}

/* ---- rm -r of a repository ----
 * rm -r removes depth first in listing order: <repo>/_manifests/<digest>/…
 * (files it cannot remove) comes before <repo>/_tags. Unlinking a file
 * inside a manifest directory is something only a recursive removal does,
 * so it marks the repository, and its tags then refuse deletion for
 * RMR_HOLD seconds: rm -r of a repository is refused as a whole rather than
 * deleting tags and then failing. */
int refuse_recursive(const char *repo, const char *what)
{
	const size_t f = offsetof(struct wstate, rmr_at);
	double now = now_mono();
	bool already = recursive_removal(repo); /* one warning per rm -r, not per file */
	wstate_time(repo, f, &now);
	if (already) {
		log_debug("%s in %s: refused (rm -r, see above)", what, repo);
		return -EROFS;
	}
	fs_warn("%s in %s: refused; rm -r of a repository (or of its _manifests) is not "
		 "supported and deletes nothing: delete tags with rm %s/_tags/<tag> (or find -delete), "
		 "manifests with rmdir %s/_manifests/<digest>", what, repo, repo, repo);
	return -EROFS;
}

bool recursive_removal(const char *repo)
{
	return now_mono() - wstate_time(repo, offsetof(struct wstate, rmr_at), NULL) < RMR_HOLD;
}

/* rm, rmdir inside a manifest directory: only a recursive removal does
 * that (see refuse_recursive). */
int inside_manifest_unlink(struct mnt *m, struct node *dir, const char *name)
{
	(void)name;
	return dir->repo ? refuse_recursive(dir->repo, "rm of a manifest's file")
			 : fs_unsupported(m, "rm outside _tags");
}

int inside_manifest_rmdir(struct mnt *m, struct node *dir, const char *name)
{
	(void)name;
	return dir->repo ? refuse_recursive(dir->repo, "rmdir inside a manifest")
			 : fs_unsupported(m, "rmdir outside _manifests");
}

/* ---- the write slots of TAGS ---- */

/* rm <repo>/_tags/<tag>: deletes that tag and only that tag (tagdel.c). */
int tags_unlink(struct mnt *m, struct node *p, const char *name)
{
	struct pending pl;
	if (pending_take(p->repo, name, &pl))
		return 0; /* never pushed: nothing to delete */
	if (recursive_removal(p->repo)) {
		fs_warn("rm %s:%s refused: an rm -r of the repository is under way (see above)",
			 p->repo, name);
		return -EROFS;
	}
	int rc = refuse_protected(m, "rm", p->repo, name);
	char d[REGFS_DIGEST_MAX];
	if (rc == 0 && !tag_exists(m, p->repo, name, d))
		rc = -ENOENT;
	if (rc == 0)
		rc = tag_delete(m, p->repo, name);
	if (rc == 0) {
		log_info("deleted tag %s:%s (was %s)", p->repo, name, d);
		write_tag_removed(m, p->repo, name);
		/* The fallback may have deleted the manifest itself. */
		char mdir[600];
		snprintf(mdir, sizeof mdir, "%s/_manifests", p->repo);
		write_inval_entry(m, mdir, d);
	}
	return rc;
}

/* Puts `digest` of `src` as `repo:tag` and refreshes what shows it. */
int make_tag(struct mnt *m, const char *repo, const char *tag, const char *src,
	     const char *digest)
{
	int rc = copy_manifest(m, repo, src, digest, tag, 0);
	if (rc == 0) {
		log_info("tagged %s:%s -> %s%s%s", repo, tag, digest, strcmp(src, repo) ? " from " : "",
			 strcmp(src, repo) ? src : "");
		write_changed1(m, repo, tag);
		char mdir[600];
		snprintf(mdir, sizeof mdir, "%s/_manifests", repo);
		write_inval_entry(m, mdir, digest);
	}
	return rc;
}

static struct node *tag_node(struct mnt *m, struct node *p, const char *name)
{
	struct child c = {0};
	c.name = strdup(name);
	c.arg = strdup(name);
	c.kind = K_TAG;
	c.repo = p->repo;
	struct node *n = c.name && c.arg ? nodes_get(m->nodes, p, &c, 1) : NULL;
	child_clear(&c);
	return n;
}

/* The entry of the tag just made (one lookup counted). */
static int tag_entry(struct mnt *m, struct node *p, const char *name, struct fuse_entry_param *e)
{
	struct node *n = tag_node(m, p, name);
	if (!n)
		return -ENOMEM;
	int rc = node_entry(m, n, e);
	if (rc)
		nodes_forget(m->nodes, n->id, 1);
	return rc;
}

/* The entry of a pending link: the registry does not know it, so its
 * attributes are made here; the kernel keeps the name for PENDING_HOLD. */
static int pending_entry(struct mnt *m, struct node *p, const char *name, const char *digest,
			 struct fuse_entry_param *e)
{
	struct node *n = tag_node(m, p, name);
	if (!n)
		return -ENOMEM;
	memset(e, 0, sizeof *e);
	e->ino = n->id;
	e->attr.st_ino = nodes_ino(m->nodes, n, NULL);
	e->attr.st_mode = S_IFLNK | 0777;
	e->attr.st_nlink = 1;
	e->attr.st_uid = getuid();
	e->attr.st_gid = getgid();
	e->attr.st_size = (off_t)(strlen("../_manifests/") + strlen(digest));
	e->attr.st_mtim.tv_sec = e->attr.st_ctim.tv_sec = e->attr.st_atim.tv_sec = time(NULL);
	e->attr_timeout = e->entry_timeout = PENDING_HOLD;
	return 0;
}

/* The source of ln -s LINK: its repository and digest (see parse_target),
 * or a repository an mv across repositories just came from. */
static int symlink_source(struct mnt *m, struct node *p, const char *link, const char *name,
			  char **src, char d[REGFS_DIGEST_MAX])
{
	int rc = parse_target(m, p->repo, link, src, d);
	if (rc == -EINVAL)
		fs_warn("ln -s %s %s/_tags/%s: the target must be ../_manifests/<digest> (or a "
			 "manifest or tag of another repository in this mount)", link, p->repo, name);
	/* A digest just renamed away from another repository (mv across
	 * repositories): copy it from there (its blobs may not be here; the
	 * manifest cache is by digest, so it cannot tell). */
	char hint[256];
	if (rc == 0 && strcmp(*src, p->repo) == 0 && xhint_src(d, hint) && strcmp(hint, *src) != 0) {
		free(*src);
		*src = strdup(hint);
		rc = *src ? 0 : -ENOMEM;
	}
	return rc;
}

/* ln -s TARGET <repo>/_tags/<name>: tags the manifest TARGET names (a
 * temporary name of ln -sfn is kept pending instead, see above). */
int tags_symlink(struct mnt *m, struct node *p, const char *link, const char *name,
		 struct fuse_entry_param *e)
{
	if (!regfs_tag_valid(name)) {
		fs_warn("ln -s %s: not a valid tag name", name);
		return -EINVAL;
	}
	char d[REGFS_DIGEST_MAX], old[REGFS_DIGEST_MAX];
	char *src = NULL;
	int rc = symlink_source(m, p, link, name, &src, d);
	if (rc == 0 && tag_exists(m, p->repo, name, old))
		rc = -EEXIST;
	if (rc == 0 && temp_name(name)) {
		rc = pending_add(p->repo, name, src, d);
		if (rc == 0) {
			log_info("ln -s %s/_tags/%s: a temporary name (ln -sf): kept pending until it is "
				 "renamed; nothing pushed", p->repo, name);
			free(src);
			return pending_entry(m, p, name, d, e);
		}
	}
	if (rc == 0)
		rc = make_tag(m, p->repo, name, src, d);
	free(src);
	return rc ? rc : tag_entry(m, p, name, e);
}

/* The kernel keeps the inode under its new name: make the node answer
 * for the new tag. */
static void node_renamed(struct mnt *m, struct node *p, const char *name, struct node *np,
			 const char *newname)
{
	nodes_move(m->nodes, p, name, np, newname, newname);
}

/* mv's checks before anything is written: the source exists and is not
 * protected, the target is not protected (or refused by NOREPLACE), and
 * the registry will let us delete the source afterwards. */
static int rename_allowed(struct mnt *m, const char *repo, const char *name, const char *newname,
			  unsigned int flags, char d[REGFS_DIGEST_MAX], bool *target_exists,
			  char old[REGFS_DIGEST_MAX])
{
	int rc = refuse_protected(m, "mv", repo, name);
	if (rc == 0 && !tag_exists(m, repo, name, d))
		rc = -ENOENT;
	*target_exists = rc == 0 && tag_exists(m, repo, newname, old);
	if (rc == 0 && *target_exists && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && *target_exists)
		rc = refuse_protected(m, "mv onto", repo, newname);
	if (rc == 0 && strcmp(name, newname) != 0) {
		char what[600];
		snprintf(what, sizeof what, "mv %s:%s to %s", repo, name, newname);
		rc = tag_deletes_allowed(m, repo, what);
	}
	return rc;
}

/* mv failed after tagging `newname`: put it back as it was (absent, or on
 * `old`), so that a failed mv changes nothing. */
static void undo_tag(struct mnt *m, const char *repo, const char *newname, bool existed,
		     const char *old)
{
	int rc;
	if (existed)
		rc = make_tag(m, repo, newname, repo, old);
	else
		rc = tag_delete(m, repo, newname);
	if (rc == 0)
		fs_warn("mv to %s:%s failed; %s undone", repo, newname,
			 existed ? "the target tag points where it did" : "the new tag was removed");
	else
		log_error("mv to %s:%s failed, and undoing it failed too: %s:%s %s; fix it by hand",
			  repo, newname, repo, newname, existed ? "was not put back" : "still exists");
	write_changed1(m, repo, newname);
}

/* ln -sfn's rename of its pending temporary link onto `newname`. */
static int rename_pending(struct mnt *m, struct node *p, const struct pending *pl,
			  const char *newname, unsigned int flags)
{
	char old[REGFS_DIGEST_MAX];
	bool exists = tag_exists(m, p->repo, newname, old);
	int rc = 0;
	if (exists && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && exists)
		rc = refuse_protected(m, "ln -sf onto", p->repo, newname);
	if (rc == 0)
		rc = make_tag(m, p->repo, newname, pl->src, pl->digest);
	if (rc == 0)
		node_renamed(m, p, pl->name, p, newname);
	return rc;
}

/* mv <repo>/_tags/<a> <repo>/_tags/<b>: tag b, then delete a (undone if
 * that fails); across repositories EXDEV, and mv copies. */
int tags_rename(struct mnt *m, struct node *p, const char *name, struct node *np,
		const char *newname, unsigned int flags)
{
	if (np->kind != p->kind)
		return fs_unsupported(m, "mv outside _tags");
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	char d[REGFS_DIGEST_MAX], old[REGFS_DIGEST_MAX];
	/* Across repositories: EXDEV, and mv copies (ln -s there, rm here). */
	if (strcmp(p->repo, np->repo) != 0) {
		if (tag_exists(m, p->repo, name, d))
			xhint_add(p->repo, d);
		log_info("mv %s:%s to %s: another repository; answering EXDEV (mv then copies "
			 "the tag and removes the old one)", p->repo, name, np->repo);
		return -EXDEV;
	}
	if (!regfs_tag_valid(newname))
		return -EINVAL;
	struct pending pl;
	if (pending_take(p->repo, name, &pl))
		return rename_pending(m, p, &pl, newname, flags);
	bool target_exists = false;
	int rc = rename_allowed(m, p->repo, name, newname, flags, d, &target_exists, old);
	if (rc == 0 && strcmp(name, newname) == 0)
		return 0;
	if (rc == 0)
		rc = make_tag(m, np->repo, newname, p->repo, d);
	if (rc == 0) {
		rc = tag_delete(m, p->repo, name);
		write_changed1(m, p->repo, name);
		if (rc)
			undo_tag(m, p->repo, newname, target_exists, old);
	}
	if (rc == 0)
		node_renamed(m, p, name, np, newname);
	return rc;
}
