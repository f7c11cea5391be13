/* storage.c — the base layer under every storage driver (distribution's
 * storagedriver/base): picks the driver the configuration names, and wraps
 * each operation so that drivers keep only their backend logic.
 *
 * For every call the base
 *   - checks the path(s) once, with one rule for all drivers (storage.h,
 *     "Paths"), so a driver never sees "..", "." or empty components and no
 *     request can name anything outside the driver's root;
 *   - answers -ENOTSUP for an optional operation the driver leaves NULL;
 *   - makes the error name the driver: a message without the driver's label
 *     gets it in front, and a failure the driver did not describe gets a
 *     message naming the operation and the path.
 * The base keeps no state of its own: it is as thread-safe as the driver. */
#include <regfs/config.h>
#include <regfs/storage.h>

#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

int regfs_storage_open(const struct regfs_config *cfg, struct regfs_storage **out,
		       struct regfs_err *err)
{
	switch (cfg->storage_type) {
	case REGFS_STORAGE_FILESYSTEM:
		return regfs_storage_fs_new(cfg->fs_rootdirectory, out, err);
	case REGFS_STORAGE_S3:
		return regfs_storage_s3_new(&cfg->s3, out, err);
	}
	return regfs_errf(err, -EINVAL, "unknown storage driver");
}

const char *regfs_storage_name(const struct regfs_storage *s)
{
	return s->ops->name;
}

/* ---- paths ---------------------------------------------------------------- */

enum root_rule { ROOT_REFUSED, ROOT_ALLOWED };

/* The one path rule (storage.h): "/" then non-empty components that are
 * not "." or "..". NULL when `path` follows it, else what is wrong. */
static const char *path_problem(const char *path, enum root_rule root)
{
	if (!path || path[0] != '/')
		return "must start with /";
	if (path[1] == '\0')
		return root == ROOT_ALLOWED ? NULL : "the root \"/\" is not an object";
	for (const char *p = path + 1;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return "empty, \".\" or \"..\" component";
		if (!slash)
			return NULL;
		p = slash + 1;
	}
}

/* One call through the base: the driver's label, and whether the caller's
 * err was empty before it (only then is its message ours to complete; an
 * earlier error of the caller's is never touched). */
struct call {
	const char *driver;
	struct regfs_err *err;
	bool fresh;
	const char *action;   /* timed (distribution's action name), NULL: not timed */
	uint64_t t0_us;
};

/* The timing hook (regfs_storage_set_timing): read once per call, so the
 * cost without a hook is one atomic load. */
static _Atomic(regfs_storage_timing_fn) g_timing;

void regfs_storage_set_timing(regfs_storage_timing_fn fn)
{
	atomic_store(&g_timing, fn);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct call begin(const char *driver, struct regfs_err *err, const char *action)
{
	bool timed = action && atomic_load_explicit(&g_timing, memory_order_relaxed);
	return (struct call){driver, err, err && err->code == 0, timed ? action : NULL,
			     timed ? mono_us() : 0};
}

static int check_path(const struct call *c, const char *path, enum root_rule root)
{
	const char *why = path_problem(path, root);
	if (!why)
		return 0;
	return regfs_errf(c->err, -EINVAL, "%s storage: invalid path \"%s\": %s", c->driver,
			  path ? path : "(null)", why);
}

/* After the driver returned r: a failure's message names the driver, and a
 * failure the driver did not describe says what failed on what. */
static int done(const struct call *c, int r, const char *op, const char *path)
{
	regfs_storage_timing_fn fn;
	if (c->action && (fn = atomic_load_explicit(&g_timing, memory_order_relaxed)))
		fn(c->driver, c->action, mono_us() - c->t0_us);
	if (r >= 0 || !c->fresh)
		return r;
	struct regfs_err *err = c->err;
	if (err->code == 0)
		return regfs_errf(err, r, "%s storage: %s%s%s: %s", c->driver, op, *path ? " " : "",
				  path, strerror(-r));
	size_t n = strlen(c->driver);
	if (strncmp(err->msg, c->driver, n) != 0 || strncmp(err->msg + n, " storage: ", 10) != 0)
		regfs_err_prefix(err, "%s storage: ", c->driver);
	return r;
}

/* A reader or writer just opened keeps the driver's label for the errors
 * of its methods (regfs_reader_*, regfs_writer_*). */
static int labelled(const struct call *c, const char **label)
{
	*label = c->driver;
	return 0;
}

static int unsupported(const struct call *c, const char *what)
{
	return regfs_errf(c->err, -ENOTSUP, "%s storage has no %s", c->driver, what);
}

/* ---- operations ----------------------------------------------------------- */

int regfs_storage_get(struct regfs_storage *s, const char *path, char **data, size_t *len,
		      struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "GetContent");
	*data = NULL;
	*len = 0;
	int r = check_path(&c, path, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->get(s, path, data, len, err), "read", path);
}

int regfs_storage_put(struct regfs_storage *s, const char *path, const void *data, size_t len,
		      struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "PutContent");
	int r = check_path(&c, path, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->put(s, path, data, len, err), "write", path);
}

int regfs_storage_reader(struct regfs_storage *s, const char *path, uint64_t offset,
			 struct regfs_reader **out, struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "Reader");
	*out = NULL;
	int r = check_path(&c, path, ROOT_REFUSED);
	r = r ? r : done(&c, s->ops->reader(s, path, offset, out, err), "open", path);
	return r ? r : labelled(&c, &(*out)->driver);
}

int regfs_storage_writer(struct regfs_storage *s, const char *path, bool append,
			 struct regfs_writer **out, struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "Writer");
	*out = NULL;
	int r = check_path(&c, path, ROOT_REFUSED);
	r = r ? r : done(&c, s->ops->writer(s, path, append, out, err), "open for writing", path);
	return r ? r : labelled(&c, &(*out)->driver);
}

int regfs_storage_stat(struct regfs_storage *s, const char *path, struct regfs_stat_info *st,
		       struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "Stat");
	memset(st, 0, sizeof *st);
	int r = check_path(&c, path, ROOT_ALLOWED);
	return r ? r : done(&c, s->ops->stat(s, path, st, err), "stat", path);
}

int regfs_storage_stat_object(struct regfs_storage *s, const char *path,
			      struct regfs_stat_info *st, struct regfs_err *err)
{
	if (!s->ops->stat_object)
		return regfs_storage_stat(s, path, st, err);
	struct call c = begin(s->ops->name, err, "Stat");
	memset(st, 0, sizeof *st);
	int r = check_path(&c, path, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->stat_object(s, path, st, err), "stat", path);
}

int regfs_storage_list(struct regfs_storage *s, const char *path, regfs_list_cb cb, void *ud,
		       struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "List");
	int r = check_path(&c, path, ROOT_ALLOWED);
	return r ? r : done(&c, s->ops->list(s, path, cb, ud, err), "list", path);
}

int regfs_storage_move(struct regfs_storage *s, const char *src, const char *dst,
		       struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "Move");
	int r = check_path(&c, src, ROOT_REFUSED);
	if (r == 0)
		r = check_path(&c, dst, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->move(s, src, dst, err), "move", src);
}

int regfs_storage_del(struct regfs_storage *s, const char *path, struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "Delete");
	int r = check_path(&c, path, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->del(s, path, err), "delete", path);
}

bool regfs_storage_supports(const struct regfs_storage *s, enum regfs_storage_optional op)
{
	switch (op) {
	case REGFS_STORAGE_URL_FOR:
		return s->ops->url_for != NULL;
	case REGFS_STORAGE_OPEN_FD:
		return s->ops->open_fd != NULL;
	case REGFS_STORAGE_HEALTH:
		return s->ops->health != NULL;
	}
	return false;
}

int regfs_storage_url_for(struct regfs_storage *s, const char *path, int expires_s, char **url,
			  struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "RedirectURL");
	*url = NULL;
	if (!s->ops->url_for)
		return unsupported(&c, "direct URLs");
	int r = check_path(&c, path, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->url_for(s, path, expires_s, url, err), "sign a URL for",
			    path);
}

int regfs_storage_open_fd(struct regfs_storage *s, const char *path, int *fd, uint64_t *size,
			  struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "OpenFd");
	*fd = -1;
	if (!s->ops->open_fd)
		return unsupported(&c, "file descriptors");
	int r = check_path(&c, path, ROOT_REFUSED);
	return r ? r : done(&c, s->ops->open_fd(s, path, fd, size, err), "open", path);
}

int regfs_storage_health(struct regfs_storage *s, struct regfs_err *err)
{
	struct call c = begin(s->ops->name, err, "Health");
	if (!s->ops->health)
		return unsupported(&c, "health check");
	return done(&c, s->ops->health(s, err), "check", "the backend");
}

void regfs_storage_free(struct regfs_storage *s)
{
	if (s)
		s->ops->free(s);
}

/* ---- readers and writers -------------------------------------------------- */

ssize_t regfs_reader_read(struct regfs_reader *r, void *buf, size_t len, struct regfs_err *err)
{
	struct call c = begin(r->driver, err, NULL);
	ssize_t n = r->read(r, buf, len, err);
	return n < 0 ? done(&c, (int)n, "read", "") : n;
}

void regfs_reader_close(struct regfs_reader *r)
{
	if (r)
		r->close(r);
}

ssize_t regfs_writer_write(struct regfs_writer *w, const void *buf, size_t len,
			   struct regfs_err *err)
{
	struct call c = begin(w->driver, err, NULL);
	ssize_t n = w->write(w, buf, len, err);
	return n < 0 ? done(&c, (int)n, "write", "") : n;
}

uint64_t regfs_writer_size(struct regfs_writer *w)
{
	return w->size(w);
}

int regfs_writer_commit(struct regfs_writer *w, struct regfs_err *err)
{
	struct call c = begin(w->driver, err, NULL);
	return done(&c, w->commit(w, err), "commit", "");
}

int regfs_writer_cancel(struct regfs_writer *w, struct regfs_err *err)
{
	struct call c = begin(w->driver, err, NULL);
	return done(&c, w->cancel(w, err), "cancel", "");
}

int regfs_writer_publish(struct regfs_writer *w, const char *dst, struct regfs_err *err)
{
	struct call c = begin(w->driver, err, NULL);
	int r = check_path(&c, dst, ROOT_REFUSED);
	return r ? r : done(&c, w->publish(w, dst, err), "publish to", dst);
}

int regfs_writer_close(struct regfs_writer *w, struct regfs_err *err)
{
	if (!w)
		return 0;
	/* w is freed by its close: keep the label */
	struct call c = begin(w->driver, err, NULL);
	return done(&c, w->close(w, err), "close", "");
}
