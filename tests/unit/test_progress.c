/* Unit tests for lib/base/progress.c: the terminal progress line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regfs/progress.h>

static void test_human(void **state)
{
	(void)state;
	char b[32];
	regfs_progress_human(0, b, sizeof b);
	assert_string_equal(b, "0 B");
	regfs_progress_human(1023, b, sizeof b);
	assert_string_equal(b, "1023 B");
	regfs_progress_human(1536, b, sizeof b);
	assert_string_equal(b, "1.5 KiB");
	regfs_progress_human(3ULL << 30, b, sizeof b);
	assert_string_equal(b, "3.0 GiB");
}

static void test_format_total(void **state)
{
	(void)state;
	struct regfs_progress p;
	setenv("REGFS_PROGRESS", "0", 1);
	regfs_progress_begin(&p, stderr, "sweep", "blobs", 500);
	p.items = 100;
	p.bytes = 10 << 20;
	char b[256];
	/* 100 of 500 in 10 s: 10 blobs/s, 1 MiB/s, 400 left at that rate: 40 s */
	regfs_progress_format(&p, 10.0, b, sizeof b);
	assert_string_equal(b, "sweep: 100/500 blobs (20%), 10.0 MiB, 10 blobs/s, 1.0 MiB/s, ETA 0:40");
	/* done: no ETA */
	p.items = 500;
	regfs_progress_format(&p, 10.0, b, sizeof b);
	assert_string_equal(b, "sweep: 500/500 blobs (100%), 10.0 MiB, 50 blobs/s, 1.0 MiB/s");
	/* no elapsed time yet: no rate, no ETA */
	p.items = 1;
	p.bytes = 0;
	regfs_progress_format(&p, 0.0, b, sizeof b);
	assert_string_equal(b, "sweep: 1/500 blobs (0%), 0 B");
}

static void test_format_no_total(void **state)
{
	(void)state;
	struct regfs_progress p;
	setenv("REGFS_PROGRESS", "0", 1);
	regfs_progress_begin(&p, stderr, "mark", "repositories", 0);
	p.items = 7;
	char b[256];
	regfs_progress_format(&p, 7200.0, b, sizeof b);
	assert_string_equal(b, "mark: 7 repositories, 0 B, 0 repositories/s, 0 B/s");
	/* a phase without bytes: items and their rate only */
	p.no_bytes = true;
	p.items = 7200;
	regfs_progress_format(&p, 3600.0, b, sizeof b);
	assert_string_equal(b, "mark: 7200 repositories, 2 repositories/s");
	regfs_progress_format(&p, 0.0, b, sizeof b);
	assert_string_equal(b, "mark: 7200 repositories");
}

/* Drawn on a forced stream: "\r" lines, a clear blanks the line, end leaves
 * the final state followed by a newline. */
static void test_draw(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	setenv("REGFS_PROGRESS", "1", 1);
	struct regfs_progress p;
	regfs_progress_begin(&p, f, "sweep", "blobs", 3);
	regfs_progress_update(&p, 1, 100);   /* first update: drawn at once */
	regfs_progress_clear(&p);
	regfs_progress_update(&p, 2, 200);   /* after a clear: drawn at once */
	regfs_progress_update(&p, 3, 300);   /* within 200 ms: not drawn */
	regfs_progress_end(&p);
	regfs_progress_end(&p);              /* second end: nothing */
	fclose(f);
	assert_non_null(strstr(text, "\rsweep: 1/3 blobs (33%), 100 B"));
	assert_non_null(strstr(text, "\rsweep: 2/3 blobs (66%), 200 B"));
	const char *last = strrchr(text, '\r');
	assert_non_null(strstr(last, "sweep: 3/3 blobs (100%), 300 B"));
	assert_int_equal(text[len - 1], '\n');
	assert_int_equal(strchr(text, '\n') - text, (long)len - 1); /* one newline */
	free(text);

	/* off: nothing at all */
	f = open_memstream(&text, &len);
	setenv("REGFS_PROGRESS", "0", 1);
	regfs_progress_begin(&p, f, "sweep", "blobs", 3);
	regfs_progress_update(&p, 1, 1);
	regfs_progress_end(&p);
	fclose(f);
	assert_int_equal(len, 0);
	free(text);

	/* not forced, not a terminal (a memory stream): nothing */
	f = open_memstream(&text, &len);
	unsetenv("REGFS_PROGRESS");
	regfs_progress_begin(&p, f, "sweep", "blobs", 3);
	regfs_progress_update(&p, 1, 1);
	regfs_progress_end(&p);
	fclose(f);
	assert_int_equal(len, 0);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_human),
		cmocka_unit_test(test_format_total),
		cmocka_unit_test(test_format_no_total),
		cmocka_unit_test(test_draw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
