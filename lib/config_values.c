/* config_values.c — the scalar forms of registry:2's config.yml: YAML 1.1
 * booleans, Go durations, sizes (see include/regfs/config.h). Used by the
 * key table's walk (config.c), the environment overrides, and the list
 * sections' parsers. */
#include "config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MiB (1024ull * 1024)

bool config_is_null(const char *v, bool plain)
{
	return plain && (!*v || !strcmp(v, "~") || !strcasecmp(v, "null"));
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "y"};
	static const char *const no[] = {"false", "no", "off", "n"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) { *out = true; return 0; }
		if (strcasecmp(s, no[i]) == 0) { *out = false; return 0; }
	}
	return -EINVAL;
}

/* A duration in nanoseconds (see regfs_duration_parse). */
static int duration_ns(const char *s, long double *out)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	/* bare integer: nanoseconds (a YAML int decoded into time.Duration) */
	errno = 0;
	long long ns = strtoll(s, &end, 10);
	if (*end == '\0' && (s[0] >= '0' && s[0] <= '9')) {
		if (errno || ns < 0)
			return -EINVAL;
		*out = (long double)ns;
		return 0;
	}
	/* Go's time.ParseDuration: one or more <decimal><unit>, unit required. */
	static const struct { const char *u; double ns; } units[] = {
		{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6},
		{"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
	};
	const char *p = s;
	if (*p == '+')
		p++;
	if (strcmp(p, "0") == 0) {
		*out = 0;
		return 0;
	}
	long double total = 0;
	if (!*p)
		return -EINVAL;
	while (*p) {
		const char *num = p;
		while ((*p >= '0' && *p <= '9') || *p == '.')
			p++;
		if (p == num || (p - num == 1 && *num == '.'))
			return -EINVAL;
		char nbuf[64];
		if ((size_t)(p - num) >= sizeof nbuf)
			return -EINVAL;
		memcpy(nbuf, num, (size_t)(p - num));
		nbuf[p - num] = '\0';
		if (strchr(nbuf, '.') != strrchr(nbuf, '.'))
			return -EINVAL;
		long double v = strtold(nbuf, NULL);
		size_t best = 0;
		double mult = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t ul = strlen(units[i].u);
			/* longest unit that matches ("ms" before "m") */
			if (strncmp(p, units[i].u, ul) == 0 && ul > best) {
				best = ul;
				mult = units[i].ns;
			}
		}
		if (!best)
			return -EINVAL;
		p += best;
		total += v * mult;
		if (total > 9.2e18L)
			return -EINVAL;
	}
	*out = total;
	return 0;
}

/* ns in whole units of `unit` ns, rounded up: 300ms is 1s, not 0. */
static int64_t round_up(long double ns, long double unit)
{
	int64_t v = (int64_t)(ns / unit);
	if ((long double)v * unit < ns)
		v++;
	return v;
}

int regfs_duration_parse(const char *s, int64_t *seconds)
{
	long double ns;
	if (duration_ns(s, &ns))
		return -EINVAL;
	*seconds = round_up(ns, 1e9L);
	return 0;
}

int regfs_duration_parse_ms(const char *s, int64_t *ms)
{
	long double ns;
	if (duration_ns(s, &ns))
		return -EINVAL;
	*ms = round_up(ns, 1e6L);
	return 0;
}

int regfs_size_parse(const char *s, uint64_t *bytes)
{
	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ')
		end++;
	static const struct { const char *u; uint64_t m; } units[] = {
		{"", 1}, {"b", 1},
		{"k", 1000}, {"kb", 1000}, {"kib", 1024},
		{"m", 1000000}, {"mb", 1000000}, {"mib", MiB},
		{"g", 1000000000}, {"gb", 1000000000}, {"gib", 1024 * MiB},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcasecmp(end, units[i].u) == 0) {
			if (v > UINT64_MAX / units[i].m)
				return -EINVAL;
			*bytes = v * units[i].m;
			return 0;
		}
	}
	return -EINVAL;
}

