/* lib/layer/gzip.c — gzip layers: checkpoints during the build and the
 * decoding of one span at read time.
 *
 * The technique is the one zlib's examples/zran.c describes (this is our own
 * code): inflate with Z_BLOCK stops at every deflate block boundary; at a
 * boundary about span_size bytes of output after the previous checkpoint we
 * record the compressed position (byte + the bits of the previous byte still
 * unused) and the 32 KiB of output before it (the window a raw inflate needs
 * as its dictionary to resume there), zlib-compressed. A span is the
 * compressed range between two checkpoints; its sha256 is taken over exactly
 * the bytes a reader will fetch. Multi-member gzip: members follow each other
 * in the decoded stream; a raw inflate that reaches a member's end skips the
 * 8-byte trailer and carries on with the next member's header. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "regfs/log.h"

struct gz_build {
	z_stream zs;
	unsigned char ibuf[LX_IBUF];
	uint64_t ibuf_off;        /* blob offset of ibuf[0] */
	struct lx_sha sha;        /* of the open span */
	struct lx_span open;      /* the open span (in_len and sha not yet known) */
	uint64_t last_cp_out;
	unsigned char last_byte;  /* last compressed byte consumed */
	bool member_done, trailing;
};

static int gz_close_span(struct lx_src *s, struct gz_build *g, uint64_t in_end)
{
	g->open.in_len = in_end - g->open.in_off;
	lx_sha_end(&g->sha, g->open.sha);
	int r = lx_spans_push(&s->spans, &g->open);
	if (r < 0)
		return r;
	g->open.win = NULL;
	return 0;
}

static int gz_checkpoint(struct lx_src *s, struct gz_build *g)
{
	uint64_t in = g->ibuf_off + (uint64_t)(g->zs.next_in - g->ibuf);
	int bits = g->zs.data_type & 7;
	int r = gz_close_span(s, g, in);
	if (r < 0)
		return r;
	size_t wl = s->olen < LX_WIN ? s->olen : LX_WIN;
	uLongf clen = compressBound(wl);
	unsigned char *w = malloc(clen);
	if (!w)
		return -ENOMEM;
	if (compress2(w, &clen, s->obuf + s->olen - wl, wl, Z_DEFAULT_COMPRESSION) != Z_OK) {
		free(w);
		return -ENOMEM;
	}
	g->open = (struct lx_span){ .in_off = in - (bits ? 1 : 0), .out_off = s->out_total,
	                            .kind = LX_SPAN_GZ_RAW, .bits = (uint8_t)bits,
	                            .win_raw = (uint32_t)wl, .win_len = (uint32_t)clen,
	                            .win = w };
	g->last_cp_out = s->out_total;
	if ((r = lx_sha_start(&g->sha)) < 0)
		return r;
	if (bits)
		lx_sha_add(&g->sha, &g->last_byte, 1);
	return 0;
}

static int gz_refill(struct lx_src *s, struct gz_build *g)
{
	ssize_t r = lx_src_read_blob(s, g->ibuf, sizeof g->ibuf);
	if (r < 0)
		return (int)r;
	g->ibuf_off = s->in_total - (uint64_t)r;
	g->zs.next_in = g->ibuf;
	g->zs.avail_in = (uInt)r;
	if (r > 0)
		return 0;
	if (!g->member_done)
		return regfs_errf(s->e, -EINVAL, "%s: the gzip stream is truncated at byte %llu "
		                  "(the blob ends inside a member)", s->o->name,
		                  (unsigned long long)s->in_total);
	s->eof = true;
	return gz_close_span(s, g, s->in_total);
}

/* At a member boundary: another member, or bytes that are not gzip (hashed
 * into the last span, otherwise ignored, as gzip -d does with a warning). */
static void gz_next_member(struct lx_src *s, struct gz_build *g)
{
	if (g->zs.next_in[0] == 0x1f) {
		inflateReset(&g->zs);
		g->member_done = false;
		return;
	}
	log_warn("%s: %llu bytes after the last gzip member are not gzip; ignored",
	         s->o->name, (unsigned long long)g->zs.avail_in);
	g->trailing = true;
}

static int gz_fill(struct lx_src *s)
{
	struct gz_build *g = s->codec;
	if (g->zs.avail_in == 0) {
		int r = gz_refill(s, g);
		if (r < 0 || s->eof)
			return r;
	}
	if (g->trailing) {
		lx_sha_add(&g->sha, g->zs.next_in, g->zs.avail_in);
		g->zs.avail_in = 0;
		return 0;
	}
	if (g->member_done) {
		gz_next_member(s, g);
		return 0;
	}
	const unsigned char *before = g->zs.next_in;
	size_t room = LX_WIN + LX_CHUNK - s->olen;
	g->zs.next_out = s->obuf + s->olen;
	g->zs.avail_out = (uInt)room;
	int ret = inflate(&g->zs, Z_BLOCK);
	size_t used = (size_t)(g->zs.next_in - before);
	if (used) {
		lx_sha_add(&g->sha, before, used);
		g->last_byte = g->zs.next_in[-1];
	}
	int r = lx_src_produced(s, room - g->zs.avail_out);
	if (r < 0)
		return r;
	if (ret == Z_STREAM_END) {
		g->member_done = true;
		return 0;
	}
	if (ret != Z_OK)
		return regfs_errf(s->e, -EINVAL, "%s: corrupt gzip data near byte %llu: %s",
		                  s->o->name, (unsigned long long)(g->ibuf_off +
		                  (uint64_t)(g->zs.next_in - g->ibuf)),
		                  g->zs.msg ? g->zs.msg : "inflate failed");
	if ((g->zs.data_type & 128) && !(g->zs.data_type & 64) &&
	    s->out_total - g->last_cp_out >= s->o->span_size)
		return gz_checkpoint(s, g);
	return 0;
}

static void gz_done(struct lx_src *s)
{
	struct gz_build *g = s->codec;
	if (!g)
		return;
	inflateEnd(&g->zs);
	lx_sha_free(&g->sha);
	free(g->open.win);
	free(g);
	s->codec = NULL;
}

int lx_gzip_open(struct lx_src *s)
{
	struct gz_build *g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	lx_src_set_codec(s, g, gz_fill, gz_done, LAYER_GZIP);
	if (inflateInit2(&g->zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	g->open = (struct lx_span){ .kind = LX_SPAN_GZ_HEADER };
	return lx_sha_start(&g->sha);
}

/* ---- read time ---- */

static int gz_span_start(z_stream *zs, const struct lx_span *sp, const unsigned char *in,
                         size_t inlen)
{
	if (sp->kind == LX_SPAN_GZ_HEADER) {
		if (inflateInit2(zs, 15 + 16) != Z_OK)
			return -ENOMEM;
		zs->next_in = (unsigned char *)in;
		zs->avail_in = (uInt)inlen;
		return 0;
	}
	unsigned char win[LX_WIN];
	uLongf wl = sizeof win;
	if (sp->win_raw > LX_WIN || uncompress(win, &wl, sp->win, sp->win_len) != Z_OK ||
	    wl != sp->win_raw)
		return -EIO;
	if (inflateInit2(zs, -15) != Z_OK)
		return -ENOMEM;
	size_t skip = 0;
	if (sp->bits) {
		if (inlen < 1 || sp->bits > 7)
			return -EIO;
		inflatePrime(zs, sp->bits, in[0] >> (8 - sp->bits));
		skip = 1;
	}
	if (wl && inflateSetDictionary(zs, win, (uInt)wl) != Z_OK)
		return -EIO;
	zs->next_in = (unsigned char *)in + skip;
	zs->avail_in = (uInt)(inlen - skip);
	return 0;
}

/* After Z_STREAM_END: on to the next member if there is one. 1 = no more. */
static int gz_span_member(z_stream *zs, bool *raw)
{
	if (*raw) {
		if (zs->avail_in < 8)
			return 1;
		zs->next_in += 8;
		zs->avail_in -= 8;
	}
	if (zs->avail_in == 0 || zs->next_in[0] != 0x1f)
		return 1;
	if (inflateReset2(zs, 15 + 16) != Z_OK)
		return -EIO;
	*raw = false;
	return 0;
}

int lx_gzip_span(const struct layer_index *ix, size_t k, const unsigned char *in,
                 size_t inlen, lx_out_fn out, void *arg, struct regfs_err *e)
{
	const struct lx_span *sp = &ix->spans.v[k];
	uint64_t off = sp->out_off, end = lx_span_end(ix, k);
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	bool raw = sp->kind == LX_SPAN_GZ_RAW;
	unsigned char *buf = malloc(LX_CHUNK);
	int r = buf ? gz_span_start(&zs, sp, in, inlen) : -ENOMEM;
	while (r == 0 && off < end) {
		uint64_t want = end - off;
		zs.next_out = buf;
		zs.avail_out = want < LX_CHUNK ? (uInt)want : LX_CHUNK;
		uInt room = zs.avail_out;
		int ret = inflate(&zs, Z_NO_FLUSH);
		size_t got = room - zs.avail_out;
		if (got && (r = out(arg, off, buf, got)) < 0)
			break;
		off += got;
		if (ret == Z_STREAM_END && off < end) {
			int m = gz_span_member(&zs, &raw);
			if (m != 0)
				r = -EIO;
		} else if (ret != Z_OK && ret != Z_STREAM_END && !(ret == Z_BUF_ERROR && got)) {
			r = -EIO;
		} else if (!got && zs.avail_in == 0) {
			r = -EIO;
		}
	}
	inflateEnd(&zs);
	free(buf);
	if (r == -EIO)
		return regfs_errf(e, -EIO, "span %zu: the gzip data does not decode to the bytes "
		                  "the index expects (corrupt blob or index)", k);
	return r;
}
