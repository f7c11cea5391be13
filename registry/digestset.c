/* digestset.c — a set of digest strings (open addressing, linear probing).
 * Used by garbage collection (the mark set) and by online GC's "referenced
 * recently" set. Digests are random, so their hex is already a good hash. */
#include "digestset.h"

#include <regfs/hash.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct digestset {
	char **slots;
	int64_t *when; /* per slot: the time given to digestset_add_at (0 for digestset_add) */
	size_t cap;    /* power of two */
	size_t n;
};

struct digestset *digestset_new(void)
{
	struct digestset *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->cap = 256;
	s->slots = calloc(s->cap, sizeof *s->slots);
	s->when = calloc(s->cap, sizeof *s->when);
	if (!s->slots || !s->when) {
		free(s->slots);
		free(s->when);
		free(s);
		return NULL;
	}
	return s;
}

void digestset_clear(struct digestset *s)
{
	for (size_t i = 0; i < s->cap; i++) {
		free(s->slots[i]);
		s->slots[i] = NULL;
	}
	s->n = 0;
}

void digestset_free(struct digestset *s)
{
	if (!s)
		return;
	digestset_clear(s);
	free(s->slots);
	free(s->when);
	free(s);
}

static size_t find(char **slots, size_t cap, const char *d)
{
	size_t i = regfs_fnv1a64_str(d) & (cap - 1);
	while (slots[i] && strcmp(slots[i], d) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Rebuilds the table with `cap` slots, keeping only entries noted at or
 * after `cutoff` (INT64_MIN keeps everything); dropped entries are freed. */
static int rehash(struct digestset *s, size_t cap, int64_t cutoff)
{
	char **slots = calloc(cap, sizeof *slots);
	int64_t *when = calloc(cap, sizeof *when);
	if (!slots || !when) {
		free(slots);
		free(when);
		return -ENOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slots[i])
			continue;
		if (s->when[i] < cutoff) {
			free(s->slots[i]);
			continue;
		}
		size_t j = find(slots, cap, s->slots[i]);
		slots[j] = s->slots[i];
		when[j] = s->when[i];
		n++;
	}
	free(s->slots);
	free(s->when);
	s->slots = slots;
	s->when = when;
	s->cap = cap;
	s->n = n;
	return 0;
}

int digestset_add_at(struct digestset *s, const char *d, int64_t when)
{
	if ((s->n + 1) * 2 > s->cap && rehash(s, s->cap * 2, INT64_MIN))
		return -ENOMEM;
	size_t i = find(s->slots, s->cap, d);
	if (s->slots[i]) {
		if (when > s->when[i])
			s->when[i] = when;
		return 0;
	}
	s->slots[i] = strdup(d);
	if (!s->slots[i])
		return -ENOMEM;
	s->when[i] = when;
	s->n++;
	return 1;
}

int digestset_add(struct digestset *s, const char *d) { return digestset_add_at(s, d, 0); }

int digestset_prune_before(struct digestset *s, int64_t cutoff)
{
	return rehash(s, s->cap, cutoff);
}

bool digestset_has(const struct digestset *s, const char *d)
{
	return s->slots[find(s->slots, s->cap, d)] != NULL;
}

size_t digestset_count(const struct digestset *s) { return s->n; }
