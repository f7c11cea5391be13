/* jwt.h — verification of registry bearer tokens (Docker token auth spec).
 *
 * A token is a compact JWS "header.claims.signature" (base64url). We accept
 * RS256 (RSA PKCS#1 v1.5, SHA-256, keys >= 2048 bits), ES256 (P-256, the
 * JWS r||s signature) and EdDSA (Ed25519); never "none" nor HS* (a shared
 * secret is not a public key), nor any alg outside the policy's list.
 *
 * The signing key is found, in this order:
 *   - "x5c": the certificate chain in the header, verified against the
 *     trusted root certificates (rootcertbundle); the leaf's key signs;
 *   - "jwk": a public key in the header, used only when it equals a
 *     trusted key (a root certificate's or a jwks entry's);
 *   - "kid": a jwks entry with that "kid", or a root certificate whose
 *     libtrust key ID (what distribution 2.x token servers put in kid) or
 *     RFC 7638 JWK thumbprint (newer ones) is it.
 *
 * Claims: "exp" is required, "nbf" optional, both with JWT_LEEWAY seconds of
 * clock skew; "iss" must equal the policy's issuer and "aud" (a string or an
 * array) must contain its service, when those are set; "access" is a list of
 * {type, name, actions} read by jwt_allows().
 *
 * Every refusal fills `why` with a reason a log line and a 401 description
 * can carry; the reason never contains the token nor its signature. Inputs
 * are bounded: JWT_MAX_TOKEN bytes, JWT_MAX_DEPTH levels of JSON nesting,
 * JWT_MAX_ACCESS access entries. Thread-safe: a jwt_keys is read-only once
 * loaded and may be shared by threads verifying at the same time. */
#ifndef REGFS_JWT_H
#define REGFS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "regfs/err.h"

#define JWT_MAX_TOKEN 8192
#define JWT_MAX_DEPTH 16
#define JWT_MAX_ACCESS 256
/* Clock skew allowed on exp and nbf, as distribution allows. */
#define JWT_LEEWAY 60

/* Actions of an access entry ("*" grants every action). */
enum {
	JWT_PULL = 1u << 0,
	JWT_PUSH = 1u << 1,
	JWT_DELETE = 1u << 2,
	JWT_ANY = 1u << 3, /* "*" */
};

/* The trusted keys. */
struct jwt_keys;

/* Loads rootcertbundle (PEM certificates; may be NULL) and jwks (a JSON Web
 * Key Set file {"keys":[…]} of RSA, EC P-256 and OKP Ed25519 public keys;
 * may be NULL). At least one key is required. 0, or -EINVAL/-ENOENT/-ENOMEM
 * with `err` naming the file and the problem. Free with jwt_keys_free(). */
int jwt_keys_load(struct jwt_keys **out, const char *rootcertbundle, const char *jwks,
		  struct regfs_err *err);
/* An empty set, for keys added with jwt_keys_add() (tests, fuzzing). */
struct jwt_keys *jwt_keys_new(void);
/* Trusts `pkey` under `kid` (may be NULL); takes a reference of its own. */
int jwt_keys_add(struct jwt_keys *k, const char *kid, EVP_PKEY *pkey);
void jwt_keys_free(struct jwt_keys *k);

/* The libtrust key ID of a public key ("ABCD:EFGH:…", 12 groups of 4),
 * written into out (at least 60 bytes). 0 or -EINVAL. */
int jwt_libtrust_kid(EVP_PKEY *pkey, char *out, size_t outlen);

/* The RFC 7638 JWK thumbprint of a public key (SHA-256, base64url, 43
 * characters) into out (at least 44 bytes). 0 or -EINVAL (not RSA, P-256
 * or Ed25519). */
int jwt_jwk_thumbprint(EVP_PKEY *pkey, char *out, size_t outlen);

/* What a token must satisfy. NULL/0 members are not checked (issuer,
 * service) or take the default (algs: all three; now: time(NULL)). */
struct jwt_policy {
	const char *issuer;
	const char *service;
	/* Allowed algs, separated by commas or spaces ("RS256,ES256"). */
	const char *algs;
	time_t now;
};

struct jwt_access {
	char *type;    /* "repository", "registry", … */
	char *name;    /* "team/app", "catalog" */
	unsigned actions; /* JWT_* bits; unknown actions are ignored */
};

/* A verified token. */
struct jwt_token {
	char alg[8];
	char sub[128];   /* "" when absent; cut at 127 bytes */
	time_t exp;
	size_t naccess;
	struct jwt_access *access;
};

/* Verifies `tok` (len bytes, not necessarily NUL-terminated). 0 and *out
 * (free with jwt_token_free) when the signature and the claims hold;
 * -EINVAL when the token is malformed, -EACCES when it is well formed but
 * refused (signature, key, alg, time, iss, aud), -ENOMEM; then `why`
 * (whylen bytes, may be 0) says why. */
int jwt_verify(const char *tok, size_t len, const struct jwt_keys *k, const struct jwt_policy *p,
	       struct jwt_token **out, char *why, size_t whylen);
void jwt_token_free(struct jwt_token *t);

/* True when the token grants every action of `actions` (JWT_* bits) on
 * type:name. Entries add up: pull from one entry and push from another
 * grant pull,push. */
bool jwt_allows(const struct jwt_token *t, const char *type, const char *name, unsigned actions);

/* "pull", "push", "delete", "*" → JWT_* bit; 0 when unknown. */
unsigned jwt_action_bit(const char *s, size_t n);

#endif
