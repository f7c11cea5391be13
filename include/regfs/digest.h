/* digest.h — content digests ("sha256:<64 hex>", "sha512:<128 hex>") and
 * streaming hashers (OpenSSL EVP, so hardware SHA extensions are used).
 *
 * Digest strings are validated per the OCI image spec: algorithm sha256 or
 * sha512, lowercase hex of exactly the right length. Anything else is -EINVAL. */
#ifndef REGFS_DIGEST_H
#define REGFS_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <regfs/err.h>

#define REGFS_DIGEST_MAX 136 /* "sha512:" + 128 hex + NUL, rounded up */

enum regfs_digest_alg { REGFS_SHA256 = 0, REGFS_SHA512 = 1 };

/* 0 when `s` is a valid digest; fills *alg and *hex (pointer into s) if non-NULL.
 * -EINVAL (with a message naming the digest) otherwise. */
int regfs_digest_parse(const char *s, enum regfs_digest_alg *alg, const char **hex,
		       struct regfs_err *err);
bool regfs_digest_valid(const char *s);
const char *regfs_digest_alg_name(enum regfs_digest_alg alg); /* "sha256" */

/* Streaming hasher. _new returns NULL only on allocation failure. */
struct regfs_hasher;
struct regfs_hasher *regfs_hasher_new(enum regfs_digest_alg alg);
void regfs_hasher_update(struct regfs_hasher *h, const void *buf, size_t len);
/* Writes "alg:hex" into out (REGFS_DIGEST_MAX bytes). The hasher may not be
 * updated afterwards (free it). */
void regfs_hasher_final(struct regfs_hasher *h, char out[REGFS_DIGEST_MAX]);
/* Copies the running state (for "what is the digest so far" without ending it). */
struct regfs_hasher *regfs_hasher_dup(const struct regfs_hasher *h);
void regfs_hasher_free(struct regfs_hasher *h);

/* Lowercase hex of in[0..n) into out (2n + 1 bytes, NUL-terminated), as
 * digests and SigV4 spell their hashes. */
void regfs_hex_lower(const unsigned char *in, size_t n, char *out);

/* One-shot: digest of a buffer. */
void regfs_digest_buf(enum regfs_digest_alg alg, const void *buf, size_t len,
		      char out[REGFS_DIGEST_MAX]);

/* 64-bit inode-style number derived from a digest's hex (first 16 hex digits),
 * never 0 or 1. Identical for the same digest everywhere. */
unsigned long long regfs_digest_ino(const char *digest);

#endif
