/* proxy_spool.c — a file one writer fills while readers follow it
 * (proxy_spool.h). The bytes go through the file, not memory: a 2 GB
 * layer costs page cache, not heap, and a reader that lags far behind
 * costs nothing. */
#include "proxy_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct spool {
	atomic_int refs;
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* broadcast on every append and state change */
	enum spool_state state;
	int fail_code;          /* < 0 when FAILED */
	uint64_t filled;        /* bytes in the file */
	uint64_t total;         /* valid when has_total */
	bool has_total;
	struct spool_waiter *waiters; /* queued by spool_watch, woken by any change */
};

/* The directory exists, is ours and private (0700): the spool files hold
 * blobs nobody may read or swap before they are verified. */
int spool_dir_check(const char *dir, struct regfs_err *err)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return regfs_errf(err, -errno, "spool directory %s: cannot create it: %s "
				  "(regfs.proxycache.spooldir)", dir, strerror(errno));
	struct stat st;
	if (stat(dir, &st) != 0)
		return regfs_errf(err, -errno, "spool directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return regfs_errf(err, -ENOTDIR, "spool directory %s is not a directory "
				  "(regfs.proxycache.spooldir)", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return regfs_errf(err, -EPERM, "spool directory %s must belong to this user and "
				  "not be accessible to others (mode 0700); it is mode %04o, "
				  "owner %u (regfs.proxycache.spooldir)", dir,
				  (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	return 0;
}

/* An unnamed file in dir: O_TMPFILE, else a named one unlinked at once. */
static int spool_file(const char *dir, struct regfs_err *err)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char path[4096];
	if (snprintf(path, sizeof path, "%s/spool-XXXXXX", dir) >= (int)sizeof path)
		return regfs_errf(err, -ENAMETOOLONG, "spool directory %s: path too long", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return regfs_errf(err, -errno, "spool directory %s: cannot create a file: %s",
				  dir, strerror(errno));
	unlink(path);
	return fd;
}

int spool_new(const char *dir, struct spool **out, struct regfs_err *err)
{
	*out = NULL;
	int rc = spool_dir_check(dir, err);
	if (rc)
		return rc;
	struct spool *s = calloc(1, sizeof *s);
	if (!s)
		return regfs_errf(err, -ENOMEM, "out of memory");
	s->fd = spool_file(dir, err);
	if (s->fd < 0) {
		rc = s->fd;
		free(s);
		return rc;
	}
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = s;
	return 0;
}

void spool_ref(struct spool *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void spool_unref(struct spool *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	close(s->fd);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* With s->mu held. */
static void fail_locked(struct spool *s, int code)
{
	if (s->state != SPOOL_FILLING)
		return;
	s->state = SPOOL_FAILED;
	s->fail_code = code < 0 ? code : -EIO;
	pthread_cond_broadcast(&s->cv);
}

/* With s->mu held: the queued waiters, dequeued (woken by wake_all once the
 * lock is dropped: a wake may resume a connection that reads at once). */
static struct spool_waiter *take_waiters(struct spool *s)
{
	struct spool_waiter *w = s->waiters;
	s->waiters = NULL;
	for (struct spool_waiter *x = w; x; x = x->next)
		x->queued = false;
	return w;
}

static void wake_all(struct spool_waiter *w)
{
	while (w) {
		struct spool_waiter *next = w->next; /* w may be freed by its wake */
		w->wake(w->arg);
		w = next;
	}
}

/* Drops s->mu after a change: broadcast to blocked readers, wake the
 * queued ones. */
static void changed_unlock(struct spool *s)
{
	pthread_cond_broadcast(&s->cv);
	struct spool_waiter *w = take_waiters(s);
	pthread_mutex_unlock(&s->mu);
	wake_all(w);
}

void spool_set_size(struct spool *s, uint64_t total)
{
	pthread_mutex_lock(&s->mu);
	s->total = total;
	s->has_total = true;
	if (s->filled > total)
		fail_locked(s, -EFBIG);
	changed_unlock(s);
}

static int write_all(int fd, const char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int spool_append(struct spool *s, const void *buf, size_t n, struct regfs_err *err)
{
	/* Only this thread changes `filled`: read it, write outside the lock. */
	pthread_mutex_lock(&s->mu);
	uint64_t off = s->filled;
	bool over = s->has_total && (n > s->total || off > s->total - n);
	int state = s->state;
	if (over) {
		fail_locked(s, -EFBIG);
		changed_unlock(s);
	} else {
		pthread_mutex_unlock(&s->mu);
	}
	if (state != SPOOL_FILLING)
		return regfs_errf(err, -EINVAL, "spool: append after the spool ended");
	if (over)
		return regfs_errf(err, -EFBIG, "more bytes than the announced %llu",
				  (unsigned long long)s->total);
	int rc = write_all(s->fd, buf, n, off);
	pthread_mutex_lock(&s->mu);
	if (rc)
		fail_locked(s, rc);
	else
		s->filled = off + n;
	changed_unlock(s);
	if (rc)
		return regfs_errf(err, rc, "spool file: write failed: %s", strerror(-rc));
	return 0;
}

int spool_finish(struct spool *s)
{
	pthread_mutex_lock(&s->mu);
	int rc = 0;
	if (s->state != SPOOL_FILLING) {
		rc = s->state == SPOOL_FAILED ? s->fail_code : 0;
	} else if (s->has_total && s->filled != s->total) {
		fail_locked(s, -EIO);
		rc = -EIO;
	} else {
		s->state = SPOOL_DONE;
		s->total = s->filled;
		s->has_total = true;
	}
	changed_unlock(s);
	return rc;
}

void spool_fail(struct spool *s, int code)
{
	pthread_mutex_lock(&s->mu);
	fail_locked(s, code);
	changed_unlock(s);
}

enum spool_state spool_state(struct spool *s, uint64_t *filled)
{
	pthread_mutex_lock(&s->mu);
	enum spool_state st = s->state;
	if (filled)
		*filled = s->filled;
	pthread_mutex_unlock(&s->mu);
	return st;
}

static struct timespec deadline_in(int ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

int spool_wait_size(struct spool *s, int timeout_ms, uint64_t *total)
{
	struct timespec dl = deadline_in(timeout_ms);
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	uint64_t seen = s->filled;
	while (!s->has_total && s->state == SPOOL_FILLING && rc == 0) {
		if (timeout_ms == 0) {
			rc = -EAGAIN;
			break;
		}
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != ETIMEDOUT)
			continue;
		if (s->filled == seen)
			rc = -ETIMEDOUT;
		seen = s->filled; /* bytes arrive without a size: wait on */
		dl = deadline_in(timeout_ms);
	}
	if (s->state == SPOOL_FAILED)
		rc = s->fail_code;
	else if (s->has_total)
		rc = 0;
	*total = s->total;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* With s->mu held: how many bytes at off a reader may take now. With a
 * known total the last byte waits for DONE: the writer verifies the whole
 * before it finishes, and a reader that has every byte but one cannot
 * complete a response early. */
static uint64_t readable_at(const struct spool *s, uint64_t off)
{
	uint64_t avail = s->filled;
	if (s->state == SPOOL_FILLING && s->has_total && s->total && avail >= s->total)
		avail = s->total - 1;
	return avail > off ? avail - off : 0;
}

/* Waits (s->mu held) until bytes at off exist or the spool ended. How many
 * there are at off (0: DONE at the end), or a negative code. */
static ssize_t wait_bytes(struct spool *s, uint64_t off, size_t len, int timeout_ms)
{
	uint64_t seen = s->filled;
	struct timespec dl = deadline_in(timeout_ms);
	for (;;) {
		if (s->state == SPOOL_FAILED)
			return s->fail_code; /* nothing more of a failed blob is worth sending */
		uint64_t n = readable_at(s, off);
		if (n)
			return (ssize_t)(n < len ? n : len);
		if (s->state == SPOOL_DONE)
			return 0;
		if (timeout_ms == 0)
			return -EAGAIN;
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) {
			if (s->filled == seen)
				return -ETIMEDOUT;
			seen = s->filled; /* progress elsewhere in the file: wait again */
			dl = deadline_in(timeout_ms);
		}
	}
}

int spool_watch(struct spool *s, uint64_t want, struct spool_waiter *w)
{
	pthread_mutex_lock(&s->mu);
	bool ready = s->state != SPOOL_FILLING ||
		     (want == SPOOL_WATCH_SIZE ? s->has_total : readable_at(s, want) > 0);
	if (!ready) {
		/* park before the waiter becomes visible to a writer: a wake can
		 * never come before the park (the connection is suspended first) */
		w->park(w->arg);
		w->queued = true;
		w->next = s->waiters;
		s->waiters = w;
	}
	pthread_mutex_unlock(&s->mu);
	return ready ? 1 : 0;
}

bool spool_unwatch(struct spool *s, struct spool_waiter *w)
{
	pthread_mutex_lock(&s->mu);
	bool was = w->queued;
	if (was) {
		for (struct spool_waiter **pp = &s->waiters; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		w->queued = false;
	}
	pthread_mutex_unlock(&s->mu);
	return was;
}

ssize_t spool_read(struct spool *s, uint64_t off, void *buf, size_t len, int timeout_ms)
{
	if (len > (1u << 30))
		len = 1u << 30; /* fits ssize_t everywhere */
	if (len == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	ssize_t n = wait_bytes(s, off, len, timeout_ms);
	pthread_mutex_unlock(&s->mu);
	if (n <= 0)
		return n;
	/* bytes below `filled` are final: read them without the lock */
	size_t got = 0;
	while (got < (size_t)n) {
		ssize_t r = pread(s->fd, (char *)buf + got, (size_t)n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return (ssize_t)got;
}
