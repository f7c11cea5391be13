/* write.c — the writes the mount supports (issue 5):
 *
 *   rm    <repo>/_tags/<tag>                 delete that tag, and only that tag
 *   rmdir <repo>/_manifests/<digest>         delete the manifest (and its tags)
 *   ln -s ../_manifests/<digest> <repo>/_tags/<new>           tag a manifest
 *   ln -s ../../../other/_manifests/<digest> <repo>/_tags/<new>  copy across
 *                                            repositories (blob mount + put)
 *   mv <repo>/_tags/<a> <repo>/_tags/<b>     tag b, then delete a (one repository;
 *                                            across repositories EXDEV)
 *
 * Tags matching --protect globs refuse removal/retargeting with EPERM and a
 * log line naming the rule; with -o ro every write is EROFS; anything else
 * is EROFS with a log line saying what is supported.
 *
 * Tag deletion: OCI 1.1 DELETE by tag. Registries that refuse it
 * (registry:2.8 answers UNSUPPORTED -> -ENOTSUP) get a fallback that still
 * removes only that tag: if no other tag of the repository points at the
 * digest, delete by digest; otherwise push a unique placeholder (the same
 * manifest with one extra annotation, so it references only blobs the
 * repository already has) to the tag, and delete the placeholder by digest.
 *
 * After a change our caches for the repository are dropped and the kernel's
 * cached entries for what changed are invalidated, so the change shows at
 * once. (The entry an unlink/rmdir/rename itself touches is updated by the
 * kernel; we invalidate only entries of other directories, which is safe to
 * do from inside the operation.) */
#include "mount.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <regfs/log.h>

int ops_entry(struct node *n, struct fuse_entry_param *e);

/* The rule that protects `tag`, or NULL. */
static const char *protected_by(const char *tag, char *buf, size_t size)
{
	if (!M->o.protect)
		return NULL;
	snprintf(buf, size, "%s", M->o.protect);
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

static int refuse_protected(const char *what, const char *repo, const char *tag)
{
	char buf[1024];
	const char *rule = protected_by(tag, buf, sizeof buf);
	if (!rule)
		return 0;
	log_warn("%s %s:%s refused: the tag is protected (--protect rule '%s')", what, repo, tag, rule);
	return -EPERM;
}

static int unsupported(const char *what)
{
	if (M->o.ro)
		return -EROFS;
	log_info("%s: not supported; the mount supports rm, ln -s and mv in <repo>/_tags/ "
		 "and rmdir in <repo>/_manifests/", what);
	return -EROFS;
}

/* Invalidate the kernel's entry `name` in the directory at `dirpath`, if the
 * kernel has that directory at all. */
static void inval_entry(const char *dirpath, const char *name)
{
	struct node *d = nodes_ref_by_path(M->nodes, dirpath);
	if (!d)
		return;
	if (M->se)
		fuse_lowlevel_notify_inval_entry(M->se, d->id, name, strlen(name));
	nodes_forget(M->nodes, d->id, 1);
}

/* After a write to `repo`: its tag list and manifests are refetched, and the
 * kernel drops its cached listings of <repo>/_tags and <repo>/_manifests (a
 * tag deletion can change both; the kernel itself only knows about the one
 * directory the operation was in). */
static void changed(const char *repo)
{
	ncache_invalidate(repo);
	static const char *const dirs[] = {"_tags", "_manifests"};
	for (size_t i = 0; i < 2; i++) {
		char p[600];
		snprintf(p, sizeof p, "%s/%s", repo, dirs[i]);
		struct node *d = nodes_ref_by_path(M->nodes, p);
		if (!d)
			continue;
		dir_version_expire(d);
		if (M->se)
			fuse_lowlevel_notify_inval_inode(M->se, d->id, 0, 0);
		nodes_forget(M->nodes, d->id, 1);
	}
}

static int client_rc(int rc, struct regfs_err *e, const char *what)
{
	if (rc == -ENOENT)
		return -ENOENT;
	log_warn("%s failed: %s", what, regfs_err_str(e));
	if (rc == -EACCES)
		return -EACCES;
	if (rc == -ENOTSUP)
		return -EPERM;
	return -EIO;
}

/* A placeholder: `data` with a unique annotation (same blobs). */
static char *placeholder(const char *data, size_t len, size_t *out_len)
{
	json_t *j = json_loadb(data, len, 0, NULL);
	if (!j)
		return NULL;
	json_t *ann = json_object_get(j, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(j, "annotations", ann);
	}
	char v[64];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(v, sizeof v, "%lld.%09ld.%d", (long long)ts.tv_sec, ts.tv_nsec, rand());
	json_object_set_new(ann, "org.regfs.placeholder", json_string(v));
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s)
		*out_len = strlen(s);
	return s;
}

/* Deletes one tag (see the header comment for the fallback). */
static int delete_tag(const char *repo, const char *tag)
{
	char what[400];
	snprintf(what, sizeof what, "deleting tag %s:%s", repo, tag);
	struct regfs_err e = {0};
	int rc = regfs_client_delete_manifest(M->client, repo, tag, &e);
	if (rc != -ENOTSUP)
		return rc ? client_rc(rc, &e, what) : 0;

	/* Fallback. Fresh tag list: who else points at this digest? */
	changed(repo);
	struct tagset *ts;
	rc = ncache_tags(repo, &ts);
	if (rc)
		return rc;
	ncache_resolve_all(repo, ts);
	const char *digest = NULL;
	bool shared = false;
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->t[i].tag, tag) == 0 && ts->t[i].resolved_at > 0)
			digest = ts->t[i].digest;
	if (!digest) {
		tagset_put(ts);
		return -ENOENT;
	}
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->t[i].tag, tag) != 0 && ts->t[i].resolved_at > 0 &&
		    strcmp(ts->t[i].digest, digest) == 0)
			shared = true;
	char d[REGFS_DIGEST_MAX];
	snprintf(d, sizeof d, "%s", digest);
	tagset_put(ts);
	regfs_err_clear(&e);
	if (!shared) {
		log_info("%s: the registry cannot delete tags; no other tag points at %s, deleting it by digest",
			 what, d);
		rc = regfs_client_delete_manifest(M->client, repo, d, &e);
		return rc ? client_rc(rc, &e, what) : 0;
	}
	const struct mentry *me;
	rc = mcache_get(repo, d, &me);
	if (rc)
		return rc;
	size_t plen = 0;
	char *p = placeholder(me->data, me->len, &plen);
	if (!p)
		return -ENOMEM;
	char pd[REGFS_DIGEST_MAX] = "";
	log_info("%s: the registry cannot delete tags and %s has other tags; moving the tag to a "
		 "placeholder and deleting that", what, d);
	rc = regfs_client_put_manifest(M->client, repo, tag, p, plen, me->m->media_type, pd, &e);
	free(p);
	if (rc == 0)
		rc = regfs_client_delete_manifest(M->client, repo, pd, &e);
	return rc ? client_rc(rc, &e, what) : 0;
}

/* Copies manifest `digest` (and for an index its children) from `from` into
 * `repo` by cross-repository blob mounts, then puts it under `ref`. */
static int copy_manifest(const char *repo, const char *from, const char *digest, const char *ref,
			 int depth)
{
	const struct mentry *e;
	int rc = mcache_get(from, digest, &e);
	if (rc)
		return rc;
	const struct regfs_manifest *m = e->m;
	struct regfs_err err = {0};
	char what[600];
	snprintf(what, sizeof what, "copying %s@%s to %s", from, digest, repo);
	if (strcmp(repo, from) != 0) {
		if (m->has_config && (rc = regfs_client_mount_blob(M->client, repo, from,
								   m->config.digest, &err)))
			return client_rc(rc, &err, what);
		for (size_t i = 0; i < m->n_layers; i++)
			if ((rc = regfs_client_mount_blob(M->client, repo, from, m->layers[i].digest, &err)))
				return client_rc(rc, &err, what);
		for (size_t i = 0; depth < 4 && i < m->n_manifests; i++)
			if ((rc = copy_manifest(repo, from, m->manifests[i].digest,
						m->manifests[i].digest, depth + 1)))
				return rc;
	}
	char out[REGFS_DIGEST_MAX];
	rc = regfs_client_put_manifest(M->client, repo, ref, e->data, e->len, m->media_type, out, &err);
	return rc ? client_rc(rc, &err, what) : 0;
}

/* Resolves a symlink target written into <repo>/_tags to (source repo,
 * digest). Accepts ../_manifests/<d>, ../../…/<other>/_manifests/<d>,
 * <tag> or ../_tags/<tag> style links, and absolute paths into the mount. */
static int parse_target(const char *repo, const char *target, char **src, char digest[REGFS_DIGEST_MAX])
{
	char *path = NULL;
	size_t ml = strlen(M->o.mountpoint);
	if (target[0] == '/') {
		if (strncmp(target, M->o.mountpoint, ml) != 0 || target[ml] != '/')
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
			rc = ncache_resolve(r, comp[n - 1], digest, NULL);
		}
		if (rc == 0)
			*src = r;
		else
			free(r);
	}
	free(path);
	return rc;
}

static bool tag_exists(const char *repo, const char *tag, char digest[REGFS_DIGEST_MAX])
{
	return ncache_resolve(repo, tag, digest, NULL) == 0;
}

/* ---- FUSE entry points ---- */

void write_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	loop_may_block(); /* writes go to the registry */
	struct node *p = nodes_by_id(M->nodes, parent);
	if (!p)
		return (void)fuse_reply_err(req, ESTALE);
	if (M->o.ro)
		return (void)fuse_reply_err(req, EROFS);
	if (p->kind != K_TAGS)
		return (void)fuse_reply_err(req, -unsupported("rm outside _tags"));
	int rc = refuse_protected("rm", p->repo, name);
	char d[REGFS_DIGEST_MAX];
	if (rc == 0 && !tag_exists(p->repo, name, d))
		rc = -ENOENT;
	if (rc == 0)
		rc = delete_tag(p->repo, name);
	if (rc == 0) {
		log_info("deleted tag %s:%s (was %s)", p->repo, name, d);
		changed(p->repo);
		/* The fallback may have deleted the manifest itself. */
		char mdir[600];
		snprintf(mdir, sizeof mdir, "%s/_manifests", p->repo);
		inval_entry(mdir, d);
	}
	fuse_reply_err(req, -rc);
}

void write_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	loop_may_block(); /* writes go to the registry */
	struct node *p = nodes_by_id(M->nodes, parent);
	if (!p)
		return (void)fuse_reply_err(req, ESTALE);
	if (M->o.ro)
		return (void)fuse_reply_err(req, EROFS);
	if (p->kind != K_MANIFESTS || !regfs_digest_valid(name))
		return (void)fuse_reply_err(req, -unsupported("rmdir outside _manifests"));
	/* The tags that go with it: refuse if one is protected, invalidate after. */
	struct tagset *ts;
	int rc = ncache_tags(p->repo, &ts);
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	ncache_resolve_all(p->repo, ts);
	for (size_t i = 0; rc == 0 && i < ts->n; i++)
		if (ts->t[i].resolved_at > 0 && strcmp(ts->t[i].digest, name) == 0)
			rc = refuse_protected("rmdir (deletes tag)", p->repo, ts->t[i].tag);
	struct regfs_err e = {0};
	if (rc == 0) {
		rc = regfs_client_delete_manifest(M->client, p->repo, name, &e);
		if (rc) {
			char what[400];
			snprintf(what, sizeof what, "deleting manifest %s@%s", p->repo, name);
			rc = client_rc(rc, &e, what);
		}
	}
	if (rc == 0) {
		log_info("deleted manifest %s@%s", p->repo, name);
		changed(p->repo);
		char tdir[600];
		snprintf(tdir, sizeof tdir, "%s/_tags", p->repo);
		for (size_t i = 0; i < ts->n; i++)
			if (ts->t[i].resolved_at > 0 && strcmp(ts->t[i].digest, name) == 0)
				inval_entry(tdir, ts->t[i].tag);
	}
	tagset_put(ts);
	fuse_reply_err(req, -rc);
}

/* Puts `digest` of `src` as `repo:tag` and replies with the new entry. */
static int make_tag(const char *repo, const char *tag, const char *src, const char *digest)
{
	int rc = copy_manifest(repo, src, digest, tag, 0);
	if (rc == 0) {
		log_info("tagged %s:%s -> %s%s%s", repo, tag, digest, strcmp(src, repo) ? " from " : "",
			 strcmp(src, repo) ? src : "");
		changed(repo);
		char mdir[600];
		snprintf(mdir, sizeof mdir, "%s/_manifests", repo);
		inval_entry(mdir, digest);
	}
	return rc;
}

static void reply_tag_entry(fuse_req_t req, struct node *p, const char *name)
{
	struct child c = {0};
	c.name = strdup(name);
	c.arg = strdup(name);
	c.kind = K_TAG;
	c.repo = p->repo;
	struct node *n = c.name && c.arg ? nodes_get(M->nodes, p, &c, 1) : NULL;
	child_clear(&c);
	struct fuse_entry_param e;
	if (!n)
		return (void)fuse_reply_err(req, ENOMEM);
	int rc = ops_entry(n, &e);
	if (rc) {
		nodes_forget(M->nodes, n->id, 1);
		return (void)fuse_reply_err(req, -rc);
	}
	fuse_reply_entry(req, &e);
}

void write_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	loop_may_block(); /* writes go to the registry */
	struct node *p = nodes_by_id(M->nodes, parent);
	if (!p)
		return (void)fuse_reply_err(req, ESTALE);
	if (M->o.ro)
		return (void)fuse_reply_err(req, EROFS);
	if (p->kind != K_TAGS)
		return (void)fuse_reply_err(req, -unsupported("ln -s outside _tags"));
	if (!regfs_tag_valid(name)) {
		log_warn("ln -s %s: not a valid tag name", name);
		return (void)fuse_reply_err(req, EINVAL);
	}
	char d[REGFS_DIGEST_MAX], old[REGFS_DIGEST_MAX];
	char *src = NULL;
	int rc = parse_target(p->repo, link, &src, d);
	if (rc == -EINVAL)
		log_warn("ln -s %s %s/_tags/%s: the target must be ../_manifests/<digest> (or a "
			 "manifest or tag of another repository in this mount)", link, p->repo, name);
	if (rc == 0 && tag_exists(p->repo, name, old))
		rc = -EEXIST;
	if (rc == 0)
		rc = make_tag(p->repo, name, src, d);
	free(src);
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	reply_tag_entry(req, p, name);
}

void write_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	loop_may_block(); /* writes go to the registry */
	struct node *p = nodes_by_id(M->nodes, parent), *np = nodes_by_id(M->nodes, newparent);
	if (!p || !np)
		return (void)fuse_reply_err(req, ESTALE);
	if (M->o.ro)
		return (void)fuse_reply_err(req, EROFS);
	if (p->kind != K_TAGS || np->kind != K_TAGS)
		return (void)fuse_reply_err(req, -unsupported("mv outside _tags"));
	if (flags & RENAME_EXCHANGE)
		return (void)fuse_reply_err(req, EINVAL);
	/* Across repositories use ln -s (a copy) and rm: a node keeps its repository. */
	if (strcmp(p->repo, np->repo) != 0)
		return (void)fuse_reply_err(req, EXDEV);
	if (!regfs_tag_valid(newname))
		return (void)fuse_reply_err(req, EINVAL);
	char d[REGFS_DIGEST_MAX], old[REGFS_DIGEST_MAX];
	int rc = refuse_protected("mv", p->repo, name);
	if (rc == 0 && !tag_exists(p->repo, name, d))
		rc = -ENOENT;
	bool target_exists = rc == 0 && tag_exists(np->repo, newname, old);
	if (rc == 0 && target_exists && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && target_exists)
		rc = refuse_protected("mv onto", np->repo, newname);
	if (rc == 0 && strcmp(p->repo, np->repo) == 0 && strcmp(name, newname) == 0)
		return (void)fuse_reply_err(req, 0);
	if (rc == 0)
		rc = make_tag(np->repo, newname, p->repo, d);
	if (rc == 0) {
		rc = delete_tag(p->repo, name);
		changed(p->repo);
	}
	if (rc == 0) {
		/* The kernel keeps the inode under its new name: make the node
		 * answer for the new tag. */
		char op[700], npth[700];
		snprintf(op, sizeof op, "%s/%s", p->path, name);
		snprintf(npth, sizeof npth, "%s/%s", np->path, newname);
		nodes_rename(M->nodes, op, npth, newname);
	}
	fuse_reply_err(req, -rc);
}

void write_other(fuse_req_t req, const char *what)
{
	fuse_reply_err(req, -unsupported(what));
}
