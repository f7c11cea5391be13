/* readahead.c — reading a blob that is not in the disk cache (bigger than
 * the open-time fill, or no cache): Range requests, and parallel read-ahead
 * while the reads are sequential.
 *
 * One request at a time made a sequential reader wait for every chunk's
 * round trip (450–570 MiB/s where curl of the same blob did 1.3–1.7 GiB/s).
 * Here an open file keeps a few slots, each one byte range of the blob held
 * in memory or being fetched. A read takes its bytes from the slots that
 * cover it; a gap is fetched by the reading thread itself (1 MiB, so a
 * random read costs one small request, as before). While reads follow each
 * other, up to RA_INFLIGHT further chunks are fetched ahead by a small pool
 * of threads, growing from 1 MiB to RA_CHUNK_MAX (fewer requests: registry:2
 * spends milliseconds on each), never more than RA_AHEAD past the reader and
 * never more than RA_MEM_MAX for the whole mount.
 *
 * A fetched chunk is then pushed into the kernel's page cache for the file
 * (FUSE_NOTIFY_STORE) except its first RA_HEAD bytes: the reader copies the
 * rest from the page cache without a round trip through this daemon (the
 * FUSE round trips, not the registry, were the limit once chunks arrived in
 * parallel), and its read of the kept head tells us how far it got, which
 * schedules the next chunks. Only bytes of this blob at their own offsets
 * are stored, and only into this file's inode: nodeids are never reused
 * (node.c), so a store racing with a forget fails with ENOENT and changes
 * nothing. Evicted pages are simply read again (a gap).
 *
 * Deadlock check for stores: a store waits for page locks held by a pending
 * read; that read waits only for a slot being fetched (bounded by
 * --timeout), never for a store, because a slot is marked ready before its
 * store starts. */
#include "mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <regfs/log.h>

#define RA_FIRST (1u << 20)           /* a gap's fetch; a run's first chunk */
#define RA_CHUNK_MAX (8u << 20)       /* chunks of a run double up to this */
#define RA_AHEAD (32ull << 20)        /* fetched or in flight past the reader */
#define RA_INFLIGHT 4                 /* prefetches in flight per open file */
#define RA_SLOTS 16
#define RA_MEM_MAX (128ull << 20)     /* prefetch buffers, all files together */
#define RA_HEAD (128u << 10)          /* kept in memory when a chunk is stored */
#define RA_WORKERS 8
#define RA_POOL 6                     /* idle prefetch buffers kept (48 MiB) */

enum { S_FREE = 0, S_FETCH, S_READY, S_FAILED };

struct slot {
	int state;
	bool busy;          /* a worker stores it: keep buf */
	bool pooled;        /* buf is an RA_CHUNK_MAX pool buffer */
	uint64_t off;
	size_t len;         /* asked, then held in buf */
	char *buf;
	size_t counted;     /* bytes counted in ra_mem */
};

struct ra {
	struct regfs_client *client;
	struct fs_stats *st;
	struct fuse_session *se;   /* NULL: nothing is stored in the page cache */
	atomic_int ref;     /* the open file + queued or running prefetches */
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* a slot changed state */
	char *repo, *path;
	char digest[REGFS_DIGEST_MAX];
	uint64_t size;
	fuse_ino_t ino;
	struct slot s[RA_SLOTS];
	uint64_t last_end;  /* end of the latest read */
	uint64_t frontier;  /* end of what is fetched or scheduled ahead */
	size_t chunk;       /* size of the next prefetch */
	int inflight;
	bool closed;
	/* for the debug line at close: how the reader was served */
	uint64_t n_reads, n_gaps, n_prefetch;
	atomic_uint_fast64_t stored;
};

static atomic_uint_fast64_t ra_mem;

static bool mem_take(size_t n)
{
	if (atomic_fetch_add(&ra_mem, n) + n > RA_MEM_MAX) {
		atomic_fetch_sub(&ra_mem, n);
		return false;
	}
	return true;
}

/* ---- prefetch buffers ----
 * Reused rather than freed: fresh memory for every 8 MiB chunk cost a page
 * fault and a page clearing per 4 KiB (a fifth of the CPU of a sequential
 * read, measured with perf). */
static pthread_mutex_t pmu = PTHREAD_MUTEX_INITIALIZER;
static char *pool[RA_POOL];
static int npool;

static char *buf_get(void)
{
	pthread_mutex_lock(&pmu);
	char *b = npool ? pool[--npool] : NULL;
	pthread_mutex_unlock(&pmu);
	return b ? b : malloc(RA_CHUNK_MAX);
}

static void buf_put(char *b)
{
	pthread_mutex_lock(&pmu);
	if (b && npool < RA_POOL) {
		pool[npool++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&pmu);
	free(b);
}

/* ---- the prefetch threads ---- */

struct job {
	struct ra *ra;
	int i;
	struct job *next;
};

static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcv = PTHREAD_COND_INITIALIZER;
static struct job *qhead, *qtail;
static pthread_t workers[RA_WORKERS];
static int nworkers, nidle;
static bool qstop;

static void ra_put(struct ra *ra);
static void run_job(struct ra *ra, int i);

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&qmu);
	for (;;) {
		while (!qhead && !qstop) {
			nidle++;
			pthread_cond_wait(&qcv, &qmu);
			nidle--;
		}
		if (qstop)
			break;
		struct job *j = qhead;
		qhead = j->next;
		if (!qhead)
			qtail = NULL;
		pthread_mutex_unlock(&qmu);
		run_job(j->ra, j->i);
		free(j);
		pthread_mutex_lock(&qmu);
	}
	pthread_mutex_unlock(&qmu);
	return NULL;
}

/* Queues slot i of ra for a worker (which then holds a reference). */
static int enqueue(struct ra *ra, int i)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->ra = ra;
	j->i = i;
	atomic_fetch_add(&ra->ref, 1);
	pthread_mutex_lock(&qmu);
	if (qstop) {
		pthread_mutex_unlock(&qmu);
		atomic_fetch_sub(&ra->ref, 1);
		free(j);
		return -ESHUTDOWN;
	}
	if (qtail)
		qtail->next = j;
	else
		qhead = j;
	qtail = j;
	if (nidle)
		pthread_cond_signal(&qcv);
	else if (nworkers < RA_WORKERS && pthread_create(&workers[nworkers], NULL, worker, NULL) == 0)
		nworkers++;
	if (nworkers == 0) { /* nobody would ever run it (the only job queued) */
		qhead = qtail = NULL;
		pthread_mutex_unlock(&qmu);
		atomic_fetch_sub(&ra->ref, 1);
		free(j);
		return -EAGAIN;
	}
	pthread_mutex_unlock(&qmu);
	return 0;
}

void ra_shutdown(void)
{
	pthread_mutex_lock(&qmu);
	qstop = true;
	pthread_cond_broadcast(&qcv);
	int n = nworkers;
	pthread_mutex_unlock(&qmu);
	for (int i = 0; i < n; i++)
		pthread_join(workers[i], NULL);
	/* Jobs nobody will run: their slots stay S_FETCH, but every file is
	 * closed by now (the loop has ended), so only references remain. */
	while (qhead) {
		struct job *j = qhead;
		qhead = j->next;
		ra_put(j->ra);
		free(j);
	}
	qtail = NULL;
	pthread_mutex_lock(&pmu);
	while (npool)
		free(pool[--npool]);
	pthread_mutex_unlock(&pmu);
}

/* ---- slots (caller holds ra->mu) ---- */

static void slot_free(struct slot *s)
{
	atomic_fetch_sub(&ra_mem, s->counted);
	if (s->pooled)
		buf_put(s->buf);
	else
		free(s->buf);
	*s = (struct slot){0};
}

/* The slot holding or fetching byte pos, or -1. */
static int find_cover(struct ra *ra, uint64_t pos)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		const struct slot *s = &ra->s[i];
		if (s->state != S_FREE && pos >= s->off && pos < s->off + s->len)
			return i;
	}
	return -1;
}

/* Where the first slot after pos starts (the blob's end if none). */
static uint64_t next_start(struct ra *ra, uint64_t pos)
{
	uint64_t n = ra->size;
	for (int i = 0; i < RA_SLOTS; i++)
		if (ra->s[i].state != S_FREE && ra->s[i].off > pos && ra->s[i].off < n)
			n = ra->s[i].off;
	return n;
}

/* A free slot for [off, off+len) with its buffer, counted when prefetch
 * (refused over the budget); a sync fetch evicts the lowest ready slot
 * outside [keep_from, keep_to) when all are taken. -1 when none. */
static int slot_new(struct ra *ra, uint64_t off, size_t len, bool prefetch, uint64_t keep_from,
		    uint64_t keep_to)
{
	int f = -1, low = -1;
	for (int i = 0; i < RA_SLOTS && f < 0; i++) {
		struct slot *s = &ra->s[i];
		if (s->state == S_FREE)
			f = i;
		else if (s->state != S_FETCH && !s->busy &&
			 (s->off + s->len <= keep_from || s->off >= keep_to) &&
			 (low < 0 || s->off < ra->s[low].off))
			low = i;
	}
	if (f < 0 && (prefetch || low < 0))
		return -1;
	if (f < 0) {
		slot_free(&ra->s[low]);
		f = low;
	}
	if (prefetch && !mem_take(len))
		return -1;
	if (!prefetch)
		atomic_fetch_add(&ra_mem, len);
	struct slot *s = &ra->s[f];
	s->pooled = prefetch && len <= RA_CHUNK_MAX;
	s->buf = s->pooled ? buf_get() : malloc(len ? len : 1);
	if (!s->buf) {
		atomic_fetch_sub(&ra_mem, len);
		return -1;
	}
	s->counted = len;
	s->state = S_FETCH;
	s->off = off;
	s->len = len;
	return f;
}

/* Reads follow each other when this one starts at or just past what was
 * fetched ahead, and not far behind the last one. */
static bool is_seq(const struct ra *ra, uint64_t off)
{
	return off <= ra->frontier + RA_FIRST && off + RA_AHEAD >= ra->last_end;
}

/* A jump: the window ahead is useless. Fetches in flight finish and stay
 * until evicted. */
static void forget_window(struct ra *ra, uint64_t off, uint64_t end)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct slot *s = &ra->s[i];
		if ((s->state == S_READY || s->state == S_FAILED) && !s->busy &&
		    (s->off + s->len <= off || s->off >= end))
			slot_free(s);
	}
	ra->frontier = off;
	ra->chunk = RA_FIRST;
}

/* Sequential: drop what the reader is past; schedule chunks ahead. */
static void advance(struct ra *ra, uint64_t off)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct slot *s = &ra->s[i];
		if ((s->state == S_READY || s->state == S_FAILED) && !s->busy &&
		    s->off + s->len + RA_FIRST <= off)
			slot_free(s);
	}
	while (!ra->closed && ra->inflight < RA_INFLIGHT && ra->frontier < ra->size &&
	       ra->frontier < off + RA_AHEAD) {
		uint64_t left = ra->size - ra->frontier;
		size_t len = left < ra->chunk ? (size_t)left : ra->chunk;
		if (find_cover(ra, ra->frontier) >= 0) { /* already there (a gap fetch) */
			int c = find_cover(ra, ra->frontier);
			ra->frontier = ra->s[c].off + ra->s[c].len;
			continue;
		}
		uint64_t nx = next_start(ra, ra->frontier);
		if (nx - ra->frontier < len)
			len = (size_t)(nx - ra->frontier);
		int i = slot_new(ra, ra->frontier, len, true, 0, 0);
		if (i < 0)
			return; /* budget or slots: the reader's own gap fetches go on */
		if (enqueue(ra, i) != 0) {
			slot_free(&ra->s[i]);
			return;
		}
		ra->inflight++;
		ra->n_prefetch++;
		ra->frontier += len;
		ra->chunk = ra->chunk * 2 > RA_CHUNK_MAX ? RA_CHUNK_MAX : ra->chunk * 2;
	}
}

/* ---- fetching ---- */

/* Fills slot buffer buf with [off, off+len): 0, or a negative errno with e set. */
static int fetch(struct ra *ra, uint64_t off, size_t len, char *buf, size_t *got,
		 struct regfs_err *e)
{
	atomic_fetch_add(&ra->st->range_reads, 1);
	int rc = regfs_client_blob_read(ra->client, ra->repo, ra->digest, off, len, buf, got, e);
	if (rc == 0 && *got == 0 && len)
		rc = regfs_errf(e, -EIO, "GET blob %s in %s: no bytes at offset %llu of %llu "
				"(the registry's blob is shorter than its manifest says)", ra->digest,
				ra->repo, (unsigned long long)off, (unsigned long long)ra->size);
	return rc;
}

/* The page cache of the file takes the chunk past its head (see the top). */
static void store(struct ra *ra, struct slot *w)
{
	/* buf, off and len do not change while busy. */
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(w->len - RA_HEAD);
	bv.buf[0].mem = w->buf + RA_HEAD;
	int rc = fuse_lowlevel_notify_store(ra->se, ra->ino, (off_t)(w->off + RA_HEAD), &bv, 0);
	if (rc == 0)
		atomic_fetch_add(&ra->stored, w->len - RA_HEAD);
	if (rc)
		log_debug("read-ahead: storing %s [%llu, +%zu) in the page cache: %s", ra->path,
			  (unsigned long long)w->off, w->len, strerror(-rc));
	pthread_mutex_lock(&ra->mu);
	char *head = rc == 0 ? malloc(RA_HEAD) : NULL;
	if (head) { /* keep the head, give the big buffer back */
		memcpy(head, w->buf, RA_HEAD);
		if (w->pooled)
			buf_put(w->buf);
		else
			free(w->buf);
		w->buf = head;
		w->pooled = false;
		atomic_fetch_sub(&ra_mem, w->counted - RA_HEAD);
		w->counted = RA_HEAD;
		w->len = RA_HEAD;
	}
	w->busy = false;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
}

static void run_job(struct ra *ra, int i)
{
	struct slot *s = &ra->s[i];
	/* off, len and buf do not change while the slot is S_FETCH. */
	size_t got = 0;
	struct regfs_err e = {0};
	int rc = fetch(ra, s->off, s->len, s->buf, &got, &e);
	if (rc)
		log_debug("read-ahead of %s at %llu failed (a read there will retry): %s", ra->path,
			  (unsigned long long)s->off, regfs_err_str(&e));
	pthread_mutex_lock(&ra->mu);
	ra->inflight--;
	s->state = rc ? S_FAILED : S_READY;
	if (!rc)
		s->len = got;
	bool st = !rc && !ra->closed && ra->se && s->len > RA_HEAD;
	s->busy = st;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
	if (st)
		store(ra, s);
	ra_put(ra);
}

/* ---- the open file ---- */

struct ra *ra_new(struct regfs_client *cl, struct fs_stats *st, struct fuse_session *se,
		  const char *repo, const char *digest, uint64_t size, fuse_ino_t ino,
		  const char *path)
{
	struct ra *ra = calloc(1, sizeof *ra);
	if (!ra)
		return NULL;
	ra->client = cl;
	ra->st = st;
	ra->se = se;
	ra->repo = strdup(repo);
	ra->path = strdup(path);
	if (!ra->repo || !ra->path) {
		free(ra->repo);
		free(ra->path);
		free(ra);
		return NULL;
	}
	snprintf(ra->digest, sizeof ra->digest, "%s", digest);
	ra->size = size;
	ra->ino = ino;
	ra->chunk = RA_FIRST;
	atomic_store(&ra->ref, 1);
	pthread_mutex_init(&ra->mu, NULL);
	pthread_cond_init(&ra->cv, NULL);
	return ra;
}

static void ra_put(struct ra *ra)
{
	if (atomic_fetch_sub(&ra->ref, 1) != 1)
		return;
	for (int i = 0; i < RA_SLOTS; i++)
		if (ra->s[i].state != S_FREE)
			slot_free(&ra->s[i]);
	pthread_mutex_destroy(&ra->mu);
	pthread_cond_destroy(&ra->cv);
	free(ra->repo);
	free(ra->path);
	free(ra);
}

void ra_close(struct ra *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->mu);
	ra->closed = true; /* no new prefetches, no stores */
	log_debug("read-ahead %s: %llu reads from the kernel, %llu gap fetches, %llu prefetches, "
		  "%llu bytes stored in the page cache", ra->path, (unsigned long long)ra->n_reads,
		  (unsigned long long)ra->n_gaps, (unsigned long long)ra->n_prefetch,
		  (unsigned long long)atomic_load(&ra->stored));
	pthread_mutex_unlock(&ra->mu);
	ra_put(ra);
}

/* Fetches the gap at pos by the calling thread (lock held on entry and
 * exit; dropped meanwhile). 0, -EAGAIN (no slot: wait), or the error. */
static int fill_gap(struct ra *ra, uint64_t pos, uint64_t off, uint64_t end, bool seq)
{
	uint64_t nx = next_start(ra, pos);
	size_t len = RA_FIRST;
	if (end - pos > len)
		len = (size_t)(end - pos);
	if (nx - pos < len)
		len = (size_t)(nx - pos);
	int i = slot_new(ra, pos, len, false, off, end);
	if (i < 0)
		return -EAGAIN;
	ra->n_gaps++;
	struct slot *s = &ra->s[i];
	if (seq && s->off + s->len > ra->frontier)
		ra->frontier = s->off + s->len;
	if (seq)
		advance(ra, off); /* the chunks after it start now, in parallel */
	pthread_mutex_unlock(&ra->mu);
	loop_may_block();
	size_t got = 0;
	struct regfs_err e = {0};
	int rc = fetch(ra, s->off, s->len, s->buf, &got, &e);
	if (rc) {
		char what[400];
		snprintf(what, sizeof what, "reading blob %s@%s", ra->repo, ra->digest);
		rc = fs_client_errno(rc, &e, what);
	}
	pthread_mutex_lock(&ra->mu);
	if (rc)
		slot_free(s);
	else {
		s->state = S_READY;
		s->len = got;
	}
	pthread_cond_broadcast(&ra->cv);
	return rc;
}

/* Replies with [off, end) if every byte is in ready slots (1), else says
 * where the first missing byte is (*gap) or that a fetch is in flight. */
static int try_reply(struct ra *ra, fuse_req_t req, uint64_t off, uint64_t end, uint64_t *gap,
		     bool *inflight)
{
	struct iovec iov[RA_SLOTS];
	int n = 0;
	for (uint64_t pos = off; pos < end;) {
		int i = find_cover(ra, pos);
		if (i >= 0 && ra->s[i].state == S_FAILED) {
			slot_free(&ra->s[i]); /* a failed prefetch: fetch it again */
			i = -1;
		}
		if (i < 0 || n == RA_SLOTS) {
			*gap = pos;
			return 0;
		}
		struct slot *s = &ra->s[i];
		if (s->state == S_FETCH) {
			*inflight = true;
			return 0;
		}
		uint64_t stop = s->off + s->len < end ? s->off + s->len : end;
		iov[n].iov_base = s->buf + (pos - s->off);
		iov[n].iov_len = (size_t)(stop - pos);
		n++;
		pos = stop;
	}
	fuse_reply_iov(req, iov, n);
	return 1;
}

void ra_read(struct ra *ra, fuse_req_t req, size_t size, off_t off_)
{
	uint64_t off = (uint64_t)off_;
	fs_op_begin("read", ra->path, NULL);
	if (off >= ra->size)
		return (void)fuse_reply_buf(req, NULL, 0);
	uint64_t end = size > ra->size - off ? ra->size : off + size;
	pthread_mutex_lock(&ra->mu);
	ra->n_reads++;
	bool seq = is_seq(ra, off);
	if (!seq)
		forget_window(ra, off, end);
	ra->last_end = seq && ra->last_end > end ? ra->last_end : end;
	int rc = 0, fills = 0;
	for (;;) {
		uint64_t gap = 0;
		bool inflight = false;
		if (try_reply(ra, req, off, end, &gap, &inflight))
			break;
		if (!inflight) {
			/* A read spans at most a few slots: more fills mean slots
			 * are being evicted under us (16 concurrent readers of one
			 * file); fail rather than loop. */
			rc = ++fills > RA_SLOTS ? -EIO : fill_gap(ra, gap, off, end, seq);
			if (rc != -EAGAIN) {
				if (rc)
					break;
				continue;
			}
			rc = 0;
		}
		if (seq)
			advance(ra, off);
		bool pending = false;
		for (int i = 0; i < RA_SLOTS && !pending; i++)
			pending = ra->s[i].state == S_FETCH || ra->s[i].busy;
		if (!pending) { /* no slot and nothing that will free one: out of memory */
			rc = -ENOMEM;
			break;
		}
		loop_may_block();
		pthread_cond_wait(&ra->cv, &ra->mu); /* a fetch or store ended */
	}
	if (rc == 0 && seq)
		advance(ra, off);
	pthread_mutex_unlock(&ra->mu);
	if (rc)
		fuse_reply_err(req, -rc);
}
