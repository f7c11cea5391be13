/* node_path.c — the paths of the mount's nodes, built on demand: a node
 * keeps its name and its parent (node.c), and whoever needs a path (a
 * message, a keep() of the memory bound, a listing's st_ino) builds it
 * here, under the table lock, from the components. st_ino is FNV-1a of the
 * path: computed from the components, it needs no buffer and has no length
 * limit. */
#include "node_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

uint64_t node_fnv_add(uint64_t h, const char *s, size_t l)
{
	for (size_t i = 0; i < l; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* FNV-1a with this file's own offset basis, not regfs_fnv1a64: st_ino is
 * a hash of the path (path_hash_ino) and must stay the number every earlier
 * version of the mount reported for the same path. */
static uint64_t fnv(const char *s)
{
	return node_fnv_add(FNV_BASIS, s, strlen(s));
}

/* n's path into buf: its length, or -ENAMETOOLONG. Caller holds mu. */
int node_path_locked(const struct node *n, char *buf, size_t size)
{
	size_t len = 0;
	for (const struct node *x = n; x->parent; x = x->parent)
		len += strlen(x->name) + (x->parent->parent ? 1 : 0);
	if (len >= size || len > INT32_MAX) {
		size_t l = strlen(n->name);
		snprintf(buf, size, "%s", l < size ? n->name : "");
		return -ENAMETOOLONG;
	}
	buf[len] = 0;
	size_t end = len;
	for (const struct node *x = n; x->parent; x = x->parent) {
		size_t l = strlen(x->name);
		end -= l;
		memcpy(buf + end, x->name, l);
		if (x->parent->parent)
			buf[--end] = '/';
	}
	return (int)len;
}

int nodes_path(struct nodes *t, const struct node *n, char *buf, size_t size)
{
	if (!size)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&t->mu);
	int rc = node_path_locked(n, buf, size);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* FNV of n's path, component by component from the top (an array of the
 * ancestors for the usual depths; deeper, each found again from n: no
 * allocation, no limit). Caller holds mu. */
static uint64_t path_fnv(const struct node *n)
{
	enum { CHAIN = 64 };
	const struct node *chain[CHAIN];
	size_t depth = 0;
	for (const struct node *x = n; x->parent; x = x->parent)
		depth++;
	if (depth <= CHAIN) {
		size_t i = depth;
		for (const struct node *x = n; x->parent; x = x->parent)
			chain[--i] = x;
	}
	uint64_t h = FNV_BASIS;
	for (size_t i = 0; i < depth; i++) {
		const struct node *x = n;
		if (depth <= CHAIN)
			x = chain[i];
		else
			for (size_t up = depth - 1 - i; up; up--)
				x = x->parent;
		if (i)
			h = node_fnv_add(h, "/", 1);
		h = node_fnv_add(h, x->name, strlen(x->name));
	}
	return h;
}

uint64_t nodes_ino(struct nodes *t, const struct node *n, const char *name)
{
	pthread_mutex_lock(&t->mu);
	uint64_t h = path_fnv(n);
	if (name && n->parent)
		h = node_fnv_add(h, "/", 1);
	if (name)
		h = node_fnv_add(h, name, strlen(name));
	pthread_mutex_unlock(&t->mu);
	return h | (1ULL << 63);
}

uint64_t nodes_parent_ino(struct nodes *t, const struct node *n)
{
	pthread_mutex_lock(&t->mu);
	const struct node *p = n->parent;
	uint64_t ino = p && p->parent ? path_fnv(p) | (1ULL << 63) : FUSE_ROOT_ID;
	pthread_mutex_unlock(&t->mu);
	return ino;
}

size_t nodes_depth(struct nodes *t, const struct node *n)
{
	size_t d = 0;
	pthread_mutex_lock(&t->mu);
	for (const struct node *x = n; x->parent; x = x->parent)
		d++;
	pthread_mutex_unlock(&t->mu);
	return d;
}

const char *nodes_top(struct nodes *t, const struct node *n)
{
	pthread_mutex_lock(&t->mu);
	const struct node *x = n;
	while (x->parent && x->parent->parent)
		x = x->parent;
	const char *name = x->name;
	pthread_mutex_unlock(&t->mu);
	return name;
}

uint64_t path_hash_ino(const char *path)
{
	/* Keep clear of 0/1 (root) and of the small range; collisions with
	 * digest-derived inode numbers are as unlikely as any 64-bit collision. */
	return fnv(path) | (1ULL << 63);
}
