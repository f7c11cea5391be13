/* blobdesc.c — the blob descriptor cache (see blobdesc.h).
 *
 * A direct-mapped table: the slot of a key is its FNV-1a hash modulo the
 * slot count, and the key is kept whole and compared, so two repositories
 * never share an answer. Keys: "<repo>@<digest>" for links, "@<digest>" for
 * sizes ('@' never occurs in a repository name). */
#include "blobdesc.h"

#include "registry.h"

#include <regfs/config.h>
#include <regfs/err.h>
#include <regfs/hash.h>
#include <regfs/log.h>

#include <errno.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bd_slot {
	char *key;      /* malloc'd; NULL when empty */
	uint64_t size;  /* size entries only */
	int64_t t_ms;   /* when noted */
};

struct blobdesc {
	pthread_mutex_t lock;
	int64_t ttl_ms;
	int64_t (*now_ms)(void);
	size_t n;
	struct bd_slot *s;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct blobdesc *blobdesc_new(size_t slots, int64_t ttl_ms)
{
	if (slots == 0 || ttl_ms < 0)
		return NULL;
	struct blobdesc *bd = calloc(1, sizeof *bd);
	if (!bd)
		return NULL;
	bd->s = calloc(slots, sizeof *bd->s);
	if (!bd->s) {
		free(bd);
		return NULL;
	}
	bd->n = slots;
	bd->ttl_ms = ttl_ms;
	bd->now_ms = mono_ms;
	pthread_mutex_init(&bd->lock, NULL);
	return bd;
}

void blobdesc_free(struct blobdesc *bd)
{
	if (!bd)
		return;
	for (size_t i = 0; i < bd->n; i++)
		free(bd->s[i].key);
	free(bd->s);
	pthread_mutex_destroy(&bd->lock);
	free(bd);
}

void blobdesc_set_clock(struct blobdesc *bd, int64_t (*now_ms)(void))
{
	if (bd)
		bd->now_ms = now_ms ? now_ms : mono_ms;
}

/* "<repo>@<digest>" into buf; false when it does not fit (never cached). */
static bool make_key(char *buf, size_t cap, const char *repo, const char *digest)
{
	int n = snprintf(buf, cap, "%s@%s", repo ? repo : "", digest);
	return n > 0 && (size_t)n < cap;
}

#define KEY_MAX 512

static struct bd_slot *slot_of(struct blobdesc *bd, const char *key)
{
	return &bd->s[regfs_fnv1a64(key, strlen(key)) % bd->n];
}

/* The fresh slot holding key, or NULL (lock held). */
static struct bd_slot *find(struct blobdesc *bd, const char *key)
{
	struct bd_slot *sl = slot_of(bd, key);
	if (!sl->key || strcmp(sl->key, key) != 0)
		return NULL;
	if (bd->now_ms() - sl->t_ms >= bd->ttl_ms)
		return NULL; /* too old: the storage is asked again */
	return sl;
}

static void note(struct blobdesc *bd, const char *key, uint64_t size)
{
	struct bd_slot *sl = slot_of(bd, key);
	if (!sl->key || strcmp(sl->key, key) != 0) {
		char *k = strdup(key);
		if (!k)
			return; /* nothing cached: the storage answers next time */
		free(sl->key);
		sl->key = k;
	}
	sl->size = size;
	sl->t_ms = bd->now_ms();
}

static void drop(struct bd_slot *sl)
{
	free(sl->key);
	sl->key = NULL;
}

bool blobdesc_linked(struct blobdesc *bd, const char *repo, const char *digest)
{
	char key[KEY_MAX];
	if (!bd || !repo || !*repo || !make_key(key, sizeof key, repo, digest))
		return false;
	pthread_mutex_lock(&bd->lock);
	bool ok = find(bd, key) != NULL;
	pthread_mutex_unlock(&bd->lock);
	return ok;
}

void blobdesc_note_linked(struct blobdesc *bd, const char *repo, const char *digest)
{
	char key[KEY_MAX];
	if (!bd || !repo || !*repo || !make_key(key, sizeof key, repo, digest))
		return;
	pthread_mutex_lock(&bd->lock);
	note(bd, key, 0);
	pthread_mutex_unlock(&bd->lock);
}

bool blobdesc_size(struct blobdesc *bd, const char *digest, uint64_t *size)
{
	char key[KEY_MAX];
	if (!bd || !make_key(key, sizeof key, NULL, digest))
		return false;
	pthread_mutex_lock(&bd->lock);
	struct bd_slot *sl = find(bd, key);
	if (sl)
		*size = sl->size;
	pthread_mutex_unlock(&bd->lock);
	return sl != NULL;
}

void blobdesc_note_size(struct blobdesc *bd, const char *digest, uint64_t size)
{
	char key[KEY_MAX];
	if (!bd || !make_key(key, sizeof key, NULL, digest))
		return;
	pthread_mutex_lock(&bd->lock);
	note(bd, key, size);
	pthread_mutex_unlock(&bd->lock);
}

void blobdesc_note_pushed(struct blobdesc *bd, const char *repo, const char *digest,
			  const uint64_t *size)
{
	blobdesc_note_linked(bd, repo, digest);
	if (size)
		blobdesc_note_size(bd, digest, *size);
}

void blobdesc_forget_link(struct blobdesc *bd, const char *repo, const char *digest)
{
	char key[KEY_MAX];
	if (!bd || !repo || !*repo || !make_key(key, sizeof key, repo, digest))
		return;
	pthread_mutex_lock(&bd->lock);
	struct bd_slot *sl = slot_of(bd, key);
	if (sl->key && strcmp(sl->key, key) == 0)
		drop(sl);
	pthread_mutex_unlock(&bd->lock);
}

/* Every entry whose key ends with "@<digest>": a scan, as deletes are rare
 * next to lookups and a link entry's slot depends on its repository. */
void blobdesc_forget_blob(struct blobdesc *bd, const char *digest)
{
	if (!bd || !digest)
		return;
	size_t dl = strlen(digest);
	pthread_mutex_lock(&bd->lock);
	for (size_t i = 0; i < bd->n; i++) {
		const char *k = bd->s[i].key;
		size_t kl = k ? strlen(k) : 0;
		if (k && kl > dl && k[kl - dl - 1] == '@' && strcmp(k + kl - dl, digest) == 0)
			drop(&bd->s[i]);
	}
	pthread_mutex_unlock(&bd->lock);
}

void blobdesc_clear(struct blobdesc *bd)
{
	if (!bd)
		return;
	pthread_mutex_lock(&bd->lock);
	for (size_t i = 0; i < bd->n; i++)
		drop(&bd->s[i]);
	pthread_mutex_unlock(&bd->lock);
}

size_t blobdesc_count(struct blobdesc *bd)
{
	size_t c = 0;
	if (!bd)
		return 0;
	pthread_mutex_lock(&bd->lock);
	for (size_t i = 0; i < bd->n; i++)
		c += bd->s[i].key != NULL;
	pthread_mutex_unlock(&bd->lock);
	return c;
}

int blobdesc_open(struct registry *r, struct regfs_err *err)
{
	const char *v = r->cfg->cache_blobdescriptor;
	r->bd = NULL;
	if (!v || !*v)
		return 0;
	if (strcmp(v, "inmemory") != 0) {
		log_warn("storage.cache.blobdescriptor: \"%s\" is not supported (only inmemory): "
			 "no blob descriptor cache", v);
		return 0;
	}
	int n = r->cfg->cache_blobdescriptorsize;
	if (n <= 0) {
		log_warn("storage.cache.blobdescriptorsize is 0: no blob descriptor cache");
		return 0;
	}
	r->bd = blobdesc_new((size_t)n, BLOBDESC_TTL_MS);
	return r->bd ? 0 : regfs_errf(err, -ENOMEM, "out of memory for the blob descriptor cache");
}
