/* layerio.c — where the layer cache's indexes and the bytes of its reads
 * come from (layers.h tells the order): the encoded index in the cache dir,
 * the registry's push-time index, one pass over the blob (the blob cache's
 * file, filled by one GET; or an unlinked temp file); reads from the cached
 * blob, the decoded stream of a single-frame zstd layer, or Range requests. */
#include "layers_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regfs/dynbuf.h>
#include <regfs/log.h>

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
	int rc = layers_mkdirs(p);
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
int layer_fill(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
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
