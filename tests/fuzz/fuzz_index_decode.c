/* fuzz_index_decode — our index format from hostile bytes. The trailing
 * sha256 is recomputed first (a mutation would otherwise only ever test the
 * checksum), so the field checks themselves are what is fuzzed. An index
 * that decodes is then used in every way (reads fetch from the input). */
#include <openssl/evp.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	if (size < 44)
		return 0;
	uint8_t *p = malloc(size);
	memcpy(p, data, size);
	unsigned int l = 32;
	EVP_Digest(p, size - 32, p + size - 32, &l, EVP_sha256(), NULL);
	struct layer_index *ix = NULL;
	struct mem m = { data, size, 0 };
	if (layer_index_decode(p, size, &fuzz_opts, &ix, NULL) == 0) {
		fuzz_walk(ix, &m);
		layer_index_free(ix);
	}
	free(p);
	return 0;
}
