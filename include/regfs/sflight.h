/* sflight.h — single flight: one cache entry filled by one thread at a time.
 *
 * A cache entry that is expensive to fill (a registry request) is filled by
 * the first thread that finds it missing or stale; threads that need it
 * meanwhile wait for that fill instead of sending the same request. The
 * sequence is always the same (squashfuse's cache.c has it too):
 *
 *	pthread_mutex_lock(&g->mu);
 *	if (sflight_begin(g, &e->sf, ttl) == SFLIGHT_HIT) {
 *		... take a reference to e's value ...
 *		pthread_mutex_unlock(&g->mu);
 *		return 0;
 *	}
 *	pthread_mutex_unlock(&g->mu);
 *	rc = fetch(...);                      (without the lock)
 *	pthread_mutex_lock(&g->mu);
 *	if (rc == 0)
 *		... install the new value in e ...
 *	sflight_end(g, &e->sf, rc == 0);      (wakes the waiters)
 *	pthread_mutex_unlock(&g->mu);
 *
 * Ownership and invariants:
 * - A `struct sflight_group` is one mutex and one condition variable shared
 *   by all the entries of one cache. Waits are short and rare, so one
 *   broadcast to every waiter of the cache is fine. The owner initialises it
 *   with sflight_group_init and destroys it (no entry busy) with
 *   sflight_group_destroy.
 * - A `struct sflight` lives inside the owner's entry and only says whether
 *   the entry holds a value, since when, and whether a thread is filling it.
 *   The value itself (and freeing it) belongs to the owner; values shared
 *   with readers while a newer one is installed are reference-counted with
 *   `struct sflight_ref`.
 * - Every field is read and written with g->mu held.
 * - The thread that got SFLIGHT_FILL (or a true sflight_claim) must call
 *   sflight_end exactly once, also when the fill failed. A failed fill
 *   installs nothing: the next caller fills again (so a cache recovers when
 *   the registry comes back).
 * - Times are CLOCK_MONOTONIC seconds (sflight_now).
 *
 * Nothing here allocates, so nothing fails. */
#ifndef REGFS_SFLIGHT_H
#define REGFS_SFLIGHT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct sflight_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Called (with mu held) before each wait for another thread's fill,
	 * or NULL. The mount passes the hook that hands its request-reading
	 * role to another thread before this one blocks. */
	void (*before_wait)(void);
};

struct sflight {
	bool busy;   /* a thread is filling the entry */
	bool valid;  /* the entry holds a value */
	double at;   /* sflight_now() when the value was installed */
};

enum sflight_claim {
	SFLIGHT_HIT,   /* the entry holds a value younger than max_age */
	SFLIGHT_FILL,  /* the caller now fills the entry, then calls sflight_end */
};

/* CLOCK_MONOTONIC in seconds. */
double sflight_now(void);

void sflight_group_init(struct sflight_group *g, void (*before_wait)(void));
void sflight_group_destroy(struct sflight_group *g);

/* Caller holds g->mu (held again on return; it may be released while
 * waiting). Waits while another thread fills e, then answers SFLIGHT_HIT
 * when e holds a value installed less than max_age seconds ago (pass
 * INFINITY for content that never goes stale), else claims e for the
 * caller and answers SFLIGHT_FILL. */
enum sflight_claim sflight_begin(struct sflight_group *g, struct sflight *e, double max_age);

/* Caller holds g->mu. Claims e without waiting: true when e was neither
 * being filled nor fresh (then the caller must call sflight_end), false
 * otherwise. For batches that claim many entries and fill them at once. */
bool sflight_claim(struct sflight *e, double max_age);

/* Caller holds g->mu. Ends the caller's claim on e: when ok, e holds a
 * value installed now; else e is left as it was (an older value stays,
 * still subject to max_age). Wakes every waiter of the group. */
void sflight_end(struct sflight_group *g, struct sflight *e, bool ok);

/* Caller holds g->mu. Waits until no thread fills e. */
void sflight_wait_idle(struct sflight_group *g, struct sflight *e);

/* Caller holds g->mu. Does e hold a value younger than max_age? */
bool sflight_fresh(const struct sflight *e, double max_age);

/* Caller holds g->mu. Marks e's value as installed now, by a thread that
 * had no claim on it (a batch answer that came along); wakes no one. */
void sflight_set(struct sflight *e);

/* Caller holds g->mu. e's value is stale from now on (it stays valid for
 * readers that accept any age): the next sflight_begin fills it again. */
void sflight_expire(struct sflight *e);

/* ---- reference counts of values shared with readers ---- */

/* Starts at n (the cache's reference plus those handed out at once). */
struct sflight_ref {
	atomic_int n;
};

static inline void sflight_ref_init(struct sflight_ref *r, int n)
{
	atomic_store(&r->n, n);
}

static inline void sflight_ref_get(struct sflight_ref *r)
{
	atomic_fetch_add(&r->n, 1);
}

/* Drops one reference; true when it was the last: the caller frees. */
static inline bool sflight_ref_put(struct sflight_ref *r)
{
	return atomic_fetch_sub(&r->n, 1) == 1;
}

#endif
