/* fuzz_tar — the tar reader: index build from raw bytes (plain tar, or
 * whatever the magic says), then everything the index offers. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	struct mem m = { data, size, 0 };
	struct layer_index *ix = NULL;
	if (layer_index_build(mem_read, &m, &fuzz_opts, &ix, NULL) == 0) {
		fuzz_walk(ix, &m);
		layer_index_free(ix);
	}
	return 0;
}
