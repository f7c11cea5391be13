/* Unit tests for the filesystem storage driver (lib/storage/fs.c): every
 * operation through the storage.h interface, checked against the files the
 * driver leaves on disk (read back with plain POSIX calls). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <regfs/cmp.h>
#include <regfs/storage.h>

struct ctx {
	char root[256];
	struct regfs_storage *s;
};

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);
	snprintf(c->root, sizeof c->root, "/tmp/regfs-test-fs-XXXXXX");
	if (!mkdtemp(c->root))
		return -1;
	/* a root below a missing directory: the driver must create it */
	strcat(c->root, "/sub/root");
	struct regfs_err err = {0};
	if (regfs_storage_fs_new(c->root, &c->s, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	regfs_storage_free(c->s);
	*strstr(c->root, "/sub/root") = '\0';
	nftw(c->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

/* Reads a file under the root with plain stdio. */
static char *slurp(struct ctx *c, const char *path)
{
	char full[512];
	snprintf(full, sizeof full, "%s%s", c->root, path);
	FILE *f = fopen(full, "rb");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The file at path (under the storage root) holds exactly want. */
static void assert_disk(struct ctx *c, const char *path, const char *want)
{
	char *disk = slurp(c, path);
	assert_string_equal(disk, want);
	free(disk);
}

enum which_files { EVERY_FILE, VISIBLE_AND_TEMP };

/* How many entries the directory at path (under the root) holds: every one
 * but "." and "..", or the visible ones and the put's ".tmp-" files. */
static int files_in(struct ctx *c, const char *path, enum which_files which)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s%s", c->root, path);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *f = de->d_name;
		if (which == EVERY_FILE)
			n += strcmp(f, ".") && strcmp(f, "..");
		else
			n += f[0] != '.' || strncmp(f, ".tmp-", 5) == 0;
	}
	closedir(d);
	return n;
}

/* /blobs/b1 exists with "old": w's publish onto it is refused and the old data stays. */
static void check_publish_refused(struct ctx *c, struct regfs_writer *w)
{
	struct regfs_err err = {0};
	assert_int_equal(regfs_storage_put(c->s, "/blobs/b1", "old", 3, &err), 0);
	assert_int_equal(regfs_writer_publish(w, "/blobs/b1", &err), -EEXIST);
	assert_disk(c, "/blobs/b1", "old");
}

static void test_put_get(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	const char *link = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	assert_int_equal(regfs_storage_put(c->s, "/a/b/c/link", link, strlen(link), &err), 0);
	char *disk = slurp(c, "/a/b/c/link");
	assert_non_null(disk);
	assert_string_equal(disk, link);
	free(disk);

	char *data = NULL;
	size_t len = 0;
	assert_int_equal(regfs_storage_get(c->s, "/a/b/c/link", &data, &len, &err), 0);
	assert_int_equal(len, strlen(link));
	assert_memory_equal(data, link, len);
	assert_int_equal(data[len], '\0');
	free(data);

	/* overwrite: atomic replace, no temp file left behind */
	assert_int_equal(regfs_storage_put(c->s, "/a/b/c/link", "new", 3, &err), 0);
	assert_int_equal(regfs_storage_get(c->s, "/a/b/c/link", &data, &len, &err), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "new", 3);
	free(data);
	assert_int_equal(files_in(c, "/a/b/c", VISIBLE_AND_TEMP), 1);

	/* empty object */
	assert_int_equal(regfs_storage_put(c->s, "/empty", "", 0, &err), 0);
	assert_int_equal(regfs_storage_get(c->s, "/empty", &data, &len, &err), 0);
	assert_int_equal(len, 0);
	free(data);

	/* missing */
	regfs_err_clear(&err);
	assert_int_equal(regfs_storage_get(c->s, "/nope/x", &data, &len, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nope/x"));
	/* parent is a file: still "missing" */
	assert_int_equal(regfs_storage_get(c->s, "/empty/x", &data, &len, NULL), -ENOENT);
	/* a directory is not an object */
	assert_int_equal(regfs_storage_get(c->s, "/a/b", &data, &len, NULL), -EISDIR);
}

static void test_get_too_big(void **state)
{
	struct ctx *c = *state;
	char full[512];
	snprintf(full, sizeof full, "%s/big", c->root);
	int fd = open(full, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 65 * 1024 * 1024), 0); /* sparse */
	close(fd);
	char *data = NULL;
	size_t len;
	struct regfs_err err = {0};
	assert_int_equal(regfs_storage_get(c->s, "/big", &data, &len, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "/big"));
	assert_null(data);
}

static void test_bad_paths(void **state)
{
	struct ctx *c = *state;
	const char *bad[] = { "", "a/b", "/a/../../etc/passwd", "/..", "/.", "/a//b", "/a/",
			      "/a/./b", "//x", "/", NULL };
	for (int i = 0; bad[i]; i++) {
		struct regfs_err err = {0};
		char *d = NULL;
		size_t l;
		assert_int_equal(regfs_storage_put(c->s, bad[i], "x", 1, &err), -EINVAL);
		assert_true(err.msg[0] != '\0');
		assert_int_equal(regfs_storage_get(c->s, bad[i], &d, &l, NULL), -EINVAL);
		assert_int_equal(regfs_storage_del(c->s, bad[i], NULL), -EINVAL);
		assert_int_equal(regfs_storage_move(c->s, "/x", bad[i], NULL), -EINVAL);
		struct regfs_writer *w = NULL;
		assert_int_equal(regfs_storage_writer(c->s, bad[i], false, &w, NULL), -EINVAL);
		struct regfs_reader *r = NULL;
		assert_int_equal(regfs_storage_reader(c->s, bad[i], 0, &r, NULL), -EINVAL);
	}
	assert_int_equal(regfs_storage_stat(c->s, "/../x", &(struct regfs_stat_info){0}, NULL), -EINVAL);
	/* nothing was created outside the root */
	char outside[512];
	snprintf(outside, sizeof outside, "%s/../x", c->root);
	assert_int_not_equal(access(outside, F_OK), 0);
}

static void test_writer_append(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	struct regfs_writer *w = NULL;
	const char *p = "/repo/_uploads/u1/data";
	assert_int_equal(regfs_storage_writer(c->s, p, false, &w, &err), 0);
	assert_int_equal(regfs_writer_size(w), 0);
	assert_int_equal(regfs_writer_write(w, "hello ", 6, &err), 6);
	assert_int_equal(regfs_writer_size(w), 6);
	assert_int_equal(regfs_writer_close(w, &err), 0); /* resumable */

	assert_int_equal(regfs_storage_writer(c->s, p, true, &w, &err), 0);
	assert_int_equal(regfs_writer_size(w), 6);
	assert_int_equal(regfs_writer_write(w, "world", 5, &err), 5);
	assert_int_equal(regfs_writer_size(w), 11);
	assert_int_equal(regfs_writer_commit(w, &err), 0);
	assert_int_equal(regfs_writer_close(w, &err), 0);
	char *disk = slurp(c, p);
	assert_string_equal(disk, "hello world");
	free(disk);

	/* append=false truncates */
	assert_int_equal(regfs_storage_writer(c->s, p, false, &w, &err), 0);
	assert_int_equal(regfs_writer_size(w), 0);
	assert_int_equal(regfs_writer_write(w, "x", 1, &err), 1);
	assert_int_equal(regfs_writer_commit(w, &err), 0);
	assert_int_equal(regfs_writer_write(w, "y", 1, NULL), -EINVAL); /* after commit */
	assert_int_equal(regfs_writer_close(w, &err), 0);
	disk = slurp(c, p);
	assert_string_equal(disk, "x");
	free(disk);

	/* cancel drops the data */
	assert_int_equal(regfs_storage_writer(c->s, p, true, &w, &err), 0);
	assert_int_equal(regfs_writer_write(w, "zz", 2, &err), 2);
	assert_int_equal(regfs_writer_cancel(w, &err), 0);
	assert_int_equal(regfs_writer_close(w, &err), 0);
	struct regfs_stat_info si;
	assert_int_equal(regfs_storage_stat(c->s, p, &si, NULL), -ENOENT);
}

/* One writer per path; publish never replaces; a gone path is not re-created. */
static void test_writer_lock_publish(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	struct regfs_writer *w = NULL, *w2 = NULL;
	const char *p = "/repo/_uploads/u2/data";
	assert_int_equal(regfs_storage_writer(c->s, p, false, &w, &err), 0);
	assert_int_equal(regfs_writer_write(w, "abc", 3, &err), 3);
	assert_int_equal(regfs_storage_writer(c->s, p, true, &w2, &err), -EBUSY);
	assert_int_equal(regfs_writer_commit(w, &err), 0);
	/* an existing destination is left alone and the data stays */
	check_publish_refused(c, w);
	assert_int_equal(regfs_writer_publish(w, "/blobs/new/b2", &err), 0);
	assert_int_equal(regfs_writer_close(w, &err), 0);
	assert_disk(c, "/blobs/new/b2", "abc");
	/* the published upload is gone and append never brings it back */
	assert_int_equal(regfs_storage_writer(c->s, p, true, &w2, &err), -ENOENT);
	struct regfs_stat_info si;
	assert_int_equal(regfs_storage_stat(c->s, p, &si, NULL), -ENOENT);
	/* a writer whose file is deleted under it says so at close */
	assert_int_equal(regfs_storage_writer(c->s, p, false, &w, &err), 0);
	assert_int_equal(regfs_storage_del(c->s, "/repo/_uploads/u2", &err), 0);
	assert_int_equal(regfs_writer_write(w, "x", 1, &err), 1);
	assert_int_equal(regfs_writer_close(w, &err), -ENOENT);
}

/* publish's link() fallback runs where the file system has no
 * RENAME_NOREPLACE; this definition, found before libc's, simulates one. */
static bool no_renameat2;
static int renameat2_refused;
int renameat2(int ofd, const char *o, int nfd, const char *n, unsigned int flags)
{
	if (no_renameat2) {
		renameat2_refused++;
		errno = EINVAL;
		return -1;
	}
	return (int)syscall(SYS_renameat2, ofd, o, nfd, n, flags);
}

static void test_publish_link_fallback(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	struct regfs_writer *w = NULL;
	const char *p = "/repo/_uploads/u3/data";
	no_renameat2 = true;
	assert_int_equal(regfs_storage_writer(c->s, p, false, &w, &err), 0);
	assert_int_equal(regfs_writer_write(w, "abc", 3, &err), 3);
	assert_int_equal(regfs_writer_commit(w, &err), 0);
	check_publish_refused(c, w);
	assert_disk(c, p, "abc"); /* the refused publish put the upload back */
	assert_int_equal(regfs_writer_publish(w, "/blobs/new/b2", &err), 0);
	assert_int_equal(regfs_writer_close(w, &err), 0);
	no_renameat2 = false;
	/* every publish took the fallback (the second twice: its directory was missing) */
	assert_int_equal(renameat2_refused, 3);
	assert_disk(c, "/blobs/new/b2", "abc");
	struct regfs_stat_info si;
	assert_int_equal(regfs_storage_stat(c->s, p, &si, NULL), -ENOENT);
	/* nothing left under a private name either */
	assert_int_equal(files_in(c, "/repo/_uploads/u3", EVERY_FILE), 0);
}

static void test_reader(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	char blob[10000];
	for (size_t i = 0; i < sizeof blob; i++)
		blob[i] = (char)(i * 7 + 3);
	assert_int_equal(regfs_storage_put(c->s, "/blob", blob, sizeof blob, &err), 0);

	struct regfs_reader *r = NULL;
	assert_int_equal(regfs_storage_reader(c->s, "/blob", 1234, &r, &err), 0);
	char got[sizeof blob];
	size_t n = 0;
	ssize_t k;
	while ((k = regfs_reader_read(r, got + n, 1000, &err)) > 0)
		n += (size_t)k;
	assert_int_equal(k, 0);
	assert_int_equal(n, sizeof blob - 1234);
	assert_memory_equal(got, blob + 1234, n);
	regfs_reader_close(r);

	/* offset at / past the end reads nothing */
	assert_int_equal(regfs_storage_reader(c->s, "/blob", sizeof blob + 5, &r, &err), 0);
	assert_int_equal(regfs_reader_read(r, got, 10, &err), 0);
	regfs_reader_close(r);

	assert_int_equal(regfs_storage_reader(c->s, "/missing", 0, &r, NULL), -ENOENT);

	int fd = -1;
	uint64_t size = 0;
	assert_int_equal(regfs_storage_open_fd(c->s, "/blob", &fd, &size, &err), 0);
	assert_int_equal(size, sizeof blob);
	assert_int_equal(pread(fd, got, 5, 100), 5);
	assert_memory_equal(got, blob + 100, 5);
	close(fd);
	assert_int_equal(regfs_storage_open_fd(c->s, "/nope", &fd, &size, NULL), -ENOENT);
}

static void test_stat(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	time_t before = time(NULL);
	assert_int_equal(regfs_storage_put(c->s, "/d/file", "12345", 5, &err), 0);
	struct regfs_stat_info si;
	assert_int_equal(regfs_storage_stat(c->s, "/d/file", &si, &err), 0);
	assert_false(si.is_dir);
	assert_int_equal(si.size, 5);
	char full[512];
	snprintf(full, sizeof full, "%s/d/file", c->root);
	struct stat st;
	assert_int_equal(stat(full, &st), 0);
	assert_int_equal(si.mtime, st.st_mtim.tv_sec);
	assert_true(si.mtime >= before - 2);

	assert_int_equal(regfs_storage_stat(c->s, "/d", &si, &err), 0);
	assert_true(si.is_dir);
	assert_int_equal(si.size, 0);
	assert_int_equal(regfs_storage_stat(c->s, "/", &si, &err), 0);
	assert_true(si.is_dir);
	assert_int_equal(regfs_storage_stat(c->s, "/d/none", &si, NULL), -ENOENT);
}

struct names {
	char *v[16];
	int n;
};

static int collect(const char *path, void *ud)
{
	struct names *ns = ud;
	if (ns->n < 16)
		ns->v[ns->n++] = strdup(path);
	return 0;
}

static int stop_first(const char *path, void *ud)
{
	(void)path;
	(*(int *)ud)++;
	return 1;
}

static void test_list(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	assert_int_equal(regfs_storage_put(c->s, "/l/a", "1", 1, &err), 0);
	assert_int_equal(regfs_storage_put(c->s, "/l/b/x", "2", 1, &err), 0);
	assert_int_equal(regfs_storage_put(c->s, "/l/c", "3", 1, &err), 0);
	/* a leftover temp file of an interrupted put is hidden */
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s/l/.tmp-a-1-1", c->root);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);

	struct names ns = {0};
	assert_int_equal(regfs_storage_list(c->s, "/l", collect, &ns, &err), 0);
	assert_int_equal(ns.n, 3);
	qsort(ns.v, (size_t)ns.n, sizeof ns.v[0], regfs_cmp_str);
	assert_string_equal(ns.v[0], "/l/a");
	assert_string_equal(ns.v[1], "/l/b");
	assert_string_equal(ns.v[2], "/l/c");
	for (int i = 0; i < ns.n; i++)
		free(ns.v[i]);

	struct names root = {0};
	assert_int_equal(regfs_storage_list(c->s, "/", collect, &root, &err), 0);
	assert_int_equal(root.n, 1);
	assert_string_equal(root.v[0], "/l");
	free(root.v[0]);

	int calls = 0;
	assert_int_equal(regfs_storage_list(c->s, "/l", stop_first, &calls, &err), 0);
	assert_int_equal(calls, 1);

	assert_int_equal(regfs_storage_list(c->s, "/none", collect, &ns, NULL), -ENOENT);
	assert_int_equal(regfs_storage_list(c->s, "/l/a", collect, &ns, NULL), -ENOTDIR);
}

static void test_move_del(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	assert_int_equal(regfs_storage_put(c->s, "/up/u1/data", "blob", 4, &err), 0);
	assert_int_equal(regfs_storage_move(c->s, "/up/u1/data", "/blobs/sha256/ab/abcd/data", &err), 0);
	char *disk = slurp(c, "/blobs/sha256/ab/abcd/data");
	assert_string_equal(disk, "blob");
	free(disk);
	struct regfs_stat_info si;
	assert_int_equal(regfs_storage_stat(c->s, "/up/u1/data", &si, NULL), -ENOENT);
	/* move overwrites */
	assert_int_equal(regfs_storage_put(c->s, "/m2", "other", 5, &err), 0);
	assert_int_equal(regfs_storage_move(c->s, "/m2", "/blobs/sha256/ab/abcd/data", &err), 0);
	disk = slurp(c, "/blobs/sha256/ab/abcd/data");
	assert_string_equal(disk, "other");
	free(disk);
	regfs_err_clear(&err);
	assert_int_equal(regfs_storage_move(c->s, "/m2", "/m3", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "m2"));

	/* delete a file, a subtree, and something missing */
	assert_int_equal(regfs_storage_put(c->s, "/t/a/b/c", "1", 1, &err), 0);
	assert_int_equal(regfs_storage_put(c->s, "/t/a/d", "2", 1, &err), 0);
	assert_int_equal(regfs_storage_put(c->s, "/t/e", "3", 1, &err), 0);
	assert_int_equal(regfs_storage_del(c->s, "/t/e", &err), 0);
	assert_int_equal(regfs_storage_stat(c->s, "/t/e", &si, NULL), -ENOENT);
	assert_int_equal(regfs_storage_del(c->s, "/t", &err), 0);
	assert_int_equal(regfs_storage_stat(c->s, "/t", &si, NULL), -ENOENT);
	assert_int_equal(regfs_storage_del(c->s, "/t", NULL), -ENOENT);
	assert_int_equal(regfs_storage_stat(c->s, "/", &si, &err), 0);
}

static void test_misc(void **state)
{
	struct ctx *c = *state;
	char *url = NULL;
	assert_int_equal(regfs_storage_url_for(c->s, "/x", 60, &url, NULL), -ENOTSUP);
	assert_string_equal(regfs_storage_name(c->s), "filesystem");
	struct regfs_err err = {0};
	assert_int_equal(regfs_storage_health(c->s, &err), 0);

	/* a root that is a file is refused with a message naming it */
	char file[512];
	snprintf(file, sizeof file, "%s/plainfile", c->root);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	struct regfs_storage *s2 = NULL;
	regfs_err_clear(&err);
	assert_int_equal(regfs_storage_fs_new(file, &s2, &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, "plainfile"));
}

/* Atomic put: while one thread replaces an object with alternating
 * contents of different lengths, readers must only ever see one whole
 * version, never a mix, a truncation or a missing file. */
struct race {
	struct regfs_storage *s;
	int rounds;
	int bad;
};

static void *race_writer(void *ud)
{
	struct race *r = ud;
	static char a[8192], b[3000];
	memset(a, 'a', sizeof a);
	memset(b, 'b', sizeof b);
	for (int i = 0; i < r->rounds; i++) {
		const char *d = (i & 1) ? b : a;
		size_t n = (i & 1) ? sizeof b : sizeof a;
		if (regfs_storage_put(r->s, "/race/obj", d, n, NULL) != 0)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void *race_reader(void *ud)
{
	struct race *r = ud;
	for (int i = 0; i < r->rounds; i++) {
		char *d = NULL;
		size_t n = 0;
		if (regfs_storage_get(r->s, "/race/obj", &d, &n, NULL) != 0) {
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		char want = n == 8192 ? 'a' : n == 3000 ? 'b' : 0;
		for (size_t k = 0; k < n && want; k++)
			if (d[k] != want)
				want = 0;
		if (!want)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_SEQ_CST);
		free(d);
	}
	return NULL;
}

static void test_atomic_put_concurrent(void **state)
{
	struct ctx *c = *state;
	char init[8192];
	memset(init, 'a', sizeof init);
	assert_int_equal(regfs_storage_put(c->s, "/race/obj", init, sizeof init, NULL), 0);
	struct race r = { .s = c->s, .rounds = 300 };
	pthread_t w, rd[2];
	assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&rd[i], NULL, race_reader, &r), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	assert_int_equal(r.bad, 0);
	/* and no temp files are left behind */
	struct names ns = {0};
	assert_int_equal(regfs_storage_list(c->s, "/race", collect, &ns, NULL), 0);
	assert_int_equal(ns.n, 1);
	free(ns.v[0]);
	assert_int_equal(files_in(c, "/race", VISIBLE_AND_TEMP), 1);
}

/* The base layer's part: every failure names the driver, a caller's earlier
 * error is kept, and the optional operations answer for themselves. */
static void test_base_errors(void **state)
{
	struct ctx *c = *state;
	struct regfs_err err = {0};
	char *d = NULL;
	size_t l;
	assert_int_equal(regfs_storage_get(c->s, "/none", &d, &l, &err), -ENOENT);
	assert_true(strncmp(err.msg, "filesystem storage: ", 20) == 0);
	/* an error already set stays as it was */
	assert_int_equal(regfs_storage_get(c->s, "/a//b", &d, &l, &err), -EINVAL);
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, "/none"));
	regfs_err_clear(&err);
	assert_int_equal(regfs_storage_list(c->s, "/a//b", collect, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "filesystem storage: invalid path \"/a//b\": empty, \".\" or \"..\" component");
	assert_true(regfs_storage_supports(c->s, REGFS_STORAGE_OPEN_FD));
	assert_true(regfs_storage_supports(c->s, REGFS_STORAGE_HEALTH));
	assert_false(regfs_storage_supports(c->s, REGFS_STORAGE_URL_FOR));
	char *url = (char *)"unset";
	regfs_err_clear(&err);
	assert_int_equal(regfs_storage_url_for(c->s, "/x", 60, &url, &err), -ENOTSUP);
	assert_null(url);
	assert_string_equal(err.msg, "filesystem storage has no direct URLs");
	/* publish checks its destination with the same rule */
	struct regfs_writer *w = NULL;
	assert_int_equal(regfs_storage_writer(c->s, "/up/w", false, &w, &err), 0);
	assert_int_equal(regfs_writer_commit(w, &err), 0);
	regfs_err_clear(&err);
	assert_int_equal(regfs_writer_publish(w, "/blobs/../x", &err), -EINVAL);
	assert_true(strncmp(err.msg, "filesystem storage: invalid path", 32) == 0);
	assert_int_equal(regfs_writer_close(w, &err), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_put_get), T(test_get_too_big), T(test_bad_paths), T(test_writer_append),
		T(test_writer_lock_publish), T(test_publish_link_fallback), T(test_reader),
		T(test_stat), T(test_list), T(test_move_del), T(test_misc),
		T(test_atomic_put_concurrent), T(test_base_errors),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
