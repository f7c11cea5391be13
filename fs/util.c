/* util.c — small helpers shared by the files of fs/: monotonic clock, the
 * policy that turns registry client errors into errno values (and the ring
 * of recent failures behind .regfs/errors), the answer to unsupported
 * writes, and a bounded parallel-for on pthreads. */
#include "mount.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct timespec fs_abstime(double seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long ns = (long)(seconds * 1e9);
	ts.tv_sec += ns / 1000000000L;
	ts.tv_nsec += ns % 1000000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* The one policy for registry client errors (see mount.h). Per error: what
 * a read and what a write answer, and whether the failure is logged. */
static const struct {
	int rc;
	int read, write;
	bool quiet;        /* logged at debug only: an answer, not a failure */
} client_errno[] = {
	/* The name is not there: what stat, ls and rm must say. */
	{-ENOENT, -ENOENT, -ENOENT, true},
	/* Our own memory: said as it is, and not logged (nothing to add). */
	{-ENOMEM, -ENOMEM, -ENOMEM, true},
	/* The registry refused our credentials. A write asked for a change the
	 * credentials may not make: "Permission denied" is true and tells the
	 * user what to fix. A read of a mounted 0444 file cannot be cured by
	 * permissions on this side (the credentials were checked at mount),
	 * and EACCES there makes find and cp report local permission problems:
	 * EIO, the log line says what the registry answered. */
	{-EACCES, -EIO, -EACCES, false},
	/* The registry does not do this at all (deletes disabled: 405, or a
	 * DELETE by tag refused): a write is "Operation not permitted" by the
	 * registry; for a read it is a registry failure like any other. */
	{-ENOTSUP, -EIO, -EPERM, false},
};

int fs_errno_of_client(int rc, const struct regfs_err *e, const char *what, enum fs_use use)
{
	/* Anything else (registry down, timeout, protocol): EIO, and the log
	 * says what actually happened. */
	int to = -EIO;
	bool quiet = false;
	for (size_t i = 0; i < sizeof client_errno / sizeof *client_errno; i++)
		if (client_errno[i].rc == rc) {
			to = use == FS_WRITE ? client_errno[i].write : client_errno[i].read;
			quiet = client_errno[i].quiet;
		}
	if (quiet && rc == -ENOENT)
		log_debug("%s: not found (%s)", what, regfs_err_str(e));
	else if (!quiet)
		fs_warn("%s failed: %s", what, regfs_err_str(e));
	return to;
}

int fs_unsupported(struct mnt *m, const char *what)
{
	if (m->o.ro)
		return -EROFS;
	log_info("%s: not supported; the mount supports rm, ln -s and mv in <repo>/_tags/ "
		 "and rmdir in <repo>/_manifests/", what);
	return -EROFS;
}

void fs_warn(const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warn("%s", msg);
	fs_error_note(NULL, NULL, msg);
}

int fs_thread_detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	if (pthread_attr_init(&at) != 0)
		return -ENOMEM;
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &at, fn, arg);
	pthread_attr_destroy(&at);
	return -rc;
}

struct par {
	pthread_mutex_t mu;
	size_t next, n;
	void (*fn)(size_t, void *);
	void *arg;
};

static void *par_worker(void *p_)
{
	struct par *p = p_;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->n)
			return NULL;
		p->fn(i, p->arg);
	}
}

void par_for(size_t n, int maxpar, void (*fn)(size_t i, void *arg), void *arg)
{
	if (n == 0)
		return;
	loop_may_block(); /* waits for its threads */
	if (maxpar < 1)
		maxpar = 1;
	size_t nt = n < (size_t)maxpar ? n : (size_t)maxpar;
	struct par p = {.next = 0, .n = n, .fn = fn, .arg = arg};
	pthread_mutex_init(&p.mu, NULL);
	pthread_t *t = calloc(nt, sizeof *t);
	size_t started = 0;
	for (size_t i = 0; t && i + 1 < nt; i++) {
		if (pthread_create(&t[i], NULL, par_worker, &p) != 0)
			break;
		started++;
	}
	par_worker(&p); /* the caller works too, so nt == 1 needs no thread */
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	pthread_mutex_destroy(&p.mu);
}

/* ---- .regfs/errors: a ring of the last failures ---- */

struct err_ent {
	time_t at;
	char op[24];
	char path[512];
	char msg[640];
};

static pthread_mutex_t emu = PTHREAD_MUTEX_INITIALIZER;
static struct err_ent ering[FS_ERRORS_MAX];
static size_t enext, ecount; /* next slot to write; entries held */

struct op_ctx {
	const char *op, *dir, *name;
	struct nodes *t;           /* with dn: dir is dn's path, built on demand */
	const struct node *dn;
};
static _Thread_local struct op_ctx cur;

void fs_op_begin(const char *op, const char *dir, const char *name)
{
	cur = (struct op_ctx){op, dir, name, NULL, NULL};
}

void fs_op_begin_node(const char *op, struct nodes *t, const struct node *dir,
		      const char *name)
{
	cur = (struct op_ctx){op, NULL, name, t, dir};
}

void fs_error_note(const char *op, const char *path, const char *msg)
{
	struct err_ent e = {.at = time(NULL)};
	snprintf(e.op, sizeof e.op, "%s", op ? op : cur.op ? cur.op : "background");
	if (path)
		snprintf(e.path, sizeof e.path, "/%s", path);
	else if (cur.op) {
		char dir[NODE_PATH_MAX];
		const char *d = cur.dir;
		if (cur.dn) /* too long: the name alone (nodes_path) */
			d = nodes_path(cur.t, cur.dn, dir, sizeof dir) >= 0 ? dir : "…";
		if (snprintf(e.path, sizeof e.path, "/%s%s%s", d ? d : "",
			     cur.name && d && *d ? "/" : "", cur.name ? cur.name : "") < 0)
			e.path[0] = 0;
	}
	else
		snprintf(e.path, sizeof e.path, "-"); /* prefetch, walk: no request */
	snprintf(e.msg, sizeof e.msg, "%s", msg ? msg : "");
	for (char *p = e.msg; *p; p++) /* one line per failure */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	pthread_mutex_lock(&emu);
	ering[enext] = e;
	enext = (enext + 1) % FS_ERRORS_MAX;
	if (ecount < FS_ERRORS_MAX)
		ecount++;
	pthread_mutex_unlock(&emu);
}

int fs_errors_text(char **buf, size_t *len)
{
	size_t cap = sizeof(struct err_ent) * FS_ERRORS_MAX + 64, l = 0;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&emu);
	for (size_t i = 0; i < ecount; i++) {
		const struct err_ent *e = &ering[(enext + FS_ERRORS_MAX - ecount + i) % FS_ERRORS_MAX];
		char t[32];
		struct tm tm;
		gmtime_r(&e->at, &tm);
		strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
		int n = snprintf(b + l, cap - l, "%s %s %s: %s\n", t, e->op, e->path, e->msg);
		if (n > 0)
			l += (size_t)n < cap - l ? (size_t)n : cap - l - 1;
	}
	pthread_mutex_unlock(&emu);
	b[l] = 0;
	*buf = b;
	*len = l;
	return 0;
}
