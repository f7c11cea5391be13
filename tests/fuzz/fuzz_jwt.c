/* fuzz_jwt.c — jwt_verify on arbitrary bytes, and on arbitrary
 * "header.claims" signed here with a fixed Ed25519 key so the input reaches
 * the claims checks (a forged signature never would). The first byte picks
 * the mode. Every verified token is then asked the questions the registry
 * asks (jwt_allows). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "regfs/jwt.h"
#include "regfs/log.h"

static EVP_PKEY *key;
static struct jwt_keys *trust;

static void setup(void)
{
	static const unsigned char seed[32] = {7, 1, 2, 3};
	regfs_log_set_level(REGFS_LOG_ERROR);
	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
	trust = jwt_keys_new();
	if (!key || !trust || jwt_keys_add(trust, "fuzz", key) != 0)
		abort();
}

/* "input.signature" with the fixed key; NULL when the input is too big. */
static char *sign_input(const uint8_t *d, size_t n, size_t *outlen)
{
	unsigned char sig[64], b64[100];
	size_t sl = sizeof sig;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestSignInit(c, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(c, sig, &sl, d, n) != 1)
		abort();
	EVP_MD_CTX_free(c);
	int bl = EVP_EncodeBlock(b64, sig, (int)sl);
	while (bl > 0 && b64[bl - 1] == '=')
		bl--;
	for (int i = 0; i < bl; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	char *t = malloc(n + 1 + (size_t)bl);
	if (!t)
		return NULL;
	memcpy(t, d, n);
	t[n] = '.';
	memcpy(t + n + 1, b64, (size_t)bl);
	*outlen = n + 1 + (size_t)bl;
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!key)
		setup();
	if (size < 1 || size > 2 * JWT_MAX_TOKEN)
		return 0;
	const struct jwt_policy p = {.issuer = "fuzz-issuer", .service = "fuzz-service",
				     .now = 1700000000};
	size_t n = size - 1;
	char *t = (data[0] & 1) ? sign_input(data + 1, n, &n) : malloc(n ? n : 1);
	if (!t)
		return 0;
	if (!(data[0] & 1))
		memcpy(t, data + 1, n);
	struct jwt_token *tok = NULL;
	char why[256];
	if (jwt_verify(t, n, trust, &p, &tok, why, sizeof why) == 0) {
		if (!tok || strlen(tok->sub) >= sizeof tok->sub)
			abort();
		for (size_t i = 0; i < tok->naccess; i++)
			(void)jwt_allows(tok, tok->access[i].type, tok->access[i].name, JWT_PULL | JWT_PUSH);
		(void)jwt_allows(tok, "registry", "catalog", JWT_ANY);
		jwt_token_free(tok);
	} else if (tok || !why[0]) {
		abort(); /* a refusal always says why and returns nothing */
	}
	free(t);
	return 0;
}
