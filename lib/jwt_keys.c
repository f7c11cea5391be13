/* jwt_keys.c — the keys a token may be signed with: root certificates (a
 * PEM bundle, also the trust anchors of x5c chains) and JSON Web Keys. */
#include "jwt_internal.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

struct jwt_keys *jwt_keys_new(void)
{
	struct jwt_keys *k = calloc(1, sizeof *k);
	if (k && !(k->store = X509_STORE_new())) {
		free(k);
		return NULL;
	}
	return k;
}

void jwt_keys_free(struct jwt_keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		EVP_PKEY_free(k->v[i].pkey);
	free(k->v);
	X509_STORE_free(k->store);
	free(k);
}

int jwt_keys_add(struct jwt_keys *k, const char *kid, EVP_PKEY *pkey)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 8;
		struct jwt_key *v = realloc(k->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	if (!EVP_PKEY_up_ref(pkey))
		return -ENOMEM;
	struct jwt_key *e = &k->v[k->n++];
	snprintf(e->kid, sizeof e->kid, "%s", kid ? kid : "");
	e->pkey = pkey;
	return 0;
}

/* libtrust's key ID: the first 240 bits of SHA-256(DER SubjectPublicKeyInfo)
 * in base32, as 12 groups of 4 separated by ':'. Token servers written for
 * distribution put it in the JWS "kid". */
int jwt_libtrust_kid(EVP_PKEY *pkey, char *out, size_t outlen)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned char *der = NULL, h[SHA256_DIGEST_LENGTH];
	int n = i2d_PUBKEY(pkey, &der);
	if (n <= 0 || outlen < 60) {
		OPENSSL_free(der);
		return -EINVAL;
	}
	SHA256(der, (size_t)n, h);
	OPENSSL_free(der);
	char s[48];
	for (int i = 0; i < 6; i++) { /* 30 bytes = 6 groups of 5 bytes = 48 chars */
		unsigned long long v = 0;
		for (int j = 0; j < 5; j++)
			v = v << 8 | h[5 * i + j];
		for (int j = 0; j < 8; j++)
			s[8 * i + j] = b32[(v >> (35 - 5 * j)) & 31];
	}
	size_t o = 0;
	for (int i = 0; i < 48; i++) {
		if (i && i % 4 == 0)
			out[o++] = ':';
		out[o++] = s[i];
	}
	out[o] = '\0';
	return 0;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}

/* A BIGNUM parameter of pk as base64url of its big-endian bytes, padded to
 * pad bytes (0: minimal). */
static int bn_b64url(EVP_PKEY *pk, const char *name, int pad, char *out)
{
	BIGNUM *bn = NULL;
	unsigned char b[1040];
	if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
		return -EINVAL;
	int n = BN_num_bytes(bn) <= (int)sizeof b ? (pad ? BN_bn2binpad(bn, b, pad) : BN_bn2bin(bn, b)) : -1;
	BN_free(bn);
	if (n < 0)
		return -EINVAL;
	b64url(b, (size_t)n, out);
	return 0;
}

/* The required members of pk's JWK in RFC 7638's canonical form. */
static int jwk_canonical(EVP_PKEY *pk, char *out, size_t cap)
{
	char a[1400], b[1400];
	unsigned char raw[32];
	size_t rl = sizeof raw;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		if (bn_b64url(pk, OSSL_PKEY_PARAM_RSA_E, 0, a) || bn_b64url(pk, OSSL_PKEY_PARAM_RSA_N, 0, b))
			return -EINVAL;
		snprintf(out, cap, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
		return 0;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, a, sizeof a, NULL) != 1 || strcmp(a, "prime256v1") != 0)
			return -EINVAL; /* only P-256 is an ES256 key */
		if (bn_b64url(pk, OSSL_PKEY_PARAM_EC_PUB_X, 32, a) || bn_b64url(pk, OSSL_PKEY_PARAM_EC_PUB_Y, 32, b))
			return -EINVAL;
		snprintf(out, cap, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b);
		return 0;
	case EVP_PKEY_ED25519:
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rl) != 1 || rl != 32)
			return -EINVAL;
		b64url(raw, rl, a);
		snprintf(out, cap, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", a);
		return 0;
	default:
		return -EINVAL;
	}
}

int jwt_jwk_thumbprint(EVP_PKEY *pkey, char *out, size_t outlen)
{
	char canon[3000];
	unsigned char h[SHA256_DIGEST_LENGTH];
	if (outlen < 44 || jwk_canonical(pkey, canon, sizeof canon) != 0) {
		ERR_clear_error();
		return -EINVAL;
	}
	SHA256((const unsigned char *)canon, strlen(canon), h);
	b64url(h, sizeof h, out);
	return 0;
}

/* A root certificate: trusted for x5c chains, and its key by two kids, the
 * libtrust key ID (distribution 2.x token servers) and the RFC 7638
 * thumbprint (newer ones). */
static int add_cert(struct jwt_keys *k, X509 *x)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char kid[64], tp[64];
	if (!pk || jwt_libtrust_kid(pk, kid, sizeof kid) != 0)
		return -EINVAL;
	if (X509_STORE_add_cert(k->store, x) != 1)
		return -ENOMEM;
	k->nroots++;
	int rc = jwt_keys_add(k, kid, pk);
	if (!rc && jwt_jwk_thumbprint(pk, tp, sizeof tp) == 0)
		rc = jwt_keys_add(k, tp, pk);
	return rc;
}

static int load_bundle(struct jwt_keys *k, const char *path, struct regfs_err *err)
{
	BIO *b = BIO_new_file(path, "r");
	if (!b)
		return regfs_errf(err, -ENOENT, "auth.token.rootcertbundle %s: cannot open: %s", path,
				  strerror(errno ? errno : ENOENT));
	int rc = 0, n = 0;
	X509 *x;
	while (!rc && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		rc = add_cert(k, x);
		X509_free(x);
		n++;
	}
	/* The loop ends on "no start line" at the end of the file: not an error
	 * unless nothing was read. */
	unsigned long e = ERR_peek_last_error();
	ERR_clear_error();
	BIO_free(b);
	if (rc)
		return regfs_errf(err, rc, "auth.token.rootcertbundle %s: certificate %d has no usable "
				  "public key", path, n);
	if (n == 0)
		return regfs_errf(err, -EINVAL, "auth.token.rootcertbundle %s: no PEM certificate in it (%s)",
				  path, e ? ERR_reason_error_string(e) : "empty");
	return 0;
}

static void whyf(char *why, size_t wl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t wl, const char *fmt, ...)
{
	if (!wl)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, wl, fmt, ap);
	va_end(ap);
}

/* A base64url member of a JWK, decoded (≤ 1024 bytes: 8192-bit RSA). */
static int jwk_bytes(const json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(jwk, name));
	size_t n = s ? strlen(s) : 0;
	if (!n || n / 4 * 3 + 3 > cap)
		return -1;
	ssize_t d = jwt_b64dec(s, n, out, true);
	return d > 0 ? (int)d : -1;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
	EVP_PKEY *pk = NULL;
	if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
		if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
			pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk)
{
	unsigned char n[1040], e[16];
	int nl = jwk_bytes(jwk, "n", n, sizeof n), el = jwk_bytes(jwk, "e", e, sizeof e);
	if (nl < 0 || el < 0)
		return NULL;
	BIGNUM *bn = BN_bin2bn(n, nl, NULL), *be = BN_bin2bn(e, el, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pk = NULL;
	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pk = pkey_fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

static EVP_PKEY *jwk_ec(const json_t *jwk)
{
	unsigned char x[40], y[40], pt[65];
	if (jwk_bytes(jwk, "x", x, sizeof x) != 32 || jwk_bytes(jwk, "y", y, sizeof y) != 32)
		return NULL;
	pt[0] = 4; /* uncompressed point; OpenSSL checks it is on the curve */
	memcpy(pt + 1, x, 32);
	memcpy(pt + 33, y, 32);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pk = NULL;
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt))
		pk = pkey_fromdata("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	return pk;
}

EVP_PKEY *jwt_jwk_pkey(const json_t *jwk, char *why, size_t wl)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *use = json_string_value(json_object_get(jwk, "use"));
	EVP_PKEY *pk = NULL;
	if (!json_is_object(jwk) || !kty) {
		whyf(why, wl, "a JWK without kty");
		return NULL;
	}
	if (use && strcmp(use, "sig") != 0) {
		whyf(why, wl, "a JWK with use \"%.16s\", not \"sig\"", use);
		return NULL;
	}
	if (strcmp(kty, "RSA") == 0) {
		pk = jwk_rsa(jwk);
	} else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0) {
		pk = jwk_ec(jwk);
	} else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0) {
		unsigned char x[40];
		if (jwk_bytes(jwk, "x", x, sizeof x) == 32)
			pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
	} else {
		whyf(why, wl, "a JWK of kty \"%.16s\" crv \"%.16s\" (RSA, EC P-256 and OKP Ed25519 "
		     "are supported)", kty, crv ? crv : "");
		return NULL;
	}
	ERR_clear_error();
	if (!pk)
		whyf(why, wl, "a malformed %.16s JWK (missing or bad key members)", kty);
	return pk;
}

static int load_jwks(struct jwt_keys *k, const char *path, struct regfs_err *err)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return regfs_errf(err, -EINVAL, "auth.token.jwks %s: %s (line %d)", path, je.text, je.line);
	json_t *keys = json_object_get(root, "keys"), *v;
	size_t i;
	int rc = json_is_array(keys) ? 0 : regfs_errf(err, -EINVAL, "auth.token.jwks %s: no \"keys\" "
						      "array (a JSON Web Key Set is {\"keys\":[…]})", path);
	json_array_foreach(keys, i, v) {
		if (rc)
			break;
		char why[160] = "";
		EVP_PKEY *pk = jwt_jwk_pkey(v, why, sizeof why);
		const char *kid = json_string_value(json_object_get(v, "kid"));
		if (!pk) {
			rc = regfs_errf(err, -EINVAL, "auth.token.jwks %s: key %zu: %s", path, i, why);
			break;
		}
		if (!kid || !*kid || strlen(kid) >= sizeof k->v[0].kid)
			rc = regfs_errf(err, -EINVAL, "auth.token.jwks %s: key %zu has no kid (or one "
					"over 127 bytes): tokens name their key by kid", path, i);
		else
			rc = jwt_keys_add(k, kid, pk);
		EVP_PKEY_free(pk);
	}
	json_decref(root);
	return rc;
}

int jwt_keys_load(struct jwt_keys **out, const char *bundle, const char *jwks, struct regfs_err *err)
{
	*out = NULL;
	struct jwt_keys *k = jwt_keys_new();
	if (!k)
		return regfs_errf(err, -ENOMEM, "out of memory");
	int rc = 0;
	if (bundle && *bundle)
		rc = load_bundle(k, bundle, err);
	if (!rc && jwks && *jwks)
		rc = load_jwks(k, jwks, err);
	if (!rc && k->n == 0)
		rc = regfs_errf(err, -EINVAL, "auth.token: no trusted key: set rootcertbundle (the "
				"token issuer's certificate) or jwks");
	if (rc) {
		jwt_keys_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

EVP_PKEY *jwt_keys_by_kid(const struct jwt_keys *k, const char *kid)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].kid[0] && strcmp(k->v[i].kid, kid) == 0)
			return k->v[i].pkey;
	return NULL;
}

EVP_PKEY *jwt_keys_equal(const struct jwt_keys *k, EVP_PKEY *pkey)
{
	for (size_t i = 0; i < k->n; i++)
		if (EVP_PKEY_eq(k->v[i].pkey, pkey) == 1)
			return k->v[i].pkey;
	ERR_clear_error();
	return NULL;
}
