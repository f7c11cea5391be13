/* layers.c — the layer index cache (layers.h): indexes and merged images in
 * memory under a byte budget, encoded indexes on disk:
 *
 *   <dir>/layers/<alg>/<hex>.lix   the encoded index (immutable; written
 *                                  through a temp file + rename)
 *   <dir>/layers/<alg>/<hex>.tar   the decoded tar stream of a layer that has
 *                                  no random access (a single-frame zstd)
 *
 * One mutex (the sflight group's) guards the lists and counts; fills and
 * reads run without it. An entry is pinned by its references (readers, and
 * the thread filling it) and is freed only when unpinned and beyond the
 * budget, or when its fill failed. */
#include "../mount.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regfs/dynbuf.h>
#include <regfs/hash.h>
#include <regfs/log.h>

#define NOTES 8192                 /* remembered digest -> repository */
#define LIX_MAX (512ull << 20)     /* largest encoded index file read */

struct note {
	char digest[REGFS_DIGEST_MAX];
	char *repo;
	uint64_t size;
};

struct layer_cache {
	struct sflight_group g;    /* g.mu guards everything below */
	char *dir;                 /* <cache-dir>/layers, NULL: memory only */
	struct blob_cache *bc;
	struct fs_stats *st;
	uint64_t budget, mem;
	struct lview *lhead;       /* most recently used first */
	struct rview *rhead;
	struct note *notes;        /* direct-mapped by hash of the digest */
};

static int mkdirs(const char *path)
{
	char buf[4400];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

struct layer_cache *layer_cache_new(const char *dir, uint64_t budget, struct blob_cache *bc,
				    struct fs_stats *st)
{
	struct layer_cache *lc = calloc(1, sizeof *lc);
	if (!lc)
		return NULL;
	lc->notes = calloc(NOTES, sizeof *lc->notes);
	if (!lc->notes) {
		free(lc);
		return NULL;
	}
	sflight_group_init(&lc->g, loop_may_block);
	lc->bc = bc;
	lc->st = st;
	lc->budget = budget ? budget : LAYER_CACHE_BUDGET;
	if (dir && asprintf(&lc->dir, "%s/layers", dir) < 0)
		lc->dir = NULL;
	if (lc->dir && mkdirs(lc->dir)) {
		log_warn("layer views: cannot create %s: indexes are kept in memory only", lc->dir);
		free(lc->dir);
		lc->dir = NULL;
	}
	return lc;
}

static void lview_free(struct lview *v)
{
	layer_index_free(v->ix);
	free(v->nlink);
	free(v);
}

static void rview_free(struct layer_cache *lc, struct rview *r);

void layer_cache_free(struct layer_cache *lc)
{
	if (!lc)
		return;
	while (lc->rhead) {
		struct rview *r = lc->rhead;
		lc->rhead = r->next;
		rview_free(lc, r);
	}
	while (lc->lhead) {
		struct lview *v = lc->lhead;
		lc->lhead = v->next;
		lview_free(v);
	}
	for (size_t i = 0; i < NOTES; i++)
		free(lc->notes[i].repo);
	free(lc->notes);
	free(lc->dir);
	sflight_group_destroy(&lc->g);
	free(lc);
}

uint64_t layer_cache_memory(struct layer_cache *lc)
{
	pthread_mutex_lock(&lc->g.mu);
	uint64_t m = lc->mem;
	pthread_mutex_unlock(&lc->g.mu);
	return m;
}

/* ---- digest -> repository ---- */

void layer_cache_note_repo(struct layer_cache *lc, const char *digest, const char *repo,
			   uint64_t size)
{
	if (!lc || !repo || strlen(digest) >= REGFS_DIGEST_MAX)
		return;
	struct note *n = &lc->notes[regfs_fnv1a64_str(digest) % NOTES];
	pthread_mutex_lock(&lc->g.mu);
	if (!(strcmp(n->digest, digest) == 0 && n->repo && strcmp(n->repo, repo) == 0)) {
		char *r = strdup(repo);
		if (r) {
			free(n->repo);
			n->repo = r;
			snprintf(n->digest, sizeof n->digest, "%s", digest);
		}
	}
	if (size && strcmp(n->digest, digest) == 0)
		n->size = size;
	pthread_mutex_unlock(&lc->g.mu);
}

int layer_cache_repo(struct layer_cache *lc, const char *digest, char *repo, size_t size,
		     uint64_t *blob_size)
{
	struct note *n = &lc->notes[regfs_fnv1a64_str(digest) % NOTES];
	int rc = -ENOENT;
	pthread_mutex_lock(&lc->g.mu);
	if (n->repo && strcmp(n->digest, digest) == 0 && strlen(n->repo) < size) {
		memcpy(repo, n->repo, strlen(n->repo) + 1);
		if (blob_size)
			*blob_size = n->size;
		rc = 0;
	}
	pthread_mutex_unlock(&lc->g.mu);
	return rc;
}

/* ---- eviction (caller holds g.mu) ---- */

#define UNLINK(head, v) do {                                   \
		if ((v)->prev) (v)->prev->next = (v)->next;    \
		else (head) = (v)->next;                       \
		if ((v)->next) (v)->next->prev = (v)->prev;    \
		(v)->prev = (v)->next = NULL;                  \
	} while (0)
#define PUSH(head, v) do {                                     \
		(v)->prev = NULL;                              \
		(v)->next = (head);                            \
		if (head) (head)->prev = (v);                  \
		(head) = (v);                                  \
	} while (0)

static void lview_drop_locked(struct layer_cache *lc, struct lview *v)
{
	UNLINK(lc->lhead, v);
	lc->mem -= v->mem;
	lview_free(v);
}

static void lview_unpin_locked(struct layer_cache *lc, struct lview *v);

static void rview_free_locked(struct layer_cache *lc, struct rview *r)
{
	for (size_t i = 0; i < r->nl; i++)
		if (r->layers[i])
			lview_unpin_locked(lc, r->layers[i]);
	layer_merged_free(r->mt);
	free(r->layers);
	free(r);
}

static void rview_free(struct layer_cache *lc, struct rview *r)
{
	rview_free_locked(lc, r);
}

/* Frees unpinned entries, least recently used first, until the budget
 * holds: merged images first (they pin their layers). */
static void evict_locked(struct layer_cache *lc)
{
	struct rview *rt = lc->rhead;
	while (rt && rt->next)
		rt = rt->next;
	while (rt && lc->mem > lc->budget) {
		struct rview *prev = rt->prev;
		if (rt->ref == 0 && !rt->sf.busy) {
			UNLINK(lc->rhead, rt);
			lc->mem -= rt->mem;
			rview_free_locked(lc, rt);
		}
		rt = prev;
	}
	struct lview *t = lc->lhead;
	while (t && t->next)
		t = t->next;
	while (t && lc->mem > lc->budget) {
		struct lview *prev = t->prev;
		if (t->ref == 0 && !t->sf.busy)
			lview_drop_locked(lc, t);
		t = prev;
	}
}

/* ---- one layer's index: disk, build ---- */

/* <dir>/<alg>/<hex><ext>; -ENOENT without a disk cache. */
static int lpath(struct layer_cache *lc, const char *digest, const char *ext, char *out,
		 size_t n)
{
	const char *colon = strchr(digest, ':');
	if (!lc->dir || !colon)
		return -ENOENT;
	int k = snprintf(out, n, "%s/%.*s/%s%s", lc->dir, (int)(colon - digest), digest,
			 colon + 1, ext);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

static int read_file(const char *path, struct dynbuf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[65536];
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : 0;
			break;
		}
		if ((rc = dynbuf_add(b, buf, (size_t)r)))
			break;
	}
	close(fd);
	return rc;
}

/* The index from the disk cache: 0, -ENOENT, or a bad file (logged and
 * removed, so it is built again). */
static int load_disk(struct layer_cache *lc, const char *digest, struct layer_index **ix)
{
	char p[4400];
	if (lpath(lc, digest, ".lix", p, sizeof p))
		return -ENOENT;
	struct dynbuf b;
	dynbuf_init(&b, LIX_MAX);
	int rc = read_file(p, &b);
	if (rc == 0) {
		struct regfs_err e = {0};
		rc = layer_index_decode(dynbuf_ptr(&b), dynbuf_len(&b),
					&(struct layer_build_opts){.name = digest}, ix, &e);
		if (rc) {
			log_warn("layer views: the cached index %s is bad (%s): removed, building "
				 "it again", p, regfs_err_str(&e));
			unlink(p);
			rc = -ENOENT;
		}
	} else if (rc != -ENOENT) {
		log_warn("layer views: cannot read %s: %s", p, strerror(-rc));
		rc = -ENOENT;
	}
	dynbuf_free(&b);
	return rc;
}

/* Writes bytes to `path` through a temp file + rename (never a partial
 * file under the final name). */
static int write_atomic(const char *path, const void *p, size_t n)
{
	char tmp[4500];
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	const char *s = p;
	int rc = 0;
	while (n && rc == 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			s += w, n -= (size_t)w;
	}
	if (close(fd) && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static void save_disk(struct layer_cache *lc, const char *digest, const struct layer_index *ix)
{
	char p[4400];
	if (lpath(lc, digest, ".lix", p, sizeof p))
		return;
	char *slash = strrchr(p, '/');
	*slash = 0;
	int rc = mkdirs(p);
	*slash = '/';
	struct dynbuf b;
	dynbuf_init(&b, LIX_MAX);
	struct regfs_err e = {0};
	if (rc == 0)
		rc = layer_index_encode(ix, &b, &e);
	if (rc == 0)
		rc = write_atomic(p, dynbuf_ptr(&b), dynbuf_len(&b));
	if (rc)
		log_warn("layer views: cannot store the index of %s in %s: %s", digest, p,
			 e.msg[0] ? e.msg : strerror(-rc));
	dynbuf_free(&b);
}

struct fdsrc {
	int fd;
};

static ssize_t fd_read(void *arg, void *buf, size_t len)
{
	struct fdsrc *s = arg;
	for (;;) {
		ssize_t r = read(s->fd, buf, len);
		if (r >= 0 || errno != EINTR)
			return r < 0 ? -errno : r;
	}
}

static int fd_sink(void *arg, const void *buf, size_t len)
{
	int fd = *(int *)arg;
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* An fd of the whole blob, from the start: the blob cache's file (filled
 * with one GET when missing), else an unlinked temp file. */
static int blob_fd(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		   const char *digest, uint64_t size)
{
	int fd = lc->bc ? blob_cache_open(lc->bc, digest) : -ENOENT;
	if (fd >= 0 || !repo || !cl)
		return fd >= 0 ? fd : -ENOENT;
	fd = blob_cache_fill(lc->bc, cl, repo, digest, size);
	if (fd >= 0) {
		atomic_fetch_add(&lc->st->lv_bytes, size);
		return fd;
	}
	if (fd != -ENOSYS && fd != -EFBIG)
		return fd;
	/* no disk cache, or the blob is bigger than it */
	const char *tdir = lc->dir ? lc->dir : "/tmp";
	fd = open(tdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_blob_fetch(cl, repo, digest, fd, &e);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		char what[400];
		snprintf(what, sizeof what, "fetching layer %s@%s", repo, digest);
		return fs_client_errno(rc, &e, what);
	}
	struct stat st;
	if (fstat(fd, &st) == 0)
		atomic_fetch_add(&lc->st->lv_bytes, (uint64_t)st.st_size);
	return fd;
}

/* Is the blob at fd a zstd stream (whose decoded copy we may need)? */
static bool is_zstd(int fd)
{
	unsigned char m[4];
	bool z = pread(fd, m, 4, 0) == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f &&
		 m[3] == 0xfd;
	return z;
}

/* One pass over the blob. A zstd layer's decoded stream goes to
 * <hex>.tar as it is read, kept only when the index has no random access.
 * keep_ix false: only that stream is wanted (the index was loaded). */
static int build(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		 const char *digest, uint64_t size, bool keep_ix, struct layer_index **ix)
{
	int fd = blob_fd(lc, cl, repo, digest, size);
	if (fd < 0)
		return fd;
	/* a name of its own: two readers may remake the same stream at once */
	static atomic_uint seq;
	char tarp[4400], ext[64];
	snprintf(ext, sizeof ext, ".tar.%d-%u.tmp", (int)getpid(), atomic_fetch_add(&seq, 1));
	int tfd = -1;
	if (is_zstd(fd) && lpath(lc, digest, ext, tarp, sizeof tarp) == 0)
		tfd = open(tarp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	struct layer_build_opts o = {.name = digest};
	if (tfd >= 0) {
		o.sink = fd_sink;
		o.sink_arg = &tfd;
	}
	struct regfs_err e = {0};
	loop_may_block();
	struct layer_index *got = NULL;
	int rc = layer_index_build(fd_read, &(struct fdsrc){fd}, &o, &got, &e);
	close(fd);
	if (tfd >= 0) {
		char final[4400];
		lpath(lc, digest, ".tar", final, sizeof final);
		bool want = rc == 0 && layer_index_fetch_space(got) == LAYER_SPACE_DECODED;
		if (close(tfd) || !want || rename(tarp, final))
			unlink(tarp);
	}
	if (rc) {
		fs_warn("layer %s: cannot index it: %s", digest, regfs_err_str(&e));
		return rc == -ENOMEM ? rc : -EBADMSG; /* the layer itself is bad */
	}
	if (keep_ix)
		*ix = got;
	else
		layer_index_free(got);
	return 0;
}

/* The registry's push-time index (regfs-registry's layer-index extension),
 * verified twice: the bytes against the digest the registry sent (client),
 * the index by layer_index_decode. -ENOENT when there is none to use: the
 * caller builds it. */
static int fetch_index(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		       const char *digest, struct layer_index **ix)
{
	if (!cl || !repo)
		return -ENOENT;
	char *buf = NULL;
	size_t len = 0;
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_layer_index(cl, repo, digest, &buf, &len, &e);
	if (rc) {
		if (rc != -ENOTSUP && rc != -ENOENT)
			log_warn("layer %s: the registry's index could not be fetched (%s): "
				 "building it here", digest, regfs_err_str(&e));
		return -ENOENT;
	}
	atomic_fetch_add(&lc->st->lv_bytes, len);
	regfs_err_clear(&e);
	rc = layer_index_decode(buf, len, &(struct layer_build_opts){.name = digest}, ix, &e);
	free(buf);
	if (rc) {
		log_warn("layer %s: the registry's index is bad (%s): building it here", digest,
			 regfs_err_str(&e));
		return -ENOENT;
	}
	return 0;
}

/* The index of a layer not in memory: disk cache, else the registry's,
 * else built (and stored). */
static int fill(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		const char *digest, uint64_t size, struct layer_index **ix)
{
	char noted[1024];
	uint64_t nsize = 0;
	if (!repo && layer_cache_repo(lc, digest, noted, sizeof noted, &nsize) == 0)
		repo = noted;
	if (!size)
		size = nsize;
	if (load_disk(lc, digest, ix) == 0) {
		atomic_fetch_add(&lc->st->lv_loaded, 1);
		return 0;
	}
	if (fetch_index(lc, cl, repo, digest, ix) == 0) {
		atomic_fetch_add(&lc->st->lv_fetched, 1);
	} else {
		int rc = build(lc, cl, repo, digest, size, true, ix);
		if (rc)
			return rc;
		atomic_fetch_add(&lc->st->lv_built, 1);
	}
	save_disk(lc, digest, *ix);
	return 0;
}

/* ---- one layer: get, put, install ---- */

/* Names per entry's data: 1 + the hard links to it. */
static uint32_t *count_links(const struct layer_index *ix)
{
	size_t n = layer_index_count(ix);
	uint32_t *c = calloc(n, sizeof *c);
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (e->type == LAYER_HARDLINK && e->link_index < n)
			c[e->link_index]++;
	}
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (e->type != LAYER_HARDLINK || e->link_index >= n)
			c[i] = c[i] + 1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (e->type == LAYER_HARDLINK && e->link_index < n)
			c[i] = c[e->link_index];
	}
	return c;
}

/* Caller holds g.mu: v's value is ix (taken over); false when out of
 * memory (ix freed). */
static bool lview_set_locked(struct layer_cache *lc, struct lview *v, struct layer_index *ix)
{
	uint32_t *nl = count_links(ix);
	if (!nl) {
		layer_index_free(ix);
		return false;
	}
	struct layer_index_stats st;
	layer_index_stats(ix, &st);
	v->ix = ix;
	v->nlink = nl;
	v->mem = st.memory + layer_index_count(ix) * sizeof *nl + sizeof *v;
	lc->mem += v->mem;
	return true;
}

/* Caller holds g.mu: the entry of digest, made (and pinned) when absent. */
static struct lview *lview_pin_locked(struct layer_cache *lc, const char *digest)
{
	struct lview *v = lc->lhead;
	while (v && strcmp(v->digest, digest) != 0)
		v = v->next;
	if (!v) {
		v = calloc(1, sizeof *v);
		if (!v)
			return NULL;
		snprintf(v->digest, sizeof v->digest, "%s", digest);
		PUSH(lc->lhead, v);
	} else {
		UNLINK(lc->lhead, v);
		PUSH(lc->lhead, v);
	}
	v->ref++;
	return v;
}

/* Caller holds g.mu: drops a pin; an entry without a value goes. */
static void lview_unpin_locked(struct layer_cache *lc, struct lview *v)
{
	v->ref--;
	if (v->ref == 0 && !v->sf.valid && !v->sf.busy && !v->bad)
		lview_drop_locked(lc, v);
}

int layer_cache_get(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		    const char *digest, uint64_t size, struct lview **out)
{
	*out = NULL;
	if (!regfs_digest_valid(digest))
		return -ENOENT;
	pthread_mutex_lock(&lc->g.mu);
	struct lview *v = lview_pin_locked(lc, digest);
	if (!v) {
		pthread_mutex_unlock(&lc->g.mu);
		return -ENOMEM;
	}
	if (sflight_begin(&lc->g, &v->sf, INFINITY) == SFLIGHT_HIT) {
		pthread_mutex_unlock(&lc->g.mu);
		*out = v;
		return 0;
	}
	if (v->bad && now_mono() - v->bad_at < LAYER_CACHE_BAD_TTL) {
		int bad = v->bad; /* already logged */
		sflight_end(&lc->g, &v->sf, false);
		lview_unpin_locked(lc, v);
		pthread_mutex_unlock(&lc->g.mu);
		return bad;
	}
	pthread_mutex_unlock(&lc->g.mu);
	struct layer_index *ix = NULL;
	int rc = fill(lc, cl, repo, digest, size, &ix);
	pthread_mutex_lock(&lc->g.mu);
	if (rc == 0 && !lview_set_locked(lc, v, ix))
		rc = -ENOMEM;
	/* a bad layer stays bad: not fetched and read again at every lookup
	 * (a registry failure is tried again at once) */
	bool bad = rc == -EBADMSG;
	if (bad)
		rc = -EIO;
	v->bad = bad ? -EIO : 0;
	v->bad_at = now_mono();
	sflight_end(&lc->g, &v->sf, rc == 0);
	if (rc)
		lview_unpin_locked(lc, v);
	else
		evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
	if (rc == 0)
		*out = v;
	return rc;
}

void layer_cache_put(struct layer_cache *lc, struct lview *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&lc->g.mu);
	lview_unpin_locked(lc, v);
	evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
}

int layer_cache_install(struct layer_cache *lc, const char *digest, struct layer_index *ix)
{
	pthread_mutex_lock(&lc->g.mu);
	struct lview *v = lview_pin_locked(lc, digest);
	int rc = 0;
	if (!v) {
		layer_index_free(ix);
		rc = -ENOMEM;
	} else if (v->sf.valid || v->sf.busy) {
		layer_index_free(ix);
		rc = -EEXIST;
	} else if (!lview_set_locked(lc, v, ix)) {
		rc = -ENOMEM;
	} else {
		sflight_set(&v->sf);
	}
	if (v)
		lview_unpin_locked(lc, v);
	evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
	return rc;
}

/* ---- reads ---- */

struct fetch {
	struct layer_cache *lc;
	struct regfs_client *cl;
	const char *repo, *digest;
	int fd;                 /* the blob (or decoded stream) on disk, or -1 */
};

static ssize_t do_fetch(void *arg, uint64_t off, void *buf, size_t len)
{
	struct fetch *f = arg;
	if (f->fd >= 0) {
		size_t got = 0;
		while (got < len) {
			ssize_t r = pread(f->fd, (char *)buf + got, len - got, (off_t)(off + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				break;
			got += (size_t)r;
		}
		return (ssize_t)got;
	}
	if (!f->repo || !f->cl)
		return -ENOENT;
	size_t got = 0;
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_blob_read(f->cl, f->repo, f->digest, off, len, buf, &got, &e);
	atomic_fetch_add(&f->lc->st->range_reads, 1);
	atomic_fetch_add(&f->lc->st->lv_bytes, got);
	if (rc) {
		char what[400];
		snprintf(what, sizeof what, "reading layer %s@%s", f->repo, f->digest);
		return fs_client_errno(rc, &e, what);
	}
	return (ssize_t)got;
}

/* The fd reads of v fetch from: the cached blob, or the decoded stream
 * (made again by one pass over the blob when it is gone); -1 for Range
 * requests. */
static int read_fd(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		   struct lview *v, int *fd)
{
	*fd = -1;
	if (layer_index_fetch_space(v->ix) == LAYER_SPACE_BLOB) {
		if (lc->bc)
			*fd = blob_cache_open(lc->bc, v->digest);
		if (*fd < 0)
			*fd = -1;
		return 0;
	}
	char p[4400];
	if (lpath(lc, v->digest, ".tar", p, sizeof p)) {
		fs_warn("layer %s: a single-frame zstd layer needs a cache dir to be read",
			v->digest);
		return -EIO;
	}
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	int rc = build(lc, cl, repo, v->digest, 0, false, NULL);
	if (rc)
		return rc == -EBADMSG ? -EIO : rc;
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	return *fd >= 0 ? 0 : -EIO;
}

ssize_t layer_cache_read(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
			 struct lview *v, size_t i, uint64_t off, void *buf, size_t len,
			 struct layer_cursor *cur)
{
	char noted[1024];
	if (!repo && layer_cache_repo(lc, v->digest, noted, sizeof noted, NULL) == 0)
		repo = noted;
	struct fetch f = {lc, cl, repo, v->digest, -1};
	int rc = read_fd(lc, cl, repo, v, &f.fd);
	if (rc)
		return rc;
	struct regfs_err e = {0};
	ssize_t n = layer_read(v->ix, i, off, buf, len, do_fetch, &f, cur, &e);
	if (f.fd >= 0)
		close(f.fd);
	if (n < 0 && n != -ENOMEM) {
		const struct layer_entry *en = layer_index_entry(v->ix, i);
		fs_warn("layer %s: reading /%s at %llu: %s", v->digest, en ? en->path : "?",
			(unsigned long long)off, regfs_err_str(&e));
		return -EIO;
	}
	return n;
}

/* ---- one image: the merged tree of its layers ---- */

static void merge_item(void *arg, size_t i, struct layer_merge_item *out)
{
	const struct layer_entry *e = layer_index_entry(arg, i);
	out->path = e->path;
	out->is_dir = e->type == LAYER_DIR;
	out->implied = e->flags & LAYER_F_SYNTHETIC;
	out->link = e->type == LAYER_HARDLINK && e->link_index != LAYER_NONE
			    ? (int64_t)e->link_index : -1;
}

/* Gets every layer (references into r->layers) and merges them. */
static int rfill(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		 struct rview *r, const struct regfs_descriptor *layers)
{
	struct layer_merge_layer *ml = calloc(r->nl ? r->nl : 1, sizeof *ml);
	if (!ml)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < r->nl && rc == 0; i++) {
		rc = layer_cache_get(lc, cl, repo, layers[i].digest, (uint64_t)layers[i].size,
				     &r->layers[i]);
		if (rc == 0)
			ml[i] = (struct layer_merge_layer){layer_index_count(r->layers[i]->ix),
							   merge_item, r->layers[i]->ix};
	}
	struct regfs_err e = {0};
	if (rc == 0 && (rc = layer_merge(ml, r->nl, &r->mt, &e)))
		fs_warn("image %s: cannot merge its layers: %s", r->digest, regfs_err_str(&e));
	free(ml);
	if (rc == 0 && layer_merged_dropped(r->mt))
		log_warn("image %s: %zu entries left out of its merged tree (bad whiteouts, or "
			 "entries under a non-directory)", r->digest, layer_merged_dropped(r->mt));
	return rc;
}

static uint64_t merged_mem(const struct layer_merged *mt)
{
	uint64_t b = 0;
	size_t n = layer_merged_count(mt);
	for (size_t i = 0; i < n; i++)
		b += sizeof(struct layer_merged_entry) + 4 + strlen(layer_merged_get(mt, i)->path) + 1;
	return b;
}

static void rview_drop_refs(struct layer_cache *lc, struct rview *r)
{
	for (size_t i = 0; i < r->nl; i++) {
		if (r->layers[i])
			lview_unpin_locked(lc, r->layers[i]);
		r->layers[i] = NULL;
	}
	layer_merged_free(r->mt);
	r->mt = NULL;
}

int layer_cache_rget(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		     const char *digest, const struct regfs_descriptor *layers, size_t n,
		     struct rview **out)
{
	*out = NULL;
	pthread_mutex_lock(&lc->g.mu);
	struct rview *r = lc->rhead;
	while (r && strcmp(r->digest, digest) != 0)
		r = r->next;
	if (!r && (r = calloc(1, sizeof *r)) && !(r->layers = calloc(n ? n : 1, sizeof(void *)))) {
		free(r);
		r = NULL;
	}
	if (!r) {
		pthread_mutex_unlock(&lc->g.mu);
		return -ENOMEM;
	}
	if (!r->digest[0]) {
		snprintf(r->digest, sizeof r->digest, "%s", digest);
		r->nl = n;
	} else {
		UNLINK(lc->rhead, r);
	}
	PUSH(lc->rhead, r);
	r->ref++;
	if (sflight_begin(&lc->g, &r->sf, INFINITY) == SFLIGHT_HIT) {
		pthread_mutex_unlock(&lc->g.mu);
		*out = r;
		return 0;
	}
	pthread_mutex_unlock(&lc->g.mu);
	int rc = r->nl == n ? rfill(lc, cl, repo, r, layers) : -EIO;
	pthread_mutex_lock(&lc->g.mu);
	if (rc == 0) {
		r->mem = merged_mem(r->mt) + sizeof *r;
		lc->mem += r->mem;
	} else {
		rview_drop_refs(lc, r);
	}
	sflight_end(&lc->g, &r->sf, rc == 0);
	r->ref--;
	if (rc == 0) {
		r->ref++;
		*out = r;
		evict_locked(lc);
	} else if (r->ref == 0 && !r->sf.busy) {
		UNLINK(lc->rhead, r);
		rview_free_locked(lc, r);
	}
	pthread_mutex_unlock(&lc->g.mu);
	return rc;
}

void layer_cache_rput(struct layer_cache *lc, struct rview *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&lc->g.mu);
	r->ref--;
	evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
}
