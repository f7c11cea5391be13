/* Unit tests of the expiry decision of the pull-through cache
 * (registry/proxy_expire_plan.c): which tags expire, which manifests become
 * unreferenced, which blobs they held. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../registry/proxy_expire_plan.h"

#define NOW 1000000
#define TTL 100

/* Digests are opaque to the plan: short names keep the cases readable. */
static const char *const a_refs[] = {"cfgA", "base", "layA"};
static const char *const b_refs[] = {"cfgB", "base", "layB"};

static void assert_vec(const struct strvec *v, const char *const *want, size_t n)
{
	assert_int_equal(v->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v->v[i], want[i]);
}

/* A stale tag goes with its manifest; the layer it shares with a kept image
 * is not a candidate, its own config and layer are. */
static void test_stale_tag_and_its_image(void **state)
{
	(void)state;
	struct pe_tag tags[] = {{"a", "mA", NOW - TTL}, {"b", "mB", NOW - 1}};
	struct pe_manifest mfs[] = {
		{.digest = "mA", .pulled = NOW - 5000, .refs = a_refs, .n_refs = 3},
		{.digest = "mB", .pulled = NOW - 5000, .refs = b_refs, .n_refs = 3},
	};
	struct pe_plan p = {0};
	assert_int_equal(pe_plan_repo(tags, 2, mfs, 2, NOW, TTL, &p), 0);
	assert_vec(&p.tags, (const char *[]){"a"}, 1);
	assert_vec(&p.manifests, (const char *[]){"mA"}, 1);
	assert_vec(&p.blobs, (const char *[]){"cfgA", "layA", "mA"}, 3);
	pe_plan_clear(&p);
}

/* A tag pulled one second inside the ttl stays, and so does everything. */
static void test_fresh_tag_stays(void **state)
{
	(void)state;
	struct pe_tag tags[] = {{"a", "mA", NOW - TTL + 1}};
	struct pe_manifest mfs[] = {{.digest = "mA", .pulled = 0, .refs = a_refs, .n_refs = 3}};
	struct pe_plan p = {0};
	assert_int_equal(pe_plan_repo(tags, 1, mfs, 1, NOW, TTL, &p), 0);
	assert_int_equal(p.tags.n, 0);
	assert_int_equal(p.manifests.n, 0);
	assert_int_equal(p.blobs.n, 0);
	pe_plan_clear(&p);
}

/* A kept tag on an index keeps its children (two levels) and a referrer of
 * a child; a stale tag's index goes, but not a child shared with the kept one. */
static void test_index_children_and_referrers(void **state)
{
	(void)state;
	static const char *const kids_keep[] = {"i2", "mA"};
	static const char *const kids_i2[] = {"mB"};
	static const char *const kids_old[] = {"mA", "mC"};
	struct pe_tag tags[] = {{"keep", "i1", NOW}, {"old", "iold", 0}};
	struct pe_manifest mfs[] = {
		{.digest = "i1", .kids = kids_keep, .n_kids = 2},
		{.digest = "i2", .kids = kids_i2, .n_kids = 1},
		{.digest = "mA", .refs = a_refs, .n_refs = 3},
		{.digest = "mB", .refs = b_refs, .n_refs = 3},
		{.digest = "sig", .subject = "mB"},
		{.digest = "iold", .kids = kids_old, .n_kids = 2},
		{.digest = "mC", .refs = (const char *const[]){"cfgC", "base"}, .n_refs = 2},
	};
	struct pe_plan p = {0};
	assert_int_equal(pe_plan_repo(tags, 2, mfs, 7, NOW, TTL, &p), 0);
	assert_vec(&p.tags, (const char *[]){"old"}, 1);
	assert_vec(&p.manifests, (const char *[]){"iold", "mC"}, 2);
	assert_vec(&p.blobs, (const char *[]){"cfgC", "iold", "mC"}, 3);
	pe_plan_clear(&p);
}

/* An untagged manifest pulled by digest inside the ttl stays with its
 * children; one pulled long ago goes. */
static void test_pulled_by_digest(void **state)
{
	(void)state;
	static const char *const kids[] = {"mA"};
	struct pe_manifest mfs[] = {
		{.digest = "idx", .pulled = NOW - 10, .kids = kids, .n_kids = 1},
		{.digest = "mA", .pulled = 0, .refs = a_refs, .n_refs = 3},
		{.digest = "mB", .pulled = NOW - TTL - 1, .refs = b_refs, .n_refs = 3},
	};
	struct pe_plan p = {0};
	assert_int_equal(pe_plan_repo(NULL, 0, mfs, 3, NOW, TTL, &p), 0);
	assert_vec(&p.manifests, (const char *[]){"mB"}, 1);
	assert_vec(&p.blobs, (const char *[]){"cfgB", "layB", "mB"}, 3);
	pe_plan_clear(&p);
}

/* ttl 0 never expires anything; a tag naming a manifest that is not stored
 * still expires by its own time. */
static void test_ttl_zero_and_dangling_tag(void **state)
{
	(void)state;
	struct pe_tag tags[] = {{"gone", "nothere", 0}};
	struct pe_plan p = {0};
	assert_int_equal(pe_plan_repo(tags, 1, NULL, 0, NOW, 0, &p), 0);
	assert_int_equal(p.tags.n, 0);
	pe_plan_clear(&p);
	assert_int_equal(pe_plan_repo(tags, 1, NULL, 0, NOW, TTL, &p), 0);
	assert_vec(&p.tags, (const char *[]){"gone"}, 1);
	assert_int_equal(p.manifests.n, 0);
	pe_plan_clear(&p);
}

/* Two stale tags on one manifest: both go, the manifest once. */
static void test_two_tags_one_manifest(void **state)
{
	(void)state;
	struct pe_tag tags[] = {{"x", "mA", 0}, {"y", "mA", 1}};
	struct pe_manifest mfs[] = {{.digest = "mA", .refs = a_refs, .n_refs = 3}};
	struct pe_plan p = {0};
	assert_int_equal(pe_plan_repo(tags, 2, mfs, 1, NOW, TTL, &p), 0);
	assert_vec(&p.tags, (const char *[]){"x", "y"}, 2);
	assert_vec(&p.manifests, (const char *[]){"mA"}, 1);
	assert_vec(&p.blobs, (const char *[]){"base", "cfgA", "layA", "mA"}, 4);
	pe_plan_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_tag_and_its_image),
		cmocka_unit_test(test_fresh_tag_stays),
		cmocka_unit_test(test_index_children_and_referrers),
		cmocka_unit_test(test_pulled_by_digest),
		cmocka_unit_test(test_ttl_zero_and_dangling_tag),
		cmocka_unit_test(test_two_tags_one_manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
