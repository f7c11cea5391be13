/* sigv4.c — see include/regfs/sigv4.h. Written from the AWS SigV4 and S3
 * authentication documentation; checked against AWS's published vectors in
 * tests/unit/test_sigv4.c. */
#include <regfs/sigv4.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* A growable string; on allocation failure `oom` is set and appends stop. */
struct sb {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_addn(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *s) { sb_addn(b, s, strlen(s)); }

static char *sb_take(struct sb *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void regfs_sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void regfs_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	hex(md, sizeof md, out);
}

char *regfs_sigv4_uri_encode(const char *s, size_t len, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	char *out = malloc(len * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
		    (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = digits[c >> 4];
			*o++ = digits[c & 15];
		}
	}
	*o = '\0';
	return out;
}

/* ---- canonical query: parameters sorted by name, then value ---- */

struct param {
	const char *name, *value;
	size_t nlen, vlen;
};

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
	int c = memcmp(x->name, y->name, n);
	if (c || x->nlen != y->nlen)
		return c ? c : (x->nlen < y->nlen ? -1 : 1);
	n = x->vlen < y->vlen ? x->vlen : y->vlen;
	c = memcmp(x->value, y->value, n);
	if (c || x->vlen != y->vlen)
		return c ? c : (x->vlen < y->vlen ? -1 : 1);
	return 0;
}

static void canonical_query(struct sb *b, const char *q)
{
	if (!q || !*q)
		return;
	size_t n = 1;
	for (const char *p = q; *p; p++)
		n += *p == '&';
	struct param *ps = calloc(n, sizeof *ps);
	if (!ps) {
		b->oom = true;
		return;
	}
	size_t k = 0;
	const char *p = q;
	while (*p) {
		const char *end = strchr(p, '&');
		if (!end)
			end = p + strlen(p);
		if (end > p) {
			const char *eq = memchr(p, '=', (size_t)(end - p));
			ps[k].name = p;
			ps[k].nlen = (size_t)((eq ? eq : end) - p);
			ps[k].value = eq ? eq + 1 : end;
			ps[k].vlen = eq ? (size_t)(end - eq - 1) : 0;
			k++;
		}
		p = *end ? end + 1 : end;
	}
	qsort(ps, k, sizeof *ps, param_cmp);
	for (size_t i = 0; i < k; i++) {
		if (i)
			sb_add(b, "&");
		sb_addn(b, ps[i].name, ps[i].nlen);
		sb_add(b, "=");
		sb_addn(b, ps[i].value, ps[i].vlen);
	}
	free(ps);
}

/* ---- canonical headers: lowercase names, trimmed values, sorted ---- */

struct chdr {
	char *name, *value;
};

static int chdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct chdr *)a)->name, ((const struct chdr *)b)->name);
}

static char *trim_collapse(const char *v)
{
	char *out = malloc(strlen(v) + 1), *o = out;
	if (!out)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	bool space = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space && o > out)
			*o++ = ' ';
		space = false;
		*o++ = *v;
	}
	*o = '\0';
	return out;
}

/* Appends "name:value\n"... to `canon` and "a;b" to `signed_names`. */
static void canonical_headers(struct sb *canon, struct sb *signed_names,
			      const struct regfs_sigv4_header *h, size_t n)
{
	struct chdr *hs = calloc(n ? n : 1, sizeof *hs);
	if (!hs) {
		canon->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		hs[i].name = strdup(h[i].name);
		hs[i].value = trim_collapse(h[i].value ? h[i].value : "");
		if (!hs[i].name || !hs[i].value) {
			canon->oom = true;
			continue;
		}
		for (char *c = hs[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	if (!canon->oom) {
		qsort(hs, n, sizeof *hs, chdr_cmp);
		for (size_t i = 0; i < n; i++) {
			/* Repeated names join their values with "," (SigV4 rule). */
			bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
			if (repeat) {
				canon->len--; /* drop the previous "\n" */
				sb_add(canon, ",");
			} else {
				sb_add(canon, hs[i].name);
				sb_add(canon, ":");
				if (signed_names->len)
					sb_add(signed_names, ";");
				sb_add(signed_names, hs[i].name);
			}
			sb_add(canon, hs[i].value);
			sb_add(canon, "\n");
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(hs[i].name);
		free(hs[i].value);
	}
	free(hs);
	if (signed_names->oom)
		canon->oom = true;
}

static char *canonical(const struct regfs_sigv4_request *r, char **signed_out)
{
	struct sb b = {0}, sn = {0};
	sb_add(&b, r->method);
	sb_add(&b, "\n");
	sb_add(&b, r->path && *r->path ? r->path : "/");
	sb_add(&b, "\n");
	canonical_query(&b, r->query);
	sb_add(&b, "\n");
	canonical_headers(&b, &sn, r->headers, r->n_headers);
	sb_add(&b, "\n");
	sb_add(&b, sn.s ? sn.s : "");
	sb_add(&b, "\n");
	sb_add(&b, r->payload_hash ? r->payload_hash : REGFS_SIGV4_UNSIGNED);
	char *signed_names = sb_take(&sn);
	char *c = sb_take(&b);
	if (!c || !signed_names) {
		free(c);
		free(signed_names);
		return NULL;
	}
	if (signed_out)
		*signed_out = signed_names;
	else
		free(signed_names);
	return c;
}

char *regfs_sigv4_canonical_request(const struct regfs_sigv4_request *r)
{
	return canonical(r, NULL);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &olen);
}

/* Signature (hex, 64 chars + NUL) of a canonical request. */
static int sign(const struct regfs_sigv4_key *k, const char *amz_date, const char *canon,
		char sig[65], char scope[128])
{
	char date8[9];
	snprintf(date8, sizeof date8, "%.8s", amz_date);
	snprintf(scope, 128, "%s/%s/%s/aws4_request", date8, k->region, k->service);

	char creq_hash[65];
	regfs_sigv4_sha256_hex(canon, strlen(canon), creq_hash);
	struct sb sts = {0};
	sb_add(&sts, "AWS4-HMAC-SHA256\n");
	sb_add(&sts, amz_date);
	sb_add(&sts, "\n");
	sb_add(&sts, scope);
	sb_add(&sts, "\n");
	sb_add(&sts, creq_hash);
	char *to_sign = sb_take(&sts);
	if (!to_sign)
		return -1;

	size_t sl = strlen(k->secret_key);
	char *kinit = malloc(sl + 5);
	if (!kinit) {
		free(to_sign);
		return -1;
	}
	memcpy(kinit, "AWS4", 4);
	memcpy(kinit + 4, k->secret_key, sl + 1);
	unsigned char kd[32], kr[32], ks[32], kk[32], out[32];
	hmac(kinit, sl + 4, date8, kd);
	hmac(kd, 32, k->region, kr);
	hmac(kr, 32, k->service, ks);
	hmac(ks, 32, "aws4_request", kk);
	hmac(kk, 32, to_sign, out);
	hex(out, 32, sig);
	OPENSSL_cleanse(kinit, sl + 4);
	OPENSSL_cleanse(kk, sizeof kk);
	free(kinit);
	free(to_sign);
	return 0;
}

char *regfs_sigv4_authorization(const struct regfs_sigv4_key *k, const char *amz_date,
				const struct regfs_sigv4_request *r)
{
	char *signed_names = NULL;
	char *canon = canonical(r, &signed_names);
	if (!canon)
		return NULL;
	char sig[65], scope[128];
	char *out = NULL;
	if (sign(k, amz_date, canon, sig, scope) == 0) {
		size_t n = strlen(k->access_key) + strlen(scope) + strlen(signed_names) + 128;
		out = malloc(n);
		if (out)
			snprintf(out, n, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
				 k->access_key, scope, signed_names, sig);
	}
	free(canon);
	free(signed_names);
	return out;
}

char *regfs_sigv4_presign_query(const struct regfs_sigv4_key *k, const char *amz_date,
				const char *method, const char *host, const char *path,
				const char *query, int expires_s)
{
	char date8[9], scope[128], expires[24];
	snprintf(date8, sizeof date8, "%.8s", amz_date);
	snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, k->region, k->service);
	snprintf(expires, sizeof expires, "%d", expires_s);

	struct sb cred = {0};
	sb_add(&cred, k->access_key);
	sb_add(&cred, "/");
	sb_add(&cred, scope);
	char *cred_raw = sb_take(&cred);
	char *cred_enc = cred_raw ? regfs_sigv4_uri_encode(cred_raw, strlen(cred_raw), false) : NULL;
	free(cred_raw);
	if (!cred_enc)
		return NULL;

	struct sb q = {0};
	if (query && *query) {
		sb_add(&q, query);
		sb_add(&q, "&");
	}
	sb_add(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
	sb_add(&q, cred_enc);
	sb_add(&q, "&X-Amz-Date=");
	sb_add(&q, amz_date);
	sb_add(&q, "&X-Amz-Expires=");
	sb_add(&q, expires);
	sb_add(&q, "&X-Amz-SignedHeaders=host");
	free(cred_enc);
	if (q.oom) {
		free(q.s);
		return NULL;
	}

	struct regfs_sigv4_header h = {"host", host};
	struct regfs_sigv4_request r = {
		.method = method, .path = path, .query = q.s,
		.headers = &h, .n_headers = 1, .payload_hash = REGFS_SIGV4_UNSIGNED,
	};
	char *canon = canonical(&r, NULL);
	char sig[65];
	if (!canon || sign(k, amz_date, canon, sig, scope) != 0) {
		free(canon);
		free(q.s);
		return NULL;
	}
	free(canon);
	sb_add(&q, "&X-Amz-Signature=");
	sb_add(&q, sig);
	return sb_take(&q);
}
