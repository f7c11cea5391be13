/* lib/layer/build.c — layer_index_build: detect the compression, run the one
 * streaming pass (codec -> tar reader), choose the spans, order the entries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "regfs/log.h"

/* Read the first bytes of the blob for detection (kept for the codec). */
static int read_head(struct lx_src *s)
{
	while (s->head_len < sizeof s->head) {
		ssize_t r = s->rd(s->rd_arg, s->head + s->head_len, sizeof s->head - s->head_len);
		if (r < 0)
			return regfs_errf(s->e, (int)r, "%s: reading the blob failed", s->o->name);
		if (r == 0)
			break;
		if ((size_t)r > sizeof s->head - s->head_len)
			return regfs_errf(s->e, -EIO, "%s: the blob reader returned more than asked",
			                  s->o->name);
		s->head_len += (size_t)r;
	}
	return 0;
}

static int open_codec(struct lx_src *s)
{
	const unsigned char *h = s->head;
	size_t n = s->head_len;
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return lx_gzip_open(s);
	if (n >= 4 && h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd)
		return lx_zstd_open(s);
	const char *other = NULL;
	if (n >= 3 && memcmp(h, "BZh", 3) == 0)
		other = "bzip2";
	else if (n >= 6 && memcmp(h, "\xfd" "7zXZ\0", 6) == 0)
		other = "xz";
	else if (n >= 4 && memcmp(h, "\x04\x22\x4d\x18", 4) == 0)
		other = "lz4";
	if (other)
		return regfs_errf(s->e, -ENOTSUP, "%s: %s-compressed layers are not supported "
		                  "(gzip, zstd and plain tar are)", s->o->name, other);
	return lx_plain_open(s);
}

/* Which spans the index keeps (see layer_index_fetch_space). */
static void choose_spans(struct layer_index *ix, struct lx_src *s)
{
	bool blob = s->comp == LAYER_GZIP;
	if (s->comp == LAYER_ZSTD && s->frames >= 2) {
		blob = true;
		for (size_t i = 0; i < s->spans.n; i++)
			if (s->spans.v[i].in_len > LX_MAX_SPAN_FETCH)
				blob = false;
	}
	ix->space = s->comp == LAYER_ZSTD && !blob ? LAYER_SPACE_DECODED : LAYER_SPACE_BLOB;
	if (blob) {
		ix->spans = s->spans;
		memset(&s->spans, 0, sizeof s->spans);
	} else {
		ix->spans = s->fix;
		memset(&s->fix, 0, sizeof s->fix);
	}
}

static int build_pass(struct layer_index *ix, struct lx_src *s, struct lx_raws *raws)
{
	int r = read_head(s);
	if (r == 0)
		r = open_codec(s);
	if (r == 0)
		r = lx_tar_read(s, &ix->arena, raws);
	if (r == 0)
		r = lx_src_drain(s);
	if (r == 0)
		r = lx_src_fix_finish(s);
	if (r < 0)
		return r;
	ix->comp = s->comp;
	ix->frames = s->comp == LAYER_ZSTD ? s->frames : 0;
	ix->blob_size = s->in_total;
	ix->tar_size = s->out_total;
	choose_spans(ix, s);
	return 0;
}

int layer_index_build(layer_read_fn read_fn, void *arg, const struct layer_build_opts *opts,
                      struct layer_index **out, struct regfs_err *e)
{
	struct lx_opts o;
	lx_opts_fill(&o, opts);
	*out = NULL;
	struct layer_index *ix = calloc(1, sizeof *ix);
	struct lx_src s = { .o = &o, .rd = read_fn, .rd_arg = arg, .e = e };
	struct lx_raws raws = { 0 };
	s.obuf = malloc(LX_WIN + LX_CHUNK);
	int r = ix && s.obuf ? 0 : -ENOMEM;
	if (r == 0) {
		ix->arena.limit = o.max_meta;
		ix->span_size = o.span_size;
		r = build_pass(ix, &s, &raws);
	}
	if (r == 0)
		r = lx_index_finish(ix, &raws, &o, e);
	if (r == 0) {
		struct dynbuf b = DYNBUF_INIT(DYNBUF_NO_CAP);
		r = layer_index_encode(ix, &b, e);
		ix->encoded_size = dynbuf_len(&b);
		dynbuf_free(&b);
	}
	if (s.done)
		s.done(&s);
	lx_sha_free(&s.fix_sha);
	lx_spans_free(&s.spans);
	lx_spans_free(&s.fix);
	free(s.obuf);
	free(raws.v);
	if (r < 0) {
		layer_index_free(ix);
		if (r == -ENOMEM)
			regfs_errf(e, r, "%s: out of memory while indexing the layer", o.name);
		return r;
	}
	*out = ix;
	return 0;
}
