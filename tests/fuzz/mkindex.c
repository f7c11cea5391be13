/* mkindex IN OUT [SPAN] — write the encoded layer index of blob IN to OUT
 * (the seed corpus of fuzz_index_decode, with 64 KiB spans; with SPAN = 0,
 * the default spans, to measure a real layer's index). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "regfs/dynbuf.h"
#include "regfs/layer.h"

static ssize_t file_read(void *arg, void *buf, size_t len)
{
	size_t n = fread(buf, 1, len, arg);
	return ferror((FILE *)arg) ? -5 : (ssize_t)n;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: mkindex IN OUT [SPAN]\n");
		return 2;
	}
	FILE *in = fopen(argv[1], "rb");
	if (!in) {
		perror(argv[1]);
		return 1;
	}
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	struct layer_build_opts o = { .name = argv[1],
	                              .span_size = argc == 4 ? strtoull(argv[3], NULL, 0) : 65536 };
	int r = layer_index_build(file_read, in, &o, &ix, &e);
	fclose(in);
	if (r < 0) {
		fprintf(stderr, "mkindex: %s\n", regfs_err_str(&e));
		return 1;
	}
	struct dynbuf b = DYNBUF_INIT(DYNBUF_NO_CAP);
	FILE *out = fopen(argv[2], "wb");
	r = out && layer_index_encode(ix, &b, &e) == 0 &&
	    fwrite(dynbuf_ptr(&b), 1, dynbuf_len(&b), out) == dynbuf_len(&b);
	if (out && fclose(out) != 0)
		r = 0;
	dynbuf_free(&b);
	layer_index_free(ix);
	if (!r) {
		fprintf(stderr, "mkindex: cannot write %s\n", argv[2]);
		return 1;
	}
	return 0;
}
