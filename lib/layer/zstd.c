/* lib/layer/zstd.c — zstd layers: frame boundaries during the build and the
 * decoding of one span at read time.
 *
 * zstd has no resumable positions inside a frame, so random access is per
 * frame: a span is a run of whole frames holding at least span_size bytes of
 * output (or the last frames). ZSTD_decompressStream returns 0 exactly when a
 * frame has been decoded and flushed, which is where a span may close. A
 * layer of one frame (what most tools write) has no random access: the build
 * then also keeps fixed spans over the decoded bytes (stream.c), and
 * index.c picks those (LAYER_SPACE_DECODED). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "internal.h"
#include "regfs/log.h"

struct zs_build {
	ZSTD_DCtx *dc;
	unsigned char ibuf[LX_IBUF];
	ZSTD_inBuffer in;
	uint64_t ibuf_off;
	struct lx_sha sha;
	struct lx_span open;
	bool mid_frame;
};

static int zs_close_span(struct lx_src *s, struct zs_build *z, uint64_t in_end)
{
	z->open.in_len = in_end - z->open.in_off;
	lx_sha_end(&z->sha, z->open.sha);
	int r = lx_spans_push(&s->spans, &z->open);
	if (r < 0)
		return r;
	z->open = (struct lx_span){ .in_off = in_end, .out_off = s->out_total,
	                            .kind = LX_SPAN_ZSTD };
	return lx_sha_start(&z->sha);
}

static int zs_eof(struct lx_src *s, struct zs_build *z)
{
	if (z->mid_frame)
		return regfs_errf(s->e, -EINVAL, "%s: the zstd stream is truncated at byte %llu "
		                  "(the blob ends inside a frame)", s->o->name,
		                  (unsigned long long)s->in_total);
	s->eof = true;
	/* frames that decode to nothing at the end need no span of their own */
	if (s->spans.n && s->out_total == z->open.out_off)
		return 0;
	return zs_close_span(s, z, s->in_total);
}

static int zs_fill(struct lx_src *s)
{
	struct zs_build *z = s->codec;
	if (z->in.pos == z->in.size) {
		ssize_t r = lx_src_read_blob(s, z->ibuf, sizeof z->ibuf);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return zs_eof(s, z);
		z->ibuf_off = s->in_total - (uint64_t)r;
		z->in = (ZSTD_inBuffer){ z->ibuf, (size_t)r, 0 };
	}
	size_t room = LX_WIN + LX_CHUNK - s->olen;
	ZSTD_outBuffer out = { s->obuf + s->olen, room, 0 };
	size_t before = z->in.pos;
	size_t ret = ZSTD_decompressStream(z->dc, &out, &z->in);
	if (ZSTD_isError(ret))
		return regfs_errf(s->e, -EINVAL, "%s: corrupt zstd data near byte %llu: %s",
		                  s->o->name, (unsigned long long)(z->ibuf_off + z->in.pos),
		                  ZSTD_getErrorName(ret));
	lx_sha_add(&z->sha, z->ibuf + before, z->in.pos - before);
	int r = lx_src_produced(s, out.pos);
	if (r < 0)
		return r;
	z->mid_frame = ret != 0;
	if (ret == 0) {
		s->frames++;
		if (s->out_total - z->open.out_off >= s->o->span_size)
			return zs_close_span(s, z, z->ibuf_off + z->in.pos);
	}
	return 0;
}

static void zs_done(struct lx_src *s)
{
	struct zs_build *z = s->codec;
	if (!z)
		return;
	ZSTD_freeDCtx(z->dc);
	lx_sha_free(&z->sha);
	free(z);
	s->codec = NULL;
}

int lx_zstd_open(struct lx_src *s)
{
	struct zs_build *z = calloc(1, sizeof *z);
	if (!z)
		return -ENOMEM;
	lx_src_set_codec(s, z, zs_fill, zs_done, LAYER_ZSTD);
	s->fix_on = true;
	int r = lx_sha_start(&s->fix_sha);
	if (r < 0)
		return r;
	if (!(z->dc = ZSTD_createDCtx()))
		return -ENOMEM;
	z->open = (struct lx_span){ .kind = LX_SPAN_ZSTD };
	return lx_sha_start(&z->sha);
}

int lx_zstd_span(const struct layer_index *ix, size_t k, const unsigned char *in,
                 size_t inlen, lx_out_fn out, void *arg, struct regfs_err *e)
{
	uint64_t off = ix->spans.v[k].out_off, end = lx_span_end(ix, k);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	unsigned char *buf = malloc(LX_CHUNK);
	ZSTD_inBuffer ib = { in, inlen, 0 };
	int r = dc && buf ? 0 : -ENOMEM;
	while (r == 0 && off < end) {
		uint64_t want = end - off;
		ZSTD_outBuffer ob = { buf, want < LX_CHUNK ? (size_t)want : LX_CHUNK, 0 };
		size_t before = ib.pos;
		size_t ret = ZSTD_decompressStream(dc, &ob, &ib);
		if (ZSTD_isError(ret) || (ob.pos == 0 && ib.pos == before && ib.pos == ib.size)) {
			r = -EIO;
			break;
		}
		if (ob.pos && (r = out(arg, off, buf, ob.pos)) < 0)
			break;
		off += ob.pos;
	}
	ZSTD_freeDCtx(dc);
	free(buf);
	if (r == -EIO)
		return regfs_errf(e, -EIO, "span %zu: the zstd data does not decode to the bytes "
		                  "the index expects (corrupt blob or index)", k);
	return r;
}
