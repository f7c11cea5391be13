/* blobs.c — the blob cache: content-addressed on disk (--cache-dir, --cache-size).
 *
 *   <dir>/blobs/<alg>/<hex>   one file per blob, written only after its
 *                             digest was verified (temp file + rename)
 *   <dir>/tmp/                partial fills; emptied at start
 *
 * Since a blob never changes, a file here is valid forever; the only policy
 * is the size cap: least recently used blobs are deleted when the total
 * exceeds it. Recency is kept in memory (seeded from file mtimes at start,
 * and mtimes are bumped on use so the order survives a restart). Deleting a
 * file that a reader has open is fine on POSIX: its fd stays valid.
 *
 * Several regfs processes sharing a cache dir is safe (rename is atomic),
 * but each counts only what it saw for the cap. */
#include "../mount.h"
#include "digests.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regfs/hash.h>
#include <regfs/log.h>

/* One file of the cache, in memory for the cap: one per blob on disk, so
 * its digest is a compact key (digests.h: 32 raw bytes for a sha256), not a
 * REGFS_DIGEST_MAX buffer, and the flags share the size's word: 56 bytes
 * asked, 64 from malloc an entry (176 before). Sizes are below 2^62 (a
 * blob's size is a JSON int64, and a file's an off_t). */
struct bent {
	struct bent *next;
	double used;
	uint64_t size : 62;
	uint64_t filling : 1;
	uint64_t raw : 1;  /* key: raw sha256, else the digest string */
	uint8_t key[];
};

struct blob_cache {
	struct fs_stats *st;          /* bc_misses (blob_cache_fill) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *dir;
	uint64_t cap, total;
	struct bent **b;
	size_t nb, n;
	unsigned tmpseq;
};

static int mkdir_p(const char *path)
{
	char buf[4400];
	if (strlen(path) >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, strlen(path) + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* "<dir>/blobs/sha256/<hex>"; digest already validated by the caller's source. */
static void blob_path(struct blob_cache *bc, const char *digest, char *out, size_t n)
{
	const char *colon = strchr(digest, ':');
	snprintf(out, n, "%s/blobs/%.*s/%s", bc->dir, colon ? (int)(colon - digest) : 0, digest,
		 colon ? colon + 1 : digest);
}

static struct bent *find(struct blob_cache *bc, const char *digest)
{
	uint8_t key[REGFS_DIGEST_MAX];
	bool raw = digkey_put(digest, key);
	for (struct bent *e = bc->b[regfs_fnv1a64_str(digest) % bc->nb]; e; e = e->next)
		if (digkey_same(e->key, e->raw, key, raw))
			return e;
	return NULL;
}

static struct bent *add(struct blob_cache *bc, const char *digest, uint64_t size, double used)
{
	struct bent *e = calloc(1, offsetof(struct bent, key) + digkey_len(digest));
	if (!e)
		return NULL;
	e->raw = digkey_put(digest, e->key);
	e->size = size;
	e->used = used;
	size_t k = regfs_fnv1a64_str(digest) % bc->nb;
	e->next = bc->b[k];
	bc->b[k] = e;
	bc->total += size;
	bc->n++;
	return e;
}

static void del(struct blob_cache *bc, struct bent *e)
{
	char digest[REGFS_DIGEST_MAX];
	digkey_str(e->key, e->raw, digest);
	for (struct bent **p = &bc->b[regfs_fnv1a64_str(digest) % bc->nb]; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	bc->total -= e->size;
	bc->n--;
	free(e);
}

/* Caller holds mu. Deletes least recently used blobs until under the cap.
 * Linear scan: evictions are rare next to reads, and n is thousands. */
static void evict(struct blob_cache *bc, const struct bent *keep)
{
	while (bc->total > bc->cap) {
		struct bent *lru = NULL;
		for (size_t i = 0; i < bc->nb; i++)
			for (struct bent *e = bc->b[i]; e; e = e->next)
				if (e != keep && !e->filling && (!lru || e->used < lru->used))
					lru = e;
		if (!lru)
			return;
		char p[4400], digest[REGFS_DIGEST_MAX];
		digkey_str(lru->key, lru->raw, digest);
		blob_path(bc, digest, p, sizeof p);
		if (unlink(p) && errno != ENOENT)
			log_warn("cache: cannot delete %s: %s", p, strerror(errno));
		log_debug("cache: evicted %s (%llu bytes)", digest, (unsigned long long)lru->size);
		del(bc, lru);
	}
}

static void scan(struct blob_cache *bc, const char *alg)
{
	char d[4400];
	snprintf(d, sizeof d, "%s/blobs/%s", bc->dir, alg);
	DIR *dir = opendir(d);
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		char digest[REGFS_DIGEST_MAX];
		if (strlen(de->d_name) > 128)
			continue;
		snprintf(digest, sizeof digest, "%s:%.128s", alg, de->d_name);
		if (!regfs_digest_valid(digest))
			continue;
		struct stat st;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) || !S_ISREG(st.st_mode))
			continue;
		add(bc, digest, (uint64_t)st.st_size, (double)st.st_mtime - 4e9 /* older than any use now */);
	}
	closedir(dir);
}

struct blob_cache *blob_cache_new(const char *dir, uint64_t cap, struct fs_stats *st)
{
	if (!dir || !*dir || cap == 0)
		return NULL;
	struct blob_cache *bc = calloc(1, sizeof *bc);
	if (!bc)
		return NULL;
	bc->st = st;
	bc->dir = strdup(dir);
	bc->cap = cap;
	bc->nb = 16384;
	bc->b = calloc(bc->nb, sizeof *bc->b);
	char p[4400];
	int rc = 0;
	const char *sub[] = {"blobs/sha256", "blobs/sha512", "tmp"};
	for (size_t i = 0; bc->dir && bc->b && rc == 0 && i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
		rc = mkdir_p(p);
	}
	if (!bc->dir || !bc->b || rc) {
		log_warn("cache dir %s unusable (%s): blobs will not be cached on disk", dir,
			 strerror(rc ? -rc : ENOMEM));
		free(bc->dir);
		free(bc->b);
		free(bc);
		return NULL;
	}
	pthread_mutex_init(&bc->mu, NULL);
	pthread_cond_init(&bc->cv, NULL);
	/* Leftovers of fills cut short by a crash. */
	snprintf(p, sizeof p, "%s/tmp", dir);
	DIR *d = opendir(p);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	scan(bc, "sha256");
	scan(bc, "sha512");
	evict(bc, NULL);
	return bc;
}

void blob_cache_free(struct blob_cache *bc)
{
	if (!bc)
		return;
	for (size_t i = 0; i < bc->nb; i++)
		for (struct bent *e = bc->b[i], *nx; e; e = nx) {
			nx = e->next;
			free(e);
		}
	free(bc->b);
	free(bc->dir);
	pthread_mutex_destroy(&bc->mu);
	pthread_cond_destroy(&bc->cv);
	free(bc);
}

uint64_t blob_cache_used(struct blob_cache *bc)
{
	if (!bc)
		return 0;
	pthread_mutex_lock(&bc->mu);
	uint64_t t = bc->total;
	pthread_mutex_unlock(&bc->mu);
	return t;
}

int blob_cache_open(struct blob_cache *bc, const char *digest)
{
	if (!bc)
		return -ENOENT;
	pthread_mutex_lock(&bc->mu);
	struct bent *e = find(bc, digest);
	if (!e || e->filling) {
		pthread_mutex_unlock(&bc->mu);
		return -ENOENT;
	}
	e->used = now_mono();
	char p[4400];
	blob_path(bc, digest, p, sizeof p);
	pthread_mutex_unlock(&bc->mu);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* Deleted behind our back (another process's eviction, rm -rf). */
		pthread_mutex_lock(&bc->mu);
		e = find(bc, digest);
		if (e && !e->filling)
			del(bc, e);
		pthread_mutex_unlock(&bc->mu);
		return -ENOENT;
	}
	futimens(fd, NULL);
	return fd;
}

/* Writes a temp file and returns its fd and path (caller renames or unlinks). */
static int tmpfile_new(struct blob_cache *bc, char *path, size_t n)
{
	pthread_mutex_lock(&bc->mu);
	unsigned seq = bc->tmpseq++;
	pthread_mutex_unlock(&bc->mu);
	snprintf(path, n, "%s/tmp/%d-%u", bc->dir, (int)getpid(), seq);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Publishes a verified temp file as `digest`. */
static int publish(struct blob_cache *bc, const char *tmp, const char *digest, uint64_t size)
{
	char p[4400];
	blob_path(bc, digest, p, sizeof p);
	if (rename(tmp, p)) {
		int rc = -errno;
		unlink(tmp);
		return rc;
	}
	pthread_mutex_lock(&bc->mu);
	struct bent *e = find(bc, digest);
	if (!e)
		e = add(bc, digest, size, now_mono());
	else
		e->used = now_mono();
	evict(bc, e);
	pthread_mutex_unlock(&bc->mu);
	return 0;
}

int blob_cache_put(struct blob_cache *bc, const char *digest, const void *data, size_t len)
{
	if (!bc || len > bc->cap)
		return 0;
	pthread_mutex_lock(&bc->mu);
	struct bent *e = find(bc, digest);
	pthread_mutex_unlock(&bc->mu);
	if (e)
		return 0;
	char tmp[4400];
	int fd = tmpfile_new(bc, tmp, sizeof tmp);
	if (fd < 0)
		return fd;
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			int rc = -errno;
			close(fd);
			unlink(tmp);
			log_warn("cache: cannot write %s: %s", tmp, strerror(-rc));
			return rc;
		}
		p += w;
		left -= (size_t)w;
	}
	close(fd);
	return publish(bc, tmp, digest, len);
}

int blob_cache_fill(struct blob_cache *bc, struct regfs_client *cl, const char *repo, const char *digest,
		uint64_t size)
{
	if (!bc)
		return -ENOSYS;
	if (size > bc->cap)
		return -EFBIG;
	pthread_mutex_lock(&bc->mu);
	struct bent *e;
	while ((e = find(bc, digest)) && e->filling)
		fs_wait(&bc->cv, &bc->mu);
	if (e) {
		pthread_mutex_unlock(&bc->mu);
		return blob_cache_open(bc, digest);
	}
	/* A placeholder marks the fill in flight (size 0 until published). */
	e = add(bc, digest, 0, now_mono());
	if (!e) {
		pthread_mutex_unlock(&bc->mu);
		return -ENOMEM;
	}
	e->filling = 1;
	pthread_mutex_unlock(&bc->mu);

	char tmp[4400];
	int fd = tmpfile_new(bc, tmp, sizeof tmp), rc = 0;
	struct regfs_err err = {0};
	if (fd < 0) {
		rc = fd;
		log_warn("cache: cannot create a file in %s/tmp: %s", bc->dir, strerror(-rc));
	} else {
		atomic_fetch_add(&bc->st->bc_misses, 1);
		loop_may_block();
		rc = regfs_client_blob_fetch(cl, repo, digest, fd, &err);
		close(fd);
		if (rc) {
			char what[400];
			snprintf(what, sizeof what, "fetching blob %s@%s", repo, digest);
			rc = fs_client_errno(rc, &err, what);
			unlink(tmp);
		}
	}
	pthread_mutex_lock(&bc->mu);
	del(bc, e);
	pthread_cond_broadcast(&bc->cv);
	pthread_mutex_unlock(&bc->mu);
	if (rc)
		return rc;
	rc = publish(bc, tmp, digest, size);
	if (rc)
		return rc;
	return blob_cache_open(bc, digest);
}
