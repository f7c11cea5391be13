/* hash.h — the one non-cryptographic hash of the tree: 64-bit FNV-1a, for
 * hash-table slots and change detection (names, digests, paths).
 *
 * Not for anything an attacker should not be able to collide: content
 * identity is the digest (digest.h). The values are stable across runs and
 * machines, so they may be stored; the functions are inline because they sit
 * on lookup paths. None can fail. */
#ifndef REGFS_HASH_H
#define REGFS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a offset basis: the hash of nothing, where a running hash starts. */
#define REGFS_FNV1A64_INIT 14695981039346656037ULL
#define REGFS_FNV1A64_PRIME 1099511628211ULL

/* Continue the running hash `h` over `n` bytes at `p` (p may be NULL when n
 * is 0): regfs_fnv1a64_add(regfs_fnv1a64(a, na), b, nb) equals the hash of a
 * and b concatenated. */
static inline uint64_t regfs_fnv1a64_add(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * REGFS_FNV1A64_PRIME;
	return h;
}

/* The hash of `n` bytes at `p`. */
static inline uint64_t regfs_fnv1a64(const void *p, size_t n)
{
	return regfs_fnv1a64_add(REGFS_FNV1A64_INIT, p, n);
}

/* The hash of the string `s` (its NUL not included). */
static inline uint64_t regfs_fnv1a64_str(const char *s)
{
	uint64_t h = REGFS_FNV1A64_INIT;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * REGFS_FNV1A64_PRIME;
	return h;
}

#endif
