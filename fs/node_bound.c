/* node_bound.c — the memory bound of the inode table (mount.h: "the
 * memory bound of the table"): the budget, the usage .regfs/stats shows,
 * and the least recently used nodes reaper.c names to the kernel. */
#include "node_int.h"

#include <stdlib.h>
#include <string.h>

void nodes_set_budget(struct nodes *t, uint64_t bytes)
{
	pthread_mutex_lock(&t->mu);
	t->budget = bytes;
	pthread_cond_signal(&t->pressure);
	pthread_mutex_unlock(&t->mu);
}

void nodes_usage(struct nodes *t, struct nodes_usage *u)
{
	pthread_mutex_lock(&t->mu);
	*u = (struct nodes_usage){.bytes = t->bytes, .budget = t->budget, .count = t->count,
				  .asked = t->asked};
	pthread_mutex_unlock(&t->mu);
}

uint32_t nodes_cost(struct nodes *t, const struct node *n)
{
	pthread_mutex_lock(&t->mu);
	uint32_t c = node_cost(n);
	pthread_mutex_unlock(&t->mu);
	return c;
}

bool nodes_wait_pressure(struct nodes *t, double seconds)
{
	pthread_mutex_lock(&t->mu);
	if (!(t->budget && t->bytes > t->budget)) {
		struct timespec ts = fs_abstime(seconds);
		pthread_cond_timedwait(&t->pressure, &t->mu, &ts);
	}
	bool over = t->budget && t->bytes > t->budget;
	pthread_mutex_unlock(&t->mu);
	return over;
}

void nodes_open(struct nodes *t, struct node *n, int delta)
{
	pthread_mutex_lock(&t->mu);
	if (delta > 0 || n->opens >= (uint32_t)-delta)
		n->opens += (uint32_t)delta;
	pthread_mutex_unlock(&t->mu);
}

/* Whether n may be named to the kernel for forgetting: known to the kernel
 * by id and by its name (not replaced by a rename or a kind change), in a
 * directory the kernel knows, not open, not kept by the caller. *parent:
 * the directory's nodeid. Caller holds mu. */
static bool evictable(struct node *n, fuse_ino_t *parent,
		      bool (*keep)(const char *path, void *arg), void *arg)
{
	const struct node *p = n->parent;
	if (n->opens || (n->flags & (NODE_F_HASHED | NODE_F_BY_ID)) !=
			(NODE_F_HASHED | NODE_F_BY_ID))
		return false;
	if (p->parent && !(p->flags & NODE_F_BY_ID))
		return false; /* the kernel has no such directory either */
	if (keep) {
		char path[NODE_PATH_MAX];
		if (node_path_locked(n, path, sizeof path) < 0 || keep(path, arg))
			return false;
	}
	*parent = p->id;
	return true;
}

size_t nodes_pick_victims(struct nodes *t, struct node_victim *v, size_t max,
			  bool (*keep)(const char *path, void *arg), void *arg)
{
	size_t k = 0;
	pthread_mutex_lock(&t->mu);
	uint64_t low = t->budget - t->budget / 8;
	uint64_t left = t->bytes > t->budget ? t->bytes : 0; /* under it: none */
	/* Each node is looked at once a round: a picked or kept one goes to
	 * the most recently used end, so one the kernel cannot drop (busy,
	 * someone's cwd) does not come back until the others had their turn. */
	size_t todo = t->count; /* the list holds all but the root */
	while (t->budget && left > low && k < max && todo-- && t->lru->lru_next != t->lru) {
		struct node *n = t->lru->lru_next;
		node_lru_unlink(n);
		node_lru_push(t, n);
		fuse_ino_t parent;
		if (!evictable(n, &parent, keep, arg))
			continue;
		v[k].name = strdup(n->name);
		if (!v[k].name)
			break;
		v[k].parent = parent;
		v[k].id = n->id;
		uint32_t cost = node_cost(n);
		left = left > cost ? left - cost : 0;
		k++;
	}
	t->asked += k;
	pthread_mutex_unlock(&t->mu);
	return k;
}
