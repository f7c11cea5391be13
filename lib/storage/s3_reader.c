/* s3_reader.c — the S3 driver's reader: one streaming GET per reader, resumed
 * after failures.
 *
 * A thread runs GetObject with "Range: bytes=<offset>-" and feeds a ring
 * buffer the caller's read() drains, so bytes flow from S3 to the client
 * continuously, as one request. When the connection fails mid-object the
 * thread resumes with a new range from the first byte not yet received
 * (bounded attempts), so a retry never repeats or loses bytes. */
#include "s3_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each reader buffers up to this much between S3 and its caller. */
#define READ_WINDOW ((size_t)4 << 20)

#define READ_ATTEMPTS 5

struct s3_reader {
	struct regfs_reader r;
	struct s3_client *c;
	char *key;
	uint64_t offset;          /* of the next byte the thread receives */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *ring;
	size_t cap, head, count;  /* ring: read position, bytes held */
	bool known;               /* the first answer arrived (open() waits for it) */
	bool eof, closing;
	const struct s3_resp *live; /* the thread's current answer (its headers) */
	uint64_t from;            /* where the current answer starts */
	int ret;                  /* thread's failure */
	struct regfs_err err;
	pthread_t th;
};

/* The object's size from the first successful answer's headers (under mu):
 * Content-Range's total, or Content-Length of a whole-object 200. */
static void learn_size(struct s3_reader *rd, const struct s3_resp *rs)
{
	if (rd->r.size_known || !rs)
		return;
	if (rs->has_range_total) {
		rd->r.size = rs->range_total;
		rd->r.size_known = true;
	} else if (rd->from == 0) {
		rd->r.size = rs->content_length;
		rd->r.size_known = true;
	}
}

static size_t ring_sink(const char *data, size_t len, void *ud)
{
	struct s3_reader *rd = ud;
	size_t done = 0;
	pthread_mutex_lock(&rd->mu);
	if (!rd->known)
		learn_size(rd, rd->live); /* headers are in: the body started */
	rd->known = true;
	while (done < len) {
		while (rd->count == rd->cap && !rd->closing)
			pthread_cond_wait(&rd->cv, &rd->mu);
		if (rd->closing)
			break;
		size_t tail = (rd->head + rd->count) % rd->cap;
		size_t room = rd->cap - rd->count;
		size_t n = len - done < room ? len - done : room;
		if (n > rd->cap - tail)
			n = rd->cap - tail;
		memcpy(rd->ring + tail, data + done, n);
		rd->count += n;
		rd->offset += n;
		done += n;
		pthread_cond_broadcast(&rd->cv);
	}
	pthread_mutex_unlock(&rd->mu);
	return done;
}

static void *stream(void *ud)
{
	struct s3_reader *rd = ud;
	int ret = 0, failures = 0;
	bool eof = false;
	struct regfs_err err = {0};
	while (!eof && ret == 0) {
		pthread_mutex_lock(&rd->mu);
		uint64_t from = rd->offset;
		bool closing = rd->closing;
		pthread_mutex_unlock(&rd->mu);
		if (closing)
			break;
		char range[64];
		snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)from);
		struct s3_hdr h = {"Range", range};
		struct s3_req rq = {.method = "GET", .key = rd->key, .hdrs = &h, .n_hdrs = 1,
				    .sink = ring_sink, .sink_ud = rd, .no_retry = true};
		struct s3_resp rs;
		regfs_err_clear(&err);
		pthread_mutex_lock(&rd->mu);
		rd->live = &rs;
		rd->from = from;
		pthread_mutex_unlock(&rd->mu);
		int r = s3_request(rd->c, &rq, &rs, &err);
		pthread_mutex_lock(&rd->mu);
		rd->live = NULL;
		if (!rd->known && r == 0 && (rs.status == 200 || rs.status == 206))
			learn_size(rd, &rs); /* an empty body: the sink never ran */
		closing = rd->closing;
		uint64_t got = rd->offset - from;
		pthread_mutex_unlock(&rd->mu);
		if (closing) {
			s3_resp_free(&rs);
			break;
		}
		if (r == 0 && (rs.status == 206 || (rs.status == 200 && from == 0))) {
			eof = true;
		} else if (r == 0 && rs.status == 416) {
			eof = true; /* the offset is at (or past) the end */
		} else if (r == 0 && rs.status < 500 && rs.status != 429) {
			ret = s3_fail(rd->c, &rs, "reading", rd->key, &err);
		} else {
			/* Transport failure or 5xx: resume where the bytes stopped. */
			failures = got > 0 ? 1 : failures + 1;
			if (failures >= READ_ATTEMPTS) {
				ret = r < 0 ? r : s3_fail(rd->c, &rs, "reading", rd->key, &err);
			} else {
				struct timespec ts = {0, 100000000L << (failures - 1)};
				nanosleep(&ts, NULL);
			}
		}
		s3_resp_free(&rs);
	}
	pthread_mutex_lock(&rd->mu);
	rd->known = true;
	rd->eof = eof;
	if (ret < 0 && !rd->ret) {
		rd->ret = ret;
		rd->err = err;
	}
	pthread_cond_broadcast(&rd->cv);
	pthread_mutex_unlock(&rd->mu);
	return NULL;
}

static ssize_t r_read(struct regfs_reader *r, void *buf, size_t len, struct regfs_err *err)
{
	struct s3_reader *rd = (struct s3_reader *)r;
	pthread_mutex_lock(&rd->mu);
	while (rd->count == 0 && !rd->eof && !rd->ret)
		pthread_cond_wait(&rd->cv, &rd->mu);
	ssize_t out;
	if (rd->count > 0) {
		size_t n = len < rd->count ? len : rd->count;
		if (n > rd->cap - rd->head)
			n = rd->cap - rd->head;
		memcpy(buf, rd->ring + rd->head, n);
		rd->head = (rd->head + n) % rd->cap;
		rd->count -= n;
		out = (ssize_t)n;
		pthread_cond_broadcast(&rd->cv);
	} else if (rd->ret) {
		out = regfs_errf(err, rd->ret, "%s", regfs_err_str(&rd->err));
	} else {
		out = 0;
	}
	pthread_mutex_unlock(&rd->mu);
	return out;
}

static void r_close(struct regfs_reader *r)
{
	struct s3_reader *rd = (struct s3_reader *)r;
	pthread_mutex_lock(&rd->mu);
	rd->closing = true;
	pthread_cond_broadcast(&rd->cv);
	pthread_mutex_unlock(&rd->mu);
	pthread_join(rd->th, NULL);
	pthread_mutex_destroy(&rd->mu);
	pthread_cond_destroy(&rd->cv);
	free(rd->ring);
	free(rd->key);
	free(rd);
}

int s3_reader_open(struct s3_client *c, const char *path, uint64_t offset,
		   struct regfs_reader **out, struct regfs_err *err)
{
	*out = NULL;
	int ret;
	struct s3_reader *rd = calloc(1, sizeof *rd);
	if (!rd)
		return s3_nomem(err);
	rd->r = (struct regfs_reader){.read = r_read, .close = r_close};
	rd->c = c;
	rd->key = s3_key(rd->c, path);
	rd->offset = offset;
	rd->cap = READ_WINDOW;
	rd->ring = malloc(rd->cap);
	if (!rd->key || !rd->ring) {
		free(rd->key);
		free(rd->ring);
		free(rd);
		return s3_nomem(err);
	}
	pthread_mutex_init(&rd->mu, NULL);
	pthread_cond_init(&rd->cv, NULL);
	if (pthread_create(&rd->th, NULL, stream, rd) != 0) {
		pthread_mutex_destroy(&rd->mu);
		pthread_cond_destroy(&rd->cv);
		free(rd->key);
		free(rd->ring);
		free(rd);
		return regfs_errf(err, -EAGAIN, "cannot start a reader thread for \"%s\"", path);
	}
	/* Wait for the first answer, so a missing object is -ENOENT here. */
	pthread_mutex_lock(&rd->mu);
	while (!rd->known)
		pthread_cond_wait(&rd->cv, &rd->mu);
	ret = rd->count == 0 && rd->ret ? regfs_errf(err, rd->ret, "%s", regfs_err_str(&rd->err)) : 0;
	pthread_mutex_unlock(&rd->mu);
	if (ret < 0) {
		r_close(&rd->r);
		return ret;
	}
	*out = &rd->r;
	return 0;
}
