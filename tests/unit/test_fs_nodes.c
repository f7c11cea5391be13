/* test_fs_nodes.c — the memory bound of the mount's inode table
 * (fs/node.c): what the nodes cost and that it returns to zero, the least
 * recently used order of the nodes picked for the kernel to drop, what is
 * never picked (the root, open nodes, nodes the caller keeps, nodes
 * replaced by a kind change), how far a round goes, and the reaper's wait.
 * The kernel's part (dropping the entries, sending FORGET) is played by
 * nodes_forget here; tests/integration/mount_nodes.sh checks it for real. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_test.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static struct node *get(struct nodes *t, struct node *parent, const char *name,
			enum node_kind kind, const char *arg)
{
	struct child c = fs_test_child(name, kind, "team/app", kind == K_BLOB ? D1 : NULL, arg);
	struct node *n = nodes_get(t, parent, &c, 1);
	assert_non_null(n);
	return n;
}

static struct nodes_usage usage(struct nodes *t)
{
	struct nodes_usage u;
	nodes_usage(t, &u);
	return u;
}

/* Every node costs at least its struct and path; the sum goes back to 0
 * when all are forgotten, through renames and kind changes too. */
static void test_bytes(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	assert_true(usage(t).bytes == 0);
	assert_true(usage(t).budget == 0);
	struct node *d = get(t, r, "team", K_DIR, "team");
	uint64_t b1 = usage(t).bytes;
	assert_true(b1 >= sizeof *d + strlen("team") + 1 + strlen("team") + 1);
	struct node *tag = get(t, d, "latest", K_TAG, "latest");
	uint64_t b2 = usage(t).bytes;
	assert_true(b2 - b1 >= sizeof *tag + strlen("team/latest") + 1);
	/* looked up again: the same node, nothing more counted */
	assert_ptr_equal(get(t, d, "latest", K_TAG, "latest"), tag);
	assert_true(usage(t).bytes == b2);
	nodes_forget(t, tag->id, 1);
	/* a longer name after a rename costs more, and is uncounted exactly */
	assert_int_equal(nodes_rename(t, "team/latest", "team/a-much-longer-tag-name",
				      "a-much-longer-tag-name"), 0);
	assert_true(usage(t).bytes > b2);
	assert_string_equal(fs_test_path(t, tag), "team/a-much-longer-tag-name");
	assert_string_equal(tag->arg, "a-much-longer-tag-name");
	/* renamed again: the strings of the first rename are kept for readers,
	 * the ones in the node's own allocation were never apart (ASan: no leak,
	 * no double free) */
	assert_int_equal(nodes_rename(t, "team/a-much-longer-tag-name", "team/v2", "v2"), 0);
	assert_string_equal(fs_test_path(t, tag), "team/v2");
	assert_string_equal(tag->arg, "v2");
	assert_ptr_equal(nodes_by_path(t, "team/v2"), tag);
	assert_null(nodes_by_path(t, "team/latest"));
	/* the directory's arg is its path, in its own allocation */
	assert_string_equal(d->arg, "team");
	/* a kind change replaces the node; the old one still counts until forgotten */
	struct node *ns = get(t, r, "team", K_DIR, "team");
	assert_ptr_equal(ns, d);
	struct node *repo = get(t, r, "team", K_TAGS, "x");
	assert_ptr_not_equal(repo, d);
	assert_int_equal(usage(t).count, 3); /* the root is not counted */
	nodes_forget(t, tag->id, 1);
	nodes_forget(t, d->id, 2);
	nodes_forget(t, repo->id, 1);
	assert_true(usage(t).bytes == 0);
	assert_int_equal(usage(t).count, 0);
	nodes_free(t);
}

/* n nodes r/0..n-1 under directory "r" (made first); v[i] the i-th. */
static struct node *fill(struct nodes *t, struct node **v, size_t n)
{
	struct node *dir = get(t, nodes_root(t), "r", K_DIR, "r");
	char name[16];
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%zu", i);
		v[i] = get(t, dir, name, K_TAG, name);
	}
	return dir;
}

static void victims_free(struct node_victim *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
}

/* Nothing is picked without a budget or under it; past it, the least
 * recently used first, with their directory's nodeid and their name. */
static void test_lru_order(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *v[8];
	struct node_victim x[16];
	struct node *dir = fill(t, v, 8);
	assert_int_equal(nodes_pick_victims(t, x, 16, NULL, NULL), 0); /* unbounded */
	nodes_set_budget(t, usage(t).bytes); /* exactly at it: not over */
	assert_int_equal(nodes_pick_victims(t, x, 16, NULL, NULL), 0);
	/* used: v[0] by id, v[1] by a lookup, the directory by id */
	assert_ptr_equal(nodes_by_id(t, v[0]->id), v[0]);
	assert_ptr_equal(get(t, dir, "1", K_TAG, "1"), v[1]);
	nodes_forget(t, v[1]->id, 1);
	assert_ptr_equal(nodes_by_id(t, dir->id), dir);
	/* a budget that lets about half the nodes stay */
	nodes_set_budget(t, usage(t).bytes / 2);
	size_t k = nodes_pick_victims(t, x, 16, NULL, NULL);
	assert_true(k >= 2 && k < 8);
	/* oldest first: 2, 3, ... (0, 1 and r were used since) */
	for (size_t i = 0; i < k; i++) {
		char want[16];
		snprintf(want, sizeof want, "%zu", i + 2);
		assert_string_equal(x[i].name, want);
		assert_true(x[i].parent == dir->id);
		assert_true(x[i].id == v[i + 2]->id);
	}
	/* the picked ones moved to the end: the next round starts after them */
	struct node_victim y[16];
	size_t k2 = nodes_pick_victims(t, y, 16, NULL, NULL);
	assert_true(k2 >= 1);
	assert_true(y[0].id != x[0].id);
	victims_free(y, k2);
	/* the kernel forgets what it was asked: under budget again */
	for (size_t i = 0; i < k; i++)
		nodes_forget(t, x[i].id, 1);
	victims_free(x, k);
	assert_true(usage(t).bytes <= usage(t).budget);
	assert_true(usage(t).asked == k + k2);
	nodes_free(t);
}

/* The root's children have the root as their directory; a round stops at
 * 7/8 of the budget and at max. */
static void test_round_size(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	char name[16];
	for (size_t i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "top%zu", i);
		get(t, nodes_root(t), name, K_DIR, name);
	}
	uint64_t all = usage(t).bytes, budget = all / 2, low = budget - budget / 8;
	nodes_set_budget(t, budget);
	struct node_victim x[64];
	assert_int_equal(nodes_pick_victims(t, x, 3, NULL, NULL), 3);
	victims_free(x, 3);
	size_t k = nodes_pick_victims(t, x, 64, NULL, NULL);
	uint64_t freed = 0, last = 0;
	for (size_t i = 0; i < k; i++) {
		assert_true(x[i].parent == FUSE_ROOT_ID);
		struct node *n = nodes_by_id(t, x[i].id);
		assert_non_null(n);
		last = nodes_cost(t, n);
		freed += last;
	}
	/* enough to reach 7/8 of the budget, and not one node more */
	assert_true(all - freed <= low);
	assert_true(all - (freed - last) > low);
	victims_free(x, k);
	nodes_free(t);
}

static bool keep_prefix(const char *path, void *arg)
{
	return strncmp(path, arg, strlen(arg)) == 0;
}

/* Never picked: the root, open nodes, what keep() says, a node replaced
 * by a kind change (its name now belongs to another node). */
static void test_never_picked(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *v[6];
	fill(t, v, 6);
	struct node *top = get(t, nodes_root(t), "keep", K_DIR, "keep");
	struct node *below = get(t, top, "x", K_TAG, "x");
	nodes_open(t, v[0], 1);
	nodes_open(t, v[1], 1);
	nodes_open(t, v[1], -1); /* closed again: may go */
	struct node *old = v[2];
	struct node *replaced = get(t, nodes_by_path(t, "r"), "2", K_BLOB, NULL);
	assert_ptr_not_equal(replaced, old);
	nodes_set_budget(t, 1); /* everything is over it */
	struct node_victim x[32];
	size_t k = nodes_pick_victims(t, x, 32, keep_prefix, "keep");
	bool seen1 = false, seen_new = false;
	for (size_t i = 0; i < k; i++) {
		assert_true(x[i].id != FUSE_ROOT_ID);
		assert_true(x[i].id != v[0]->id);
		assert_true(x[i].id != old->id);
		assert_true(x[i].id != top->id && x[i].id != below->id);
		seen1 |= x[i].id == v[1]->id;
		seen_new |= x[i].id == replaced->id;
	}
	assert_true(seen1 && seen_new);
	/* r, 1, 3, 4, 5 and the new 2: each once in a round */
	assert_int_equal(k, 6);
	victims_free(x, k);
	/* closed: it may go now */
	nodes_open(t, v[0], -1);
	nodes_open(t, v[0], -1); /* one release too many: stays at 0 */
	k = nodes_pick_victims(t, x, 32, keep_prefix, "keep");
	bool seen0 = false;
	for (size_t i = 0; i < k; i++)
		seen0 |= x[i].id == v[0]->id;
	assert_true(seen0);
	victims_free(x, k);
	nodes_free(t);
}

/* nodes_wait_pressure: false after the timeout when under the budget,
 * true at once when over it. */
static void test_wait(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *v[4];
	fill(t, v, 4);
	assert_false(nodes_wait_pressure(t, 0.01)); /* unbounded */
	nodes_set_budget(t, usage(t).bytes + 1);
	assert_false(nodes_wait_pressure(t, 0.01));
	get(t, v[0], "more", K_TAG, "more"); /* over now */
	assert_true(nodes_wait_pressure(t, 10));
	nodes_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_round_size),
		cmocka_unit_test(test_never_picked),
		cmocka_unit_test(test_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
