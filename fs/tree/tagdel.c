/* tagdel.c — deleting one tag, and only that tag, on any registry; what
 * the mount remembers about a repository between writes (see mount.h).
 *
 * OCI 1.1 DELETE by tag first. Registries that refuse it (registry:2.8
 * answers 400 DIGEST_INVALID, or 405 UNSUPPORTED when deletes are disabled;
 * both come back as -ENOTSUP) get a fallback, but only after a harmless
 * probe showed that the registry allows deletes at all — so a refused rm or
 * mv changes nothing:
 *   - delete the manifest by digest, when the repository's current tag list
 *     was resolved completely and no other tag points at the digest;
 *   - otherwise (shared, or a tag that could not be resolved: a failed
 *     lookup is never taken for "not shared") push a unique placeholder to
 *     the tag and delete the placeholder by digest; if that delete fails the
 *     tag is put back.
 * What remains possible: a tag pushed onto the same digest by someone else
 * between our tag-list request and the delete by digest, or a tag moved onto
 * it within the ttl before (its resolution is reused for up to --ttl). */
#include "tree.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <regfs/log.h>

/* Invalidate the kernel's entry `name` in the directory at `dirpath`, if the
 * kernel has that directory at all. */
void write_inval_entry(struct mnt *m, const char *dirpath, const char *name)
{
	struct node *d = nodes_ref_by_path(m->nodes, dirpath);
	if (!d)
		return;
	if (m->se)
		fuse_lowlevel_notify_inval_entry(m->se, d->id, name, strlen(name));
	nodes_forget(m->nodes, d->id, 1);
}

/* The kernel drops its cached listings of <repo>/_tags and <repo>/_manifests
 * (a tag deletion can change both; the kernel itself only knows about the
 * one directory the operation was in). */
static void kernel_dirs_changed(struct mnt *m, const char *repo)
{
	static const char *const dirs[] = {"_tags", "_manifests"};
	for (size_t i = 0; i < 2; i++) {
		char p[600];
		snprintf(p, sizeof p, "%s/%s", repo, dirs[i]);
		struct node *d = nodes_ref_by_path(m->nodes, p);
		if (!d)
			continue;
		dir_version_expire(d);
		if (m->se)
			fuse_lowlevel_notify_inval_inode(m->se, d->id, 0, 0);
		nodes_forget(m->nodes, d->id, 1);
	}
}

/* The tag list is refetched (keeping the other tags' resolutions: one
 * request, not one per tag), `tags` are resolved again. */
void write_changed(struct mnt *m, const char *repo, const char *const *tags, size_t n)
{
	names_invalidate_tags(m->nc, repo, tags, n);
	kernel_dirs_changed(m, repo);
}

void write_tag_removed(struct mnt *m, const char *repo, const char *tag)
{
	names_tag_removed(m->nc, repo, tag);
	kernel_dirs_changed(m, repo);
}

void write_changed1(struct mnt *m, const char *repo, const char *tag)
{
	write_changed(m, repo, &tag, 1);
}

/* ---- what the mount remembers about a repository between writes ----
 * A small fixed table (no heap: nothing to free at unmount), guarded by wmu.
 * Entries are reused least-recently-used; a repository whose name does not
 * fit is simply not remembered (every write probes again). */
#define WSTATE_N 64

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
double wstate_time(const char *repo, size_t field, const double *set)
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
/* The log line of a refused delete probe (why: the registry's answer). */
static void deletes_refused_log(const char *what, const char *repo, int rc, const char *why)
{
	if (rc == -EPERM)
		fs_warn("%s refused: the registry does not allow deletes in %s (%s); nothing was "
			"changed — enable them (registry:2: storage.delete.enabled: true)", what,
			repo, why);
	else if (rc == -EACCES)
		fs_warn("%s refused: the credentials may not delete in %s (%s); nothing was "
			"changed", what, repo, why);
}

int tag_deletes_allowed(struct mnt *m, const char *repo, const char *what)
{
	static const char zero[] =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";
	int rc = 0;
	char why[sizeof wst[0].probe_msg] = "";
	pthread_mutex_lock(&wmu);
	struct wstate *w = wstate_of(repo);
	bool known = w && now_mono() - w->probed_at < m->o.ttl;
	if (known) {
		rc = w->probe_rc;
		snprintf(why, sizeof why, "%s", w->probe_msg);
	}
	pthread_mutex_unlock(&wmu);
	if (known) {
		deletes_refused_log(what, repo, rc, why);
		return rc;
	}
	struct regfs_err e = {0};
	rc = regfs_client_delete_manifest(m->client, repo, zero, &e);
	if (rc == 0 || rc == -ENOENT) {
		rc = 0;
	} else if (rc == -ENOTSUP || rc == -EACCES) {
		rc = rc == -ENOTSUP ? -EPERM : rc;
		snprintf(why, sizeof why, "%s", regfs_err_str(&e));
		deletes_refused_log(what, repo, rc, why);
	} else {
		fs_warn("%s refused: cannot tell whether the registry allows deletes in %s (%s); "
			"nothing was changed", what, repo, regfs_err_str(&e));
		return -EIO;
	}
	pthread_mutex_lock(&wmu);
	if ((w = wstate_of(repo))) {
		w->probed_at = now_mono();
		w->probe_rc = rc;
		snprintf(w->probe_msg, sizeof w->probe_msg, "%s", why);
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
static int placeholder_swap(struct mnt *m, const char *repo, const char *tag,
			    const char *digest, const char *what, const struct mentry *me)
{
	int rc;
	size_t plen = 0;
	char *p = placeholder(me->data, me->len, &plen);
	if (!p)
		return -ENOMEM;
	struct regfs_err e = {0};
	char pd[REGFS_DIGEST_MAX] = "";
	rc = regfs_client_put_manifest(m->client, repo, tag, p, plen, me->m->media_type, pd, &e);
	free(p);
	if (rc)
		return fs_write_errno(rc, &e, what);
	rc = regfs_client_delete_manifest(m->client, repo, pd, &e);
	if (rc == 0)
		return 0;
	int ret = fs_write_errno(rc, &e, what);
	struct regfs_err e2 = {0};
	char back[REGFS_DIGEST_MAX];
	int urc = regfs_client_put_manifest(m->client, repo, tag, me->data, me->len,
					    me->m->media_type, back, &e2);
	if (urc == 0)
		fs_warn("%s: deleting the placeholder failed; %s:%s points at %s again, as before",
			 what, repo, tag, digest);
	else
		log_error("%s: deleting the placeholder %s failed and putting %s:%s back on %s failed "
			  "too (%s): the tag now points at the placeholder; re-tag it by hand "
			  "(ln -s ../_manifests/%s)", what, pd, repo, tag, digest, regfs_err_str(&e2),
			  digest);
	return ret;
}

static int delete_via_placeholder(struct mnt *m, const char *repo, const char *tag,
				  const char *digest, const char *what)
{
	const struct mentry *me;
	int rc = mcache_get(m->mc, repo, digest, &me);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	rc = placeholder_swap(m, repo, tag, digest, what, me);
	mcache_put(m->mc, me);
	return rc;
}

/* The registry cannot delete tags: delete `tag` (pointing at digest `d`)
 * by digest only when the repository's current tag list was resolved
 * completely and no other tag points at `d`; otherwise (shared, or any tag
 * that could not be resolved) through the placeholder. The tag list is
 * fetched again here, right before the delete, so that the window in which
 * a new tag on `d` goes unseen is one list request and the resolution of
 * the tags the list did not have before. */
static int delete_fallback(struct mnt *m, const char *repo, const char *tag, const char *what)
{
	write_changed1(m, repo, tag);
	struct tagset *ts;
	int rc = names_tags(m->nc, repo, &ts);
	if (rc)
		return rc;
	names_resolve_all(m->nc, repo, ts);
	char d[REGFS_DIGEST_MAX] = "", why[400] = "";
	bool found = false, safe = true;
	struct tag_read tr;
	for (size_t i = 0; i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (strcmp(te->tag, tag) == 0) {
			found = true;
			if (names_tag_read(m->nc, te, &tr))
				snprintf(d, sizeof d, "%s", tr.digest);
		}
	}
	for (size_t i = 0; d[0] && safe && i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (strcmp(te->tag, tag) == 0)
			continue;
		if (!names_tag_read(m->nc, te, &tr) || !tr.digest[0]) {
			safe = false;
			snprintf(why, sizeof why, "tag %s could not be resolved", te->tag);
		} else if (strcmp(tr.digest, d) == 0) {
			safe = false;
			snprintf(why, sizeof why, "tag %s points at it too", te->tag);
		}
	}
	tagset_put(ts);
	if (!found)
		return -ENOENT;
	if (!d[0]) {
		fs_warn("%s: refused: the tag itself could not be resolved, so what it points at is "
			 "unknown; nothing was changed", what);
		return -EIO;
	}
	struct regfs_err e = {0};
	if (safe) {
		log_info("%s: the registry cannot delete tags; no other tag points at %s, deleting it "
			 "by digest", what, d);
		rc = regfs_client_delete_manifest(m->client, repo, d, &e);
		return rc ? fs_write_errno(rc, &e, what) : 0;
	}
	log_info("%s: the registry cannot delete tags and %s cannot be deleted by digest (%s); "
		 "moving the tag to a placeholder and deleting that", what, d, why);
	return delete_via_placeholder(m, repo, tag, d, what);
}

/* Deletes one tag and only that tag; a refused delete changes nothing. */
int tag_delete(struct mnt *m, const char *repo, const char *tag)
{
	char what[400];
	snprintf(what, sizeof what, "deleting tag %s:%s", repo, tag);
	struct regfs_err e = {0};
	const size_t notag = offsetof(struct wstate, notag_at);
	int rc = -ENOTSUP;
	if (now_mono() - wstate_time(repo, notag, NULL) >= m->o.ttl) {
		rc = regfs_client_delete_manifest(m->client, repo, tag, &e);
		if (rc != -ENOTSUP)
			return rc ? fs_write_errno(rc, &e, what) : 0;
	}
	/* Refused: tags cannot be deleted (registry:2), or nothing can. */
	if ((rc = tag_deletes_allowed(m, repo, what)))
		return rc;
	double now = now_mono();
	wstate_time(repo, notag, &now);
	return delete_fallback(m, repo, tag, what);
}
