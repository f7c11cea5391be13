/* test_auth_limit.c — the failed-login limit (registry/auth_limit.c): more
 * than max failures in the window refuse the address until the window is
 * over; other addresses are not touched; the table keeps a fixed size
 * under thousands of addresses and still counts the newest; 0 turns the
 * limit off; a new max applies to the counts so far. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "auth_limit.h"

static void test_limit(void **state)
{
	(void)state;
	struct auth_limit *l = auth_limit_new(3);
	assert_non_null(l);
	int64_t t = 1000;
	assert_int_equal(auth_limit_blocked(l, "10.0.0.1", t), 0);
	assert_false(auth_limit_note(l, "10.0.0.1", t));
	assert_false(auth_limit_note(l, "10.0.0.1", t + 1));
	assert_false(auth_limit_note(l, "10.0.0.1", t + 2));
	assert_int_equal(auth_limit_blocked(l, "10.0.0.1", t + 2), 0); /* 3 is not more than 3 */
	assert_true(auth_limit_note(l, "10.0.0.1", t + 3));           /* the 4th crosses, once */
	assert_false(auth_limit_note(l, "10.0.0.1", t + 4));
	/* refused until the window that began at t is over: the wait says how long */
	assert_int_equal(auth_limit_blocked(l, "10.0.0.1", t + 5), AUTH_LIMIT_WINDOW_S - 5);
	assert_int_equal(auth_limit_blocked(l, "10.0.0.1", t + AUTH_LIMIT_WINDOW_S - 1), 1);
	assert_int_equal(auth_limit_blocked(l, "10.0.0.2", t + 5), 0);
	assert_int_equal(auth_limit_blocked(l, "10.0.0.1", t + AUTH_LIMIT_WINDOW_S), 0);
	/* a new window starts from scratch */
	assert_false(auth_limit_note(l, "10.0.0.1", t + AUTH_LIMIT_WINDOW_S + 1));
	assert_int_equal(auth_limit_blocked(l, "10.0.0.1", t + AUTH_LIMIT_WINDOW_S + 1), 0);
	auth_limit_free(l);
}

static void test_many_addresses(void **state)
{
	(void)state;
	struct auth_limit *l = auth_limit_new(2);
	int64_t t = 50;
	char peer[64];
	/* ten times more addresses than slots, each failing once */
	for (int i = 0; i < 10 * AUTH_LIMIT_SLOTS; i++) {
		snprintf(peer, sizeof peer, "2001:db8::%x", i);
		auth_limit_note(l, peer, t);
	}
	/* the newest attacker is still counted to its limit */
	snprintf(peer, sizeof peer, "192.0.2.77");
	for (int i = 0; i < 3; i++)
		auth_limit_note(l, peer, t + 1);
	assert_true(auth_limit_blocked(l, peer, t + 2) > 0);
	auth_limit_free(l);
}

static void test_off_and_max_change(void **state)
{
	(void)state;
	struct auth_limit *l = auth_limit_new(0);
	for (int i = 0; i < 100; i++)
		assert_false(auth_limit_note(l, "10.0.0.9", 10));
	assert_int_equal(auth_limit_blocked(l, "10.0.0.9", 11), 0);
	auth_limit_set_max(l, 1);
	assert_false(auth_limit_note(l, "10.0.0.9", 12));
	assert_true(auth_limit_note(l, "10.0.0.9", 12));
	assert_true(auth_limit_blocked(l, "10.0.0.9", 13) > 0);
	auth_limit_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_many_addresses),
		cmocka_unit_test(test_off_and_max_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
