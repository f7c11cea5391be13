/* Unit tests for jwt.c / jwt_keys.c: tokens signed here with keys generated
 * at test time (OpenSSL EVP_PKEY_keygen) for RS256, ES256 and EdDSA, the
 * signature made by OpenSSL directly (ES256 converted from DER to r||s as
 * RFC 7518 says); then the verifier must accept the good ones and refuse,
 * with a reason, every altered one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <regfs/jwt.h>

static const char *const ALGS[] = {"RS256", "ES256", "EdDSA"};
static EVP_PKEY *keys[3];
static struct jwt_keys *trust; /* the three keys under kids "k0".."k2" */
static const struct jwt_policy POL = {.issuer = "test-issuer", .service = "test-service"};

static void b64url(const unsigned char *in, size_t n, char *out)
{
	int l = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (l > 0 && out[l - 1] == '=')
		l--;
	out[l] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

/* JWS signature bytes of msg with key i (alg ALGS[i]). */
static size_t sign(int i, const char *msg, unsigned char *sig)
{
	unsigned char der[600];
	size_t dl = sizeof der;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(c, NULL, i == 2 ? NULL : EVP_sha256(), NULL, keys[i]), 1);
	assert_int_equal(EVP_DigestSign(c, der, &dl, (const unsigned char *)msg, strlen(msg)), 1);
	EVP_MD_CTX_free(c);
	if (i != 1) {
		memcpy(sig, der, dl);
		return dl;
	}
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
	assert_non_null(s);
	BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32);
	ECDSA_SIG_free(s);
	return 64;
}

/* A token of header JSON hdr and claims JSON claims signed with key i. */
static char *mint_raw(int i, const char *hdr, const char *claims)
{
	char *t = malloc(16384), sigs[1024];
	unsigned char sig[600];
	b64url((const unsigned char *)hdr, strlen(hdr), t);
	strcat(t, ".");
	b64url((const unsigned char *)claims, strlen(claims), t + strlen(t));
	size_t n = sign(i, t, sig);
	b64url(sig, n, sigs);
	strcat(t, ".");
	strcat(t, sigs);
	return t;
}

static char *claims(long exp_off, long nbf_off, const char *iss, const char *aud, const char *access)
{
	static char c[4096];
	long now = (long)time(NULL);
	snprintf(c, sizeof c, "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":%s,\"exp\":%ld,\"nbf\":%ld,"
		 "\"iat\":%ld,\"access\":%s}", iss, aud, now + exp_off, now + nbf_off, now, access);
	return c;
}

#define ACCESS_APP "[{\"type\":\"repository\",\"name\":\"team/app\",\"actions\":[\"pull\",\"push\"]}]"

static char *mint(int i, const char *claims_json)
{
	char hdr[128];
	snprintf(hdr, sizeof hdr, "{\"typ\":\"JWT\",\"alg\":\"%s\",\"kid\":\"k%d\"}", ALGS[i], i);
	return mint_raw(i, hdr, claims_json);
}

static char *good(int i)
{
	return mint(i, claims(300, -10, "test-issuer", "\"test-service\"", ACCESS_APP));
}

/* Verifies with POL; returns the rc, keeps the reason in why. */
static char why[256];
static int verify_tok(const char *t, const struct jwt_policy *p, struct jwt_token **out)
{
	struct jwt_token *tmp = NULL;
	int rc = jwt_verify(t, strlen(t), trust, p ? p : &POL, out ? out : &tmp, why, sizeof why);
	jwt_token_free(tmp);
	if (rc)
		assert_true(why[0] != '\0');
	return rc;
}

static int setup(void **state)
{
	(void)state;
	keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	trust = jwt_keys_new();
	for (int i = 0; i < 3; i++) {
		char kid[8];
		snprintf(kid, sizeof kid, "k%d", i);
		if (!keys[i] || jwt_keys_add(trust, kid, keys[i]) != 0)
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		EVP_PKEY_free(keys[i]);
	jwt_keys_free(trust);
	return 0;
}

static void test_good_each_alg(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char *t = good(i);
		struct jwt_token *tok = NULL;
		assert_int_equal(verify_tok(t, NULL, &tok), 0);
		assert_string_equal(tok->alg, ALGS[i]);
		assert_string_equal(tok->sub, "alice");
		assert_true(jwt_allows(tok, "repository", "team/app", JWT_PULL | JWT_PUSH));
		assert_true(jwt_allows(tok, "repository", "team/app", JWT_PULL));
		jwt_token_free(tok);
		free(t);
	}
}

static void test_bad_signature(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char *t = good(i);
		char *dot = strrchr(t, '.');
		dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* one signature character */
		assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
		assert_non_null(strstr(why, "signature"));
		/* a claim changed after signing */
		free(t);
		t = good(i);
		char *c = strchr(t, '.') + 2;
		*c = *c == 'A' ? 'B' : 'A';
		assert_int_not_equal(verify_tok(t, NULL, NULL), 0);
		free(t);
	}
}

static void test_wrong_key_for_kid(void **state)
{
	(void)state;
	/* signed with key 1 (ES256) but names key 2 (Ed25519) and alg ES256 */
	char *t = mint_raw(1, "{\"alg\":\"ES256\",\"kid\":\"k2\"}",
			   claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
	assert_non_null(strstr(why, "does not match"));
	free(t);
	t = mint_raw(0, "{\"alg\":\"RS256\",\"kid\":\"nope\"}",
		     claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
	assert_non_null(strstr(why, "kid"));
	free(t);
}

static void test_time_claims(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char *t = mint(i, claims(-JWT_LEEWAY - 30, -600, "test-issuer", "\"test-service\"", ACCESS_APP));
		assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
		assert_non_null(strstr(why, "expired"));
		free(t);
		t = mint(i, claims(600, JWT_LEEWAY + 120, "test-issuer", "\"test-service\"", ACCESS_APP));
		assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
		assert_non_null(strstr(why, "not valid before"));
		free(t);
	}
	/* within the leeway: accepted */
	char *t = mint(0, claims(-5, 5, "test-issuer", "\"test-service\"", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, NULL), 0);
	free(t);
	t = mint(0, "{\"iss\":\"test-issuer\",\"aud\":\"test-service\"}");
	assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
	assert_non_null(strstr(why, "no exp"));
	free(t);
}

static void test_aud_iss(void **state)
{
	(void)state;
	char *t = mint(1, claims(300, 0, "test-issuer", "\"other-service\"", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
	assert_non_null(strstr(why, "audience"));
	free(t);
	t = mint(1, claims(300, 0, "test-issuer", "[\"x\",\"test-service\"]", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, NULL), 0);
	free(t);
	t = mint(2, claims(300, 0, "evil-issuer", "\"test-service\"", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
	assert_non_null(strstr(why, "issuer"));
	free(t);
}

static void test_alg_none_hs_unknown(void **state)
{
	(void)state;
	const char *c = claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP);
	char h[64], cl[1024], tok[2048];
	b64url((const unsigned char *)"{\"alg\":\"none\"}", 14, h);
	b64url((const unsigned char *)c, strlen(c), cl);
	/* refused by its alg before any signature is looked at, empty or not */
	for (int i = 0; i < 2; i++) {
		snprintf(tok, sizeof tok, "%s.%s.%s", h, cl, i ? "AAAA" : "");
		assert_int_equal(verify_tok(tok, NULL, NULL), -EACCES);
		assert_non_null(strstr(why, "none"));
	}
	const char *bad[] = {"{\"alg\":\"HS256\",\"kid\":\"k0\"}", "{\"alg\":\"RS512\",\"kid\":\"k0\"}",
			     "{\"kid\":\"k0\"}"};
	for (size_t i = 0; i < 3; i++) {
		char *t = mint_raw(0, bad[i], c);
		assert_int_not_equal(verify_tok(t, NULL, NULL), 0);
		free(t);
	}
}

static void test_alg_not_allowed(void **state)
{
	(void)state;
	struct jwt_policy p = POL;
	p.algs = "RS256, ES256";
	char *t = good(2);
	assert_int_equal(verify_tok(t, &p, NULL), -EACCES);
	assert_non_null(strstr(why, "signingalgorithms"));
	free(t);
	t = good(1);
	assert_int_equal(verify_tok(t, &p, NULL), 0);
	free(t);
}

static void test_truncated_and_malformed(void **state)
{
	(void)state;
	char *t = good(0);
	size_t n = strlen(t);
	for (size_t cut = 0; cut < n; cut += 7) {
		struct jwt_token *o = (void *)1;
		assert_int_not_equal(jwt_verify(t, cut, trust, &POL, &o, why, sizeof why), 0);
		assert_null(o);
	}
	t[3] = '*'; /* in the header */
	assert_int_equal(verify_tok(t, NULL, NULL), -EINVAL);
	assert_non_null(strstr(why, "base64url"));
	free(t);
	assert_int_equal(verify_tok("a.b.c.d", NULL, NULL), -EINVAL);
	char *big = malloc(JWT_MAX_TOKEN + 2);
	memset(big, 'A', JWT_MAX_TOKEN + 1);
	big[JWT_MAX_TOKEN + 1] = '\0';
	big[10] = big[20] = '.';
	assert_int_equal(verify_tok(big, NULL, NULL), -EINVAL);
	assert_non_null(strstr(why, "bytes"));
	free(big);
	char deep[200] = "{\"alg\":\"RS256\",\"kid\":\"k0\",\"x\":";
	for (int i = 0; i < 20; i++)
		strcat(deep, "[");
	t = mint_raw(0, deep, "{}");
	assert_int_equal(verify_tok(t, NULL, NULL), -EINVAL);
	assert_non_null(strstr(why, "deeper"));
	free(t);
}

static void test_access_checks(void **state)
{
	(void)state;
	const char *acc = "[{\"type\":\"repository\",\"name\":\"team/app\",\"actions\":[\"pull\"]},"
			  "{\"type\":\"repository\",\"name\":\"team/app\",\"actions\":[\"delete\"]},"
			  "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":[\"*\"]},"
			  "{\"type\":\"repository\",\"name\":\"all/of\",\"actions\":[\"*\"]}]";
	char *t = mint(1, claims(300, 0, "test-issuer", "\"test-service\"", acc));
	struct jwt_token *tok = NULL;
	assert_int_equal(verify_tok(t, NULL, &tok), 0);
	assert_true(jwt_allows(tok, "repository", "team/app", JWT_PULL | JWT_DELETE));
	assert_false(jwt_allows(tok, "repository", "team/app", JWT_PUSH));         /* missing action */
	assert_false(jwt_allows(tok, "repository", "team/app", JWT_PULL | JWT_PUSH));
	assert_false(jwt_allows(tok, "repository", "team/other", JWT_PULL));       /* other repository */
	assert_false(jwt_allows(tok, "repository", "team", JWT_PULL));
	assert_true(jwt_allows(tok, "registry", "catalog", JWT_ANY));
	assert_true(jwt_allows(tok, "repository", "all/of", JWT_PUSH | JWT_DELETE));
	assert_false(jwt_allows(tok, "registry", "catalog2", JWT_ANY));
	jwt_token_free(tok);
	free(t);
	/* pull-only: the catalog is not granted by repository access */
	t = mint(0, claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
	assert_int_equal(verify_tok(t, NULL, &tok), 0);
	assert_false(jwt_allows(tok, "registry", "catalog", JWT_ANY));
	assert_false(jwt_allows(tok, "repository", "team/app", JWT_ANY));
	jwt_token_free(tok);
	free(t);
}

/* A self-signed certificate of key i, valid from now-1h for `days`. */
static X509 *self_signed(int i, int days)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1000 + i);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * days);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"token issuer", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, keys[i]);
	assert_true(X509_sign(x, keys[i], i == 2 ? NULL : EVP_sha256()) > 0);
	return x;
}

static void test_x5c_and_rootcertbundle(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		X509 *x = self_signed(i, 30);
		unsigned char *der = NULL;
		int dl = i2d_X509(x, &der);
		char *b64 = malloc((size_t)dl * 2), hdr[4096], path[] = "/tmp/test_jwt_XXXXXX";
		EVP_EncodeBlock((unsigned char *)b64, der, dl);
		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"x5c\":[\"%s\"]}", ALGS[i], b64);
		char *t = mint_raw(i, hdr, claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
		/* not trusted by kid-only keys */
		assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
		assert_non_null(strstr(why, "x5c"));
		/* trusted once the certificate is in the bundle file */
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");
		PEM_write_X509(f, x);
		fclose(f);
		struct jwt_keys *k = NULL;
		struct regfs_err err = {0};
		assert_int_equal(jwt_keys_load(&k, path, NULL, &err), 0);
		struct jwt_token *tok = NULL;
		assert_int_equal(jwt_verify(t, strlen(t), k, &POL, &tok, why, sizeof why), 0);
		jwt_token_free(tok);
		/* and by the certificate's libtrust key ID as kid */
		char kid[64], hk[128];
		assert_int_equal(jwt_libtrust_kid(keys[i], kid, sizeof kid), 0);
		assert_int_equal(strlen(kid), 59);
		snprintf(hk, sizeof hk, "{\"alg\":\"%s\",\"kid\":\"%s\"}", ALGS[i], kid);
		free(t);
		t = mint_raw(i, hk, claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
		assert_int_equal(jwt_verify(t, strlen(t), k, &POL, &tok, why, sizeof why), 0);
		jwt_token_free(tok);
		/* and by its RFC 7638 thumbprint as kid */
		assert_int_equal(jwt_jwk_thumbprint(keys[i], kid, sizeof kid), 0);
		assert_int_equal(strlen(kid), 43);
		snprintf(hk, sizeof hk, "{\"alg\":\"%s\",\"kid\":\"%s\"}", ALGS[i], kid);
		free(t);
		t = mint_raw(i, hk, claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
		assert_int_equal(jwt_verify(t, strlen(t), k, &POL, &tok, why, sizeof why), 0);
		jwt_token_free(tok);
		jwt_keys_free(k);
		unlink(path);
		free(t);
		free(b64);
		OPENSSL_free(der);
		X509_free(x);
	}
}

static void bn_b64(EVP_PKEY *pk, const char *name, char *out)
{
	BIGNUM *bn = NULL;
	unsigned char b[600];
	assert_int_equal(EVP_PKEY_get_bn_param(pk, name, &bn), 1);
	int n = BN_bn2bin(bn, b);
	b64url(b, (size_t)n, out);
	BN_free(bn);
}

/* The JWK of key i, written from the key's own parameters. */
static void jwk_of(int i, char *out, size_t cap)
{
	char a[700], b[700];
	unsigned char raw[200];
	size_t rl = sizeof raw;
	if (i == 0) {
		bn_b64(keys[0], OSSL_PKEY_PARAM_RSA_N, a);
		bn_b64(keys[0], OSSL_PKEY_PARAM_RSA_E, b);
		snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"j0\",\"n\":\"%s\",\"e\":\"%s\"}", a, b);
	} else if (i == 1) {
		assert_int_equal(EVP_PKEY_get_octet_string_param(keys[1], OSSL_PKEY_PARAM_PUB_KEY, raw,
								 sizeof raw, &rl), 1);
		assert_int_equal(rl, 65);
		b64url(raw + 1, 32, a);
		b64url(raw + 33, 32, b);
		snprintf(out, cap, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"j1\",\"x\":\"%s\",\"y\":\"%s\"}", a, b);
	} else {
		assert_int_equal(EVP_PKEY_get_raw_public_key(keys[2], raw, &rl), 1);
		b64url(raw, rl, a);
		snprintf(out, cap, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"j2\",\"x\":\"%s\"}", a);
	}
}

static void test_jwks_file_and_jwk_header(void **state)
{
	(void)state;
	char jwks[8192] = "{\"keys\":[", one[1800], path[] = "/tmp/test_jwt_XXXXXX";
	for (int i = 0; i < 3; i++) {
		jwk_of(i, one, sizeof one);
		strcat(jwks, i ? "," : "");
		strcat(jwks, one);
	}
	strcat(jwks, "]}");
	int fd = mkstemp(path);
	assert_true(write(fd, jwks, strlen(jwks)) == (ssize_t)strlen(jwks));
	close(fd);
	struct jwt_keys *k = NULL;
	struct regfs_err err = {0};
	assert_int_equal(jwt_keys_load(&k, NULL, path, &err), 0);
	for (int i = 0; i < 3; i++) {
		char hdr[2000];
		const char *c = claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP);
		struct jwt_token *tok = NULL;
		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"j%d\"}", ALGS[i], i);
		char *t = mint_raw(i, hdr, c);
		assert_int_equal(jwt_verify(t, strlen(t), k, &POL, &tok, why, sizeof why), 0);
		jwt_token_free(tok);
		free(t);
		jwk_of(i, one, sizeof one);
		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"jwk\":%s}", ALGS[i], one);
		t = mint_raw(i, hdr, c);
		assert_int_equal(jwt_verify(t, strlen(t), k, &POL, &tok, why, sizeof why), 0);
		jwt_token_free(tok);
		free(t);
	}
	jwt_keys_free(k);
	/* a JWK in the header that is not trusted */
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char raw[32];
	size_t rl = sizeof raw;
	char x[64], hdr[256];
	EVP_PKEY_get_raw_public_key(other, raw, &rl);
	b64url(raw, rl, x);
	snprintf(hdr, sizeof hdr, "{\"alg\":\"EdDSA\",\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}}", x);
	EVP_PKEY *save = keys[2];
	keys[2] = other;
	char *t = mint_raw(2, hdr, claims(300, 0, "test-issuer", "\"test-service\"", ACCESS_APP));
	keys[2] = save;
	assert_int_equal(verify_tok(t, NULL, NULL), -EACCES);
	assert_non_null(strstr(why, "not a trusted key"));
	free(t);
	EVP_PKEY_free(other);
	/* a broken jwks file: a clear error naming it */
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *broken = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"z\",\"x\":\"AA\",\"y\":\"AA\"}]}";
	assert_true(write(fd, broken, strlen(broken)) == (ssize_t)strlen(broken));
	close(fd);
	assert_int_equal(jwt_keys_load(&k, NULL, path, &err), -EINVAL);
	assert_non_null(strstr(err.msg, path));
	unlink(path);
}

/* RFC 7638 §3.1: the thumbprint of the RFC's RSA key is the RFC's value. */
static void test_thumbprint_rfc7638(void **state)
{
	(void)state;
	static const char n64[] =
		"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
		"BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
		"FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
		"vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
	char std[400], tp[64];
	snprintf(std, sizeof std, "%s==", n64); /* 342 characters: two of padding */
	for (char *p = std; *p; p++)
		*p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
	unsigned char n[300];
	int nl = EVP_DecodeBlock(n, (const unsigned char *)std, (int)strlen(std)) - 2; /* the padding decodes as zeros */
	assert_int_equal(nl, 256);
	BIGNUM *bn = BN_bin2bn(n, nl, NULL), *be = BN_new();
	BN_set_word(be, 65537);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pk = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	assert_int_equal(jwt_jwk_thumbprint(pk, tp, sizeof tp), 0);
	assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_each_alg),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_wrong_key_for_kid),
		cmocka_unit_test(test_time_claims),
		cmocka_unit_test(test_aud_iss),
		cmocka_unit_test(test_alg_none_hs_unknown),
		cmocka_unit_test(test_alg_not_allowed),
		cmocka_unit_test(test_truncated_and_malformed),
		cmocka_unit_test(test_access_checks),
		cmocka_unit_test(test_x5c_and_rootcertbundle),
		cmocka_unit_test(test_jwks_file_and_jwk_header),
		cmocka_unit_test(test_thumbprint_rfc7638),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
