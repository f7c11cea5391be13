/* test_fs_names.c — single flight in the mount's caches (fs/cache/): many
 * threads asking for the same catalog, tag list or manifest at once send
 * one request; a failed fetch is not kept (the next caller asks again); an
 * answer is reused for the ttl and asked again after an invalidation.
 * A tag entry's compact digest reads back exactly in every spelling.
 *
 * The registry is a fake one in this process (libmicrohttpd on 127.0.0.1, a
 * free port, one thread per connection) that answers slowly, so that the
 * threads arrive while the first fetch is in flight, and counts requests by
 * kind. The caches are compiled in with util.c and loop.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "fs_test.h"
#include "cache/names_internal.h"

static struct mnt mnt;
static struct MHD_Daemon *registry;

enum { Q_CATALOG, Q_TAGS, Q_MANIFEST, Q__COUNT };
static atomic_int asked[Q__COUNT];
static atomic_int fail_tags;   /* answer the next tag lists 404 */

static const char MANIFEST[] =
	"{\"schemaVersion\":2,\"mediaType\":\"" REGFS_MT_OCI_MANIFEST "\","
	"\"config\":{\"mediaType\":\"" REGFS_MT_OCI_CONFIG "\",\"size\":2,\"digest\":"
	"\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\"},"
	"\"layers\":[]}";
static char manifest_digest[REGFS_DIGEST_MAX];

/* What the fake registry answers to GET url: status and body. */
static unsigned answer(const char *url, const char **body, const char **ctype)
{
	size_t ul = strlen(url);
	*ctype = "application/json";
	if (strcmp(url, "/v2/") == 0) {
		*body = "{}";
		return MHD_HTTP_OK;
	}
	if (strcmp(url, "/v2/_catalog") == 0) {
		atomic_fetch_add(&asked[Q_CATALOG], 1);
		*body = "{\"repositories\":[\"team/app\",\"solo\"]}";
		return MHD_HTTP_OK;
	}
	if (ul > 10 && strcmp(url + ul - 10, "/tags/list") == 0) {
		atomic_fetch_add(&asked[Q_TAGS], 1);
		if (atomic_load(&fail_tags) > 0) {
			atomic_fetch_sub(&fail_tags, 1);
			*body = "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"gone\"}]}";
			return MHD_HTTP_NOT_FOUND;
		}
		*body = "{\"name\":\"team/app\",\"tags\":[\"v2\",\"latest\",\"v1\"]}";
		return MHD_HTTP_OK;
	}
	if (strstr(url, "/manifests/") && strstr(url, manifest_digest)) {
		atomic_fetch_add(&asked[Q_MANIFEST], 1);
		*body = MANIFEST;
		*ctype = REGFS_MT_OCI_MANIFEST;
		return MHD_HTTP_OK;
	}
	*body = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"no\"}]}";
	return MHD_HTTP_NOT_FOUND;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	(void)cls, (void)method, (void)version, (void)data, (void)data_size, (void)con_cls;
	const char *body, *ctype;
	unsigned status = answer(url, &body, &ctype);
	/* Slow enough that every thread of a test arrives during the fetch. */
	nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Docker-Distribution-API-Version", "registry/2.0");
	if (strstr(url, "/manifests/"))
		MHD_add_response_header(r, "Docker-Content-Digest", manifest_digest);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static int setup(void **state)
{
	(void)state;
	regfs_digest_buf(REGFS_SHA256, MANIFEST, strlen(MANIFEST), manifest_digest);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	registry = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
				    0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
				    MHD_OPTION_END);
	const union MHD_DaemonInfo *info =
		registry ? MHD_get_daemon_info(registry, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!info || !info->port)
		return -1;
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)info->port);
	memset(&mnt, 0, sizeof mnt);
	mnt.o.ttl = 3600;
	mnt.o.timeout_s = 10;
	mnt.o.max_parallel = 4;
	if (fs_test_client_new(url, &mnt.client))
		return -1;
	return fs_test_mount_open(&mnt);
}

static int teardown(void **state)
{
	(void)state;
	fs_test_mount_close(&mnt);
	regfs_client_free(mnt.client);
	MHD_stop_daemon(registry);
	return 0;
}

/* Each test starts with empty caches and no requests counted. */
static int fresh(void **state)
{
	(void)state;
	fs_test_mount_close(&mnt);
	for (int i = 0; i < Q__COUNT; i++)
		atomic_store(&asked[i], 0);
	atomic_store(&fail_tags, 0);
	return fs_test_mount_open(&mnt);
}

#define NTHREADS 8

/* One thread's call of the cache, by kind; rc what it answered. */
struct caller {
	int kind, rc;
	size_t n; /* names or tags it saw */
};

static void *call_cache(void *arg)
{
	struct caller *c = arg;
	if (c->kind == Q_CATALOG) {
		struct catalog *cat = NULL;
		if ((c->rc = names_catalog(mnt.nc, &cat)) == 0) {
			c->n = cat->n;
			catalog_put(cat);
		}
	} else if (c->kind == Q_TAGS) {
		struct tagset *ts = NULL;
		if ((c->rc = names_tags(mnt.nc, "team/app", &ts)) == 0) {
			c->n = ts->n;
			tagset_put(ts);
		}
	} else {
		const struct mentry *e = NULL;
		if ((c->rc = mcache_get(mnt.mc, "team/app", manifest_digest, &e)) == 0) {
			c->n = e->m->n_layers + 1;
			mcache_put(mnt.mc, e);
		}
	}
	return NULL;
}

/* NTHREADS callers of `kind` at once: each gets the answer (n items),
 * and the registry was asked once. */
static void many_at_once(int kind, size_t n)
{
	pthread_t t[NTHREADS];
	struct caller c[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		c[i] = (struct caller){.kind = kind};
		assert_int_equal(pthread_create(&t[i], NULL, call_cache, &c[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].rc, 0);
		assert_int_equal(c[i].n, n);
	}
	assert_int_equal(atomic_load(&asked[kind]), 1);
}

static void test_catalog_once(void **state)
{
	(void)state;
	many_at_once(Q_CATALOG, 2);
}

static void test_tags_once(void **state)
{
	(void)state;
	many_at_once(Q_TAGS, 3);
}

static void test_manifest_once(void **state)
{
	(void)state;
	many_at_once(Q_MANIFEST, 1);
	/* Content-addressed: asked again never. */
	struct caller c = {.kind = Q_MANIFEST};
	call_cache(&c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(atomic_load(&asked[Q_MANIFEST]), 1);
	const struct mentry *e = mcache_peek(mnt.mc, manifest_digest);
	assert_non_null(e);
	mcache_put(mnt.mc, e);
}

/* A failed fetch is not kept: the next caller asks again, and gets it. */
static void test_failure_not_kept(void **state)
{
	(void)state;
	atomic_store(&fail_tags, 1);
	struct caller c = {.kind = Q_TAGS};
	call_cache(&c);
	assert_int_equal(c.rc, -ENOENT);
	call_cache(&c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(atomic_load(&asked[Q_TAGS]), 2);
	/* An unknown manifest fails; its slot fills on a later success only. */
	const struct mentry *e = NULL;
	assert_int_equal(mcache_get(mnt.mc, "team/app", "sha256:"
		"0000000000000000000000000000000000000000000000000000000000000000", &e), -ENOENT);
	assert_null(mcache_peek(mnt.mc, "sha256:"
		"0000000000000000000000000000000000000000000000000000000000000000"));
}

/* Within the ttl the answer is reused; an invalidation makes the next
 * caller ask again. */
static void test_ttl_and_invalidate(void **state)
{
	(void)state;
	struct caller c = {.kind = Q_TAGS};
	call_cache(&c);
	call_cache(&c);
	assert_int_equal(atomic_load(&asked[Q_TAGS]), 1);
	names_invalidate(mnt.nc, "team/app");
	call_cache(&c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(atomic_load(&asked[Q_TAGS]), 2);
	c.kind = Q_CATALOG;
	call_cache(&c);
	names_invalidate(mnt.nc, NULL);
	call_cache(&c);
	assert_int_equal(atomic_load(&asked[Q_CATALOG]), 2);
}

/* A tag entry keeps its digest compactly (a sha256 as raw bytes, any other
 * spelling as a copy): every spelling reads back exactly, compares equal
 * only to itself, and copies survive the original's clearing. */
static void test_tag_digest_roundtrip(void **state)
{
	(void)state;
	char sha512[REGFS_DIGEST_MAX] = "sha512:";
	for (int i = 0; i < 128; i++)
		strcat(sha512, i % 2 ? "a" : "7");
	const char *cases[] = {
		manifest_digest, sha512,
		"sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A",
		"sha256:abc", "",
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct tag_ent a = {0}, b = {0};
		char out[REGFS_DIGEST_MAX];
		assert_int_equal(tagdig_set(&a, cases[i]), 0);
		assert_int_equal(tagdig_known(&a), cases[i][0] != 0);
		tagdig_get(&a, out);
		assert_string_equal(out, cases[i]);
		assert_true(tagdig_is(&a, cases[i]));
		for (size_t j = 0; j < sizeof cases / sizeof *cases; j++)
			if (j != i)
				assert_false(tagdig_is(&a, cases[j]));
		assert_int_equal(tagdig_copy(&b, &a), 0);
		tagdig_clear(&a);
		assert_false(tagdig_known(&a));
		tagdig_get(&b, out);
		assert_string_equal(out, cases[i]);
		tagdig_clear(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_catalog_once, fresh),
		cmocka_unit_test_setup(test_tags_once, fresh),
		cmocka_unit_test_setup(test_manifest_once, fresh),
		cmocka_unit_test_setup(test_failure_not_kept, fresh),
		cmocka_unit_test_setup(test_ttl_and_invalidate, fresh),
		cmocka_unit_test(test_tag_digest_roundtrip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
