/* sigv4.c — see include/regfs/sigv4.h. Written from the AWS SigV4 and S3
 * authentication documentation; checked against AWS's published vectors in
 * tests/unit/test_sigv4.c. */
#include <regfs/sigv4.h>

#include <regfs/cmp.h>
#include <regfs/digest.h>
#include <regfs/dynbuf.h>
#include <regfs/fmt.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

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
	regfs_hex_lower(md, sizeof md, out);
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

/* memcmp order, a prefix first. */
static int cmp_span(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = cmp_span(x->name, x->nlen, y->name, y->nlen);
	return c ? c : cmp_span(x->value, x->vlen, y->value, y->vlen);
}

/* Appends the sorted "name=value&..." of the query q. 0 or -ENOMEM. */
static int canonical_query(struct dynbuf *b, const char *q)
{
	if (!q || !*q)
		return 0;
	size_t n = 1;
	for (const char *p = q; *p; p++)
		n += *p == '&';
	struct param *ps = calloc(n, sizeof *ps);
	if (!ps)
		return -ENOMEM;
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
	regfs_qsort(ps, k, sizeof *ps, param_cmp);
	int rc = 0;
	for (size_t i = 0; i < k && !rc; i++)
		rc = dynbuf_printf(b, "%s%.*s=%.*s", i ? "&" : "", (int)ps[i].nlen, ps[i].name,
				   (int)ps[i].vlen, ps[i].value);
	free(ps);
	return rc;
}

/* ---- canonical headers: lowercase names, trimmed values, sorted ---- */

struct chdr {
	char *name, *value; /* name first: sorted with regfs_cmp_str */
};

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

/* Appends "name:value\n"... to `canon` and "a;b" to `signed_names`.
 * 0 or -ENOMEM. */
static int canonical_headers(struct dynbuf *canon, struct dynbuf *signed_names,
			     const struct regfs_sigv4_header *h, size_t n)
{
	struct chdr *hs = calloc(n ? n : 1, sizeof *hs);
	if (!hs)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		hs[i].name = strdup(h[i].name);
		hs[i].value = trim_collapse(h[i].value ? h[i].value : "");
		if (!hs[i].name || !hs[i].value) {
			rc = -ENOMEM;
			continue;
		}
		for (char *c = hs[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	if (!rc)
		regfs_qsort(hs, n, sizeof *hs, regfs_cmp_str);
	for (size_t i = 0; i < n && !rc; i++) {
		/* Repeated names join their values with "," (SigV4 rule). */
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
			rc = dynbuf_printf(canon, ",%s", hs[i].value);
			continue;
		}
		rc = dynbuf_printf(canon, "%s%s:%s", i ? "\n" : "", hs[i].name, hs[i].value);
		if (!rc)
			rc = dynbuf_printf(signed_names, "%s%s", dynbuf_len(signed_names) ? ";" : "",
					   hs[i].name);
	}
	if (!rc && n)
		rc = dynbuf_addstr(canon, "\n");
	for (size_t i = 0; i < n; i++) {
		free(hs[i].name);
		free(hs[i].value);
	}
	free(hs);
	return rc;
}

static char *canonical(const struct regfs_sigv4_request *r, char **signed_out)
{
	struct dynbuf b = DYNBUF_INIT(DYNBUF_NO_CAP), sn = DYNBUF_INIT(DYNBUF_NO_CAP);
	int rc = dynbuf_printf(&b, "%s\n%s\n", r->method, r->path && *r->path ? r->path : "/");
	if (!rc)
		rc = canonical_query(&b, r->query);
	if (!rc)
		rc = dynbuf_addstr(&b, "\n");
	if (!rc)
		rc = canonical_headers(&b, &sn, r->headers, r->n_headers);
	if (!rc)
		rc = dynbuf_printf(&b, "\n%s\n%s", dynbuf_ptr(&sn),
				   r->payload_hash ? r->payload_hash : REGFS_SIGV4_UNSIGNED);
	char *signed_names = rc ? NULL : dynbuf_take(&sn, NULL);
	char *c = rc ? NULL : dynbuf_take(&b, NULL);
	dynbuf_free(&sn);
	dynbuf_free(&b);
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
	char *to_sign = xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, creq_hash);
	if (!to_sign)
		return -1;

	size_t sl = strlen(k->secret_key);
	char *kinit = xasprintf("AWS4%s", k->secret_key);
	if (!kinit) {
		free(to_sign);
		return -1;
	}
	unsigned char kd[32], kr[32], ks[32], kk[32], out[32];
	hmac(kinit, sl + 4, date8, kd);
	hmac(kd, 32, k->region, kr);
	hmac(kr, 32, k->service, ks);
	hmac(ks, 32, "aws4_request", kk);
	hmac(kk, 32, to_sign, out);
	regfs_hex_lower(out, 32, sig);
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
	if (sign(k, amz_date, canon, sig, scope) == 0)
		out = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
				k->access_key, scope, signed_names, sig);
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

	char *cred_raw = xasprintf("%s/%s", k->access_key, scope);
	char *cred_enc = cred_raw ? regfs_sigv4_uri_encode(cred_raw, strlen(cred_raw), false) : NULL;
	free(cred_raw);
	if (!cred_enc)
		return NULL;

	bool q_in = query && *query;
	struct dynbuf q = DYNBUF_INIT(DYNBUF_NO_CAP);
	int rc = dynbuf_printf(&q, "%s%sX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s"
			       "&X-Amz-Date=%s&X-Amz-Expires=%s&X-Amz-SignedHeaders=host",
			       q_in ? query : "", q_in ? "&" : "", cred_enc, amz_date, expires);
	free(cred_enc);
	if (rc)
		return NULL;

	struct regfs_sigv4_header h = {"host", host};
	struct regfs_sigv4_request r = {
		.method = method, .path = path, .query = dynbuf_ptr(&q),
		.headers = &h, .n_headers = 1, .payload_hash = REGFS_SIGV4_UNSIGNED,
	};
	char *canon = canonical(&r, NULL);
	char sig[65];
	if (!canon || sign(k, amz_date, canon, sig, scope) != 0 ||
	    dynbuf_printf(&q, "&X-Amz-Signature=%s", sig)) {
		free(canon);
		dynbuf_free(&q);
		return NULL;
	}
	free(canon);
	return dynbuf_take(&q, NULL);
}
