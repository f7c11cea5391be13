/* lib/layer/format.c — our on-disk layer index (docs/layer-index.md):
 * "RGFSLIX\0", version, LEB128 varints, entries in breadth-first order with
 * their name only (the path is the parent's path + "/" + name), the spans
 * with their compressed windows and sha256, and a trailing sha256 of all that
 * precedes it. The decoder trusts nothing: every count, offset, name and
 * link is checked before it is used. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

#define MAGIC "RGFSLIX"
#define VERSION 1

static int put_v(struct dynbuf *b, uint64_t v)
{
	unsigned char t[10];
	size_t n = 0;
	do {
		t[n] = v & 0x7f;
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	return dynbuf_add(b, t, n);
}

static int put_s(struct dynbuf *b, const void *p, size_t n)
{
	int r = put_v(b, n);
	return r ? r : dynbuf_add(b, p, n);
}

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int put_entry(struct dynbuf *b, const struct layer_entry *e)
{
	uint64_t f[] = { e->type, e->flags, e->mode, e->uid, e->gid, zz(e->mtime), e->mtime_nsec,
	                 e->devmajor, e->devminor, e->parent, e->size, e->stored, e->offset,
	                 e->link_index == LAYER_NONE ? 0 : (uint64_t)e->link_index + 1,
	                 e->nxattrs, e->sparse ? (uint64_t)e->nsparse + 1 : 0 };
	int r = 0;
	for (size_t i = 0; i < sizeof f / sizeof f[0] && !r; i++)
		r = put_v(b, f[i]);
	if (!r)
		r = put_s(b, e->name, strlen(e->name));
	if (!r)
		r = put_v(b, e->link ? strlen(e->link) + 1 : 0);   /* 0: no link */
	if (!r && e->link)
		r = dynbuf_add(b, e->link, strlen(e->link));
	for (uint32_t i = 0; i < e->nxattrs && !r; i++) {
		r = put_s(b, e->xattrs[i].name, strlen(e->xattrs[i].name));
		if (!r)
			r = put_s(b, e->xattrs[i].value, e->xattrs[i].len);
	}
	for (uint32_t i = 0; i < e->nsparse && !r; i++) {
		r = put_v(b, e->sparse[i].off);
		if (!r)
			r = put_v(b, e->sparse[i].len);
	}
	return r;
}

static int put_span(struct dynbuf *b, const struct lx_span *s)
{
	uint64_t f[] = { s->in_off, s->in_len, s->out_off, s->kind, s->bits, s->win_raw };
	int r = 0;
	for (size_t i = 0; i < sizeof f / sizeof f[0] && !r; i++)
		r = put_v(b, f[i]);
	if (!r)
		r = put_s(b, s->win, s->win_len);
	return r ? r : dynbuf_add(b, s->sha, 32);
}

/* The entries, deflated: names and fields repeat a lot (a layer of 100k
 * small files has an index a tenth the size uncompressed would be). */
static int put_entries(const struct layer_index *ix, struct dynbuf *out)
{
	struct dynbuf body = DYNBUF_INIT(DYNBUF_NO_CAP);
	int r = 0;
	for (size_t i = 0; i < ix->n && !r; i++)
		r = put_entry(&body, &ix->ent[i]);
	uLongf cl = compressBound(dynbuf_len(&body));
	unsigned char *c = r ? NULL : malloc(cl);
	if (!r && !c)
		r = -ENOMEM;
	if (!r && compress2(c, &cl, (const Bytef *)dynbuf_ptr(&body), dynbuf_len(&body),
	                    Z_DEFAULT_COMPRESSION) != Z_OK)
		r = -ENOMEM;
	if (!r)
		r = put_v(out, dynbuf_len(&body));
	if (!r)
		r = put_s(out, c, cl);
	free(c);
	dynbuf_free(&body);
	return r;
}

int layer_index_encode(const struct layer_index *ix, struct dynbuf *out, struct regfs_err *e)
{
	size_t start = dynbuf_len(out);
	unsigned char hdr[12] = MAGIC;
	hdr[8] = VERSION;
	hdr[9] = (unsigned char)ix->comp;
	hdr[10] = (unsigned char)ix->space;
	int r = dynbuf_add(out, hdr, sizeof hdr);
	uint64_t f[] = { ix->blob_size, ix->tar_size, ix->span_size, ix->frames, ix->n,
	                 ix->spans.n };
	for (size_t i = 0; i < sizeof f / sizeof f[0] && !r; i++)
		r = put_v(out, f[i]);
	if (!r)
		r = put_entries(ix, out);
	for (size_t i = 0; i < ix->spans.n && !r; i++)
		r = put_span(out, &ix->spans.v[i]);
	if (!r) {
		unsigned char sha[32];
		lx_sha_buf(dynbuf_ptr(out) + start, dynbuf_len(out) - start, sha);
		r = dynbuf_add(out, sha, 32);
	}
	if (r < 0)
		return regfs_errf(e, r, "encoding the layer index: %s",
		                  r == -E2BIG ? "larger than the buffer's cap" : "out of memory");
	return 0;
}

/* ---- decode ---- */

struct rd {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t get_v(struct rd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		unsigned char c = *r->p++;
		if (shift == 63 && c > 1) {
			r->bad = true;
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* A length-prefixed byte string; NULL (bad set) when it does not fit. */
static const unsigned char *get_s(struct rd *r, uint64_t *len, uint64_t max)
{
	*len = get_v(r);
	if (r->bad || *len > max || *len > (uint64_t)(r->end - r->p)) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += *len;
	return p;
}

struct dec {
	struct rd r;
	struct layer_index *ix;
	const struct lx_opts *o;
	const char *why;
};

#define BAD(d, msg) ((d)->why = (msg), -EINVAL)

/* A name component: not empty, no '/', no NUL, not "." or "..". */
static bool name_ok(const unsigned char *p, uint64_t n)
{
	if (n == 0 || memchr(p, '/', n) || memchr(p, 0, n))
		return false;
	return !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

static int dec_strings(struct dec *d, struct layer_entry *e, size_t i)
{
	struct lx_arena *a = &d->ix->arena;
	uint64_t nl, ll;
	const unsigned char *nm = get_s(&d->r, &nl, d->o->max_path);
	if (!nm || (i == 0 ? nl != 0 : !name_ok(nm, nl)))
		return BAD(d, "an entry name is invalid");
	const char *pp = i ? d->ix->ent[e->parent].path : "";
	size_t pl = strlen(pp), full = pl + (pl ? 1 : 0) + (size_t)nl;
	if (full > d->o->max_path)
		return BAD(d, "a path is longer than the limit");
	char *path = lx_arena_alloc(a, full + 1);
	if (!path)
		return BAD(d, "names exceed the memory limit");
	memcpy(path, pp, pl);
	if (pl)
		path[pl] = '/';
	memcpy(path + full - nl, nm, nl);
	path[full] = 0;
	e->path = path;
	e->name = path + full - nl;
	ll = get_v(&d->r);
	if (d->r.bad || ll > d->o->max_path + 1ull || ll - (ll ? 1 : 0) > (uint64_t)(d->r.end - d->r.p))
		return BAD(d, "a link target is invalid");
	bool want_link = e->type == LAYER_SYMLINK || e->type == LAYER_HARDLINK;
	if (want_link != (ll != 0) || (ll && (ll == 1 || memchr(d->r.p, 0, ll - 1))))
		return BAD(d, "a link target is missing, empty or not expected");
	if (ll) {
		if (!(e->link = lx_arena_strndup(a, (const char *)d->r.p, ll - 1)))
			return BAD(d, "names exceed the memory limit");
		d->r.p += ll - 1;
	}
	return 0;
}

static int dec_xattrs(struct dec *d, struct layer_entry *e)
{
	if (!e->nxattrs)
		return 0;
	if (e->nxattrs > (uint64_t)(d->r.end - d->r.p) / 2)
		return BAD(d, "an xattr count is too large");
	struct layer_xattr *x = lx_arena_alloc(&d->ix->arena, e->nxattrs * sizeof *x);
	if (!x)
		return BAD(d, "xattrs exceed the memory limit");
	for (uint32_t i = 0; i < e->nxattrs; i++) {
		uint64_t nl, vl;
		const unsigned char *n = get_s(&d->r, &nl, d->o->max_pax);
		const unsigned char *v = n ? get_s(&d->r, &vl, d->o->max_pax) : NULL;
		if (!v || nl == 0 || memchr(n, 0, nl))
			return BAD(d, "an xattr is invalid");
		x[i].name = lx_arena_strndup(&d->ix->arena, (const char *)n, nl);
		void *c = lx_arena_alloc(&d->ix->arena, vl ? vl : 1);
		if (!x[i].name || !c)
			return BAD(d, "xattrs exceed the memory limit");
		memcpy(c, v, vl);
		x[i].value = c;
		x[i].len = (uint32_t)vl;
	}
	e->xattrs = x;
	return 0;
}

static int dec_sparse(struct dec *d, struct layer_entry *e, uint64_t nsp1)
{
	if (!nsp1)
		return e->type != LAYER_REG || e->stored == e->size ? 0 :
		       BAD(d, "stored and logical sizes differ");
	if (e->type != LAYER_REG || nsp1 - 1 > (uint64_t)(d->r.end - d->r.p) / 2)
		return BAD(d, "a sparse map is invalid");
	e->nsparse = (uint32_t)(nsp1 - 1);
	struct layer_sparse *s = lx_arena_alloc(&d->ix->arena, (e->nsparse + 1) * sizeof *s);
	if (!s)
		return BAD(d, "sparse maps exceed the memory limit");
	uint64_t end = 0, sum = 0;
	for (uint32_t i = 0; i < e->nsparse; i++) {
		s[i].off = get_v(&d->r);
		s[i].len = get_v(&d->r);
		if (d->r.bad || s[i].off < end || s[i].len > e->size || s[i].off > e->size - s[i].len)
			return BAD(d, "a sparse map is invalid");
		end = s[i].off + s[i].len;
		sum += s[i].len;
	}
	if (sum != e->stored)
		return BAD(d, "a sparse map does not match the stored size");
	e->sparse = s;
	return 0;
}

static int dec_entry(struct dec *d, size_t i)
{
	uint64_t f[16];
	for (size_t k = 0; k < 16; k++)
		f[k] = get_v(&d->r);
	if (d->r.bad)
		return BAD(d, "truncated entry");
	struct layer_entry *e = &d->ix->ent[i];
	if (f[0] > LAYER_FIFO || f[1] > 7 || f[2] > 07777 || f[3] > UINT32_MAX ||
	    f[4] > UINT32_MAX || f[6] >= 1000000000 || f[7] > UINT32_MAX || f[8] > UINT32_MAX)
		return BAD(d, "an entry field is out of range");
	*e = (struct layer_entry){ .type = (uint8_t)f[0], .flags = (uint8_t)f[1],
		.mode = (uint32_t)f[2], .uid = (uint32_t)f[3], .gid = (uint32_t)f[4],
		.mtime = (int64_t)(f[5] >> 1) ^ -(int64_t)(f[5] & 1), .mtime_nsec = (uint32_t)f[6],
		.devmajor = (uint32_t)f[7], .devminor = (uint32_t)f[8], .size = f[10],
		.stored = f[11], .offset = f[12], .link_index = LAYER_NONE };
	if (i == 0 ? (f[9] != 0 || e->type != LAYER_DIR) :
	    (f[9] >= i || d->ix->ent[f[9]].type != LAYER_DIR || f[9] < d->ix->ent[i - 1].parent))
		return BAD(d, "an entry's parent is invalid");
	e->parent = (uint32_t)f[9];
	if (f[13] > d->ix->n || f[13] == i + 1 || (e->type == LAYER_HARDLINK) != (f[13] != 0))
		return BAD(d, "a hard link is invalid");
	e->link_index = f[13] ? (uint32_t)(f[13] - 1) : LAYER_NONE;
	if (e->type != LAYER_REG && e->stored)
		return BAD(d, "a non-file has data");
	if (e->stored > d->ix->tar_size || e->offset > d->ix->tar_size - e->stored)
		return BAD(d, "an entry's data lies outside the tar stream");
	if (f[14] > UINT32_MAX || f[15] > UINT32_MAX)
		return BAD(d, "an entry count is out of range");
	e->nxattrs = (uint32_t)f[14];
	int r = dec_strings(d, e, i);
	if (!r)
		r = dec_xattrs(d, e);
	if (!r)
		r = dec_sparse(d, e, f[15]);
	if (!r && i > 1 && e->parent == d->ix->ent[i - 1].parent &&
	    strcmp(d->ix->ent[i - 1].name, e->name) >= 0)
		return BAD(d, "siblings are not sorted by name");
	return r;
}

static int dec_span(struct dec *d, size_t k)
{
	struct layer_index *ix = d->ix;
	struct lx_span *s = &ix->spans.v[k];
	uint64_t f[6];
	for (size_t i = 0; i < 6; i++)
		f[i] = get_v(&d->r);
	uint64_t wl;
	const unsigned char *w = get_s(&d->r, &wl, compressBound(LX_WIN));
	if (d->r.bad || (size_t)(d->r.end - d->r.p) < 32)
		return BAD(d, "truncated span");
	*s = (struct lx_span){ .in_off = f[0], .in_len = f[1], .out_off = f[2],
	                       .kind = (uint8_t)f[3], .bits = (uint8_t)f[4],
	                       .win_raw = (uint32_t)f[5], .win_len = (uint32_t)wl };
	memcpy(s->sha, d->r.p, 32);
	d->r.p += 32;
	uint64_t space = ix->space == LAYER_SPACE_BLOB ? ix->blob_size : ix->tar_size;
	bool plain = ix->comp == LAYER_PLAIN || ix->space == LAYER_SPACE_DECODED;
	bool want_kind_ok = plain ? f[3] == LX_SPAN_PLAIN :
		ix->comp == LAYER_ZSTD ? f[3] == LX_SPAN_ZSTD :
		(f[3] == LX_SPAN_GZ_HEADER || f[3] == LX_SPAN_GZ_RAW);
	if (!want_kind_ok || f[4] > 7 || f[5] > LX_WIN || f[1] > space || f[0] > space - f[1])
		return BAD(d, "a span is out of range");
	if (k == 0 ? f[2] != 0 : f[2] <= ix->spans.v[k - 1].out_off)
		return BAD(d, "spans are not in order");
	if (f[2] >= ix->tar_size && !(k == 0 && ix->tar_size == 0))
		return BAD(d, "a span starts past the tar stream");
	if (wl && !(s->win = malloc(wl)))
		return -ENOMEM;
	if (wl)
		memcpy(s->win, w, wl);
	return 0;
}

/* Plain spans are copied as they are: their fetched length must equal the
 * decoded length they stand for. Hard links must end on a non-link. */
static int dec_check(struct dec *d)
{
	struct layer_index *ix = d->ix;
	for (size_t k = 0; k < ix->spans.n; k++) {
		const struct lx_span *s = &ix->spans.v[k];
		if (s->kind == LX_SPAN_PLAIN &&
		    (s->in_off != s->out_off || s->in_len != lx_span_end(ix, k) - s->out_off))
			return BAD(d, "a plain span's length does not match");
	}
	for (size_t i = 0; i < ix->n; i++) {
		const struct layer_entry *e = &ix->ent[i];
		if (e->type != LAYER_HARDLINK)
			continue;
		const struct layer_entry *t = &ix->ent[e->link_index];
		if (t->type == LAYER_HARDLINK || t->type == LAYER_DIR)
			return BAD(d, "a hard link points to a link or a directory");
	}
	if (ix->tar_size && !ix->spans.n)
		return BAD(d, "no spans");
	return 0;
}

static int dec_header(struct dec *d, const unsigned char *p)
{
	struct layer_index *ix = d->ix;
	if (memcmp(p, MAGIC, 8) != 0)
		return BAD(d, "not a layer index (bad magic)");
	if (p[8] != VERSION)
		return BAD(d, "unsupported version");
	if (p[9] > LAYER_ZSTD || p[10] > LAYER_SPACE_DECODED || p[11])
		return BAD(d, "bad header fields");
	ix->comp = p[9];
	ix->space = p[10];
	d->r.p = p + 12;
	ix->blob_size = get_v(&d->r);
	ix->tar_size = get_v(&d->r);
	ix->span_size = get_v(&d->r);
	uint64_t frames = get_v(&d->r), n = get_v(&d->r), ns = get_v(&d->r);
	if (d->r.bad || n == 0 || n > d->o->max_entries + 1ull ||
	    ns > (uint64_t)(d->r.end - d->r.p) / 38)
		return BAD(d, "counts out of range");
	ix->frames = (size_t)frames;
	ix->n = (size_t)n;
	ix->ent = calloc(ix->n, sizeof *ix->ent);
	ix->spans.v = calloc(ns ? ns : 1, sizeof *ix->spans.v);
	if (!ix->ent || !ix->spans.v)
		return -ENOMEM;
	ix->spans.n = ix->spans.alloc = (size_t)ns;
	return 0;
}

/* Inflate the entries section and decode every entry from it. */
static int dec_entries(struct dec *d)
{
	uint64_t raw = get_v(&d->r), cl;
	const unsigned char *c = get_s(&d->r, &cl, UINT64_MAX);
	/* at most 180 bytes of fields per entry plus the names, and deflate
	 * expands at most about 1032:1 */
	if (!c || raw > d->o->max_meta + 180ull * d->ix->n || raw / 1032 > cl + 1 ||
	    d->ix->n > raw / 18 + 1)
		return BAD(d, "the entries section's sizes are out of range");
	unsigned char *b = malloc(raw ? (size_t)raw : 1);
	if (!b)
		return -ENOMEM;
	uLongf got = (uLongf)raw;
	int r = 0;
	if (uncompress(b, &got, c, (uLong)cl) != Z_OK || got != raw)
		r = BAD(d, "the entries section does not inflate");
	struct rd outer = d->r;
	d->r = (struct rd){ b, b + raw, false };
	for (size_t i = 0; r == 0 && i < d->ix->n; i++)
		r = dec_entry(d, i);
	if (r == 0 && d->r.p != d->r.end)
		r = BAD(d, "trailing bytes after the entries");
	d->r = outer;
	free(b);
	return r;
}

int layer_index_decode(const void *p, size_t n, const struct layer_build_opts *opts,
                       struct layer_index **out, struct regfs_err *e)
{
	struct lx_opts o;
	lx_opts_fill(&o, opts);
	*out = NULL;
	struct layer_index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return -ENOMEM;
	ix->arena.limit = o.max_meta;
	struct dec d = { .ix = ix, .o = &o, .r = { .end = (const unsigned char *)p + n - 32 } };
	unsigned char sha[32];
	int r;
	if (n < 12 + 32)
		r = BAD(&d, "too short");
	else if (lx_sha_buf(p, n - 32, sha), memcmp(sha, (const char *)p + n - 32, 32) != 0)
		r = BAD(&d, "its trailing sha256 does not match (corrupt)");
	else
		r = dec_header(&d, p);
	if (r == 0)
		r = dec_entries(&d);
	for (size_t k = 0; r == 0 && k < ix->spans.n; k++)
		r = dec_span(&d, k);
	if (r == 0 && d.r.p != d.r.end)
		r = BAD(&d, "trailing bytes");
	if (r == 0)
		r = dec_check(&d);
	if (r == 0)
		r = lx_index_children_build(ix);
	if (r < 0) {
		layer_index_free(ix);
		if (r == -EINVAL)
			return regfs_errf(e, r, "invalid layer index: %s", d.why);
		return regfs_errf(e, r, "decoding the layer index: out of memory");
	}
	ix->encoded_size = n;
	*out = ix;
	return 0;
}
