/* test_layer.c — the layer index against Python's tarfile: every sample layer
 * (pax, GNU, sparse in four encodings) as plain tar, gzip at three levels,
 * multi-member gzip, single- and multi-frame zstd; every entry's metadata and
 * every file's bytes (whole and at random offsets) must equal what tarfile
 * reads; encode -> decode round trips; a small read fetches one span; a
 * corrupt span is refused; hostile indexes never crash the decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "regfs/dynbuf.h"
#include "test_layer_util.h"

static const char *SAMPLES[] = { "pax", "gnu", "sparse_gnu", "sparse_pax00", "sparse_pax01",
                                 "sparse_pax10" };

static int hexdec(const char *h, char *out, size_t cap)
{
	if (strcmp(h, "-") == 0) {
		out[0] = 0;
		return 0;
	}
	size_t n = strlen(h) / 2;
	if (n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (char)v;
	}
	out[n] = 0;
	return (int)n;
}

/* Read all of entry i through layer_read in uneven pieces, with a cursor;
 * then 12 random ranges without one. Compare with `want`. */
static void check_bytes(struct layer_index *ix, long i, struct blob *fb,
                        const unsigned char *want, size_t n)
{
	struct layer_cursor *c = layer_cursor_new();
	unsigned char *got = malloc(n + 1);
	size_t off = 0;
	struct regfs_err e = { 0 };
	while (off < n) {
		size_t k = 1 + (size_t)rand() % 200000;
		ssize_t r = layer_read(ix, (size_t)i, off, got + off, k, blob_fetch, fb, c, &e);
		if (r <= 0)
			fail_msg("read at %zu: %zd %s", off, r, regfs_err_str(&e));
		off += (size_t)r;
	}
	assert_int_equal(layer_read(ix, (size_t)i, n, got, 1, blob_fetch, fb, c, &e), 0);
	assert_memory_equal(got, want, n);
	for (int t = 0; t < 12 && n; t++) {
		size_t o = (size_t)rand() % n, k = 1 + (size_t)rand() % 70000;
		size_t exp = n - o < k ? n - o : k;
		ssize_t r = layer_read(ix, (size_t)i, o, got, k, blob_fetch, fb, NULL, &e);
		assert_int_equal(r, (ssize_t)exp);
		assert_memory_equal(got, want + o, exp);
	}
	free(got);
	layer_cursor_free(c);
}

static void check_xattrs(const struct layer_entry *en, const char *xa)
{
	if (strcmp(xa, "-") == 0) {
		assert_int_equal(en->nxattrs, 0);
		return;
	}
	char buf[4096], val[1024];
	size_t count = 0;
	snprintf(buf, sizeof buf, "%s", xa);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","), count++) {
		char *eq = strchr(tok, '=');
		*eq = 0;
		int vl = hexdec(eq + 1, val, sizeof val);
		int found = 0;
		for (uint32_t k = 0; k < en->nxattrs; k++)
			if (strcmp(en->xattrs[k].name, tok) == 0 && en->xattrs[k].len == (uint32_t)vl &&
			    memcmp(en->xattrs[k].value, val, (size_t)vl) == 0)
				found = 1;
		if (!found)
			fail_msg("%s: xattr %s missing or different", en->path, tok);
	}
	assert_int_equal(en->nxattrs, count);
}

static const char *TYPECH = "rdlhcbp";

/* One manifest row against the index. */
static void check_row(struct layer_index *ix, struct blob *fb, char **f)
{
	char path[4096], link[4096];
	hexdec(f[0], path, sizeof path);
	hexdec(f[7], link, sizeof link);
	long i = layer_index_find(ix, path);
	if (i < 0)
		fail_msg("\"%s\" is not in the index", path);
	const struct layer_entry *en = layer_index_entry(ix, (size_t)i);
	assert_string_equal(en->path, path);
	assert_int_equal(TYPECH[en->type], f[1][0]);
	assert_int_equal(en->mode, strtoul(f[2], NULL, 8));
	assert_int_equal(en->uid, strtoul(f[3], NULL, 10));
	assert_int_equal(en->gid, strtoul(f[4], NULL, 10));
	assert_int_equal(en->mtime, strtoll(f[5], NULL, 10));
	if (en->type == LAYER_SYMLINK || en->type == LAYER_HARDLINK)
		assert_string_equal(en->link, link);
	if (en->type == LAYER_HARDLINK) {
		const struct layer_entry *t = layer_index_entry(ix, en->link_index);
		assert_string_equal(t->path, link);
	}
	check_xattrs(en, f[9]);
	if (en->type == LAYER_REG) {
		assert_int_equal(en->size, strtoull(f[6], NULL, 10));
		size_t n;
		unsigned char *want = slurp(f[8], &n);
		assert_non_null(want);
		assert_int_equal(n, en->size);
		check_bytes(ix, i, fb, want, n);
		free(want);
	}
	if (strncmp(en->name, ".wh.", 4) == 0)
		assert_true(en->flags & (strcmp(en->name, ".wh..wh..opq") == 0 ? LAYER_F_OPAQUE
		                                                              : LAYER_F_WHITEOUT));
}

/* The tree: every entry is the child of its parent, children sorted, found
 * by path; returns the number of synthesized directories. */
static size_t check_tree(struct layer_index *ix)
{
	size_t syn = 0, n = layer_index_count(ix);
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *en = layer_index_entry(ix, i);
		assert_int_equal(layer_index_find(ix, en->path), (long)i);
		if (en->flags & LAYER_F_SYNTHETIC) {
			assert_int_equal(en->type, LAYER_DIR);
			syn++;
		}
		size_t first, k;
		if (layer_index_children(ix, i, &first, &k) < 0)
			continue;
		for (size_t c = first; c < first + k; c++) {
			const struct layer_entry *ch = layer_index_entry(ix, c);
			assert_int_equal(ch->parent, i);
			assert_int_equal(layer_index_child(ix, i, ch->name), (long)c);
			if (c > first)
				assert_true(strcmp(layer_index_entry(ix, c - 1)->name, ch->name) < 0);
		}
	}
	return syn;
}

static void check_manifest(struct layer_index *ix, struct blob *fb, const char *name)
{
	char p[512], line[20000];
	snprintf(p, sizeof p, "%s/%s.tsv", samples(), name);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	size_t rows = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *fld[10];
		char *s = line;
		for (int k = 0; k < 10; k++)
			fld[k] = strsep(&s, "\t");
		assert_non_null(fld[9]);
		check_row(ix, fb, fld);
		rows++;
	}
	fclose(f);
	/* the root is a row when the tar has "./", else it is synthesized */
	assert_int_equal(layer_index_count(ix), rows + check_tree(ix));
}

/* Build the index of `b`, check it, and check its encode/decode copy. */
static void check_variant(const char *name, const unsigned char *tar, size_t tn, struct blob *b)
{
	struct regfs_err e = { 0 };
	int rc;
	struct layer_index *ix = build(b, 64 * 1024, &e, &rc);
	if (rc < 0)
		fail_msg("%s: build: %s", name, regfs_err_str(&e));
	struct blob dec = plain(tar, tn);
	struct blob *fb = layer_index_fetch_space(ix) == LAYER_SPACE_DECODED ? &dec : b;
	check_manifest(ix, fb, name);
	struct dynbuf enc = DYNBUF_INIT(DYNBUF_NO_CAP), enc2 = DYNBUF_INIT(DYNBUF_NO_CAP);
	assert_int_equal(layer_index_encode(ix, &enc, &e), 0);
	struct layer_index *ix2 = NULL;
	rc = layer_index_decode(dynbuf_ptr(&enc), dynbuf_len(&enc), NULL, &ix2, &e);
	if (rc < 0)
		fail_msg("%s: decode: %s", name, regfs_err_str(&e));
	check_manifest(ix2, fb, name);
	assert_int_equal(layer_index_encode(ix2, &enc2, &e), 0);
	assert_int_equal(dynbuf_len(&enc), dynbuf_len(&enc2));
	assert_memory_equal(dynbuf_ptr(&enc), dynbuf_ptr(&enc2), dynbuf_len(&enc));
	struct layer_index_stats st;
	layer_index_stats(ix, &st);
	assert_int_equal(st.encoded_size, dynbuf_len(&enc));
	assert_int_equal(st.tar_size, tn);
	assert_int_equal(st.blob_size, b->n);
	dynbuf_free(&enc);
	dynbuf_free(&enc2);
	layer_index_free(ix);
	layer_index_free(ix2);
	free(dec.p);
}

static void test_samples_every_compression(void **state)
{
	(void)state;
	srand(7);
	for (size_t s = 0; s < sizeof SAMPLES / sizeof SAMPLES[0]; s++) {
		size_t tn;
		unsigned char *tar = sample_tar(SAMPLES[s], &tn);
		assert_non_null(tar);
		struct blob v[] = { plain(tar, tn), gz(tar, tn, 1, 1), gz(tar, tn, 6, 1),
		                    gz(tar, tn, 9, 1), gz(tar, tn, 6, 3), zst(tar, tn, 0),
		                    zst(tar, tn, 256 * 1024) };
		for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
			v[k].short_read = k == 2 ? 777 : 0;   /* short reads from the blob */
			check_variant(SAMPLES[s], tar, tn, &v[k]);
			free(v[k].p);
		}
		free(tar);
	}
}

/* Spans and fetch spaces: gzip has checkpoints, multi-frame zstd reads from
 * the blob, single-frame zstd from the decoded stream. */
static void test_span_kinds(void **state)
{
	(void)state;
	size_t tn;
	unsigned char *tar = sample_tar("pax", &tn);
	struct blob g = gz(tar, tn, 6, 1), z1 = zst(tar, tn, 0), zm = zst(tar, tn, 200000);
	struct regfs_err e = { 0 };
	int rc;
	struct layer_index *ig = build(&g, 64 * 1024, &e, &rc), *i1 = build(&z1, 64 * 1024, &e, &rc),
	                   *im = build(&zm, 64 * 1024, &e, &rc);
	struct layer_index_stats st;
	layer_index_stats(ig, &st);
	assert_int_equal(st.compression, LAYER_GZIP);
	assert_true(st.checkpoints >= 2);   /* at deflate block ends after >= 64 KiB */
	assert_int_equal(layer_index_fetch_space(ig), LAYER_SPACE_BLOB);
	layer_index_stats(i1, &st);
	assert_int_equal(st.frames, 1);
	assert_int_equal(layer_index_fetch_space(i1), LAYER_SPACE_DECODED);
	layer_index_stats(im, &st);
	assert_true(st.frames > 2);
	assert_int_equal(layer_index_fetch_space(im), LAYER_SPACE_BLOB);
	layer_index_free(ig);
	layer_index_free(i1);
	layer_index_free(im);
	free(g.p);
	free(z1.p);
	free(zm.p);
	free(tar);
}

/* A 4 KiB read near the end of a 3 MiB file fetches one span, not the blob;
 * the next read in the same span fetches nothing with a cursor. */
static void test_small_read_fetches_one_span(void **state)
{
	(void)state;
	size_t tn;
	unsigned char *tar = sample_tar("pax", &tn);
	struct blob g = gz(tar, tn, 6, 1);
	struct regfs_err e = { 0 };
	int rc;
	struct layer_index *ix = build(&g, 64 * 1024, &e, &rc);
	long i = layer_index_find(ix, "usr/lib/big.bin");
	assert_true(i > 0);
	uint64_t size = layer_index_entry(ix, (size_t)i)->size, o = size - 8000;
	uint64_t fo, fl, fo2, fl2;
	assert_int_equal(layer_index_span_range(ix, (size_t)i, o, &fo, &fl), 0);
	assert_int_equal(layer_index_span_range(ix, (size_t)i, o + 4095, &fo2, &fl2), 0);
	uint64_t want = fl + (fo2 != fo ? fl2 : 0);   /* the range may cross a span end */
	struct layer_cursor *c = layer_cursor_new();
	unsigned char buf[4096];
	g.fetched = 0;
	assert_int_equal(layer_read(ix, (size_t)i, o, buf, 4096, blob_fetch, &g, c, &e), 4096);
	assert_int_equal(g.fetched, want);
	assert_true(want < g.n / 8);
	/* the cursor holds the span of the last byte read: reading it again is free */
	assert_int_equal(layer_read(ix, (size_t)i, o + 4000, buf, 96, blob_fetch, &g, c, &e), 96);
	assert_int_equal(g.fetched, want);
	layer_cursor_free(c);
	layer_index_free(ix);
	free(g.p);
	free(tar);
}

/* A byte changed in the blob after indexing: the read of the file whose span
 * holds it fails with -EIO naming the span; other spans still read. */
static void test_corrupt_span_refused(void **state)
{
	(void)state;
	size_t tn;
	unsigned char *tar = sample_tar("pax", &tn);
	struct blob vs[] = { gz(tar, tn, 6, 1), plain(tar, tn), zst(tar, tn, 100000) };
	for (size_t v = 0; v < 3; v++) {
		struct blob *b = &vs[v];
		struct regfs_err e = { 0 };
		int rc;
		struct layer_index *ix = build(b, 64 * 1024, &e, &rc);
		long i = layer_index_find(ix, "usr/lib/big.bin");
		uint64_t size = layer_index_entry(ix, (size_t)i)->size, fo, fl;
		assert_int_equal(layer_index_span_range(ix, (size_t)i, size / 2, &fo, &fl), 0);
		b->p[fo + fl / 2] ^= 0x40;
		unsigned char buf[100];
		assert_int_equal(layer_read(ix, (size_t)i, size / 2, buf, 100, blob_fetch, b, NULL, &e),
		                 -EIO);
		assert_non_null(strstr(regfs_err_str(&e), "sha256"));
		assert_non_null(strstr(regfs_err_str(&e), "usr/lib/big.bin"));
		regfs_err_clear(&e);
		assert_int_equal(layer_read(ix, (size_t)i, 0, buf, 100, blob_fetch, b, NULL, &e), 100);
		layer_index_free(ix);
		free(b->p);
	}
	free(tar);
}

static int sink_add(void *arg, const void *p, size_t n)
{
	return dynbuf_add(arg, p, n);
}

/* The sink gets the decoded tar stream, byte for byte, in the build's one
 * pass; a single-frame zstd layer is then read from that copy. */
static void test_sink_gives_decoded_stream(void **state)
{
	(void)state;
	size_t tn;
	unsigned char *tar = sample_tar("gnu", &tn);
	struct blob z = zst(tar, tn, 0);
	struct dynbuf copy = DYNBUF_INIT(DYNBUF_NO_CAP);
	struct layer_build_opts o = { .sink = sink_add, .sink_arg = &copy };
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	assert_int_equal(layer_index_build(blob_read, &z, &o, &ix, &e), 0);
	assert_int_equal(dynbuf_len(&copy), tn);
	assert_memory_equal(dynbuf_ptr(&copy), tar, tn);
	assert_int_equal(layer_index_fetch_space(ix), LAYER_SPACE_DECODED);
	struct blob c = { (unsigned char *)dynbuf_ptr(&copy), dynbuf_len(&copy), 0, 0, 0 };
	check_manifest(ix, &c, "gnu");
	layer_index_free(ix);
	dynbuf_free(&copy);
	free(z.p);
	free(tar);
}

/* Use everything a decoded index offers (must not crash, reads may fail). */
static void walk(struct layer_index *ix, struct blob *fb)
{
	unsigned char buf[512];
	int reads = 0;
	for (size_t i = 0; i < layer_index_count(ix); i++) {
		const struct layer_entry *en = layer_index_entry(ix, i);
		(void)layer_index_find(ix, en->path);
		size_t first, n;
		if (layer_index_children(ix, i, &first, &n) == 0)
			assert_true(first + n <= layer_index_count(ix));
		if ((en->type == LAYER_REG || en->type == LAYER_HARDLINK) && reads++ < 3)
			(void)layer_read(ix, i, en->size / 2, buf, sizeof buf, blob_fetch, fb, NULL, NULL);
	}
}

/* Mutated indexes whose trailing sha256 is recomputed: decode refuses them or
 * yields an index that is safe to use; truncations are always refused. */
static void test_decode_hostile(void **state)
{
	(void)state;
	size_t tn;
	unsigned char *tar = sample_tar("gnu", &tn);
	struct blob g = gz(tar, tn, 6, 1);
	struct regfs_err e = { 0 };
	int rc;
	struct layer_index *ix = build(&g, 256 * 1024, &e, &rc), *d;
	struct dynbuf enc = DYNBUF_INIT(DYNBUF_NO_CAP);
	assert_int_equal(layer_index_encode(ix, &enc, &e), 0);
	size_t n = dynbuf_len(&enc);
	unsigned char *m = malloc(n);
	for (size_t cut = 0; cut < n; cut += 1 + cut / 7) {
		assert_int_equal(layer_index_decode(dynbuf_ptr(&enc), cut, NULL, &d, &e), -EINVAL);
		assert_null(d);
	}
	srand(11);
	for (int t = 0; t < 1500; t++) {
		memcpy(m, dynbuf_ptr(&enc), n);
		for (int k = 0; k < 1 + t % 4; k++)
			m[(size_t)rand() % (n - 32)] ^= (unsigned char)(1 + rand() % 255);
		if (t % 2 == 0)   /* without the sha fixed up: always refused */
			assert_int_equal(layer_index_decode(m, n, NULL, &d, NULL), -EINVAL);
		unsigned int l = 32;
		EVP_Digest(m, n - 32, m + n - 32, &l, EVP_sha256(), NULL);
		if (layer_index_decode(m, n, NULL, &d, NULL) == 0) {
			walk(d, &g);
			layer_index_free(d);
		}
	}
	free(m);
	dynbuf_free(&enc);
	layer_index_free(ix);
	free(g.p);
	free(tar);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_every_compression),
		cmocka_unit_test(test_span_kinds),
		cmocka_unit_test(test_sink_gives_decoded_stream),
		cmocka_unit_test(test_small_read_fetches_one_span),
		cmocka_unit_test(test_corrupt_span_refused),
		cmocka_unit_test(test_decode_hostile),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	samples_cleanup();
	return r;
}
