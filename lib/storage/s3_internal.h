/* s3_internal.h — shared by the S3 driver's files (not a public interface):
 *   s3_http.c    the client: endpoint, curl handle pool, SigV4 signing,
 *                retries, error messages
 *   s3_xml.c     the few XML shapes S3 answers with
 *   s3_multipart.c  multipart-upload calls (create, copy part, complete,
 *                abort, list) and server-side copies (single or multipart)
 *   s3_reader.c  the streaming reader
 *   s3_writer.c  the writer (append/resume) built on them
 *   s3_lease.c   the session lock of a writer
 *   s3.c         the storage-driver operations (paths already checked by
 *                the base, storage.c) */
#ifndef REGFS_S3_INTERNAL_H
#define REGFS_S3_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include <regfs/err.h>
#include <regfs/http.h>
#include <regfs/storage.h>

#define S3_MIN_PART ((uint64_t)5 << 20) /* S3's minimum size of a non-last part */

struct s3_client {
	char *endpoint;     /* "http://127.0.0.1:7480": for messages and URLs */
	char *base_url;     /* scheme://host[:port][/bucket] requests go to */
	char *host;         /* Host header value */
	char *path_prefix;  /* "/bucket" (path-style) or "" (virtual-hosted) */
	char *bucket;
	char *root;         /* key prefix without leading or trailing "/"; "" for none */
	char *access_key, *secret_key, *region;
	char *ca_bundle;    /* AWS_CA_BUNDLE, only for https */
	bool https, skipverify, encrypt;
	uint64_t chunksize, copy_threshold, copy_chunk;

	struct regfs_http http;     /* connection cache and handle pool (lib/http) */
};

struct s3_hdr {
	const char *name, *value;
};

struct s3_req {
	const char *method;
	const char *key;            /* object key (no leading "/"); NULL/"" = the bucket */
	const char *query;          /* URI-encoded query without "?", or NULL */
	const struct s3_hdr *hdrs;  /* extra headers (signed too) */
	size_t n_hdrs;
	const void *body;           /* request body (copied by nobody; must outlive the call) */
	size_t body_len;
	bool has_body;              /* send body (even empty) with Content-Length */
	/* When set, a 2xx response body is passed here as it arrives instead of
	 * being collected (return len to go on, anything else aborts). */
	size_t (*sink)(const char *data, size_t len, void *ud);
	void *sink_ud;
	bool no_retry;              /* one attempt (the caller resumes itself) */
};

struct s3_resp {
	long status;
	char *body;                 /* malloc'd, NUL-terminated; NULL when empty */
	size_t len;
	char etag[128];             /* ETag header, quotes kept */
	uint64_t content_length;
	uint64_t range_total;       /* Content-Range's "/<total>"; 0 when absent or "*" */
	bool has_range_total;
	int64_t last_modified;      /* Last-Modified header, epoch seconds */
	int attempts;
};

/* Fills c from the config (credentials from the environment when unset).
 * -EINVAL with a message naming the key when the config is unusable. */
struct regfs_s3_config;
int s3_client_init(struct s3_client *c, const struct regfs_s3_config *cfg, struct regfs_err *err);
void s3_client_cleanup(struct s3_client *c);

/* Sends a signed request, retrying transport failures and 5xx with backoff
 * (bounded). Returns 0 when an HTTP answer arrived (any status, in
 * rs->status), or -EIO naming the unreachable endpoint. rs is zeroed first;
 * free with s3_resp_free. */
int s3_request(struct s3_client *c, const struct s3_req *rq, struct s3_resp *rs,
	       struct regfs_err *err);
void s3_resp_free(struct s3_resp *rs);

/* Turns a non-2xx answer into an errno and a message a user can act on:
 * 404 -> -ENOENT (missing bucket -> -EIO naming it), 403 -> -EACCES naming the
 * access key and endpoint, else -EIO. `op` names the operation. */
int s3_fail(struct s3_client *c, const struct s3_resp *rs, const char *op, const char *key,
	    struct regfs_err *err);

/* Fills err (when still empty) for a failed allocation; returns -ENOMEM. */
static inline int s3_nomem(struct regfs_err *err)
{
	return regfs_errf(err, -ENOMEM, "out of memory");
}

/* Storage path ("/docker/...") -> object key ("root/docker/..."), malloc'd. */
char *s3_key(struct s3_client *c, const char *path);
/* URI-encodes a query value (everything but unreserved characters). */
char *s3_qenc(const char *s);
/* "/bucket/key", URI-encoded, for x-amz-copy-source. */
char *s3_copy_source(struct s3_client *c, const char *key);

/* ---- s3_xml.c: the S3 answers we read are flat enough for a scanner ---- */

/* Finds the next <tag>…</tag> at or after *pos in s[0..len); sets *inner to
 * its content and advances *pos past the closing tag. false when none. */
bool s3_xml_elem(const char *s, size_t len, const char *tag, size_t *pos, const char **inner,
		 size_t *inner_len);
/* Text of the first <tag> in s[0..len), entities decoded; malloc'd or NULL. */
char *s3_xml_text(const char *s, size_t len, const char *tag);
/* XML-escapes s (&, <, >, ", '); malloc'd. */
char *s3_xml_escape(const char *s);
/* "2009-10-12T17:50:30.000Z" -> epoch seconds (0 when unparsable). */
int64_t s3_iso8601(const char *s);

/* ---- s3_reader.c ---- */
int s3_reader_open(struct s3_client *c, const char *path, uint64_t offset,
		   struct regfs_reader **out, struct regfs_err *err);

/* ---- s3_writer.c ---- */
int s3_writer_open(struct s3_client *c, const char *path, bool append, struct regfs_writer **out,
		   struct regfs_err *err);
/* ---- s3_multipart.c ---- */
/* The query naming a multipart upload: "uploadId=<id>", with part > 0
 * "partNumber=<part>&uploadId=<id>" (URI-encoded, truncated to n). */
void s3_upload_query(char *q, size_t n, int part, const char *upload_id);
/* Multipart calls the writer and move() build on. */
int s3_mpu_create(struct s3_client *c, const char *key, char **upload_id, struct regfs_err *err);
int s3_mpu_abort(struct s3_client *c, const char *key, const char *upload_id, struct regfs_err *err);
struct s3_part {
	int num;
	char etag[128];
	uint64_t size;
};
/* Conditions and results of a completion or copy (all optional). */
struct s3_cond {
	bool if_none_match;      /* send If-None-Match: * (create only); 412 -> -EEXIST */
	const char *src_etag;    /* copies: the source must still have this ETag (-ESTALE) */
	char *etag_out;          /* [128]: the ETag of the object written */
};
int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const struct s3_part *parts, int n, const struct s3_cond *cond,
		    struct regfs_err *err);
/* UploadPartCopy of bytes [from, to] (inclusive) of src_key; to < 0 = whole.
 * src_etag (may be NULL): only from that version of the source (-ESTALE). */
int s3_mpu_copy_part(struct s3_client *c, const char *key, const char *upload_id, int num,
		     const char *src_key, int64_t from, int64_t to, const char *src_etag,
		     struct s3_part *out, struct regfs_err *err);
/* Server-side copy of src_key (size bytes) to dst_key: one CopyObject up to
 * copythreshold, else a parallel multipart copy (s3_multipart.c). */
int s3_copy_object(struct s3_client *c, const char *src, const char *dst, uint64_t size,
		   const struct s3_cond *cond, struct regfs_err *err);
/* DELETE of one key (with `query`, e.g. an uploadId, or NULL); a missing key
 * is not an error, any other failure is one naming `op`. */
int s3_delete_req(struct s3_client *c, const char *key, const char *query, const char *op,
		  struct regfs_err *err);
/* s3_delete_req for the object itself. */
int s3_delete_key(struct s3_client *c, const char *key, struct regfs_err *err);

/* ---- s3_lease.c: the session lock of a writer ---- */
struct s3_lease {
	char *key;               /* "<key>.lock" */
	char token[40];          /* ours, in the lease body */
	char etag[128];          /* of our lease object, for conditional renewals */
	int64_t renewed;         /* when we last wrote it */
};
/* Takes the lease on `key` (-EBUSY when another writer holds an unexpired one). */
int s3_lease_take(struct s3_client *c, const char *key, struct s3_lease *l, struct regfs_err *err);
/* Renews it when older than a quarter of its life (0 at once otherwise, and
 * for a writer without a lease). -EBUSY when it was taken over (expired,
 * another writer has it now). */
int s3_lease_renew(struct s3_client *c, struct s3_lease *l, struct regfs_err *err);
/* Deletes it if still ours; frees l->key. */
void s3_lease_drop(struct s3_client *c, struct s3_lease *l);
/* Calls cb(key, upload_id) for each in-progress upload whose key starts with
 * prefix (is exactly prefix when `exact`), oldest first; a negative return
 * from cb stops and is returned. */
int s3_mpu_list(struct s3_client *c, const char *prefix, bool exact,
		int (*cb)(const char *key, const char *id, void *ud), void *ud,
		struct regfs_err *err);
/* Aborts every multipart upload whose key starts with prefix (upload purging);
 * returns how many, or a negative errno. */
int s3_mpu_abort_prefix(struct s3_client *c, const char *prefix, struct regfs_err *err);

#endif
