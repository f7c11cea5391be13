/* test_fs_node.c — the mount's inode table (fs/node.c): one node
 * per live path, lifetime by lookup count, kind changes, rename, the shared
 * string pool for repository names and digests, and growth to 50,000 nodes.
 *
 * Freed memory is checked with ASan where the build has it: the pool entry
 * of a digest must be freed when the last node naming it is forgotten, and
 * since the pool keeps its table in a static, LeakSanitizer would not notice
 * an entry that is never freed; __asan_address_is_poisoned does. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_test.h"

#ifdef HAVE_ASAN
/* true when the bytes at p have been freed (ASan keeps freed memory
 * poisoned in its quarantine for a long while, far longer than a test). */
static bool freed(const void *p)
{
	return __asan_address_is_poisoned(p) != 0;
}
#endif


static struct node *get(struct nodes *t, struct node *parent, const char *name,
			enum node_kind kind, const char *repo, const char *digest,
			const char *arg, uint64_t nlookup)
{
	struct child c = fs_test_child(name, kind, repo, digest, arg);
	struct node *n = nodes_get(t, parent, &c, nlookup);
	assert_non_null(n);
	return n;
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_root(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	assert_non_null(t);
	struct node *r = nodes_root(t);
	assert_non_null(r);
	assert_int_equal(r->id, FUSE_ROOT_ID);
	assert_int_equal(r->kind, K_ROOT);
	assert_string_equal(fs_test_path(t, r), "");
	assert_non_null(r->digest);
	assert_string_equal(r->digest, "");
	assert_null(r->repo);
	assert_ptr_equal(nodes_by_id(t, FUSE_ROOT_ID), r);
	assert_ptr_equal(nodes_by_path(t, ""), r);
	/* forget never frees the root, however many it subtracts */
	nodes_forget(t, FUSE_ROOT_ID, 1000);
	nodes_forget(t, FUSE_ROOT_ID, 1);
	assert_ptr_equal(nodes_by_id(t, FUSE_ROOT_ID), r);
	assert_ptr_equal(nodes_by_path(t, ""), r);
	assert_string_equal(r->digest, "");
	assert_string_equal(fs_test_path(t, r), "");
	/* an id that was never handed out, and id 0 */
	assert_null(nodes_by_id(t, 987654));
	assert_null(nodes_by_id(t, 0));
	nodes_forget(t, 987654, 1); /* no-op, no crash */
	nodes_free(t);
}

static void test_same_node_while_alive(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node *team = get(t, r, "team", K_DIR, NULL, NULL, "team", 1);
	assert_string_equal(fs_test_path(t, team), "team");
	assert_int_not_equal(team->id, FUSE_ROOT_ID);
	assert_int_equal(team->nlookup, 1);
	assert_string_equal(team->arg, "team");
	assert_null(team->repo);
	assert_string_equal(team->digest, "");

	/* the same parent+name+kind is the same node; lookups add up */
	assert_ptr_equal(get(t, r, "team", K_DIR, NULL, NULL, "team", 2), team);
	assert_int_equal(team->nlookup, 3);
	/* readdir without plus hands out no lookup: nlookup 0 adds nothing */
	assert_ptr_equal(get(t, r, "team", K_DIR, NULL, NULL, "team", 0), team);
	assert_int_equal(team->nlookup, 3);

	struct node *app = get(t, team, "app", K_DIR, NULL, NULL, "team/app", 1);
	assert_string_equal(fs_test_path(t, app), "team/app");
	assert_int_not_equal(app->id, team->id);
	struct node *tags = get(t, app, "_tags", K_TAGS, "team/app", NULL, NULL, 1);
	assert_string_equal(fs_test_path(t, tags), "team/app/_tags");
	assert_string_equal(tags->repo, "team/app");
	struct node *latest = get(t, tags, "latest", K_TAG, "team/app", NULL, "latest", 1);
	assert_string_equal(fs_test_path(t, latest), "team/app/_tags/latest");
	assert_string_equal(latest->arg, "latest");

	assert_ptr_equal(nodes_by_id(t, team->id), team);
	assert_ptr_equal(nodes_by_id(t, app->id), app);
	assert_ptr_equal(nodes_by_id(t, latest->id), latest);
	assert_ptr_equal(nodes_by_path(t, "team/app/_tags/latest"), latest);
	assert_ptr_equal(nodes_by_path(t, "team/app"), app);
	assert_null(nodes_by_path(t, "team/ap"));
	assert_null(nodes_by_path(t, "team/app/"));
	assert_null(nodes_by_path(t, "/team"));

	/* forget below the count keeps it; reaching zero frees it */
	fuse_ino_t team_id = team->id;
	nodes_forget(t, team_id, 2);
	assert_ptr_equal(nodes_by_id(t, team_id), team);
	assert_int_equal(team->nlookup, 1);
	assert_ptr_equal(nodes_by_path(t, "team"), team);
	nodes_forget(t, team_id, 1);
	assert_null(nodes_by_id(t, team_id));
	assert_null(nodes_by_path(t, "team"));
	/* its children have their own counts and stay */
	assert_ptr_equal(nodes_by_path(t, "team/app"), app);
	assert_string_equal(fs_test_path(t, app), "team/app");

	/* looked up again: a new node with a fresh id */
	struct node *team2 = get(t, r, "team", K_DIR, NULL, NULL, "team", 1);
	assert_int_not_equal(team2->id, team_id);
	assert_true(team2->id > latest->id);
	assert_ptr_equal(nodes_by_id(t, team2->id), team2);
	assert_null(nodes_by_id(t, team_id));

	/* forgetting more than the count frees (kernel counts are saturating) */
	fuse_ino_t latest_id = latest->id;
	nodes_forget(t, latest_id, 100);
	assert_null(nodes_by_id(t, latest_id));
	assert_null(nodes_by_path(t, "team/app/_tags/latest"));
	/* a second forget of a freed id is harmless */
	nodes_forget(t, latest_id, 1);
	/* the old team's children are the old team's: reachable by id, their
	 * path still built through it; the new team has no children yet */
	assert_ptr_equal(nodes_by_id(t, tags->id), tags);
	assert_string_equal(fs_test_path(t, tags), "team/app/_tags");
	assert_null(nodes_by_path(t, "team/app/_tags"));

	nodes_free(t); /* frees the rest (LSan: no leak) */
}

static void test_kind_change(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node *app = get(t, r, "app", K_DIR, NULL, NULL, "app", 1);
	struct node *m = get(t, app, "x", K_MANIFEST, "app", D1, NULL, 1);
	fuse_ino_t mid = m->id;
	/* same path, another kind: a new node, the old one stays reachable by
	 * id (the kernel still holds it) but no longer by path */
	struct node *d = get(t, app, "x", K_DIR, NULL, NULL, "app/x", 1);
	assert_ptr_not_equal(d, m);
	assert_int_not_equal(d->id, mid);
	assert_int_equal(d->kind, K_DIR);
	assert_string_equal(fs_test_path(t, d), "app/x");
	assert_ptr_equal(nodes_by_path(t, "app/x"), d);
	assert_ptr_equal(nodes_by_id(t, mid), m);
	assert_int_equal(m->kind, K_MANIFEST);
	assert_string_equal(m->digest, D1);
	/* the same kind again: still the new node */
	assert_ptr_equal(get(t, app, "x", K_DIR, NULL, NULL, "app/x", 1), d);
	assert_int_equal(d->nlookup, 2);
	/* forgetting the old node must not unhash the new one */
	nodes_forget(t, mid, 1);
	assert_null(nodes_by_id(t, mid));
	assert_ptr_equal(nodes_by_path(t, "app/x"), d);
	assert_ptr_equal(nodes_by_id(t, d->id), d);
	/* and back to the first kind */
	struct node *m2 = get(t, app, "x", K_MANIFEST, "app", D1, NULL, 1);
	assert_ptr_not_equal(m2, d);
	assert_ptr_equal(nodes_by_path(t, "app/x"), m2);
	nodes_forget(t, d->id, 2);
	assert_ptr_equal(nodes_by_path(t, "app/x"), m2);
	nodes_free(t);
}

static void test_rename(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node *app = get(t, r, "app", K_DIR, NULL, NULL, "app", 1);
	struct node *tags = get(t, app, "_tags", K_TAGS, "app", NULL, NULL, 1);
	struct node *v1 = get(t, tags, "v1", K_TAG, "app", NULL, "v1", 1);
	struct node *v2 = get(t, tags, "v2", K_TAG, "app", NULL, "v2", 1);
	fuse_ino_t v1id = v1->id, v2id = v2->id;
	/* readers hold these without the lock: they must stay readable */
	const char *oldname = v1->name, *oldarg = v1->arg;

	assert_int_equal(nodes_rename(t, "app/_tags/v1", "app/_tags/v2", "v2"), 0);
	assert_string_equal(fs_test_path(t, v1), "app/_tags/v2");
	assert_string_equal(v1->arg, "v2");
	assert_int_equal(v1->id, v1id); /* same inode, new name */
	assert_string_equal(oldname, "v1");
	assert_string_equal(oldarg, "v1");
	assert_null(nodes_by_path(t, "app/_tags/v1"));
	assert_ptr_equal(nodes_by_path(t, "app/_tags/v2"), v1);
	/* the victim: replaced, reachable by id until the kernel forgets it */
	assert_ptr_equal(nodes_by_id(t, v2id), v2);
	assert_string_equal(fs_test_path(t, v2), "app/_tags/v2");
	/* a lookup of the new name finds the renamed node */
	assert_ptr_equal(get(t, tags, "v2", K_TAG, "app", NULL, "v2", 1), v1);
	assert_int_equal(v1->nlookup, 2);
	/* the victim's forget must not take the renamed node out of the table */
	nodes_forget(t, v2id, 1);
	assert_null(nodes_by_id(t, v2id));
	assert_ptr_equal(nodes_by_path(t, "app/_tags/v2"), v1);
	assert_ptr_equal(nodes_by_id(t, v1id), v1);

	/* the old name is free: a lookup makes a new node there */
	struct node *n1 = get(t, tags, "v1", K_TAG, "app", NULL, "v1", 1);
	assert_ptr_not_equal(n1, v1);
	assert_ptr_equal(nodes_by_path(t, "app/_tags/v1"), n1);

	/* no arg: the arg is kept */
	assert_int_equal(nodes_rename(t, "app/_tags/v2", "app/_tags/v3", NULL), 0);
	assert_string_equal(fs_test_path(t, v1), "app/_tags/v3");
	assert_string_equal(v1->arg, "v2");
	assert_ptr_equal(nodes_by_path(t, "app/_tags/v3"), v1);
	assert_null(nodes_by_path(t, "app/_tags/v2"));
	/* renamed twice, then freed: the buried strings go with it (LSan) */
	nodes_forget(t, v1id, 2);
	assert_null(nodes_by_id(t, v1id));
	assert_null(nodes_by_path(t, "app/_tags/v3"));

	/* the victim is out of the path table: once the renamed node is
	 * forgotten, the victim (still held by the kernel) is not found by path */
	struct node *a = get(t, tags, "a", K_TAG, "app", NULL, "a", 1);
	struct node *b = get(t, tags, "b", K_TAG, "app", NULL, "b", 1);
	fuse_ino_t aid = a->id;
	assert_int_equal(nodes_rename(t, "app/_tags/a", "app/_tags/b", "b"), 0);
	nodes_forget(t, aid, 1);
	assert_null(nodes_by_id(t, aid));
	assert_null(nodes_by_path(t, "app/_tags/b"));
	assert_ptr_equal(nodes_by_id(t, b->id), b);
	/* a new lookup of b makes a fresh node, not the replaced one */
	struct node *b2 = get(t, tags, "b", K_TAG, "app", NULL, "b", 1);
	assert_ptr_not_equal(b2, b);
	nodes_forget(t, b->id, 1);
	assert_ptr_equal(nodes_by_path(t, "app/_tags/b"), b2);

	/* nothing at the old path */
	assert_int_equal(nodes_rename(t, "app/_tags/none", "app/_tags/v9", "v9"), -ENOENT);
	assert_null(nodes_by_path(t, "app/_tags/v9"));
	assert_ptr_equal(nodes_by_path(t, "app/_tags/v1"), n1);
	/* renaming onto itself keeps it */
	assert_int_equal(nodes_rename(t, "app/_tags/v1", "app/_tags/v1", "v1"), 0);
	assert_ptr_equal(nodes_by_path(t, "app/_tags/v1"), n1);
	assert_string_equal(n1->arg, "v1");
	nodes_free(t);
}

static void test_shared_strings(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node *a = get(t, r, "a", K_DIR, NULL, NULL, "a", 1);
	struct node *b = get(t, r, "b", K_DIR, NULL, NULL, "b", 1);
	/* the same config blob shown in two repositories */
	char repo_a[] = "a", repo_b[] = "b";
	struct node *ca = get(t, a, "config.json", K_BLOB, repo_a, D1, NULL, 1);
	struct node *cb = get(t, b, "config.json", K_BLOB, repo_b, D1, NULL, 1);
	struct node *la = get(t, a, "0.tar.gz", K_BLOB, repo_a, D2, NULL, 1);
	assert_ptr_not_equal(ca, cb);
	assert_string_equal(ca->digest, D1);
	assert_ptr_equal(ca->digest, cb->digest);     /* one shared copy */
	assert_ptr_not_equal(ca->digest, la->digest);
	assert_string_equal(la->digest, D2);
	assert_ptr_equal(ca->repo, la->repo);         /* repo shared too */
	assert_ptr_not_equal(ca->repo, cb->repo);
	assert_string_equal(ca->repo, "a");
	assert_string_equal(cb->repo, "b");
	/* copies, not the caller's buffers */
	assert_ptr_not_equal(ca->repo, repo_a);
	repo_a[0] = 'z';
	assert_string_equal(ca->repo, "a");

	const char *d1 = ca->digest, *d2 = la->digest, *ra = ca->repo;
	(void)d2; /* checked with ASan only */
	nodes_forget(t, ca->id, 1);
	/* cb still names D1: the shared copy must stay */
	assert_string_equal(cb->digest, D1);
#ifdef HAVE_ASAN
	assert_false(freed(d1));
	assert_false(freed(ra));
#endif
	/* a third node with D1 gets the same copy */
	struct node *c2 = get(t, a, "config.json", K_BLOB, "a", D1, NULL, 1);
	assert_ptr_equal(c2->digest, d1);
	assert_ptr_equal(c2->repo, ra);
	nodes_forget(t, c2->id, 1);
	nodes_forget(t, cb->id, 1);
#ifdef HAVE_ASAN
	/* no node names D1 any more: its pool entry is freed */
	assert_true(freed(d1));
	assert_false(freed(d2));
	assert_false(freed(ra)); /* la still in repo a */
#endif
	nodes_forget(t, la->id, 1);
#ifdef HAVE_ASAN
	assert_true(freed(d2));
	assert_true(freed(ra));
#endif
	/* and a new node with D1 after that works (a fresh entry) */
	struct node *c3 = get(t, b, "config.json", K_BLOB, "b", D1, NULL, 1);
	assert_string_equal(c3->digest, D1);
	assert_string_equal(c3->repo, "b");

	/* no digest: "" (never NULL), and never freed */
	struct node *e = get(t, a, "_tags", K_TAGS, "a", "", NULL, 1);
	assert_non_null(e->digest);
	assert_string_equal(e->digest, "");
	nodes_forget(t, e->id, 1);
	assert_string_equal(r->digest, "");
	nodes_free(t);
}

/* mediatype: interned, equal strings share one copy */
static void test_mediatype(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct child c = fs_test_child("x", K_BLOB, "r", D1, NULL);
	char mt[] = "application/vnd.oci.image.layer.v1.tar+gzip";
	c.mediatype = mt;
	struct node *x = nodes_get(t, r, &c, 1);
	c.name = (char *)"y";
	struct node *y = nodes_get(t, r, &c, 1);
	assert_non_null(x);
	assert_non_null(y);
	assert_string_equal(node_mediatype(x), mt);
	assert_ptr_not_equal(node_mediatype(x), mt);
	assert_ptr_equal(node_mediatype(x), node_mediatype(y));
	c.mediatype = NULL;
	c.name = (char *)"z";
	struct node *z = nodes_get(t, r, &c, 1);
	assert_null(node_mediatype(z));
	nodes_free(t);
}

#define NGROW 50000

/* A child's payload (priv) goes to the node nodes_get makes, and is freed
 * with it by the kind's priv_free; a child for a node that exists keeps its
 * own. */
static void test_priv_handover(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *app = get(t, nodes_root(t), "app", K_DIR, NULL, NULL, "app", 1);
	assert_non_null(kind_ops[K_TAGS]->priv_free);
	struct child c = fs_test_child("_tags", K_TAGS, "app", NULL, NULL);
	void *p = c.priv = calloc(1, sizeof(struct dir_version));
	assert_non_null(p);
	struct node *tags = nodes_get(t, app, &c, 1);
	assert_non_null(tags);
	assert_ptr_equal(tags->priv, p);
	assert_null(c.priv);
	struct child c2 = fs_test_child("_tags", K_TAGS, "app", NULL, NULL);
	void *p2 = c2.priv = calloc(1, sizeof(struct dir_version));
	assert_ptr_equal(nodes_get(t, app, &c2, 1), tags);
	assert_ptr_equal(c2.priv, p2);
	assert_ptr_equal(tags->priv, p);
	kind_ops[K_TAGS]->priv_free(c2.priv);
	nodes_forget(t, tags->id, 2);
	assert_null(nodes_by_path(t, "app/_tags"));
#ifdef HAVE_ASAN
	assert_true(freed(p));
#endif
	nodes_free(t);
}

/* 50,000 directories, each with one blob of its own digest and one blob
 * of a digest shared by 100 of them: grows the id/path buckets and the
 * string pool many times over. */
static void grow_fill(struct nodes *t, struct node *r, struct node **v)
{
	char name[32], digest[80], path[64];
	for (size_t i = 0; i < NGROW; i++) {
		snprintf(name, sizeof name, "r%zu", i);
		v[i] = get(t, r, name, K_DIR, NULL, NULL, name, 1);
	}
	for (size_t i = 0; i < NGROW; i++) {
		snprintf(digest, sizeof digest, "sha256:%064zx", i);
		snprintf(name, sizeof name, "r%zu", i);
		struct node *own = get(t, v[i], "own", K_BLOB, name, digest, NULL, 1);
		snprintf(digest, sizeof digest, "sha256:%064zx", (size_t)1000000 + i / 100);
		struct node *sh = get(t, v[i], "shared", K_BLOB, name, digest, NULL, 1);
		assert_ptr_equal(own->repo, sh->repo);
		if (i % 100) { /* the previous directory's shared blob: same copy */
			snprintf(path, sizeof path, "r%zu/shared", i - 1);
			struct node *prev = nodes_by_path(t, path);
			assert_non_null(prev);
			assert_ptr_equal(sh->digest, prev->digest);
		} else {
			assert_string_equal(sh->digest, digest);
		}
	}
}

/* Every node still found by id and path, with the right fields; ids are
 * unique (a counter). */
static void grow_check(struct nodes *t, struct node **v)
{
	char name[32], digest[80], path[64];
	for (size_t i = 0; i < NGROW; i++) {
		snprintf(path, sizeof path, "r%zu", i);
		assert_ptr_equal(nodes_by_path(t, path), v[i]);
		assert_ptr_equal(nodes_by_id(t, v[i]->id), v[i]);
		snprintf(path, sizeof path, "r%zu/own", i);
		struct node *own = nodes_by_path(t, path);
		assert_non_null(own);
		assert_ptr_equal(nodes_by_id(t, own->id), own);
		snprintf(digest, sizeof digest, "sha256:%064zx", i);
		assert_string_equal(own->digest, digest);
		snprintf(name, sizeof name, "r%zu", i);
		assert_string_equal(own->repo, name);
	}
	for (size_t i = 1; i < NGROW; i++)
		assert_true(v[i]->id > v[i - 1]->id);
}

/* Forgets all, directories first, then their files; checks each is gone.
 * Returns a shared digest's string (freed by now). */
static const char *grow_forget_all(struct nodes *t, struct node **v)
{
	char path[64];
	fuse_ino_t *ids = calloc(3 * (size_t)NGROW, sizeof *ids);
	assert_non_null(ids);
	for (size_t i = 0; i < NGROW; i++) {
		ids[3 * i] = v[i]->id;
		nodes_forget(t, v[i]->id, 1);
	}
	const char *sample_digest = NULL;
	for (size_t i = 0; i < NGROW; i++) {
		snprintf(path, sizeof path, "r%zu", i);
		assert_null(nodes_by_path(t, path));
		assert_null(nodes_by_id(t, ids[3 * i]));
		snprintf(path, sizeof path, "r%zu/own", i);
		struct node *own = nodes_by_path(t, path);
		snprintf(path, sizeof path, "r%zu/shared", i);
		struct node *sh = nodes_by_path(t, path);
		assert_non_null(own);
		assert_non_null(sh);
		if (i == NGROW / 2)
			sample_digest = sh->digest;
		ids[3 * i + 1] = own->id;
		ids[3 * i + 2] = sh->id;
		nodes_forget(t, own->id, 1);
		nodes_forget(t, sh->id, 1);
	}
	for (size_t i = 0; i < NGROW; i++) {
		snprintf(path, sizeof path, "r%zu/own", i);
		assert_null(nodes_by_path(t, path));
		assert_null(nodes_by_id(t, ids[3 * i + 1]));
		assert_null(nodes_by_id(t, ids[3 * i + 2]));
	}
	free(ids);
	return sample_digest;
}

static void test_growth(void **state)
{
	(void)state;
	struct nodes *t = nodes_new();
	struct node *r = nodes_root(t);
	struct node **v = calloc(NGROW, sizeof *v);
	assert_non_null(v);
	grow_fill(t, r, v);
	grow_check(t, v);
	const char *sample_digest = grow_forget_all(t, v);
#ifdef HAVE_ASAN
	assert_true(freed(sample_digest));
#else
	(void)sample_digest;
#endif
	assert_ptr_equal(nodes_by_id(t, FUSE_ROOT_ID), r);
	assert_ptr_equal(nodes_by_path(t, ""), r);
	/* the table still works after shrinking back to the root */
	struct node *again = get(t, r, "r0", K_DIR, NULL, NULL, "r0", 1);
	assert_ptr_equal(nodes_by_path(t, "r0"), again);
	free(v);
	nodes_free(t);
}

/* st_ino of everything not a blob: a hash of the path, the same in every
 * mount. Expected values computed outside C (python) with node.c's hash:
 * FNV-1a's prime and the basis 1469598103934665603 (sic — the standard
 * basis has one more digit; changing it now would change every st_ino),
 * top bit set. */
static void test_path_hash_ino(void **state)
{
	(void)state;
	assert_int_equal(path_hash_ino(""), 0x94650fb0739d0383ULL);
	assert_int_equal(path_hash_ino("a"), 0xc4bd8ad473cd9906ULL);
	assert_int_equal(path_hash_ino("team/app"), 0xa6d7a30f47e62d6aULL);
	assert_int_equal(path_hash_ino("team/app/_tags"), 0x9ca37142d5489a89ULL);
	assert_int_equal(path_hash_ino("team/app/_tags/latest"), 0xcf1025c03824ca99ULL);
	/* stable and distinct from the root's and the small ids */
	char p[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(p, sizeof p, "r%d", i);
		uint64_t h = path_hash_ino(p);
		assert_int_equal(h, path_hash_ino(p));
		assert_true(h >> 63);
		assert_int_not_equal(h, FUSE_ROOT_ID);
		assert_int_not_equal(h, 0);
	}
	assert_int_not_equal(path_hash_ino("team/app"), path_hash_ino("team/ap"));
	assert_int_not_equal(path_hash_ino("a/b"), path_hash_ino("b/a"));
}

static void test_child_clear(void **state)
{
	(void)state;
	struct child c;
	memset(&c, 0, sizeof c);
	c.name = strdup("n");
	c.arg = strdup("a");
	c.mediatype = strdup("m");
	c.kind = K_TAG;
	c.size = 7;
	snprintf(c.digest, sizeof c.digest, "%s", D1);
	child_clear(&c); /* frees the three strings (LSan) and zeroes */
	assert_null(c.name);
	assert_null(c.arg);
	assert_null(c.mediatype);
	assert_int_equal(c.size, 0);
	assert_string_equal(c.digest, "");
	child_clear(&c); /* twice is fine */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_same_node_while_alive),
		cmocka_unit_test(test_kind_change),
		cmocka_unit_test(test_rename),
		cmocka_unit_test(test_shared_strings),
		cmocka_unit_test(test_mediatype),
		cmocka_unit_test(test_priv_handover),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_path_hash_ino),
		cmocka_unit_test(test_child_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
