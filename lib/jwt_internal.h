/* jwt_internal.h — what lib/jwt.c (tokens) and lib/jwt_keys.c (trusted keys)
 * share. Not installed. */
#ifndef REGFS_JWT_INTERNAL_H
#define REGFS_JWT_INTERNAL_H

#include <regfs/jwt.h>

#include <jansson.h>
#include <openssl/x509.h>
#include <sys/types.h>

struct jwt_key {
	char kid[128];
	EVP_PKEY *pkey;
};

struct jwt_keys {
	X509_STORE *store; /* the root certificates, for x5c chains */
	size_t nroots;
	struct jwt_key *v;
	size_t n, cap;
};

/* Decodes base64 (url: the base64url alphabet without padding, else the
 * standard one with optional padding) into out (at least 3*n/4+3 bytes).
 * Returns the decoded length or -1 on a character outside the alphabet. */
ssize_t jwt_b64dec(const char *s, size_t n, unsigned char *out, bool url);

/* A public key from a JWK object (RSA n/e, EC P-256 x/y, OKP Ed25519 x).
 * NULL with `why` filled when it is not one of those or malformed. */
EVP_PKEY *jwt_jwk_pkey(const json_t *jwk, char *why, size_t whylen);

/* The trusted key with that kid, or equal to pkey; NULL when none. */
EVP_PKEY *jwt_keys_by_kid(const struct jwt_keys *k, const char *kid);
EVP_PKEY *jwt_keys_equal(const struct jwt_keys *k, EVP_PKEY *pkey);

#endif
