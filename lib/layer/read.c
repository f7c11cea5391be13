/* lib/layer/read.c — random access: a file offset -> its place in the tar
 * stream (through the sparse map) -> the span holding it -> fetch the span's
 * bytes, verify their sha256, decode, copy. A cursor keeps the last decoded
 * span so sequential reads decode each span once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest span a cursor keeps (a gzip span is about span_size of output, a
 * little more when a deflate block ends late). */
#define LX_CURSOR_MAX (80ull << 20)

struct layer_cursor {
	const struct layer_index *ix;
	size_t k;
	bool valid;
	unsigned char *buf;
	size_t len, alloc;
};

struct layer_cursor *layer_cursor_new(void)
{
	return calloc(1, sizeof(struct layer_cursor));
}

void layer_cursor_free(struct layer_cursor *c)
{
	if (!c)
		return;
	free(c->buf);
	free(c);
}

static size_t span_of(const struct layer_index *ix, uint64_t pos)
{
	size_t lo = 0, hi = ix->spans.n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->spans.v[mid].out_off <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

struct sink {
	unsigned char *dst;
	uint64_t lo, hi;        /* wanted decoded range */
	unsigned char *cache;   /* whole span, or NULL */
	uint64_t span_off;
};

static int sink_out(void *arg, uint64_t off, const void *p, size_t n)
{
	struct sink *s = arg;
	if (s->cache)
		memcpy(s->cache + (off - s->span_off), p, n);
	uint64_t a = off > s->lo ? off : s->lo, b = off + n < s->hi ? off + n : s->hi;
	if (a < b)
		memcpy(s->dst + (a - s->lo), (const unsigned char *)p + (a - off), (size_t)(b - a));
	return 0;
}

static int fetch_span(const struct layer_index *ix, size_t k, unsigned char **out,
                      layer_fetch_fn fetch, void *arg, struct regfs_err *e)
{
	const struct lx_span *sp = &ix->spans.v[k];
	if (sp->in_len > LX_MAX_SPAN_FETCH)
		return regfs_errf(e, -EIO, "span %zu needs %llu bytes, more than the %llu a read "
		                  "may fetch", k, (unsigned long long)sp->in_len,
		                  (unsigned long long)LX_MAX_SPAN_FETCH);
	unsigned char *b = malloc(sp->in_len ? (size_t)sp->in_len : 1);
	if (!b)
		return -ENOMEM;
	size_t got = 0;
	while (got < sp->in_len) {
		ssize_t r = fetch(arg, sp->in_off + got, b + got, (size_t)(sp->in_len - got));
		if (r <= 0) {
			free(b);
			if (r < 0)
				return regfs_errf(e, (int)r, "span %zu: fetching bytes %llu+%llu failed",
				                  k, (unsigned long long)sp->in_off,
				                  (unsigned long long)sp->in_len);
			return regfs_errf(e, -EIO, "span %zu: only %zu of its %llu bytes at %llu "
			                  "could be fetched", k, got, (unsigned long long)sp->in_len,
			                  (unsigned long long)sp->in_off);
		}
		got += (size_t)r;
	}
	unsigned char sha[32];
	lx_sha_buf(b, got, sha);
	if (memcmp(sha, sp->sha, 32) != 0) {
		free(b);
		return regfs_errf(e, -EIO, "span %zu (bytes %llu+%llu): the fetched bytes do not "
		                  "match the index's sha256; the blob or the index is corrupt", k,
		                  (unsigned long long)sp->in_off, (unsigned long long)sp->in_len);
	}
	*out = b;
	return 0;
}

/* Decoded bytes [pos, pos+n) that lie inside span k, into dst. */
static int read_span(const struct layer_index *ix, size_t k, uint64_t pos, unsigned char *dst,
                     size_t n, layer_fetch_fn fetch, void *arg, struct layer_cursor *cur,
                     struct regfs_err *e)
{
	const struct lx_span *sp = &ix->spans.v[k];
	uint64_t slen = lx_span_end(ix, k) - sp->out_off;
	if (cur && cur->valid && cur->ix == ix && cur->k == k) {
		memcpy(dst, cur->buf + (pos - sp->out_off), n);
		return 0;
	}
	struct sink s = { .dst = dst, .lo = pos, .hi = pos + n, .span_off = sp->out_off };
	if (cur && slen <= LX_CURSOR_MAX) {
		cur->valid = false;
		if (cur->alloc < slen) {
			void *nb = realloc(cur->buf, slen ? (size_t)slen : 1);
			if (nb) {
				cur->buf = nb;
				cur->alloc = (size_t)slen;
			}
		}
		if (cur->alloc >= slen)
			s.cache = cur->buf;
	}
	unsigned char *in = NULL;
	int r = fetch_span(ix, k, &in, fetch, arg, e);
	if (r < 0)
		return r;
	if (sp->kind == LX_SPAN_PLAIN)
		r = in ? sink_out(&s, sp->out_off, in, (size_t)sp->in_len) : 0;
	else if (sp->kind == LX_SPAN_ZSTD)
		r = lx_zstd_span(ix, k, in, (size_t)sp->in_len, sink_out, &s, e);
	else
		r = lx_gzip_span(ix, k, in, (size_t)sp->in_len, sink_out, &s, e);
	free(in);
	if (r == 0 && s.cache) {
		cur->ix = ix;
		cur->k = k;
		cur->len = (size_t)slen;
		cur->valid = true;
	}
	return r;
}

/* Where file offset `fo` of `en` is stored: *pos in the tar stream and *run
 * bytes stored contiguously from there; 1 when fo is in a hole of *run bytes. */
static int locate(const struct layer_entry *en, uint64_t fo, uint64_t *pos, uint64_t *run)
{
	if (!en->sparse) {
		*pos = en->offset + fo;
		*run = en->size - fo;
		return 0;
	}
	uint64_t before = 0;
	for (uint32_t i = 0; i < en->nsparse; i++) {
		const struct layer_sparse *s = &en->sparse[i];
		if (fo < s->off) {
			*run = s->off - fo;
			return 1;
		}
		if (fo < s->off + s->len) {
			*pos = en->offset + before + (fo - s->off);
			*run = s->off + s->len - fo;
			return 0;
		}
		before += s->len;
	}
	*run = en->size - fo;
	return 1;
}

static const struct layer_entry *data_entry(const struct layer_index *ix, size_t i)
{
	if (i >= ix->n)
		return NULL;
	const struct layer_entry *en = &ix->ent[i];
	if (en->type == LAYER_HARDLINK && en->link_index < ix->n)
		en = &ix->ent[en->link_index];
	return en->type == LAYER_REG ? en : NULL;
}

ssize_t layer_read(const struct layer_index *ix, size_t i, uint64_t off, void *buf,
                   size_t len, layer_fetch_fn fetch, void *arg, struct layer_cursor *cur,
                   struct regfs_err *e)
{
	const struct layer_entry *en = data_entry(ix, i);
	if (!en)
		return regfs_errf(e, i >= ix->n ? -ENOENT : -EINVAL,
		                  "entry %zu is not a regular file of the layer", i);
	if (off >= en->size)
		return 0;
	if (len > en->size - off)
		len = (size_t)(en->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	size_t done = 0;
	while (done < len) {
		uint64_t pos = 0, run;
		int hole = locate(en, off + done, &pos, &run);
		size_t n = run < len - done ? (size_t)run : len - done;
		if (hole) {
			memset((char *)buf + done, 0, n);
		} else {
			size_t k = span_of(ix, pos);
			uint64_t end = lx_span_end(ix, k);
			if (ix->spans.n == 0 || pos >= end)
				return regfs_errf(e, -EIO, "entry \"%s\": data at %llu is outside the "
				                  "index's spans", en->path, (unsigned long long)pos);
			if (n > end - pos)
				n = (size_t)(end - pos);
			int r = read_span(ix, k, pos, (unsigned char *)buf + done, n, fetch, arg, cur, e);
			if (r < 0) {
				regfs_err_prefix(e, "reading \"%s\": ", en->path);
				return r;
			}
		}
		done += n;
	}
	return (ssize_t)done;
}

int layer_index_span_range(const struct layer_index *ix, size_t i, uint64_t off,
                           uint64_t *fetch_off, uint64_t *fetch_len)
{
	const struct layer_entry *en = data_entry(ix, i);
	if (!en)
		return i >= ix->n ? -ENOENT : -EINVAL;
	uint64_t pos, run;
	if (off >= en->size || locate(en, off, &pos, &run) || ix->spans.n == 0)
		return -ENODATA;
	const struct lx_span *sp = &ix->spans.v[span_of(ix, pos)];
	*fetch_off = sp->in_off;
	*fetch_len = sp->in_len;
	return 0;
}
