/* auth_limit.c — see auth_limit.h. */
#include "auth_limit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char peer[AUTH_LIMIT_PEER_MAX];   /* "" = free */
	int64_t start;                    /* window start */
	unsigned count;                   /* failures in the window */
};

struct auth_limit {
	pthread_mutex_t lock;             /* slots, max */
	int max;
	/* `now` of the last failure: none in the last window means no address
	 * is limited, and the request path takes no lock */
	_Atomic int64_t last_fail;
	struct slot slots[AUTH_LIMIT_SLOTS];
};

struct auth_limit *auth_limit_new(int max)
{
	struct auth_limit *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	l->max = max;
	atomic_init(&l->last_fail, INT64_MIN / 2); /* "long ago", without overflow */
	return l;
}

void auth_limit_free(struct auth_limit *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void auth_limit_set_max(struct auth_limit *l, int max)
{
	pthread_mutex_lock(&l->lock);
	l->max = max;
	pthread_mutex_unlock(&l->lock);
}

/* The slot of `peer` (NULL when absent and !make); expired slots of its set
 * are freed on the way. */
static struct slot *find(struct auth_limit *l, const char *peer, int64_t now, bool make)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = peer; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct slot *set = &l->slots[(h % (AUTH_LIMIT_SLOTS / AUTH_LIMIT_WAYS)) * AUTH_LIMIT_WAYS];
	struct slot *victim = NULL;
	for (int i = 0; i < AUTH_LIMIT_WAYS; i++) {
		struct slot *s = &set[i];
		if (s->peer[0] && now - s->start >= AUTH_LIMIT_WINDOW_S)
			s->peer[0] = '\0'; /* window over: forgotten */
		if (s->peer[0] && !strncmp(s->peer, peer, sizeof s->peer - 1))
			return s;
		if (!victim || (victim->peer[0] && (!s->peer[0] || s->start < victim->start)))
			victim = s;
	}
	if (!make)
		return NULL;
	snprintf(victim->peer, sizeof victim->peer, "%s", peer);
	victim->start = now;
	victim->count = 0;
	return victim;
}

int64_t auth_limit_blocked(struct auth_limit *l, const char *peer, int64_t now)
{
	if (now - atomic_load(&l->last_fail) >= AUTH_LIMIT_WINDOW_S)
		return 0;
	int64_t wait = 0;
	pthread_mutex_lock(&l->lock);
	if (l->max > 0) {
		struct slot *s = find(l, peer, now, false);
		if (s && s->count > (unsigned)l->max)
			wait = s->start + AUTH_LIMIT_WINDOW_S - now;
	}
	pthread_mutex_unlock(&l->lock);
	return wait > 0 ? wait : 0;
}

bool auth_limit_note(struct auth_limit *l, const char *peer, int64_t now)
{
	bool crossed = false;
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->last_fail, now);
	if (l->max > 0) {
		struct slot *s = find(l, peer, now, true);
		s->count++;
		crossed = s->count == (unsigned)l->max + 1;
	}
	pthread_mutex_unlock(&l->lock);
	return crossed;
}
