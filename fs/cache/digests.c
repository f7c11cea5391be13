/* digests.c — interned digests (digests.h is the manual).
 *
 * Entries live in flat arrays indexed by id: raw[id] is a sha256 digest's 32
 * bytes, or (long[id] set) the first 4 bytes hold an index into strs, the
 * copied strings of the other spellings. The hash table is open addressing
 * over ids + 1, at most half full; a sha256's own bytes are its hash. */
#include "digests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/hash.h>

#define RAW 32

struct digtab {
	uint8_t (*raw)[RAW];
	uint8_t *is_long;   /* 1: raw[id] indexes strs */
	size_t n, cap;
	char **strs;
	size_t nstr, capstr, strbytes;
	uint32_t *slot;     /* id + 1; 0 empty */
	size_t nslot;
};

struct digtab *digtab_new(void)
{
	return calloc(1, sizeof(struct digtab));
}

void digtab_free(struct digtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nstr; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t->raw);
	free(t->is_long);
	free(t->slot);
	free(t);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The 32 bytes of "sha256:" + 64 lowercase hex; false for any other string. */
static bool to_raw(const char *d, uint8_t out[RAW])
{
	if (strncmp(d, "sha256:", 7) != 0)
		return false;
	d += 7;
	for (size_t i = 0; i < RAW; i++) {
		int h = hexval(d[2 * i]), l = h < 0 ? -1 : hexval(d[2 * i + 1]);
		if (h < 0 || l < 0)
			return false;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return d[2 * RAW] == 0;
}

size_t digkey_len(const char *d)
{
	uint8_t r[RAW];
	return to_raw(d, r) ? RAW : strlen(d) + 1;
}

bool digkey_put(const char *d, uint8_t *out)
{
	if (to_raw(d, out))
		return true;
	memcpy(out, d, strlen(d) + 1);
	return false;
}

bool digkey_eq(const uint8_t *key, bool raw, const char *d)
{
	uint8_t r[RAW];
	if (!raw)
		return strcmp((const char *)key, d) == 0;
	return to_raw(d, r) && memcmp(r, key, RAW) == 0;
}

bool digkey_same(const uint8_t *a, bool araw, const uint8_t *b, bool braw)
{
	if (araw != braw)
		return false;
	return araw ? memcmp(a, b, RAW) == 0 : strcmp((const char *)a, (const char *)b) == 0;
}

void digkey_str(const uint8_t *key, bool raw, char out[REGFS_DIGEST_MAX])
{
	if (!raw) {
		snprintf(out, REGFS_DIGEST_MAX, "%s", (const char *)key);
		return;
	}
	memcpy(out, "sha256:", 7);
	regfs_hex_lower(key, RAW, out + 7);
}

static uint64_t raw_hash(const uint8_t r[RAW])
{
	uint64_t h;
	memcpy(&h, r, sizeof h);
	return h;
}

static const char *long_str(const struct digtab *t, uint32_t id)
{
	uint32_t k;
	memcpy(&k, t->raw[id], sizeof k);
	return t->strs[k];
}

static uint64_t id_hash(const struct digtab *t, uint32_t id)
{
	return t->is_long[id] ? regfs_fnv1a64_str(long_str(t, id)) : raw_hash(t->raw[id]);
}

/* The slot of the digest (raw, or the string s when not raw): its id + 1's
 * place, or the empty slot where it would go. */
static size_t probe(const struct digtab *t, const uint8_t *raw, const char *s)
{
	size_t mask = t->nslot - 1;
	size_t j = (raw ? raw_hash(raw) : regfs_fnv1a64_str(s)) & mask;
	for (; t->slot[j]; j = (j + 1) & mask) {
		uint32_t id = t->slot[j] - 1;
		if (raw ? !t->is_long[id] && memcmp(t->raw[id], raw, RAW) == 0
			: t->is_long[id] && strcmp(long_str(t, id), s) == 0)
			break;
	}
	return j;
}

static int rehash(struct digtab *t, size_t nslot)
{
	uint32_t *ns = calloc(nslot, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	for (uint32_t id = 0; id < t->n; id++) {
		size_t j = id_hash(t, id) & (nslot - 1);
		while (ns[j])
			j = (j + 1) & (nslot - 1);
		ns[j] = id + 1;
	}
	free(t->slot);
	t->slot = ns;
	t->nslot = nslot;
	return 0;
}

int digtab_reserve(struct digtab *t, size_t n)
{
	size_t nslot = t->nslot ? t->nslot : 1024;
	while ((n + 1) * 2 > nslot)
		nslot *= 2;
	if (nslot > t->nslot && rehash(t, nslot))
		return -ENOMEM;
	if (n <= t->cap)
		return 0;
	void *r = realloc(t->raw, n * sizeof *t->raw);
	if (!r)
		return -ENOMEM;
	t->raw = r;
	void *l = realloc(t->is_long, n);
	if (!l)
		return -ENOMEM;
	t->is_long = l;
	t->cap = n;
	return 0;
}

/* Room for one more entry (and one more string when s). */
static int reserve(struct digtab *t, bool s)
{
	if ((t->n + 1) * 2 > t->nslot && rehash(t, t->nslot ? t->nslot * 2 : 1024))
		return -ENOMEM;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 1024;
		void *r = realloc(t->raw, nc * sizeof *t->raw);
		if (!r)
			return -ENOMEM;
		t->raw = r;
		void *l = realloc(t->is_long, nc);
		if (!l)
			return -ENOMEM;
		t->is_long = l;
		t->cap = nc;
	}
	if (s && t->nstr == t->capstr) {
		size_t nc = t->capstr ? t->capstr * 2 : 16;
		char **v = realloc(t->strs, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		t->strs = v;
		t->capstr = nc;
	}
	return 0;
}

int digtab_intern(struct digtab *t, const char *digest, uint32_t *id, bool *added)
{
	uint8_t raw[RAW];
	bool is_raw = to_raw(digest, raw);
	if (reserve(t, !is_raw))
		return -ENOMEM;
	size_t j = probe(t, is_raw ? raw : NULL, digest);
	if (added)
		*added = !t->slot[j];
	if (t->slot[j]) {
		*id = t->slot[j] - 1;
		return 0;
	}
	uint32_t nid = (uint32_t)t->n;
	if (is_raw) {
		memcpy(t->raw[nid], raw, RAW);
		t->is_long[nid] = 0;
	} else {
		char *c = strdup(digest);
		if (!c)
			return -ENOMEM;
		uint32_t k = (uint32_t)t->nstr;
		t->strs[t->nstr++] = c;
		t->strbytes += strlen(c) + 1;
		memset(t->raw[nid], 0, RAW);
		memcpy(t->raw[nid], &k, sizeof k);
		t->is_long[nid] = 1;
	}
	t->slot[j] = nid + 1;
	t->n++;
	*id = nid;
	return 0;
}

uint32_t digtab_find(const struct digtab *t, const char *digest)
{
	if (!t->nslot)
		return DIGTAB_NONE;
	uint8_t raw[RAW];
	bool is_raw = to_raw(digest, raw);
	size_t j = probe(t, is_raw ? raw : NULL, digest);
	return t->slot[j] ? t->slot[j] - 1 : DIGTAB_NONE;
}

void digtab_str(const struct digtab *t, uint32_t id, char out[REGFS_DIGEST_MAX])
{
	if (t->is_long[id]) {
		snprintf(out, REGFS_DIGEST_MAX, "%s", long_str(t, id));
		return;
	}
	memcpy(out, "sha256:", 7);
	regfs_hex_lower(t->raw[id], RAW, out + 7);
}

void digtab_trim(struct digtab *t)
{
	if (!t->n || t->n == t->cap)
		return;
	void *r = realloc(t->raw, t->n * sizeof *t->raw);
	if (r)
		t->raw = r;
	void *l = realloc(t->is_long, t->n);
	if (l)
		t->is_long = l;
	if (r && l)
		t->cap = t->n;
}

size_t digtab_count(const struct digtab *t)
{
	return t->n;
}

size_t digtab_bytes(const struct digtab *t)
{
	return sizeof *t + t->cap * (RAW + 1) + t->nslot * sizeof *t->slot +
	       t->capstr * sizeof *t->strs + t->strbytes;
}
