/* lib/layer/internal.h — what the files of lib/layer share: the index's
 * memory layout, the decoded-stream source used by the build (gzip.c, zstd.c
 * and the plain reader in stream.c feed tar.c through it), and the span list.
 * Not a public header. */
#ifndef REGFS_LAYER_INTERNAL_H
#define REGFS_LAYER_INTERNAL_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "regfs/layer.h"

#define LX_WIN 32768u               /* deflate window */
#define LX_CHUNK (256u * 1024u)     /* decoded bytes produced per fill */
#define LX_IBUF (128u * 1024u)      /* compressed bytes read per call */
#define LX_MAX_SPAN_FETCH (128ull << 20) /* a span needing more is not served */
#define LX_MAX_ENTRIES_HARD 0xfffffff0u

/* gzip span kinds: where inflate must start */
enum { LX_SPAN_PLAIN = 0, LX_SPAN_GZ_HEADER = 1, LX_SPAN_GZ_RAW = 2, LX_SPAN_ZSTD = 3 };

/* One verified unit of random access. Span k covers decoded bytes
 * [out_off, next span's out_off or tar_size) and needs fetch-space bytes
 * [in_off, in_off + in_len). */
struct lx_span {
	uint64_t in_off, in_len, out_off;
	uint8_t kind;
	uint8_t bits;           /* gzip raw: bits of the first fetched byte to use */
	uint32_t win_raw;       /* gzip raw: window length (<= LX_WIN) */
	uint32_t win_len;       /* compressed window bytes at win */
	unsigned char *win;     /* zlib-compressed window, owned */
	unsigned char sha[32];  /* sha256 of the fetched bytes */
};

/* A growable span list. */
struct lx_spans {
	struct lx_span *v;
	size_t n, alloc;
};
int lx_spans_push(struct lx_spans *s, const struct lx_span *sp);
/* Makes room for one more element in the array *v of *alloc elements of
 * `size` bytes holding n: doubles it (first size `first`) when full. The
 * one grow path of lib/layer's arrays. 0 or -ENOMEM (*v unchanged). */
int lx_grow(void **v, size_t *alloc, size_t n, size_t size, size_t first);
void lx_spans_free(struct lx_spans *s);

/* Bump allocator for strings and small arrays; every byte counts against
 * the max_meta limit. */
struct lx_arena {
	struct lx_chunk *head;
	uint64_t used, limit;
};
void *lx_arena_alloc(struct lx_arena *a, size_t n); /* NULL: ENOMEM or limit */
char *lx_arena_strndup(struct lx_arena *a, const char *s, size_t n);
void lx_arena_free(struct lx_arena *a);

struct layer_index {
	enum layer_compression comp;
	enum layer_fetch_space space;
	uint64_t blob_size, tar_size, span_size;
	size_t frames;
	struct layer_entry *ent;
	uint32_t *child_first, *child_n; /* per entry; n = 0 for non-directories */
	size_t n;
	struct lx_spans spans;
	struct lx_arena arena;
	uint64_t encoded_size;
};

/* Options with every default filled in. */
struct lx_opts {
	const char *name;
	uint64_t span_size, max_uncompressed, max_meta;
	uint32_t max_entries, max_path, max_pax;
	layer_sink_fn sink;
	void *sink_arg;
};
void lx_opts_fill(struct lx_opts *o, const struct layer_build_opts *in);

/* Running sha256 of one span. */
struct lx_sha {
	EVP_MD_CTX *ctx;
};
int lx_sha_start(struct lx_sha *h);
void lx_sha_add(struct lx_sha *h, const void *p, size_t n);
void lx_sha_end(struct lx_sha *h, unsigned char out[32]);
void lx_sha_free(struct lx_sha *h);
void lx_sha_buf(const void *p, size_t n, unsigned char out[32]);

/* The decoded tar stream during the build. A codec (plain, gzip, zstd)
 * implements fill(): append decoded bytes at obuf[olen..] (at least one, or
 * set eof), recording spans as it goes. obuf keeps the LX_WIN bytes before
 * opos so that gzip checkpoints can copy their window. */
struct lx_src {
	const struct lx_opts *o;
	layer_read_fn rd;
	void *rd_arg;
	struct regfs_err *e;
	unsigned char *obuf;       /* LX_WIN + LX_CHUNK */
	size_t opos, olen;
	uint64_t out_total;        /* decoded bytes produced so far */
	uint64_t in_total;         /* blob bytes read so far */
	bool eof;
	int (*fill)(struct lx_src *s);
	void (*done)(struct lx_src *s);   /* frees codec state */
	void *codec;
	struct lx_spans spans;
	enum layer_compression comp;
	enum layer_fetch_space space;
	size_t frames;
	/* fixed spans over decoded bytes (plain tar; single-frame zstd) */
	struct lx_sha fix_sha;
	bool fix_on;
	uint64_t fix_start;
	struct lx_spans fix;
	/* the first bytes of the blob, read for detection, not yet consumed */
	unsigned char head[512];
	size_t head_len, head_pos;
};

/* Makes `s` decode with a codec: `codec` (owned by s from here on, freed by
 * `done`, also on a later failure of the opener), `fill`, and the blob's
 * compression. Every codec reads its input from the blob. */
void lx_src_set_codec(struct lx_src *s, void *codec, int (*fill)(struct lx_src *),
		      void (*done)(struct lx_src *), enum layer_compression comp);

/* Read from the blob: the detection bytes first, then read_fn. Bytes read or
 * -errno; 0 at the end. Counts in_total. */
ssize_t lx_src_read_blob(struct lx_src *s, void *buf, size_t len);
/* Account `n` new decoded bytes at obuf[olen..]: sink, fixed spans, limits. */
int lx_src_produced(struct lx_src *s, size_t n);
/* Make room: call only when opos == olen. Keeps the last LX_WIN bytes. */
void lx_src_compact(struct lx_src *s);
/* Exact reads / skips of the decoded stream; a short stream is -EINVAL
 * ("truncated"). */
int lx_src_read(struct lx_src *s, void *buf, size_t n);
int lx_src_skip(struct lx_src *s, uint64_t n);
/* The padding after a member's data, up to `n` bytes: the stream may end
 * inside it (0). Some writers (umoci) end the archive right after the last
 * file's data, without padding or end-of-archive blocks; GNU tar reads such
 * archives, and so do we (lx_tar_read warns at the end). */
int lx_src_skip_padding(struct lx_src *s, uint64_t n);
/* Position of the next byte lx_src_read would return. */
uint64_t lx_src_pos(const struct lx_src *s);
/* 1 when the decoded stream has no more bytes, 0 when it has, or -errno. */
int lx_src_at_end(struct lx_src *s);
/* Read and decode everything left (after the end of the archive). */
int lx_src_drain(struct lx_src *s);
/* Close the fixed spans (at the end of the stream). */
int lx_src_fix_finish(struct lx_src *s);

int lx_gzip_open(struct lx_src *s);
int lx_zstd_open(struct lx_src *s);
int lx_plain_open(struct lx_src *s);

/* Decode span k of `ix` from its fetched (already verified) bytes `in`,
 * calling out(arg, decoded_off, p, n) for every decoded chunk in order until
 * the span's decoded length is reached. 0 or -errno (corrupt data: -EIO). */
typedef int (*lx_out_fn)(void *arg, uint64_t off, const void *p, size_t n);
int lx_gzip_span(const struct layer_index *ix, size_t k, const unsigned char *in,
                 size_t inlen, lx_out_fn out, void *arg, struct regfs_err *e);
int lx_zstd_span(const struct layer_index *ix, size_t k, const unsigned char *in,
                 size_t inlen, lx_out_fn out, void *arg, struct regfs_err *e);
uint64_t lx_span_end(const struct layer_index *ix, size_t k);

/* A tar entry as read, before the index is put in order. */
struct lx_raw {
	struct layer_entry e;   /* path/link/xattrs/sparse in the arena */
	uint64_t seq;           /* order in the tar */
};
struct lx_raws {
	struct lx_raw *v;
	size_t n, alloc;
};

/* tar.c: read every entry of the decoded stream into `out`. */
int lx_tar_read(struct lx_src *s, struct lx_arena *a, struct lx_raws *out);
/* Normalize a tar name into the arena (*out; "" for the root). -EINVAL when
 * it climbs ("..") or is longer than max, -E2BIG when the arena's limit is
 * reached, -ENOMEM. */
int lx_path_normalize(struct lx_arena *a, const char *p, size_t n, uint32_t max, char **out);

/* index.c: order the raw entries into ix (takes their arena memory). */
int lx_index_finish(struct layer_index *ix, struct lx_raws *raws, const struct lx_opts *o,
                    struct regfs_err *e);
/* The children tables from parent links (entries already in BFS order). */
int lx_index_children_build(struct layer_index *ix);

#endif
