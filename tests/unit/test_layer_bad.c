/* test_layer_bad.c — bad layers: headers written by hand here (names that
 * climb, absolute names, dangling hard links, empty whiteouts, entries under
 * a file, base-256 numbers, bad checksums, absurd sizes and counts, malformed
 * pax), not-a-tar, truncated tar, corrupt and truncated gzip/zstd, other
 * compressions. Each gives a clear error or leaves the entry out; never a
 * crash (the suite also runs under ASan+UBSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "regfs/dynbuf.h"
#include "test_layer_util.h"

struct tw {
	unsigned char *p;
	size_t n, cap;
};

static void tw_grow(struct tw *t, size_t k)
{
	if (t->n + k > t->cap) {
		t->cap = (t->n + k) * 2;
		t->p = realloc(t->p, t->cap);
	}
}

static void octal(unsigned char *f, size_t w, uint64_t v)
{
	char b[32];
	snprintf(b, sizeof b, "%0*llo", (int)w - 1, (unsigned long long)v);
	memcpy(f, b, w - 1);
	f[w - 1] = 0;
}

static void checksum(unsigned char *h)
{
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* Append a ustar header; returns its offset. */
static size_t hdr(struct tw *t, const char *name, char type, uint64_t size, const char *link)
{
	tw_grow(t, 512);
	unsigned char *h = t->p + t->n;
	memset(h, 0, 512);
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 1700000000);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar\0" "00", 8);
	checksum(h);
	t->n += 512;
	return t->n - 512;
}

static void data(struct tw *t, const void *p, size_t n)
{
	size_t pad = (512 - n % 512) % 512;
	tw_grow(t, n + pad);
	memcpy(t->p + t->n, p, n);
	memset(t->p + t->n + n, 0, pad);
	t->n += n + pad;
}

static void file(struct tw *t, const char *name, const char *content)
{
	hdr(t, name, '0', strlen(content), NULL);
	data(t, content, strlen(content));
}

static void end(struct tw *t)
{
	tw_grow(t, 1024);
	memset(t->p + t->n, 0, 1024);
	t->n += 1024;
}

static int build_tw(struct tw *t, struct layer_index **ix, struct regfs_err *e,
                    const struct layer_build_opts *o)
{
	struct blob b = { t->p, t->n, 0, 0, 0 };
	return layer_index_build(blob_read, &b, o, ix, e);
}

static void read_is(struct layer_index *ix, const char *path, const char *want)
{
	long i = layer_index_find(ix, path);
	if (i < 0)
		fail_msg("%s missing", path);
	(void)want;
}

static void test_unsafe_entries_left_out(void **state)
{
	(void)state;
	struct tw t = { 0 };
	file(&t, "../../etc/passwd", "root::0:0\n");
	file(&t, "a/../../escape", "x");
	file(&t, "/etc/abs", "abs\n");
	file(&t, "ok", "fine\n");
	hdr(&t, "hl", '1', 0, "missing");
	hdr(&t, "hl-up", '1', 0, "../ok");
	hdr(&t, "hl2", '1', 0, "./ok");
	hdr(&t, "hl-dir", '1', 0, "etc");
	file(&t, ".wh.", "");
	file(&t, "x/.wh.y", "");
	file(&t, "afile", "f");
	file(&t, "afile/under", "u");
	hdr(&t, "sym", '2', 0, "../../../../etc/shadow");
	hdr(&t, "odd", 'Z', 0, NULL);
	end(&t);
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(&t, &ix, &e, NULL), 0);
	const char *absent[] = { "etc/passwd", "escape", "hl", "hl-up", "hl-dir", ".wh.",
	                         "afile/under", "odd" };
	for (size_t k = 0; k < sizeof absent / sizeof absent[0]; k++)
		if (layer_index_find(ix, absent[k]) >= 0)
			fail_msg("%s should be left out", absent[k]);
	for (size_t i = 0; i < layer_index_count(ix); i++)
		assert_null(strstr(layer_index_entry(ix, i)->path, ".."));
	read_is(ix, "etc/abs", "abs\n");
	long ok = layer_index_find(ix, "ok"), hl2 = layer_index_find(ix, "hl2");
	assert_true(ok > 0 && hl2 > 0);
	assert_int_equal(layer_index_entry(ix, (size_t)hl2)->link_index, ok);
	char buf[16] = { 0 };
	assert_int_equal(layer_read(ix, (size_t)hl2, 0, buf, sizeof buf, blob_fetch,
	                            &(struct blob){ t.p, t.n, 0, 0, 0 }, NULL, &e), 5);
	assert_string_equal(buf, "fine\n");
	long w = layer_index_find(ix, "x/.wh.y");
	assert_true(w > 0 && (layer_index_entry(ix, (size_t)w)->flags & LAYER_F_WHITEOUT));
	long x = layer_index_find(ix, "x");
	assert_true(layer_index_entry(ix, (size_t)x)->flags & LAYER_F_SYNTHETIC);
	long s = layer_index_find(ix, "sym");
	assert_string_equal(layer_index_entry(ix, (size_t)s)->link, "../../../../etc/shadow");
	assert_int_equal(layer_index_find(ix, "../ok"), -ENOENT);
	assert_int_equal(layer_index_find(ix, "/ok/"), ok);
	layer_index_free(ix);
	free(t.p);
}

/* base-256 size and uid (GNU/star extension for values octal cannot hold). */
static void test_base256_numbers(void **state)
{
	(void)state;
	struct tw t = { 0 };
	size_t at = hdr(&t, "big-uid", '0', 0, NULL);
	unsigned char *h = t.p + at;
	memset(h + 108, 0, 8);
	h[108] = 0x80;
	uint32_t uid = 3000000000u;
	for (int i = 0; i < 4; i++)
		h[115 - i] = (unsigned char)(uid >> (8 * i));
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[135] = 7;   /* size 7 */
	checksum(h);
	data(&t, "base256", 7);
	end(&t);
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(&t, &ix, &e, NULL), 0);
	const struct layer_entry *en = layer_index_entry(ix, (size_t)layer_index_find(ix, "big-uid"));
	assert_int_equal(en->uid, 3000000000u);
	assert_int_equal(en->size, 7);
	layer_index_free(ix);
	free(t.p);
}

static void expect_fail(struct tw *t, int code, const char *msg,
                        const struct layer_build_opts *o)
{
	struct layer_index *ix = (void *)1;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(t, &ix, &e, o), code);
	assert_null(ix);
	if (!strstr(regfs_err_str(&e), msg))
		fail_msg("message \"%s\" lacks \"%s\"", regfs_err_str(&e), msg);
}

static void test_broken_archives(void **state)
{
	(void)state;
	struct tw t = { 0 };
	file(&t, "a", "hello");
	size_t at = hdr(&t, "b", '0', 3, NULL);
	data(&t, "abc", 3);
	end(&t);
	t.p[at + 10] ^= 1;   /* second header's checksum no longer matches */
	expect_fail(&t, -EINVAL, "corrupt tar header at byte 1024", NULL);
	t.p[at + 10] ^= 1;
	t.p[0] ^= 1;
	expect_fail(&t, -EINVAL, "not a tar archive", NULL);
	free(t.p);

	t = (struct tw){ 0 };
	hdr(&t, "huge", '0', 077777777777ull, NULL);   /* 8 GiB claimed, 512 bytes follow */
	data(&t, "x", 1);
	expect_fail(&t, -EINVAL, "truncated", NULL);
	expect_fail(&t, -EINVAL, "tar entry \"huge\"", NULL);   /* names the entry */
	free(t.p);

	t = (struct tw){ 0 };
	for (int i = 0; i < 50; i++) {
		char n[16];
		snprintf(n, sizeof n, "f%d", i);
		file(&t, n, "x");
	}
	end(&t);
	expect_fail(&t, -E2BIG, "more than 10 entries",
	            &(struct layer_build_opts){ .max_entries = 10 });
	expect_fail(&t, -E2BIG, "exceed the limit",
	            &(struct layer_build_opts){ .max_meta = 64 });
	struct layer_index *ix;
	assert_int_equal(build_tw(&t, &ix, NULL, NULL), 0);
	assert_int_equal(layer_index_count(ix), 51);
	layer_index_free(ix);
	free(t.p);

	t = (struct tw){ 0 };
	hdr(&t, "pax", 'x', 5u << 20, NULL);
	expect_fail(&t, -E2BIG, "over the limit", NULL);
	free(t.p);

	t = (struct tw){ 0 };
	hdr(&t, "pax", 'x', 20, NULL);
	data(&t, "99 path=whatever\n\n\n\n", 20);
	file(&t, "f", "x");
	end(&t);
	expect_fail(&t, -EINVAL, "malformed pax header", NULL);
	free(t.p);

	t = (struct tw){ 0 };
	expect_fail(&t, -EINVAL, "empty", NULL);
	tw_grow(&t, 4096);
	for (int i = 0; i < 4096; i++)
		t.p[i] = (unsigned char)(i * 7 + 3);
	t.n = 4096;
	expect_fail(&t, -EINVAL, "not a tar", NULL);
	memcpy(t.p, "BZh91AY", 7);
	expect_fail(&t, -ENOTSUP, "bzip2", NULL);
	memcpy(t.p, "\xfd" "7zXZ\0", 6);
	expect_fail(&t, -ENOTSUP, "xz", NULL);
	free(t.p);
}

/* A pax 0.1 sparse map that does not add up: the entry is left out. */
static void test_bad_sparse_map_left_out(void **state)
{
	(void)state;
	struct tw t = { 0 };
	const char *rec = "28 GNU.sparse.map=0,10,5,10\n" "22 GNU.sparse.size=40\n";
	hdr(&t, "p", 'x', strlen(rec), NULL);
	data(&t, rec, strlen(rec));
	hdr(&t, "sp", '0', 20, NULL);
	data(&t, "01234567890123456789", 20);
	file(&t, "after", "ok");
	end(&t);
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(&t, &ix, &e, NULL), 0);
	assert_int_equal(layer_index_find(ix, "sp"), -ENOENT);
	assert_true(layer_index_find(ix, "after") > 0);
	layer_index_free(ix);
	free(t.p);
}

/* Building an index of b from its start is refused with -EINVAL; e holds why. */
static void refused(struct blob *b, struct regfs_err *e)
{
	struct layer_index *ix;
	regfs_err_clear(e);
	b->pos = 0;
	assert_int_equal(layer_index_build(blob_read, b, NULL, &ix, e), -EINVAL);
}

/* Flips 40 bytes a third of the way into b. */
static void flip_middle(struct blob *b)
{
	for (size_t k = b->n / 3; k < b->n / 3 + 40; k++)
		b->p[k] ^= 0x55;
}

/* A sparse map without a sparse size does not make the file sparse, and the
 * index still encodes and decodes (found by fuzz_tar). */
static void test_sparse_map_without_size(void **state)
{
	(void)state;
	struct tw t = { 0 };
	const char *rec = "33 GNU.sparse.map=4096,0,16384,9\n";
	hdr(&t, "p", 'x', strlen(rec), NULL);
	data(&t, rec, strlen(rec));
	file(&t, "plain", "0123456789");
	end(&t);
	struct layer_index *ix, *d;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(&t, &ix, &e, NULL), 0);
	const struct layer_entry *en = layer_index_entry(ix, (size_t)layer_index_find(ix, "plain"));
	assert_null(en->sparse);
	assert_int_equal(en->size, 10);
	struct dynbuf b = DYNBUF_INIT(DYNBUF_NO_CAP);
	assert_int_equal(layer_index_encode(ix, &b, &e), 0);
	assert_int_equal(layer_index_decode(dynbuf_ptr(&b), dynbuf_len(&b), NULL, &d, &e), 0);
	dynbuf_free(&b);
	layer_index_free(d);
	layer_index_free(ix);
	free(t.p);
}

static void test_bad_compressed(void **state)
{
	(void)state;
	struct tw t = { 0 };
	for (int i = 0; i < 200; i++) {
		char n[16], c[2000];
		snprintf(n, sizeof n, "f%03d", i);
		for (int k = 0; k < 1999; k++)
			c[k] = (char)('a' + (i * k) % 26);
		c[1999] = 0;
		file(&t, n, c);
	}
	end(&t);
	struct blob g = gz(t.p, t.n, 6, 1), z = zst(t.p, t.n, 0);
	struct regfs_err e = { 0 };
	struct blob cut = g;
	cut.n = g.n / 2;
	refused(&cut, &e);
	assert_non_null(strstr(regfs_err_str(&e), "truncated"));
	flip_middle(&g);
	/* inflate may notice (bad code) or emit garbage the tar reader refuses */
	refused(&g, &e);
	if (!strstr(regfs_err_str(&e), "gzip") && !strstr(regfs_err_str(&e), "tar header"))
		fail_msg("unexpected message: %s", regfs_err_str(&e));
	struct blob zc = z;
	zc.n = z.n - 10;
	refused(&zc, &e);
	assert_non_null(strstr(regfs_err_str(&e), "zstd"));
	flip_middle(&z);
	refused(&z, &e);
	free(g.p);
	free(z.p);
	free(t.p);
}

/* 20,000 files and no directory entries: every implied directory once, the
 * children of each in one run, every file found by path. */
static void test_many_entries_without_directories(void **state)
{
	(void)state;
	struct tw t = { 0 };
	char n[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(n, sizeof n, "a/b%02d/f%05d", i % 100, i);
		hdr(&t, n, '0', 0, NULL);
	}
	end(&t);
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(&t, &ix, &e, NULL), 0);
	assert_int_equal(layer_index_count(ix), 20000 + 100 + 1 + 1);
	size_t first, k;
	long a = layer_index_find(ix, "a");
	assert_int_equal(layer_index_children(ix, (size_t)a, &first, &k), 0);
	assert_int_equal(k, 100);
	for (int i = 0; i < 20000; i += 7) {
		snprintf(n, sizeof n, "a/b%02d/f%05d", i % 100, i);
		long f = layer_index_find(ix, n);
		assert_true(f > 0);
		assert_string_equal(layer_index_entry(ix, (size_t)f)->path, n);
	}
	layer_index_free(ix);
	free(t.p);
}

/* A failing blob reader's error comes back as it is. */
static ssize_t read_fails(void *arg, void *buf, size_t len)
{
	int *calls = arg;
	(void)buf;
	if ((*calls)++ > 2)
		return -ECONNRESET;
	return (ssize_t)(len < 10 ? len : 10);
}

static void test_reader_error_passed_through(void **state)
{
	(void)state;
	int calls = 0;
	struct layer_index *ix;
	struct regfs_err e = { 0 };
	assert_int_equal(layer_index_build(read_fails, &calls, NULL, &ix, &e), -ECONNRESET);
}

/* umoci ends a layer right after the last file's data: no padding to the
 * next block, no end-of-archive blocks. GNU tar lists such a layer, and so
 * must the index; data cut short is still a truncated archive. */
static void test_archive_without_final_padding(void **state)
{
	(void)state;
	struct tw t = { 0 };
	file(&t, "a", "hello");
	hdr(&t, "last", '0', 5, NULL);
	tw_grow(&t, 5);
	memcpy(t.p + t.n, "world", 5);
	t.n += 5;                       /* the archive ends here */
	struct layer_index *ix = NULL;
	struct regfs_err e = { 0 };
	assert_int_equal(build_tw(&t, &ix, &e, NULL), 0);
	long last = layer_index_find(ix, "last");
	assert_true(last >= 0 && layer_index_find(ix, "a") >= 0);
	char buf[16] = { 0 };
	assert_int_equal(layer_read(ix, (size_t)last, 0, buf, sizeof buf, blob_fetch,
	                            &(struct blob){ t.p, t.n, 0, 0, 0 }, NULL, &e), 5);
	assert_string_equal(buf, "world");
	layer_index_free(ix);
	t.n -= 2;                       /* now the data itself is cut */
	expect_fail(&t, -EINVAL, "truncated", NULL);
	free(t.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsafe_entries_left_out),
		cmocka_unit_test(test_base256_numbers),
		cmocka_unit_test(test_broken_archives),
		cmocka_unit_test(test_archive_without_final_padding),
		cmocka_unit_test(test_bad_sparse_map_left_out),
		cmocka_unit_test(test_sparse_map_without_size),
		cmocka_unit_test(test_bad_compressed),
		cmocka_unit_test(test_many_entries_without_directories),
		cmocka_unit_test(test_reader_error_passed_through),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
