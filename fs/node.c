/* node.c — the inode table of the mount.
 *
 * Every node is reachable by its FUSE nodeid and by its path inside the
 * mount, so that looking a name up twice returns the same node (the kernel
 * relies on that) while the node is alive. Nodeids are a counter: a forgotten
 * node that is looked up again gets a fresh nodeid, which the kernel handles
 * like any new inode. What `stat` reports as st_ino is not the nodeid: blobs
 * report regfs_digest_ino(digest) (so du counts each blob once across
 * repositories) and everything else a hash of its path (stable across
 * remounts); see fs/tree/kind.c.
 *
 * Lifetime follows the kernel's lookup count: every reply that hands a node to
 * the kernel (lookup, readdirplus entry) adds one, forget subtracts; at zero
 * the node is freed. The root is never freed. One mutex guards the table; the
 * node's own fields are immutable after creation, so callers may use a node
 * without the lock while the kernel holds a lookup on it. */
#include "mount.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct nodes {
	pthread_mutex_t mu;
	struct node **by_id, **by_path;
	size_t nbuckets, count;
	fuse_ino_t next_id;
	struct node *root;
	/* The memory bound (see mount.h): every node but the root on one list,
	 * least recently used first; bytes is the sum of their costs. */
	struct node lru;         /* sentinel: lru.lru_next is the oldest */
	uint64_t bytes, budget;  /* budget 0: unbounded */
	uint64_t asked;          /* nodes picked for the kernel to forget */
	pthread_cond_t pressure; /* signalled when bytes pass the budget */
};

struct graveyard {
	char *s;
	struct graveyard *next;
};

/* FNV-1a with this file's own offset basis, not regfs_fnv1a64: st_ino is
 * a hash of the path (path_hash_ino) and must stay the number every earlier
 * version of the mount reported for the same path. */
static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void child_clear(struct child *c)
{
	free(c->name);
	free(c->arg);
	free(c->mediatype);
	if (c->priv && (unsigned)c->kind < K__COUNT && kind_ops[c->kind]->priv_free)
		kind_ops[c->kind]->priv_free(c->priv);
	memset(c, 0, sizeof *c);
}

/* ---- shared strings ----
 * Repository names and digests repeat across nodes (every node of a
 * repository names it; a base layer's digest shows in every repository that
 * uses it): one refcounted copy each instead of a copy per node — after a du
 * of 1,000 x 10 that is ~20 MB less. A process-wide pool with its own lock
 * (one mount per process). */
struct pstr {
	struct pstr *next;
	uint64_t hash;
	size_t ref;
	char s[];
};
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pstr **pool;
static size_t pool_nb, pool_n;

static void pool_grow(void)
{
	size_t nb = pool_nb ? pool_nb * 2 : 4096;
	struct pstr **v = calloc(nb, sizeof *v);
	if (!v)
		return; /* keep the old, slower table */
	for (size_t i = 0; i < pool_nb; i++)
		for (struct pstr *p = pool[i], *nx; p; p = nx) {
			nx = p->next;
			p->next = v[p->hash % nb];
			v[p->hash % nb] = p;
		}
	free(pool);
	pool = v;
	pool_nb = nb;
}

/* Returns the shared copy of s (NULL for NULL, or on ENOMEM). */
static const char *pool_get(const char *s)
{
	if (!s)
		return NULL;
	uint64_t h = fnv(s);
	pthread_mutex_lock(&pool_mu);
	if (pool_n >= pool_nb)
		pool_grow();
	struct pstr *p = NULL;
	if (pool_nb) {
		for (p = pool[h % pool_nb]; p; p = p->next)
			if (p->hash == h && strcmp(p->s, s) == 0)
				break;
	}
	if (!p && pool_nb) {
		size_t l = strlen(s);
		p = malloc(sizeof *p + l + 1);
		if (p) {
			memcpy(p->s, s, l + 1);
			p->hash = h;
			p->ref = 0;
			p->next = pool[h % pool_nb];
			pool[h % pool_nb] = p;
			pool_n++;
		}
	}
	if (p)
		p->ref++;
	pthread_mutex_unlock(&pool_mu);
	return p ? p->s : NULL;
}

static void pool_put(const char *s)
{
	if (!s || !*s)
		return; /* NULL, or the root's static "" */
	struct pstr *p = (struct pstr *)(void *)(s - offsetof(struct pstr, s));
	pthread_mutex_lock(&pool_mu);
	if (--p->ref == 0) {
		for (struct pstr **pp = &pool[p->hash % pool_nb]; *pp; pp = &(*pp)->next)
			if (*pp == p) {
				*pp = p->next;
				break;
			}
		pool_n--;
		free(p);
	}
	pthread_mutex_unlock(&pool_mu);
}

/* What a node costs in memory, as nodes_usage counts it: the struct, its
 * strings and their allocator headers (16 bytes each with glibc), and its
 * share of the two hash tables (a pointer each, at most 2 nodes a bucket).
 * An estimate, but the same one on the way in and out. */
static uint32_t node_cost(const struct node *n)
{
	size_t c = sizeof *n + 16 + 2 * sizeof(void *);
	c += strlen(n->path) + 1 + (n->inl & NODE_INL_PATH ? 0 : 16);
	if (n->arg && !(n->inl & NODE_INL_ARG))
		c += strlen(n->arg) + 1 + 16;
	return (uint32_t)c;
}

/* Caller holds mu (for the lru list: every node but the root). */
static void lru_unlink(struct node *n)
{
	if (!n->lru_next)
		return;
	n->lru_prev->lru_next = n->lru_next;
	n->lru_next->lru_prev = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
}

static void lru_push(struct nodes *t, struct node *n)
{
	n->lru_prev = t->lru.lru_prev;
	n->lru_next = &t->lru;
	t->lru.lru_prev->lru_next = n;
	t->lru.lru_prev = n;
}

/* n was just used: it becomes the most recently used. Caller holds mu. */
static void lru_touch(struct nodes *t, struct node *n)
{
	if (n == t->root || !n->lru_next || t->lru.lru_prev == n)
		return;
	lru_unlink(n);
	lru_push(t, n);
}

/* A node enters the table (or its strings changed): counted, and the
 * reaper woken past the budget. Caller holds mu. */
static void account_add(struct nodes *t, struct node *n)
{
	n->cost = node_cost(n);
	t->bytes += n->cost;
	if (t->budget && t->bytes > t->budget)
		pthread_cond_signal(&t->pressure);
}

static void node_free(struct node *n)
{
	for (struct graveyard *g = n->old, *nx; g; g = nx) {
		nx = g->next;
		free(g->s);
		free(g);
	}
	if (!(n->inl & NODE_INL_PATH))
		free(n->path);
	pool_put(n->repo);
	pool_put(n->digest);
	if (!(n->inl & NODE_INL_ARG))
		free(n->arg);
	if (n->priv && kind_ops[n->kind]->priv_free)
		kind_ops[n->kind]->priv_free(n->priv);
	free(n);   /* mediatype is interned, never freed */
}

static void insert(struct nodes *t, struct node *n)
{
	size_t bi = n->id % t->nbuckets, bp = fnv(n->path) % t->nbuckets;
	n->next_id = t->by_id[bi];
	t->by_id[bi] = n;
	n->next_path = t->by_path[bp];
	t->by_path[bp] = n;
	t->count++;
}

/* Doubles the buckets when the table gets dense (keeps chains short with
 * 100k+ nodes after a du of a large registry). Caller holds mu. */
static void maybe_grow(struct nodes *t)
{
	if (t->count < t->nbuckets * 2)
		return;
	size_t nb = t->nbuckets * 4;
	struct node **bi = calloc(nb, sizeof *bi), **bp = calloc(nb, sizeof *bp);
	if (!bi || !bp) {
		free(bi);
		free(bp);
		return; /* keep the old, slower table */
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct node *n = t->by_id[i], *nx; n; n = nx) {
			nx = n->next_id;
			size_t k = n->id % nb;
			n->next_id = bi[k];
			bi[k] = n;
		}
		for (struct node *n = t->by_path[i], *nx; n; n = nx) {
			nx = n->next_path;
			size_t k = fnv(n->path) % nb;
			n->next_path = bp[k];
			bp[k] = n;
		}
	}
	free(t->by_id);
	free(t->by_path);
	t->by_id = bi;
	t->by_path = bp;
	t->nbuckets = nb;
}

struct nodes *nodes_new(void)
{
	struct nodes *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->pressure, NULL);
	t->lru.lru_next = t->lru.lru_prev = &t->lru;
	t->nbuckets = 1024;
	t->by_id = calloc(t->nbuckets, sizeof *t->by_id);
	t->by_path = calloc(t->nbuckets, sizeof *t->by_path);
	t->root = calloc(1, sizeof *t->root);
	if (!t->by_id || !t->by_path || !t->root || !(t->root->path = strdup(""))) {
		nodes_free(t);
		return NULL;
	}
	t->root->digest = "";
	t->root->id = FUSE_ROOT_ID;
	t->root->kind = K_ROOT;
	t->root->nlookup = 1;
	t->next_id = FUSE_ROOT_ID + 1;
	insert(t, t->root);
	return t;
}

void nodes_free(struct nodes *t)
{
	if (!t)
		return;
	if (t->by_id) {
		for (size_t i = 0; i < t->nbuckets; i++)
			for (struct node *n = t->by_id[i], *nx; n; n = nx) {
				nx = n->next_id;
				node_free(n);
			}
	} else if (t->root) {
		node_free(t->root);
	}
	free(t->by_id);
	free(t->by_path);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->pressure);
	free(t);
}

struct node *nodes_root(struct nodes *t)
{
	return t->root;
}

static struct node *find_path(struct nodes *t, const char *path)
{
	for (struct node *n = t->by_path[fnv(path) % t->nbuckets]; n; n = n->next_path)
		if (strcmp(n->path, path) == 0)
			return n;
	return NULL;
}

struct node *nodes_by_path(struct nodes *t, const char *path)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find_path(t, path);
	pthread_mutex_unlock(&t->mu);
	return n;
}

struct node *nodes_ref_by_path(struct nodes *t, const char *path)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find_path(t, path);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Media types repeat (a handful of distinct strings over 100k nodes):
 * keep one copy of each for the life of the process. Caller holds t->mu. */
static char *intern(const char *s)
{
	static char *tab[64];
	static size_t n;
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i], s) == 0)
			return tab[i];
	char *c = strdup(s);
	if (c && n < sizeof tab / sizeof *tab)
		tab[n++] = c;
	return c; /* past 64 distinct types: leaked once per node, still correct */
}

static void bury(struct node *n, char *s);

/* A new node for c at parent's path + "/" + c->name, its path in the same
 * allocation (and its arg too when it is the name or the whole path, as a
 * tag's or a directory's is), not in the table yet. NULL when out of
 * memory. */
static struct node *node_make(const struct node *parent, struct child *c)
{
	size_t lp = strlen(parent->path), ln = strlen(c->name);
	struct node *n = calloc(1, sizeof *n + lp + 1 + ln + 1);
	if (!n)
		return NULL;
	char *path = (char *)(n + 1), *name = path;
	if (lp) {
		memcpy(path, parent->path, lp);
		path[lp] = '/';
		name = path + lp + 1;
	}
	memcpy(name, c->name, ln + 1);
	n->path = path;
	n->inl = NODE_INL_PATH;
	if (c->arg && (strcmp(c->arg, name) == 0 || strcmp(c->arg, path) == 0)) {
		n->arg = strcmp(c->arg, name) == 0 ? name : path;
		n->inl |= NODE_INL_ARG;
	} else if (c->arg && !(n->arg = strdup(c->arg))) {
		free(n);
		return NULL;
	}
	n->kind = c->kind;
	n->repo = pool_get(c->repo);
	n->digest = c->digest[0] ? pool_get(c->digest) : "";
	if ((c->repo && !n->repo) || !n->digest) {
		pool_put(n->repo);
		pool_put(n->digest);
		if (!(n->inl & NODE_INL_ARG))
			free(n->arg);
		free(n);
		return NULL;
	}
	n->size = c->size;
	return n;
}

/* An existing node at n's path whose kind changed (a namespace became a
 * repository...) makes way for n: unhashed from the paths and renamed so
 * that find_path never matches it again; it stays reachable by id until the
 * kernel forgets it. Readers may hold its old path, which is kept, not
 * overwritten. Caller holds mu. */
static void make_way(struct nodes *t, struct node *old)
{
	size_t bp = fnv(old->path) % t->nbuckets;
	for (struct node **pp = &t->by_path[bp]; *pp; pp = &(*pp)->next_path)
		if (*pp == old) {
			*pp = old->next_path;
			break;
		}
	old->next_path = NULL;
	char *gone = malloc(strlen(old->path) + 2);
	if (!gone)
		return;
	gone[0] = '\x01';
	strcpy(gone + 1, old->path);
	bury(old, old->path);
	old->path = gone;
	old->inl &= ~NODE_INL_PATH;
	t->bytes -= old->cost;
	account_add(t, old);
}

struct node *nodes_get(struct nodes *t, struct node *parent, struct child *c,
		       uint64_t nlookup)
{
	/* made before taking the lock (and freed if the node exists) */
	struct node *fresh = node_make(parent, c);
	if (!fresh)
		return NULL;
	pthread_mutex_lock(&t->mu);
	struct node *n = find_path(t, fresh->path);
	if (n && n->kind == c->kind) {
		n->nlookup += nlookup;
		lru_touch(t, n);
		pthread_mutex_unlock(&t->mu);
		node_free(fresh);
		return n;
	}
	if (n)
		make_way(t, n);
	n = fresh;
	n->mediatype = intern(c->mediatype);
	n->priv = c->priv; /* handed over */
	c->priv = NULL;
	n->id = t->next_id++;
	n->nlookup = nlookup;
	maybe_grow(t);
	insert(t, n);
	lru_push(t, n);
	account_add(t, n);
	pthread_mutex_unlock(&t->mu);
	return n;
}

struct node *nodes_by_id(struct nodes *t, fuse_ino_t id)
{
	if (id == FUSE_ROOT_ID)
		return t->root;
	pthread_mutex_lock(&t->mu);
	struct node *n = t->by_id[id % t->nbuckets];
	while (n && n->id != id)
		n = n->next_id;
	if (n)
		lru_touch(t, n);
	pthread_mutex_unlock(&t->mu);
	return n;
}

void nodes_forget(struct nodes *t, fuse_ino_t id, uint64_t k)
{
	if (id == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&t->mu);
	struct node **pi = &t->by_id[id % t->nbuckets];
	while (*pi && (*pi)->id != id)
		pi = &(*pi)->next_id;
	struct node *n = *pi;
	if (!n) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	n->nlookup = n->nlookup > k ? n->nlookup - k : 0;
	if (n->nlookup) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	*pi = n->next_id;
	size_t bp = fnv(n->path) % t->nbuckets;
	for (struct node **pp = &t->by_path[bp]; *pp; pp = &(*pp)->next_path)
		if (*pp == n) {
			*pp = n->next_path;
			break;
		}
	t->count--;
	lru_unlink(n);
	t->bytes -= n->cost;
	pthread_mutex_unlock(&t->mu);
	node_free(n);
}

/* ---- the memory bound ---- */

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
	*u = (struct nodes_usage){.bytes = t->bytes, .budget = t->budget, .count = t->count - 1,
				  .asked = t->asked};
	pthread_mutex_unlock(&t->mu);
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

/* Whether n may be named to the kernel for forgetting: reachable by its
 * path (not replaced by a rename or a kind change), not open, not kept by
 * the caller. *parent: the directory's nodeid. Caller holds mu. */
static bool evictable(struct nodes *t, struct node *n, fuse_ino_t *parent,
		      bool (*keep)(const char *path, void *arg), void *arg)
{
	if (n->opens || find_path(t, n->path) != n || (keep && keep(n->path, arg)))
		return false;
	const char *slash = strrchr(n->path, '/');
	if (!slash) {
		*parent = FUSE_ROOT_ID;
		return true;
	}
	char dir[4096];
	if ((size_t)(slash - n->path) >= sizeof dir)
		return false;
	memcpy(dir, n->path, (size_t)(slash - n->path));
	dir[slash - n->path] = 0;
	struct node *p = find_path(t, dir);
	if (!p)
		return false; /* the kernel has no such directory either */
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
	size_t todo = t->count - 1; /* the list holds all but the root */
	while (t->budget && left > low && k < max && todo-- && t->lru.lru_next != &t->lru) {
		struct node *n = t->lru.lru_next;
		lru_unlink(n);
		lru_push(t, n);
		fuse_ino_t parent;
		if (!evictable(t, n, &parent, keep, arg))
			continue;
		const char *slash = strrchr(n->path, '/');
		v[k].name = strdup(slash ? slash + 1 : n->path);
		if (!v[k].name)
			break;
		v[k].parent = parent;
		v[k].id = n->id;
		left = left > n->cost ? left - n->cost : 0;
		k++;
	}
	t->asked += k;
	pthread_mutex_unlock(&t->mu);
	return k;
}

uint64_t path_hash_ino(const char *path)
{
	/* Keep clear of 0/1 (root) and of the small range; collisions with
	 * digest-derived inode numbers are as unlikely as any 64-bit collision. */
	uint64_t h = fnv(path) | (1ULL << 63);
	return h;
}

/* Keeps `s` alive until the node is freed: readers use n->path / n->arg
 * without the table lock, so a renamed node's old strings must not go away
 * under them. */
static void bury(struct node *n, char *s)
{
	if ((s == n->path && (n->inl & NODE_INL_PATH)) || (s == n->arg && (n->inl & NODE_INL_ARG)))
		return; /* in the node's own allocation (node_make): freed with it */
	struct graveyard *g = malloc(sizeof *g);
	if (!g)
		return; /* leak rather than free under a reader */
	g->s = s;
	g->next = n->old;
	n->old = g;
}

static void unhash_path(struct nodes *t, struct node *n)
{
	size_t bp = fnv(n->path) % t->nbuckets;
	for (struct node **pp = &t->by_path[bp]; *pp; pp = &(*pp)->next_path)
		if (*pp == n) {
			*pp = n->next_path;
			n->next_path = NULL;
			return;
		}
}

int nodes_rename(struct nodes *t, const char *old_path, const char *new_path, const char *new_arg)
{
	char *np = strdup(new_path), *na = new_arg ? strdup(new_arg) : NULL;
	if (!np || (new_arg && !na)) {
		free(np);
		free(na);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->mu);
	struct node *n = find_path(t, old_path), *victim = find_path(t, new_path);
	if (victim && victim != n)
		unhash_path(t, victim); /* replaced: the kernel drops it */
	if (!n) {
		pthread_mutex_unlock(&t->mu);
		free(np);
		free(na);
		return -ENOENT;
	}
	unhash_path(t, n);
	bury(n, n->path);
	n->path = np;
	n->inl &= ~NODE_INL_PATH;
	if (na) {
		bury(n, n->arg);
		n->arg = na;
		n->inl &= ~NODE_INL_ARG;
	}
	t->bytes -= n->cost;
	account_add(t, n);
	size_t bp = fnv(n->path) % t->nbuckets;
	n->next_path = t->by_path[bp];
	t->by_path[bp] = n;
	pthread_mutex_unlock(&t->mu);
	return 0;
}
