/* jwt.c — compact JWS parsing, signature verification (RS256, ES256, EdDSA)
 * and the claims of a registry bearer token (jwt.h is the manual). */
#include "jwt_internal.h"

#include <regfs/base64.h>
#include <regfs/oci.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

/* x5c chains longer than this are refused (leaf + intermediates). */
#define X5C_MAX 4

static int refuse(char *why, size_t wl, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(char *why, size_t wl, int code, const char *fmt, ...)
{
	if (wl) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, wl, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return code;
}

/* One base64url part of the token → a JSON object. */
static json_t *part_json(const char *s, size_t n, const char *what, char *why, size_t wl)
{
	unsigned char *buf = malloc(regfs_base64_max(n));
	if (!buf) {
		refuse(why, wl, -ENOMEM, "out of memory");
		return NULL;
	}
	ssize_t d = regfs_base64_decode(s, n, true, buf, regfs_base64_max(n));
	json_t *j = NULL;
	if (d < 0) {
		refuse(why, wl, -EINVAL, "the token %s is not base64url", what);
	} else if (regfs_json_depth((const char *)buf, (size_t)d, JWT_MAX_DEPTH) > JWT_MAX_DEPTH) {
		refuse(why, wl, -EINVAL, "the token %s nests JSON deeper than %d levels", what,
		       JWT_MAX_DEPTH);
	} else {
		j = json_loadb((const char *)buf, (size_t)d, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(j)) {
			json_decref(j);
			j = NULL;
			refuse(why, wl, -EINVAL, "the token %s is not a JSON object", what);
		}
	}
	free(buf);
	return j;
}

/* alg allowed by the policy's list (commas or spaces) and one we know. */
static int alg_check(const char *alg, const char *algs, char *why, size_t wl)
{
	if (!alg)
		return refuse(why, wl, -EINVAL, "the token header has no alg");
	if (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0 && strcmp(alg, "EdDSA") != 0)
		return refuse(why, wl, -EACCES, "the token alg \"%.16s\" is refused (RS256, ES256 "
			      "and EdDSA are accepted; never none or HS*)", alg);
	if (!algs || !*algs)
		return 0;
	size_t al = strlen(alg);
	for (const char *p = algs; *p;) {
		p += strspn(p, ", ");
		size_t n = strcspn(p, ", ");
		if (n == al && strncmp(p, alg, n) == 0)
			return 0;
		p += n;
	}
	return refuse(why, wl, -EACCES, "the token alg %s is not in auth.token.signingalgorithms",
		      alg);
}

/* The leaf key of an x5c chain verified against the root certificates
 * (a reference the caller frees), or NULL with why. */
static EVP_PKEY *x5c_key(const struct jwt_keys *k, const json_t *x5c, time_t now, char *why,
			 size_t wl)
{
	size_t n = json_array_size(x5c);
	if (n == 0 || n > X5C_MAX) {
		refuse(why, wl, -EINVAL, "the token x5c is not an array of 1 to %d certificates",
		       X5C_MAX);
		return NULL;
	}
	STACK_OF(X509) *chain = sk_X509_new_null();
	EVP_PKEY *pk = NULL;
	for (size_t i = 0; chain && i < n; i++) {
		const char *s = json_string_value(json_array_get(x5c, i));
		size_t sl = s ? strlen(s) : 0;
		unsigned char *der = sl ? malloc(regfs_base64_max(sl)) : NULL;
		ssize_t dl = der ? regfs_base64_decode(s, sl, false, der, regfs_base64_max(sl)) : -1;
		const unsigned char *p = der;
		X509 *x = dl > 0 ? d2i_X509(NULL, &p, (long)dl) : NULL;
		free(der);
		if (!x || !sk_X509_push(chain, x)) {
			X509_free(x);
			refuse(why, wl, -EINVAL, "the token x5c certificate %zu is not base64 DER", i);
			goto out;
		}
	}
	X509_STORE_CTX *ctx = chain ? X509_STORE_CTX_new() : NULL;
	if (!ctx || !X509_STORE_CTX_init(ctx, k->store, sk_X509_value(chain, 0), chain)) {
		refuse(why, wl, -ENOMEM, "out of memory");
	} else {
		if (now)
			X509_STORE_CTX_set_time(ctx, 0, now);
		if (X509_verify_cert(ctx) == 1)
			pk = X509_get_pubkey(sk_X509_value(chain, 0));
		else
			refuse(why, wl, -EACCES, "the token x5c chain does not lead to a certificate "
			       "of auth.token.rootcertbundle: %s",
			       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
	X509_STORE_CTX_free(ctx);
out:
	sk_X509_pop_free(chain, X509_free);
	return pk;
}

/* The key named by the header (x5c, jwk or kid, in that order): a
 * reference the caller frees, or NULL with why. */
static EVP_PKEY *find_key(const struct jwt_keys *k, const json_t *hdr, time_t now, char *why,
			  size_t wl)
{
	const json_t *x5c = json_object_get(hdr, "x5c"), *jwk = json_object_get(hdr, "jwk");
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	EVP_PKEY *pk = NULL;
	if (x5c)
		return x5c_key(k, x5c, now, why, wl);
	if (jwk) {
		EVP_PKEY *h = jwt_jwk_pkey(jwk, why, wl);
		pk = h ? jwt_keys_equal(k, h) : NULL;
		EVP_PKEY_free(h);
		if (h && !pk)
			refuse(why, wl, -EACCES, "the token jwk is not a trusted key");
	} else if (kid) {
		pk = jwt_keys_by_kid(k, kid);
		if (!pk)
			refuse(why, wl, -EACCES, "no trusted key has the token's kid \"%.64s\"", kid);
	} else {
		refuse(why, wl, -EACCES, "the token header names no key (x5c, jwk or kid)");
	}
	if (pk)
		EVP_PKEY_up_ref(pk);
	return pk;
}

/* The JWS r||s form (32 + 32 bytes for P-256) → the DER OpenSSL verifies. */
static int es256_der(const unsigned char *sig, size_t n, unsigned char **der)
{
	if (n != 64)
		return -1;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	if (!s || !r || !ss || !ECDSA_SIG_set0(s, r, ss)) {
		BN_free(r);
		BN_free(ss);
		ECDSA_SIG_free(s);
		return -1;
	}
	*der = NULL;
	int dl = i2d_ECDSA_SIG(s, der);
	ECDSA_SIG_free(s);
	return dl;
}

/* The key must be of the alg's type: an RS256 token cannot be checked with
 * an EC key, nor an ES256 one with an RSA key (alg confusion). */
static int key_fits(EVP_PKEY *pk, const char *alg, char *why, size_t wl)
{
	char group[32] = "";
	size_t gl = 0;
	if (strcmp(alg, "RS256") == 0 && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(pk) < 2048)
			return refuse(why, wl, -EACCES, "the token's RSA key has %d bits (2048 needed)",
				      EVP_PKEY_get_bits(pk));
		return 0;
	}
	if (strcmp(alg, "ES256") == 0 && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(pk, group, sizeof group, &gl) == 1 &&
	    strcmp(group, "prime256v1") == 0)
		return 0;
	if (strcmp(alg, "EdDSA") == 0 && EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519)
		return 0;
	return refuse(why, wl, -EACCES, "the token alg %s does not match its key's type", alg);
}

static int verify_sig(EVP_PKEY *pk, const char *alg, const char *msg, size_t ml,
		      const unsigned char *sig, size_t sl, char *why, size_t wl)
{
	int rc = key_fits(pk, alg, why, wl);
	if (rc)
		return rc;
	unsigned char *der = NULL;
	if (strcmp(alg, "ES256") == 0) {
		int dl = es256_der(sig, sl, &der);
		if (dl <= 0)
			return refuse(why, wl, -EACCES, "the token's ES256 signature is not 64 bytes");
		sig = der;
		sl = (size_t)dl;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1 &&
		 EVP_DigestVerify(ctx, sig, sl, (const unsigned char *)msg, ml) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	if (!ok)
		return refuse(why, wl, -EACCES, "the token signature does not verify (%s)", alg);
	ERR_clear_error();
	return 0;
}

unsigned jwt_action_bit(const char *s, size_t n)
{
	static const struct { const char *name; unsigned bit; } acts[] = {
		{"pull", JWT_PULL}, {"push", JWT_PUSH}, {"delete", JWT_DELETE}, {"*", JWT_ANY}};
	for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
		if (strlen(acts[i].name) == n && memcmp(acts[i].name, s, n) == 0)
			return acts[i].bit;
	return 0;
}

static int parse_access(struct jwt_token *t, const json_t *acc, char *why, size_t wl)
{
	if (!acc)
		return 0;
	if (!json_is_array(acc) || json_array_size(acc) > JWT_MAX_ACCESS)
		return refuse(why, wl, -EINVAL, "the token access claim is not an array of at most %d "
			      "entries", JWT_MAX_ACCESS);
	t->access = calloc(json_array_size(acc) + 1, sizeof *t->access);
	if (!t->access)
		return refuse(why, wl, -ENOMEM, "out of memory");
	size_t i;
	json_t *e, *a;
	json_array_foreach(acc, i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *acts = json_object_get(e, "actions");
		if (!type || !name || (acts && !json_is_array(acts)))
			return refuse(why, wl, -EINVAL, "the token access entry %zu lacks type, name "
				      "or an actions array", i);
		struct jwt_access *x = &t->access[t->naccess++];
		x->type = strdup(type);
		x->name = strdup(name);
		if (!x->type || !x->name)
			return refuse(why, wl, -ENOMEM, "out of memory");
		size_t j;
		json_array_foreach(acts, j, a)
			if (json_is_string(a))
				x->actions |= jwt_action_bit(json_string_value(a), json_string_length(a));
	}
	return 0;
}

static bool aud_has(const json_t *aud, const char *service)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), service) == 0;
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), service) == 0)
			return true;
	return false;
}

static int check_claims(const json_t *c, const struct jwt_policy *p, time_t now, struct jwt_token *t,
			char *why, size_t wl)
{
	const json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
	const char *iss = json_string_value(json_object_get(c, "iss"));
	const char *sub = json_string_value(json_object_get(c, "sub"));
	if (!json_is_number(exp))
		return refuse(why, wl, -EACCES, "the token has no exp claim");
	if (nbf && !json_is_number(nbf))
		return refuse(why, wl, -EACCES, "the token nbf claim is not a number");
	double e = json_number_value(exp), nb = nbf ? json_number_value(nbf) : 0;
	if (e + JWT_LEEWAY < (double)now)
		return refuse(why, wl, -EACCES, "the token expired %.0f s ago", (double)now - e);
	if (nbf && nb - JWT_LEEWAY > (double)now)
		return refuse(why, wl, -EACCES, "the token is not valid before %.0f s from now",
			      nb - (double)now);
	if (p->issuer && *p->issuer && (!iss || strcmp(iss, p->issuer) != 0))
		return refuse(why, wl, -EACCES, "the token issuer \"%.64s\" is not auth.token.issuer",
			      iss ? iss : "");
	if (p->service && *p->service && !aud_has(json_object_get(c, "aud"), p->service))
		return refuse(why, wl, -EACCES, "the token audience is not auth.token.service \"%.64s\"",
			      p->service);
	t->exp = e > 4e18 ? (time_t)4e18 : (time_t)e;
	snprintf(t->sub, sizeof t->sub, "%s", sub ? sub : "");
	return parse_access(t, json_object_get(c, "access"), why, wl);
}

/* Splits "h.c.s" at its two dots; -EINVAL unless there are exactly two. */
static int split3(const char *tok, size_t len, size_t dot[2])
{
	int nd = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] == '.') {
			if (nd == 2)
				return -EINVAL;
			dot[nd++] = i;
		} else if (tok[i] == '\0') {
			return -EINVAL;
		}
	}
	return nd == 2 ? 0 : -EINVAL;
}

static int verify_parts(const char *tok, size_t len, const size_t dot[2], const json_t *hdr,
			const struct jwt_keys *k, const struct jwt_policy *p, time_t now, char *why,
			size_t wl)
{
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	int rc = alg_check(alg, p->algs, why, wl);
	if (rc)
		return rc;
	if (json_object_get(hdr, "crit"))
		return refuse(why, wl, -EACCES, "the token header has crit extensions we do not know");
	EVP_PKEY *pk = find_key(k, hdr, now, why, wl);
	if (!pk)
		return -EACCES;
	size_t sl = len - dot[1] - 1;
	unsigned char *sig = malloc(regfs_base64_max(sl));
	ssize_t dl = sig ? regfs_base64_decode(tok + dot[1] + 1, sl, true, sig, regfs_base64_max(sl))
		   : -1;
	if (dl <= 0)
		rc = refuse(why, wl, sig ? -EINVAL : -ENOMEM, "the token signature is %s",
			    sig ? "not base64url" : "too big for memory");
	else
		rc = verify_sig(pk, alg, tok, dot[1], sig, (size_t)dl, why, wl);
	free(sig);
	EVP_PKEY_free(pk);
	return rc;
}

int jwt_verify(const char *tok, size_t len, const struct jwt_keys *k, const struct jwt_policy *p,
	       struct jwt_token **out, char *why, size_t wl)
{
	static const struct jwt_policy none = {0};
	size_t dot[2];
	*out = NULL;
	if (wl)
		why[0] = '\0';
	p = p ? p : &none;
	if (len > JWT_MAX_TOKEN)
		return refuse(why, wl, -EINVAL, "the token is %zu bytes (at most %d)", len, JWT_MAX_TOKEN);
	if (split3(tok, len, dot) != 0)
		return refuse(why, wl, -EINVAL, "the token is not three base64url parts joined by dots");
	time_t now = p->now ? p->now : time(NULL);
	json_t *hdr = part_json(tok, dot[0], "header", why, wl), *claims = NULL;
	int rc = hdr ? verify_parts(tok, len, dot, hdr, k, p, now, why, wl) : -EINVAL;
	if (!rc) {
		claims = part_json(tok + dot[0] + 1, dot[1] - dot[0] - 1, "claims", why, wl);
		rc = claims ? 0 : -EINVAL;
	}
	struct jwt_token *t = rc ? NULL : calloc(1, sizeof *t);
	if (!rc && !t)
		rc = refuse(why, wl, -ENOMEM, "out of memory");
	if (!rc) {
		snprintf(t->alg, sizeof t->alg, "%s", json_string_value(json_object_get(hdr, "alg")));
		rc = check_claims(claims, p, now, t, why, wl);
	}
	json_decref(hdr);
	json_decref(claims);
	if (rc) {
		jwt_token_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void jwt_token_free(struct jwt_token *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->naccess; i++) {
		free(t->access[i].type);
		free(t->access[i].name);
	}
	free(t->access);
	free(t);
}

bool jwt_allows(const struct jwt_token *t, const char *type, const char *name, unsigned actions)
{
	unsigned have = 0;
	for (size_t i = 0; t && i < t->naccess; i++)
		if (strcmp(t->access[i].type, type) == 0 && strcmp(t->access[i].name, name) == 0)
			have |= t->access[i].actions;
	if (have & JWT_ANY)
		return true;
	return actions && (have & actions) == actions;
}
