/* strvec.h — a growable array of malloc'd strings (names listed from a
 * registry or a storage directory, arguments being assembled).
 *
 * Invariants: v[0..n) are strings the vector owns; when v is not NULL,
 * v[n] is NULL, so v can be passed where an argv-style list is expected.
 * An empty vector may have v == NULL: loop with `for (i = 0; i < sv.n; i++)`.
 *
 * Ownership: the vector owns v and every string in it. strvec_push copies;
 * strvec_push_take adopts a string the caller allocated; strvec_take hands the
 * whole array to the caller; strvec_clear frees everything.
 *
 * Errors: -ENOMEM; a failed call leaves the vector as it was (see
 * strvec_push_take for what happens to its argument). Not thread-safe. */
#ifndef REGFS_STRVEC_H
#define REGFS_STRVEC_H

#include <stddef.h>

struct strvec {
	char **v;     /* NULL-terminated when not NULL */
	size_t n;     /* strings held */
	size_t alloc; /* slots allocated at v (n + 1 <= alloc) */
};

#define STRVEC_INIT { NULL, 0, 0 }

/* Make `sv` empty; allocates nothing and frees nothing. */
void strvec_init(struct strvec *sv);

/* Append a copy of `s`. 0 or -ENOMEM. */
int strvec_push(struct strvec *sv, const char *s);

/* Append `s` itself (malloc'd by the caller); the vector now owns it. On
 * failure `s` is freed, so `strvec_push_take(&sv, xasprintf(...))` leaks
 * nothing; a NULL `s` (a failed allocation upstream) gives -ENOMEM. */
int strvec_push_take(struct strvec *sv, char *s);

/* Sort the strings in strcmp order. */
void strvec_sort(struct strvec *sv);

/* Drop (and free) each string equal to the one before it; after strvec_sort
 * this leaves each string once. */
void strvec_uniq(struct strvec *sv);

/* Free every string and the array; the vector is empty and reusable. */
void strvec_clear(struct strvec *sv);

/* Hand the array to the caller: returns v (NULL-terminated; NULL when the
 * vector never held anything), sets *n (n may be NULL) to the count, and
 * leaves the vector empty. The caller frees each string and the array. */
char **strvec_take(struct strvec *sv, size_t *n);

#endif
