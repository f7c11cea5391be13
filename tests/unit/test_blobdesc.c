/* test_blobdesc.c — the blob descriptor cache (registry/blobdesc.c):
 * positive entries per (repository, digest) and per digest, invalidation of
 * one link and of a blob in every repository, the slot bound, and entries
 * turning stale after the ttl (a test clock). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "blobdesc.h"

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

static void digest_n(int i, char out[80])
{
	snprintf(out, 80, "sha256:%064x", i);
}

static void test_links_per_repository(void **state)
{
	(void)state;
	struct blobdesc *bd = blobdesc_new(1024, 60000);
	assert_non_null(bd);
	char d[80];
	digest_n(1, d);
	assert_false(blobdesc_linked(bd, "a/b", d));
	blobdesc_note_linked(bd, "a/b", d);
	assert_true(blobdesc_linked(bd, "a/b", d));
	/* another repository never shares the answer */
	assert_false(blobdesc_linked(bd, "a/c", d));
	assert_false(blobdesc_linked(bd, "a", d));
	/* a link entry is no size entry */
	uint64_t sz = 7;
	assert_false(blobdesc_size(bd, d, &sz));
	assert_int_equal(sz, 7);
	blobdesc_note_size(bd, d, 1234);
	assert_true(blobdesc_size(bd, d, &sz));
	assert_int_equal(sz, 1234);
	/* a push: the link, and the size only when given */
	char e[80];
	digest_n(9, e);
	blobdesc_note_pushed(bd, "p", e, NULL);
	assert_true(blobdesc_linked(bd, "p", e));
	assert_false(blobdesc_size(bd, e, &sz));
	uint64_t pushed = 99;
	blobdesc_note_pushed(bd, "p", e, &pushed);
	assert_true(blobdesc_size(bd, e, &sz));
	assert_int_equal(sz, 99);
	blobdesc_free(bd);
}

static void test_forget(void **state)
{
	(void)state;
	struct blobdesc *bd = blobdesc_new(1024, 60000);
	char d[80], other[80];
	digest_n(2, d);
	digest_n(3, other);
	blobdesc_note_linked(bd, "x", d);
	blobdesc_note_linked(bd, "y", d);
	blobdesc_note_linked(bd, "y", other);
	blobdesc_note_size(bd, d, 10);
	blobdesc_note_size(bd, other, 11);
	/* one link */
	blobdesc_forget_link(bd, "x", d);
	assert_false(blobdesc_linked(bd, "x", d));
	assert_true(blobdesc_linked(bd, "y", d));
	/* the blob: its size and every repository's link, nothing else */
	blobdesc_note_linked(bd, "x", d);
	blobdesc_forget_blob(bd, d);
	uint64_t sz;
	assert_false(blobdesc_linked(bd, "x", d));
	assert_false(blobdesc_linked(bd, "y", d));
	assert_false(blobdesc_size(bd, d, &sz));
	assert_true(blobdesc_linked(bd, "y", other));
	assert_true(blobdesc_size(bd, other, &sz));
	assert_int_equal(sz, 11);
	blobdesc_clear(bd);
	assert_int_equal(blobdesc_count(bd), 0);
	assert_false(blobdesc_linked(bd, "y", other));
	blobdesc_free(bd);
}

static void test_bound(void **state)
{
	(void)state;
	struct blobdesc *bd = blobdesc_new(64, 60000);
	char d[80];
	for (int i = 0; i < 5000; i++) {
		digest_n(i, d);
		blobdesc_note_linked(bd, "r", d);
		blobdesc_note_size(bd, d, (uint64_t)i);
	}
	assert_true(blobdesc_count(bd) <= 64);
	/* whatever survived answers right */
	int hits = 0;
	for (int i = 0; i < 5000; i++) {
		uint64_t sz;
		digest_n(i, d);
		if (blobdesc_size(bd, d, &sz)) {
			assert_int_equal(sz, (uint64_t)i);
			hits++;
		}
	}
	assert_true(hits > 0 && hits <= 64);
	blobdesc_free(bd);
}

static void test_ttl(void **state)
{
	(void)state;
	struct blobdesc *bd = blobdesc_new(128, 60000);
	blobdesc_set_clock(bd, fake_clock);
	char d[80];
	digest_n(4, d);
	fake_now = 1000;
	blobdesc_note_linked(bd, "r", d);
	blobdesc_note_size(bd, d, 5);
	uint64_t sz;
	fake_now = 1000 + 59999;
	assert_true(blobdesc_linked(bd, "r", d));
	assert_true(blobdesc_size(bd, d, &sz));
	fake_now = 1000 + 60000; /* the bound: asked of the storage again */
	assert_false(blobdesc_linked(bd, "r", d));
	assert_false(blobdesc_size(bd, d, &sz));
	/* noting it again (the storage said yes) refreshes it */
	blobdesc_note_linked(bd, "r", d);
	assert_true(blobdesc_linked(bd, "r", d));
	blobdesc_free(bd);
	/* ttl 0: nothing is ever fresh */
	bd = blobdesc_new(8, 0);
	blobdesc_note_linked(bd, "r", d);
	assert_false(blobdesc_linked(bd, "r", d));
	blobdesc_free(bd);
}

static void test_off_and_bad_input(void **state)
{
	(void)state;
	char d[80];
	digest_n(5, d);
	uint64_t sz;
	/* NULL: the cache off */
	blobdesc_note_linked(NULL, "r", d);
	assert_false(blobdesc_linked(NULL, "r", d));
	assert_false(blobdesc_size(NULL, d, &sz));
	blobdesc_forget_blob(NULL, d);
	blobdesc_free(NULL);
	assert_null(blobdesc_new(0, 1000));
	/* a key too long to hold is not cached, never truncated into another */
	struct blobdesc *bd = blobdesc_new(8, 1000);
	char longname[600];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	blobdesc_note_linked(bd, longname, d);
	assert_false(blobdesc_linked(bd, longname, d));
	assert_int_equal(blobdesc_count(bd), 0);
	blobdesc_free(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_links_per_repository),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_off_and_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
