/* idset.c — see idset.h. Linear probing; a deletion leaves a tombstone,
 * dropped at the next growth (rehash). */
#include "idset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ids_free(struct idset *s)
{
	free(s->slot);
	memset(s, 0, sizeof *s);
}

static uint32_t ids_hash(uint32_t id)
{
	return id * 2654435761u;
}

bool ids_has(const struct idset *s, uint32_t id)
{
	if (!s->cap)
		return false;
	for (uint32_t i = ids_hash(id) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i] == id)
			return true;
		if (s->slot[i] == IDSET_NONE)
			return false;
	}
}

/* Inserts into a table known to have room and not to hold id. */
static void ids_add_slot(struct idset *s, uint32_t id)
{
	uint32_t i = ids_hash(id) & (s->cap - 1);
	while (s->slot[i] != IDSET_NONE)
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = id;
	s->used++;
	s->n++;
}

static int ids_grow(struct idset *s)
{
	struct idset g = {0};
	g.cap = s->cap ? (s->n * 4 > s->cap ? s->cap * 2 : s->cap) : 8;
	g.slot = malloc((size_t)g.cap * sizeof *g.slot);
	if (!g.slot)
		return -ENOMEM;
	memset(g.slot, 0xff, (size_t)g.cap * sizeof *g.slot);
	for (uint32_t i = 0; i < s->cap; i++)
		if (s->slot[i] < IDSET_TOMB)
			ids_add_slot(&g, s->slot[i]);
	free(s->slot);
	*s = g;
	return 0;
}

int ids_add(struct idset *s, uint32_t id)
{
	if (ids_has(s, id))
		return 0;
	if ((s->used + 1) * 4 > s->cap * 3 && ids_grow(s))
		return -ENOMEM;
	uint32_t i = ids_hash(id) & (s->cap - 1);
	while (s->slot[i] < IDSET_TOMB)
		i = (i + 1) & (s->cap - 1);
	if (s->slot[i] == IDSET_NONE)
		s->used++;
	s->slot[i] = id;
	s->n++;
	return 1;
}

void ids_del(struct idset *s, uint32_t id)
{
	if (!s->cap)
		return;
	for (uint32_t i = ids_hash(id) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i] == IDSET_NONE)
			return;
		if (s->slot[i] == id) {
			s->slot[i] = IDSET_TOMB;
			s->n--;
			return;
		}
	}
}

