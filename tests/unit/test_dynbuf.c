/* Unit tests for lib/base/dynbuf.c: the capped growable buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <regfs/dynbuf.h>

static void test_empty(void **state)
{
	(void)state;
	struct dynbuf b;
	dynbuf_init(&b, 100);
	assert_int_equal(dynbuf_len(&b), 0);
	assert_string_equal(dynbuf_ptr(&b), "");
	struct dynbuf s = DYNBUF_INIT(100);
	assert_int_equal(dynbuf_len(&s), 0);
	assert_string_equal(dynbuf_ptr(&s), "");
	size_t len = 99;
	char *p = dynbuf_take(&b, &len);
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	free(p);
	dynbuf_free(&b);
	dynbuf_free(&b); /* twice is fine */
}

static void test_add_and_terminate(void **state)
{
	(void)state;
	struct dynbuf b;
	dynbuf_init(&b, DYNBUF_NO_CAP);
	assert_int_equal(dynbuf_add(&b, "abc", 3), 0);
	assert_int_equal(dynbuf_add(&b, NULL, 0), 0);
	assert_int_equal(dynbuf_addstr(&b, "def"), 0);
	assert_int_equal(dynbuf_len(&b), 6);
	assert_string_equal(dynbuf_ptr(&b), "abcdef");
	/* embedded NULs are bytes like any other; the terminator follows them */
	assert_int_equal(dynbuf_add(&b, "x\0y", 3), 0);
	assert_int_equal(dynbuf_len(&b), 9);
	assert_memory_equal(dynbuf_ptr(&b), "abcdefx\0y", 10);
	/* byte by byte across several grows */
	for (int i = 0; i < 5000; i++)
		assert_int_equal(dynbuf_add(&b, "z", 1), 0);
	assert_int_equal(dynbuf_len(&b), 5009);
	assert_int_equal(dynbuf_ptr(&b)[5009], '\0');
	assert_int_equal(dynbuf_ptr(&b)[5008], 'z');
	dynbuf_free(&b);
	assert_int_equal(dynbuf_len(&b), 0);
}

static void test_cap(void **state)
{
	(void)state;
	struct dynbuf b;
	dynbuf_init(&b, 5);
	assert_int_equal(dynbuf_addstr(&b, "abc"), 0);
	assert_int_equal(dynbuf_addstr(&b, "def"), -E2BIG);
	assert_int_equal(dynbuf_len(&b), 3); /* unchanged */
	assert_string_equal(dynbuf_ptr(&b), "abc");
	assert_int_equal(dynbuf_addstr(&b, "de"), 0); /* exactly the cap */
	assert_string_equal(dynbuf_ptr(&b), "abcde");
	assert_int_equal(dynbuf_add(&b, "f", 1), -E2BIG);
	assert_int_equal(dynbuf_add(&b, NULL, 0), 0);
	assert_int_equal(dynbuf_printf(&b, "%d", 1), -E2BIG);
	assert_string_equal(dynbuf_ptr(&b), "abcde");
	dynbuf_free(&b);

	/* cap 0: only ever empty */
	dynbuf_init(&b, 0);
	assert_int_equal(dynbuf_add(&b, "", 0), 0);
	assert_int_equal(dynbuf_addstr(&b, "a"), -E2BIG);
	assert_string_equal(dynbuf_ptr(&b), "");
	dynbuf_free(&b);
}

static void test_size_overflow(void **state)
{
	(void)state;
	struct dynbuf b;
	dynbuf_init(&b, DYNBUF_NO_CAP);
	assert_int_equal(dynbuf_addstr(&b, "ab"), 0);
	/* len + n + 1 would wrap: refused before any copy or allocation */
	assert_int_equal(dynbuf_add(&b, "x", SIZE_MAX - 2), -ENOMEM);
	assert_int_equal(dynbuf_add(&b, "x", SIZE_MAX), -E2BIG);
	assert_string_equal(dynbuf_ptr(&b), "ab");
	dynbuf_free(&b);
}

static void test_printf(void **state)
{
	(void)state;
	struct dynbuf b;
	dynbuf_init(&b, 10000);
	assert_int_equal(dynbuf_printf(&b, "%s=%d", "n", 42), 0);
	assert_int_equal(dynbuf_printf(&b, ",%s", ""), 0);
	assert_string_equal(dynbuf_ptr(&b), "n=42,");
	char big[3000];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_int_equal(dynbuf_printf(&b, "[%s]", big), 0);
	assert_int_equal(dynbuf_len(&b), 5 + 2 + 2999);
	assert_int_equal(dynbuf_ptr(&b)[dynbuf_len(&b) - 1], ']');
	/* over the cap: nothing appended, still terminated where it was */
	size_t before = dynbuf_len(&b);
	assert_int_equal(dynbuf_printf(&b, "%s%s%s%s", big, big, big, big), -E2BIG);
	assert_int_equal(dynbuf_len(&b), before);
	assert_int_equal(dynbuf_ptr(&b)[before], '\0');
	dynbuf_free(&b);
}

static void test_reset_take_reuse(void **state)
{
	(void)state;
	struct dynbuf b;
	dynbuf_init(&b, 8);
	assert_int_equal(dynbuf_addstr(&b, "12345678"), 0);
	dynbuf_reset(&b);
	assert_int_equal(dynbuf_len(&b), 0);
	assert_string_equal(dynbuf_ptr(&b), "");
	assert_int_equal(dynbuf_addstr(&b, "hello"), 0);
	size_t len = 0;
	char *p = dynbuf_take(&b, &len);
	assert_string_equal(p, "hello");
	assert_int_equal(len, 5);
	/* the buffer is empty, keeps its cap and is usable again */
	assert_int_equal(dynbuf_len(&b), 0);
	assert_string_equal(dynbuf_ptr(&b), "");
	assert_int_equal(dynbuf_addstr(&b, "123456789"), -E2BIG);
	assert_int_equal(dynbuf_addstr(&b, "again"), 0);
	char *q = dynbuf_take(&b, NULL);
	assert_string_equal(q, "again");
	assert_ptr_not_equal(p, q);
	free(p);
	free(q);
	dynbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_add_and_terminate),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_reset_take_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
