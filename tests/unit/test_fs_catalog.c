/* test_fs_catalog.c — how the mount turns the flat catalog into directories
 * (fs/cache/catalog.c: catalog_classify, catalog_children; catalog_put), on
 * hand-built snapshots, no registry.
 *
 * The caches are compiled in with what they link against (util.c, loop.c,
 * libregfs); nothing else of them is called here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>

#include "fs_test.h"

/* A snapshot as names_catalog makes it: strcmp-sorted names, one ref. */
static struct catalog *cat_new(const char *const *names, size_t n)
{
	struct catalog *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->names = calloc(n ? n : 1, sizeof *c->names);
	assert_non_null(c->names);
	for (size_t i = 0; i < n; i++)
		assert_non_null(c->names[i] = strdup(names[i]));
	qsort(c->names, n, sizeof *c->names, regfs_cmp_str);
	c->n = n;
	sflight_ref_init(&c->ref, 1);
	return c;
}

/* Checks catalog_children(c, path) against `want` (NULL-terminated) and
 * frees what it returned. */
static void children_are(const struct catalog *c, const char *path, const char *const *want)
{
	char **v = (char **)(uintptr_t)0x1; /* must be overwritten */
	size_t n = 12345;
	assert_int_equal(catalog_children(c, path, &v, &n), 0);
	size_t nw = 0;
	while (want[nw])
		nw++;
	if (n != nw) {
		for (size_t i = 0; i < n; i++)
			print_error("children(\"%s\")[%zu] = \"%s\"\n", path, i, v[i]);
	}
	assert_int_equal(n, nw);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(v[i], want[i]);
		free(v[i]);
	}
	free(v);
}

/* Names that put the trap cases next to each other in sorted order:
 * '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), so "team/app-x" and
 * "team/app.b" sit between "team/app" and "team/app/worker". */
static const char *const NAMES[] = {
	"team/app/worker", "team/app", "team/app-x", "team/app.b", "team/apple",
	"team/ap-x", "solo", "a/b/c", "team/app/worker/db", "teams/x",
};
#define NN (sizeof NAMES / sizeof *NAMES)

static void test_classify(void **state)
{
	(void)state;
	struct catalog *c = cat_new(NAMES, NN);
	/* 1 repository, 2 namespace (proper prefix of one), 3 both, 0 none */
	assert_int_equal(catalog_classify(c, "team"), 2);
	assert_int_equal(catalog_classify(c, "team/app"), 3);
	assert_int_equal(catalog_classify(c, "team/app/worker"), 3);
	assert_int_equal(catalog_classify(c, "team/app/worker/db"), 1);
	assert_int_equal(catalog_classify(c, "team/app-x"), 1);
	assert_int_equal(catalog_classify(c, "team/app.b"), 1);
	assert_int_equal(catalog_classify(c, "team/apple"), 1);
	assert_int_equal(catalog_classify(c, "solo"), 1);
	assert_int_equal(catalog_classify(c, "a"), 2);
	assert_int_equal(catalog_classify(c, "a/b"), 2);
	assert_int_equal(catalog_classify(c, "a/b/c"), 1);
	assert_int_equal(catalog_classify(c, "teams"), 2);
	/* string prefixes that are not whole components */
	assert_int_equal(catalog_classify(c, "team/ap"), 0);
	assert_int_equal(catalog_classify(c, "team/app/work"), 0);
	assert_int_equal(catalog_classify(c, "tea"), 0);
	assert_int_equal(catalog_classify(c, "sol"), 0);
	assert_int_equal(catalog_classify(c, "a/b/"), 0);
	assert_int_equal(catalog_classify(c, "a/b/c/d"), 0);
	assert_int_equal(catalog_classify(c, "solo/x"), 0);
	assert_int_equal(catalog_classify(c, "zzz"), 0);
	assert_int_equal(catalog_classify(c, "A"), 0); /* case matters */
	catalog_put(c);

	struct catalog *e = cat_new(NULL, 0);
	assert_int_equal(catalog_classify(e, "team"), 0);
	assert_int_equal(catalog_classify(e, "a/b"), 0);
	catalog_put(e);
}

static void test_children(void **state)
{
	(void)state;
	struct catalog *c = cat_new(NAMES, NN);
	children_are(c, "", (const char *const[]){"a", "solo", "team", "teams", NULL});
	/* "app" comes from team/app and team/app/worker, not adjacent in the
	 * catalog: listed once, in strcmp order */
	children_are(c, "team", (const char *const[]){"ap-x", "app", "app-x", "app.b", "apple", NULL});
	children_are(c, "team/app", (const char *const[]){"worker", NULL});
	children_are(c, "team/app/worker", (const char *const[]){"db", NULL});
	children_are(c, "a", (const char *const[]){"b", NULL});
	children_are(c, "a/b", (const char *const[]){"c", NULL});
	children_are(c, "teams", (const char *const[]){"x", NULL});
	/* leaves and non-components have no children */
	children_are(c, "team/app/worker/db", (const char *const[]){NULL});
	children_are(c, "team/ap", (const char *const[]){NULL});
	children_are(c, "tea", (const char *const[]){NULL});
	children_are(c, "solo", (const char *const[]){NULL});
	children_are(c, "zzz", (const char *const[]){NULL});
	catalog_put(c);

	struct catalog *e = cat_new(NULL, 0);
	children_are(e, "", (const char *const[]){NULL});
	children_are(e, "x", (const char *const[]){NULL});
	catalog_put(e);
}

/* Many children (past the initial array size), every one listed once. */
static void test_children_many(void **state)
{
	(void)state;
	enum { NR = 300 };
	const char **names = calloc(2 * NR, sizeof *names);
	char (*buf)[32] = calloc(2 * NR, sizeof *buf);
	assert_non_null(names);
	assert_non_null(buf);
	for (int i = 0; i < NR; i++) {
		/* walk the numbers backwards so the input is not sorted */
		snprintf(buf[2 * i], sizeof buf[0], "ns/r%03d", NR - 1 - i);
		snprintf(buf[2 * i + 1], sizeof buf[0], "ns/r%03d/sub", NR - 1 - i);
		names[2 * i] = buf[2 * i];
		names[2 * i + 1] = buf[2 * i + 1];
	}
	struct catalog *c = cat_new(names, 2 * NR);
	char **v;
	size_t n;
	assert_int_equal(catalog_children(c, "ns", &v, &n), 0);
	assert_int_equal(n, NR);
	char want[32], p[48];
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof want, "r%03zu", i);
		assert_string_equal(v[i], want);
		snprintf(p, sizeof p, "ns/%s", v[i]);
		assert_int_equal(catalog_classify(c, p), 3); /* repo and namespace */
		free(v[i]);
	}
	free(v);
	children_are(c, "", (const char *const[]){"ns", NULL});
	catalog_put(c);
	free(names);
	free(buf);
}

/* Names with empty components cannot come from a conforming registry; they
 * must not produce an empty directory entry. */
static void test_children_empty_components(void **state)
{
	(void)state;
	static const char *const odd[] = {"x//y", "x/", "x/z"};
	struct catalog *c = cat_new(odd, 3);
	children_are(c, "x", (const char *const[]){"z", NULL});
	catalog_put(c);
}

/* Snapshots are shared: the last put frees names and all. */
static void test_catalog_refs(void **state)
{
	(void)state;
	struct catalog *c = cat_new(NAMES, NN);
	sflight_ref_get(&c->ref);      /* a reader */
	char *first = c->names[0];
	catalog_put(c);               /* the cache lets go: the reader still has it */
	assert_int_equal(atomic_load(&c->ref.n), 1);
	assert_string_equal(c->names[0], first);
	assert_int_equal(catalog_classify(c, "team/app"), 3);
#ifdef HAVE_ASAN
	assert_false(__asan_address_is_poisoned(first));
#endif
	catalog_put(c);
#ifdef HAVE_ASAN
	assert_true(__asan_address_is_poisoned(first));
	assert_true(__asan_address_is_poisoned(c));
#endif
	catalog_put(NULL); /* no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_children),
		cmocka_unit_test(test_children_many),
		cmocka_unit_test(test_children_empty_components),
		cmocka_unit_test(test_catalog_refs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
