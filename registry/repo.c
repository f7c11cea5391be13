/* repo.c — repository-level reads and writes over the storage driver:
 * link files, existence checks, and the listings (repositories, tags,
 * revisions, layers) that tags/list, _catalog, referrers and GC share. */
#include "repo.h"

#include "registry.h"

#include <regfs/layout.h>
#include <regfs/names.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fast path for drivers with open_fd (filesystem): one path lookup instead
 * of two (read, then stat for the mtime); this is the per-request cost of a
 * manifest GET by tag. */
static int read_link_fd(struct registry *r, const char *path, char out[REGFS_DIGEST_MAX],
			int64_t *mtime, struct regfs_err *err)
{
	int fd;
	uint64_t size;
	int rc = regfs_storage_open_fd(r->st, path, &fd, &size, err);
	if (rc)
		return rc;
	struct stat st;
	ssize_t n = size < REGFS_DIGEST_MAX ? pread(fd, out, REGFS_DIGEST_MAX - 1, 0) : -1;
	if (mtime)
		*mtime = fstat(fd, &st) == 0 ? (int64_t)st.st_mtime : 0;
	close(fd);
	if (n < 0)
		return regfs_errf(err, -EINVAL, "link %s does not hold a valid digest", path);
	size_t len = (size_t)n;
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
		len--;
	out[len] = '\0';
	if (!regfs_digest_valid(out))
		return regfs_errf(err, -EINVAL, "link %s does not hold a valid digest", path);
	return 0;
}

int repo_read_link(struct registry *r, const char *path, char out[REGFS_DIGEST_MAX],
		   int64_t *mtime, struct regfs_err *err)
{
	if (regfs_storage_supports(r->st, REGFS_STORAGE_OPEN_FD))
		return read_link_fd(r, path, out, mtime, err);
	char *data = NULL;
	size_t len = 0;
	int rc = regfs_storage_get(r->st, path, &data, &len, err);
	if (rc)
		return rc;
	/* registry:2 writes no newline; tolerate trailing whitespace anyway */
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
		data[--len] = '\0';
	if (len >= REGFS_DIGEST_MAX || !regfs_digest_valid(data)) {
		free(data);
		return regfs_errf(err, -EINVAL, "link %s does not hold a valid digest", path);
	}
	memcpy(out, data, len + 1);
	free(data);
	if (mtime) {
		struct regfs_stat_info st;
		*mtime = 0;
		if (regfs_storage_stat(r->st, path, &st, NULL) == 0)
			*mtime = st.mtime;
	}
	return 0;
}

int repo_write_link(struct registry *r, const char *path, const char *digest,
		    struct regfs_err *err)
{
	return regfs_storage_put(r->st, path, digest, strlen(digest), err);
}

bool repo_exists(struct registry *r, const char *path, struct regfs_stat_info *st)
{
	struct regfs_stat_info tmp;
	return path && regfs_storage_stat(r->st, path, st ? st : &tmp, NULL) == 0;
}

bool repo_known(struct registry *r, const char *name)
{
	char *p = regfs_layout_repo(name);
	struct regfs_stat_info st;
	bool ok = p && regfs_storage_stat(r->st, p, &st, NULL) == 0 && st.is_dir;
	free(p);
	return ok;
}

/* ---- string lists ---- */

/* ---- listings ---- */

struct collect {
	struct strvec *out;
	int rc;
	int mode; /* 0: base names; 1: "alg:hex" under an alg dir */
	const char *alg;
};

static int collect_cb(const char *path, void *ud)
{
	struct collect *c = ud;
	const char *base = regfs_path_base(path);
	if (c->mode == 1) {
		char d[REGFS_DIGEST_MAX + 8];
		snprintf(d, sizeof d, "%s:%s", c->alg, base);
		if (!regfs_digest_valid(d))
			return 0; /* stray entry: ignore */
		c->rc = strvec_push(c->out, d);
	} else {
		c->rc = strvec_push(c->out, base);
	}
	return c->rc != 0;
}

int repo_list_tags(struct registry *r, const char *name, struct strvec *out,
		   struct regfs_err *err)
{
	char *dir = regfs_layout_tags_dir(name);
	if (!dir)
		return regfs_errf(err, -EINVAL, "invalid repository name");
	struct strvec all = {0};
	struct collect c = {.out = &all};
	int rc = regfs_storage_list(r->st, dir, collect_cb, &c, err);
	free(dir);
	if (rc == 0)
		rc = c.rc;
	if (rc == 0) {
		for (size_t i = 0; i < all.n && rc == 0; i++)
			if (regfs_tag_valid(all.v[i]))
				rc = strvec_push(out, all.v[i]);
		strvec_sort(out);
	}
	strvec_clear(&all);
	return rc;
}

static int list_digests(struct registry *r, const char *name, const char *mid,
			struct strvec *out, struct regfs_err *err)
{
	static const char *const algs[] = {"sha256", "sha512"};
	char *repo = regfs_layout_repo(name);
	if (!repo)
		return regfs_errf(err, -EINVAL, "invalid repository name");
	int rc = 0;
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		char *dir = NULL;
		if (asprintf(&dir, "%s/%s/%s", repo, mid, algs[i]) < 0) {
			rc = -ENOMEM;
			break;
		}
		struct collect c = {.out = out, .mode = 1, .alg = algs[i]};
		struct regfs_err e = {0};
		rc = regfs_storage_list(r->st, dir, collect_cb, &c, &e);
		free(dir);
		if (rc == -ENOENT)
			rc = 0;
		else if (rc)
			regfs_errf(err, rc, "%s", regfs_err_str(&e));
		if (rc == 0)
			rc = c.rc;
	}
	free(repo);
	strvec_sort(out);
	return rc;
}

int repo_list_revisions(struct registry *r, const char *name, struct strvec *out,
			struct regfs_err *err)
{
	return list_digests(r, name, "_manifests/revisions", out, err);
}

int repo_list_layers(struct registry *r, const char *name, struct strvec *out,
		     struct regfs_err *err)
{
	return list_digests(r, name, "_layers", out, err);
}

/* ---- catalog walk ----
 * A repository is a directory with a _manifests, _layers or _uploads child;
 * children not starting with '_' may be further repositories (nested names). */

struct walk {
	struct registry *r;
	repo_name_cb cb;
	void *ud;
	int rc;
	size_t prefix_len; /* length of REGFS_LAYOUT_REPOS "/" */
	bool is_repo;
	struct strvec subdirs;
};

static int walk_child_cb(const char *path, void *ud)
{
	struct walk *w = ud;
	const char *base = regfs_path_base(path);
	if (base[0] == '_') {
		if (!strcmp(base, "_manifests") || !strcmp(base, "_layers") || !strcmp(base, "_uploads"))
			w->is_repo = true;
		return 0;
	}
	w->rc = strvec_push(&w->subdirs, path);
	return w->rc != 0;
}

static int walk_dir(struct registry *r, const char *dir, size_t prefix_len, repo_name_cb cb,
		    void *ud, int depth, struct regfs_err *err)
{
	if (depth > 64)
		return 0; /* names are at most 255 chars: a deeper tree is not ours */
	struct walk w = {.r = r, .cb = cb, .ud = ud, .prefix_len = prefix_len};
	int rc = regfs_storage_list(r->st, dir, walk_child_cb, &w, err);
	/* a vanished directory or a stray file among repositories is not an error */
	if (rc == -ENOENT || rc == -ENOTDIR || (rc == -EINVAL && depth > 0)) {
		rc = 0;
		regfs_err_clear(err);
	}
	if (rc == 0)
		rc = w.rc;
	if (rc == 0 && w.is_repo && strlen(dir) > prefix_len) {
		const char *name = dir + prefix_len;
		if (regfs_name_valid(name))
			rc = cb(name, ud);
	}
	for (size_t i = 0; i < w.subdirs.n && rc == 0; i++)
		rc = walk_dir(r, w.subdirs.v[i], prefix_len, cb, ud, depth + 1, err);
	strvec_clear(&w.subdirs);
	return rc;
}

int repo_walk(struct registry *r, repo_name_cb cb, void *ud, struct regfs_err *err)
{
	return walk_dir(r, REGFS_LAYOUT_REPOS, strlen(REGFS_LAYOUT_REPOS "/"), cb, ud, 0, err);
}

static int add_name_cb(const char *name, void *ud)
{
	return strvec_push(ud, name);
}

int repo_list_all(struct registry *r, struct strvec *out, struct regfs_err *err)
{
	int rc = repo_walk(r, add_name_cb, out, err);
	strvec_sort(out);
	return rc;
}
