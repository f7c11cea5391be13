/* loop.c — the FUSE request loop: one reader at a time, and the reader keeps
 * the requests it can answer from memory.
 *
 * libfuse's multithreaded loop keeps every idle worker blocked in read() on
 * /dev/fuse, and the kernel gives each request to the worker that has waited
 * longest. A sequential walk (du, ls -R, find: one request at a time) then
 * has every request served by a different thread, woken cold and often on
 * the other CPU: on the 2-CPU VM we measure on, a du of 1,000 x 10 with every
 * answer in memory took 5.7 s that way and 3.4 s with a single thread.
 *
 * Here exactly one thread at a time reads: it reads a request, answers it
 * and reads the next, so a sequential walk stays on one warm thread. A
 * request that may wait (for the registry, for another thread's fetch, for
 * a background walk) calls loop_may_block() first: the reader role passes to
 * a parked thread (or a new one, up to the limit) and the rest of the
 * requests keep flowing while this one waits. A waiting point that forgets
 * to call it costs parallelism, never correctness.
 *
 * Shutdown: unmounting makes the reader's read() fail with ENODEV (libfuse
 * then reports 0); a signal (fuse_set_signal_handlers) only marks the
 * session exited, which the main thread notices within 100 ms and answers by
 * cancelling the threads, which only happens while they are in read() or
 * parked (cancellation is off while a request is being answered). */
#include "mount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <regfs/clock.h>
#include <regfs/log.h>

struct worker {
	pthread_t t;
	struct worker *next;
};

static pthread_mutex_t lmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t parked_cv = PTHREAD_COND_INITIALIZER; /* threads without a role */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;   /* main waits for the end */
static struct fuse_session *S;
static bool have_reader, exiting;
static unsigned nthreads, nparked, max_threads;
static int loop_err;
static struct worker *workers;
static _Thread_local bool is_reader;

static void *worker_main(void *arg);

/* Caller holds lmu. */
static int spawn(void)
{
	struct worker *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	int rc = pthread_create(&w->t, NULL, worker_main, NULL);
	if (rc) {
		free(w);
		return -rc;
	}
	w->next = workers;
	workers = w;
	nthreads++;
	return 0;
}

void loop_may_block(void)
{
	if (!is_reader)
		return; /* not a loop thread, or already handed over */
	is_reader = false;
	pthread_mutex_lock(&lmu);
	have_reader = false;
	if (nparked)
		pthread_cond_signal(&parked_cv);
	else if (nthreads < max_threads && !exiting && spawn() != 0)
		log_warn("cannot start another FUSE thread; requests wait for this one");
	pthread_mutex_unlock(&lmu);
}

/* Caller holds lmu. */
static void finish(int err)
{
	if (err && !loop_err)
		loop_err = err;
	exiting = true;
	pthread_cond_broadcast(&parked_cv);
	pthread_cond_broadcast(&done_cv);
}

static void unlock_lmu(void *p)
{
	pthread_mutex_unlock(p);
}

static void free_buf(void *p)
{
	free(((struct fuse_buf *)p)->mem);
}

static void *worker_main(void *arg)
{
	(void)arg;
	struct fuse_buf buf;
	memset(&buf, 0, sizeof buf);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cleanup_push(free_buf, &buf);
	for (;;) {
		pthread_mutex_lock(&lmu);
		while (have_reader && !exiting) {
			nparked++;
			pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
			/* cancelled here: the cleanup handler runs with lmu held */
			pthread_cleanup_push(unlock_lmu, &lmu);
			pthread_cond_wait(&parked_cv, &lmu);
			pthread_cleanup_pop(0);
			pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
			nparked--;
		}
		if (exiting) {
			pthread_mutex_unlock(&lmu);
			break;
		}
		have_reader = true;
		pthread_mutex_unlock(&lmu);
		is_reader = true;

		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		int res = fuse_session_receive_buf(S, &buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (res > 0 && !fuse_session_exited(S)) {
			fs_op_begin(NULL, NULL, NULL); /* handlers name what they serve */
			fuse_session_process_buf(S, &buf);
		}

		pthread_mutex_lock(&lmu);
		if (is_reader) {
			is_reader = false;
			have_reader = false;
		}
		if (res == 0 || fuse_session_exited(S))
			finish(0);
		else if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ENOENT)
			finish(res); /* ENOENT: the request was interrupted; others: fatal */
		pthread_mutex_unlock(&lmu);
	}
	pthread_cleanup_pop(1);
	return NULL;
}

struct timespec fs_deadline_ms(long ms)
{
	return regfs_deadline_ms(ms);
}

int loop_run(struct fuse_session *se, unsigned maxthreads)
{
	S = se;
	max_threads = maxthreads ? maxthreads : 1;
	pthread_mutex_lock(&lmu);
	int rc = spawn();
	if (rc) {
		pthread_mutex_unlock(&lmu);
		return rc;
	}
	while (!exiting) {
		struct timespec ts = fs_deadline_ms(100);
		pthread_cond_timedwait(&done_cv, &lmu, &ts);
		if (fuse_session_exited(se))
			finish(0); /* a signal: nobody may be reading to notice */
	}
	struct worker *ws = workers;
	workers = NULL;
	pthread_mutex_unlock(&lmu);
	/* Threads answering a request finish it (bounded by --timeout); the
	 * reader blocked in read() and parked ones are cancelled. */
	for (struct worker *w = ws; w; w = w->next)
		pthread_cancel(w->t);
	for (struct worker *w = ws, *nx; w; w = nx) {
		nx = w->next;
		pthread_join(w->t, NULL);
		free(w);
	}
	return loop_err;
}
