/* fs.c — the filesystem storage driver (registry:2's "filesystem").
 *
 * Objects are plain files under the root directory, with the same layout as
 * registry:2, so either program can serve the other's directory. The base
 * (storage.c) has validated every path (absolute, no "."/".."/empty
 * components) before it reaches this file, so joining it to the root never
 * names a file outside the root. No direct URLs (url_for is left NULL).
 *
 * Whole-object writes (put) go to a temporary file ".tmp-*" in the target
 * directory that is fdatasync'ed and renamed over the target: readers see
 * the old or the new content, never a torn one. list() hides those files.
 *
 * Thread safety: the driver holds only immutable state (the root path);
 * every call works on its own file descriptors, so no lock is needed. The
 * temp-name counter is atomic. Writers lock their file (see the writer
 * section) so that one upload has one writer across processes. */
#include <regfs/dynbuf.h>
#include <regfs/log.h>
#include <regfs/storage.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FS_GET_MAX (64u * 1024 * 1024) /* get() is for links and manifests: its cap */
#define TMP_PREFIX ".tmp-"

struct fs_storage {
	struct regfs_storage base;
	char *root; /* no trailing '/'; "" when the root is "/" */
};

static atomic_uint_fast64_t tmp_counter;

/* ---- paths ---------------------------------------------------------------- */

static const struct fs_storage *fss(const struct regfs_storage *s)
{
	return (const struct fs_storage *)s;
}

/* Joins root and a path the base validated into buf (PATH_MAX). */
static int full_path(const struct fs_storage *fs, const char *path, char *buf,
		     struct regfs_err *err)
{
	int n = snprintf(buf, PATH_MAX, "%s%s", fs->root, path[1] ? path : "/");
	if (n < 0 || n >= PATH_MAX)
		return regfs_errf(err, -ENAMETOOLONG, "filesystem storage: path too long: %s", path);
	return 0;
}

/* errno → our codes. ENOTDIR means a parent component is a file: for the
 * caller the object is simply missing. Unusual errors become -EIO. */
static int map_errno(int e)
{
	switch (e) {
	case ENOENT: case ENOTDIR:
		return -ENOENT;
	case EACCES: case EPERM:
		return -EACCES;
	case ENOMEM: case ENOSPC: case EDQUOT: case EROFS: case ENAMETOOLONG:
	case EISDIR: case EEXIST: case ENOTEMPTY: case EMFILE: case ENFILE:
		return -e;
	default:
		return -EIO;
	}
}

static int fs_fail(struct regfs_err *err, int e, const char *op, const char *full)
{
	int code = map_errno(e);
	const char *hint = "";
	if (code == -EACCES)
		hint = " (check ownership and permissions of the storage directory)";
	else if (e == ENOSPC || e == EDQUOT)
		hint = " (free space on the storage volume or run garbage-collect)";
	return regfs_errf(err, code, "filesystem storage: %s %s: %s%s", op, full, strerror(e), hint);
}

/* mkdir -p of every directory above `full`'s last component, below the root. */
static int make_parents(const struct fs_storage *fs, const char *full, struct regfs_err *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(full);
	memcpy(buf, full, len + 1);
	size_t start = strlen(fs->root) + 1;
	for (size_t i = start; i < len; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			buf[i] = '/';
			return fs_fail(err, e, "create directory for", full);
		}
		buf[i] = '/';
	}
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends everything fd holds until EOF to b: 0, -E2BIG past b's cap,
 * -ENOMEM, or the read's -errno. */
static int read_into(int fd, struct dynbuf *b)
{
	char chunk[64 * 1024];
	for (;;) {
		ssize_t k = read(fd, chunk, sizeof chunk);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : 0;
		int r = dynbuf_add(b, chunk, (size_t)k);
		if (r)
			return r;
	}
}

/* Opens the object at `path` read-only, refusing directories: the fd, with
 * *st filled and the full path in `full` (PATH_MAX), or an error naming
 * `op`. */
static int open_ro(const struct regfs_storage *s, const char *path, const char *op, char *full,
		   struct stat *st, struct regfs_err *err)
{
	int r = full_path(fss(s), path, full, err);
	if (r)
		return r;
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fs_fail(err, errno, op, full);
	if (fstat(fd, st) != 0)
		r = fs_fail(err, errno, "stat", full);
	else if (S_ISDIR(st->st_mode))
		r = regfs_errf(err, -EISDIR, "filesystem storage: %s %s: is a directory", op, full);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

/* ---- get / put ------------------------------------------------------------ */

static int fs_get(struct regfs_storage *s, const char *path, char **data, size_t *len,
		  struct regfs_err *err)
{
	char full[PATH_MAX];
	struct stat st;
	int r, fd = open_ro(s, path, "read", full, &st, err);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > FS_GET_MAX) {
		close(fd);
		return regfs_errf(err, -EFBIG, "filesystem storage: read %s: %lld bytes is more than the %u-byte limit for whole-object reads",
				  full, (long long)st.st_size, FS_GET_MAX);
	}
	/* Read until EOF rather than trusting st_size: the file may be replaced.
	 * The buffer's cap is the limit for whole-object reads. */
	struct dynbuf b;
	dynbuf_init(&b, FS_GET_MAX);
	r = read_into(fd, &b);
	close(fd);
	if (r == -E2BIG)
		r = regfs_errf(err, -EFBIG, "filesystem storage: read %s: larger than the %u-byte limit",
			       full, FS_GET_MAX);
	else if (r == -ENOMEM)
		r = regfs_errf(err, -ENOMEM, "filesystem storage: out of memory reading %s", full);
	else if (r < 0)
		r = fs_fail(err, -r, "read", full);
	if (r == 0 && !(*data = dynbuf_take(&b, len)))
		r = regfs_errf(err, -ENOMEM, "filesystem storage: out of memory reading %s", full);
	dynbuf_free(&b);
	return r;
}

/* Opens a fresh temp file next to `full` ("<dir>/.tmp-<base>-<pid>-<n>"). */
static int open_temp(const char *full, char *tmp)
{
	const char *slash = strrchr(full, '/');
	size_t dirlen = (size_t)(slash - full);
	for (int tries = 0; tries < 10; tries++) {
		uint64_t c = atomic_fetch_add(&tmp_counter, 1);
		int n = snprintf(tmp, PATH_MAX, "%.*s/" TMP_PREFIX "%.64s-%ld-%llu", (int)dirlen, full,
				 slash + 1, (long)getpid(), (unsigned long long)c);
		if (n < 0 || n >= PATH_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

static int fs_put(struct regfs_storage *s, const char *path, const void *data, size_t len,
		  struct regfs_err *err)
{
	struct fs_storage *fs = (struct fs_storage *)s;
	char full[PATH_MAX], tmp[PATH_MAX];
	int r;
	if ((r = full_path(fs, path, full, err)))
		return r;
	int fd = open_temp(full, tmp);
	if (fd < 0 && errno == ENOENT) {
		if ((r = make_parents(fs, full, err)))
			return r;
		fd = open_temp(full, tmp);
	}
	if (fd < 0)
		return fs_fail(err, errno, "create temporary file for", full);
	if (write_all(fd, data, len) != 0 || fdatasync(fd) != 0) {
		r = fs_fail(err, errno, "write", tmp);
		close(fd);
		unlink(tmp);
		return r;
	}
	if (close(fd) != 0) {
		r = fs_fail(err, errno, "write", tmp);
		unlink(tmp);
		return r;
	}
	if (rename(tmp, full) != 0) {
		r = fs_fail(err, errno, "rename into place", full);
		unlink(tmp);
		return r;
	}
	return 0;
}

/* ---- reader --------------------------------------------------------------- */

struct fs_reader {
	struct regfs_reader base;
	int fd;
	uint64_t off;
};

static ssize_t fs_reader_read(struct regfs_reader *r, void *buf, size_t len, struct regfs_err *err)
{
	struct fs_reader *fr = (struct fs_reader *)r;
	for (;;) {
		ssize_t n = pread(fr->fd, buf, len, (off_t)fr->off);
		if (n >= 0) {
			fr->off += (uint64_t)n;
			return n;
		}
		if (errno != EINTR)
			return regfs_errf(err, map_errno(errno), "filesystem storage: read: %s", strerror(errno));
	}
}

static void fs_reader_close(struct regfs_reader *r)
{
	close(((struct fs_reader *)r)->fd);
	free(r);
}

static int fs_reader(struct regfs_storage *s, const char *path, uint64_t offset,
		     struct regfs_reader **out, struct regfs_err *err)
{
	char full[PATH_MAX];
	struct stat st;
	int fd = open_ro(s, path, "open", full, &st, err);
	if (fd < 0)
		return fd;
	struct fs_reader *fr = calloc(1, sizeof *fr);
	if (!fr) {
		close(fd);
		return regfs_errf(err, -ENOMEM, "filesystem storage: out of memory");
	}
	fr->base.read = fs_reader_read;
	fr->base.close = fs_reader_close;
	fr->fd = fd;
	fr->off = offset; /* past the end simply reads 0 bytes, as registry:2 */
	*out = &fr->base;
	return 0;
}

/* ---- writer ---------------------------------------------------------------
 *
 * The session lock is an open-file-description lock (F_OFD_SETLK) on the
 * file itself: it conflicts between threads of this process and between
 * processes sharing the directory (NFS forwards it to the server), and the
 * kernel drops it when the holder closes or dies, so no lease can go stale.
 * After taking it, the writer checks that the path still names the inode it
 * opened: a file published (renamed to a blob) or deleted in between is
 * never written. */

struct fs_writer {
	struct regfs_writer base;
	const struct fs_storage *fs;
	int fd;              /* -1 after cancel */
	dev_t dev;
	ino_t ino;
	uint64_t size;
	bool committed, cancelled, published;
	char full[PATH_MAX];
};

static ssize_t fs_writer_write(struct regfs_writer *w, const void *buf, size_t len,
			       struct regfs_err *err)
{
	struct fs_writer *fw = (struct fs_writer *)w;
	if (fw->committed || fw->cancelled)
		return regfs_errf(err, -EINVAL, "filesystem storage: write to %s after %s", fw->full,
				  fw->committed ? "commit" : "cancel");
	if (write_all(fw->fd, buf, len) != 0)
		return fs_fail(err, errno, "write", fw->full);
	fw->size += len;
	return (ssize_t)len;
}

static uint64_t fs_writer_size(struct regfs_writer *w)
{
	return ((struct fs_writer *)w)->size;
}

static int fs_writer_commit(struct regfs_writer *w, struct regfs_err *err)
{
	struct fs_writer *fw = (struct fs_writer *)w;
	if (fw->cancelled)
		return regfs_errf(err, -EINVAL, "filesystem storage: commit of %s after cancel", fw->full);
	if (fdatasync(fw->fd) != 0)
		return fs_fail(err, errno, "sync", fw->full);
	fw->committed = true;
	return 0;
}

static int fs_writer_cancel(struct regfs_writer *w, struct regfs_err *err)
{
	struct fs_writer *fw = (struct fs_writer *)w;
	if (fw->cancelled)
		return 0;
	fw->cancelled = true;
	/* unlink before close: the lock keeps everyone else out meanwhile */
	int r = 0;
	if (unlink(fw->full) != 0 && errno != ENOENT)
		r = fs_fail(err, errno, "remove", fw->full);
	close(fw->fd);
	fw->fd = -1;
	return r;
}

/* true when `full` still names the inode the writer holds. */
static bool same_inode(const struct fs_writer *fw)
{
	struct stat st;
	return stat(fw->full, &st) == 0 && st.st_dev == fw->dev && st.st_ino == fw->ino;
}

/* Create-if-absent rename: renameat2(RENAME_NOREPLACE) where the file system
 * has it. Else link(), which never replaces, from a private name: the file
 * first leaves `src` (a rename inside its directory), so even when the last
 * unlink fails no request can open the published inode through `src`. */
static int rename_noreplace(const char *src, const char *dst)
{
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -1;
	char priv[PATH_MAX];
	const char *slash = strrchr(src, '/');
	int n = snprintf(priv, sizeof priv, "%.*s/" TMP_PREFIX "publish-%ld-%llu", (int)(slash - src),
			 src, (long)getpid(), (unsigned long long)atomic_fetch_add(&tmp_counter, 1));
	if (n < 0 || n >= (int)sizeof priv) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (rename(src, priv) != 0)
		return -1;
	if (link(priv, dst) != 0) {
		int e = errno;
		if (rename(priv, src) != 0) /* put it back: the caller still owns it */
			log_error("filesystem storage: could not restore %s from %s: %s", src, priv,
				  strerror(errno));
		errno = e;
		return -1;
	}
	if (unlink(priv) != 0)
		log_warn("filesystem storage: published %s but could not remove %s: %s", dst, priv,
			 strerror(errno));
	return 0;
}

static int fs_writer_publish(struct regfs_writer *w, const char *dst, struct regfs_err *err)
{
	struct fs_writer *fw = (struct fs_writer *)w;
	char fdst[PATH_MAX];
	int r;
	if (!fw->committed || fw->cancelled || fw->published)
		return regfs_errf(err, -EINVAL, "filesystem storage: publish of %s before commit or twice",
				  fw->full);
	if ((r = full_path(fw->fs, dst, fdst, err)))
		return r;
	if (!same_inode(fw))
		return regfs_errf(err, -ENOENT, "filesystem storage: %s was removed while it was being "
				  "written; nothing was published", fw->full);
	r = rename_noreplace(fw->full, fdst);
	if (r != 0 && errno == ENOENT && access(fw->full, F_OK) == 0) {
		if ((r = make_parents(fw->fs, fdst, err)))
			return r;
		r = rename_noreplace(fw->full, fdst);
	}
	if (r != 0) {
		if (errno == EEXIST)
			return regfs_errf(err, -EEXIST, "filesystem storage: %s already exists; left untouched", fdst);
		return fs_fail(err, errno, "publish", fdst);
	}
	fw->published = true;
	return 0;
}

static int fs_writer_close(struct regfs_writer *w, struct regfs_err *err)
{
	struct fs_writer *fw = (struct fs_writer *)w;
	if (!fw)
		return 0;
	int r = 0;
	if (fw->fd >= 0 && !fw->committed && !same_inode(fw))
		r = regfs_errf(err, -ENOENT, "filesystem storage: %s was removed while it was being "
			       "written; what was written is gone", fw->full);
	if (fw->fd >= 0 && close(fw->fd) != 0 && r == 0)
		r = fs_fail(err, errno, "close", fw->full);
	free(fw);
	return r;
}

/* Opens (append: an existing file only) and locks fw->full; fills dev/ino/size. */
static int writer_open_locked(struct fs_writer *fw, bool append, struct regfs_err *err)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (append ? 0 : O_CREAT);
	fw->fd = open(fw->full, flags, 0644);
	if (fw->fd < 0 && errno == ENOENT && !append) {
		int r = make_parents(fw->fs, fw->full, err);
		if (r)
			return r;
		fw->fd = open(fw->full, flags, 0644);
	}
	if (fw->fd < 0)
		return fs_fail(err, errno, "open for writing", fw->full);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct stat st;
	int r = 0;
	if (fcntl(fw->fd, F_OFD_SETLK, &fl) != 0)
		r = (errno == EAGAIN || errno == EACCES)
			? regfs_errf(err, -EBUSY, "filesystem storage: %s is being written by another "
				     "request", fw->full)
			: fs_fail(err, errno, "lock", fw->full);
	else if (fstat(fw->fd, &st) != 0)
		r = fs_fail(err, errno, "stat", fw->full);
	if (r == 0) {
		fw->dev = st.st_dev;
		fw->ino = st.st_ino;
		/* published or deleted between our open and our lock */
		if (!same_inode(fw))
			r = regfs_errf(err, -ENOENT, "filesystem storage: %s no longer exists", fw->full);
	}
	/* truncate only once we hold the lock (O_TRUNC would cut a locked file) */
	if (r == 0 && !append && ftruncate(fw->fd, 0) != 0)
		r = fs_fail(err, errno, "truncate", fw->full);
	if (r) {
		close(fw->fd);
		return r;
	}
	fw->size = append ? (uint64_t)st.st_size : 0;
	return 0;
}

static int fs_writer(struct regfs_storage *s, const char *path, bool append,
		     struct regfs_writer **out, struct regfs_err *err)
{
	struct fs_storage *fs = (struct fs_storage *)s;
	struct fs_writer *fw = calloc(1, sizeof *fw);
	int r;
	if (!fw)
		return regfs_errf(err, -ENOMEM, "filesystem storage: out of memory");
	fw->fs = fs;
	if ((r = full_path(fs, path, fw->full, err)) || (r = writer_open_locked(fw, append, err))) {
		free(fw);
		return r;
	}
	fw->base.write = fs_writer_write;
	fw->base.size = fs_writer_size;
	fw->base.commit = fs_writer_commit;
	fw->base.cancel = fs_writer_cancel;
	fw->base.publish = fs_writer_publish;
	fw->base.close = fs_writer_close;
	*out = &fw->base;
	return 0;
}

/* ---- metadata ------------------------------------------------------------- */

static int fs_stat(struct regfs_storage *s, const char *path, struct regfs_stat_info *si,
		   struct regfs_err *err)
{
	char full[PATH_MAX];
	int r = full_path(fss(s), path, full, err);
	if (r)
		return r;
	struct stat st;
	if (stat(full, &st) != 0)
		return fs_fail(err, errno, "stat", full);
	si->is_dir = S_ISDIR(st.st_mode);
	si->size = si->is_dir ? 0 : (uint64_t)st.st_size;
	si->mtime = (int64_t)st.st_mtim.tv_sec;
	return 0;
}

static int fs_list(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		   struct regfs_err *err)
{
	char full[PATH_MAX];
	int r = full_path(fss(s), path, full, err);
	if (r)
		return r;
	DIR *d = opendir(full);
	if (!d) {
		if (errno == ENOTDIR)
			return regfs_errf(err, -ENOTDIR, "filesystem storage: list %s: not a directory", full);
		return fs_fail(err, errno, "list", full);
	}
	size_t plen = strlen(path);
	if (plen == 1)
		plen = 0; /* "/" + name, not "//" + name */
	char child[PATH_MAX];
	r = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				r = fs_fail(err, errno, "list", full);
			break;
		}
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strncmp(n, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		int k = snprintf(child, sizeof child, "%.*s/%s", (int)plen, path, n);
		if (k < 0 || k >= (int)sizeof child)
			continue;
		if (cb(child, ud) != 0)
			break;
	}
	closedir(d);
	return r;
}

static int fs_move(struct regfs_storage *s, const char *src, const char *dst,
		   struct regfs_err *err)
{
	struct fs_storage *fs = (struct fs_storage *)s;
	char fsrc[PATH_MAX], fdst[PATH_MAX];
	int r;
	if ((r = full_path(fs, src, fsrc, err)) || (r = full_path(fs, dst, fdst, err)))
		return r;
	if (rename(fsrc, fdst) == 0)
		return 0;
	if (errno == ENOENT && access(fsrc, F_OK) == 0) {
		/* the source exists, so the destination's directory is missing */
		if ((r = make_parents(fs, fdst, err)))
			return r;
		if (rename(fsrc, fdst) == 0)
			return 0;
	}
	return fs_fail(err, errno, "move", errno == ENOENT ? fsrc : fdst);
}

/* rm -rf of `name` inside directory fd `pfd`: 0 or -errno, -ENOENT when
 * `name` itself is missing. Entries below it that vanish concurrently are
 * not errors. Does not follow symlinks. */
static int remove_tree(int pfd, const char *name, int depth)
{
	if (unlinkat(pfd, name, 0) == 0)
		return 0;
	if (errno == ENOENT) /* the top is the caller's question; below, a race */
		return depth ? 0 : -ENOENT;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if (depth > 64)
		return -ELOOP;
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = remove_tree(dirfd(d), de->d_name, depth + 1);
	}
	closedir(d);
	if (r == 0 && unlinkat(pfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		r = -errno;
	return r;
}

static int fs_del(struct regfs_storage *s, const char *path, struct regfs_err *err)
{
	char full[PATH_MAX];
	int r = full_path(fss(s), path, full, err);
	if (r == 0 && (r = remove_tree(AT_FDCWD, full, 0)) < 0)
		r = fs_fail(err, -r, "delete", full);
	return r;
}

static int fs_open_fd(struct regfs_storage *s, const char *path, int *fd, uint64_t *size,
		      struct regfs_err *err)
{
	char full[PATH_MAX];
	struct stat st;
	int r = open_ro(s, path, "open", full, &st, err);
	if (r < 0)
		return r;
	*fd = r;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int fs_health(struct regfs_storage *s, struct regfs_err *err)
{
	struct fs_storage *fs = (struct fs_storage *)s;
	const char *root = fs->root[0] ? fs->root : "/";
	struct stat st;
	if (stat(root, &st) != 0)
		return fs_fail(err, errno, "stat root directory", root);
	if (!S_ISDIR(st.st_mode))
		return regfs_errf(err, -EIO, "filesystem storage: root %s is not a directory", root);
	return 0;
}

static void fs_free(struct regfs_storage *s)
{
	free(((struct fs_storage *)s)->root);
	free(s);
}

static const struct regfs_storage_ops fs_ops = {
	.name = "filesystem",
	.get = fs_get,
	.put = fs_put,
	.reader = fs_reader,
	.writer = fs_writer,
	.stat = fs_stat,
	.list = fs_list,
	.move = fs_move,
	.del = fs_del,
	.open_fd = fs_open_fd,
	.health = fs_health,
	.free = fs_free,
};

/* mkdir -p rootdir. */
static int make_root(const char *root, struct regfs_err *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(root);
	if (len >= sizeof buf)
		return regfs_errf(err, -ENAMETOOLONG, "filesystem storage: root directory path too long");
	memcpy(buf, root, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			return fs_fail(err, e, "create root directory", buf);
		}
		buf[i] = c;
	}
	struct stat st;
	if (stat(root, &st) != 0)
		return fs_fail(err, errno, "stat root directory", root);
	if (!S_ISDIR(st.st_mode))
		return regfs_errf(err, -ENOTDIR, "filesystem storage: root %s is not a directory; set storage.filesystem.rootdirectory to a directory",
				  root);
	return 0;
}

int regfs_storage_fs_new(const char *rootdir, struct regfs_storage **out, struct regfs_err *err)
{
	if (!rootdir || !rootdir[0])
		return regfs_errf(err, -EINVAL, "filesystem storage: empty root directory; set storage.filesystem.rootdirectory");
	int r = make_root(rootdir, err);
	if (r)
		return r;
	struct fs_storage *fs = calloc(1, sizeof *fs);
	if (!fs || !(fs->root = strdup(rootdir))) {
		free(fs);
		return regfs_errf(err, -ENOMEM, "filesystem storage: out of memory");
	}
	size_t n = strlen(fs->root);
	while (n > 0 && fs->root[n - 1] == '/')
		fs->root[--n] = '\0';
	fs->base.ops = &fs_ops;
	*out = &fs->base;
	log_debug("filesystem storage at %s", rootdir);
	return 0;
}
