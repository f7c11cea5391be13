/* fuzz_gzip — the gzip index: the input is compressed as a gzip stream (so
 * mutations of the tar reach the checkpoint code) unless it already is one
 * (so mutations of the deflate data reach it too); reads then inflate from
 * the checkpoints. */
#include <zlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	uint8_t *gz = NULL;
	struct mem m = { data, size, 0 };
	if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
		z_stream zs = { 0 };
		size_t cap = size + size / 100 + 1024;
		gz = malloc(cap);
		deflateInit2(&zs, 1 + (int)(size % 9), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = (uint8_t *)data;
		zs.avail_in = (uInt)size;
		zs.next_out = gz;
		zs.avail_out = (uInt)cap;
		deflate(&zs, Z_FINISH);
		m = (struct mem){ gz, zs.total_out, 0 };
		deflateEnd(&zs);
	}
	struct layer_index *ix = NULL;
	if (layer_index_build(mem_read, &m, &fuzz_opts, &ix, NULL) == 0) {
		fuzz_walk(ix, &m);
		layer_index_free(ix);
	}
	free(gz);
	return 0;
}
