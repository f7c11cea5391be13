/* test_fs_layers.c — the layer views (fs/tree/views.c) over the layer
 * cache (fs/cache/layers.c), with two layers made here by Python's tarfile
 * (an independent tar writer) and indexed by lib/layer: what .layers/ and
 * .rootfs/ show (names, modes, owners, times, links, devices, xattrs,
 * whiteouts applied or not), reads against the bytes written, the memory
 * budget (evicted indexes come back from the disk cache) and single flight
 * (ten threads, one build). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs_test.h"

#include <regfs/digest.h>
#include <regfs/layer.h>

static struct mnt mnt;
static char tmp[256];
static char dig[3][REGFS_DIGEST_MAX], img[REGFS_DIGEST_MAX];
static char *blob[3];
static size_t blen[3];
static char *image_json;

/* Layer 0 (plain tar) and layer 1 (gzip) written by tarfile. The file
 * contents are functions of the offset, recomputed by pattern() below. */
static const char PY[] =
	"import tarfile, io, sys, gzip\n"
	"d = sys.argv[1]\n"
	"def pat(seed, n):\n"
	"    return bytes(((i * 7 + seed) % 251) for i in range(n))\n"
	"def add(t, name, typ=tarfile.REGTYPE, data=b'', mode=0o644, uid=0, gid=0, mtime=1600000000,"
	" link='', dev=(0, 0), pax=None):\n"
	"    i = tarfile.TarInfo(name); i.type = typ; i.mode = mode; i.uid = uid; i.gid = gid\n"
	"    i.mtime = mtime; i.linkname = link; i.devmajor, i.devminor = dev\n"
	"    if pax: i.pax_headers = pax\n"
	"    i.size = len(data) if typ == tarfile.REGTYPE else 0\n"
	"    t.addfile(i, io.BytesIO(data) if typ == tarfile.REGTYPE else None)\n"
	"b = io.BytesIO()\n"
	"with tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT) as t:\n"
	"    add(t, 'etc', tarfile.DIRTYPE, mode=0o755)\n"
	"    add(t, 'etc/os-release', data=b'ID=zero\\n', mode=0o640, uid=12, gid=34, mtime=1500000001)\n"
	"    add(t, 'etc/gone', data=b'gone\\n')\n"
	"    add(t, 'opt', tarfile.DIRTYPE, mode=0o755)\n"
	"    add(t, 'opt/a', data=b'a\\n')\n"
	"    add(t, 'usr/bin', tarfile.DIRTYPE, mode=0o711)\n"
	"    add(t, 'usr/bin/tool', data=pat(0, 3000000), mode=0o755)\n"
	"    add(t, 'usr/bin/tool2', tarfile.LNKTYPE, link='usr/bin/tool')\n"
	"    add(t, 'usr/bin/sh', tarfile.SYMTYPE, link='/bin/busybox', mode=0o777)\n"
	"    add(t, 'dev/null', tarfile.CHRTYPE, mode=0o666, dev=(1, 3))\n"
	"    add(t, 'run/fifo', tarfile.FIFOTYPE, mode=0o600)\n"
	"    add(t, 'caps', data=b'x', pax={'SCHILY.xattr.user.test': 'hello'})\n"
	"open(d + '/l0.tar', 'wb').write(b.getvalue())\n"
	"b = io.BytesIO()\n"
	"with tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT) as t:\n"
	"    add(t, 'etc', tarfile.DIRTYPE, mode=0o755)\n"
	"    add(t, 'etc/.wh.gone')\n"
	"    add(t, 'etc/os-release', data=b'ID=one\\n', mtime=1700000000)\n"
	"    add(t, 'opt', tarfile.DIRTYPE, mode=0o700)\n"
	"    add(t, 'opt/.wh..wh..opq')\n"
	"    add(t, 'opt/b', data=b'b\\n')\n"
	"    add(t, 'usr', tarfile.DIRTYPE, mode=0o755)\n"
	"    add(t, 'usr/bin', tarfile.DIRTYPE, mode=0o755)\n"
	"    add(t, 'usr/bin/tool', data=pat(1, 5000000), mode=0o755)\n"
	"open(d + '/l1.tar.gz', 'wb').write(gzip.compress(b.getvalue(), 6))\n"
	"open(d + '/l1.tar', 'wb').write(b.getvalue())\n";

static unsigned char pattern(int seed, uint64_t i)
{
	return (unsigned char)((i * 7 + (uint64_t)seed) % 251);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc(*len ? *len : 1);
	if (b && fread(b, 1, *len, f) != *len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof tmp, "/tmp/regfs-test-layers-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	char cmd[1200];
	FILE *py = popen(
		(snprintf(cmd, sizeof cmd, "python3 - '%s'", tmp), cmd), "w");
	if (!py || fwrite(PY, 1, sizeof PY - 1, py) != sizeof PY - 1 || pclose(py) != 0)
		return -1;
	/* layer 1 again, as one zstd frame (no random access: read from the
	 * decoded stream the cache keeps) */
	snprintf(cmd, sizeof cmd, "zstd -q -3 '%s/l1.tar' -o '%s/l1.tar.zst'", tmp, tmp);
	if (system(cmd) != 0)
		return -1;
	const char *names[3] = {"l0.tar", "l1.tar.gz", "l1.tar.zst"};
	for (int k = 0; k < 3; k++) {
		char p[300];
		snprintf(p, sizeof p, "%s/%s", tmp, names[k]);
		if (!(blob[k] = slurp(p, &blen[k])))
			return -1;
		regfs_digest_buf(REGFS_SHA256, blob[k], blen[k], dig[k]);
	}
	if (asprintf(&image_json,
		     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		     "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		     "\"digest\":\"sha256:%064d\",\"size\":2},\"layers\":["
		     "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu},"
		     "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%zu}"
		     "]}", 0, dig[0], blen[0], dig[1], blen[1]) < 0)
		return -1;
	memset(&mnt, 0, sizeof mnt);
	mnt.o.ttl = 30;
	mnt.o.timeout_s = 30;
	if (fs_test_mount_open(&mnt) != 0)
		return -1;
	regfs_digest_buf(REGFS_SHA256, image_json, strlen(image_json), img);
	if (mcache_store(mnt.mc, img, image_json, strlen(image_json), NULL, NULL) != 0)
		return -1;
	/* the blobs in the disk cache: reads and rebuilds need no registry */
	char cdir[300];
	snprintf(cdir, sizeof cdir, "%s/cache", tmp);
	mnt.bc = blob_cache_new(cdir, 1ull << 30, &mnt.st);
	mnt.lc = layer_cache_new(cdir, 0, mnt.bc, &mnt.st);
	if (!mnt.bc || !mnt.lc)
		return -1;
	for (int k = 0; k < 3; k++)
		if (blob_cache_put(mnt.bc, dig[k], blob[k], blen[k]))
			return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	layer_cache_free(mnt.lc);
	blob_cache_free(mnt.bc);
	fs_test_mount_close(&mnt);
	for (int k = 0; k < 3; k++)
		free(blob[k]);
	free(image_json);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

/* The node at `path` from the root, each component looked up as the
 * kernel does; NULL (rc in *err) when a lookup fails. */
static struct node *walk(const char *path, int *err)
{
	struct node *p = nodes_root(mnt.nodes);
	char comp[256];
	*err = 0;
	while (*path) {
		size_t l = strcspn(path, "/");
		snprintf(comp, sizeof comp, "%.*s", (int)l, path);
		struct child c;
		int rc = kind_ops[p->kind]->lookup(&mnt, p, comp, &c);
		if (rc) {
			*err = rc;
			return NULL;
		}
		p = nodes_get(mnt.nodes, p, &c, 1);
		child_clear(&c);
		assert_non_null(p);
		path += l + (path[l] == '/');
	}
	return p;
}

static struct node *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct node *at(const char *fmt, ...)
{
	char p[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p, sizeof p, fmt, ap);
	va_end(ap);
	int err;
	struct node *n = walk(p, &err);
	if (!n)
		fail_msg("lookup of %s: %s", p, strerror(-err));
	return n;
}

static struct stat attr(struct node *n)
{
	struct stat st;
	double t;
	assert_int_equal(node_attr(&mnt, n, &st, &t), 0);
	assert_true(t == IMMUTABLE_TIMEOUT);
	assert_int_equal(st.st_blocks, 0); /* views are not storage */
	return st;
}

/* The names of a directory, space-separated in listing order. */
static void names(struct node *dir, char *out, size_t cap)
{
	struct child *v;
	size_t n;
	assert_int_equal(kind_ops[dir->kind]->list(&mnt, dir, &v, &n), 0);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s", i ? " " : "", v[i].name);
		child_clear(&v[i]);
	}
	free(v);
}

static void expect_names(struct node *dir, const char *want)
{
	char got[1024];
	names(dir, got, sizeof got);
	assert_string_equal(got, want);
}

/* Reads [off, off+len) of a view file: opened and released through its
 * kind (open resolves and pins the entry), the bytes read through the layer
 * cache as the read slot does (it needs a FUSE request to reply to): the
 * entry of `path` in layer `layer`, or in the merged image when layer < 0. */
static ssize_t read_at(struct node *n, int layer, const char *path, uint64_t off, void *buf,
		       size_t len)
{
	struct fuse_file_info fi = {0};
	struct fh h = {.fd = -1};
	assert_int_equal(kind_ops[n->kind]->open(&mnt, n, &fi, &h), 0);
	assert_true(fi.keep_cache);
	struct lview *lv = NULL;
	struct rview *rv = NULL;
	size_t entry;
	if (layer >= 0) {
		assert_int_equal(layer_cache_get(mnt.lc, NULL, NULL, dig[layer], 0, &lv), 0);
		long i = layer_index_find(lv->ix, path);
		assert_true(i > 0);
		entry = (size_t)i;
	} else {
		const struct mentry *e;
		assert_int_equal(mcache_get(mnt.mc, "app", img, &e), 0);
		assert_int_equal(layer_cache_rget(mnt.lc, NULL, "app", img, e->m->layers,
						  e->m->n_layers, &rv), 0);
		mcache_put(mnt.mc, e);
		int64_t k = layer_merged_find(rv->mt, path);
		assert_true(k > 0);
		const struct layer_merged_entry *me = layer_merged_get(rv->mt, (size_t)k);
		lv = rv->layers[me->layer];
		entry = me->entry;
	}
	ssize_t got = layer_cache_read(mnt.lc, NULL, NULL, lv, entry, off, buf, len, NULL);
	if (rv)
		layer_cache_rput(mnt.lc, rv);
	else
		layer_cache_put(mnt.lc, lv);
	kind_ops[n->kind]->release(&h);
	return got;
}

static void check_pattern(struct node *n, int layer, const char *path, int seed, uint64_t size)
{
	static char buf[70000];
	uint64_t offs[] = {0, 4095, 1u << 20, size - 100, size / 2 + 12345};
	for (size_t k = 0; k < sizeof offs / sizeof *offs; k++) {
		ssize_t got = read_at(n, layer, path, offs[k], buf, sizeof buf);
		uint64_t want = size - offs[k] < sizeof buf ? size - offs[k] : sizeof buf;
		assert_int_equal(got, (ssize_t)want);
		for (uint64_t i = 0; i < want; i++)
			if ((unsigned char)buf[i] != pattern(seed, offs[k] + i))
				fail_msg("byte %llu differs", (unsigned long long)(offs[k] + i));
	}
	assert_int_equal(read_at(n, layer, path, size, buf, 10), 0);
}

/* ---- tests ---- */

static void test_tops_list_nothing(void **state)
{
	(void)state;
	int err;
	struct node *lt = at(".layers"), *rt = at(".rootfs");
	assert_int_equal(lt->kind, K_VTOP);
	assert_int_equal(rt->kind, K_VTOP);
	expect_names(lt, "");
	expect_names(rt, "");
	assert_true(S_ISDIR(attr(lt).st_mode));
	/* not a digest; a digest the mount never saw (no blob, no repository) */
	assert_null(walk(".layers/latest", &err));
	assert_int_equal(err, -ENOENT);
	assert_null(walk(".layers/sha256:0000000000000000000000000000000000000000000000000000000000000000", &err));
	assert_int_equal(err, -ENOENT);
	assert_null(walk(".rootfs/sha256:0000000000000000000000000000000000000000000000000000000000000000", &err));
	assert_int_equal(err, -ENOENT);
}

static void test_layer_view(void **state)
{
	(void)state;
	struct node *top = at(".layers/%s", dig[0]);
	assert_int_equal(top->kind, K_VDIR);
	expect_names(top, "caps dev etc opt run usr");
	expect_names(at(".layers/%s/etc", dig[0]), "gone os-release");
	struct stat st = attr(at(".layers/%s/etc/os-release", dig[0]));
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_uid, 12);
	assert_int_equal(st.st_gid, 34);
	assert_int_equal(st.st_mtim.tv_sec, 1500000001);
	assert_int_equal(st.st_size, 8);
	assert_int_equal(attr(at(".layers/%s/usr/bin", dig[0])).st_mode, S_IFDIR | 0711);
	assert_true(S_ISDIR(attr(at(".layers/%s/usr", dig[0])).st_mode)); /* implied */
	expect_names(at(".layers/%s/usr/bin", dig[0]), "sh tool tool2");

	/* a hard link: one inode, two names */
	struct node *tool = at(".layers/%s/usr/bin/tool", dig[0]);
	struct node *tool2 = at(".layers/%s/usr/bin/tool2", dig[0]);
	assert_int_equal(tool2->kind, K_VFILE);
	struct stat a = attr(tool), b = attr(tool2);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	assert_int_equal(b.st_nlink, 2);
	assert_int_equal(b.st_size, 3000000);
	assert_int_equal(b.st_mode, S_IFREG | 0755);

	struct node *sh = at(".layers/%s/usr/bin/sh", dig[0]);
	assert_int_equal(sh->kind, K_VLINK);
	char t[256];
	assert_int_equal(kind_ops[K_VLINK]->readlink(&mnt, sh, t, sizeof t), 0);
	assert_string_equal(t, "/bin/busybox");
	assert_true(S_ISLNK(attr(sh).st_mode));
	assert_int_equal(attr(sh).st_size, 12);

	struct node *null = at(".layers/%s/dev/null", dig[0]);
	assert_int_equal(null->kind, K_VSPECIAL);
	assert_true(S_ISCHR(attr(null).st_mode));
	assert_int_equal(attr(null).st_rdev, makedev(1, 3));
	assert_true(S_ISFIFO(attr(at(".layers/%s/run/fifo", dig[0])).st_mode));

	/* pax SCHILY.xattr.* as xattrs */
	struct node *caps = at(".layers/%s/caps", dig[0]);
	char v[64];
	size_t len;
	assert_int_equal(kind_ops[caps->kind]->getxattr(&mnt, caps, "user.test", v, sizeof v, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(v, "hello", 5);
	assert_int_equal(kind_ops[caps->kind]->getxattr(&mnt, caps, "user.test", v, 2, &len), -ERANGE);
	assert_int_equal(kind_ops[caps->kind]->getxattr(&mnt, caps, "user.no", v, sizeof v, &len),
			 -ENODATA);
	assert_int_equal(kind_ops[caps->kind]->listxattr(&mnt, caps, v, sizeof v, &len), 0);
	assert_int_equal(len, sizeof "user.test");
	assert_memory_equal(v, "user.test", sizeof "user.test");

	/* a layer shows its whiteouts as they are */
	expect_names(at(".layers/%s/etc", dig[1]), ".wh.gone os-release");
	expect_names(at(".layers/%s/opt", dig[1]), ".wh..wh..opq b");

	/* reads against the bytes written: plain tar, a hard link, gzip */
	check_pattern(tool, 0, "usr/bin/tool", 0, 3000000);
	check_pattern(tool2, 0, "usr/bin/tool2", 0, 3000000);
	check_pattern(at(".layers/%s/usr/bin/tool", dig[1]), 1, "usr/bin/tool", 1, 5000000);
}

/* A single-frame zstd layer browses and reads the same as gzip (its reads
 * come from the decoded stream kept in the cache dir, made again when it is
 * gone). */
static void test_zstd_layer(void **state)
{
	(void)state;
	expect_names(at(".layers/%s/etc", dig[2]), ".wh.gone os-release");
	struct node *tool = at(".layers/%s/usr/bin/tool", dig[2]);
	assert_int_equal(attr(tool).st_size, 5000000);
	check_pattern(tool, 2, "usr/bin/tool", 1, 5000000);
	char p[1200];
	snprintf(p, sizeof p, "%s/cache/layers/sha256/%s.tar", tmp, dig[2] + 7);
	assert_int_equal(unlink(p), 0);
	check_pattern(tool, 2, "usr/bin/tool", 1, 5000000);
	assert_int_equal(access(p, F_OK), 0);
}

static void test_rootfs_through_manifest(void **state)
{
	(void)state;
	/* the manifest directory as the kernel reaches it: its listing tells
	 * the mount where the image and its layers live */
	struct child c = fs_test_child("app", K_DIR, NULL, NULL, "app");
	struct node *app = nodes_get(mnt.nodes, nodes_root(mnt.nodes), &c, 1);
	c = fs_test_child("_manifests", K_MANIFESTS, "app", NULL, NULL);
	struct node *ms = nodes_get(mnt.nodes, app, &c, 1);
	c = fs_test_child(img, K_MANIFEST, "app", img, NULL);
	struct node *m = nodes_get(mnt.nodes, ms, &c, 1);
	assert_non_null(m);
	expect_names(m, "config.json layers manifest.json rootfs");
	struct child rc;
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "rootfs", &rc), 0);
	struct node *link = nodes_get(mnt.nodes, m, &rc, 1);
	child_clear(&rc);
	char t[512], want[512];
	assert_int_equal(kind_ops[link->kind]->readlink(&mnt, link, t, sizeof t), 0);
	snprintf(want, sizeof want, "../../../.rootfs/%s", img);
	assert_string_equal(t, want);

	struct node *top = at("%s", t + 9);
	expect_names(top, "caps dev etc opt run usr");
	expect_names(at("%s/etc", t + 9), "os-release");                 /* gone deleted */
	expect_names(at("%s/opt", t + 9), "b");                          /* opaque */
	assert_int_equal(attr(at("%s/opt", t + 9)).st_mode, S_IFDIR | 0700);
	assert_int_equal(attr(at("%s/usr/bin", t + 9)).st_mode, S_IFDIR | 0755);
	expect_names(at("%s/usr/bin", t + 9), "sh tool tool2");
	struct node *osr = at("%s/etc/os-release", t + 9);
	assert_int_equal(attr(osr).st_mtim.tv_sec, 1700000000);
	char buf[16] = {0};
	assert_int_equal(read_at(osr, -1, "etc/os-release", 0, buf, sizeof buf), 7);
	assert_string_equal(buf, "ID=one\n");

	/* the upper layer replaced tool: tool2 keeps the lower data, alone */
	struct node *tool = at("%s/usr/bin/tool", t + 9), *tool2 = at("%s/usr/bin/tool2", t + 9);
	struct stat a = attr(tool), b = attr(tool2);
	assert_int_equal(a.st_size, 5000000);
	assert_int_equal(b.st_size, 3000000);
	assert_int_equal(a.st_nlink, 1);
	assert_int_equal(b.st_nlink, 1);
	assert_int_not_equal(a.st_ino, b.st_ino);
	check_pattern(tool, -1, "usr/bin/tool", 1, 5000000);
	check_pattern(tool2, -1, "usr/bin/tool2", 0, 3000000);

	/* layers/N: links into .layers/ */
	struct child lc;
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "layers", &lc), 0);
	struct node *layers = nodes_get(mnt.nodes, m, &lc, 1);
	child_clear(&lc);
	assert_int_equal(kind_ops[K_LAYERS]->lookup(&mnt, layers, "1", &lc), 0);
	struct node *l1 = nodes_get(mnt.nodes, layers, &lc, 1);
	child_clear(&lc);
	assert_int_equal(kind_ops[l1->kind]->readlink(&mnt, l1, t, sizeof t), 0);
	snprintf(want, sizeof want, "../../../../.layers/%s", dig[1]);
	assert_string_equal(t, want);
	assert_non_null(at("%s/opt/.wh..wh..opq", t + 12));
}

/* Evicted beyond the budget, an index comes back from the disk cache
 * (verified: a corrupt file is rebuilt from the blob). */
static void test_budget_and_disk(void **state)
{
	(void)state;
	struct fs_stats st = {0};
	char cdir[300];
	snprintf(cdir, sizeof cdir, "%s/cache", tmp);
	struct layer_cache *lc = layer_cache_new(cdir, 1, mnt.bc, &st);
	assert_non_null(lc);
	struct lview *v;
	assert_int_equal(layer_cache_get(lc, NULL, NULL, dig[0], 0, &v), 0);
	assert_int_equal(atomic_load(&st.lv_loaded), 1); /* stored by the tests before */
	assert_int_equal(atomic_load(&st.lv_built), 0);
	assert_true(layer_cache_memory(lc) > 0);
	layer_cache_put(lc, v);
	assert_int_equal(layer_cache_memory(lc), 0);
	assert_int_equal(layer_cache_get(lc, NULL, NULL, dig[0], 0, &v), 0);
	assert_int_equal(atomic_load(&st.lv_loaded), 2);
	layer_cache_put(lc, v);

	char p[1200];
	snprintf(p, sizeof p, "%s/layers/sha256/%s.lix", cdir, dig[0] + 7);
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "XX", 2, 40), 2);
	close(fd);
	assert_int_equal(layer_cache_get(lc, NULL, NULL, dig[0], 0, &v), 0);
	assert_int_equal(atomic_load(&st.lv_built), 1);
	assert_true(layer_index_find(v->ix, "usr/bin/tool") > 0);
	layer_cache_put(lc, v);
	layer_cache_free(lc);
}

/* Every digest the mount has shown keeps its repository (many digests: no
 * two may push each other out). */
static void test_repo_notes(void **state)
{
	(void)state;
	struct fs_stats st = {0};
	struct layer_cache *lc = layer_cache_new(NULL, 0, NULL, &st);
	assert_non_null(lc);
	char d[REGFS_DIGEST_MAX], repo[64], got[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(d, sizeof d, "sha256:%064x", i);
		snprintf(repo, sizeof repo, "team/r%d", i);
		layer_cache_note_repo(lc, d, repo, (uint64_t)i + 1);
	}
	layer_cache_note_repo(lc, "sha256:" "0000000000000000000000000000000000000000000000000000000000000007",
			      "moved", 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(d, sizeof d, "sha256:%064x", i);
		snprintf(repo, sizeof repo, i == 7 ? "moved" : "team/r%d", i);
		uint64_t size = 0;
		assert_int_equal(layer_cache_repo(lc, d, got, sizeof got, &size), 0);
		assert_string_equal(got, repo);
		assert_int_equal(size, (uint64_t)i + 1); /* a size of 0 keeps the known one */
	}
	assert_int_equal(layer_cache_repo(lc, "sha256:" "1111111111111111111111111111111111111111111111111111111111111111",
					  got, sizeof got, NULL), -ENOENT);
	/* a sha512 and an uppercase spelling are digests of their own */
	char d512[REGFS_DIGEST_MAX], up[REGFS_DIGEST_MAX];
	regfs_digest_buf(REGFS_SHA512, "x", 1, d512);
	snprintf(up, sizeof up, "sha256:%064X", 0xabc);
	layer_cache_note_repo(lc, d512, "long/one", 9);
	layer_cache_note_repo(lc, up, "upper", 10);
	uint64_t size = 0;
	assert_int_equal(layer_cache_repo(lc, d512, got, sizeof got, &size), 0);
	assert_string_equal(got, "long/one");
	assert_int_equal(size, 9);
	assert_int_equal(layer_cache_repo(lc, up, got, sizeof got, &size), 0);
	assert_string_equal(got, "upper");
	snprintf(d, sizeof d, "sha256:%064x", 0xabc);
	assert_int_equal(layer_cache_repo(lc, d, got, sizeof got, &size), 0);
	assert_string_equal(got, "team/r2748"); /* 0xabc: the lowercase one, noted above */
	/* what they take: 5,002 notes, 5,003 names, ~64 + ~32 bytes each (a
	 * digest string and a copied name per note took ~144) */
	size_t count, bytes;
	layer_cache_notes(lc, &count, &bytes);
	assert_int_equal(count, 5002);
	assert_true(bytes >= count * (32 + 2 * sizeof(void *)));
	assert_true(bytes <= count * 96);
	layer_cache_free(lc);
}

struct sf_arg {
	struct layer_cache *lc;
	struct lview *got;
	int rc;
};

static void *sf_thread(void *arg)
{
	struct sf_arg *a = arg;
	a->rc = layer_cache_get(a->lc, NULL, NULL, dig[1], 0, &a->got);
	return NULL;
}

static void test_single_flight(void **state)
{
	(void)state;
	struct fs_stats st = {0};
	char cdir[300];
	snprintf(cdir, sizeof cdir, "%s/cache-sf", tmp);
	struct layer_cache *lc = layer_cache_new(cdir, 0, mnt.bc, &st);
	assert_non_null(lc);
	pthread_t th[10];
	struct sf_arg a[10];
	for (int i = 0; i < 10; i++) {
		a[i] = (struct sf_arg){lc, NULL, -1};
		assert_int_equal(pthread_create(&th[i], NULL, sf_thread, &a[i]), 0);
	}
	for (int i = 0; i < 10; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(a[i].rc, 0);
		assert_ptr_equal(a[i].got, a[0].got);
		layer_cache_put(lc, a[i].got);
	}
	assert_int_equal(atomic_load(&st.lv_built), 1);
	layer_cache_free(lc);
}

static size_t count_of(const char *s, const char *w)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, w)); p += strlen(w))
		n++;
	return n;
}

/* A blob that is not a tar: EIO, with a line in .regfs/errors naming it. */
static void test_bad_layer(void **state)
{
	(void)state;
	static const char junk[] = "this is not a tar archive, not gzip, not zstd";
	char d[REGFS_DIGEST_MAX];
	regfs_digest_buf(REGFS_SHA256, junk, sizeof junk - 1, d);
	assert_int_equal(blob_cache_put(mnt.bc, d, junk, sizeof junk - 1), 0);
	int err;
	char p[300];
	snprintf(p, sizeof p, ".layers/%s", d);
	assert_null(walk(p, &err));
	assert_int_equal(err, -EIO);
	char *txt;
	size_t len;
	assert_int_equal(fs_errors_text(&txt, &len), 0);
	assert_non_null(strstr(txt, d));
	size_t lines = count_of(txt, d);
	free(txt);
	/* a bad layer stays bad for a while: not read and indexed again (and
	 * logged again) at each lookup */
	assert_null(walk(p, &err));
	assert_int_equal(err, -EIO);
	assert_int_equal(fs_errors_text(&txt, &len), 0);
	assert_int_equal(count_of(txt, d), lines);
	free(txt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tops_list_nothing),
		cmocka_unit_test(test_layer_view),
		cmocka_unit_test(test_zstd_layer),
		cmocka_unit_test(test_rootfs_through_manifest),
		cmocka_unit_test(test_budget_and_disk),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_repo_notes),
		cmocka_unit_test(test_bad_layer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
