/* kinds.c — what each kind of node is: its children, its attributes, its
 * link target or content. ops.c dispatches FUSE requests here by kind.
 *
 *   ROOT        top components of the catalog + .regfs
 *   DIR         a namespace and/or repository: nested components, and for a
 *               repository _tags/ and _manifests/
 *   TAGS        the repository's tags (TAG symlinks -> ../_manifests/<digest>)
 *   MANIFESTS   every manifest reachable from a tag (index children too)
 *   MANIFEST    manifest.json + config.json + layers/ (image) or
 *               index.json + platforms/ (index)
 *   MJSON       the manifest's own bytes; BLOB a config or layer blob
 *   LAYERS      N.<ext> blob files in manifest order
 *   PLATFORMS   <os>-<arch>[-<variant>] -> ../../<child digest> (PLATLINK)
 *   META        .regfs/ with status, stats and errors (METAFILE)
 *
 * du semantics live in node_attr: stored blobs (MJSON, BLOB) report
 * st_blocks = ceil(size/512), st_ino = regfs_digest_ino(digest), nlink 2,
 * so GNU du counts each blob once however many repositories show it;
 * everything else has st_blocks 0. */
#include "mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/log.h>

bool kind_is_dir(enum node_kind k)
{
	switch (k) {
	case K_ROOT: case K_DIR: case K_TAGS: case K_MANIFESTS: case K_MANIFEST:
	case K_LAYERS: case K_PLATFORMS: case K_META:
		return true;
	default:
		return false;
	}
}

bool kind_is_ttl_dir(enum node_kind k)
{
	return k == K_ROOT || k == K_DIR || k == K_TAGS || k == K_MANIFESTS;
}

/* ---- listing versions (the kernel's readdir cache) ----
 *
 * The mount answers opendir with ENOSYS, so the kernel opens directories
 * without a round trip and caches every listing (FOPEN_CACHE_DIR). It reuses
 * a cached listing while the directory's mtime is unchanged: at the start of
 * each listing it refreshes the attributes (getattr once their timeout
 * passed) and compares. So for a ttl directory mtime is the version of its
 * listing: dir_version_refresh lists it and moves mtime only when the names
 * differ from the last listing; the attr timeout ends when the catalog or
 * tag list the names came from expires. Directories fixed by a digest never
 * change and keep the mount time. */
static pthread_mutex_t vmu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec last_issued;

static uint64_t names_hash(const struct child *v, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		for (const char *s = v[i].name; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ULL;
		h = (h ^ (0x100u + (unsigned)v[i].kind)) * 1099511628211ULL;
	}
	return h | 1; /* never 0 */
}

/* When the data behind n's listing was fetched (mono); now if unknown. */
static double listing_at(struct mnt *m, struct node *n)
{
	double at = now_mono();
	if (n->kind == K_ROOT || n->kind == K_DIR) {
		struct catalog *c;
		if (names_catalog(m->nc, &c) == 0) {
			at = c->at;
			catalog_put(c);
		}
	} else {
		struct tagset *t;
		if (names_tags(m->nc, n->repo, &t) == 0) {
			at = t->at;
			tagset_put(t);
		}
	}
	return at;
}

/* A realtime stamp later than every one issued before: two versions of one
 * directory must never share an mtime. Caller holds vmu. */
static struct timespec next_stamp(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec < last_issued.tv_sec ||
	    (ts.tv_sec == last_issued.tv_sec && ts.tv_nsec <= last_issued.tv_nsec)) {
		ts = last_issued;
		if (++ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec = 0;
		}
	}
	last_issued = ts;
	return ts;
}

/* A new mtime for n, kept until its next successful listing (whose names
 * then always differ from hash 0): the kernel forgets what it listed before
 * the outage. Caller holds vmu. */
static void n_outage_stamp(struct node *n)
{
	n->lmtime = next_stamp();
	n->lhash = 0;
	n->lver_known = true;
	n->lvalid = 0;
}

int dir_version_refresh(struct mnt *m, struct node *n)
{
	if (!kind_is_ttl_dir(n->kind))
		return 0;
	pthread_mutex_lock(&vmu);
	bool fresh = n->lver_known && now_mono() < n->lvalid;
	pthread_mutex_unlock(&vmu);
	if (fresh)
		return 0;
	struct child *v;
	size_t cnt;
	int rc = kind_ops[n->kind]->list(m, n, &v, &cnt);
	if (rc)
		return rc;
	uint64_t h = names_hash(v, cnt);
	for (size_t i = 0; i < cnt; i++)
		child_clear(&v[i]);
	free(v);
	double at = listing_at(m, n);
	pthread_mutex_lock(&vmu);
	if (!n->lver_known || n->lhash != h) {
		n->lmtime = next_stamp();
		n->lhash = h;
		n->lver_known = true;
	}
	n->lvalid = at + m->o.ttl;
	pthread_mutex_unlock(&vmu);
	return 0;
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
static bool root_down, probe_running, probes_stopped;
static pthread_cond_t probe_cv = PTHREAD_COND_INITIALIZER;

/* GET /v2/ straight through the client: not the catalog, whose single
 * flight would make a user's `ls` wait for the probe's timeout first. */
static void *root_probe(void *arg)
{
	struct mnt *m = arg;
	int rc = regfs_client_ping(m->client, NULL);
	pthread_mutex_lock(&vmu);
	if (rc == 0)
		root_down = false;
	probe_running = false;
	pthread_cond_broadcast(&probe_cv);
	pthread_mutex_unlock(&vmu);
	if (rc == 0)
		log_info("the registry answers again");
	return NULL;
}

/* Caller holds vmu. */
static void root_probe_start(struct mnt *m)
{
	if (probe_running || probes_stopped)
		return;
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, root_probe, m) == 0)
		probe_running = true;
	pthread_attr_destroy(&at);
}

int root_version_refresh(struct mnt *m, struct node *root)
{
	pthread_mutex_lock(&vmu);
	bool down = root_down;
	if (down)
		root_probe_start(m);
	pthread_mutex_unlock(&vmu);
	if (down)
		return 0;
	int rc = dir_version_refresh(m, root);
	if (rc == 0 || rc == -ENOMEM)
		return rc;
	pthread_mutex_lock(&vmu);
	if (!root_down) {
		log_warn("the registry cannot be reached: stat of the mount root answers from "
			 "memory until it can (everything that needs the registry fails with EIO)");
		n_outage_stamp(root);
		root_down = true;
	}
	pthread_mutex_unlock(&vmu);
	return 0;
}

bool root_is_down(void)
{
	pthread_mutex_lock(&vmu);
	bool d = root_down;
	pthread_mutex_unlock(&vmu);
	return d;
}

void root_probe_shutdown(void)
{
	pthread_mutex_lock(&vmu);
	probes_stopped = true;
	while (probe_running)
		pthread_cond_wait(&probe_cv, &vmu);
	pthread_mutex_unlock(&vmu);
}

void dir_version_expire(struct node *n)
{
	pthread_mutex_lock(&vmu);
	n->lvalid = 0;
	pthread_mutex_unlock(&vmu);
}

/* ---- tag time sources (xattr user.regfs.mtime-source) ---- */

int node_mtime_source(struct mnt *m, struct node *n, int *src)
{
	if (n->kind != K_TAGS && n->kind != K_MANIFEST)
		return -ENODATA;
	struct tagset *ts;
	int rc = names_tags(m->nc, n->repo, &ts);
	if (rc)
		return rc == -ENOENT ? -ENODATA : rc;
	names_resolve_all(m->nc, n->repo, ts);
	int worst = -1;
	for (size_t i = 0; i < ts->n; i++) {
		const struct tag_ent *te = &ts->t[i];
		if (te->resolved_at <= 0)
			continue;
		if (n->kind == K_MANIFEST && strcmp(te->digest, n->digest) != 0)
			continue;
		if (worst < 0 || te->mtime_src < worst)
			worst = te->mtime_src;
	}
	tagset_put(ts);
	if (worst < 0)
		return -ENODATA;
	*src = worst;
	return 0;
}

/* ---- child list helpers ---- */

struct clist {
	struct child *v;
	size_t n, cap;
	int err;
};

static struct child *cl_add(struct clist *l, const char *name, enum node_kind kind,
			    const char *repo)
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

static void cl_free(struct clist *l)
{
	for (size_t i = 0; i < l->n; i++)
		child_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int cl_done(struct clist *l, struct child **out, size_t *n)
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

/* Generic lookup for small directories: list, then pick the name. */
static int lookup_by_list(struct mnt *m,
			  int (*list)(struct mnt *, struct node *, struct child **, size_t *),
			  struct node *dir, const char *name, struct child *out)
{
	struct child *v;
	size_t n;
	int rc = list(m, dir, &v, &n);
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

static char *path_join(const char *a, const char *b)
{
	char *s;
	if (asprintf(&s, "%s%s%s", a, *a ? "/" : "", b) < 0)
		return NULL;
	return s;
}

/* ---- ROOT and DIR ---- */

static int list_components(struct mnt *m, struct node *dir, struct clist *l)
{
	struct catalog *cat;
	int rc = names_catalog(m->nc, &cat);
	if (rc)
		return rc;
	int cls = dir->kind == K_ROOT ? 2 : catalog_classify(cat, dir->path);
	if (cls == 0) {
		catalog_put(cat);
		return -ENOENT; /* the repository went away */
	}
	if (cls & 1) {
		cl_add(l, "_manifests", K_MANIFESTS, dir->path);
		cl_add(l, "_tags", K_TAGS, dir->path);
	}
	char **names;
	size_t n;
	rc = catalog_children(cat, dir->path, &names, &n);
	catalog_put(cat);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char *p = path_join(dir->path, names[i]);
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

static int root_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	struct clist l = {0};
	cl_add(&l, ".regfs", K_META, NULL);
	int rc = list_components(m, dir, &l);
	if (rc) {
		cl_free(&l);
		return rc;
	}
	return cl_done(&l, out, n);
}

static int dir_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	struct clist l = {0};
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
	struct catalog *cat;
	int rc = names_catalog(m->nc, &cat);
	if (rc)
		return rc;
	int self = dir->kind == K_ROOT ? 2 : catalog_classify(cat, dir->path);
	rc = -ENOENT;
	if ((self & 1) && (strcmp(name, "_tags") == 0 || strcmp(name, "_manifests") == 0)) {
		out->kind = name[1] == 't' ? K_TAGS : K_MANIFESTS;
		out->repo = dir->path;
		rc = 0;
	} else if (name[0] != '_' && name[0] != '.') {
		char *p = path_join(dir->path, name);
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

/* ---- TAGS / TAG ---- */

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

static int tag_readlink(struct mnt *m, struct node *n, char *buf, size_t size)
{
	char digest[REGFS_DIGEST_MAX];
	int rc = names_resolve(m->nc, n->repo, n->arg, digest, NULL);
	if (rc)
		return rc;
	snprintf(buf, size, "../_manifests/%s", digest);
	return 0;
}

/* ---- MANIFESTS / MANIFEST ---- */

struct dset {
	char **v;
	size_t n, cap;
};

static void dset_add(struct dset *s, const char *d)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 32;
		char **nv = realloc(s->v, nc * sizeof *nv);
		if (!nv)
			return;
		s->v = nv;
		s->cap = nc;
	}
	char *c = strdup(d);
	if (c)
		s->v[s->n++] = c;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dset_uniq(struct dset *s)
{
	if (s->n > 1) /* qsort(NULL, 0) is undefined */
		qsort(s->v, s->n, sizeof *s->v, cmpstr);
	size_t u = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (u && strcmp(s->v[u - 1], s->v[i]) == 0) {
			free(s->v[i]);
			continue;
		}
		s->v[u++] = s->v[i];
	}
	s->n = u;
}

static void dset_free(struct dset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* The children of the index manifests among s->v[from..end) that still
 * exist (fetched and checked in one batch; a child a garbage collection
 * removed is left out and logged once, so listing and lookup agree). */
static void add_existing_children(struct mnt *m, const char *repo, struct dset *s, size_t from,
				  size_t end)
{
	struct dset kids = {0};
	for (size_t i = from; i < end; i++) {
		const struct mentry *e = manifest_cache_peek(m->mc, s->v[i]);
		if (!e || e->m->kind != REGFS_MANIFEST_INDEX)
			continue;
		for (size_t j = 0; j < e->m->n_manifests; j++)
			dset_add(&kids, e->m->manifests[j].digest);
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
				dset_add(s, kids.v[i]);
	}
	free(repos);
	free(present);
	dset_free(&kids);
}

/* Adds the existing children of the index manifests among s->v[from..]
 * (fetched in one batch first), repeating for nested indexes. */
static void add_index_children(struct mnt *m, const char *repo, struct dset *s, size_t from)
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
	struct dset s = {0};
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i].resolved_at > 0)
			dset_add(&s, ts->t[i].digest);
	tagset_put(ts);
	/* With regfs-registry, untagged manifests too (so du and rmdir reach them). */
	char **mf;
	size_t nmf;
	if (names_repo_manifests(m->nc, dir->repo, &mf, &nmf) == 0) {
		for (size_t i = 0; i < nmf; i++) {
			dset_add(&s, mf[i]);
			free(mf[i]);
		}
		free(mf);
	}
	add_index_children(m, dir->repo, &s, 0);
	dset_uniq(&s);
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
	dset_free(&s);
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
	const struct mentry *e;
	if (listed) {
		rc = manifest_cache_get(m->mc, dir->repo, name, &e);
	} else {
		struct regfs_manifest_resp r = {0};
		struct regfs_err err = {0};
		loop_may_block();
		rc = regfs_client_manifest(m->client, dir->repo, name, &r, &err);
		if (rc == 0)
			rc = manifest_cache_store(m->mc, name, r.data, r.len, r.content_type, &e);
		else
			rc = fs_client_errno(rc, &err, "looking up a manifest");
		regfs_manifest_resp_free(&r);
	}
	if (rc)
		return rc;
	out->name = strdup(name);
	out->kind = K_MANIFEST;
	out->repo = dir->repo;
	snprintf(out->digest, sizeof out->digest, "%s", name);
	return out->name ? 0 : -ENOMEM;
}

static struct child *add_blob(struct clist *l, const char *name, enum node_kind k,
			      const char *repo, const char *digest, uint64_t size,
			      const char *mt)
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

static int manifest_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	const struct mentry *e;
	int rc = manifest_cache_get(m->mc, dir->repo, dir->digest, &e);
	if (rc)
		return rc;
	const struct regfs_manifest *man = e->m;
	struct clist l = {0};
	if (man->kind == REGFS_MANIFEST_INDEX) {
		add_blob(&l, "index.json", K_MJSON, dir->repo, e->digest, e->len, man->media_type);
		struct child *c = cl_add(&l, "platforms", K_PLATFORMS, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", e->digest);
	} else {
		if (man->has_config)
			add_blob(&l, "config.json", K_BLOB, dir->repo, man->config.digest,
				 (uint64_t)man->config.size, man->config.media_type);
		struct child *c = cl_add(&l, "layers", K_LAYERS, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", e->digest);
		add_blob(&l, "manifest.json", K_MJSON, dir->repo, e->digest, e->len,
			 man->media_type);
	}
	return cl_done(&l, out, n);
}

static int manifest_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	return lookup_by_list(m, manifest_list, dir, name, out);
}

static int layers_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	const struct mentry *e;
	int rc = manifest_cache_get(m->mc, dir->repo, dir->digest, &e);
	if (rc)
		return rc;
	struct clist l = {0};
	for (size_t i = 0; i < e->m->n_layers; i++) {
		const struct regfs_descriptor *d = &e->m->layers[i];
		char name[64];
		snprintf(name, sizeof name, "%zu.%s", i, regfs_layer_ext(d->media_type));
		add_blob(&l, name, K_BLOB, dir->repo, d->digest, (uint64_t)d->size, d->media_type);
	}
	return cl_done(&l, out, n);
}

static int layers_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	return lookup_by_list(m, layers_list, dir, name, out);
}

static int platforms_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	const struct mentry *e;
	int rc = manifest_cache_get(m->mc, dir->repo, dir->digest, &e);
	if (rc)
		return rc;
	struct clist l = {0};
	for (size_t i = 0; i < e->m->n_manifests; i++) {
		const struct regfs_descriptor *d = &e->m->manifests[i];
		char base[256], name[280];
		if (d->os && d->arch)
			snprintf(base, sizeof base, "%s-%s%s%s", d->os, d->arch,
				 d->variant ? "-" : "", d->variant ? d->variant : "");
		else
			snprintf(base, sizeof base, "unknown");
		/* Platform fields are free text; a directory entry cannot hold
		 * '/' (the kernel fails the whole listing on one). */
		for (char *q = base; *q; q++)
			if (*q == '/')
				*q = '_';
		/* Two children with one platform (attestations, duplicates): keep
		 * names unique and stable by manifest order. */
		snprintf(name, sizeof name, "%s", base);
		for (int k = 2;; k++) {
			bool dup = false;
			for (size_t j = 0; j < l.n; j++)
				dup |= strcmp(l.v[j].name, name) == 0;
			if (!dup)
				break;
			snprintf(name, sizeof name, "%s.%d", base, k);
		}
		struct child *c = cl_add(&l, name, K_PLATLINK, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", d->digest);
	}
	return cl_done(&l, out, n);
}

static int platforms_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	return lookup_by_list(m, platforms_list, dir, name, out);
}

static int platlink_readlink(struct mnt *m, struct node *n, char *buf, size_t size)
{
	(void)m;
	snprintf(buf, size, "../../%s", n->digest);
	return 0;
}

/* ---- .regfs ---- */

static int meta_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	(void)m;
	(void)dir;
	struct clist l = {0};
	static const char *const files[] = {"errors", "stats", "status"}; /* sorted */
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		struct child *c = cl_add(&l, files[i], K_METAFILE, NULL);
		if (c && !(c->arg = strdup(files[i])))
			l.err = -ENOMEM;
	}
	return cl_done(&l, out, n);
}

static int meta_lookup(struct mnt *m, struct node *dir, const char *name, struct child *out)
{
	return lookup_by_list(m, meta_list, dir, name, out);
}

static int metafile_content(struct mnt *m, struct node *n, char **buf, size_t *len)
{
	if (strcmp(n->arg, "status") == 0)
		return stats_status_text(m, buf, len);
	if (strcmp(n->arg, "errors") == 0)
		return fs_errors_text(buf, len);
	return stats_json_text(m, buf, len);
}

/* ---- tables ---- */

static const struct kind_ops root_ops = {.list = root_list, .lookup = dir_lookup};
static const struct kind_ops dir_ops = {.list = dir_list, .lookup = dir_lookup};
static const struct kind_ops tags_ops = {.list = tags_list, .lookup = tags_lookup};
static const struct kind_ops tag_ops = {.readlink = tag_readlink};
static const struct kind_ops manifests_ops = {.list = manifests_list, .lookup = manifests_lookup};
static const struct kind_ops manifest_ops = {.list = manifest_list, .lookup = manifest_lookup};
static const struct kind_ops file_ops = {0};
static const struct kind_ops layers_ops = {.list = layers_list, .lookup = layers_lookup};
static const struct kind_ops platforms_ops = {.list = platforms_list, .lookup = platforms_lookup};
static const struct kind_ops platlink_ops = {.readlink = platlink_readlink};
static const struct kind_ops meta_ops = {.list = meta_list, .lookup = meta_lookup};
static const struct kind_ops metafile_ops = {.content = metafile_content};

const struct kind_ops *const kind_ops[K__COUNT] = {
	[K_ROOT] = &root_ops,         [K_DIR] = &dir_ops,
	[K_TAGS] = &tags_ops,         [K_TAG] = &tag_ops,
	[K_MANIFESTS] = &manifests_ops, [K_MANIFEST] = &manifest_ops,
	[K_MJSON] = &file_ops,        [K_BLOB] = &file_ops,
	[K_LAYERS] = &layers_ops,     [K_PLATFORMS] = &platforms_ops,
	[K_PLATLINK] = &platlink_ops, [K_META] = &meta_ops,
	[K_METAFILE] = &metafile_ops,
};

/* ---- attributes ---- */

int node_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	memset(st, 0, sizeof *st);
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = m->mounted_since;
	st->st_ino = path_hash_ino(n->path);
	*timeout = m->o.ttl;
	switch (n->kind) {
	case K_MANIFEST: case K_LAYERS: case K_PLATFORMS:
		*timeout = IMMUTABLE_TIMEOUT;
		/* fallthrough */
	case K_ROOT: case K_DIR: case K_TAGS: case K_MANIFESTS: case K_META:
		if (kind_is_ttl_dir(n->kind)) {
			pthread_mutex_lock(&vmu);
			if (n->lver_known) {
				st->st_mtim = st->st_ctim = n->lmtime;
				double left = n->lvalid - now_mono();
				*timeout = left > 0 ? left : 0;
			} else {
				*timeout = 0;
			}
			pthread_mutex_unlock(&vmu);
		}
		st->st_mode = S_IFDIR | 0555;
		if ((n->kind == K_TAGS || n->kind == K_MANIFESTS) && !m->o.ro)
			st->st_mode = S_IFDIR | 0755; /* rm/ln/mv, rmdir work here */
		st->st_nlink = 2;
		if (n->kind == K_ROOT)
			st->st_ino = FUSE_ROOT_ID;
		return 0;
	case K_MJSON: case K_BLOB:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		st->st_ino = regfs_digest_ino(n->digest);
		st->st_nlink = 2; /* >= 2 so GNU du dedups by inode */
		*timeout = IMMUTABLE_TIMEOUT;
		return 0;
	case K_TAG: {
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
	case K_PLATLINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)(strlen("../../") + strlen(n->digest));
		*timeout = IMMUTABLE_TIMEOUT;
		return 0;
	case K_METAFILE: {
		char *buf;
		size_t len;
		int rc = metafile_content(m, n, &buf, &len);
		if (rc)
			return rc;
		free(buf);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		st->st_mtim.tv_sec = time(NULL);
		*timeout = 0;
		return 0;
	}
	default:
		return -EIO;
	}
}
