/* fs_test.h — shared by the test_fs_*.c unit tests (fs/ compiled in).
 *
 * HAVE_ASAN: set when built with AddressSanitizer, whose interface lets a
 * test check that memory was really freed (poisoned), which LeakSanitizer
 * cannot see for memory a static table still points at.
 * fs_test_child(): a child as a directory's list/lookup would produce it;
 * the strings are only read by nodes_get, which copies what it keeps.
 * fs_test_client_new(): an anonymous client of a test's fake registry.
 * fs_test_mount_open(): the parts of a mount the tests use, on a struct mnt
 * whose options (and client, if any) the test has set: the inode table, the
 * manifest cache (no disk cache) and, with a client, the name cache. A test
 * without a client has no name cache, so a code path that would ask the
 * registry crashes the test instead of passing silently.
 * fs_test_mount_close() frees what fs_test_mount_open made.
 * DV(n): the listing version of ttl directory n. */
#ifndef REGFS_TESTS_FS_TEST_H
#define REGFS_TESTS_FS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mount.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

static inline struct child fs_test_child(const char *name, enum node_kind kind, const char *repo,
					 const char *digest, const char *arg)
{
	struct child c;
	memset(&c, 0, sizeof c);
	c.name = (char *)name;
	c.kind = kind;
	c.repo = repo;
	if (digest)
		snprintf(c.digest, sizeof c.digest, "%s", digest);
	c.arg = (char *)arg;
	return c;
}

/* n's path (nodes_path) in one of 8 rotating static buffers, for asserts
 * and messages; "(too long)" past NODE_PATH_MAX. */
static inline const char *fs_test_path(struct nodes *t, const struct node *n)
{
	static char buf[8][NODE_PATH_MAX];
	static unsigned k;
	char *b = buf[k++ % 8];
	return nodes_path(t, n, b, NODE_PATH_MAX) >= 0 ? b : "(too long)";
}

/* A registry client of the fake registry at `url`, anonymous whatever the
 * environment has (no REGFS_USERNAME, no docker config): 0, or -1 with why
 * printed. */
static inline int fs_test_client_new(const char *url, struct regfs_client **out)
{
	struct regfs_client_opts co = {
		.url = url, .timeout_s = 10, .max_parallel = 4,
		.docker_config = "/nonexistent/regfs-test-docker-config.json",
	};
	unsetenv("REGFS_USERNAME");
	unsetenv("REGFS_PASSWORD");
	struct regfs_err e = {0};
	if (regfs_client_new(&co, out, &e) == 0)
		return 0;
	fprintf(stderr, "client: %s\n", regfs_err_str(&e));
	return -1;
}

/* The listing version of a ttl directory (its payload, fs/tree/version.c),
 * made when absent; the tests read and set it while alone with the node. */
#define DV(n) (*dir_version_of(n))

static inline int fs_test_mount_open(struct mnt *m)
{
	m->nodes = nodes_new();
	m->mc = manifest_cache_new(m->client, &m->o, &m->st, NULL);
	if (m->client && m->mc)
		m->nc = names_cache_new(m->client, &m->o, &m->st, m->mc);
	return m->nodes && m->mc && (!m->client || m->nc) ? 0 : -1;
}

static inline void fs_test_mount_close(struct mnt *m)
{
	nodes_free(m->nodes);
	names_cache_free(m->nc);
	manifest_cache_free(m->mc);
	m->nodes = NULL;
	m->nc = NULL;
	m->mc = NULL;
}

#endif
