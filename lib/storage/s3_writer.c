/* s3_writer.c — the S3 driver's writer (append/resume across restarts and
 * instances), built on S3 multipart uploads. All state is in the bucket.
 *
 * - Data is buffered up to `chunksize` and sent as parts of exactly that
 *   size (S3 wants >= 5 MiB for every part but the last). A full part is
 *   uploaded by a background thread while the next one fills (two buffers),
 *   so receiving from the client and sending to S3 overlap.
 * - close() without commit makes what was written an ordinary object at the
 *   key: the buffered tail goes up as the last part and the multipart upload
 *   is completed (or, when everything still fits in the buffer, one PUT).
 *   So the data written so far is readable — the registry re-reads it to
 *   rebuild the digest state when another instance continues the upload —
 *   and nothing stays in this process's memory.
 * - Writer(append=true) continues:
 *     b) the object at the key (what close() above leaves), if there is one;
 *     a) else an in-progress multipart upload for the key (what
 *        distribution's S3 driver leaves between requests): its parts are
 *        learnt with ListParts.
 *   S3 cannot append to an object and no part may follow a part under 5 MiB,
 *   so on the first write of a resumed session the existing bytes are seeded
 *   into a fresh upload: server-side copied as its first part(s)
 *   (UploadPartCopy) when they are >= 5 MiB, else read back into the buffer.
 *   In case a) with a small last part, the upload is completed first, as
 *   distribution does. A resumed session that writes nothing costs nothing.
 * - commit() is the same as close() but final; cancel() aborts the upload
 *   and deletes the object; publish() copies the committed object to its
 *   destination only if nothing is there (HEAD, then a copy pinned to the
 *   committed ETag with If-None-Match: *) and deletes it.
 * - A resumed writer holds the key's lease (s3_lease.c) from open to close
 *   and renews it while writing and before completing, so no two requests
 *   write one upload. */
#include "s3_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

struct s3_writer {
	struct regfs_writer w;
	struct s3_client *c;
	char *key;
	char *upload_id;       /* the multipart upload of this session, or NULL */
	struct s3_part *parts;
	int n_parts, cap_parts;
	uint64_t uploaded;     /* sum of the parts' sizes */
	char *buf;             /* chunksize bytes being filled */
	size_t blen;
	char *spare;           /* the other buffer, while a part uploads from it */
	struct part_job {      /* at most one part uploads in the background */
		pthread_t th;
		bool active;
		struct s3_client *c;
		const char *key, *upload_id;
		char *buf;
		size_t len;
		int num, ret;
		struct s3_part part;
		struct regfs_err err;
	} job;
	uint64_t base;         /* bytes of the object at the key not yet seeded */
	bool complete_first;   /* resumed an upload whose last part is small */
	bool dirty;            /* something to write out at close/commit */
	bool done;             /* committed or cancelled */
	bool committed, published;
	char etag[128];        /* of the object at the key (as resumed or as written) */
	struct s3_lease lease;
};

static int add_part(struct s3_writer *w, const struct s3_part *p, struct regfs_err *err)
{
	if (w->n_parts == w->cap_parts) {
		int cap = w->cap_parts ? w->cap_parts * 2 : 16;
		struct s3_part *np = realloc(w->parts, (size_t)cap * sizeof *np);
		if (!np)
			return s3_nomem(err);
		w->parts = np;
		w->cap_parts = cap;
	}
	w->parts[w->n_parts++] = *p;
	w->uploaded += p->size;
	return 0;
}

static int upload_part(struct s3_client *c, const char *key, const char *upload_id, int num,
		       const char *buf, size_t len, struct s3_part *out, struct regfs_err *err)
{
	char q[512];
	s3_upload_query(q, sizeof q, num, upload_id);
	struct s3_req rq = {.method = "PUT", .key = key, .query = q, .body = buf, .body_len = len,
			    .has_body = true};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && (rs.status != 200 || !rs.etag[0]))
		ret = s3_fail(c, &rs, "uploading a part", key, err);
	if (ret == 0) {
		*out = (struct s3_part){.num = num, .size = len};
		snprintf(out->etag, sizeof out->etag, "%s", rs.etag);
	}
	s3_resp_free(&rs);
	return ret;
}

static void *job_run(void *ud)
{
	struct part_job *j = ud;
	j->ret = upload_part(j->c, j->key, j->upload_id, j->num, j->buf, j->len, &j->part, &j->err);
	return NULL;
}

/* Waits for the background part, if any, and records it. */
static int job_wait(struct s3_writer *w, struct regfs_err *err)
{
	if (!w->job.active)
		return 0;
	pthread_join(w->job.th, NULL);
	w->job.active = false;
	if (w->job.ret < 0)
		return regfs_errf(err, w->job.ret, "%s", regfs_err_str(&w->job.err));
	return add_part(w, &w->job.part, err);
}

static int next_num(struct s3_writer *w)
{
	if (w->job.active)
		return w->job.num + 1;
	return w->n_parts ? w->parts[w->n_parts - 1].num + 1 : 1;
}

/* Before a part goes up: the previous one is recorded and the session has
 * its multipart upload. */
static int ready_for_part(struct s3_writer *w, struct regfs_err *err)
{
	int ret = job_wait(w, err);
	if (ret == 0 && !w->upload_id)
		ret = s3_mpu_create(w->c, w->key, &w->upload_id, err);
	return ret;
}

/* Sends the buffer as the next part (any size; only the last may be small),
 * synchronously. */
static int flush_part(struct s3_writer *w, struct regfs_err *err)
{
	int ret = ready_for_part(w, err);
	if (ret < 0)
		return ret;
	struct s3_part p;
	ret = upload_part(w->c, w->key, w->upload_id, next_num(w), w->buf, w->blen, &p, err);
	if (ret == 0)
		ret = add_part(w, &p, err);
	if (ret == 0)
		w->blen = 0;
	return ret;
}

/* Hands the full buffer to the background thread and switches buffers. */
static int flush_part_async(struct s3_writer *w, struct regfs_err *err)
{
	int ret = ready_for_part(w, err);
	if (ret < 0)
		return ret;
	if (!w->spare)
		w->spare = malloc((size_t)w->c->chunksize);
	if (!w->spare)
		return flush_part(w, err);
	struct part_job *j = &w->job;
	memset(&j->err, 0, sizeof j->err);
	j->c = w->c;
	j->key = w->key;
	j->upload_id = w->upload_id;
	j->buf = w->buf;
	j->len = w->blen;
	j->num = next_num(w);
	if (pthread_create(&j->th, NULL, job_run, j) != 0)
		return flush_part(w, err);
	j->active = true;
	w->buf = w->spare;
	w->spare = j->buf;
	w->blen = 0;
	return 0;
}

static void reset_upload(struct s3_writer *w)
{
	free(w->upload_id);
	w->upload_id = NULL;
	w->n_parts = 0;
	w->uploaded = 0;
}

/* Moves the existing object's bytes into this session's upload or buffer. */
static int seed(struct s3_writer *w, struct regfs_err *err)
{
	uint64_t total = w->base;
	int ret;
	if (total < S3_MIN_PART) {
		struct s3_req rq = {.method = "GET", .key = w->key};
		struct s3_resp rs;
		ret = s3_request(w->c, &rq, &rs, err);
		if (ret == 0 && rs.status != 200)
			ret = s3_fail(w->c, &rs, "re-reading an upload's data", w->key, err);
		if (ret == 0 && rs.len != total)
			ret = regfs_errf(err, -EIO, "S3 upload \"%s\" changed while resuming (%zu bytes, expected %llu): "
					 "was it written by two clients at once?",
					 w->key, rs.len, (unsigned long long)total);
		if (ret == 0) {
			memcpy(w->buf, rs.body, rs.len);
			w->blen = rs.len;
		}
		s3_resp_free(&rs);
	} else {
		ret = s3_mpu_create(w->c, w->key, &w->upload_id, err);
		/* Copy parts of copy_chunk bytes; the remainder joins the last one
		 * so that no copied part is under 5 MiB. */
		uint64_t chunk = w->c->copy_chunk, from = 0;
		for (int num = 1; ret == 0 && from < total; num++) {
			uint64_t n = total - from <= chunk + chunk / 2 ? total - from : chunk;
			struct s3_part p = {.size = n};
			ret = s3_mpu_copy_part(w->c, w->key, w->upload_id, num, w->key, (int64_t)from,
					       (int64_t)(from + n - 1), w->etag, &p, err);
			if (ret == 0)
				ret = add_part(w, &p, err);
			from += n;
		}
	}
	if (ret == 0)
		w->base = 0;
	return ret;
}

/* First write of a resumed session: make appending possible. */
static int prepare_append(struct s3_writer *w, struct regfs_err *err)
{
	int ret = 0;
	if (w->complete_first) {
		ret = s3_lease_renew(w->c, &w->lease, err);
		if (ret == 0)
			ret = s3_mpu_complete(w->c, w->key, w->upload_id, w->parts, w->n_parts,
					      &(struct s3_cond){.etag_out = w->etag}, err);
		if (ret < 0)
			return ret;
		w->base = w->uploaded;
		reset_upload(w);
		w->complete_first = false;
	}
	if (w->base > 0)
		ret = seed(w, err);
	return ret;
}

static ssize_t w_write(struct regfs_writer *rw, const void *buf, size_t len, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	if (w->done)
		return regfs_errf(err, -EINVAL, "write to a committed or cancelled S3 upload \"%s\"", w->key);
	if (len == 0)
		return 0;
	int lr = s3_lease_renew(w->c, &w->lease, err);
	if (lr < 0)
		return lr;
	if (!w->dirty) {
		int ret = prepare_append(w, err);
		if (ret < 0)
			return ret;
		w->dirty = true;
	}
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		size_t room = (size_t)w->c->chunksize - w->blen;
		size_t n = left < room ? left : room;
		memcpy(w->buf + w->blen, p, n);
		w->blen += n;
		p += n;
		left -= n;
		if (w->blen == w->c->chunksize) {
			int ret = flush_part_async(w, err);
			if (ret < 0)
				return ret;
		}
	}
	return (ssize_t)len;
}

static uint64_t w_size(struct regfs_writer *rw)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	return w->base + w->uploaded + (w->job.active ? w->job.len : 0) + w->blen;
}

/* Makes everything written an object at the key. final: for commit (a
 * resumed in-progress upload nobody wrote to is completed too). */
static int finish(struct s3_writer *w, bool final, struct regfs_err *err)
{
	int jr = job_wait(w, err);
	if (jr < 0)
		return jr;
	if (!w->dirty) {
		/* Resumed and untouched: the object (case b) is already right; an
		 * in-progress upload (case a) stays resumable unless committing. */
		if (!final || !w->upload_id)
			return 0;
		int r = s3_lease_renew(w->c, &w->lease, err);
		return r ? r : s3_mpu_complete(w->c, w->key, w->upload_id, w->parts, w->n_parts,
					       &(struct s3_cond){.etag_out = w->etag}, err);
	}
	/* last check that no other request took the upload over */
	int ret = s3_lease_renew(w->c, &w->lease, err);
	if (ret < 0)
		return ret;
	if (!w->upload_id) {
		/* Everything is in the buffer: one plain PUT. */
		struct s3_hdr enc = {"x-amz-server-side-encryption", "AES256"};
		struct s3_req rq = {.method = "PUT", .key = w->key, .body = w->buf, .body_len = w->blen,
				    .has_body = true, .hdrs = &enc, .n_hdrs = w->c->encrypt ? 1 : 0};
		struct s3_resp rs;
		ret = s3_request(w->c, &rq, &rs, err);
		if (ret == 0 && rs.status != 200)
			ret = s3_fail(w->c, &rs, "writing", w->key, err);
		if (ret == 0)
			snprintf(w->etag, sizeof w->etag, "%s", rs.etag);
		s3_resp_free(&rs);
	} else {
		ret = 0;
		/* S3 refuses to complete an upload without parts: send even an empty one. */
		if (w->blen > 0 || w->n_parts == 0)
			ret = flush_part(w, err);
		if (ret == 0)
			ret = s3_mpu_complete(w->c, w->key, w->upload_id, w->parts, w->n_parts,
					      &(struct s3_cond){.etag_out = w->etag}, err);
	}
	if (ret == 0)
		w->dirty = false;
	return ret;
}

static int w_commit(struct regfs_writer *rw, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	if (w->done)
		return regfs_errf(err, -EINVAL, "S3 upload \"%s\" was already committed or cancelled", w->key);
	int ret = finish(w, true, err);
	if (ret == 0)
		w->done = w->committed = true;
	return ret;
}

/* 1 when an object exists at key kd, 0 when not, <0 on errors. */
static int key_exists(struct s3_client *c, const char *kd, struct regfs_err *err)
{
	struct s3_req rq = {.method = "HEAD", .key = kd};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0)
		ret = rs.status == 200 ? 1 : rs.status == 404 ? 0 : s3_fail(c, &rs, "checking", kd, err);
	s3_resp_free(&rs);
	return ret;
}

static int w_publish(struct regfs_writer *rw, const char *dst, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	if (!w->committed || w->published)
		return regfs_errf(err, -EINVAL, "S3 upload \"%s\": publish before commit or twice", w->key);
	char *kd = s3_key(w->c, dst);
	if (!kd)
		return s3_nomem(err);
	/* S3 servers that ignore If-None-Match on copies (Ceph RGW 16) leave a
	 * window between this HEAD and the copy; a publish in it copies the same
	 * verified bytes (the source is pinned to its ETag), so the object keeps
	 * its content either way. */
	int ret = key_exists(w->c, kd, err);
	if (ret == 0) {
		struct s3_cond cond = {.if_none_match = true, .src_etag = w->etag};
		ret = s3_copy_object(w->c, w->key, kd, w_size(rw), &cond, err);
		/* 412 on a server that honours If-None-Match: the blob appeared */
		if (ret == -ESTALE && key_exists(w->c, kd, NULL) == 1)
			ret = 1;
	}
	if (ret == 1)
		ret = regfs_errf(err, -EEXIST, "\"%s\" already exists in S3 bucket \"%s\"", kd,
				 w->c->bucket);
	if (ret == 0) {
		w->published = true;
		s3_delete_key(w->c, w->key, NULL);
	}
	free(kd);
	return ret;
}

static int w_cancel(struct regfs_writer *rw, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	job_wait(w, NULL);
	w->blen = 0;
	w->done = true;
	int ret = w->upload_id ? s3_mpu_abort(w->c, w->key, w->upload_id, err) : 0;
	int r2 = s3_delete_req(w->c, w->key, NULL, "deleting a cancelled upload",
			       ret < 0 ? NULL : err);
	return ret < 0 ? ret : r2;
}

static void w_free(struct s3_writer *w)
{
	job_wait(w, NULL);
	s3_lease_drop(w->c, &w->lease);
	free(w->spare);
	free(w->key);
	free(w->upload_id);
	free(w->parts);
	free(w->buf);
	free(w);
}

static int w_close(struct regfs_writer *rw, struct regfs_err *err)
{
	struct s3_writer *w = (struct s3_writer *)rw;
	int ret = w->done ? 0 : finish(w, false, err);
	/* another request owns the upload now: our parts are nobody's */
	if (ret == -EBUSY && w->upload_id)
		s3_mpu_abort(w->c, w->key, w->upload_id, NULL);
	w_free(w);
	return ret;
}

static int find_cb(const char *key, const char *id, void *ud)
{
	(void)key;
	char **found = ud;
	/* Uploads come in initiation order: the last one is the newest. */
	free(*found);
	*found = strdup(id);
	return *found ? 0 : -ENOMEM; /* resume() says it */
}

static int list_parts(struct s3_writer *w, struct regfs_err *err)
{
	char *id = s3_qenc(w->upload_id);
	int marker = 0, ret = 0;
	for (int page = 0; page < 100 && ret == 0; page++) {
		char q[512];
		snprintf(q, sizeof q, "uploadId=%s&part-number-marker=%d", id ? id : "", marker);
		struct s3_req rq = {.method = "GET", .key = w->key, .query = q};
		struct s3_resp rs;
		ret = s3_request(w->c, &rq, &rs, err);
		if (ret < 0)
			break;
		if (rs.status != 200) {
			ret = s3_fail(w->c, &rs, "listing an upload's parts", w->key, err);
			s3_resp_free(&rs);
			break;
		}
		size_t pos = 0, n;
		const char *in;
		while (ret == 0 && s3_xml_elem(rs.body, rs.len, "Part", &pos, &in, &n)) {
			char *num = s3_xml_text(in, n, "PartNumber"), *etag = s3_xml_text(in, n, "ETag"),
			     *size = s3_xml_text(in, n, "Size");
			if (num && etag && size) {
				struct s3_part p = {.num = atoi(num), .size = strtoull(size, NULL, 10)};
				snprintf(p.etag, sizeof p.etag, "%s", etag);
				ret = add_part(w, &p, err);
			}
			free(num);
			free(etag);
			free(size);
		}
		char *trunc = s3_xml_text(rs.body, rs.len, "IsTruncated");
		char *next = s3_xml_text(rs.body, rs.len, "NextPartNumberMarker");
		bool more = trunc && strcmp(trunc, "true") == 0 && next;
		marker = next ? atoi(next) : 0;
		free(trunc);
		free(next);
		s3_resp_free(&rs);
		if (!more)
			break;
	}
	free(id);
	return ret;
}

static int resume(struct s3_writer *w, struct regfs_err *err)
{
	/* b) first: the object a previous session's close() left. Our sessions
	 * always end with an object, so an in-progress upload next to one is
	 * what a crashed session left (parts the client never got an answer
	 * for); it is ignored here and aborted when the upload is deleted. */
	struct s3_req rq = {.method = "HEAD", .key = w->key};
	struct s3_resp rs;
	int ret = s3_request(w->c, &rq, &rs, err);
	long status = rs.status;
	if (ret == 0 && status == 200) {
		w->base = rs.content_length;
		snprintf(w->etag, sizeof w->etag, "%s", rs.etag);
	}
	else if (ret == 0 && status != 404)
		ret = s3_fail(w->c, &rs, "resuming an upload", w->key, err);
	s3_resp_free(&rs);
	if (ret < 0 || status == 200)
		return ret;
	/* a) an upload distribution's driver left in progress */
	char *id = NULL;
	ret = s3_mpu_list(w->c, w->key, true, find_cb, &id, err);
	if (ret == -ENOMEM)
		s3_nomem(err);
	if (ret < 0) {
		free(id);
		return ret;
	}
	if (!id)
		return regfs_errf(err, -ENOENT, "no upload in progress at \"%s\" in S3 bucket \"%s\"",
				  w->key, w->c->bucket);
	w->upload_id = id;
	ret = list_parts(w, err);
	w->complete_first = ret == 0 && w->n_parts > 0 && w->parts[w->n_parts - 1].size < S3_MIN_PART;
	return ret;
}

int s3_writer_open(struct s3_client *c, const char *path, bool append, struct regfs_writer **out,
		   struct regfs_err *err)
{
	*out = NULL;
	struct s3_writer *w = calloc(1, sizeof *w);
	if (!w)
		return s3_nomem(err);
	w->c = c;
	w->key = s3_key(c, path);
	w->buf = malloc((size_t)c->chunksize);
	if (!w->key || !w->buf) {
		w_free(w);
		return s3_nomem(err);
	}
	w->w = (struct regfs_writer){.write = w_write, .size = w_size, .commit = w_commit,
				     .cancel = w_cancel, .publish = w_publish, .close = w_close};
	/* A new writer truncates: even with nothing written, close() leaves an
	 * empty object, so that the upload can be resumed. */
	w->dirty = !append;
	/* A new object (append=false) is made under a fresh name nobody else
	 * knows yet (storage.h): only a resumed one needs the lease. */
	int ret = append ? s3_lease_take(c, w->key, &w->lease, err) : 0;
	if (ret == 0 && append)
		ret = resume(w, err);
	if (ret < 0) {
		w_free(w);
		return ret;
	}
	*out = &w->w;
	return 0;
}
