/* test_fs_util.c — fs/util.c (compiled in): par_for runs every index exactly
 * once on at most `maxpar` threads, fs_client_errno's mapping of client
 * errors to what a FUSE op returns, now_mono never going back; loop.c's
 * fs_deadline_ms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <regfs/err.h>

#include "mount.h"

struct counts {
	atomic_int *seen;
	atomic_int running, peak;
};

static void count_one(size_t i, void *arg)
{
	struct counts *c = arg;
	int r = atomic_fetch_add(&c->running, 1) + 1;
	int p = atomic_load(&c->peak);
	while (r > p && !atomic_compare_exchange_weak(&c->peak, &p, r))
		;
	atomic_fetch_add(&c->seen[i], 1);
	/* a little work so that threads overlap */
	volatile unsigned x = 0;
	for (unsigned k = 0; k < 20000; k++)
		x += k;
	atomic_fetch_sub(&c->running, 1);
}

static void run(size_t n, int maxpar, int want_peak_max)
{
	struct counts c = {0};
	c.seen = calloc(n ? n : 1, sizeof *c.seen);
	assert_non_null(c.seen);
	par_for(n, maxpar, count_one, &c);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(atomic_load(&c.seen[i]), 1);
	assert_int_equal(atomic_load(&c.running), 0);
	assert_true(atomic_load(&c.peak) <= want_peak_max);
	if (n)
		assert_true(atomic_load(&c.peak) >= 1);
	free(c.seen);
}

static void test_par_for(void **state)
{
	(void)state;
	run(0, 4, 0);       /* nothing to do: fn never called */
	run(1, 8, 1);
	run(1000, 4, 4);
	run(1000, 1, 1);    /* the caller alone */
	run(37, 0, 1);      /* maxpar < 1 means 1 */
	run(37, -5, 1);
	run(3, 64, 3);      /* no more threads than items */
}

static void test_client_errno(void **state)
{
	(void)state;
	struct regfs_err e = {0};
	regfs_errf(&e, -EIO, "registry said: %s", "no");
	assert_int_equal(fs_client_errno(-ENOENT, &e, "x"), -ENOENT);
	assert_int_equal(fs_client_errno(-ENOMEM, &e, "x"), -ENOMEM);
	/* everything else the application sees as EIO (the log says why) */
	static const int others[] = {-EACCES, -ETIMEDOUT, -EHOSTUNREACH, -ECONNREFUSED,
				     -EPROTO, -ENOTSUP, -EIO, -EINVAL};
	for (size_t i = 0; i < sizeof others / sizeof *others; i++)
		assert_int_equal(fs_client_errno(others[i], &e, "x"), -EIO);
	assert_int_equal(fs_client_errno(-ETIMEDOUT, NULL, "x"), -EIO);
	regfs_err_clear(&e);
}

static void test_now_mono(void **state)
{
	(void)state;
	double a = now_mono();
	assert_true(a > 0);
	for (int i = 0; i < 10000; i++) {
		double b = now_mono();
		assert_true(b >= a);
		a = b;
	}
}

static void test_deadline(void **state)
{
	(void)state;
	for (long ms = 0; ms <= 2500; ms += 250) {
		struct timespec now, d = fs_deadline_ms(ms);
		clock_gettime(CLOCK_REALTIME, &now);
		double ahead = (double)(d.tv_sec - now.tv_sec) + (d.tv_nsec - now.tv_nsec) / 1e9;
		assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
		assert_true(ahead <= ms / 1000.0 && ahead > ms / 1000.0 - 0.5);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_par_for),
		cmocka_unit_test(test_client_errno),
		cmocka_unit_test(test_now_mono),
		cmocka_unit_test(test_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
