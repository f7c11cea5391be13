/* manifests.c — <repo>/_manifests (MANIFESTS): every manifest reachable
 * from the repository's tags (index children too, those that still exist)
 * and, where the registry lists them (regfs-registry), the untagged ones;
 * listed from the tag list (ttl). rmdir of <digest> deletes the manifest
 * (and its tags), refused while an index references it. */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>
#include <regfs/strvec.h>

/* The children of the index manifests among s->v[from..end) that still
 * exist (fetched and checked in one batch; a child a garbage collection
 * removed is left out and logged once, so listing and lookup agree). */
static void add_existing_children(struct mnt *m, const char *repo, struct strvec *s, size_t from,
				  size_t end)
{
	struct strvec kids = STRVEC_INIT;
	for (size_t i = from; i < end; i++) {
		/* fetched just before: a hit unless the cache's budget dropped it */
		const struct mentry *e;
		if (mcache_get(m->mc, repo, s->v[i], &e) != 0)
			continue;
		if (e->m->kind == REGFS_MANIFEST_INDEX)
			for (size_t j = 0; j < e->m->n_manifests; j++)
				(void)strvec_push(&kids, e->m->manifests[j].digest);
		mcache_put(m->mc, e);
	}
	const char **repos = calloc(kids.n ? kids.n : 1, sizeof *repos);
	int *present = calloc(kids.n ? kids.n : 1, sizeof *present);
	if (repos && present) {
		for (size_t i = 0; i < kids.n; i++)
			repos[i] = repo;
		manifest_cache_check_exist(m->mc, m->nc, repos, (const char **)kids.v, kids.n, present);
		/* -1 (registry failed): listed, its lookup reports the error. */
		for (size_t i = 0; i < kids.n; i++)
			if (present[i] != 0)
				(void)strvec_push(s, kids.v[i]);
	}
	free(repos);
	free(present);
	strvec_clear(&kids);
}

/* Adds the existing children of the index manifests among s->v[from..]
 * (fetched in one batch first), repeating for nested indexes. */
static void add_index_children(struct mnt *m, const char *repo, struct strvec *s, size_t from)
{
	for (int depth = 0; depth < 4 && from < s->n; depth++) {
		size_t end = s->n;
		const char **repos = calloc(end - from, sizeof *repos);
		if (!repos)
			return;
		for (size_t i = from; i < end; i++)
			repos[i - from] = repo;
		manifest_cache_prefetch(m->mc, repos, (const char **)s->v + from, end - from);
		free(repos);
		add_existing_children(m, repo, s, from, end);
		from = end;
	}
}

static int manifests_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	struct tagset *ts;
	int rc = names_tags(m->nc, dir->repo, &ts);
	if (rc)
		return rc;
	names_resolve_all(m->nc, dir->repo, ts);
	struct strvec s = STRVEC_INIT;
	struct tag_read tr;
	for (size_t i = 0; i < ts->n; i++)
		if (names_tag_read(m->nc, &ts->t[i], &tr))
			(void)strvec_push(&s, tr.digest);
	tagset_put(ts);
	/* With regfs-registry, untagged manifests too (so du and rmdir reach them). */
	char **mf;
	size_t nmf;
	if (names_repo_manifests(m->nc, dir->repo, &mf, &nmf) == 0) {
		for (size_t i = 0; i < nmf; i++) {
			(void)strvec_push(&s, mf[i]);
			free(mf[i]);
		}
		free(mf);
	}
	add_index_children(m, dir->repo, &s, 0);
	strvec_sort(&s);
	strvec_uniq(&s);
	struct clist l = {0};
	for (size_t i = 0; i < s.n; i++) {
		/* A manifest list may name one the registry answers 404 for (an
		 * index child found missing above): listing it would make a
		 * directory that cannot be opened. */
		if (manifest_cache_missing(m->mc, dir->repo, s.v[i]))
			continue;
		struct child *c = cl_add(&l, s.v[i], K_MANIFEST, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", s.v[i]);
	}
	strvec_clear(&s);
	return cl_done(&l, out, n);
}

static int manifests_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	memset(out, 0, sizeof *out);
	if (!regfs_digest_valid(name))
		return -ENOENT;
	/* Content never changes, existence does (rmdir, deletes elsewhere):
	 * a digest the listing shows exists; any other is asked of the
	 * registry, not of the content cache. */
	struct child *v;
	size_t n;
	int rc = manifests_list(m, dir, &v, &n);
	if (rc)
		return rc;
	bool listed = false;
	for (size_t i = 0; i < n; i++) {
		listed |= strcmp(v[i].digest, name) == 0;
		child_clear(&v[i]);
	}
	free(v);
	const struct mentry *e = NULL;
	if (listed) {
		rc = mcache_get(m->mc, dir->repo, name, &e);
	} else {
		struct regfs_manifest_resp r = {0};
		struct regfs_err err = {0};
		loop_may_block();
		rc = regfs_client_manifest(m->client, dir->repo, name, &r, &err);
		if (rc == 0)
			rc = mcache_store(m->mc, name, r.data, r.len, r.content_type, NULL);
		else
			rc = fs_client_errno(rc, &err, "looking up a manifest");
		regfs_manifest_resp_free(&r);
	}
	mcache_put(m->mc, e);
	if (rc)
		return rc;
	out->name = strdup(name);
	out->kind = K_MANIFEST;
	out->repo = dir->repo;
	snprintf(out->digest, sizeof out->digest, "%s", name);
	return out->name ? 0 : -ENOMEM;
}

/* Does manifest `root` (an index, maybe nested) reference `digest`? */
static bool index_references(struct mnt *m, const char *repo, const char *root, const char *digest,
			     int depth)
{
	const struct mentry *e;
	if (depth > 4 || mcache_get(m->mc, repo, root, &e) != 0)
		return false;
	bool found = false;
	for (size_t i = 0; !found && e->m->kind == REGFS_MANIFEST_INDEX && i < e->m->n_manifests;
	     i++)
		found = strcmp(e->m->manifests[i].digest, digest) == 0 ||
			index_references(m, repo, e->m->manifests[i].digest, digest, depth + 1);
	mcache_put(m->mc, e);
	return found;
}

/* rmdir's checks: a tag on `name` that is protected (EPERM); an index that
 * references it — reachable from a protected tag (EPERM), tagged or, where
 * the registry lists them, untagged (EBUSY): deleting it would break the
 * index (skopeo copy --all: manifest unknown). */
static int rmdir_allowed(struct mnt *m, const char *repo, const char *name, struct tagset *ts)
{
	int rc = 0;
	char busy[REGFS_DIGEST_MAX] = "";
	const char *busy_tag = NULL;
	struct tag_read tr;
	/* Protection first, over every tag: EPERM wins over EBUSY. */
	for (size_t i = 0; rc == 0 && i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (!names_tag_read(m->nc, te, &tr)) {
			fs_warn("rmdir %s/_manifests/%s refused: tag %s could not be resolved, so whether "
				 "it references the manifest is unknown", repo, name, te->tag);
			rc = -EIO;
		} else if (strcmp(tr.digest, name) == 0) {
			rc = refuse_protected(m, "rmdir (deletes tag)", repo, te->tag);
		} else if (index_references(m, repo, tr.digest, name, 0)) {
			rc = refuse_protected(m, "rmdir (a child of the index it points at)", repo,
					      te->tag);
			if (!busy[0]) {
				snprintf(busy, sizeof busy, "%s", tr.digest);
				busy_tag = te->tag;
			}
		}
	}
	if (rc == 0 && busy[0]) {
		fs_warn("rmdir %s/_manifests/%s refused: index %s (tag %s) references it; delete the "
			 "index first", repo, name, busy, busy_tag);
		rc = -EBUSY;
	}
	char **mf;
	size_t nmf;
	if (rc == 0 && names_repo_manifests(m->nc, repo, &mf, &nmf) == 0) {
		for (size_t i = 0; i < nmf; i++) {
			if (rc == 0 && strcmp(mf[i], name) != 0 && index_references(m, repo, mf[i],
			    name, 0)) {
				fs_warn("rmdir %s/_manifests/%s refused: index %s references it; delete "
					 "the index first", repo, name, mf[i]);
				rc = -EBUSY;
			}
			free(mf[i]);
		}
		free(mf);
	}
	return rc;
}


/* rmdir <repo>/_manifests/<digest>: deletes the manifest, after the checks
 * of rmdir_allowed; its tags (resolved just before) go with it. */
static int manifests_rmdir(struct mnt *m, struct node *dir, const char *name)
{
	if (!regfs_digest_valid(name))
		return fs_unsupported(m, "rmdir outside _manifests");
	/* The tags that go with it: refuse if one is protected, invalidate after. */
	struct tagset *ts;
	int rc = names_tags(m->nc, dir->repo, &ts);
	if (rc)
		return rc;
	names_resolve_all(m->nc, dir->repo, ts);
	rc = rmdir_allowed(m, dir->repo, name, ts);
	struct regfs_err e = {0};
	if (rc == 0) {
		rc = regfs_client_delete_manifest(m->client, dir->repo, name, &e);
		if (rc) {
			char what[400];
			snprintf(what, sizeof what, "deleting manifest %s@%s", dir->repo, name);
			rc = fs_write_errno(rc, &e, what);
		}
	}
	if (rc == 0) {
		log_info("deleted manifest %s@%s", dir->repo, name);
		char tdir[600];
		snprintf(tdir, sizeof tdir, "%s/_tags", dir->repo);
		struct tag_read tr;
		for (size_t i = 0; i < ts->n; i++)
			if (names_tag_read(m->nc, &ts->t[i], &tr) && strcmp(tr.digest, name) == 0) {
				write_changed1(m, dir->repo, ts->t[i].tag);
				write_inval_entry(m, tdir, ts->t[i].tag);
			}
		write_changed(m, dir->repo, NULL, 0);
	}
	tagset_put(ts);
	return rc;
}

const struct kind_ops manifests_kind = {
	.name = "manifests", .type = S_IFDIR, .flags = KIND_TTL_DIR,
	.list = manifests_list, .lookup = manifests_lookup,
	.attr = attr_writable_dir, .refresh = dir_version_refresh, .listed_at = tags_listed_at,
	.rmdir = manifests_rmdir,
	.priv_free = free,
};
