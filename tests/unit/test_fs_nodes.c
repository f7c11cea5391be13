/* test_fs_nodes.c — the memory bound of the mount's inode table
 * (fs/node.c): what the nodes cost (against malloc_usable_size) and that it
 * returns to zero, the least recently used order of the nodes picked for
 * the kernel to drop, what is never picked (the root, open nodes, nodes the
 * caller keeps, nodes replaced by a kind change), how far a round goes, and
 * the reaper's wait. And the nodes' names and parents: paths built on
 * demand (near and past PATH_MAX, deeper than the ancestor array), renames
 * of a directory that its descendants follow, a directory forgotten before
 * its child (kept, not freed, until the child goes).
 * The kernel's part (dropping the entries, sending FORGET) is played by
 * nodes_forget here; tests/integration/mount_nodes.sh checks it for real. */
#include <errno.h>
#include <malloc.h>
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

/* glibc's chunk for n requested bytes, counted independently of node.c:
 * what malloc_usable_size reports plus the 8-byte header. */
static size_t real_chunk(const void *p)
{
	return malloc_usable_size((void *)p) + 8;
}

/* A node's cost is its allocation and the strings it owns as the
 * allocator sees them, plus a bucket pointer in each hash table: within a
 * rounding each way (glibc may hand out a free chunk up to 16 bytes larger
 * than the request's rather than split it; ASan's malloc_usable_size is
 * the request itself, the estimate then higher by the rounding). */
static void test_cost_honest(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node *d = get(t, r, "team", K_DIR, "team/app"); /* arg apart */
	struct node *tag = get(t, d, "a-tag-name", K_TAG, "a-tag-name"); /* arg = name */
	struct node *blob = get(t, d, D1, K_BLOB, NULL); /* name = the shared digest */
	size_t tables = 2 * sizeof(void *);
	size_t want_tag = real_chunk(tag) + tables;
	size_t want_dir = real_chunk(d) + real_chunk(d->arg) + tables;
	size_t want_blob = real_chunk(blob) + tables;
	uint32_t c_tag = nodes_cost(t, tag), c_dir = nodes_cost(t, d), c_blob = nodes_cost(t, blob);
	print_message("bytes per node: tag %u (struct %zu), dir %u, blob %u; the allocator's: "
		      "%zu, %zu, %zu\n", c_tag, sizeof(struct node), c_dir, c_blob, want_tag,
		      want_dir, want_blob);
	assert_true(c_tag + 16 >= want_tag && c_tag < want_tag + 24);
	assert_true(c_dir + 32 >= want_dir && c_dir < want_dir + 48);
	assert_true(c_blob + 16 >= want_blob && c_blob < want_blob + 24);
	assert_ptr_equal(blob->name, blob->digest); /* not a copy */
	assert_ptr_equal(tag->arg, tag->name);
	assert_true(usage(t).bytes == (uint64_t)c_tag + c_dir + c_blob);
	nodes_free(t);
}

/* a/b/c/d/leaf and x: the path of each built from the components. */
static struct node *chain(struct nodes *t, struct node **v)
{
	static const char *const names[] = {"a", "b", "c", "d", "leaf"};
	struct node *p = nodes_root(t);
	for (size_t i = 0; i < 5; i++)
		p = v[i] = get(t, p, names[i], i == 4 ? K_TAG : K_DIR, names[i]);
	return get(t, nodes_root(t), "x", K_DIR, "x");
}

/* A directory moved to another directory under a new name: everything
 * below follows (paths, lookups by path, st_ino), the old paths find
 * nothing, and a move into itself is refused. */
static void test_deep_rename(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *v[5];
	struct node *x = chain(t, v);
	assert_string_equal(fs_test_path(t, v[4]), "a/b/c/d/leaf");
	const char *old_name = v[1]->name;
	assert_int_equal(nodes_move(t, v[0], "b", x, "b2", NULL), 0);
	assert_string_equal(old_name, "b"); /* kept for readers */
	assert_string_equal(fs_test_path(t, v[4]), "x/b2/c/d/leaf");
	assert_string_equal(fs_test_path(t, v[2]), "x/b2/c");
	assert_ptr_equal(nodes_by_path(t, "x/b2/c/d/leaf"), v[4]);
	assert_null(nodes_by_path(t, "a/b/c/d/leaf"));
	assert_null(nodes_by_path(t, "a/b"));
	assert_ptr_equal(nodes_by_path(t, "a"), v[0]);
	assert_true(nodes_ino(t, v[4], NULL) == path_hash_ino("x/b2/c/d/leaf"));
	assert_true(nodes_ino(t, v[3], "new") == path_hash_ino("x/b2/c/d/new"));
	assert_true(nodes_parent_ino(t, v[4]) == path_hash_ino("x/b2/c/d"));
	assert_true(nodes_parent_ino(t, v[1]) == path_hash_ino("x"));
	assert_true(nodes_parent_ino(t, x) == FUSE_ROOT_ID);
	assert_int_equal(nodes_depth(t, v[4]), 5);
	assert_string_equal(nodes_top(t, v[4]), "x");
	/* into itself or below it: its path would never end */
	assert_int_equal(nodes_move(t, x, "b2", v[3], "loop", NULL), -EINVAL);
	assert_int_equal(nodes_move(t, x, "b2", v[1], "loop", NULL), -EINVAL);
	assert_string_equal(fs_test_path(t, v[4]), "x/b2/c/d/leaf");
	/* by paths, back under a with its old name; a node there is replaced */
	struct node *squat = get(t, v[0], "b", K_DIR, "b");
	assert_int_equal(nodes_rename(t, "x/b2", "a/b", NULL), 0);
	assert_ptr_equal(nodes_by_path(t, "a/b/c/d/leaf"), v[4]);
	assert_ptr_equal(nodes_by_id(t, squat->id), squat); /* until the kernel forgets it */
	assert_int_equal(nodes_rename(t, "x/none", "a/none", NULL), -ENOENT);
	assert_int_equal(nodes_rename(t, "a/b", "nowhere/b", NULL), -ENOENT);
	/* everything forgotten, leaves first: the table is empty */
	nodes_forget(t, squat->id, 1);
	for (size_t i = 5; i-- > 0;)
		nodes_forget(t, v[i]->id, 1);
	nodes_forget(t, x->id, 1);
	assert_int_equal(usage(t).count, 0);
	assert_true(usage(t).bytes == 0);
	nodes_free(t);
}

/* A directory the kernel forgets before its child (held by
 * nodes_ref_by_path, or the kernel's own order after an invalidation): not
 * freed while the child names it (ASan: no use after free building the
 * child's path), not found any more, not picked; freed with the last child,
 * or when the last child moves away. */
static void test_parent_forgotten_first(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node *p = get(t, r, "p", K_DIR, "p"), *q = get(t, r, "q", K_DIR, "q");
	struct node *c = get(t, p, "c", K_DIR, "p/c"), *k = get(t, c, "kid", K_TAG, "kid");
	struct node *held = nodes_ref_by_path(t, "p/c/kid");
	assert_ptr_equal(held, k);
	fuse_ino_t pid = p->id, cid = c->id;
	nodes_forget(t, pid, 1);
	nodes_forget(t, cid, 1);
	assert_null(nodes_by_id(t, pid));
	assert_null(nodes_by_id(t, cid));
	assert_null(nodes_by_path(t, "p"));
	assert_null(nodes_ref_by_path(t, "p/c"));
	assert_int_equal(usage(t).count, 4); /* p and c kept for kid */
	assert_string_equal(fs_test_path(t, k), "p/c/kid");
	assert_true(nodes_ino(t, k, NULL) == path_hash_ino("p/c/kid"));
	assert_ptr_equal(nodes_by_path(t, "p/c/kid"), k);
	/* kid's directory is gone from the kernel: never named to it */
	nodes_set_budget(t, 1);
	struct node_victim x[8];
	size_t nv = nodes_pick_victims(t, x, 8, NULL, NULL);
	for (size_t i = 0; i < nv; i++) {
		assert_true(x[i].id != k->id);
		free(x[i].name);
	}
	nodes_set_budget(t, 0);
	/* looked up again: a new p (a fresh nodeid), the old one stays for kid */
	struct node *p2 = get(t, r, "p", K_DIR, "p");
	assert_true(p2->id != pid);
	assert_ptr_equal(nodes_by_path(t, "p"), p2);
	assert_string_equal(fs_test_path(t, k), "p/c/kid");
	/* kid moves to q: the old p and c go with nothing left naming them */
	assert_int_equal(nodes_move(t, c, "kid", q, "kid", NULL), 0);
	assert_int_equal(usage(t).count, 3); /* p2, q, kid */
	assert_string_equal(fs_test_path(t, k), "q/kid");
	nodes_forget(t, k->id, 2); /* the kernel's and the held one */
	nodes_forget(t, q->id, 1);
	nodes_forget(t, p2->id, 1);
	assert_int_equal(usage(t).count, 0);
	assert_true(usage(t).bytes == 0);
	/* and freed with the last child when that one is forgotten */
	p = get(t, r, "p", K_DIR, "p");
	k = get(t, p, "kid", K_TAG, "kid");
	nodes_forget(t, p->id, 1);
	assert_int_equal(usage(t).count, 2);
	nodes_forget(t, k->id, 1);
	assert_int_equal(usage(t).count, 0);
	nodes_free(t);
}

/* nodes_path into buffers of every size around the path's length: the
 * path when it fits with its NUL, else -ENAMETOOLONG and the name alone
 * (or ""); the root's path is "". */
static void test_path_rebuild(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *v[5];
	chain(t, v);
	const char *want = "a/b/c/d/leaf";
	size_t len = strlen(want);
	char buf[64];
	for (size_t size = 1; size < sizeof buf; size++) {
		memset(buf, 'z', sizeof buf);
		int rc = nodes_path(t, v[4], buf, size);
		if (size > len) {
			assert_int_equal(rc, (int)len);
			assert_string_equal(buf, want);
		} else {
			assert_int_equal(rc, -ENAMETOOLONG);
			assert_string_equal(buf, size > strlen("leaf") ? "leaf" : "");
		}
	}
	assert_int_equal(nodes_path(t, v[4], buf, 0), -ENAMETOOLONG);
	assert_int_equal(nodes_path(t, nodes_root(t), buf, sizeof buf), 0);
	assert_string_equal(buf, "");
	assert_true(nodes_ino(t, nodes_root(t), NULL) == path_hash_ino(""));
	assert_true(nodes_ino(t, nodes_root(t), "a") == path_hash_ino("a"));
	assert_int_equal(nodes_depth(t, nodes_root(t)), 0);
	assert_string_equal(nodes_top(t, nodes_root(t)), "");
	nodes_free(t);
}

/* Names of 255 bytes (the kernel's limit) nested past PATH_MAX, and a
 * chain deeper than the ancestors nodes_ino keeps in an array: st_ino is
 * the hash of the path built here independently, lookups by path work at
 * any length, nodes_path says -ENAMETOOLONG past its buffer. */
static void test_long_names(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	enum { LEVELS = 20, NAME = 255, DEEP = 150 };
	char *want = calloc(LEVELS * (NAME + 1) + 1, 1);
	assert_non_null(want);
	struct node *p = nodes_root(t);
	char name[NAME + 1];
	for (size_t i = 0; i < LEVELS; i++) {
		memset(name, 'a' + (int)i, NAME);
		name[NAME] = 0;
		p = get(t, p, name, K_DIR, "x");
		if (i)
			strcat(want, "/");
		strcat(want, name);
		char buf[NODE_PATH_MAX];
		int rc = nodes_path(t, p, buf, sizeof buf);
		if (strlen(want) < NODE_PATH_MAX) {
			assert_int_equal(rc, (int)strlen(want));
			assert_string_equal(buf, want);
		} else {
			assert_int_equal(rc, -ENAMETOOLONG);
			assert_string_equal(buf, name); /* the name alone, for messages */
		}
		assert_true(nodes_ino(t, p, NULL) == path_hash_ino(want));
	}
	assert_true(strlen(want) > NODE_PATH_MAX);
	assert_ptr_equal(nodes_by_path(t, want), p);
	char *big = malloc(strlen(want) + 1);
	assert_non_null(big);
	assert_int_equal(nodes_path(t, p, big, strlen(want) + 1), (int)strlen(want));
	assert_string_equal(big, want);
	free(big);
	/* deeper than nodes_ino's ancestor array */
	struct node *d = nodes_root(t);
	want[0] = 0;
	for (size_t i = 0; i < DEEP; i++) {
		snprintf(name, sizeof name, "d%zu", i);
		d = get(t, d, name, K_DIR, "x");
		if (i)
			strcat(want, "/");
		strcat(want, name);
	}
	assert_true(nodes_ino(t, d, NULL) == path_hash_ino(want));
	assert_true(nodes_ino(t, d, "z") == path_hash_ino(strcat(want, "/z")));
	assert_int_equal(nodes_depth(t, d), DEEP);
	assert_string_equal(nodes_top(t, d), "d0");
	free(want);
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
		cmocka_unit_test(test_cost_honest),
		cmocka_unit_test(test_deep_rename),
		cmocka_unit_test(test_parent_forgotten_first),
		cmocka_unit_test(test_path_rebuild),
		cmocka_unit_test(test_long_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
