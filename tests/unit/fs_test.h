/* fs_test.h — shared by the test_fs_*.c unit tests (fs/ compiled in).
 *
 * HAVE_ASAN: set when built with AddressSanitizer, whose interface lets a
 * test check that memory was really freed (poisoned), which LeakSanitizer
 * cannot see for memory a static table still points at.
 * fs_test_child(): a child as a directory's list/lookup would produce it;
 * the strings are only read by nodes_get, which copies what it keeps. */
#ifndef REGFS_TESTS_FS_TEST_H
#define REGFS_TESTS_FS_TEST_H

#include <stdio.h>
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

#endif
