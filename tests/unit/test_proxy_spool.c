/* Unit tests for registry/proxy_spool.c: readers at different speeds follow
 * one writer and get exactly the written bytes; a writer failing half-way
 * gives every reader an error and never a short success; readers that come
 * after the end; ranges; a known total enforced; a stalled writer times
 * readers out; readers that do not block (spool_watch) are parked and woken
 * once per change and lose no wake. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxy_spool.h"

#define BIG (3 * 1024 * 1024 + 517) /* not a multiple of any chunk size */
#define TMO 10000                   /* a reader's stall timeout in these tests, ms */

static char dir[256];

static void nap_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
	nanosleep(&ts, NULL);
}

/* The expected bytes: an xorshift stream, independent of the spool. */
static unsigned char *pattern(size_t n, uint32_t seed)
{
	unsigned char *b = malloc(n);
	assert_non_null(b);
	uint32_t x = seed ? seed : 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
	return b;
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/test_proxy_spool.%d", t && *t ? t : "/tmp", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(dir); /* the spool files were unlinked at creation */
	return 0;
}

struct writer_arg {
	struct spool *s;
	const unsigned char *data;
	size_t n, fail_at; /* fail_at < n: fail after that many bytes */
	size_t chunk;
	long pause_us;
};

static void *writer(void *p)
{
	struct writer_arg *w = p;
	size_t off = 0;
	size_t stop = w->fail_at < w->n ? w->fail_at : w->n;
	while (off < stop) {
		size_t k = stop - off < w->chunk ? stop - off : w->chunk;
		assert_int_equal(spool_append(w->s, w->data + off, k, NULL), 0);
		off += k;
		if (w->pause_us)
			nap_us(w->pause_us);
	}
	if (w->fail_at < w->n)
		spool_fail(w->s, -ECONNRESET);
	else
		assert_int_equal(spool_finish(w->s), 0);
	spool_unref(w->s);
	return NULL;
}

struct reader_arg {
	struct spool *s;
	uint64_t off, len; /* range to read (len = UINT64_MAX: to the end) */
	size_t chunk;
	long pause_us;
	unsigned char *got;
	size_t n_got;
	ssize_t last; /* 0: clean end; < 0: the error */
};

static void *reader(void *p)
{
	struct reader_arg *r = p;
	r->got = malloc(BIG + 1);
	assert_non_null(r->got);
	r->n_got = 0;
	for (;;) {
		size_t want = r->chunk;
		if (r->len != UINT64_MAX && r->len - r->n_got < want)
			want = (size_t)(r->len - r->n_got);
		if (want == 0) {
			r->last = 0;
			break;
		}
		ssize_t n = spool_read(r->s, r->off + r->n_got, r->got + r->n_got, want, TMO);
		if (n <= 0) {
			r->last = n;
			break;
		}
		assert_true((size_t)n <= want);
		r->n_got += (size_t)n;
		if (r->pause_us)
			nap_us(r->pause_us);
	}
	spool_unref(r->s);
	return NULL;
}

static void start_writer(pthread_t *t, struct writer_arg *w)
{
	spool_ref(w->s);
	assert_int_equal(pthread_create(t, NULL, writer, w), 0);
}

static void start_reader(pthread_t *t, struct reader_arg *r)
{
	spool_ref(r->s);
	assert_int_equal(pthread_create(t, NULL, reader, r), 0);
}

/* Readers with different chunk sizes and speeds all get every byte. */
static void test_readers_follow(void **state)
{
	(void)state;
	unsigned char *data = pattern(BIG, 7);
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	struct writer_arg w = {s, data, BIG, SIZE_MAX, 65536, 200};
	struct reader_arg rd[4] = {
		{.s = s, .len = UINT64_MAX, .chunk = 4096},
		{.s = s, .len = UINT64_MAX, .chunk = 1000003, .pause_us = 1000},
		{.s = s, .len = UINT64_MAX, .chunk = 77777},
		{.s = s, .len = UINT64_MAX, .chunk = 300000, .pause_us = 20000},
	};
	pthread_t tw, tr[4];
	for (int i = 0; i < 4; i++)
		start_reader(&tr[i], &rd[i]);
	start_writer(&tw, &w);
	pthread_join(tw, NULL);
	for (int i = 0; i < 4; i++) {
		pthread_join(tr[i], NULL);
		assert_int_equal(rd[i].last, 0);
		assert_int_equal(rd[i].n_got, BIG);
		assert_memory_equal(rd[i].got, data, BIG);
		free(rd[i].got);
	}
	uint64_t filled = 0;
	assert_int_equal(spool_state(s, &filled), SPOOL_DONE);
	assert_int_equal(filled, BIG);
	spool_unref(s);
	free(data);
}

/* A writer failing half-way: every reader ends with the failure's code
 * having read at most the bytes written, and never with a clean end. */
static void test_writer_fails(void **state)
{
	(void)state;
	unsigned char *data = pattern(BIG, 9);
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, BIG);
	size_t half = BIG / 2 + 13;
	struct writer_arg w = {s, data, BIG, half, 32768, 100};
	struct reader_arg rd[3] = {
		{.s = s, .len = UINT64_MAX, .chunk = 8192},
		{.s = s, .len = UINT64_MAX, .chunk = 500000, .pause_us = 5000},
		{.s = s, .off = BIG - 10, .len = 10, .chunk = 10}, /* a range past the failure */
	};
	pthread_t tw, tr[3];
	for (int i = 0; i < 3; i++)
		start_reader(&tr[i], &rd[i]);
	start_writer(&tw, &w);
	pthread_join(tw, NULL);
	for (int i = 0; i < 3; i++) {
		pthread_join(tr[i], NULL);
		assert_int_equal(rd[i].last, -ECONNRESET);
		assert_true(rd[i].n_got <= half);
		assert_memory_equal(rd[i].got, data + rd[i].off, rd[i].n_got);
		free(rd[i].got);
	}
	assert_int_equal(spool_state(s, NULL), SPOOL_FAILED);
	uint64_t total;
	assert_int_equal(spool_wait_size(s, TMO, &total), -ECONNRESET);
	/* a reader arriving after the failure gets the error too */
	char b[16];
	assert_int_equal(spool_read(s, 0, b, sizeof b, TMO), -ECONNRESET);
	assert_int_equal(spool_finish(s), -ECONNRESET);
	spool_unref(s);
	free(data);
}

/* After completion: whole reads, ranges, the end, past the end. */
static void test_after_done_and_ranges(void **state)
{
	(void)state;
	unsigned char *data = pattern(BIG, 3);
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	struct writer_arg w = {s, data, BIG, SIZE_MAX, 1 << 20, 0};
	/* a range reader started before the bytes, in the middle */
	struct reader_arg mid = {.s = s, .off = 1234567, .len = 1000000, .chunk = 65536};
	pthread_t tw, tm;
	start_reader(&tm, &mid);
	start_writer(&tw, &w);
	pthread_join(tw, NULL);
	pthread_join(tm, NULL);
	assert_int_equal(mid.last, 0);
	assert_int_equal(mid.n_got, 1000000);
	assert_memory_equal(mid.got, data + 1234567, 1000000);
	free(mid.got);

	uint64_t total = 0;
	assert_int_equal(spool_wait_size(s, TMO, &total), 0);
	assert_int_equal(total, BIG);
	struct reader_arg late = {.s = s, .len = UINT64_MAX, .chunk = 1 << 20};
	pthread_t tl;
	start_reader(&tl, &late);
	pthread_join(tl, NULL);
	assert_int_equal(late.last, 0);
	assert_int_equal(late.n_got, BIG);
	assert_memory_equal(late.got, data, BIG);
	free(late.got);
	char b[100];
	assert_int_equal(spool_read(s, BIG - 5, b, sizeof b, TMO), 5);
	assert_memory_equal(b, data + BIG - 5, 5);
	assert_int_equal(spool_read(s, BIG, b, sizeof b, TMO), 0);
	assert_int_equal(spool_read(s, BIG + 100, b, sizeof b, TMO), 0);
	spool_unref(s);
	free(data);
}

/* A known total: more bytes fail the spool, fewer fail finish. */
static void test_total_enforced(void **state)
{
	(void)state;
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, 10);
	uint64_t total = 0;
	assert_int_equal(spool_wait_size(s, TMO, &total), 0);
	assert_int_equal(total, 10);
	assert_int_equal(spool_append(s, "0123456", 7, NULL), 0);
	struct regfs_err e = {0};
	assert_int_equal(spool_append(s, "7890", 4, &e), -EFBIG);
	assert_true(strstr(e.msg, "10") != NULL);
	char b[16];
	assert_int_equal(spool_read(s, 0, b, sizeof b, TMO), -EFBIG); /* even bytes it holds */
	assert_int_equal(spool_read(s, 7, b, sizeof b, TMO), -EFBIG);
	spool_unref(s);

	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, 10);
	assert_int_equal(spool_append(s, "0123", 4, NULL), 0);
	assert_int_equal(spool_finish(s), -EIO); /* short */
	assert_int_equal(spool_state(s, NULL), SPOOL_FAILED);
	assert_int_equal(spool_read(s, 4, b, sizeof b, TMO), -EIO);
	spool_unref(s);

	/* an empty spool that is done: EOF at once */
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, 0);
	assert_int_equal(spool_finish(s), 0);
	assert_int_equal(spool_read(s, 0, b, sizeof b, TMO), 0);
	spool_unref(s);
}

/* A writer that stalls: readers and size waiters time out instead of
 * waiting forever; the spool itself stays usable. */
static void test_stall_times_out(void **state)
{
	(void)state;
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	uint64_t total = 1;
	assert_int_equal(spool_wait_size(s, 50, &total), -ETIMEDOUT);
	assert_int_equal(spool_append(s, "abc", 3, NULL), 0);
	char b[8];
	assert_int_equal(spool_read(s, 0, b, sizeof b, 50), 3);
	assert_int_equal(spool_read(s, 3, b, sizeof b, 50), -ETIMEDOUT);
	assert_int_equal(spool_append(s, "de", 2, NULL), 0);
	assert_int_equal(spool_finish(s), 0);
	assert_int_equal(spool_read(s, 3, b, sizeof b, 50), 2);
	assert_memory_equal(b, "de", 2);
	spool_unref(s);
}

/* With a known total the last byte waits for the writer's finish (its
 * verification): a reader never completes a blob that may still fail. */
static void test_last_byte_held(void **state)
{
	(void)state;
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, 10);
	assert_int_equal(spool_append(s, "0123456789", 10, NULL), 0);
	char b[16];
	assert_int_equal(spool_read(s, 0, b, sizeof b, 50), 9);
	assert_int_equal(spool_read(s, 9, b, sizeof b, 50), -ETIMEDOUT);
	assert_int_equal(spool_finish(s), 0);
	assert_int_equal(spool_read(s, 9, b, sizeof b, 50), 1);
	assert_int_equal(b[0], '9');
	spool_unref(s);

	/* the same blob failing at the end (a digest mismatch) */
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, 10);
	assert_int_equal(spool_append(s, "0123456789", 10, NULL), 0);
	assert_int_equal(spool_read(s, 0, b, sizeof b, 50), 9);
	spool_fail(s, -EPROTO);
	assert_int_equal(spool_read(s, 9, b, sizeof b, 50), -EPROTO);
	spool_unref(s);
}

/* A spool directory that others can reach is refused. */
/* ---- waiting without a thread (spool_watch) ---- */

/* An event loop's connection: park counts, wake posts the semaphore. */
struct conn {
	atomic_int parked, woken;
	sem_t sem;
};

static void conn_park(void *arg)
{
	struct conn *c = arg;
	atomic_fetch_add(&c->parked, 1);
}

static void conn_wake(void *arg)
{
	struct conn *c = arg;
	atomic_fetch_add(&c->woken, 1);
	sem_post(&c->sem);
}

static void conn_init(struct conn *c, struct spool_waiter *w)
{
	atomic_init(&c->parked, 0);
	atomic_init(&c->woken, 0);
	sem_init(&c->sem, 0, 0);
	*w = (struct spool_waiter){.park = conn_park, .wake = conn_wake, .arg = c};
}

/* Parked only when nothing is there, woken once per change, never queued
 * when the spool ended; the failure reaches a parked reader. */
static void test_watch_parks_and_wakes(void **state)
{
	(void)state;
	struct spool *s;
	struct conn c;
	struct spool_waiter w;
	conn_init(&c, &w);
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	uint64_t total = 0;
	char buf[16];
	assert_int_equal(spool_wait_size(s, 0, &total), -EAGAIN);
	assert_int_equal(spool_read(s, 0, buf, sizeof buf, 0), -EAGAIN);
	assert_int_equal(spool_watch(s, SPOOL_WATCH_SIZE, &w), 0);
	assert_int_equal(atomic_load(&c.parked), 1);
	assert_int_equal(atomic_load(&c.woken), 0);
	spool_set_size(s, 10);
	assert_int_equal(atomic_load(&c.woken), 1);
	assert_int_equal(spool_watch(s, SPOOL_WATCH_SIZE, &w), 1); /* known: not parked */
	assert_int_equal(spool_wait_size(s, 0, &total), 0);
	assert_int_equal(total, 10);
	assert_int_equal(spool_watch(s, 0, &w), 0);
	assert_int_equal(spool_append(s, "abcd", 4, NULL), 0);
	assert_int_equal(atomic_load(&c.woken), 2);
	assert_int_equal(spool_watch(s, 0, &w), 1);
	assert_int_equal(spool_read(s, 0, buf, sizeof buf, 0), 4);
	assert_int_equal(spool_watch(s, 4, &w), 0);
	/* a reader leaving before its wake: dequeued, no wake comes */
	assert_true(spool_unwatch(s, &w));
	assert_false(spool_unwatch(s, &w));
	assert_int_equal(spool_append(s, "efgh", 4, NULL), 0);
	assert_int_equal(atomic_load(&c.woken), 2);
	assert_int_equal(spool_watch(s, 8, &w), 0);
	spool_fail(s, -ECONNRESET);
	assert_int_equal(atomic_load(&c.woken), 3);
	assert_int_equal(spool_watch(s, 8, &w), 1); /* ended: never parked again */
	assert_int_equal(spool_read(s, 8, buf, sizeof buf, 0), -ECONNRESET);
	assert_int_equal(atomic_load(&c.parked), 4);
	spool_unref(s);
	sem_destroy(&c.sem);
}

/* A reader that never blocks in the spool (it waits on its own semaphore,
 * as a suspended connection waits for its resume) follows a writer to the
 * end with every byte: no wake is lost between a read and its watch. */
static void test_watch_follows_writer(void **state)
{
	(void)state;
	unsigned char *data = pattern(BIG, 11);
	struct spool *s;
	assert_int_equal(spool_new(dir, &s, NULL), 0);
	spool_set_size(s, BIG);
	struct writer_arg wa = {.s = s, .data = data, .n = BIG, .fail_at = SIZE_MAX,
				.chunk = 7000, .pause_us = 50};
	pthread_t t;
	start_writer(&t, &wa);
	struct conn c;
	struct spool_waiter w;
	conn_init(&c, &w);
	unsigned char *got = malloc(BIG);
	assert_non_null(got);
	size_t n_got = 0;
	for (;;) {
		ssize_t n = spool_read(s, n_got, got + n_got, BIG - n_got, 0);
		if (n > 0) {
			n_got += (size_t)n;
			continue;
		}
		if (n != -EAGAIN)
			break;
		if (spool_watch(s, n_got, &w) == 1)
			continue;
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += TMO / 1000;
		assert_int_equal(sem_timedwait(&c.sem, &dl), 0); /* a lost wake fails here */
	}
	assert_int_equal(n_got, BIG);
	assert_memory_equal(got, data, BIG);
	assert_int_equal(atomic_load(&c.parked), atomic_load(&c.woken));
	assert_true(atomic_load(&c.parked) > 0);
	pthread_join(t, NULL);
	spool_unref(s);
	sem_destroy(&c.sem);
	free(got);
	free(data);
}

static void test_dir_checked(void **state)
{
	(void)state;
	char d[300];
	snprintf(d, sizeof d, "%s.open", dir);
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(chmod(d, 0777), 0);
	struct spool *s = NULL;
	struct regfs_err e = {0};
	assert_int_equal(spool_new(d, &s, &e), -EPERM);
	assert_null(s);
	assert_true(strstr(e.msg, "0700") != NULL);
	rmdir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readers_follow),
		cmocka_unit_test(test_writer_fails),
		cmocka_unit_test(test_after_done_and_ranges),
		cmocka_unit_test(test_total_enforced),
		cmocka_unit_test(test_stall_times_out),
		cmocka_unit_test(test_last_byte_held),
		cmocka_unit_test(test_dir_checked),
		cmocka_unit_test(test_watch_parks_and_wakes),
		cmocka_unit_test(test_watch_follows_writer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
