/* cmp.h — the qsort/bsearch comparators the tree keeps needing, and a qsort
 * that accepts an empty array.
 *
 * Every comparator takes pointers to array elements, as qsort passes them,
 * and returns <0, 0 or >0. None can fail.
 *
 * regfs_cmp_str sorts an array of `char *` in strcmp order. It also sorts an
 * array of structs whose FIRST member is the `char *` key (C guarantees that a
 * pointer to a struct, converted, points to its first member), so
 *     struct tag { char *name; char *digest; };
 * needs no comparator of its own. */
#ifndef REGFS_CMP_H
#define REGFS_CMP_H

#include <stddef.h>

/* Elements are `char *` (or structs starting with one); strcmp order. */
int regfs_cmp_str(const void *a, const void *b);

/* Elements are uint64_t / int64_t / size_t; ascending. */
int regfs_cmp_u64(const void *a, const void *b);
int regfs_cmp_i64(const void *a, const void *b);
int regfs_cmp_size(const void *a, const void *b);

/* Elements are pointers (`void *`), ordered by address: for grouping equal
 * pointers together, not for any meaningful order. */
int regfs_cmp_ptr(const void *a, const void *b);

/* qsort(base, n, size, cmp), except that n of 0 or 1 is a no-op: qsort with a
 * NULL base is undefined behaviour even when n is 0, and an empty list often
 * has a NULL array. */
void regfs_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
