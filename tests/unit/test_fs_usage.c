/* test_fs_usage.c — fs/usage.c's set arithmetic on a hand-built walk
 * result: bytes, exclusive and shared of repositories, namespaces, tag
 * groups and untagged manifests; the per-repository table; the retention
 * view. Every expected figure is written out as the sum of the blobs the
 * definitions in usage.h select, blob by blob. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "usage.h"

#define NOW 1800000000LL
#define DAY 86400LL

/* blob sizes, named as in the registry below */
enum { mA1 = 50, cA1 = 10, base = 1000, a1 = 100, mA2 = 60, cA2 = 11, a2 = 200, mL = 70,
       cL = 12, l1 = 300, mI = 80, mC1 = 40, cC1 = 5, o1 = 400, mC2 = 41, cC2 = 6, mU = 30,
       cU = 7, u1 = 500 };

struct b {
	const char *d;
	uint64_t size;
	enum usage_blob_kind k;
};

static void ref(struct usage_builder *ub, const char *repo, const char *tag, const char *man,
		int64_t mtime, const struct b *v)
{
	assert_int_equal(usage_ref_begin(ub, repo, tag, man, mtime), 0);
	for (; v->d; v++)
		assert_int_equal(usage_ref_blob(ub, v->d, v->size, v->k), 0);
}

#define M USAGE_MANIFEST
#define C USAGE_CONFIG
#define L USAGE_LAYER
static const struct b IMG_A1[] = {{"mA1", mA1, M}, {"cA1", cA1, C}, {"base", base, L},
				  {"a1", a1, L}, {0}};
static const struct b IMG_A2[] = {{"mA2", mA2, M}, {"cA2", cA2, C}, {"base", base, L},
				  {"a2", a2, L}, {0}};
static const struct b IMG_L[] = {{"mL", mL, M}, {"cL", cL, C}, {"base", base, L},
				 {"l1", l1, L}, {0}};
/* an index of two children (the second shares a2 with team/app:v2) */
static const struct b IDX[] = {{"mI", mI, M}, {"mC1", mC1, M}, {"cC1", cC1, C}, {"o1", o1, L},
			       {"mC2", mC2, M}, {"cC2", cC2, C}, {"a2", a2, L}, {0}};
static const struct b CHILD1[] = {{"mC1", mC1, M}, {"cC1", cC1, C}, {"o1", o1, L}, {0}};
/* untagged, shares a1 with team/app:v1 and base with every image */
static const struct b UNTAGGED[] = {{"mU", mU, M}, {"cU", cU, C}, {"u1", u1, L},
				    {"a1", a1, L}, {"base", base, L}, {0}};

static struct usage *build(void)
{
	struct usage_builder *ub = usage_builder_new();
	assert_non_null(ub);
	ref(ub, "team/app", "v1", "mA1", NOW - DAY / 2, IMG_A1);
	ref(ub, "team/app", "latest", "mA1", NOW - 2 * DAY, IMG_A1);
	ref(ub, "team/app", "v2", "mA2", NOW - 10 * DAY, IMG_A2);
	ref(ub, "team/lib", "keep", "mL", NOW - 40 * DAY, IMG_L);
	ref(ub, "other", "x", "mI", 0, IDX);
	ref(ub, "other", NULL, "mC1", 0, CHILD1);
	ref(ub, "team/app", NULL, "mU", 0, UNTAGGED); /* after another repository's */
	struct usage *u = NULL;
	assert_int_equal(usage_build(ub, &u), 0);
	return u;
}

static void fig_is(const struct usage_fig *f, uint64_t bytes, uint64_t excl, uint64_t blobs)
{
	assert_int_equal(f->bytes, bytes);
	assert_int_equal(f->exclusive, excl);
	assert_int_equal(f->shared, bytes - excl);
	assert_int_equal(f->blobs, blobs);
}

static void test_directories(void **state)
{
	(void)state;
	struct usage *u = build();
	struct usage_fig f;
	uint64_t all = mA1 + cA1 + base + a1 + mA2 + cA2 + a2 + mL + cL + l1 + mI + mC1 + cC1 +
		       o1 + mC2 + cC2 + mU + cU + u1;
	usage_total(u, &f);
	fig_is(&f, all, all, 19);
	assert_int_equal(usage_subtree(u, "", &f), 0);
	fig_is(&f, all, all, 19);
	/* team/app: base is team/lib's too, a2 other's (through the index) */
	assert_int_equal(usage_subtree(u, "team/app", &f), 0);
	fig_is(&f, mA1 + cA1 + base + a1 + mA2 + cA2 + a2 + mU + cU + u1,
	       mA1 + cA1 + a1 + mA2 + cA2 + mU + cU + u1, 10);
	/* the namespace: base is inside it now; a2 still shared */
	assert_int_equal(usage_subtree(u, "team", &f), 0);
	fig_is(&f, mA1 + cA1 + base + a1 + mA2 + cA2 + a2 + mU + cU + u1 + mL + cL + l1,
	       mA1 + cA1 + base + a1 + mA2 + cA2 + mU + cU + u1 + mL + cL + l1, 13);
	assert_int_equal(usage_subtree(u, "other", &f), 0);
	fig_is(&f, mI + mC1 + cC1 + o1 + mC2 + cC2 + a2, mI + mC1 + cC1 + o1 + mC2 + cC2, 7);
	/* a prefix that is not a path component is no directory */
	assert_int_equal(usage_subtree(u, "team/ap", &f), -ENOENT);
	assert_int_equal(usage_subtree(u, "nothing", &f), -ENOENT);
	usage_put(u);
}

static void test_tag_groups(void **state)
{
	(void)state;
	struct usage *u = build();
	struct usage_fig f;
	/* v1 and latest as a group: a1 is also reached by an untagged manifest,
	 * which keeps nothing alive */
	assert_int_equal(usage_manifest(u, "team/app", "mA1", &f), 0);
	fig_is(&f, mA1 + cA1 + base + a1, mA1 + cA1 + a1, 4);
	assert_int_equal(usage_manifest(u, "team/app", "mA2", &f), 0);
	fig_is(&f, mA2 + cA2 + base + a2, mA2 + cA2, 4);
	assert_int_equal(usage_manifest(u, "other", "mI", &f), 0);
	fig_is(&f, mI + mC1 + cC1 + o1 + mC2 + cC2 + a2, mI + mC1 + cC1 + o1 + mC2 + cC2, 7);
	/* an index child: every blob also reached by its tagged index */
	assert_int_equal(usage_manifest(u, "other", "mC1", &f), 0);
	fig_is(&f, mC1 + cC1 + o1, 0, 3);
	/* the untagged manifest: what no tag reaches */
	assert_int_equal(usage_manifest(u, "team/app", "mU", &f), 0);
	fig_is(&f, mU + cU + u1 + a1 + base, mU + cU + u1, 5);
	assert_int_equal(usage_manifest(u, "team/lib", "mA1", &f), -ENOENT);
	assert_int_equal(usage_manifest(u, "team/lib", "nope", &f), -ENOENT);
	usage_put(u);
}

static void test_repos(void **state)
{
	(void)state;
	struct usage *u = build();
	assert_int_equal(usage_n_repos(u), 3);
	const struct usage_repo *r = usage_repo_at(u, 0);
	assert_string_equal(r->name, "other");
	assert_int_equal(r->tags, 1);
	assert_int_equal(r->manifests, 3);
	fig_is(&r->fig, mI + mC1 + cC1 + o1 + mC2 + cC2 + a2, mI + mC1 + cC1 + o1 + mC2 + cC2, 7);
	assert_int_equal(r->n_top, 2);
	char d[REGFS_DIGEST_MAX];
	usage_blob_digest(u, r->top[0].blob, d);
	assert_string_equal(d, "o1");
	usage_blob_digest(u, r->top[1].blob, d);
	assert_string_equal(d, "a2");
	r = usage_repo_at(u, 1);
	assert_string_equal(r->name, "team/app");
	assert_int_equal(r->tags, 3);
	assert_int_equal(r->manifests, 3);
	fig_is(&r->fig, mA1 + cA1 + base + a1 + mA2 + cA2 + a2 + mU + cU + u1,
	       mA1 + cA1 + a1 + mA2 + cA2 + mU + cU + u1, 10);
	assert_int_equal(r->n_top, 4);
	assert_int_equal(r->top[0].size, base);
	assert_int_equal(r->top[1].size, u1);
	assert_int_equal(r->top[2].size, a2);
	assert_int_equal(r->top[3].size, a1);
	r = usage_repo_at(u, 2);
	assert_string_equal(r->name, "team/lib");
	fig_is(&r->fig, mL + cL + base + l1, mL + cL + l1, 4);
	assert_null(usage_repo_at(u, 3));
	usage_put(u);
}

static void test_retention(void **state)
{
	(void)state;
	struct usage *u = build();
	struct usage_retention r;
	usage_retention(u, NOW, &r);
	/* tags: v1 (0 days), latest (2), v2 (10), keep (40), x (unknown) */
	assert_int_equal(r.tags[0], 1);
	assert_int_equal(r.tags[1], 1);
	assert_int_equal(r.tags[2], 1);
	assert_int_equal(r.tags[3], 1);
	assert_int_equal(r.tags[4], 1);
	/* by the newest tag reaching each blob: base is kept by v1 */
	assert_int_equal(r.bytes[0], mA1 + cA1 + a1 + base);
	assert_int_equal(r.bytes[1], 0);
	assert_int_equal(r.bytes[2], mA2 + cA2);
	assert_int_equal(r.bytes[3], mL + cL + l1);
	assert_int_equal(r.bytes[4], mI + mC1 + cC1 + o1 + mC2 + cC2 + a2);
	assert_int_equal(r.untagged, mU + cU + u1);
	/* deleting tags older than 1 / 7 days: v2 and keep as a group (latest
	 * shares everything with v1); older than 30: keep */
	assert_int_equal(r.older_than[0], mA2 + cA2 + mL + cL + l1);
	assert_int_equal(r.older_than[1], mA2 + cA2 + mL + cL + l1);
	assert_int_equal(r.older_than[2], mL + cL + l1);
	usage_put(u);
}

/* "a" and "ab": a blob reached from a/b and ab is not exclusive to a/. */
static void test_prefix_is_not_a_namespace(void **state)
{
	(void)state;
	struct usage_builder *ub = usage_builder_new();
	static const struct b Z1[] = {{"m1", 5, M}, {"z", 100, L}, {0}};
	static const struct b Z2[] = {{"m2", 6, M}, {"z", 100, L}, {0}};
	static const struct b Z3[] = {{"m3", 7, M}, {"y", 50, L}, {0}};
	ref(ub, "a/b", "t", "m1", NOW, Z1);
	ref(ub, "ab", "t", "m2", NOW, Z2);
	ref(ub, "a", "t", "m3", NOW, Z3);
	assert_int_equal(usage_ref_blob(ub, "y", 50, L), 0); /* a duplicate changes nothing */
	struct usage *u;
	assert_int_equal(usage_build(ub, &u), 0);
	struct usage_fig f;
	assert_int_equal(usage_subtree(u, "a", &f), 0);
	fig_is(&f, 5 + 100 + 7 + 50, 5 + 7 + 50, 4);
	assert_int_equal(usage_subtree(u, "a/b", &f), 0);
	fig_is(&f, 5 + 100, 5, 2);
	assert_int_equal(usage_n_repos(u), 3);
	assert_string_equal(usage_repo_at(u, 0)->name, "a");
	assert_string_equal(usage_repo_at(u, 1)->name, "a/b");
	assert_string_equal(usage_repo_at(u, 2)->name, "ab");
	/* the repository a alone (not a/b) */
	fig_is(&usage_repo_at(u, 0)->fig, 7 + 50, 7 + 50, 2);
	usage_put(u);
}

static void test_blob_before_ref(void **state)
{
	(void)state;
	struct usage_builder *ub = usage_builder_new();
	assert_int_equal(usage_ref_blob(ub, "x", 1, L), -EINVAL);
	usage_builder_free(ub);
	struct usage *u;
	assert_int_equal(usage_build(usage_builder_new(), &u), 0);
	struct usage_fig f;
	usage_total(u, &f);
	fig_is(&f, 0, 0, 0);
	assert_int_equal(usage_subtree(u, "", &f), -ENOENT);
	usage_put(u);
}

/* A referrer its subject's tag keeps (usage_ref_begin_kept) against the
 * same manifest left untagged: kept, its blobs are neither garbage nor
 * exclusive to its subject's repository when another repository shows
 * them; its own directory frees what only it reaches; it is no tag. */
static void test_kept_referrer(void **state)
{
	(void)state;
	static const struct b IMG[] = {{"mI", 40, M}, {"l", 1000, L}, {0}};
	static const struct b SIG[] = {{"mS", 30, M}, {"e", 2, C}, {"s", 300, L}, {0}};
	static const struct b OTHER[] = {{"mO", 20, M}, {"e", 2, C}, {0}};
	for (int kept = 0; kept < 2; kept++) {
		struct usage_builder *ub = usage_builder_new();
		ref(ub, "app", "v1", "mI", NOW - 10 * DAY, IMG);
		if (kept)
			assert_int_equal(usage_ref_begin_kept(ub, "app", "mS", NOW - 10 * DAY), 0);
		else
			assert_int_equal(usage_ref_begin(ub, "app", NULL, "mS", 0), 0);
		for (const struct b *v = SIG; v->d; v++)
			assert_int_equal(usage_ref_blob(ub, v->d, v->size, v->k), 0);
		ref(ub, "zz", NULL, "mO", 0, OTHER); /* untagged elsewhere: keeps nothing */
		struct usage *u;
		assert_int_equal(usage_build(ub, &u), 0);
		struct usage_retention r;
		usage_retention(u, NOW, &r);
		struct usage_fig f;
		assert_int_equal(usage_subtree(u, "zz", &f), 0);
		assert_int_equal(usage_repo_at(u, 0)->tags, 1);
		if (kept) {
			assert_int_equal(r.untagged, 20);          /* mO only */
			assert_int_equal(r.bytes[2], 40 + 1000 + 30 + 2 + 300);
			assert_int_equal(r.older_than[1], 40 + 1000 + 30 + 2 + 300);
			fig_is(&f, 22, 20, 2);                     /* e is kept by app's tag */
		} else {
			assert_int_equal(r.untagged, 30 + 2 + 300 + 20);
			assert_int_equal(r.older_than[1], 40 + 1000);
			fig_is(&f, 22, 22, 2);
		}
		/* the referrer's directory: what deleting it alone frees (e
		 * too: zz's manifest is untagged) */
		assert_int_equal(usage_manifest(u, "app", "mS", &f), 0);
		fig_is(&f, 332, 332, 3);
		/* app: everything it shows is exclusive either way but e (kept:
		 * nothing outside app's tags reaches e either; zz is untagged) */
		assert_int_equal(usage_subtree(u, "app", &f), 0);
		fig_is(&f, 40 + 1000 + 332, 40 + 1000 + 332, 5);
		usage_put(u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directories),
		cmocka_unit_test(test_tag_groups),
		cmocka_unit_test(test_repos),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_prefix_is_not_a_namespace),
		cmocka_unit_test(test_blob_before_ref),
		cmocka_unit_test(test_kept_referrer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
