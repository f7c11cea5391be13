/* digestset.c — a set of digest strings (open addressing, linear probing).
 * Used by garbage collection (the mark set) and by online GC's "referenced
 * recently" set. Digests are random, so their hex is already a good hash. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct digestset {
	char **slots;
	size_t cap;   /* power of two */
	size_t n;
};

static uint64_t hash(const char *d)
{
	/* FNV-1a: cheap, and fine also for malformed input */
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)d; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

struct digestset *digestset_new(void)
{
	struct digestset *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->cap = 256;
	s->slots = calloc(s->cap, sizeof *s->slots);
	if (!s->slots) {
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
	free(s);
}

static size_t find(char **slots, size_t cap, const char *d)
{
	size_t i = hash(d) & (cap - 1);
	while (slots[i] && strcmp(slots[i], d) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

static int grow(struct digestset *s)
{
	size_t cap = s->cap * 2;
	char **slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			slots[find(slots, cap, s->slots[i])] = s->slots[i];
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

int digestset_add(struct digestset *s, const char *d)
{
	if ((s->n + 1) * 2 > s->cap && grow(s))
		return -ENOMEM;
	size_t i = find(s->slots, s->cap, d);
	if (s->slots[i])
		return 0;
	s->slots[i] = strdup(d);
	if (!s->slots[i])
		return -ENOMEM;
	s->n++;
	return 1;
}

bool digestset_has(const struct digestset *s, const char *d)
{
	return s->slots[find(s->slots, s->cap, d)] != NULL;
}

size_t digestset_count(const struct digestset *s) { return s->n; }
