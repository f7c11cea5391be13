/* digest.c — digest parsing and validation, one-shot and streaming hashing
 * (OpenSSL EVP), and the lowercase hex they are spelled in. See
 * include/regfs/digest.h. */
#include <regfs/digest.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct regfs_hasher {
	EVP_MD_CTX *ctx;
	enum regfs_digest_alg alg;
};

static const struct {
	const char *name;
	size_t hexlen;
} algs[] = {
	[REGFS_SHA256] = {"sha256", 64},
	[REGFS_SHA512] = {"sha512", 128},
};

const char *regfs_digest_alg_name(enum regfs_digest_alg alg) { return algs[alg].name; }

int regfs_digest_parse(const char *s, enum regfs_digest_alg *alg, const char **hex,
		       struct regfs_err *err)
{
	if (!s)
		return regfs_errf(err, -EINVAL, "missing digest");
	const char *colon = strchr(s, ':');
	if (!colon)
		return regfs_errf(err, -EINVAL, "invalid digest \"%.80s\": expected algorithm:hex, e.g. sha256:<64 hex digits>", s);
	size_t alen = (size_t)(colon - s);
	for (int a = 0; a < 2; a++) {
		if (alen != strlen(algs[a].name) || memcmp(s, algs[a].name, alen) != 0)
			continue;
		const char *h = colon + 1;
		size_t n = strlen(h);
		if (n != algs[a].hexlen)
			return regfs_errf(err, -EINVAL, "invalid digest \"%.80s\": %s needs %zu hex digits, got %zu",
					  s, algs[a].name, algs[a].hexlen, n);
		for (size_t i = 0; i < n; i++) {
			char c = h[i];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return regfs_errf(err, -EINVAL, "invalid digest \"%.80s\": hex must be lowercase 0-9a-f", s);
		}
		if (alg)
			*alg = (enum regfs_digest_alg)a;
		if (hex)
			*hex = h;
		return 0;
	}
	return regfs_errf(err, -EINVAL, "unsupported digest algorithm in \"%.80s\": use sha256 or sha512", s);
}

bool regfs_digest_valid(const char *s) { return regfs_digest_parse(s, NULL, NULL, NULL) == 0; }

static const EVP_MD *md_for(enum regfs_digest_alg alg)
{
	return alg == REGFS_SHA512 ? EVP_sha512() : EVP_sha256();
}

struct regfs_hasher *regfs_hasher_new(enum regfs_digest_alg alg)
{
	struct regfs_hasher *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->alg = alg;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, md_for(alg), NULL) != 1) {
		regfs_hasher_free(h);
		return NULL;
	}
	return h;
}

void regfs_hasher_update(struct regfs_hasher *h, const void *buf, size_t len)
{
	if (len)
		EVP_DigestUpdate(h->ctx, buf, len);
}

void regfs_hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void regfs_hasher_final(struct regfs_hasher *h, char out[REGFS_DIGEST_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	size_t pl = strlen(algs[h->alg].name);
	memcpy(out, algs[h->alg].name, pl);
	out[pl] = ':';
	regfs_hex_lower(md, n, out + pl + 1);
}

struct regfs_hasher *regfs_hasher_dup(const struct regfs_hasher *src)
{
	struct regfs_hasher *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->alg = src->alg;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_MD_CTX_copy_ex(h->ctx, src->ctx) != 1) {
		regfs_hasher_free(h);
		return NULL;
	}
	return h;
}

void regfs_hasher_free(struct regfs_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void regfs_digest_buf(enum regfs_digest_alg alg, const void *buf, size_t len,
		      char out[REGFS_DIGEST_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(buf, len, md, &n, md_for(alg), NULL);
	size_t pl = strlen(algs[alg].name);
	memcpy(out, algs[alg].name, pl);
	out[pl] = ':';
	regfs_hex_lower(md, n, out + pl + 1);
}

unsigned long long regfs_digest_ino(const char *digest)
{
	const char *hex = strchr(digest, ':');
	hex = hex ? hex + 1 : digest;
	unsigned long long v = 0;
	for (int i = 0; i < 16 && hex[i]; i++) {
		char c = hex[i];
		int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 0;
		v = (v << 4) | (unsigned)d;
	}
	/* Keep the top bit set so digest-derived inodes never collide with the
	 * small sequential numbers the mount gives to directories and views. */
	v |= 1ULL << 63;
	return v;
}
