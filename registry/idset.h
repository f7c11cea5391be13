/* idset.h — a set of 32-bit ids (open addressing): the storage accounting's
 * revisions and referenced blobs per repository (usage_model.c). 4 bytes a
 * slot, at most 3/4 full. Not thread-safe. A zeroed struct is an empty set. */
#ifndef REGFS_IDSET_H
#define REGFS_IDSET_H

#include <stdbool.h>
#include <stdint.h>

#define IDSET_NONE UINT32_MAX          /* an empty slot; never a member */
#define IDSET_TOMB (UINT32_MAX - 1)    /* a deleted slot; never a member */

struct idset {
	uint32_t *slot;                /* cap slots; members are those < IDSET_TOMB */
	uint32_t cap, n, used;         /* used: n + tombstones */
};

/* 1 added, 0 already there, -ENOMEM (set unchanged). id < IDSET_TOMB. */
int ids_add(struct idset *s, uint32_t id);
bool ids_has(const struct idset *s, uint32_t id);
void ids_del(struct idset *s, uint32_t id);
/* Frees the slots; the set is empty again. */
void ids_free(struct idset *s);

#endif
