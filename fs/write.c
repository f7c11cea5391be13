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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* After a write to `repo` that changed `tags`: its tag list is refetched
 * (keeping the other tags' fresh resolutions: one request, not one per tag)
 * and the kernel drops its cached listings of <repo>/_tags and
 * <repo>/_manifests (a tag deletion can change both; the kernel itself only
 * knows about the one directory the operation was in). */
static void changed(const char *repo, const char *const *tags, size_t n)
{
	ncache_invalidate_tags(repo, tags, n);
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

static void changed1(const char *repo, const char *tag)
{
	changed(repo, &tag, 1);
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

/* ---- what the mount remembers about a repository between writes ----
 * A small fixed table (no heap: nothing to free at unmount), guarded by wmu.
 * Entries are reused least-recently-used; a repository whose name does not
 * fit is simply not remembered (every write probes again). */
#define WSTATE_N 64
#define RMR_HOLD 10.0      /* seconds tag deletes stay refused after rm -r */
#define PENDING_HOLD 60.0  /* seconds a pending ln -sfn link waits for its rename */

struct wstate {
	char repo[256];
	double used;
	double probed_at;  /* when deletes_allowed asked the registry */
	int probe_rc;
	double notag_at;   /* when DELETE by tag answered "cannot delete tags" */
	double rmr_at;     /* when an rm -r reached the repository's manifests */
};
static struct wstate wst[WSTATE_N];
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;

/* Caller holds wmu. NULL when the name does not fit. */
static struct wstate *wstate_of(const char *repo)
{
	if (strlen(repo) >= sizeof wst[0].repo)
		return NULL;
	struct wstate *lru = &wst[0];
	for (size_t i = 0; i < WSTATE_N; i++) {
		if (strcmp(wst[i].repo, repo) == 0) {
			wst[i].used = now_mono();
			return &wst[i];
		}
		if (wst[i].used < lru->used)
			lru = &wst[i];
	}
	memset(lru, 0, sizeof *lru);
	snprintf(lru->repo, sizeof lru->repo, "%s", repo);
	lru->probed_at = lru->notag_at = lru->rmr_at = -1e18;
	lru->used = now_mono();
	return lru;
}

/* Reads (when `set` is NULL) or sets one of the times of `repo`. */
static double wstate_time(const char *repo, size_t field, const double *set)
{
	pthread_mutex_lock(&wmu);
	struct wstate *w = wstate_of(repo);
	double t = -1e18;
	if (w) {
		double *f = (double *)((char *)w + field);
		if (set)
			*f = *set;
		t = *f;
	}
	pthread_mutex_unlock(&wmu);
	return t;
}

/* Does the registry let us delete manifests of `repo` at all? Asked before
 * anything is changed, so that a refused rm or mv changes nothing: DELETE
 * of a manifest digest that cannot exist answers 404 MANIFEST_UNKNOWN when
 * deletes are enabled and 405 UNSUPPORTED when they are not
 * (registry:2 with storage.delete.enabled false, its default; regfs-registry
 * the same). The answer is kept for the ttl; a failed probe is not kept.
 * 0, -EPERM (disabled), -EACCES (credentials), -EIO (no clear answer). */
static int deletes_allowed(const char *repo)
{
	static const char zero[] =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";
	int rc = 0;
	pthread_mutex_lock(&wmu);
	struct wstate *w = wstate_of(repo);
	bool known = w && now_mono() - w->probed_at < M->o.ttl;
	if (known)
		rc = w->probe_rc;
	pthread_mutex_unlock(&wmu);
	if (known)
		return rc;
	struct regfs_err e = {0};
	rc = regfs_client_delete_manifest(M->client, repo, zero, &e);
	if (rc == 0 || rc == -ENOENT) {
		rc = 0;
	} else if (rc == -ENOTSUP) {
		log_warn("%s: the registry does not allow deletes (%s); nothing was changed — enable "
			 "them (registry:2: storage.delete.enabled: true)", repo, regfs_err_str(&e));
		rc = -EPERM;
	} else if (rc == -EACCES) {
		log_warn("%s: the credentials may not delete here (%s); nothing was changed", repo,
			 regfs_err_str(&e));
	} else {
		log_warn("%s: cannot tell whether the registry allows deletes (%s); nothing was "
			 "changed", repo, regfs_err_str(&e));
		return -EIO;
	}
	pthread_mutex_lock(&wmu);
	if ((w = wstate_of(repo))) {
		w->probed_at = now_mono();
		w->probe_rc = rc;
	}
	pthread_mutex_unlock(&wmu);
	return rc;
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

/* The always-safe fallback: move `tag` to a unique placeholder and delete
 * the placeholder by digest (no other tag can point at it). If that delete
 * fails, the tag is put back on `digest`, so a failed rm changes nothing. */
static int delete_via_placeholder(const char *repo, const char *tag, const char *digest,
				  const char *what)
{
	const struct mentry *me;
	int rc = mcache_get(repo, digest, &me);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	size_t plen = 0;
	char *p = placeholder(me->data, me->len, &plen);
	if (!p)
		return -ENOMEM;
	struct regfs_err e = {0};
	char pd[REGFS_DIGEST_MAX] = "";
	rc = regfs_client_put_manifest(M->client, repo, tag, p, plen, me->m->media_type, pd, &e);
	free(p);
	if (rc)
		return client_rc(rc, &e, what);
	rc = regfs_client_delete_manifest(M->client, repo, pd, &e);
	if (rc == 0)
		return 0;
	int ret = client_rc(rc, &e, what);
	struct regfs_err e2 = {0};
	char back[REGFS_DIGEST_MAX];
	int urc = regfs_client_put_manifest(M->client, repo, tag, me->data, me->len,
					    me->m->media_type, back, &e2);
	if (urc == 0)
		log_warn("%s: deleting the placeholder failed; %s:%s points at %s again, as before",
			 what, repo, tag, digest);
	else
		log_error("%s: deleting the placeholder %s failed and putting %s:%s back on %s failed "
			  "too (%s): the tag now points at the placeholder; re-tag it by hand "
			  "(ln -s ../_manifests/%s)", what, pd, repo, tag, digest, regfs_err_str(&e2),
			  digest);
	return ret;
}

/* The registry cannot delete tags: delete `tag` (pointing at digest `d`)
 * by digest only when the repository's current tag list was resolved
 * completely and no other tag points at `d`; otherwise (shared, or any tag
 * that could not be resolved) through the placeholder. The tag list is
 * fetched again here, right before the delete, so that the window in which
 * a new tag on `d` goes unseen is one list request and the resolution of
 * the tags the list did not have before. */
static int delete_fallback(const char *repo, const char *tag, const char *what)
{
	changed1(repo, tag);
	struct tagset *ts;
	int rc = ncache_tags(repo, &ts);
	if (rc)
		return rc;
	ncache_resolve_all(repo, ts);
	char d[REGFS_DIGEST_MAX] = "", why[400] = "";
	bool found = false, safe = true;
	for (size_t i = 0; i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (strcmp(te->tag, tag) == 0) {
			found = true;
			if (te->resolved_at > 0)
				snprintf(d, sizeof d, "%s", te->digest);
		}
	}
	for (size_t i = 0; d[0] && safe && i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (strcmp(te->tag, tag) == 0)
			continue;
		if (te->resolved_at <= 0 || !te->digest[0]) {
			safe = false;
			snprintf(why, sizeof why, "tag %s could not be resolved", te->tag);
		} else if (strcmp(te->digest, d) == 0) {
			safe = false;
			snprintf(why, sizeof why, "tag %s points at it too", te->tag);
		}
	}
	tagset_put(ts);
	if (!found)
		return -ENOENT;
	if (!d[0]) {
		log_warn("%s: refused: the tag itself could not be resolved, so what it points at is "
			 "unknown; nothing was changed", what);
		return -EIO;
	}
	struct regfs_err e = {0};
	if (safe) {
		log_info("%s: the registry cannot delete tags; no other tag points at %s, deleting it "
			 "by digest", what, d);
		rc = regfs_client_delete_manifest(M->client, repo, d, &e);
		return rc ? client_rc(rc, &e, what) : 0;
	}
	log_info("%s: the registry cannot delete tags and %s cannot be deleted by digest (%s); "
		 "moving the tag to a placeholder and deleting that", what, d, why);
	return delete_via_placeholder(repo, tag, d, what);
}

/* Deletes one tag and only that tag; a refused delete changes nothing. */
static int delete_tag(const char *repo, const char *tag)
{
	char what[400];
	snprintf(what, sizeof what, "deleting tag %s:%s", repo, tag);
	struct regfs_err e = {0};
	const size_t notag = offsetof(struct wstate, notag_at);
	int rc = -ENOTSUP;
	if (now_mono() - wstate_time(repo, notag, NULL) >= M->o.ttl) {
		rc = regfs_client_delete_manifest(M->client, repo, tag, &e);
		if (rc != -ENOTSUP)
			return rc ? client_rc(rc, &e, what) : 0;
	}
	/* Refused: tags cannot be deleted (registry:2), or nothing can. */
	if ((rc = deletes_allowed(repo)))
		return rc;
	double now = now_mono();
	wstate_time(repo, notag, &now);
	return delete_fallback(repo, tag, what);
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
			log_warn("ln -s %s/_tags/%s: no rename followed within %.0f s; the pending link is "
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
 * a while: a symlink to a digest that the target repository does not have
 * is copied from there. */
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
static int refuse_recursive(const char *repo, const char *what)
{
	const size_t f = offsetof(struct wstate, rmr_at);
	double now = now_mono();
	wstate_time(repo, f, &now);
	log_warn("%s in %s: refused; rm -r of a repository (or of its _manifests) is not "
		 "supported and deletes nothing: delete tags with rm %s/_tags/<tag> (or find -delete), "
		 "manifests with rmdir %s/_manifests/<digest>", what, repo, repo, repo);
	return -EROFS;
}

static bool recursive_removal(const char *repo)
{
	return now_mono() - wstate_time(repo, offsetof(struct wstate, rmr_at), NULL) < RMR_HOLD;
}

static bool inside_manifest(enum node_kind k)
{
	return k == K_MANIFEST || k == K_LAYERS || k == K_PLATFORMS;
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
	if (p->repo && inside_manifest(p->kind))
		return (void)fuse_reply_err(req, -refuse_recursive(p->repo, "rm of a manifest's file"));
	if (p->kind != K_TAGS)
		return (void)fuse_reply_err(req, -unsupported("rm outside _tags"));
	struct pending pl;
	if (pending_take(p->repo, name, &pl))
		return (void)fuse_reply_err(req, 0); /* never pushed: nothing to delete */
	if (recursive_removal(p->repo)) {
		log_warn("rm %s:%s refused: an rm -r of the repository is under way (see above)",
			 p->repo, name);
		return (void)fuse_reply_err(req, EROFS);
	}
	int rc = refuse_protected("rm", p->repo, name);
	char d[REGFS_DIGEST_MAX];
	if (rc == 0 && !tag_exists(p->repo, name, d))
		rc = -ENOENT;
	if (rc == 0)
		rc = delete_tag(p->repo, name);
	if (rc == 0) {
		log_info("deleted tag %s:%s (was %s)", p->repo, name, d);
		changed1(p->repo, name);
		/* The fallback may have deleted the manifest itself. */
		char mdir[600];
		snprintf(mdir, sizeof mdir, "%s/_manifests", p->repo);
		inval_entry(mdir, d);
	}
	fuse_reply_err(req, -rc);
}

/* Does manifest `root` (an index, maybe nested) reference `digest`? */
static bool index_references(const char *repo, const char *root, const char *digest, int depth)
{
	const struct mentry *e;
	if (depth > 4 || mcache_get(repo, root, &e) != 0 || e->m->kind != REGFS_MANIFEST_INDEX)
		return false;
	for (size_t i = 0; i < e->m->n_manifests; i++)
		if (strcmp(e->m->manifests[i].digest, digest) == 0 ||
		    index_references(repo, e->m->manifests[i].digest, digest, depth + 1))
			return true;
	return false;
}

/* rmdir's checks: a tag on `name` that is protected (EPERM); an index that
 * references it — reachable from a protected tag (EPERM), tagged or, where
 * the registry lists them, untagged (EBUSY): deleting it would break the
 * index (skopeo copy --all: manifest unknown). */
static int rmdir_allowed(const char *repo, const char *name, struct tagset *ts)
{
	int rc = 0;
	const char *busy = NULL, *busy_tag = NULL;
	/* Protection first, over every tag: EPERM wins over EBUSY. */
	for (size_t i = 0; rc == 0 && i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (te->resolved_at <= 0) {
			log_warn("rmdir %s/_manifests/%s refused: tag %s could not be resolved, so whether "
				 "it references the manifest is unknown", repo, name, te->tag);
			rc = -EIO;
		} else if (strcmp(te->digest, name) == 0) {
			rc = refuse_protected("rmdir (deletes tag)", repo, te->tag);
		} else if (index_references(repo, te->digest, name, 0)) {
			rc = refuse_protected("rmdir (a child of the index it points at)", repo, te->tag);
			if (!busy) {
				busy = te->digest;
				busy_tag = te->tag;
			}
		}
	}
	if (rc == 0 && busy) {
		log_warn("rmdir %s/_manifests/%s refused: index %s (tag %s) references it; delete the "
			 "index first", repo, name, busy, busy_tag);
		rc = -EBUSY;
	}
	char **mf;
	size_t nmf;
	if (rc == 0 && ncache_repo_manifests(repo, &mf, &nmf) == 0) {
		for (size_t i = 0; i < nmf; i++) {
			if (rc == 0 && strcmp(mf[i], name) != 0 && index_references(repo, mf[i], name, 0)) {
				log_warn("rmdir %s/_manifests/%s refused: index %s references it; delete "
					 "the index first", repo, name, mf[i]);
				rc = -EBUSY;
			}
			free(mf[i]);
		}
		free(mf);
	}
	return rc;
}

void write_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	loop_may_block(); /* writes go to the registry */
	struct node *p = nodes_by_id(M->nodes, parent);
	if (!p)
		return (void)fuse_reply_err(req, ESTALE);
	if (M->o.ro)
		return (void)fuse_reply_err(req, EROFS);
	if (p->repo && inside_manifest(p->kind))
		return (void)fuse_reply_err(req, -refuse_recursive(p->repo, "rmdir inside a manifest"));
	if (p->kind != K_MANIFESTS || !regfs_digest_valid(name))
		return (void)fuse_reply_err(req, -unsupported("rmdir outside _manifests"));
	/* The tags that go with it: refuse if one is protected, invalidate after. */
	struct tagset *ts;
	int rc = ncache_tags(p->repo, &ts);
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	ncache_resolve_all(p->repo, ts);
	rc = rmdir_allowed(p->repo, name, ts);
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
		char tdir[600];
		snprintf(tdir, sizeof tdir, "%s/_tags", p->repo);
		for (size_t i = 0; i < ts->n; i++)
			if (ts->t[i].resolved_at > 0 && strcmp(ts->t[i].digest, name) == 0) {
				changed1(p->repo, ts->t[i].tag);
				inval_entry(tdir, ts->t[i].tag);
			}
		changed(p->repo, NULL, 0);
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
		changed1(repo, tag);
		char mdir[600];
		snprintf(mdir, sizeof mdir, "%s/_manifests", repo);
		inval_entry(mdir, digest);
	}
	return rc;
}

static struct node *tag_node(struct node *p, const char *name)
{
	struct child c = {0};
	c.name = strdup(name);
	c.arg = strdup(name);
	c.kind = K_TAG;
	c.repo = p->repo;
	struct node *n = c.name && c.arg ? nodes_get(M->nodes, p, &c, 1) : NULL;
	child_clear(&c);
	return n;
}

static void reply_tag_entry(fuse_req_t req, struct node *p, const char *name)
{
	struct node *n = tag_node(p, name);
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

/* The entry of a pending link: the registry does not know it, so its
 * attributes are made here; the kernel keeps the name for PENDING_HOLD. */
static void reply_pending_entry(fuse_req_t req, struct node *p, const char *name, const char *digest)
{
	struct node *n = tag_node(p, name);
	if (!n)
		return (void)fuse_reply_err(req, ENOMEM);
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	e.ino = n->id;
	e.attr.st_ino = path_hash_ino(n->path);
	e.attr.st_mode = S_IFLNK | 0777;
	e.attr.st_nlink = 1;
	e.attr.st_uid = getuid();
	e.attr.st_gid = getgid();
	e.attr.st_size = (off_t)(strlen("../_manifests/") + strlen(digest));
	e.attr.st_mtim.tv_sec = e.attr.st_ctim.tv_sec = e.attr.st_atim.tv_sec = time(NULL);
	e.attr_timeout = e.entry_timeout = PENDING_HOLD;
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
	/* A digest just renamed away from another repository (mv across
	 * repositories): copy it from there (its blobs may not be here; the
	 * manifest cache is by digest, so it cannot tell). */
	char hint[256];
	if (rc == 0 && strcmp(src, p->repo) == 0 && xhint_src(d, hint) && strcmp(hint, src) != 0) {
		free(src);
		src = strdup(hint);
		rc = src ? 0 : -ENOMEM;
	}
	if (rc == 0 && tag_exists(p->repo, name, old))
		rc = -EEXIST;
	if (rc == 0 && temp_name(name)) {
		rc = pending_add(p->repo, name, src, d);
		if (rc == 0) {
			log_info("ln -s %s/_tags/%s: a temporary name (ln -sf): kept pending until it is "
				 "renamed; nothing pushed", p->repo, name);
			free(src);
			return reply_pending_entry(req, p, name, d);
		}
	}
	if (rc == 0)
		rc = make_tag(p->repo, name, src, d);
	free(src);
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	reply_tag_entry(req, p, name);
}

/* mv's checks before anything is written: the source exists and is not
 * protected, the target is not protected (or refused by NOREPLACE), and
 * the registry will let us delete the source afterwards. */
static int rename_allowed(const char *repo, const char *name, const char *newname,
			  unsigned int flags, char d[REGFS_DIGEST_MAX], bool *target_exists,
			  char old[REGFS_DIGEST_MAX])
{
	int rc = refuse_protected("mv", repo, name);
	if (rc == 0 && !tag_exists(repo, name, d))
		rc = -ENOENT;
	*target_exists = rc == 0 && tag_exists(repo, newname, old);
	if (rc == 0 && *target_exists && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && *target_exists)
		rc = refuse_protected("mv onto", repo, newname);
	if (rc == 0 && strcmp(name, newname) != 0)
		rc = deletes_allowed(repo);
	return rc;
}

/* mv failed after tagging `newname`: put it back as it was (absent, or on
 * `old`), so that a failed mv changes nothing. */
static void undo_tag(const char *repo, const char *newname, bool existed, const char *old)
{
	int rc;
	if (existed)
		rc = make_tag(repo, newname, repo, old);
	else
		rc = delete_tag(repo, newname);
	if (rc == 0)
		log_warn("mv to %s:%s failed; %s undone", repo, newname,
			 existed ? "the target tag points where it did" : "the new tag was removed");
	else
		log_error("mv to %s:%s failed, and undoing it failed too: %s:%s %s; fix it by hand",
			  repo, newname, repo, newname, existed ? "was not put back" : "still exists");
	changed1(repo, newname);
}

/* ln -sfn's rename of its pending temporary link onto `newname`. */
static int rename_pending(struct node *p, const struct pending *pl, const char *newname,
			  unsigned int flags)
{
	char old[REGFS_DIGEST_MAX];
	bool exists = tag_exists(p->repo, newname, old);
	int rc = 0;
	if (exists && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && exists)
		rc = refuse_protected("ln -sf onto", p->repo, newname);
	if (rc == 0)
		rc = make_tag(p->repo, newname, pl->src, pl->digest);
	if (rc == 0) {
		char op[700], npth[700];
		snprintf(op, sizeof op, "%s/%s", p->path, pl->name);
		snprintf(npth, sizeof npth, "%s/%s", p->path, newname);
		nodes_rename(M->nodes, op, npth, newname);
	}
	return rc;
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
	char d[REGFS_DIGEST_MAX], old[REGFS_DIGEST_MAX];
	/* Across repositories: EXDEV, and mv copies (ln -s there, rm here). */
	if (strcmp(p->repo, np->repo) != 0) {
		if (tag_exists(p->repo, name, d))
			xhint_add(p->repo, d);
		log_info("mv %s:%s to %s: another repository; answering EXDEV (mv then copies "
			 "the tag and removes the old one)", p->repo, name, np->repo);
		return (void)fuse_reply_err(req, EXDEV);
	}
	if (!regfs_tag_valid(newname))
		return (void)fuse_reply_err(req, EINVAL);
	struct pending pl;
	if (pending_take(p->repo, name, &pl))
		return (void)fuse_reply_err(req, -rename_pending(p, &pl, newname, flags));
	bool target_exists = false;
	int rc = rename_allowed(p->repo, name, newname, flags, d, &target_exists, old);
	if (rc == 0 && strcmp(name, newname) == 0)
		return (void)fuse_reply_err(req, 0);
	if (rc == 0)
		rc = make_tag(np->repo, newname, p->repo, d);
	if (rc == 0) {
		rc = delete_tag(p->repo, name);
		changed1(p->repo, name);
		if (rc)
			undo_tag(p->repo, newname, target_exists, old);
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
