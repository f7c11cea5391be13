/* content_range.c — see content_range.h. */
#include "content_range.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* One decimal bound at s: digits only (strtoull alone would take a sign or
 * leading spaces). *next is the first byte after it. */
static int bound(const char *s, uint64_t *v, const char **next)
{
	if (!is_digit(*s))
		return -EINVAL;
	char *e;
	errno = 0;
	*v = strtoull(s, &e, 10);
	*next = e;
	return errno == ERANGE ? -ERANGE : 0;
}

int regfs_content_range_parse(const char *h, uint64_t *start, uint64_t *end)
{
	if (!strncmp(h, "bytes", 5)) {
		h += 5;
		if (*h == '=' || *h == ' ')
			h++;
	}
	const char *e;
	int r1 = bound(h, start, &e);
	if (r1 == -EINVAL || *e != '-')
		return -EINVAL;
	int r2 = bound(e + 1, end, &e);
	if (r2 == -EINVAL || (*e != '\0' && *e != '/'))
		return -EINVAL;
	if (r1 || r2)
		return -ERANGE; /* checked after the syntax: a huge bound is not malformed */
	return *end >= *start ? 0 : -EINVAL;
}

bool regfs_content_range_fits(uint64_t start, uint64_t end, uint64_t len)
{
	return len > 0 && end >= start && end - start == len - 1;
}
