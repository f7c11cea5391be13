/* fuzz_common.h — what the layer fuzz targets share: a blob in memory, the
 * limits that keep one input fast, and a walk that uses everything an index
 * offers (lookups, listings, reads) and checks encode/decode agree. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "regfs/dynbuf.h"
#include "regfs/layer.h"
#include "regfs/log.h"

struct mem {
	const uint8_t *p;
	size_t n, pos;
};

static __attribute__((unused)) ssize_t mem_read(void *arg, void *buf, size_t len)
{
	struct mem *m = arg;
	size_t k = m->n - m->pos < len ? m->n - m->pos : len;
	if (k)
		memcpy(buf, m->p + m->pos, k);
	m->pos += k;
	return (ssize_t)k;
}

static ssize_t mem_fetch(void *arg, uint64_t off, void *buf, size_t len)
{
	struct mem *m = arg;
	if (off >= m->n)
		return 0;
	size_t k = m->n - off < len ? m->n - (size_t)off : len;
	memcpy(buf, m->p + off, k);
	return (ssize_t)k;
}

static const struct layer_build_opts fuzz_opts = {
	.name = "fuzz", .span_size = 64 * 1024, .max_entries = 20000,
	.max_uncompressed = 64u << 20, .max_meta = 16u << 20, .max_pax = 256 * 1024,
};

static void fuzz_quiet(void)
{
	static int done;
	if (!done)
		regfs_log_set_level(REGFS_LOG_ERROR);
	done = 1;
}

/* Lookups, listings and a few reads; then encode -> decode -> encode must
 * give the same bytes. Aborts (a crash the fuzzer reports) when not. */
static void fuzz_walk(struct layer_index *ix, struct mem *blob)
{
	unsigned char buf[4096];
	int reads = 0;
	for (size_t i = 0; i < layer_index_count(ix); i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (layer_index_find(ix, e->path) != (long)i)
			abort();
		size_t first, n;
		if (layer_index_children(ix, i, &first, &n) == 0 && first + n > layer_index_count(ix))
			abort();
		if ((e->type == LAYER_REG || e->type == LAYER_HARDLINK) && reads++ < 8 &&
		    layer_index_fetch_space(ix) == LAYER_SPACE_BLOB)
			(void)layer_read(ix, i, e->size / 3, buf, sizeof buf, mem_fetch, blob, NULL, NULL);
	}
	struct dynbuf a = DYNBUF_INIT(DYNBUF_NO_CAP), b = DYNBUF_INIT(DYNBUF_NO_CAP);
	struct layer_index *d = NULL;
	if (layer_index_encode(ix, &a, NULL) == 0) {
		if (layer_index_decode(dynbuf_ptr(&a), dynbuf_len(&a), &fuzz_opts, &d, NULL) != 0)
			abort();
		if (layer_index_encode(d, &b, NULL) != 0 || dynbuf_len(&a) != dynbuf_len(&b) ||
		    memcmp(dynbuf_ptr(&a), dynbuf_ptr(&b), dynbuf_len(&a)) != 0)
			abort();
		layer_index_free(d);
	}
	dynbuf_free(&a);
	dynbuf_free(&b);
}

#endif
