/* test_fs_kinds.c — what the mount shows below a manifest and what stat
 * reports (the kinds of fs/tree/), without a registry: manifests are put into the
 * manifest cache (mcache_store, as a GET by tag does), so listing a manifest,
 * its layers and an index's platforms is served from memory.
 *
 * Covered: the kind tables (kind_is_dir, kind_is_ttl_dir, which ops each
 * kind has), manifest/layers/platforms listings and lookups, the du
 * semantics of node_attr (st_blocks from the stored size, st_ino from the
 * digest and the same in every repository, nlink 2, views 0 blocks),
 * readlink sizes, ttl-directory versions (mtime, attr timeout 0 when
 * unknown or expired), .regfs/ and its files, and the name checks that
 * answer ENOENT before any registry request.
 *
 * Linked with the fs library; the FUSE side (ops.c, the loop) is not
 * called. The mount is set up here with no client and no name cache: a
 * code path that would ask the registry crashes the test instead of
 * passing silently. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "fs_test.h"

static struct mnt mnt;

#define MOUNTED_SINCE 1700000000
#define TTL 5.0

/* Digests: valid hex; the first 16 hex digits give st_ino (top bit set). */
#define H64(x) x x x x /* x: 16 hex digits */
#define CFG "sha256:" H64("0123456789abcdef")
#define L0 "sha256:" H64("a1a1a1a1a1a1a1a1")
#define L1 "sha256:" H64("0000000000000b02")
#define L2 "sha256:" H64("c3c3c3c3c3c3c3c3")
#define L3 "sha256:" H64("d4d4d4d4d4d4d4d4")
#define L4 "sha256:" H64("e5e5e5e5e5e5e5e5")

static const char IMAGE[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	"\"digest\":\"" CFG "\",\"size\":1234},"
	"\"layers\":["
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" L0 "\",\"size\":1},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" L1 "\",\"size\":512},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" L2 "\",\"size\":513},"
	"{\"mediaType\":\"application/octet-stream\",\"digest\":\"" L3 "\",\"size\":0},"
	"{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" L4 "\",\"size\":5000000000}"
	"]}";

static char img_digest[REGFS_DIGEST_MAX], idx_digest[REGFS_DIGEST_MAX];
static char *index_json;

static int setup(void **state)
{
	(void)state;
	memset(&mnt, 0, sizeof mnt);
	mnt.o.ttl = TTL;
	mnt.o.url = (char *)"http://127.0.0.1:5000";
	mnt.o.timeout_s = 30;
	mnt.mounted_since = MOUNTED_SINCE;
	if (fs_test_mount_open(&mnt) != 0)
		return -1;

	regfs_digest_buf(REGFS_SHA256, IMAGE, strlen(IMAGE), img_digest);
	if (mcache_store(mnt.mc, img_digest, IMAGE, strlen(IMAGE), NULL, NULL) != 0)
		return -1;
	/* an index: two platforms, an attestation-like duplicate of the first,
	 * and a child without platform */
	if (asprintf(&index_json,
		     "{\"schemaVersion\":2,"
		     "\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		     "\"manifests\":["
		     "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
		     "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		     "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":1,"
		     "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
		     "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":2,"
		     "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		     "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":3}"
		     "]}",
		     img_digest, strlen(IMAGE), L0, L1, L2) < 0)
		return -1;
	regfs_digest_buf(REGFS_SHA256, index_json, strlen(index_json), idx_digest);
	if (mcache_store(mnt.mc, idx_digest, index_json, strlen(index_json), NULL, NULL) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fs_test_mount_close(&mnt);
	free(index_json);
	return 0;
}

/* ---- helpers ---- */

static struct node *mknode(struct node *parent, const char *name, enum node_kind kind,
			   const char *repo, const char *digest, const char *arg)
{
	struct child c = fs_test_child(name, kind, repo, digest, arg);
	struct node *n = nodes_get(mnt.nodes, parent, &c, 1);
	assert_non_null(n);
	return n;
}

/* <repo>/_manifests/<digest> as the kernel would reach it */
static struct node *manifest_node(const char *repo, const char *digest)
{
	struct node *p = nodes_root(mnt.nodes);
	char comp[256];
	const char *s = repo;
	while (*s) {
		size_t l = strcspn(s, "/");
		snprintf(comp, sizeof comp, "%.*s", (int)l, s);
		p = mknode(p, comp, K_DIR, NULL, NULL, NULL);
		s += l + (s[l] == '/');
	}
	struct node *ms = mknode(p, "_manifests", K_MANIFESTS, repo, NULL, NULL);
	return mknode(ms, digest, K_MANIFEST, repo, digest, NULL);
}

struct listing {
	struct child *v;
	size_t n;
};

static struct listing list(struct node *dir)
{
	struct listing l = {0};
	assert_non_null(kind_ops[dir->kind]->list);
	assert_int_equal(kind_ops[dir->kind]->list(&mnt, dir, &l.v, &l.n), 0);
	return l;
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		child_clear(&l->v[i]);
	free(l->v);
}

/* The node for child i of a listing (what readdirplus hands the kernel). */
static struct node *child_node(struct node *dir, const struct listing *l, size_t i)
{
	struct node *n = nodes_get(mnt.nodes, dir, &l->v[i], 1);
	assert_non_null(n);
	return n;
}

static struct stat attr(struct node *n, double *timeout)
{
	struct stat st;
	double t;
	assert_int_equal(node_attr(&mnt, n, &st, &t), 0);
	if (timeout)
		*timeout = t;
	return st;
}

/* st_ino of a blob, computed here: the first 16 hex digits, top bit set */
static uint64_t ino_of(const char *digest)
{
	const char *hex = strchr(digest, ':') + 1;
	char first[17];
	memcpy(first, hex, 16);
	first[16] = 0;
	return strtoull(first, NULL, 16) | (1ULL << 63);
}

/* ---- tests ---- */

static void test_kind_tables(void **state)
{
	(void)state;
	/* independently stated: which kinds are directories, which change */
	static const struct {
		enum node_kind k;
		bool dir, ttl, readlink, content;
	} want[] = {
		{K_ROOT, true, true, false, false},      {K_DIR, true, true, false, false},
		{K_TAGS, true, true, false, false},      {K_TAG, false, false, true, false},
		{K_MANIFESTS, true, true, false, false}, {K_MANIFEST, true, false, false, false},
		{K_MJSON, false, false, false, false},   {K_BLOB, false, false, false, false},
		{K_LAYERS, true, false, false, false},   {K_PLATFORMS, true, false, false, false},
		{K_PLATLINK, false, false, true, false}, {K_META, true, false, false, false},
		{K_METAFILE, false, false, false, true},
		{K_VTOP, true, false, false, false},     {K_VDIR, true, false, false, false},
		{K_VFILE, false, false, false, false},   {K_VLINK, false, false, true, false},
		{K_VSPECIAL, false, false, false, false}, {K_VIEWLINK, false, false, true, false},
	};
	assert_int_equal(sizeof want / sizeof *want, K__COUNT);
	for (size_t i = 0; i < K__COUNT; i++) {
		enum node_kind k = want[i].k;
		assert_int_equal(k, (enum node_kind)i);
		assert_int_equal(kind_is_dir(k), want[i].dir);
		assert_int_equal(kind_is_ttl_dir(k), want[i].ttl);
		const struct kind_ops *o = kind_ops[k];
		assert_non_null(o);
		/* a directory can be listed and looked up in; nothing else can */
		assert_int_equal(o->list != NULL, want[i].dir);
		assert_int_equal(o->lookup != NULL, want[i].dir);
		assert_int_equal(o->readlink != NULL, want[i].readlink);
		assert_int_equal(o->content != NULL, want[i].content);
	}
	assert_false(kind_is_dir(K__COUNT));
	assert_false(kind_is_ttl_dir(K__COUNT));
	/* every kind reports attributes; regular files open, symlinks have a
	 * target; only stored blobs take st_ino from the digest */
	for (size_t i = 0; i < K__COUNT; i++) {
		const struct kind_ops *o = kind_ops[i];
		assert_non_null(o->name);
		assert_non_null(o->attr);
		assert_int_equal(o->open != NULL, S_ISREG(o->type));
		assert_int_equal(o->readlink != NULL, S_ISLNK(o->type));
		assert_int_equal((o->flags & KIND_DIGEST_INO) != 0, i == K_MJSON || i == K_BLOB);
		/* writes: rm/ln -s/mv in _tags, rmdir in _manifests, and the rm -r
		 * refusal inside a manifest; nothing else */
		bool tags = i == K_TAGS, inside = i == K_MANIFEST || i == K_LAYERS || i == K_PLATFORMS;
		assert_int_equal(o->unlink != NULL, tags || inside);
		assert_int_equal(o->symlink != NULL, tags);
		assert_int_equal(o->rename != NULL, tags);
		assert_int_equal(o->rmdir != NULL, i == K_MANIFESTS || inside);
	}
}

/* The rootfs link of manifest m and its lookups. */
static void manifest_rootfs_and_lookups(struct node *m, struct node *rootfs)
{
	/* rootfs: a relative link up to the mount's root (team/app is two
	 * components deep), then into .rootfs/ */
	char target[512], want_target[512];
	snprintf(want_target, sizeof want_target, "../../../../.rootfs/%s", img_digest);
	assert_int_equal(kind_ops[K_VIEWLINK]->readlink(&mnt, rootfs, target, sizeof target), 0);
	assert_string_equal(target, want_target);
	assert_true(S_ISLNK(attr(rootfs, NULL).st_mode));
	assert_int_equal(attr(rootfs, NULL).st_size, strlen(want_target));
	assert_int_equal(attr(rootfs, NULL).st_blocks, 0);

	/* lookups agree with the listing; anything else is ENOENT */
	struct child c;
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "layers", &c), 0);
	assert_int_equal(c.kind, K_LAYERS);
	assert_string_equal(c.name, "layers");
	child_clear(&c);
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "config.json", &c), 0);
	assert_int_equal(c.size, 1234);
	child_clear(&c);
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "index.json", &c), -ENOENT);
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "platforms", &c), -ENOENT);
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "Config.json", &c), -ENOENT);
}

/* What stat says of manifest m and its children (du is storage accounting). */
static void manifest_attrs(struct node *m, struct node *cfg, struct node *mj, struct node *layers)
{
	char want_path[300];
	/* du: stored blobs count their bytes, under an inode of their digest */
	double t;
	struct stat st = attr(mj, &t);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(st.st_size, strlen(IMAGE));
	assert_int_equal(st.st_blocks, (strlen(IMAGE) + 511) / 512);
	assert_int_equal(st.st_ino, ino_of(img_digest));
	assert_int_equal(st.st_nlink, 2);
	assert_true(t == IMMUTABLE_TIMEOUT);
	st = attr(cfg, NULL);
	assert_int_equal(st.st_size, 1234);
	assert_int_equal(st.st_blocks, 3);
	assert_int_equal(st.st_ino, 0x8123456789abcdefULL);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mtim.tv_sec, MOUNTED_SINCE);
	assert_int_equal(st.st_uid, getuid());

	/* the manifest dir and layers/ are views: no blocks, path inode,
	 * cached for long (a digest's content never changes) */
	st = attr(m, &t);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0555);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, path_hash_ino(fs_test_path(mnt.nodes, m)));
	assert_int_equal(st.st_mtim.tv_sec, MOUNTED_SINCE);
	assert_true(t == IMMUTABLE_TIMEOUT);
	st = attr(layers, &t);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(want_path, sizeof want_path, "team/app/_manifests/%s/layers", img_digest);
	assert_string_equal(fs_test_path(mnt.nodes, layers), want_path);
	assert_int_equal(st.st_ino, path_hash_ino(want_path));
	assert_int_equal(st.st_blocks, 0);
	assert_true(t == IMMUTABLE_TIMEOUT);
}

static void test_manifest_dir(void **state)
{
	(void)state;
	struct node *m = manifest_node("team/app", img_digest);
	char want_path[300];
	snprintf(want_path, sizeof want_path, "team/app/_manifests/%s", img_digest);
	assert_string_equal(fs_test_path(mnt.nodes, m), want_path);

	/* image manifest: config.json, layers/, manifest.json, rootfs (sorted) */
	struct listing l = list(m);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0].name, "config.json");
	assert_int_equal(l.v[0].kind, K_BLOB);
	assert_string_equal(l.v[0].digest, CFG);
	assert_int_equal(l.v[0].size, 1234);
	assert_string_equal(l.v[0].mediatype, "application/vnd.oci.image.config.v1+json");
	assert_string_equal(l.v[0].repo, "team/app");
	assert_string_equal(l.v[1].name, "layers");
	assert_int_equal(l.v[1].kind, K_LAYERS);
	assert_string_equal(l.v[1].digest, img_digest);
	assert_string_equal(l.v[2].name, "manifest.json");
	assert_int_equal(l.v[2].kind, K_MJSON);
	assert_string_equal(l.v[2].digest, img_digest);
	assert_int_equal(l.v[2].size, strlen(IMAGE));
	assert_string_equal(l.v[3].name, "rootfs");
	assert_int_equal(l.v[3].kind, K_VIEWLINK);
	assert_string_equal(l.v[3].digest, img_digest);
	for (size_t i = 1; i < l.n; i++)
		assert_true(strcmp(l.v[i - 1].name, l.v[i].name) < 0);

	struct node *cfg = child_node(m, &l, 0);
	struct node *layers = child_node(m, &l, 1);
	struct node *mj = child_node(m, &l, 2);
	struct node *rootfs = child_node(m, &l, 3);
	listing_free(&l);

	manifest_rootfs_and_lookups(m, rootfs);
	manifest_attrs(m, cfg, mj, layers);
}

static void test_layers(void **state)
{
	(void)state;
	struct node *m = manifest_node("team/app", img_digest);
	struct node *layers = mknode(m, "layers", K_LAYERS, "team/app", img_digest, NULL);
	struct listing l = list(layers);
	static const struct {
		const char *name, *digest;
		uint64_t size, blocks;
	} want[] = {
		{"0.tar.gz", L0, 1, 1},
		{"1.tar.zst", L1, 512, 1},
		{"2.tar", L2, 513, 2},
		{"3.blob", L3, 0, 0},
		{"4.tar.gz", L4, 5000000000ULL, 9765625},
	};
	/* each layer twice: N (a link to its contents in .layers/), N.<ext>
	 * (the blob) */
	assert_int_equal(l.n, 2 * (sizeof want / sizeof *want));
	struct node *ln[sizeof want / sizeof *want] = {0};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		char name[16], target[512], want_target[512];
		snprintf(name, sizeof name, "%zu", i);
		assert_string_equal(l.v[2 * i].name, name);
		assert_int_equal(l.v[2 * i].kind, K_VIEWLINK);
		struct node *lk = child_node(layers, &l, 2 * i);
		assert_int_equal(kind_ops[K_VIEWLINK]->readlink(&mnt, lk, target, sizeof target), 0);
		snprintf(want_target, sizeof want_target, "../../../../../.layers/%s",
			 want[i].digest);
		assert_string_equal(target, want_target);
	}
	for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
		size_t i = 2 * k + 1;
		assert_string_equal(l.v[i].name, want[k].name);
		assert_int_equal(l.v[i].kind, K_BLOB);
		assert_string_equal(l.v[i].digest, want[k].digest);
		assert_int_equal(l.v[i].size, want[k].size);
		ln[k] = child_node(layers, &l, i);
		struct stat st = attr(ln[k], NULL);
		assert_int_equal(st.st_size, (off_t)want[k].size);
		assert_int_equal(st.st_blocks, (blkcnt_t)want[k].blocks);
		assert_int_equal(st.st_ino, ino_of(want[k].digest));
		assert_int_equal(st.st_nlink, 2);
	}
	assert_int_equal(attr(ln[1], NULL).st_ino, 0x8000000000000b02ULL);
	listing_free(&l);
	struct child c;
	assert_int_equal(kind_ops[K_LAYERS]->lookup(&mnt, layers, "2.tar", &c), 0);
	assert_string_equal(c.digest, L2);
	child_clear(&c);
	assert_int_equal(kind_ops[K_LAYERS]->lookup(&mnt, layers, "2.tar.gz", &c), -ENOENT);
	assert_int_equal(kind_ops[K_LAYERS]->lookup(&mnt, layers, "5.blob", &c), -ENOENT);

	/* the same manifest in another repository: other nodes, other paths,
	 * the same blob inodes (du counts each blob once) */
	struct node *m2 = manifest_node("other/deep/repo", img_digest);
	assert_ptr_not_equal(m2, m);
	struct node *layers2 = mknode(m2, "layers", K_LAYERS, "other/deep/repo", img_digest, NULL);
	struct listing l2 = list(layers2);
	assert_int_equal(l2.n, 10);
	struct node *x = child_node(layers2, &l2, 1);
	assert_ptr_not_equal(x, ln[0]);
	assert_string_equal(x->repo, "other/deep/repo");
	assert_int_equal(attr(x, NULL).st_ino, attr(ln[0], NULL).st_ino);
	assert_int_not_equal(attr(m2, NULL).st_ino, attr(m, NULL).st_ino);
	listing_free(&l2);
}

static void test_index_platforms(void **state)
{
	(void)state;
	struct node *m = manifest_node("team/multi", idx_digest);
	struct listing l = list(m);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "index.json");
	assert_int_equal(l.v[0].kind, K_MJSON);
	assert_int_equal(l.v[0].size, strlen(index_json));
	assert_string_equal(l.v[0].digest, idx_digest);
	assert_string_equal(l.v[1].name, "platforms");
	assert_int_equal(l.v[1].kind, K_PLATFORMS);
	struct node *ij = child_node(m, &l, 0);
	struct node *pl = child_node(m, &l, 1);
	listing_free(&l);
	struct stat st = attr(ij, NULL);
	assert_int_equal(st.st_ino, ino_of(idx_digest));
	assert_int_equal(st.st_blocks, (strlen(index_json) + 511) / 512);

	/* unique, stable names in manifest order */
	struct listing p = list(pl);
	static const char *const names[] = {"linux-amd64", "linux-arm64-v8", "linux-amd64.2",
					    "unknown"};
	const char *digests[] = {img_digest, L0, L1, L2};
	assert_int_equal(p.n, 4);
	for (size_t i = 0; i < p.n; i++) {
		assert_string_equal(p.v[i].name, names[i]);
		assert_int_equal(p.v[i].kind, K_PLATLINK);
		assert_string_equal(p.v[i].digest, digests[i]);
	}
	/* a platform link points at the sibling manifest dir, and its size is
	 * the target's length (readlink -f, ls -l) */
	struct node *amd = child_node(pl, &p, 0);
	listing_free(&p);
	char buf[256];
	assert_int_equal(kind_ops[K_PLATLINK]->readlink(&mnt, amd, buf, sizeof buf), 0);
	char want[256];
	snprintf(want, sizeof want, "../../%s", img_digest);
	assert_string_equal(buf, want);
	double t;
	st = attr(amd, &t);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, strlen(want));
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_blocks, 0);
	assert_true(t == IMMUTABLE_TIMEOUT);
	struct child c;
	assert_int_equal(kind_ops[K_PLATFORMS]->lookup(&mnt, pl, "linux-amd64.2", &c), 0);
	assert_string_equal(c.digest, L1);
	child_clear(&c);
	assert_int_equal(kind_ops[K_PLATFORMS]->lookup(&mnt, pl, "linux-amd64.3", &c), -ENOENT);
	/* an index has no layers/config */
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "layers", &c), -ENOENT);
	assert_int_equal(kind_ops[K_MANIFEST]->lookup(&mnt, m, "manifest.json", &c), -ENOENT);
}

/* Directory entries must be valid names: the kernel fails a whole readdir
 * (EIO, fs/fuse/readdir.c parse_dirfile) on an entry containing '/'. An
 * index's platform fields are free text, and platforms_list (kinds.c) uses
 * them: one child with os "linux/x" must not make platforms/ unreadable
 * (kinds.c maps '/' to '_'). */
static void test_platform_name_with_slash(void **state)
{
	(void)state;
	char *idx;
	assert_true(asprintf(&idx,
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		"\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"digest\":\"%s\",\"size\":1,\"platform\":{\"os\":\"linux/x\",\"architecture\":\"a/b\"}}]}",
		L0) > 0);
	char d[REGFS_DIGEST_MAX];
	regfs_digest_buf(REGFS_SHA256, idx, strlen(idx), d);
	assert_int_equal(mcache_store(mnt.mc, d, idx, strlen(idx), NULL, NULL), 0);
	free(idx);
	struct node *m = manifest_node("team/slash", d);
	struct node *pl = mknode(m, "platforms", K_PLATFORMS, "team/slash", d, NULL);
	struct listing p = list(pl);
	assert_int_equal(p.n, 1);
	assert_null(strchr(p.v[0].name, '/'));
	listing_free(&p);
}

/* The repository "app" below the root, with its _tags and _manifests. */
static void repo_nodes(struct node **app, struct node **tags, struct node **mfs)
{
	struct node *r = nodes_root(mnt.nodes);
	*app = mknode(r, "app", K_DIR, NULL, NULL, "app");
	*tags = mknode(*app, "_tags", K_TAGS, "app", NULL, NULL);
	*mfs = mknode(*app, "_manifests", K_MANIFESTS, "app", NULL, NULL);
}

static void test_ttl_dirs(void **state)
{
	(void)state;
	struct node *r = nodes_root(mnt.nodes), *app, *tags, *mfs;
	repo_nodes(&app, &tags, &mfs);
	double t;

	/* the root: inode 1 whatever its path hash */
	struct stat st = attr(r, &t);
	assert_int_equal(st.st_ino, FUSE_ROOT_ID);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0555);

	/* version unknown: the kernel must ask getattr again (timeout 0) */
	st = attr(tags, &t);
	assert_true(t == 0);
	assert_int_equal(st.st_mtim.tv_sec, MOUNTED_SINCE);
	assert_int_equal(st.st_mode & 07777, 0755); /* rm/ln/mv work here */
	assert_int_equal(attr(mfs, NULL).st_mode & 07777, 0755);
	assert_int_equal(attr(app, NULL).st_mode & 07777, 0555);
	assert_int_equal(st.st_ino, path_hash_ino("app/_tags"));
	mnt.o.ro = true;
	assert_int_equal(attr(tags, NULL).st_mode & 07777, 0555);
	assert_int_equal(attr(mfs, NULL).st_mode & 07777, 0555);
	mnt.o.ro = false;

	/* a known version: its mtime, valid for what is left of its ttl */
	DV(tags).known = true;
	DV(tags).mtime.tv_sec = 1800000000;
	DV(tags).mtime.tv_nsec = 42;
	DV(tags).valid = now_mono() + 3.0;
	st = attr(tags, &t);
	assert_int_equal(st.st_mtim.tv_sec, 1800000000);
	assert_int_equal(st.st_mtim.tv_nsec, 42);
	assert_int_equal(st.st_ctim.tv_sec, 1800000000);
	assert_true(t > 0 && t <= 3.0);
	/* written to (rm, ln, mv): expired at once, same mtime until relisted */
	dir_version_expire(tags);
	st = attr(tags, &t);
	assert_true(t == 0);
	assert_int_equal(st.st_mtim.tv_sec, 1800000000);

	/* directories fixed by a digest have no listing version to refresh:
	 * dir_version_refresh returns at once (no registry, no listing) */
	struct node *m = manifest_node("app", img_digest);
	assert_int_equal(dir_version_refresh(&mnt, m), 0);
	assert_null(m->priv); /* no listing version */
}

/* .regfs/errors: one line per failure noted, with the request being
 * served; the last FS_ERRORS_MAX only. */
static void check_errors_file(struct node *errors)
{
	char *buf;
	size_t len;
	fs_op_begin("read", "team/app", "x.tar");
	fs_error_note(NULL, NULL, "GET …: answered HTTP 500\nsecond line");
	fs_op_begin(NULL, NULL, NULL);
	fs_error_note("rm", "lib/_tags/v1", "refused");
	assert_int_equal(kind_ops[K_METAFILE]->content(&mnt, errors, &buf, &len), 0);
	assert_int_equal(len, strlen(buf));
	char *second = strchr(buf, '\n');
	assert_non_null(second);
	assert_non_null(strstr(buf, "Z read /team/app/x.tar: GET …: answered HTTP 500 second line\n"));
	assert_non_null(strstr(second + 1, "Z rm /lib/_tags/v1: refused\n"));
	free(buf);
	for (int i = 0; i < FS_ERRORS_MAX + 5; i++)
		fs_error_note("stat", "a", "x");
	assert_int_equal(kind_ops[K_METAFILE]->content(&mnt, errors, &buf, &len), 0);
	size_t lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, FS_ERRORS_MAX);
	assert_null(strstr(buf, "refused")); /* the oldest went first */
	free(buf);
}

/* .regfs/stats: one JSON object with the cache counters. */
static void check_stats_file(struct node *stats)
{
	char *buf;
	size_t len;
	atomic_store(&mnt.st.mc_hits, 7);
	assert_int_equal(kind_ops[K_METAFILE]->content(&mnt, stats, &buf, &len), 0);
	assert_int_equal(len, strlen(buf));
	assert_int_equal(buf[len - 1], '\n');
	json_error_t je;
	json_t *j = json_loads(buf, 0, &je);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		json_object_get(j, "cache"), "manifests"), "hits")), 7);
	assert_int_equal(json_integer_value(json_object_get(j, "mounted_since")), MOUNTED_SINCE);
	assert_non_null(json_object_get(json_object_get(j, "requests"), "total"));
	json_decref(j);
	free(buf);
}

static void test_meta(void **state)
{
	(void)state;
	struct node *r = nodes_root(mnt.nodes);
	/* .regfs is answered without the catalog */
	struct child c;
	assert_int_equal(kind_ops[K_ROOT]->lookup(&mnt, r, ".regfs", &c), 0);
	assert_int_equal(c.kind, K_META);
	assert_string_equal(c.name, ".regfs");
	struct node *meta = nodes_get(mnt.nodes, r, &c, 1);
	child_clear(&c);
	assert_non_null(meta);
	double t;
	struct stat st = attr(meta, &t);
	assert_true(S_ISDIR(st.st_mode));
	assert_true(t == TTL);

	struct listing l = list(meta);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0].name, "errors");
	assert_string_equal(l.v[1].name, "stats");
	assert_string_equal(l.v[1].arg, "stats");
	assert_string_equal(l.v[2].name, "status");
	assert_int_equal(l.v[2].kind, K_METAFILE);
	assert_string_equal(l.v[3].name, "usage");
	assert_string_equal(l.v[4].name, "usage.txt");
	assert_int_equal(l.v[4].kind, K_METAFILE);
	struct node *errors = child_node(meta, &l, 0);
	struct node *stats = child_node(meta, &l, 1);
	struct node *status = child_node(meta, &l, 2);
	listing_free(&l);
	assert_int_equal(kind_ops[K_META]->lookup(&mnt, meta, "nope", &c), -ENOENT);

	char *buf;
	size_t len;
	assert_int_equal(kind_ops[K_METAFILE]->content(&mnt, status, &buf, &len), 0);
	assert_int_equal(len, strlen(buf));
	assert_non_null(strstr(buf, "registry: http://127.0.0.1:5000\n"));
	assert_non_null(strstr(buf, "mounted since: 2023-11-14T22:13:20Z\n"));
	assert_non_null(strstr(buf, "ttl: 5 s\n"));
	assert_non_null(strstr(buf, "cache dir: (disabled)\n"));
	/* stat's size is the content's, read fresh every time (timeout 0) */
	st = attr(status, &t);
	assert_int_equal(st.st_size, len);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_blocks, 0);
	assert_true(t == 0);
	free(buf);

	check_errors_file(errors);
	check_stats_file(stats);
}

/* Names that cannot exist are answered without asking the registry (with
 * no client and no name cache here, asking would crash the test). */
static void test_invalid_names_enoent(void **state)
{
	(void)state;
	struct node *app, *tags, *mfs;
	repo_nodes(&app, &tags, &mfs);
	struct child c;
	static const char *const bad_tags[] = {".hidden", "-x", "a:b", "a/b", ""};
	for (size_t i = 0; i < sizeof bad_tags / sizeof *bad_tags; i++)
		assert_int_equal(kind_ops[K_TAGS]->lookup(&mnt, tags, bad_tags[i], &c), -ENOENT);
	static const char *const bad_digests[] = {"latest", "sha256:abc", "sha256:" H64("ZZZZZZZZZZZZZZZZ"),
						   "md5:" H64("0000000000000000")};
	for (size_t i = 0; i < sizeof bad_digests / sizeof *bad_digests; i++)
		assert_int_equal(kind_ops[K_MANIFESTS]->lookup(&mnt, mfs, bad_digests[i], &c),
				 -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_tables),
		cmocka_unit_test(test_manifest_dir),
		cmocka_unit_test(test_layers),
		cmocka_unit_test(test_index_platforms),
		cmocka_unit_test(test_platform_name_with_slash),
		cmocka_unit_test(test_ttl_dirs),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_invalid_names_enoent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
