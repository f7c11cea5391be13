/* test_layer_util.h — what the layer-index tests share: blobs in memory (the
 * read and fetch callbacks of layer.h over them), gzip/zstd compression of a
 * tar with zlib/libzstd, the sample layers of test_layer_samples.py and
 * their manifests (what Python's tarfile reads from each sample). */
#ifndef TEST_LAYER_UTIL_H
#define TEST_LAYER_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "regfs/layer.h"

/* not every test file uses every helper */
#define TLU static __attribute__((unused))

struct blob {
	unsigned char *p;
	size_t n, pos;
	uint64_t fetched;    /* bytes handed out by blob_fetch */
	size_t short_read;   /* blob_read hands out at most this many (0: all) */
};

TLU ssize_t blob_read(void *arg, void *buf, size_t len)
{
	struct blob *b = arg;
	size_t k = b->n - b->pos;
	if (k > len)
		k = len;
	if (b->short_read && k > b->short_read)
		k = b->short_read;
	if (k)
		memcpy(buf, b->p + b->pos, k);
	b->pos += k;
	return (ssize_t)k;
}

TLU ssize_t blob_fetch(void *arg, uint64_t off, void *buf, size_t len)
{
	struct blob *b = arg;
	if (off >= b->n)
		return 0;
	size_t k = b->n - off < len ? b->n - (size_t)off : len;
	memcpy(buf, b->p + off, k);
	b->fetched += k;
	return (ssize_t)k;
}

TLU unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	*n = 0;
	if (!f)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	unsigned char *p = malloc(cap);
	size_t k;
	while (p && (k = fread(p + len, 1, cap - len, f)) > 0) {
		len += k;
		if (len == cap)
			p = realloc(p, cap *= 2);
	}
	fclose(f);
	*n = len;
	return p;
}

/* gzip `n` bytes as `members` gzip members at `level`. */
TLU struct blob gz(const unsigned char *p, size_t n, int level,
                   int members)
{
	struct blob b = { 0 };
	size_t cap = n + n / 10 + 4096 * (size_t)members + 65536;
	b.p = malloc(cap);
	size_t piece = n / (size_t)members + 1, done = 0;
	for (int m = 0; m < members; m++) {
		size_t k = n - done < piece ? n - done : piece;
		z_stream zs = { 0 };
		deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = (unsigned char *)p + done;
		zs.avail_in = (uInt)k;
		zs.next_out = b.p + b.n;
		zs.avail_out = (uInt)(cap - b.n);
		deflate(&zs, Z_FINISH);
		b.n += zs.total_out;
		deflateEnd(&zs);
		done += k;
	}
	return b;
}

/* zstd: one frame per `chunk` bytes (0: a single frame). */
TLU struct blob zst(const unsigned char *p, size_t n, size_t chunk)
{
	struct blob b = { 0 };
	if (!chunk)
		chunk = n ? n : 1;
	size_t cap = ZSTD_compressBound(n) + 64 * (n / chunk + 1);
	b.p = malloc(cap);
	for (size_t done = 0; done < n || done == 0;) {
		size_t k = n - done < chunk ? n - done : chunk;
		b.n += ZSTD_compress(b.p + b.n, cap - b.n, p + done, k, 3);
		done += k;
		if (n == 0)
			break;
	}
	return b;
}

TLU struct blob plain(const unsigned char *p, size_t n)
{
	struct blob b = { malloc(n ? n : 1), n, 0, 0, 0 };
	memcpy(b.p, p, n);
	return b;
}

/* The samples directory, made once per process. */
TLU const char *samples(void)
{
	static char dir[256];
	if (dir[0])
		return dir;
	snprintf(dir, sizeof dir, "/tmp/regfs-layer-test.%d", (int)getpid());
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "python3 '%s' '%s' >/dev/null", LAYER_SAMPLES_PY, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot make the sample layers (%s)\n", cmd);
		abort();
	}
	return dir;
}

TLU void samples_cleanup(void)
{
	if (samples()[0]) {
		char cmd[512];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", samples());
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", samples());
	}
}

TLU unsigned char *sample_tar(const char *name, size_t *n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.tar", samples(), name);
	return slurp(path, n);
}

TLU struct layer_index *build(struct blob *b, uint64_t span,
                                struct regfs_err *e, int *rc)
{
	struct layer_index *ix = NULL;
	b->pos = 0;
	struct layer_build_opts o = { .name = "test-layer", .span_size = span };
	*rc = layer_index_build(blob_read, b, &o, &ix, e);
	return ix;
}

#endif
