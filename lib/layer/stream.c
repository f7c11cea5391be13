/* lib/layer/stream.c — the decoded tar stream of a build (struct lx_src):
 * reading the blob, handing decoded bytes to tar.c, the fixed-size spans of
 * plain tar and single-frame zstd, and the small shared helpers (arena, span
 * list, sha256). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "regfs/log.h"

struct lx_chunk {
	struct lx_chunk *next;
	size_t used, size;
	_Alignas(max_align_t) unsigned char data[];
};

void *lx_arena_alloc(struct lx_arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (n > a->limit || a->used > a->limit - n)
		return NULL;
	struct lx_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t sz = n > 60000 ? n : 60000;
		c = malloc(sizeof *c + sz);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = sz;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	a->used += n;
	return p;
}

char *lx_arena_strndup(struct lx_arena *a, const char *s, size_t n)
{
	char *p = lx_arena_alloc(a, n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void lx_arena_free(struct lx_arena *a)
{
	struct lx_chunk *c = a->head;
	while (c) {
		struct lx_chunk *nx = c->next;
		free(c);
		c = nx;
	}
	a->head = NULL;
	a->used = 0;
}

int lx_grow(void **v, size_t *alloc, size_t n, size_t size, size_t first)
{
	if (n < *alloc)
		return 0;
	size_t na = *alloc ? *alloc * 2 : first;
	void *nv = realloc(*v, na * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*alloc = na;
	return 0;
}

int lx_spans_push(struct lx_spans *s, const struct lx_span *sp)
{
	void *v = s->v;
	if (lx_grow(&v, &s->alloc, s->n, sizeof *s->v, 16))
		return -ENOMEM;
	s->v = v;
	s->v[s->n++] = *sp;
	return 0;
}

void lx_spans_free(struct lx_spans *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].win);
	free(s->v);
	memset(s, 0, sizeof *s);
}

int lx_sha_start(struct lx_sha *h)
{
	if (!h->ctx && !(h->ctx = EVP_MD_CTX_new()))
		return -ENOMEM;
	return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}

void lx_sha_add(struct lx_sha *h, const void *p, size_t n)
{
	if (n)
		EVP_DigestUpdate(h->ctx, p, n);
}

void lx_sha_end(struct lx_sha *h, unsigned char out[32])
{
	unsigned int len = 32;
	EVP_DigestFinal_ex(h->ctx, out, &len);
}

void lx_sha_free(struct lx_sha *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void lx_sha_buf(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 32;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

void lx_opts_fill(struct lx_opts *o, const struct layer_build_opts *in)
{
	static const struct layer_build_opts zero;
	if (!in)
		in = &zero;
	o->name = in->name && *in->name ? in->name : "layer";
	o->span_size = in->span_size ? in->span_size : 4u << 20;
	if (o->span_size < 64u * 1024)
		o->span_size = 64u * 1024;
	if (o->span_size > 64u << 20)
		o->span_size = 64u << 20;
	o->max_entries = in->max_entries ? in->max_entries : 1000000;
	if (o->max_entries > LX_MAX_ENTRIES_HARD)
		o->max_entries = LX_MAX_ENTRIES_HARD;
	o->max_path = in->max_path ? in->max_path : 4096;
	o->max_pax = in->max_pax ? in->max_pax : 1u << 20;
	o->max_meta = in->max_meta ? in->max_meta : 256ull << 20;
	o->max_uncompressed = in->max_uncompressed ? in->max_uncompressed : 1ull << 40;
	o->sink = in->sink;
	o->sink_arg = in->sink_arg;
}

ssize_t lx_src_read_blob(struct lx_src *s, void *buf, size_t len)
{
	if (s->head_pos < s->head_len) {
		size_t n = s->head_len - s->head_pos;
		if (n > len)
			n = len;
		memcpy(buf, s->head + s->head_pos, n);
		s->head_pos += n;
		s->in_total += n;
		return (ssize_t)n;
	}
	ssize_t r = s->rd(s->rd_arg, buf, len);
	if (r < 0)
		return regfs_errf(s->e, (int)r, "%s: reading the blob at byte %llu failed",
		                  s->o->name, (unsigned long long)s->in_total);
	if ((size_t)r > len)
		return regfs_errf(s->e, -EIO, "%s: the blob reader returned more than asked",
		                  s->o->name);
	s->in_total += (uint64_t)r;
	return r;
}

/* Close the fixed span that ends at out_total. */
static int fix_close(struct lx_src *s)
{
	struct lx_span sp = { .in_off = s->fix_start, .in_len = s->out_total - s->fix_start,
	                      .out_off = s->fix_start, .kind = LX_SPAN_PLAIN };
	lx_sha_end(&s->fix_sha, sp.sha);
	int r = lx_spans_push(&s->fix, &sp);
	if (r < 0)
		return r;
	s->fix_start = s->out_total;
	return lx_sha_start(&s->fix_sha);
}

int lx_src_produced(struct lx_src *s, size_t n)
{
	const unsigned char *p = s->obuf + s->olen;
	if (s->o->max_uncompressed - s->out_total < n)
		return regfs_errf(s->e, -E2BIG, "%s: the tar stream is larger than the limit "
		                  "of %llu bytes", s->o->name,
		                  (unsigned long long)s->o->max_uncompressed);
	if (s->o->sink && n) {
		int r = s->o->sink(s->o->sink_arg, p, n);
		if (r < 0)
			return regfs_errf(s->e, r, "%s: writing the decoded stream failed", s->o->name);
	}
	while (s->fix_on && n) {
		uint64_t room = s->fix_start + s->o->span_size - s->out_total;
		size_t k = n < room ? n : (size_t)room;
		lx_sha_add(&s->fix_sha, p, k);
		s->out_total += k;
		s->olen += k;
		p += k;
		n -= k;
		if (s->out_total - s->fix_start == s->o->span_size) {
			int r = fix_close(s);
			if (r < 0)
				return r;
		}
	}
	s->out_total += n;
	s->olen += n;
	return 0;
}

int lx_src_fix_finish(struct lx_src *s)
{
	if (!s->fix_on)
		return 0;
	if (s->out_total > s->fix_start || s->fix.n == 0) {
		int r = fix_close(s);
		if (r < 0)
			return r;
	}
	return 0;
}

void lx_src_compact(struct lx_src *s)
{
	if (s->olen + 4096 <= LX_WIN + LX_CHUNK)
		return;
	memmove(s->obuf, s->obuf + s->olen - LX_WIN, LX_WIN);
	s->olen = s->opos = LX_WIN;
}

static int src_more(struct lx_src *s)
{
	while (s->opos == s->olen) {
		if (s->eof)
			return 1;
		lx_src_compact(s);
		int r = s->fill(s);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Takes n bytes of the tar stream: copied to `d`, or dropped when d is NULL.
 * Reading and skipping share it so a truncation is reported one way. */
static int src_take(struct lx_src *s, unsigned char *d, uint64_t n)
{
	while (n) {
		int r = src_more(s);
		if (r < 0)
			return r;
		if (r > 0)
			return regfs_errf(s->e, -EINVAL, "%s: the tar archive is truncated at byte %llu",
			                  s->o->name, (unsigned long long)s->out_total);
		size_t k = s->olen - s->opos;
		if (k > n)
			k = (size_t)n;
		if (d) {
			memcpy(d, s->obuf + s->opos, k);
			d += k;
		}
		s->opos += k;
		n -= k;
	}
	return 0;
}

int lx_src_read(struct lx_src *s, void *buf, size_t n)
{
	return src_take(s, buf, n);
}

int lx_src_skip(struct lx_src *s, uint64_t n)
{
	return src_take(s, NULL, n);
}

int lx_src_skip_padding(struct lx_src *s, uint64_t n)
{
	while (n) {
		int r = src_more(s);
		if (r)
			return r < 0 ? r : 0;
		size_t k = s->olen - s->opos;
		if (k > n)
			k = (size_t)n;
		s->opos += k;
		n -= k;
	}
	return 0;
}

int lx_src_at_end(struct lx_src *s)
{
	return src_more(s);
}

uint64_t lx_src_pos(const struct lx_src *s)
{
	return s->out_total - (s->olen - s->opos);
}

int lx_src_drain(struct lx_src *s)
{
	for (;;) {
		s->opos = s->olen;
		int r = src_more(s);
		if (r < 0)
			return r;
		if (r > 0)
			return 0;
	}
}

/* ---- plain tar: decoded bytes are the blob's bytes ---- */

static int plain_fill(struct lx_src *s)
{
	ssize_t r = lx_src_read_blob(s, s->obuf + s->olen, LX_WIN + LX_CHUNK - s->olen);
	if (r < 0)
		return (int)r;
	if (r == 0) {
		s->eof = true;
		return 0;
	}
	return lx_src_produced(s, (size_t)r);
}

void lx_src_set_codec(struct lx_src *s, void *codec, int (*fill)(struct lx_src *),
		      void (*done)(struct lx_src *), enum layer_compression comp)
{
	s->codec = codec;
	s->fill = fill;
	s->done = done;
	s->comp = comp;
	s->space = LAYER_SPACE_BLOB;
}

int lx_plain_open(struct lx_src *s)
{
	lx_src_set_codec(s, NULL, plain_fill, NULL, LAYER_PLAIN);
	s->fix_on = true;
	return lx_sha_start(&s->fix_sha);
}
