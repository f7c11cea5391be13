/* root.c — the top of the mount: ROOT (the first components of the
 * catalog's names, and .regfs) and DIR (a namespace and/or repository:
 * the next components, and for a repository _tags/ and _manifests/), both
 * listed from the catalog (ttl); and the root while the registry cannot be
 * reached. The root also has .layers and .rootfs (views.c), which only a
 * lookup finds. */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

#include "../usage.h"

/* A DIR's path is its arg (what it was made with); the root's is "". */
static const char *dir_path(const struct node *dir)
{
	return dir->kind == K_ROOT || !dir->arg ? "" : dir->arg;
}

static int list_components(struct mnt *m, struct node *dir, struct clist *l)
{
	struct catalog *cat;
	int rc = names_catalog(m->nc, &cat);
	if (rc)
		return rc;
	int cls = dir->kind == K_ROOT ? 2 : catalog_classify(cat, dir_path(dir));
	if (cls == 0) {
		catalog_put(cat);
		return -ENOENT; /* the repository went away */
	}
	if (cls & 1) {
		cl_add(l, "_manifests", K_MANIFESTS, dir_path(dir));
		cl_add(l, "_tags", K_TAGS, dir_path(dir));
	}
	char **names;
	size_t n;
	rc = catalog_children(cat, dir_path(dir), &names, &n);
	catalog_put(cat);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char *p = path_join(dir_path(dir), names[i]);
		/* DIR nodes carry their own path as repo (a namespace has no tags,
		 * catalog_classify tells which it is). */
		struct child *c = p ? cl_add(l, names[i], K_DIR, NULL) : NULL;
		if (c)
			c->arg = p;
		else
			free(p);
		free(names[i]);
	}
	free(names);
	return 0;
}

static int dir_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	struct clist l = {0};
	if (dir->kind == K_ROOT)
		cl_add(&l, ".regfs", K_META, NULL);
	int rc = list_components(m, dir, &l);
	if (rc) {
		cl_free(&l);
		return rc;
	}
	return cl_done(&l, out, n);
}

static int dir_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	memset(out, 0, sizeof *out);
	if (dir->kind == K_ROOT && strcmp(name, ".regfs") == 0) {
		out->name = strdup(name);
		out->kind = K_META;
		return out->name ? 0 : -ENOMEM;
	}
	/* the layer views: found by lookup, never listed (so du, find and
	 * ls -R of the mount never walk into them) */
	if (dir->kind == K_ROOT && (strcmp(name, ".layers") == 0 || strcmp(name, ".rootfs") == 0)) {
		out->name = strdup(name);
		out->kind = K_VTOP;
		return out->name ? 0 : -ENOMEM;
	}
	struct catalog *cat;
	int rc = names_catalog(m->nc, &cat);
	if (rc)
		return rc;
	int self = dir->kind == K_ROOT ? 2 : catalog_classify(cat, dir_path(dir));
	rc = -ENOENT;
	if ((self & 1) && (strcmp(name, "_tags") == 0 || strcmp(name, "_manifests") == 0)) {
		out->kind = name[1] == 't' ? K_TAGS : K_MANIFESTS;
		out->repo = dir_path(dir);
		rc = 0;
	} else if (name[0] != '_' && name[0] != '.') {
		char *p = path_join(dir_path(dir), name);
		if (p && catalog_classify(cat, p)) {
			out->kind = K_DIR;
			out->arg = p;
			rc = 0;
		} else {
			free(p);
		}
	}
	catalog_put(cat);
	if (rc == 0 && !(out->name = strdup(name))) {
		child_clear(out);
		rc = -ENOMEM;
	}
	return rc;
}

/* When the catalog the listing came from was fetched. */
static double catalog_at(struct mnt *m, struct node *n)
{
	(void)n;
	double at = now_mono();
	struct catalog *c;
	if (names_catalog(m->nc, &c) == 0) {
		at = c->at;
		catalog_put(c);
	}
	return at;
}

static int root_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	attr_ttl_dir(m, n, st, timeout);
	st->st_ino = FUSE_ROOT_ID;
	return 0;
}

/* The first listing of the root starts the prefetch walk (du, ls -R),
 * except while the registry is down (it would only queue before this
 * listing). */
static void root_listing_start(struct mnt *m, struct node *dir)
{
	(void)dir;
	if (!root_is_down())
		walk_start_background(m);
}

/* ---- the root while the registry is unreachable ----
 *
 * `ls /mnt` and a system-wide `df` stat every mount root: those must not
 * fail or wait because one registry is down. So once refreshing the root's
 * listing failed, stat of the root answers from memory at once and a
 * background probe (one at a time) asks the registry; the first answer ends
 * it, and the next stat lists the root again as usual. The
 * root's mtime moves once per outage, so the kernel drops its cached listing
 * and listing the root itself still fails with EIO, as everything that
 * needs the registry does. */
static pthread_mutex_t rmu = PTHREAD_MUTEX_INITIALIZER;
static bool root_down, probe_running, probes_stopped;
static pthread_cond_t probe_cv = PTHREAD_COND_INITIALIZER;

/* GET /v2/ straight through the client: not the catalog, whose single
 * flight would make a user's `ls` wait for the probe's timeout first. */
static void *root_probe(void *arg)
{
	struct mnt *m = arg;
	int rc = regfs_client_ping(m->client, NULL);
	pthread_mutex_lock(&rmu);
	if (rc == 0)
		root_down = false;
	probe_running = false;
	pthread_cond_broadcast(&probe_cv);
	pthread_mutex_unlock(&rmu);
	if (rc == 0)
		log_info("the registry answers again");
	return NULL;
}

/* Caller holds rmu. */
static void root_probe_start(struct mnt *m)
{
	if (probe_running || probes_stopped)
		return;
	if (fs_thread_detached(root_probe, m) == 0)
		probe_running = true;
}

int root_version_refresh(struct mnt *m, struct node *root)
{
	pthread_mutex_lock(&rmu);
	bool down = root_down;
	if (down)
		root_probe_start(m);
	pthread_mutex_unlock(&rmu);
	if (down)
		return 0;
	int rc = dir_version_refresh(m, root);
	if (rc == 0 || rc == -ENOMEM)
		return rc;
	pthread_mutex_lock(&rmu);
	if (!root_down) {
		log_warn("the registry cannot be reached: stat of the mount root answers from "
			 "memory until it can (everything that needs the registry fails with EIO)");
		dir_version_outage(root);
		root_down = true;
	}
	pthread_mutex_unlock(&rmu);
	return 0;
}

bool root_is_down(void)
{
	pthread_mutex_lock(&rmu);
	bool d = root_down;
	pthread_mutex_unlock(&rmu);
	return d;
}

void root_probe_shutdown(void)
{
	pthread_mutex_lock(&rmu);
	probes_stopped = true;
	while (probe_running)
		pthread_cond_wait(&probe_cv, &rmu);
	pthread_mutex_unlock(&rmu);
}

/* ---- storage accounting xattrs (usage.h says what each figure means) ----
 *
 * On the root, a namespace or repository directory (with what is under
 * it: du -s of the directory), and on a manifest directory, which is what
 * getfattr of a tag reaches (it follows the link): the tags of that
 * repository naming the manifest, as a group. Computed with the walk
 * (walk_usage: cached for the ttl). */
static const char USAGE_XATTRS[] = "user.regfs.bytes\0user.regfs.exclusive\0user.regfs.shared";

static bool is_usage_xattr(const char *name)
{
	return strcmp(name, "user.regfs.bytes") == 0 || strcmp(name, "user.regfs.exclusive") == 0 ||
	       strcmp(name, "user.regfs.shared") == 0;
}

int usage_getxattr(struct mnt *m, struct node *n, const char *name, char *buf, size_t size,
		   size_t *len)
{
	if (!is_usage_xattr(name))
		return -ENODATA;
	loop_may_block(); /* may walk the registry */
	struct usage *u;
	int rc = walk_usage(m, &u);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	struct usage_fig f;
	if (n->kind == K_MANIFEST)
		rc = n->repo ? usage_manifest(u, n->repo, n->digest, &f) : -ENOENT;
	else
		rc = n->kind == K_ROOT ? usage_subtree(u, "", &f)
		     : n->arg         ? usage_subtree(u, n->arg, &f)
				      : -ENOENT;
	usage_put(u);
	if (rc == -ENOENT && n->kind == K_ROOT) {
		memset(&f, 0, sizeof f); /* an empty registry */
		rc = 0;
	}
	if (rc)
		return rc == -ENOENT ? -ENODATA : rc;
	uint64_t v = name[11] == 'b' ? f.bytes : name[11] == 'e' ? f.exclusive : f.shared;
	char s[24];
	snprintf(s, sizeof s, "%llu", (unsigned long long)v);
	return xattr_reply(s, buf, size, len);
}

int usage_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	(void)m, (void)n;
	if (size < *len + sizeof USAGE_XATTRS)
		return -ERANGE;
	memcpy(buf + *len, USAGE_XATTRS, sizeof USAGE_XATTRS);
	*len += sizeof USAGE_XATTRS;
	return 0;
}

static int dir_listxattr(struct mnt *m, struct node *n, char *buf, size_t size, size_t *len)
{
	*len = 0;
	return usage_listxattr(m, n, buf, size, len);
}

const struct kind_ops root_kind = {
	.name = "root", .type = S_IFDIR, .flags = KIND_TTL_DIR,
	.list = dir_list, .lookup = dir_lookup, .listing_start = root_listing_start,
	.attr = root_attr, .refresh = root_version_refresh, .listed_at = catalog_at,
	.getxattr = usage_getxattr, .listxattr = dir_listxattr,
	.priv_free = free,
};

const struct kind_ops dir_kind = {
	.name = "namespace/repository", .type = S_IFDIR, .flags = KIND_TTL_DIR,
	.list = dir_list, .lookup = dir_lookup,
	.attr = attr_ttl_dir, .refresh = dir_version_refresh, .listed_at = catalog_at,
	.getxattr = usage_getxattr, .listxattr = dir_listxattr,
	.priv_free = free,
};
