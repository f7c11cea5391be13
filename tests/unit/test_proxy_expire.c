/* Unit tests of the expiry of the pull-through cache: the decision
 * (registry/proxy_expire_plan.c: which tags expire, which manifests become
 * unreferenced, which blobs they held) and the pull records
 * (registry/proxy_pulls.c, over a filesystem storage in a temporary
 * directory: saved, read back, the floor after an unclean stop, a malformed
 * object ignored). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/layout.h>

#include "../../registry/proxy_expire_plan.h"
#include "../../registry/proxy_pulls.h"
#include "../../registry/registry.h"

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
 * is not a candidate, its own config and layer are. A tag recorded exactly
 * ttl seconds ago stays (its pull happened in that second, maybe at its end). */
static void test_stale_tag_and_its_image(void **state)
{
	(void)state;
	struct pe_tag tags[] = {{"a", "mA", NOW - TTL - 1}, {"b", "mB", NOW - TTL}};
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

/* ---- pull records ---- */

struct store {
	char root[64];
	struct registry r;
};

static int store_setup(void **state)
{
	struct store *c = calloc(1, sizeof *c);
	snprintf(c->root, sizeof c->root, "/tmp/regfs-pulls-XXXXXX");
	if (!c || !mkdtemp(c->root) || regfs_storage_fs_new(c->root, &c->r.st, NULL) != 0)
		return -1;
	*state = c;
	return 0;
}

static int store_teardown(void **state)
{
	struct store *c = *state;
	regfs_storage_del(c->r.st, "/docker", NULL); /* the whole tree the test wrote */
	regfs_storage_free(c->r.st);
	rmdir(c->root);
	free(c);
	return 0;
}

#define OBJ REGFS_LAYOUT_ROOT "/_regfs/proxy/up/team/app/_pulls.json"

/* Notes are saved once, read back by a new process (later times win), and
 * records of what no longer exists are dropped. */
static void test_pulls_saved_and_read(void **state)
{
	struct store *c = *state;
	struct proxy_pulls *pl = pulls_new(5000, 0);
	pulls_note(pl, "up/team/app", "a", 100);
	pulls_note(pl, "up/team/app", "a", 90);  /* older: ignored */
	pulls_note(pl, "up/team/app", "@sha256:00", 200);
	pulls_default(pl, "up/team/app", "b", 300);
	pulls_default(pl, "up/team/app", "b", 400); /* only when absent */
	assert_int_equal(pulls_get(pl, "up/team/app", "a"), 100);
	assert_int_equal(pulls_get(pl, "up/team/app", "b"), 300);
	assert_int_equal(pulls_get(pl, "up/team/app", "c"), -1);
	assert_int_equal(pulls_flush(&c->r, pl), 0);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(regfs_storage_get(c->r.st, OBJ, &data, &len, NULL), 0);
	assert_string_equal(data, "{\"digests\":{\"sha256:00\":200},\"tags\":{\"a\":100,\"b\":300}}");
	free(data);
	pulls_free(pl);

	pl = pulls_new(6000, 0);
	pulls_set_floor(pl, 0);            /* after a clean stop */
	pulls_note(pl, "up/team/app", "b", 350);
	pulls_load(&c->r, pl, "up/team/app");
	assert_int_equal(pulls_get(pl, "up/team/app", "a"), 100);
	assert_int_equal(pulls_get(pl, "up/team/app", "b"), 350);
	assert_int_equal(pulls_get(pl, "up/team/app", "@sha256:00"), 200);
	struct strvec keep = {0};
	strvec_push(&keep, "b");
	pulls_retain(pl, "up/team/app", &keep);
	strvec_clear(&keep);
	assert_int_equal(pulls_get(pl, "up/team/app", "a"), -1);
	assert_int_equal(pulls_flush(&c->r, pl), 0);
	assert_int_equal(regfs_storage_get(c->r.st, OBJ, &data, &len, NULL), 0);
	assert_string_equal(data, "{\"digests\":{},\"tags\":{\"b\":350}}");
	free(data);
	/* nothing left: the object goes */
	pulls_retain(pl, "up/team/app", &keep);
	assert_int_equal(pulls_flush(&c->r, pl), 0);
	assert_int_equal(regfs_storage_get(c->r.st, OBJ, &data, &len, NULL), -ENOENT);
	pulls_free(pl);
}

/* Without a clean stop, saved times count as no older than start - slack. */
static void test_pulls_floor_after_crash(void **state)
{
	struct store *c = *state;
	const char *obj = "{\"tags\":{\"old\":100,\"new\":9990}}";
	assert_int_equal(regfs_storage_put(c->r.st, OBJ, obj, strlen(obj), NULL), 0);
	assert_false(pulls_take_stopped(&c->r));
	struct proxy_pulls *pl = pulls_new(10000, 600);
	bool set = true;
	assert_int_equal(pulls_floor(pl, &set), 9400);
	assert_false(set);
	pulls_load(&c->r, pl, "up/team/app");
	assert_int_equal(pulls_get(pl, "up/team/app", "old"), 9400);
	assert_int_equal(pulls_get(pl, "up/team/app", "new"), 9990);
	pulls_free(pl);
	/* the clean-stop marker is taken once */
	assert_int_equal(pulls_mark_stopped(&c->r), 0);
	assert_true(pulls_take_stopped(&c->r));
	assert_false(pulls_take_stopped(&c->r));
}

/* A malformed object is ignored (logged), not a failure; bad values are skipped. */
static void test_pulls_malformed(void **state)
{
	struct store *c = *state;
	const char *bad = "{\"tags\": [1, 2";
	assert_int_equal(regfs_storage_put(c->r.st, OBJ, bad, strlen(bad), NULL), 0);
	struct proxy_pulls *pl = pulls_new(10000, 0);
	pulls_set_floor(pl, 0);
	pulls_load(&c->r, pl, "up/team/app");
	assert_int_equal(pulls_get(pl, "up/team/app", "a"), -1);
	pulls_free(pl);
	const char *odd = "{\"tags\":{\"a\":\"x\",\"b\":-5,\"c\":7},\"digests\":3}";
	assert_int_equal(regfs_storage_put(c->r.st, OBJ, odd, strlen(odd), NULL), 0);
	pl = pulls_new(10000, 0);
	pulls_set_floor(pl, 0);
	pulls_load(&c->r, pl, "up/team/app");
	assert_int_equal(pulls_get(pl, "up/team/app", "a"), -1);
	assert_int_equal(pulls_get(pl, "up/team/app", "b"), -1);
	assert_int_equal(pulls_get(pl, "up/team/app", "c"), 7);
	pulls_free(pl);
}

/* A fresh record the listing does not show is reported once (the listing
 * may be short); unseen again, it is taken as deleted; a new pull resets it. */
static void test_pulls_fresh_unseen(void **state)
{
	(void)state;
	struct proxy_pulls *pl = pulls_new(0, 0);
	pulls_note(pl, "r", "a", 100);
	pulls_note(pl, "r", "old", 10);
	struct strvec seen = {0};
	strvec_push(&seen, "b");
	char key[64] = "";
	assert_true(pulls_fresh_unseen(pl, "r", &seen, 60, key, sizeof key));
	assert_string_equal(key, "a");
	assert_false(pulls_fresh_unseen(pl, "r", &seen, 60, key, sizeof key));
	pulls_note(pl, "r", "a", 110);   /* pulled again */
	assert_true(pulls_fresh_unseen(pl, "r", &seen, 60, key, sizeof key));
	assert_false(pulls_fresh_unseen(pl, "r", &seen, 60, key, sizeof key));
	pulls_retain(pl, "r", &seen);
	assert_int_equal(pulls_get(pl, "r", "a"), -1);
	assert_false(pulls_fresh_unseen(pl, "r", &seen, 60, key, sizeof key));
	strvec_clear(&seen);
	pulls_free(pl);
}

struct noter {
	struct proxy_pulls *pl;
	atomic_bool done;
};

static void *note_thread(void *arg)
{
	struct noter *n = arg;
	pulls_note(n->pl, "r", "@m", 500);
	atomic_store(&n->done, true);
	return NULL;
}

/* A claim succeeds only on a record older than the cutoff (or none), one at
 * a time; a pull of the claimed key waits for the release, and every
 * release counts. */
static void test_pulls_claim(void **state)
{
	(void)state;
	struct proxy_pulls *pl = pulls_new(0, 0);
	pulls_note(pl, "r", "fresh", 100);
	pulls_note(pl, "r", "@m", 40);
	assert_false(pulls_claim(pl, "r", "fresh", 100));   /* pulled at the cutoff: kept */
	assert_int_equal(pulls_releases(pl), 0);
	assert_true(pulls_claim(pl, "r", "never", 100));    /* no record */
	pulls_release(pl);
	assert_int_equal(pulls_releases(pl), 1);
	assert_true(pulls_claim(pl, "r", "@m", 100));
	assert_false(pulls_claim(pl, "r", "fresh", 1000));  /* one claim at a time */
	struct noter n = {.pl = pl};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, note_thread, &n), 0);
	usleep(100 * 1000);
	assert_false(atomic_load(&n.done));                 /* waits for the release */
	assert_int_equal(pulls_get(pl, "r", "@m"), 40);
	pulls_note(pl, "r", "other", 500);                  /* another key does not wait */
	pulls_release(pl);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(atomic_load(&n.done));
	assert_int_equal(pulls_get(pl, "r", "@m"), 500);
	assert_int_equal(pulls_releases(pl), 2);
	pulls_free(pl);
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
		cmocka_unit_test_setup_teardown(test_pulls_saved_and_read, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_pulls_floor_after_crash, store_setup,
						store_teardown),
		cmocka_unit_test_setup_teardown(test_pulls_malformed, store_setup, store_teardown),
		cmocka_unit_test(test_pulls_fresh_unseen),
		cmocka_unit_test(test_pulls_claim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
