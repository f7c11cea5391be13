/* test_layer_merge.c — lib/layer/merge.c: layers merged with OCI whiteouts,
 * checked against the rules of the OCI image spec worked out by hand for
 * each small image below. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <regfs/layer_merge.h>

/* A layer written as "path" strings: a trailing '/' means a directory (a
 * trailing "/" then "*": one the layer index made up, implied by deeper
 * entries), "name=>N" a hard link to entry N of the same layer. */
struct tlayer {
	const char *const *e;
	size_t n;
	char **paths; /* parsed */
};

static void titem(void *arg, size_t i, struct layer_merge_item *out)
{
	struct tlayer *t = arg;
	const char *s = t->e[i];
	const char *arrow = strstr(s, "=>");
	size_t len = arrow ? (size_t)(arrow - s) : strlen(s);
	out->implied = len > 1 && s[len - 1] == '*' && s[len - 2] == '/';
	if (out->implied)
		len--;
	out->is_dir = len && s[len - 1] == '/';
	if (out->is_dir)
		len--;
	free(t->paths[i]);
	t->paths[i] = strndup(s, len);
	out->path = t->paths[i];
	out->link = arrow ? atoll(arrow + 2) : -1;
}

#define L(...) {(const char *const[]){__VA_ARGS__}, \
	sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), NULL}

static struct layer_merged *merge(struct tlayer *t, size_t n)
{
	struct layer_merge_layer ls[8];
	for (size_t i = 0; i < n; i++) {
		t[i].paths = calloc(t[i].n, sizeof(char *));
		ls[i] = (struct layer_merge_layer){t[i].n, titem, &t[i]};
	}
	struct layer_merged *m = NULL;
	struct regfs_err e = {0};
	assert_int_equal(layer_merge(ls, n, &m, &e), 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < t[i].n; k++)
			free(t[i].paths[k]);
		free(t[i].paths);
	}
	return m;
}

/* Every path of the tree, walked through the children lists from the root
 * (so the parent/children links are checked too), as "p1 p2/ ..." with a
 * trailing '/' for directories and "@L" for the layer. */
static void walk(const struct layer_merged *m, size_t d, char *buf, size_t cap)
{
	const struct layer_merged_entry *e = layer_merged_get(m, d);
	for (size_t k = 0; k < e->n_children; k++) {
		int64_t c = layer_merged_child_at(m, d, k);
		assert_true(c > 0);
		const struct layer_merged_entry *ce = layer_merged_get(m, (size_t)c);
		assert_int_equal(ce->parent, d);
		assert_int_equal(layer_merged_child(m, d, ce->name), c);
		assert_int_equal(layer_merged_find(m, ce->path), c);
		size_t l = strlen(buf);
		snprintf(buf + l, cap - l, "%s%s%s@%u", l ? " " : "", ce->path,
			 ce->is_dir ? "/" : "", ce->layer);
		if (ce->is_dir)
			walk(m, (size_t)c, buf, cap);
	}
}

static void expect(struct layer_merged *m, const char *want)
{
	char buf[2048] = "";
	walk(m, 0, buf, sizeof buf);
	assert_string_equal(buf, want);
	/* every entry was reached from the root: root + one per listed path */
	size_t words = *want ? 1 : 0;
	for (const char *p = want; *p; p++)
		words += *p == ' ';
	assert_int_equal(layer_merged_count(m), 1 + words);
}

static void test_whiteout_deletes(void **st)
{
	(void)st;
	struct tlayer t[] = {L("/", "a/", "a/f", "a/g", "b", "d/", "d/e/", "d/e/x"),
			     L("a/", "a/.wh.f", "c", ".wh.d")};
	struct layer_merged *m = merge(t, 2);
	expect(m, "a/@1 a/g@0 b@0 c@1");
	assert_int_equal(layer_merged_find(m, "a/f"), -ENOENT);
	assert_int_equal(layer_merged_find(m, "a/.wh.f"), -ENOENT);
	assert_int_equal(layer_merged_find(m, "d/e/x"), -ENOENT);
	assert_int_equal(layer_merged_dropped(m), 0);
	layer_merged_free(m);
}

static void test_opaque_dir(void **st)
{
	(void)st;
	struct tlayer t[] = {L("d/", "d/x", "d/sub/", "d/sub/y", "e/", "e/keep"),
			     L("d/", "d/.wh..wh..opq", "d/z", "e/", "e/.wh..wh.plnk")};
	struct layer_merged *m = merge(t, 2);
	/* the root is made up (no layer has it): layer NONE */
	assert_int_equal(layer_merged_get(m, 0)->layer, LAYER_MERGED_NONE);
	expect(m, "d/@1 d/z@1 e/@1 e/keep@0");
	layer_merged_free(m);
}

static void test_file_dir_file(void **st)
{
	(void)st;
	struct tlayer t[] = {L("p", "q/", "q/r"), L("p/", "p/in", "q"), L("p")};
	struct layer_merged *m = merge(t, 2);
	expect(m, "p/@1 p/in@1 q@1");
	layer_merged_free(m);
	struct tlayer t3[] = {L("p", "q/", "q/r"), L("p/", "p/in", "q"), L("p", "q/", "q/n")};
	m = merge(t3, 3);
	expect(m, "p@2 q/@2 q/n@2");
	layer_merged_free(m);
}

/* A directory only implied in the upper layer leaves the lower one (and
 * its metadata) in place; over a file, the implied directory shows. */
static void test_implied_dirs(void **st)
{
	(void)st;
	struct tlayer t[] = {L("/", "usr/", "usr/a", "f"), L("/*", "usr/*", "usr/b", "f/*", "f/x")};
	struct layer_merged *m = merge(t, 2);
	expect(m, "f/@1 f/x@1 usr/@0 usr/a@0 usr/b@1");
	assert_int_equal(layer_merged_get(m, 0)->layer, 0);
	layer_merged_free(m);
	/* but an implied directory under an opaque or deleted one does not save
	 * the lower one */
	struct tlayer t2[] = {L("d/", "d/e/", "d/e/x"), L("d/", "d/.wh..wh..opq", "d/e/*", "d/e/y")};
	m = merge(t2, 2);
	expect(m, "d/@1 d/e/@1 d/e/y@1");
	layer_merged_free(m);
}

static void test_whiteout_same_layer(void **st)
{
	(void)st;
	/* a whiteout hides lower layers only, never its own layer's entries */
	struct tlayer t[] = {L("x", "y"), L("x", ".wh.x", ".wh.y")};
	struct layer_merged *m = merge(t, 2);
	expect(m, "x@1");
	layer_merged_free(m);
}

static void test_hard_links_across_layers(void **st)
{
	(void)st;
	struct tlayer t[] = {L("f", "g=>0", "h=>0")};
	struct layer_merged *m = merge(t, 1);
	int64_t f = layer_merged_find(m, "f"), g = layer_merged_find(m, "g"),
		h = layer_merged_find(m, "h");
	assert_int_equal(layer_merged_get(m, f)->nlink, 3);
	assert_int_equal(layer_merged_get(m, g)->ino, layer_merged_get(m, f)->ino);
	assert_int_equal(layer_merged_get(m, h)->ino, layer_merged_get(m, f)->ino);
	assert_int_equal(layer_merged_get(m, g)->data_entry, 0);
	layer_merged_free(m);

	/* the upper layer deletes one name and replaces another: the name left
	 * keeps the lower data alone */
	struct tlayer t2[] = {L("f", "g=>0", "h=>0"), L(".wh.f", "h")};
	m = merge(t2, 2);
	expect(m, "g@0 h@1");
	g = layer_merged_find(m, "g");
	h = layer_merged_find(m, "h");
	assert_int_equal(layer_merged_get(m, g)->nlink, 1);
	assert_int_equal(layer_merged_get(m, h)->nlink, 1);
	assert_int_not_equal(layer_merged_get(m, g)->ino, layer_merged_get(m, h)->ino);
	layer_merged_free(m);

	/* a link in the upper layer to that layer's copy of the file */
	struct tlayer t3[] = {L("f", "g=>0"), L("f", "k=>0")};
	m = merge(t3, 2);
	f = layer_merged_find(m, "f");
	int64_t k = layer_merged_find(m, "k");
	g = layer_merged_find(m, "g");
	assert_int_equal(layer_merged_get(m, f)->nlink, 2);
	assert_int_equal(layer_merged_get(m, k)->ino, layer_merged_get(m, f)->ino);
	assert_int_equal(layer_merged_get(m, g)->nlink, 1);
	layer_merged_free(m);
}

static void test_bad_entries_left_out(void **st)
{
	(void)st;
	/* whiteouts of "", "." and "..", a link out of range, an entry under a
	 * file, none of them shown; the rest intact */
	struct tlayer t[] = {L("a", "ok/", "ok/x"),
			     L(".wh.", "ok/.wh..", "ok/.wh..", "bad=>99", "a/under")};
	struct layer_merged *m = merge(t, 2);
	expect(m, "a@0 ok/@0 ok/x@0");
	assert_int_equal(layer_merged_dropped(m), 5);
	layer_merged_free(m);
}

static void test_order_and_lookup(void **st)
{
	(void)st;
	/* names that sort around '/' ("a-b" < "a/..." in strcmp) */
	struct tlayer t[] = {L("a-b", "a/", "a/z", "a/b", "a.c", "a/b-c")};
	struct layer_merged *m = merge(t, 1);
	expect(m, "a/@0 a/b@0 a/b-c@0 a/z@0 a-b@0 a.c@0");
	int64_t a = layer_merged_find(m, "a");
	assert_int_equal(layer_merged_child(m, (size_t)a, "nope"), -ENOENT);
	assert_int_equal(layer_merged_child(m, (size_t)layer_merged_find(m, "a/z"), "x"),
			 -ENOTDIR);
	assert_int_equal(layer_merged_child_at(m, (size_t)a, 3), -ENOENT);
	layer_merged_free(m);
}

static void test_empty(void **st)
{
	(void)st;
	struct layer_merged *m = NULL;
	assert_int_equal(layer_merge(NULL, 0, &m, NULL), 0);
	assert_int_equal(layer_merged_count(m), 1);
	assert_true(layer_merged_get(m, 0)->is_dir);
	layer_merged_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whiteout_deletes),
		cmocka_unit_test(test_opaque_dir),
		cmocka_unit_test(test_file_dir_file),
		cmocka_unit_test(test_whiteout_same_layer),
		cmocka_unit_test(test_implied_dirs),
		cmocka_unit_test(test_hard_links_across_layers),
		cmocka_unit_test(test_bad_entries_left_out),
		cmocka_unit_test(test_order_and_lookup),
		cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
