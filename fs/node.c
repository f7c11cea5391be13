/* node.c — the inode table of the mount.
 *
 * Every node is reachable by its FUSE nodeid and by (its directory's node,
 * its name), so that looking a name up twice returns the same node (the
 * kernel relies on that) while the node is alive. A node stores its name
 * and its parent, never its path: paths are built on demand (nodes_path),
 * and a rename moves one node, its descendants following. Nodeids are a
 * counter: a forgotten node that is looked up again gets a fresh nodeid,
 * which the kernel handles like any new inode. What `stat` reports as st_ino
 * is not the nodeid: blobs report regfs_digest_ino(digest) (so du counts
 * each blob once across repositories) and everything else a hash of its
 * path (stable across remounts, computed from the components: nodes_ino);
 * see fs/tree/kind.c.
 *
 * Lifetime follows the kernel's lookup count: every reply that hands a node
 * to the kernel (lookup, readdirplus entry) adds one, forget subtracts; at
 * zero the node leaves the kernel's view and is freed, unless child nodes
 * still name it as their parent (kids): then it stays, unreachable, until
 * the last of them goes, so that a child's path never leads through freed
 * memory. The kernel forgets children before their directory; a node held
 * by nodes_ref_by_path, or renamed into another directory, may outlive its
 * old directory's lookups. The root is never freed. One mutex guards the
 * table, and every node's parent and kids; see mount.h for what a caller
 * may read without it. */
#include "node_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

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
	uint64_t h = node_fnv_add(FNV_BASIS, s, strlen(s));
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


/* ---- media types ----
 * A handful of distinct strings over 100k nodes: each is stored once for
 * the life of the process and a node keeps its 16-bit index (0: none).
 * Written under mt_mu before an index is handed out; read without a lock
 * (a node's index is published under the table lock). */
#define MT_MAX 65535
static pthread_mutex_t mt_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *mt_tab[MT_MAX + 1];
static size_t mt_n;

static uint16_t mt_index(const char *s)
{
	if (!s)
		return 0;
	uint16_t ix = 0;
	pthread_mutex_lock(&mt_mu);
	for (size_t i = 1; i <= mt_n && !ix; i++)
		if (strcmp(mt_tab[i], s) == 0)
			ix = (uint16_t)i;
	if (!ix && mt_n < MT_MAX && (mt_tab[mt_n + 1] = strdup(s)))
		ix = (uint16_t)++mt_n;
	bool full = !ix && mt_n == MT_MAX;
	pthread_mutex_unlock(&mt_mu);
	if (full)
		log_warn("nodes: more than %d distinct media types: %s is not shown as "
			 "user.regfs.mediatype", MT_MAX, s);
	return ix;
}

const char *node_mediatype(const struct node *n)
{
	return n->mt ? mt_tab[n->mt] : NULL;
}

/* ---- what a node costs ----
 * glibc's chunk for a request: the request and an 8-byte header, rounded
 * up to 16, at least 32 (malloc_usable_size is the chunk less 8). */
static size_t chunk(size_t req)
{
	size_t c = (req + 8 + 15) & ~(size_t)15;
	return c < 32 ? 32 : c;
}

/* What a node costs in memory, as nodes_usage counts it: its allocation
 * (the struct and the name it holds), the strings it owns apart, and its
 * share of the two hash tables (a bucket pointer each: between 1/2 and 2
 * nodes a bucket). Shared strings (repo, digest, media type) are not
 * counted per node. A function of the node's current strings: the same on
 * the way in and out; a rename takes it out before and adds it after. */
uint32_t node_cost(const struct node *n)
{
	size_t c = chunk(offsetof(struct node, inl) + strlen(n->inl) + 1) + 2 * sizeof(void *);
	if (n->flags & NODE_F_NAME_OWN)
		c += chunk(strlen(n->name) + 1);
	if (n->flags & NODE_F_ARG_OWN)
		c += chunk(strlen(n->arg) + 1);
	return (uint32_t)c;
}

/* Caller holds mu (for the lru list: every node but the root). */
void node_lru_unlink(struct node *n)
{
	if (!n->lru_next)
		return;
	n->lru_prev->lru_next = n->lru_next;
	n->lru_next->lru_prev = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
}

void node_lru_push(struct nodes *t, struct node *n)
{
	n->lru_prev = t->lru->lru_prev;
	n->lru_next = t->lru;
	t->lru->lru_prev->lru_next = n;
	t->lru->lru_prev = n;
}

/* n was just used: it becomes the most recently used. Caller holds mu. */
static void lru_touch(struct nodes *t, struct node *n)
{
	if (n == t->root || !n->lru_next || t->lru->lru_prev == n)
		return;
	node_lru_unlink(n);
	node_lru_push(t, n);
}

/* A node enters the table (or its strings changed): counted, and the
 * reaper woken past the budget. Caller holds mu. */
static void account_add(struct nodes *t, struct node *n)
{
	t->bytes += node_cost(n);
	if (t->budget && t->bytes > t->budget)
		pthread_cond_signal(&t->pressure);
}

/* Frees n and what it owns (its graveyard strings are the table's). */
static void node_free(struct node *n)
{
	if (n->flags & NODE_F_NAME_OWN)
		free((char *)n->name);
	if (n->flags & NODE_F_ARG_OWN)
		free((char *)n->arg);
	pool_put(n->repo);
	pool_put(n->digest);
	if (n->priv && kind_ops[n->kind]->priv_free)
		kind_ops[n->kind]->priv_free(n->priv);
	free(n);
}

/* ---- the two hash tables ---- */

static size_t name_bucket(const struct nodes *t, const struct node *parent, const char *name,
			  size_t len)
{
	uint64_t h = node_fnv_add(FNV_BASIS, name, len) ^ (parent->id * 0x9E3779B97F4A7C15ULL);
	return (size_t)(h % t->nbuckets);
}

static void hash_name(struct nodes *t, struct node *n)
{
	size_t b = name_bucket(t, n->parent, n->name, strlen(n->name));
	n->next_name = t->by_name[b];
	t->by_name[b] = n;
	n->flags |= NODE_F_HASHED;
}

static void unhash_name(struct nodes *t, struct node *n)
{
	if (!(n->flags & NODE_F_HASHED))
		return;
	size_t b = name_bucket(t, n->parent, n->name, strlen(n->name));
	for (struct node **pp = &t->by_name[b]; *pp; pp = &(*pp)->next_name)
		if (*pp == n) {
			*pp = n->next_name;
			break;
		}
	n->next_name = NULL;
	n->flags &= (uint8_t)~NODE_F_HASHED;
}

static void unhash_id(struct nodes *t, struct node *n)
{
	if (!(n->flags & NODE_F_BY_ID))
		return;
	for (struct node **pp = &t->by_id[n->id % t->nbuckets]; *pp; pp = &(*pp)->next_id)
		if (*pp == n) {
			*pp = n->next_id;
			break;
		}
	n->next_id = NULL;
	n->flags &= (uint8_t)~NODE_F_BY_ID;
}

/* The child `name` (len bytes) of parent, NULL if none. Caller holds mu. */
static struct node *find_child(const struct nodes *t, const struct node *parent,
			       const char *name, size_t len)
{
	for (struct node *n = t->by_name[name_bucket(t, parent, name, len)]; n; n = n->next_name)
		if (n->parent == parent && strncmp(n->name, name, len) == 0 && !n->name[len])
			return n;
	return NULL;
}

/* Doubles the buckets when the table gets dense (keeps chains short with
 * 100k+ nodes after a du of a large registry). Caller holds mu. */
static void maybe_grow(struct nodes *t)
{
	if (t->count < t->nbuckets * 2)
		return;
	size_t nb = t->nbuckets * 4, ob = t->nbuckets;
	struct node **bi = calloc(nb, sizeof *bi), **bn = calloc(nb, sizeof *bn);
	if (!bi || !bn) {
		free(bi);
		free(bn);
		return; /* keep the old, slower table */
	}
	struct node **oi = t->by_id, **on = t->by_name;
	t->by_id = bi;
	t->by_name = bn;
	t->nbuckets = nb;
	for (size_t i = 0; i < ob; i++) {
		for (struct node *n = oi[i], *nx; n; n = nx) {
			nx = n->next_id;
			n->next_id = bi[n->id % nb];
			bi[n->id % nb] = n;
		}
		for (struct node *n = on[i], *nx; n; n = nx) {
			nx = n->next_name;
			hash_name(t, n);
		}
	}
	free(oi);
	free(on);
}

/* Keeps `s` alive until n is freed (see struct graveyard). Caller holds mu. */
static void bury(struct nodes *t, struct node *n, const char *s)
{
	struct graveyard *g = malloc(sizeof *g);
	if (!g)
		return; /* leak rather than free under a reader */
	*g = (struct graveyard){n, (char *)s, t->graves};
	t->graves = g;
	n->flags |= NODE_F_BURIED;
}

/* What forgets and renames free: the nodes and their buried strings,
 * collected under mu and freed after it. */
struct dead {
	struct node *nodes;   /* linked by next_id */
	struct graveyard *graves;
};

static void dead_free(struct dead *d)
{
	for (struct node *n = d->nodes, *nx; n; n = nx) {
		nx = n->next_id;
		node_free(n);
	}
	for (struct graveyard *g = d->graves, *nx; g; g = nx) {
		nx = g->next;
		free(g->s);
		free(g);
	}
}

/* n leaves the table if nothing keeps it any more: the kernel forgot it
 * (not by id) and no child names it; then its parent may follow. Caller
 * holds mu. */
static void reap(struct nodes *t, struct node *n, struct dead *d)
{
	while (n && n != t->root && !(n->flags & NODE_F_BY_ID) && !n->kids) {
		struct node *p = n->parent;
		unhash_name(t, n);
		node_lru_unlink(n);
		t->bytes -= node_cost(n);
		t->count--;
		if (n->flags & NODE_F_BURIED) {
			for (struct graveyard **gp = &t->graves; *gp;) {
				struct graveyard *g = *gp;
				if (g->owner != n) {
					gp = &g->next;
					continue;
				}
				*gp = g->next;
				g->next = d->graves;
				d->graves = g;
			}
		}
		n->next_id = d->nodes;
		d->nodes = n;
		p->kids--;
		n = p;
	}
}

/* ---- the table ---- */

struct nodes *nodes_new(void)
{
	struct nodes *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->pressure, NULL);
	t->nbuckets = 1024;
	t->by_id = calloc(t->nbuckets, sizeof *t->by_id);
	t->by_name = calloc(t->nbuckets, sizeof *t->by_name);
	t->root = calloc(1, sizeof *t->root + 1);
	t->lru = calloc(1, sizeof *t->lru);
	if (!t->by_id || !t->by_name || !t->root || !t->lru) {
		nodes_free(t);
		return NULL;
	}
	t->lru->lru_next = t->lru->lru_prev = t->lru;
	t->root->name = t->root->inl; /* "" */
	t->root->digest = "";
	t->root->id = FUSE_ROOT_ID;
	t->root->kind = K_ROOT;
	t->root->nlookup = 1;
	t->next_id = FUSE_ROOT_ID + 1;
	return t;
}

void nodes_free(struct nodes *t)
{
	if (!t)
		return;
	if (t->lru) {
		for (struct node *n = t->lru->lru_next, *nx; n != t->lru; n = nx) {
			nx = n->lru_next;
			node_free(n);
		}
	}
	struct dead d = {NULL, t->graves};
	dead_free(&d);
	if (t->root)
		node_free(t->root);
	free(t->lru);
	free(t->by_id);
	free(t->by_name);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->pressure);
	free(t);
}

struct node *nodes_root(struct nodes *t)
{
	return t->root;
}

/* The node at path (components from the root), NULL if none or if the
 * kernel forgot it (kept only for its children's paths: the walk goes
 * through such nodes). Caller holds mu. */
static struct node *find_path(const struct nodes *t, const char *path, size_t len)
{
	struct node *n = t->root;
	size_t i = 0;
	while (n && i < len) {
		const char *c = path + i, *slash = memchr(c, '/', len - i);
		size_t l = slash ? (size_t)(slash - c) : len - i;
		if (!l)
			return NULL; /* "a//b", "/a", "a/" */
		n = find_child(t, n, c, l);
		i += l + (slash ? 1 : 0);
		if (slash && i == len)
			return NULL; /* trailing '/' */
	}
	return n && (n == t->root || (n->flags & NODE_F_BY_ID)) ? n : NULL;
}

struct node *nodes_by_path(struct nodes *t, const char *path)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find_path(t, path, strlen(path));
	pthread_mutex_unlock(&t->mu);
	return n;
}

struct node *nodes_ref_by_path(struct nodes *t, const char *path)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find_path(t, path, strlen(path));
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* A new node for c, its name in the same allocation (or the shared digest
 * when the name is the digest, as a manifest directory's is), its arg the
 * name when equal (a tag's), not in the table yet. NULL when out of memory. */
static struct node *node_make(struct child *c)
{
	bool is_digest = c->digest[0] && strcmp(c->name, c->digest) == 0;
	size_t ln = is_digest ? 0 : strlen(c->name);
	struct node *n = calloc(1, offsetof(struct node, inl) + ln + 1);
	if (!n)
		return NULL;
	memcpy(n->inl, c->name, ln);
	n->repo = pool_get(c->repo);
	n->digest = c->digest[0] ? pool_get(c->digest) : "";
	if ((c->repo && !n->repo) || !n->digest) {
		node_free(n);
		return NULL;
	}
	n->name = is_digest ? n->digest : n->inl;
	if (c->arg && strcmp(c->arg, n->name) == 0) {
		n->arg = n->name;
	} else if (c->arg && !c->arg[0]) {
		n->arg = "";
	} else if (c->arg) {
		if (!(n->arg = strdup(c->arg))) {
			node_free(n);
			return NULL;
		}
		n->flags |= NODE_F_ARG_OWN;
	}
	n->kind = (uint8_t)c->kind;
	n->size = c->size;
	n->mt = mt_index(c->mediatype);
	return n;
}

/* The existing node for c, with nlookup more lookups, or NULL (none, of
 * another kind, or forgotten by the kernel: a new node takes its name with
 * a fresh nodeid). Caller holds mu. */
static struct node *found(struct nodes *t, struct node *n, const struct child *c,
			  uint64_t nlookup)
{
	if (!n || n->kind != c->kind || !(n->flags & NODE_F_BY_ID))
		return NULL;
	n->nlookup += nlookup;
	lru_touch(t, n);
	return n;
}

struct node *nodes_get(struct nodes *t, struct node *parent, struct child *c,
		       uint64_t nlookup)
{
	size_t ln = strlen(c->name);
	pthread_mutex_lock(&t->mu);
	struct node *n = found(t, find_child(t, parent, c->name, ln), c, nlookup);
	pthread_mutex_unlock(&t->mu);
	if (n)
		return n; /* the common case: nothing allocated */
	struct node *fresh = node_make(c);
	if (!fresh)
		return NULL;
	pthread_mutex_lock(&t->mu);
	struct node *old = find_child(t, parent, c->name, ln);
	if ((n = found(t, old, c, nlookup))) { /* made meanwhile */
		pthread_mutex_unlock(&t->mu);
		node_free(fresh);
		return n;
	}
	/* A node whose kind changed (a namespace became a repository...) makes
	 * way: unhashed from the names, it stays reachable by id until the
	 * kernel forgets it. So does one the kernel forgot that is kept for
	 * its children's paths. */
	if (old)
		unhash_name(t, old);
	n = fresh;
	n->parent = parent;
	parent->kids++;
	n->priv = c->priv; /* handed over */
	c->priv = NULL;
	n->id = t->next_id++;
	n->nlookup = nlookup;
	t->count++;
	maybe_grow(t);
	n->next_id = t->by_id[n->id % t->nbuckets];
	t->by_id[n->id % t->nbuckets] = n;
	n->flags |= NODE_F_BY_ID;
	hash_name(t, n);
	node_lru_push(t, n);
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
	struct dead d = {0};
	pthread_mutex_lock(&t->mu);
	struct node *n = t->by_id[id % t->nbuckets];
	while (n && n->id != id)
		n = n->next_id;
	if (n) {
		n->nlookup = n->nlookup > k ? n->nlookup - k : 0;
		if (!n->nlookup) {
			unhash_id(t, n);
			reap(t, n, &d); /* or kept, still hashed, for its children's paths */
		}
	}
	pthread_mutex_unlock(&t->mu);
	dead_free(&d);
}

/* ---- renames ---- */

/* nodes_move with the new strings made (taken over: freed on failure).
 * Caller holds mu. */
static int move_locked(struct nodes *t, struct node *p, const char *name, struct node *np,
		       char *nn, char *na, struct dead *d)
{
	struct node *n = p && np ? find_child(t, p, name, strlen(name)) : NULL;
	int rc = n && (n->flags & NODE_F_BY_ID) ? 0 : -ENOENT;
	for (const struct node *x = np; rc == 0 && x; x = x->parent)
		if (x == n)
			rc = -EINVAL; /* into itself: its path would never end */
	if (rc) {
		free(nn);
		free(na);
		return rc;
	}
	struct node *victim = find_child(t, np, nn, strlen(nn));
	if (victim && victim != n)
		unhash_name(t, victim); /* replaced: the kernel drops it */
	t->bytes -= node_cost(n);
	unhash_name(t, n);
	if (n->flags & NODE_F_NAME_OWN)
		bury(t, n, n->name);
	n->name = nn;
	n->flags |= NODE_F_NAME_OWN;
	if (na) {
		if (n->flags & NODE_F_ARG_OWN)
			bury(t, n, n->arg);
		n->arg = na;
		n->flags |= NODE_F_ARG_OWN;
	}
	struct node *old = n->parent;
	n->parent = np;
	np->kids++;
	old->kids--;
	hash_name(t, n);
	account_add(t, n);
	reap(t, old, d); /* a directory the kernel forgot, kept for n alone */
	return 0;
}

/* The strings of a move: 0 or -ENOMEM. */
static int move_strings(const char *newname, const char *new_arg, char **nn, char **na)
{
	*nn = strdup(newname);
	*na = new_arg ? strdup(new_arg) : NULL;
	if (*nn && (!new_arg || *na))
		return 0;
	free(*nn);
	free(*na);
	return -ENOMEM;
}

int nodes_move(struct nodes *t, struct node *p, const char *name, struct node *np,
	       const char *newname, const char *new_arg)
{
	char *nn, *na;
	if (move_strings(newname, new_arg, &nn, &na))
		return -ENOMEM;
	struct dead d = {0};
	pthread_mutex_lock(&t->mu);
	int rc = move_locked(t, p, name, np, nn, na, &d);
	pthread_mutex_unlock(&t->mu);
	dead_free(&d);
	return rc;
}

/* The directory part of path (len into *dl) and its last component. */
static const char *split_last(const char *path, size_t *dl)
{
	const char *slash = strrchr(path, '/');
	*dl = slash ? (size_t)(slash - path) : 0;
	return slash ? slash + 1 : path;
}

int nodes_rename(struct nodes *t, const char *old_path, const char *new_path, const char *new_arg)
{
	size_t ol, nl;
	const char *name = split_last(old_path, &ol), *newname = split_last(new_path, &nl);
	char *nn, *na;
	if (move_strings(newname, new_arg, &nn, &na))
		return -ENOMEM;
	struct dead d = {0};
	pthread_mutex_lock(&t->mu);
	int rc = move_locked(t, find_path(t, old_path, ol), name, find_path(t, new_path, nl), nn,
			     na, &d);
	pthread_mutex_unlock(&t->mu);
	dead_free(&d);
	return rc;
}
