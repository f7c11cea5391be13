/* fuzz_content_range.c — libFuzzer target: the upload Content-Range parser
 * (registry/content_range.c) on arbitrary header values. A value it accepts
 * has end >= start and, written back as "<start>-<end>", parses to the same
 * bounds; refusals are -EINVAL or -ERANGE only. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content_range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	uint64_t a, b;
	int rc = regfs_content_range_parse(s, &a, &b);
	if (rc == 0) {
		if (b < a)
			abort();
		/* every range but the whole 64-bit one has a length that fits */
		if (b - a + 1 != 0 && !regfs_content_range_fits(a, b, b - a + 1))
			abort();
		char again[64];
		uint64_t a2, b2;
		snprintf(again, sizeof again, "%" PRIu64 "-%" PRIu64, a, b);
		if (regfs_content_range_parse(again, &a2, &b2) != 0 || a2 != a || b2 != b)
			abort();
	} else if (rc != -EINVAL && rc != -ERANGE) {
		abort();
	}
	free(s);
	return 0;
}
