/* Unit tests for lib/base/sflight.c: one fill for many concurrent readers,
 * failed fills retried, staleness, batch claims, the wait hook, references. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <regfs/sflight.h>

/* One cache entry holding an int, filled by a slow "fetch". */
struct cell {
	struct sflight_group g;
	struct sflight sf;
	int value;
	atomic_int fetches;   /* how many fills ran */
	atomic_int fail_next; /* the next fill fails */
	double ttl;
};

static atomic_int hook_calls;

static void count_hook(void)
{
	atomic_fetch_add(&hook_calls, 1);
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The sequence sflight.h documents. */
static int cell_get(struct cell *c, int *out)
{
	pthread_mutex_lock(&c->g.mu);
	if (sflight_begin(&c->g, &c->sf, c->ttl) == SFLIGHT_HIT) {
		*out = c->value;
		pthread_mutex_unlock(&c->g.mu);
		return 0;
	}
	pthread_mutex_unlock(&c->g.mu);
	int n = atomic_fetch_add(&c->fetches, 1) + 1;
	nap_ms(50); /* long enough for every other thread to arrive and wait */
	bool ok = atomic_exchange(&c->fail_next, 0) == 0;
	pthread_mutex_lock(&c->g.mu);
	if (ok)
		c->value = 100 + n;
	sflight_end(&c->g, &c->sf, ok);
	*out = c->value;
	pthread_mutex_unlock(&c->g.mu);
	return ok ? 0 : -1;
}

static void cell_init(struct cell *c, double ttl)
{
	*c = (struct cell){.ttl = ttl};
	sflight_group_init(&c->g, count_hook);
}

#define NTHREADS 8

struct reader {
	struct cell *c;
	int rc, value;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	r->rc = cell_get(r->c, &r->value);
	return NULL;
}

static void run_readers(struct cell *c, struct reader *rd)
{
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		rd[i] = (struct reader){.c = c};
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
}

static void test_one_fill_for_many(void **state)
{
	(void)state;
	struct cell c;
	cell_init(&c, INFINITY);
	atomic_store(&hook_calls, 0);
	struct reader rd[NTHREADS];
	run_readers(&c, rd);
	assert_int_equal(atomic_load(&c.fetches), 1);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(rd[i].rc, 0);
		assert_int_equal(rd[i].value, 101);
	}
	assert_false(c.sf.busy);
	sflight_group_destroy(&c.g);
}

static void test_failed_fill_is_retried(void **state)
{
	(void)state;
	struct cell c;
	cell_init(&c, INFINITY);
	atomic_store(&c.fail_next, 1);
	int v = 0;
	assert_int_equal(cell_get(&c, &v), -1);
	assert_false(c.sf.valid);
	assert_int_equal(cell_get(&c, &v), 0);
	assert_int_equal(v, 102);
	assert_int_equal(cell_get(&c, &v), 0); /* cached now */
	assert_int_equal(atomic_load(&c.fetches), 2);
	/* Stale and failing: the older value stays for readers of any age. */
	c.ttl = 0;
	atomic_store(&c.fail_next, 1);
	assert_int_equal(cell_get(&c, &v), -1);
	assert_int_equal(v, 102);
	assert_true(c.sf.valid);
	sflight_group_destroy(&c.g);
}

static void test_stale_and_expire(void **state)
{
	(void)state;
	struct cell c;
	cell_init(&c, 0.2);
	int v = 0;
	assert_int_equal(cell_get(&c, &v), 0);
	assert_int_equal(cell_get(&c, &v), 0);
	assert_int_equal(atomic_load(&c.fetches), 1);
	nap_ms(250);
	assert_int_equal(cell_get(&c, &v), 0); /* older than the ttl: filled again */
	assert_int_equal(v, 102);
	pthread_mutex_lock(&c.g.mu);
	sflight_expire(&c.sf);
	assert_true(c.sf.valid); /* the value stays for those accepting any age */
	assert_false(sflight_fresh(&c.sf, 0.2));
	assert_true(sflight_fresh(&c.sf, INFINITY));
	pthread_mutex_unlock(&c.g.mu);
	assert_int_equal(cell_get(&c, &v), 0);
	assert_int_equal(atomic_load(&c.fetches), 3);
	/* A ttl of 0 never hits. */
	c.ttl = 0;
	assert_int_equal(cell_get(&c, &v), 0);
	assert_int_equal(atomic_load(&c.fetches), 4);
	sflight_group_destroy(&c.g);
}

struct claimer {
	struct cell *c;
	int got;
};

static void *claim_then_get(void *arg)
{
	struct claimer *k = arg;
	cell_get(k->c, &k->got);
	return NULL;
}

/* A batch claims without waiting; a reader meanwhile waits for the batch. */
static void test_batch_claim(void **state)
{
	(void)state;
	struct cell c;
	cell_init(&c, INFINITY);
	pthread_mutex_lock(&c.g.mu);
	assert_true(sflight_claim(&c.sf, INFINITY));
	assert_false(sflight_claim(&c.sf, INFINITY)); /* already busy */
	pthread_mutex_unlock(&c.g.mu);
	struct claimer k = {.c = &c};
	pthread_t t;
	atomic_store(&hook_calls, 0);
	assert_int_equal(pthread_create(&t, NULL, claim_then_get, &k), 0);
	/* The reader waits for the batch, calling the hook before it blocks. */
	for (int i = 0; i < 500 && atomic_load(&hook_calls) == 0; i++)
		nap_ms(10);
	assert_int_equal(atomic_load(&hook_calls), 1);
	pthread_mutex_lock(&c.g.mu);
	c.value = 7;
	sflight_end(&c.g, &c.sf, true);
	pthread_mutex_unlock(&c.g.mu);
	pthread_join(t, NULL);
	assert_int_equal(k.got, 7);
	assert_int_equal(atomic_load(&c.fetches), 0);
	pthread_mutex_lock(&c.g.mu);
	assert_false(sflight_claim(&c.sf, INFINITY)); /* fresh */
	sflight_wait_idle(&c.g, &c.sf);               /* returns at once */
	pthread_mutex_unlock(&c.g.mu);
	sflight_group_destroy(&c.g);
}

static void test_set_without_claim(void **state)
{
	(void)state;
	struct sflight e = {0};
	assert_false(sflight_fresh(&e, INFINITY));
	sflight_set(&e);
	assert_true(sflight_fresh(&e, 10));
	assert_false(e.busy);
	assert_true(sflight_now() - e.at < 1);
}

static void test_refs(void **state)
{
	(void)state;
	struct sflight_ref r;
	sflight_ref_init(&r, 2);
	sflight_ref_get(&r);
	assert_false(sflight_ref_put(&r));
	assert_false(sflight_ref_put(&r));
	assert_true(sflight_ref_put(&r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_fill_for_many),
		cmocka_unit_test(test_failed_fill_is_retried),
		cmocka_unit_test(test_stale_and_expire),
		cmocka_unit_test(test_batch_claim),
		cmocka_unit_test(test_set_without_claim),
		cmocka_unit_test(test_refs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
