/* upload_hashes.c — the cache of running hash states of uploads, by uuid
 * (uploads.h). Only a cache: a state missing here (another instance, a
 * restart, an eviction) is rebuilt by hashing the stored upload data again,
 * so a small fixed table evicting the oldest entry is enough. */
#include "uploads.h"

#include <regfs/digest.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UC_SLOTS 256

struct up_slot {
	char uuid[40];
	struct regfs_hasher *h;
	enum regfs_digest_alg alg;
	uint64_t offset;
	uint64_t stamp;
};

struct upcache {
	pthread_mutex_t lock;
	uint64_t clock;
	struct up_slot s[UC_SLOTS];
};

struct upcache *upcache_new(void)
{
	struct upcache *uc = calloc(1, sizeof *uc);
	if (uc)
		pthread_mutex_init(&uc->lock, NULL);
	return uc;
}

void upcache_free(struct upcache *uc)
{
	if (!uc)
		return;
	for (int i = 0; i < UC_SLOTS; i++)
		regfs_hasher_free(uc->s[i].h);
	pthread_mutex_destroy(&uc->lock);
	free(uc);
}

struct regfs_hasher *upcache_take(struct upcache *uc, const char *uuid,
				   enum regfs_digest_alg alg, uint64_t *offset)
{
	struct regfs_hasher *h = NULL;
	pthread_mutex_lock(&uc->lock);
	for (int i = 0; i < UC_SLOTS; i++) {
		if (uc->s[i].h && strcmp(uc->s[i].uuid, uuid) == 0) {
			if (uc->s[i].alg == alg) {
				h = uc->s[i].h;
				*offset = uc->s[i].offset;
			} else {
				regfs_hasher_free(uc->s[i].h);
			}
			uc->s[i].h = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&uc->lock);
	return h;
}

void upcache_give(struct upcache *uc, const char *uuid, enum regfs_digest_alg alg,
		  struct regfs_hasher *h, uint64_t offset)
{
	struct regfs_hasher *old = NULL;
	pthread_mutex_lock(&uc->lock);
	int best = 0;
	for (int i = 0; i < UC_SLOTS; i++) {
		if (!uc->s[i].h) {
			best = i;
			break;
		}
		if (uc->s[i].stamp < uc->s[best].stamp)
			best = i;
	}
	old = uc->s[best].h;
	snprintf(uc->s[best].uuid, sizeof uc->s[best].uuid, "%s", uuid);
	uc->s[best].h = h;
	uc->s[best].alg = alg;
	uc->s[best].offset = offset;
	uc->s[best].stamp = ++uc->clock;
	pthread_mutex_unlock(&uc->lock);
	regfs_hasher_free(old);
}
