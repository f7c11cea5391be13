/* test_usage.c — the incremental storage accounting (registry/usage_model.c):
 * figures after pushes and deletions, exclusive/shared transitions when a
 * second repository starts or stops referencing a blob, garbage by gc.c's
 * rules (with and without delete-untagged), the quota projection, and a
 * randomized run checked against a from-scratch computation done here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <regfs/oci.h>

#include "quota.h"
#include "usage_model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "sha256:" + 64 hex digits made from n */
static const char *dg(int n)
{
	static char ring[64][80];
	static int next;
	char *d = ring[next++ % 64];
	snprintf(d, 80, "sha256:%064x", n);
	return d;
}

/* An image manifest: config c, layers l[0..nl). */
static struct regfs_manifest *image(int c, const int *l, int nl)
{
	char json[4096];
	int k = snprintf(json, sizeof json, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci."
			 "image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image."
			 "config.v1+json\",\"digest\":\"%s\",\"size\":1},\"layers\":[", dg(c));
	for (int i = 0; i < nl; i++)
		k += snprintf(json + k, sizeof json - (size_t)k, "%s{\"mediaType\":\"application/vnd.oci."
			      "image.layer.v1.tar\",\"digest\":\"%s\",\"size\":1}", i ? "," : "", dg(l[i]));
	snprintf(json + k, sizeof json - (size_t)k, "]}");
	struct regfs_manifest *m = NULL;
	assert_int_equal(regfs_manifest_parse(json, strlen(json), NULL, &m, NULL), 0);
	return m;
}

/* An index of children k[0..nk), or an artifact with a subject (subject >= 0). */
static struct regfs_manifest *index_of(const int *k, int nk, int subject)
{
	char json[4096];
	int n = snprintf(json, sizeof json, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci."
			 "image.index.v1+json\",\"manifests\":[");
	for (int i = 0; i < nk; i++)
		n += snprintf(json + n, sizeof json - (size_t)n, "%s{\"mediaType\":\"application/vnd.oci."
			      "image.manifest.v1+json\",\"digest\":\"%s\",\"size\":1}", i ? "," : "",
			      dg(k[i]));
	n += snprintf(json + n, sizeof json - (size_t)n, "]");
	if (subject >= 0)
		n += snprintf(json + n, sizeof json - (size_t)n, ",\"subject\":{\"mediaType\":\"application/"
			      "vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":1}", dg(subject));
	snprintf(json + n, sizeof json - (size_t)n, "}");
	struct regfs_manifest *m = NULL;
	assert_int_equal(regfs_manifest_parse(json, strlen(json), NULL, &m, NULL), 0);
	return m;
}

static void store(struct usage_model *m, int id, uint64_t size)
{
	assert_int_equal(usage_model_blob_stored(m, dg(id), size), 0);
}

/* Stores manifest `id` (size bytes) and pushes it to repo (tag may be NULL). */
static void push(struct usage_model *m, const char *repo, const char *tag, int id, uint64_t size,
		 struct regfs_manifest *p)
{
	store(m, id, size);
	assert_int_equal(usage_model_manifest(m, dg(id), p), 0);
	assert_int_equal(usage_model_revision_add(m, repo, dg(id)), 0);
	if (tag)
		assert_int_equal(usage_model_tag_set(m, repo, tag, dg(id)), 0);
	regfs_manifest_free(p);
}

static void expect_repo(struct usage_model *m, const char *repo, uint64_t tags, uint64_t mfs,
			uint64_t bytes, uint64_t excl)
{
	struct usage_repo_figures f;
	assert_int_equal(usage_model_repo(m, repo, &f), 0);
	print_message("%s: tags %" PRIu64 " manifests %" PRIu64 " bytes %" PRIu64 " exclusive %"
		      PRIu64 "\n", repo, f.tags, f.manifests, f.bytes, f.exclusive);
	assert_int_equal(f.tags, tags);
	assert_int_equal(f.manifests, mfs);
	assert_int_equal(f.bytes, bytes);
	assert_int_equal(f.exclusive, excl);
	assert_int_equal(f.shared, bytes - excl);
}

static void expect_totals(struct usage_model *m, uint64_t stored, uint64_t referenced,
			  uint64_t gblobs, uint64_t gmanifests)
{
	struct usage_totals t;
	usage_model_totals(m, 0, &t);
	assert_int_equal(t.stored, stored);
	assert_int_equal(t.referenced, referenced);
	assert_int_equal(t.garbage_blobs, gblobs);
	assert_int_equal(t.garbage_manifests, gmanifests);
}

/* Blobs: 1 config (10), 2 base layer (100), 3 layer (200), 4 config (5),
 * 5 layer (300); manifests 10 (50 bytes: 1, 2, 3) and 11 (40: 4, 2, 5). */
static struct usage_model *two_repos(bool delete_untagged)
{
	struct usage_model *m = usage_model_new(delete_untagged);
	assert_non_null(m);
	store(m, 1, 10);
	store(m, 2, 100);
	store(m, 3, 200);
	store(m, 4, 5);
	store(m, 5, 300);
	push(m, "a", "v1", 10, 50, image(1, (int[]){2, 3}, 2));
	return m;
}

static void test_shared_transitions(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(false);
	expect_repo(m, "a", 1, 1, 360, 360);
	expect_totals(m, 665, 360, 305, 0); /* 4 and 5 not referenced yet */
	/* a second repository starts referencing the base layer */
	push(m, "b", "v1", 11, 40, image(4, (int[]){2, 5}, 2));
	expect_repo(m, "a", 1, 1, 360, 260);
	expect_repo(m, "b", 1, 1, 445, 345);
	expect_totals(m, 705, 705, 0, 0);
	/* and stops: the base layer is a's alone again, b's own blobs are garbage */
	assert_int_equal(usage_model_revision_remove(m, "b", dg(11)), 0);
	expect_repo(m, "a", 1, 1, 360, 360);
	expect_repo(m, "b", 0, 0, 0, 0);
	expect_totals(m, 705, 360, 345, 0);
	/* GC sweeps them */
	static const int swept[] = {4, 5, 11};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(usage_model_blob_removed(m, dg(swept[i])), 0);
	expect_totals(m, 360, 360, 0, 0);
	usage_model_free(m);
}

/* Tags do not change what a repository references without delete-untagged;
 * deleting a tag keeps the revision (and its bytes). */
static void test_tags_keep_revisions(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(false);
	push(m, "a", "v2", 11, 40, image(4, (int[]){2, 5}, 2));
	expect_repo(m, "a", 2, 2, 705, 705);
	assert_int_equal(usage_model_tag_remove(m, "a", "v2"), 0);
	expect_repo(m, "a", 1, 2, 705, 705);
	expect_totals(m, 705, 705, 0, 0);
	/* a tag moved: both revisions stay referenced */
	assert_int_equal(usage_model_tag_set(m, "a", "v1", dg(11)), 0);
	expect_repo(m, "a", 1, 2, 705, 705);
	usage_model_free(m);
}

/* delete-untagged: an untagged revision is garbage (manifests), and what only
 * it references is garbage (blobs); a tag makes it live again. */
static void test_delete_untagged(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(true);
	push(m, "a", NULL, 11, 40, image(4, (int[]){2, 5}, 2));
	expect_repo(m, "a", 1, 2, 360, 360);
	expect_totals(m, 705, 360, 305, 40);
	/* the tag moves to 11: 10 becomes the untagged one */
	assert_int_equal(usage_model_tag_set(m, "a", "v1", dg(11)), 0);
	expect_repo(m, "a", 1, 2, 445, 445);
	expect_totals(m, 705, 445, 210, 50);
	usage_model_free(m);
}

/* An index references its children and what they reference; a referrer
 * whose subject is reached is kept (delete-untagged). */
static void test_index_and_referrers(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(true);
	push(m, "a", NULL, 11, 40, image(4, (int[]){2, 5}, 2));
	push(m, "a", "multi", 12, 30, index_of((int[]){11}, 1, -1));
	assert_int_equal(usage_model_tag_remove(m, "a", "v1"), 0);
	/* 12 reaches 11 (4, 2, 5); 10 and 3, 1 are garbage */
	expect_repo(m, "a", 1, 3, 475, 475);
	expect_totals(m, 735, 475, 210, 50);
	/* a signature of 11 (subject reached through the index) stays */
	push(m, "a", NULL, 13, 20, index_of(NULL, 0, 11));
	expect_repo(m, "a", 1, 4, 495, 495);
	/* without the index, 11 and its signature are unreached */
	assert_int_equal(usage_model_tag_remove(m, "a", "multi"), 0);
	expect_repo(m, "a", 0, 4, 0, 0);
	expect_totals(m, 755, 0, 615, 140);
	usage_model_free(m);
}

static void test_size_change_and_unknown(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(false);
	push(m, "b", "v1", 11, 40, image(4, (int[]){2, 5}, 2));
	store(m, 2, 150); /* the size seen by a later stat wins everywhere */
	expect_repo(m, "a", 1, 1, 410, 260);
	expect_repo(m, "b", 1, 1, 495, 345);
	struct usage_repo_figures f;
	assert_int_equal(usage_model_repo(m, "nope", &f), -ENOENT);
	/* removals of what is not there are no-ops */
	assert_int_equal(usage_model_revision_remove(m, "a", dg(99)), 0);
	assert_int_equal(usage_model_tag_remove(m, "a", "nope"), 0);
	expect_repo(m, "a", 1, 1, 410, 260);
	usage_model_free(m);
}

/* A manifest that is also another manifest's layer (an artifact pointing at
 * an image) is still expanded as a revision: gc.c keeps what it references. */
static void test_manifest_as_layer(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(false);
	push(m, "c", "art", 14, 30, image(4, (int[]){10}, 1));
	assert_int_equal(usage_model_revision_add(m, "c", dg(10)), 0);
	/* 14, 4, and 10 with 1, 2, 3 */
	expect_repo(m, "c", 1, 2, 30 + 5 + 360, 5 + 30);
	usage_model_free(m);
}

/* The quota projection: shared blobs do not count, new ones do. */
static void test_would_be(void **state)
{
	(void)state;
	struct usage_model *m = two_repos(false);
	store(m, 6, 1000);
	struct regfs_manifest *p = image(4, (int[]){2, 6}, 2);
	struct usage_repo_figures now, then;
	uint64_t added = 0;
	/* to b (new): 4, 6 and the manifest are new and nobody's; 2 is a's */
	assert_int_equal(usage_model_would_be(m, "b", "v1", dg(20), 77, p, &now, &then, &added), 0);
	assert_int_equal(added, 5 + 1000 + 77);
	assert_int_equal(now.exclusive, 0);
	assert_int_equal(then.exclusive, 1082);
	assert_int_equal(then.bytes, 1182);
	assert_int_equal(then.tags, 1);
	/* to a, same tag: only 4, 6 and the manifest; no new tag */
	assert_int_equal(usage_model_would_be(m, "a", "v1", dg(20), 77, p, &now, &then, &added), 0);
	assert_int_equal(added, 1082);
	assert_int_equal(then.exclusive, 360 + 1082);
	assert_int_equal(then.tags, 1);
	/* the model is unchanged by a projection */
	expect_repo(m, "a", 1, 1, 360, 360);
	regfs_manifest_free(p);
	usage_model_free(m);
}

/* The quota of a repository: the longest matching glob; '*' crosses '/'. */
static void test_quota_for(void **state)
{
	(void)state;
	struct regfs_quota q[] = {{"team/*", 1, 0}, {"team/big*", 2, 0}, {"*", 3, 0},
				  {"other", 4, 0}};
	struct regfs_config cfg = {.quotas = q, .n_quotas = 4};
	assert_ptr_equal(quota_for(&cfg, "team/app"), &q[0]);
	assert_ptr_equal(quota_for(&cfg, "team/a/b"), &q[0]);
	assert_ptr_equal(quota_for(&cfg, "team/bigger"), &q[1]);
	assert_ptr_equal(quota_for(&cfg, "other"), &q[3]);
	assert_ptr_equal(quota_for(&cfg, "others"), &q[2]);
	cfg.n_quotas = 2;
	assert_null(quota_for(&cfg, "solo"));
}

/* ---- randomized, against a computation done here ---- */

#define NB 40      /* layer/config blobs 1..NB */
#define NM 12      /* manifests 100..100+NM */
#define NR 4

struct world {
	uint64_t size[200];
	int layers[NM][4], nl[NM];
	bool rev[NR][NM];
};

static void check_world(struct usage_model *m, const struct world *w)
{
	static const char *names[NR] = {"r0", "r1", "r2", "r3"};
	int holders[200] = {0};
	bool refs[NR][200] = {{false}};
	for (int r = 0; r < NR; r++)
		for (int k = 0; k < NM; k++) {
			if (!w->rev[r][k])
				continue;
			refs[r][100 + k] = true;
			for (int i = 0; i < w->nl[k]; i++)
				refs[r][w->layers[k][i]] = true;
		}
	for (int r = 0; r < NR; r++)
		for (int b = 0; b < 200; b++)
			holders[b] += refs[r][b];
	uint64_t referenced = 0, garbage = 0;
	for (int b = 0; b < 200; b++) {
		if (holders[b])
			referenced += w->size[b];
		else
			garbage += w->size[b];
	}
	for (int r = 0; r < NR; r++) {
		uint64_t bytes = 0, excl = 0, nrev = 0;
		for (int b = 0; b < 200; b++) {
			bytes += refs[r][b] ? w->size[b] : 0;
			excl += refs[r][b] && holders[b] == 1 ? w->size[b] : 0;
		}
		for (int k = 0; k < NM; k++)
			nrev += w->rev[r][k];
		struct usage_repo_figures f;
		if (usage_model_repo(m, names[r], &f) != 0)
			continue; /* never touched */
		assert_int_equal(f.manifests, nrev);
		assert_int_equal(f.bytes, bytes);
		assert_int_equal(f.exclusive, excl);
	}
	struct usage_totals t;
	usage_model_totals(m, 0, &t);
	assert_int_equal(t.referenced, referenced);
	assert_int_equal(t.garbage_blobs + t.garbage_manifests, garbage);
}

static void test_random(void **state)
{
	(void)state;
	static const char *names[NR] = {"r0", "r1", "r2", "r3"};
	srand(1234);
	struct usage_model *m = usage_model_new(false);
	struct world w = {0};
	for (int b = 1; b <= NB; b++) {
		w.size[b] = (uint64_t)(1 + rand() % 5000);
		store(m, b, w.size[b]);
	}
	for (int k = 0; k < NM; k++) {
		w.nl[k] = 1 + rand() % 4;
		for (int i = 0; i < w.nl[k]; i++)
			w.layers[k][i] = 1 + rand() % NB;
		w.size[100 + k] = (uint64_t)(100 + rand() % 400);
		struct regfs_manifest *p = image(w.layers[k][0], w.layers[k] + 1, w.nl[k] - 1);
		store(m, 100 + k, w.size[100 + k]);
		assert_int_equal(usage_model_manifest(m, dg(100 + k), p), 0);
		regfs_manifest_free(p);
	}
	for (int step = 0; step < 2000; step++) {
		int r = rand() % NR, k = rand() % NM;
		if (rand() % 3) {
			assert_int_equal(usage_model_revision_add(m, names[r], dg(100 + k)), 0);
			w.rev[r][k] = true;
		} else {
			assert_int_equal(usage_model_revision_remove(m, names[r], dg(100 + k)), 0);
			w.rev[r][k] = false;
		}
		check_world(m, &w);
	}
	/* the same state built at once, as the startup walk builds it */
	struct usage_model *f = usage_model_new(false);
	for (int b = 1; b <= NB; b++)
		store(f, b, w.size[b]);
	for (int k = 0; k < NM; k++) {
		struct regfs_manifest *p = image(w.layers[k][0], w.layers[k] + 1, w.nl[k] - 1);
		store(f, 100 + k, w.size[100 + k]);
		assert_int_equal(usage_model_manifest(f, dg(100 + k), p), 0);
		regfs_manifest_free(p);
	}
	for (int r = 0; r < NR; r++) {
		struct strvec revs = {0}, tags = {0};
		for (int k = 0; k < NM; k++)
			if (w.rev[r][k])
				assert_int_equal(strvec_push(&revs, dg(100 + k)), 0);
		assert_int_equal(usage_model_repo_replace(f, names[r], &revs, &tags), 0);
		/* and over what the incremental model holds: the same */
		assert_int_equal(usage_model_repo_replace(m, names[r], &revs, &tags), 0);
		strvec_clear(&revs);
	}
	check_world(f, &w);
	check_world(m, &w);
	usage_model_free(f);
	usage_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_transitions),
		cmocka_unit_test(test_tags_keep_revisions),
		cmocka_unit_test(test_delete_untagged),
		cmocka_unit_test(test_index_and_referrers),
		cmocka_unit_test(test_size_change_and_unknown),
		cmocka_unit_test(test_would_be),
		cmocka_unit_test(test_manifest_as_layer),
		cmocka_unit_test(test_quota_for),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
