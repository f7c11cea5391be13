/* sflight.c — the single-flight fill of one cache entry (see sflight.h). */
#include <regfs/sflight.h>

#include <math.h>
#include <time.h>

double sflight_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sflight_group_init(struct sflight_group *g, void (*before_wait)(void))
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->before_wait = before_wait;
}

void sflight_group_destroy(struct sflight_group *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

bool sflight_fresh(const struct sflight *e, double max_age)
{
	/* INFINITY - INFINITY would be NaN: content that never goes stale is
	 * fresh as soon as it is there. */
	return e->valid && (isinf(max_age) || sflight_now() - e->at < max_age);
}

void sflight_wait_idle(struct sflight_group *g, struct sflight *e)
{
	while (e->busy) {
		if (g->before_wait)
			g->before_wait();
		pthread_cond_wait(&g->cv, &g->mu);
	}
}

enum sflight_claim sflight_begin(struct sflight_group *g, struct sflight *e, double max_age)
{
	for (;;) {
		if (sflight_fresh(e, max_age))
			return SFLIGHT_HIT;
		if (!e->busy)
			break;
		sflight_wait_idle(g, e);
	}
	e->busy = true;
	return SFLIGHT_FILL;
}

bool sflight_claim(struct sflight *e, double max_age)
{
	if (e->busy || sflight_fresh(e, max_age))
		return false;
	e->busy = true;
	return true;
}

void sflight_set(struct sflight *e)
{
	e->valid = true;
	e->at = sflight_now();
}

void sflight_end(struct sflight_group *g, struct sflight *e, bool ok)
{
	e->busy = false;
	if (ok)
		sflight_set(e);
	pthread_cond_broadcast(&g->cv);
}

void sflight_expire(struct sflight *e)
{
	e->at = -INFINITY;
}
