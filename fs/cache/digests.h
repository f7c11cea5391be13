/* digests.h — interned digests: "alg:hex" strings as dense ids (0, 1, …),
 * for tables with an entry per blob of a registry (the walk's set of counted
 * blobs, the accounting). A sha256 digest is kept as its 32 raw bytes
 * (33 bytes an entry with its kind, plus 8 of hash slots), not as a
 * 71-character string with a malloc header; any other spelling (sha512, or
 * anything not exactly "sha256:" + 64 lowercase hex) is kept as a copied
 * string, so every digest round-trips exactly.
 *
 * Not thread-safe: one owner. Errors: -ENOMEM. */
#ifndef REGFS_FS_CACHE_DIGESTS_H
#define REGFS_FS_CACHE_DIGESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/digest.h>

#define DIGTAB_NONE UINT32_MAX

/* A digest as a compact key, for tables of one entry per blob (the disk
 * cache's index, the layer views' notes): a sha256 digest in its exact
 * spelling ("sha256:" + 64 lowercase hex) is its 32 raw bytes, any other
 * string is kept as it is. digkey_len: the bytes the key of d takes
 * (32, or strlen(d) + 1); digkey_put writes them to out (that many bytes)
 * and returns whether they are raw. digkey_eq: does the key (raw or string)
 * stand for d; digkey_str: the digest back, exactly as it was spelled. */
size_t digkey_len(const char *d);
bool digkey_put(const char *d, uint8_t *out);
bool digkey_eq(const uint8_t *key, bool raw, const char *d);
/* Do two keys (each from digkey_put) stand for the same digest? For tables
 * that make the key of what they look up once, not once per comparison. */
bool digkey_same(const uint8_t *a, bool araw, const uint8_t *b, bool braw);
void digkey_str(const uint8_t *key, bool raw, char out[REGFS_DIGEST_MAX]);

struct digtab;

/* NULL when out of memory. */
struct digtab *digtab_new(void);
void digtab_free(struct digtab *t); /* NULL is fine */
/* The id of digest, added when new (*added says which, when not NULL).
 * 0 or -ENOMEM (the table is unchanged then). */
int digtab_intern(struct digtab *t, const char *digest, uint32_t *id, bool *added);
/* The id of digest, or DIGTAB_NONE. */
uint32_t digtab_find(const struct digtab *t, const char *digest);
/* id's digest as a string (id < digtab_count). */
void digtab_str(const struct digtab *t, uint32_t id, char out[REGFS_DIGEST_MAX]);
size_t digtab_count(const struct digtab *t);
/* Room for n entries (sha256 ones) made at once, so that a table whose size
 * is known ahead does not grow by doubling (up to twice the room, and the
 * old arrays beside the new while it grows). More than n still works.
 * 0 or -ENOMEM (the table is unchanged then). */
int digtab_reserve(struct digtab *t, size_t n);
/* Gives back the room kept for growth (a table that is done growing). */
void digtab_trim(struct digtab *t);
/* Bytes the table holds (its arrays and copied strings), for measuring. */
size_t digtab_bytes(const struct digtab *t);

#endif
