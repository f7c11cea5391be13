/* node_int.h — what the files of the inode table share (node.c: the
 * table and the nodes' lifetime; node_path.c: paths built on demand;
 * node_bound.c: the memory bound). Not for the rest of fs/: mount.h is the
 * table's manual. Every function here wants t->mu held. */
#ifndef REGFS_FS_NODE_INT_H
#define REGFS_FS_NODE_INT_H

#include "mount.h"

#define FNV_BASIS 1469598103934665603ULL

enum {
	NODE_F_NAME_OWN = 1, /* name malloc'd apart (a rename's) */
	NODE_F_ARG_OWN = 2,  /* arg malloc'd apart */
	NODE_F_HASHED = 4,   /* on by_name: found by (parent, name) */
	NODE_F_BY_ID = 8,    /* on by_id: the kernel may name it */
	NODE_F_BURIED = 16,  /* has strings on the table's graveyard */
};

/* Strings a rename replaced, kept until their node is freed: readers use
 * n->name / n->arg without the table lock. Renames are rare (mv of a tag). */
struct graveyard {
	const struct node *owner;
	char *s;
	struct graveyard *next;
};

struct nodes {
	pthread_mutex_t mu;
	struct node **by_id, **by_name;
	size_t nbuckets, count; /* count: the root excluded */
	fuse_ino_t next_id;
	struct node *root;
	/* The memory bound (see mount.h): every node but the root on one list,
	 * least recently used first; bytes is the sum of their costs. */
	struct node *lru;        /* sentinel: lru->lru_next is the oldest */
	uint64_t bytes, budget;  /* budget 0: unbounded */
	uint64_t asked;          /* nodes picked for the kernel to forget */
	pthread_cond_t pressure; /* signalled when bytes pass the budget */
	struct graveyard *graves;
};

/* FNV-1a from h over l bytes of s (node_path.c). */
uint64_t node_fnv_add(uint64_t h, const char *s, size_t l);
/* What n counts for in t->bytes (node.c). */
uint32_t node_cost(const struct node *n);
/* The least recently used order (node.c). */
void node_lru_unlink(struct node *n);
void node_lru_push(struct nodes *t, struct node *n);
/* n's path into buf: its length, or -ENAMETOOLONG (node_path.c). */
int node_path_locked(const struct node *n, char *buf, size_t size);

#endif
