/* util.c — small helpers shared by the files of fs/: monotonic clock, error
 * mapping for FUSE replies, and a bounded parallel-for on pthreads. */
#include "mount.h"

#include <errno.h>
#include <stdlib.h>

#include <regfs/log.h>

double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int fs_client_errno(int rc, const struct regfs_err *e, const char *what)
{
	if (rc == -ENOENT) {
		log_debug("%s: not found (%s)", what, regfs_err_str(e));
		return -ENOENT;
	}
	if (rc == -ENOMEM)
		return rc;
	/* Everything else (registry down, timeout, auth, protocol) is EIO to
	 * the application; the log line says what actually happened. */
	log_warn("%s failed: %s", what, regfs_err_str(e));
	return -EIO;
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
