/* test_fs_dirs.c — the top of the mount: the root and namespace/repository
 * directories (fs/tree/root.c ROOT and DIR, over fs/cache/catalog.c),
 * and their listing versions (dir_version_refresh: the mtime that tells the
 * kernel when its cached listing is stale).
 *
 * The catalog comes from a tiny fake registry in this process (libmicrohttpd
 * on 127.0.0.1, a free port) through the real registry client, so the test
 * can change the catalog between listings and count the requests.
 *
 * Linked with the fs library; the FUSE side (ops.c, the loop) is not
 * called. The mount is set up here (fs_test.h) and passed. */
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
#include <unistd.h>

#include <microhttpd.h>

#include "fs_test.h"

static struct mnt mnt;

/* ---- the fake registry: GET /v2/_catalog answers `catalog_json` ---- */

static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;
static char *catalog_json;
static atomic_int catalog_requests;
static struct MHD_Daemon *daemon_;

static void set_catalog(const char *const *names)
{
	char *j = strdup("{\"repositories\":[");
	assert_non_null(j);
	for (size_t i = 0; names[i]; i++) {
		char *n;
		assert_true(asprintf(&n, "%s%s\"%s\"", j, i ? "," : "", names[i]) > 0);
		free(j);
		j = n;
	}
	char *n;
	assert_true(asprintf(&n, "%s]}", j) > 0);
	free(j);
	pthread_mutex_lock(&fmu);
	free(catalog_json);
	catalog_json = n;
	pthread_mutex_unlock(&fmu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	(void)cls, (void)version, (void)data, (void)data_size, (void)con_cls;
	unsigned status = MHD_HTTP_NOT_FOUND;
	size_t ul = strlen(url);
	char *body;
	pthread_mutex_lock(&fmu);
	if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/_catalog") == 0) {
		atomic_fetch_add(&catalog_requests, 1);
		body = strdup(catalog_json);
		status = MHD_HTTP_OK;
	} else if (strcmp(method, "GET") == 0 && strncmp(url, "/v2/", 4) == 0 && ul > 14 &&
		   strcmp(url + ul - 10, "/tags/list") == 0) {
		/* every repository exists and has no tags (all deleted) */
		if (asprintf(&body, "{\"name\":\"%.*s\",\"tags\":[]}", (int)(ul - 14),
			     url + 4) < 0)
			body = NULL;
		status = MHD_HTTP_OK;
	} else if (strcmp(url, "/v2/") == 0) {
		body = strdup("{}");
		status = MHD_HTTP_OK;
	} else {
		body = strdup("{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"no\"}]}");
	}
	pthread_mutex_unlock(&fmu);
	if (!body)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
								 MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Docker-Distribution-API-Version", "registry/2.0");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *const CATALOG[] = {
	"team/app", "team/app/worker", "team/app-x", "solo", "a/b/c", NULL,
};

static int setup(void **state)
{
	(void)state;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				   on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	if (!daemon_)
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port)
		return -1;
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)info->port);
	set_catalog(CATALOG);

	memset(&mnt, 0, sizeof mnt);
	mnt.o.ttl = 0; /* every listing asks the registry (set per test) */
	mnt.o.timeout_s = 10;
	mnt.mounted_since = 1700000000;
	if (fs_test_client_new(url, &mnt.client))
		return -1;
	if (fs_test_mount_open(&mnt) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fs_test_mount_close(&mnt);
	regfs_client_free(mnt.client);
	MHD_stop_daemon(daemon_);
	free(catalog_json);
	catalog_json = NULL;
	return 0;
}

/* Each test starts from the standard catalog, refetched every time. */
static int reset(void **state)
{
	(void)state;
	set_catalog(CATALOG);
	mnt.o.ttl = 0;
	return 0;
}

/* ---- helpers ---- */

struct want {
	const char *name;
	enum node_kind kind;
	const char *arg;   /* DIR: its own path */
	const char *repo;  /* TAGS/MANIFESTS: the repository */
};

/* Lists dir and compares with want (NULL-name terminated), in order. */
static void listing_is(struct node *dir, const struct want *want)
{
	struct child *v;
	size_t n;
	assert_int_equal(kind_ops[dir->kind]->list(&mnt, dir, &v, &n), 0);
	size_t nw = 0;
	while (want[nw].name)
		nw++;
	if (n != nw)
		for (size_t i = 0; i < n; i++)
			print_error("%s: [%zu] %s\n", fs_test_path(mnt.nodes, dir), i, v[i].name);
	assert_int_equal(n, nw);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(v[i].name, want[i].name);
		assert_int_equal(v[i].kind, want[i].kind);
		if (want[i].arg)
			assert_string_equal(v[i].arg, want[i].arg);
		if (want[i].repo)
			assert_string_equal(v[i].repo, want[i].repo);
		child_clear(&v[i]);
	}
	free(v);
}

static struct node *dir_node(const char *path)
{
	struct node *p = nodes_root(mnt.nodes);
	const char *s = path;
	while (*s) {
		size_t l = strcspn(s, "/");
		char *comp = strndup(s, l), *full = strndup(path, (size_t)(s - path) + l);
		assert_non_null(comp);
		assert_non_null(full);
		struct child c = {.name = comp, .kind = K_DIR, .arg = full};
		p = nodes_get(mnt.nodes, p, &c, 1);
		assert_non_null(p);
		child_clear(&c);
		s += l + (s[l] == '/');
	}
	return p;
}

static int lookup(struct node *dir, const char *name, struct child *out)
{
	return kind_ops[dir->kind]->lookup(&mnt, dir, name, out);
}

/* ---- tests ---- */

static void test_root_listing(void **state)
{
	(void)state;
	struct node *r = nodes_root(mnt.nodes);
	listing_is(r, (const struct want[]){
		{".regfs", K_META, NULL, NULL},
		{"a", K_DIR, "a", NULL},
		{"solo", K_DIR, "solo", NULL},
		{"team", K_DIR, "team", NULL},
		{NULL, 0, NULL, NULL}});
}

/* An empty catalog and a repository without tags (common: registry:2 keeps
 * a repository whose tags were all deleted) once meant qsort(NULL, 0, ...),
 * undefined behaviour UBSan reports (fatal with halt_on_error=1, as in CI). */
static void test_empty_registry(void **state)
{
	(void)state;
	set_catalog((const char *const[]){NULL});
	listing_is(nodes_root(mnt.nodes),
		   (const struct want[]){{".regfs", K_META, NULL, NULL}, {NULL, 0, NULL, NULL}});
}

static void test_repo_without_tags(void **state)
{
	(void)state;
	struct node *solo = dir_node("solo");
	struct child c = {.name = (char *)"_manifests", .kind = K_MANIFESTS, .repo = "solo"};
	struct node *mfs = nodes_get(mnt.nodes, solo, &c, 1);
	c.name = (char *)"_tags";
	c.kind = K_TAGS;
	struct node *tags = nodes_get(mnt.nodes, solo, &c, 1);
	assert_non_null(mfs);
	assert_non_null(tags);
	listing_is(tags, (const struct want[]){{NULL, 0, NULL, NULL}});
	listing_is(mfs, (const struct want[]){{NULL, 0, NULL, NULL}});
}

static void test_dir_listing(void **state)
{
	(void)state;
	/* a namespace only: no _tags/_manifests */
	listing_is(dir_node("team"), (const struct want[]){
		{"app", K_DIR, "team/app", NULL},
		{"app-x", K_DIR, "team/app-x", NULL},
		{NULL, 0, NULL, NULL}});
	/* repository and namespace */
	listing_is(dir_node("team/app"), (const struct want[]){
		{"_manifests", K_MANIFESTS, NULL, "team/app"},
		{"_tags", K_TAGS, NULL, "team/app"},
		{"worker", K_DIR, "team/app/worker", NULL},
		{NULL, 0, NULL, NULL}});
	/* repository only */
	listing_is(dir_node("team/app/worker"), (const struct want[]){
		{"_manifests", K_MANIFESTS, NULL, "team/app/worker"},
		{"_tags", K_TAGS, NULL, "team/app/worker"},
		{NULL, 0, NULL, NULL}});
	listing_is(dir_node("a/b"), (const struct want[]){{"c", K_DIR, "a/b/c", NULL},
							   {NULL, 0, NULL, NULL}});
}

static void test_dir_gone(void **state)
{
	(void)state;
	struct node *solo = dir_node("solo");
	listing_is(solo, (const struct want[]){
		{"_manifests", K_MANIFESTS, NULL, "solo"}, {"_tags", K_TAGS, NULL, "solo"},
		{NULL, 0, NULL, NULL}});
	/* deleted elsewhere: the directory the kernel still holds is ENOENT */
	set_catalog((const char *const[]){"team/app", NULL});
	struct child *v;
	size_t n;
	assert_int_equal(kind_ops[K_DIR]->list(&mnt, solo, &v, &n), -ENOENT);
	assert_int_equal(dir_version_refresh(&mnt, solo), -ENOENT);
	struct child c;
	assert_int_equal(lookup(nodes_root(mnt.nodes), "solo", &c), -ENOENT);
	assert_int_equal(lookup(solo, "_tags", &c), -ENOENT);
}

static void test_lookup(void **state)
{
	(void)state;
	struct node *r = nodes_root(mnt.nodes);
	struct child c;
	assert_int_equal(lookup(r, "team", &c), 0);
	assert_int_equal(c.kind, K_DIR);
	assert_string_equal(c.name, "team");
	assert_string_equal(c.arg, "team");
	child_clear(&c);
	assert_int_equal(lookup(r, "solo", &c), 0);
	child_clear(&c);
	assert_int_equal(lookup(r, "tea", &c), -ENOENT);
	assert_int_equal(lookup(r, "_tags", &c), -ENOENT);   /* the root is no repo */
	assert_int_equal(lookup(r, ".hidden", &c), -ENOENT);
	assert_int_equal(lookup(r, ".regfs", &c), 0);
	assert_int_equal(c.kind, K_META);
	child_clear(&c);

	struct node *team = dir_node("team");
	assert_int_equal(lookup(team, "app-x", &c), 0);
	assert_string_equal(c.arg, "team/app-x");
	child_clear(&c);
	assert_int_equal(lookup(team, "ap", &c), -ENOENT);   /* not a component */
	assert_int_equal(lookup(team, "_tags", &c), -ENOENT); /* namespace only */
	assert_int_equal(lookup(team, "_manifests", &c), -ENOENT);

	struct node *app = dir_node("team/app");
	assert_int_equal(lookup(app, "_tags", &c), 0);
	assert_int_equal(c.kind, K_TAGS);
	assert_string_equal(c.repo, "team/app");
	child_clear(&c);
	assert_int_equal(lookup(app, "_manifests", &c), 0);
	assert_int_equal(c.kind, K_MANIFESTS);
	child_clear(&c);
	assert_int_equal(lookup(app, "worker", &c), 0);
	assert_int_equal(c.kind, K_DIR);
	child_clear(&c);
	assert_int_equal(lookup(app, "_other", &c), -ENOENT);
	assert_int_equal(lookup(app, "worke", &c), -ENOENT);
	assert_int_equal(lookup(dir_node("team/app/worker"), "_tags", &c), 0);
	child_clear(&c);
}

/* The mtime of a ttl directory is the version of its listing: it moves
 * exactly when the names do. */
static void test_listing_versions(void **state)
{
	(void)state;
	struct node *r = nodes_root(mnt.nodes), *team = dir_node("team");
	struct stat st;
	double t;
	assert_int_equal(dir_version_refresh(&mnt, r), 0);
	assert_int_equal(dir_version_refresh(&mnt, team), 0);
	assert_true(DV(r).known && DV(team).known);
	struct timespec r1 = DV(r).mtime, t1 = DV(team).mtime;
	assert_int_equal(node_attr(&mnt, r, &st, &t), 0);
	assert_int_equal(st.st_mtim.tv_sec, r1.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, r1.tv_nsec);
	assert_true(t == 0); /* ttl 0: always ask again */

	/* the same names again: same version */
	assert_int_equal(dir_version_refresh(&mnt, r), 0);
	assert_true(DV(r).mtime.tv_sec == r1.tv_sec && DV(r).mtime.tv_nsec == r1.tv_nsec);

	/* a repository deeper down: the root's names stay, team's change */
	set_catalog((const char *const[]){"team/app", "team/app/worker", "team/app-x", "solo",
					  "a/b/c", "team/new", NULL});
	assert_int_equal(dir_version_refresh(&mnt, r), 0);
	assert_int_equal(dir_version_refresh(&mnt, team), 0);
	assert_true(DV(r).mtime.tv_sec == r1.tv_sec && DV(r).mtime.tv_nsec == r1.tv_nsec);
	assert_false(DV(team).mtime.tv_sec == t1.tv_sec && DV(team).mtime.tv_nsec == t1.tv_nsec);
	/* versions of one directory never repeat and only go forward */
	assert_true(DV(team).mtime.tv_sec > t1.tv_sec ||
		    (DV(team).mtime.tv_sec == t1.tv_sec && DV(team).mtime.tv_nsec > t1.tv_nsec));

	/* a new top-level name moves the root's */
	set_catalog((const char *const[]){"team/app", "zeta", NULL});
	assert_int_equal(dir_version_refresh(&mnt, r), 0);
	assert_false(DV(r).mtime.tv_sec == r1.tv_sec && DV(r).mtime.tv_nsec == r1.tv_nsec);
	/* a repository that becomes a namespace too (zeta/sub pushed): its
	 * listing gains sub */
	struct node *zeta = dir_node("zeta");
	assert_int_equal(dir_version_refresh(&mnt, zeta), 0);
	struct timespec z1 = DV(zeta).mtime;
	set_catalog((const char *const[]){"team/app", "zeta", "zeta/sub", NULL});
	assert_int_equal(dir_version_refresh(&mnt, zeta), 0);
	assert_false(DV(zeta).mtime.tv_sec == z1.tv_sec && DV(zeta).mtime.tv_nsec == z1.tv_nsec);
}

/* With a ttl, the catalog is fetched once and the version stays valid for
 * what is left of the ttl: no request until then. */
static void test_ttl_caching(void **state)
{
	(void)state;
	struct catalog *cat;
	assert_int_equal(names_catalog(mnt.nc, &cat), 0); /* ttl 0: the standard catalog, now */
	catalog_put(cat);
	mnt.o.ttl = 600;
	struct node *r = nodes_root(mnt.nodes), *team = dir_node("team");
	/* expire what earlier tests left */
	dir_version_expire(r);
	dir_version_expire(team);
	assert_int_equal(dir_version_refresh(&mnt, r), 0);
	int before = atomic_load(&catalog_requests);
	uint64_t hits = atomic_load(&mnt.st.nc_hits);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(dir_version_refresh(&mnt, r), 0);
		assert_int_equal(dir_version_refresh(&mnt, team), 0);
		struct child *v;
		size_t n;
		assert_int_equal(kind_ops[K_DIR]->list(&mnt, team, &v, &n), 0);
		for (size_t k = 0; k < n; k++)
			child_clear(&v[k]);
		free(v);
	}
	assert_int_equal(atomic_load(&catalog_requests), before);
	assert_true(atomic_load(&mnt.st.nc_hits) > hits);
	struct stat st;
	double t;
	assert_int_equal(node_attr(&mnt, r, &st, &t), 0);
	assert_true(t > 500 && t <= 600);
	/* a change on the registry is not seen within the ttl */
	set_catalog((const char *const[]){"other", NULL});
	struct child c;
	assert_int_equal(lookup(r, "team", &c), 0);
	child_clear(&c);
	assert_int_equal(lookup(r, "other", &c), -ENOENT);
	assert_int_equal(atomic_load(&catalog_requests), before);

	/* the version is valid until the catalog it came from expires, not
	 * for a whole ttl from the moment it was computed */
	set_catalog(CATALOG);
	mnt.o.ttl = 0;
	assert_int_equal(names_catalog(mnt.nc, &cat), 0);  /* fetched now: T0 */
	catalog_put(cat);
	mnt.o.ttl = 2;
	usleep(1200 * 1000);                        /* >= 1.2 s later */
	dir_version_expire(team);
	assert_int_equal(dir_version_refresh(&mnt, team), 0); /* from the cached catalog */
	assert_int_equal(node_attr(&mnt, team, &st, &t), 0);
	assert_true(t > 0 && t <= 0.8 + 1e-6);      /* T0 + 2 - now */
	mnt.o.ttl = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_root_listing, reset),
		cmocka_unit_test_setup(test_dir_listing, reset),
		cmocka_unit_test_setup(test_dir_gone, reset),
		cmocka_unit_test_setup(test_lookup, reset),
		cmocka_unit_test_setup(test_listing_versions, reset),
		cmocka_unit_test_setup(test_ttl_caching, reset),
		cmocka_unit_test_setup(test_empty_registry, reset),
		cmocka_unit_test_setup(test_repo_without_tags, reset),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
