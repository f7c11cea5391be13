/* client.h — the registry HTTP client (OCI Distribution Spec v1.1), shared by
 * the mount (regfs) and the tests' tools.
 *
 * One request layer under a thin API: auth challenges (Basic; Bearer token
 * flow with a per-scope token cache until expiry), bounded retries with
 * backoff on connection errors and 5xx for idempotent requests, a total
 * per-request timeout, connection reuse (lib/http: a shared connection cache
 * and a pool of handles), and parallel batches on the curl multi interface
 * with bounded concurrency.
 *
 * Thread-safe: one client may be used from every FUSE worker thread at once.
 *
 * Errors: 0 or a negative errno, with struct regfs_err filled (its code is
 * the same errno, its message says what failed and what to do). This table
 * is the client's whole policy; two functions of lib/client/request.c apply
 * it, status_err (HTTP answers) and curl_to_err (transport failures), and
 * callers such as the mount map these errnos on to their own (fs/ does, for
 * FUSE replies) rather than looking at statuses themselves.
 *
 *   HTTP answers, after retries (5xx, 429) and the auth flow (401) ran:
 *   -ENOENT        404 (unknown repository, tag, manifest or blob)
 *   -EACCES        401 or 403 (the message names the credentials' source)
 *   -ENOTSUP       405, or a registry error code UNSUPPORTED; deleting a tag
 *                  on a registry that cannot (400 DIGEST_INVALID)
 *   -EIO           any other status (the message has it and the registry's
 *                  own error code and text)
 *   Transport failures, after retries:
 *   -ECONNREFUSED  cannot connect
 *   -EHOSTUNREACH  cannot resolve the host
 *   -ETIMEDOUT     no complete answer within opts.timeout_s (streamed blob
 *                  bodies: no byte for timeout_s)
 *   -EIO           TLS failed (the message names the server's certificate,
 *                  the verify error and the option that fixes it: --ca-cert,
 *                  --insecure, --client-cert), or any other transport error
 *   -EACCES        the server wanted a TLS client certificate, or refused ours
 *   -EINVAL        a URL curl cannot use
 *   Answers that are not what the spec promises:
 *   -EPROTO        not a registry, a plain-HTTP URL on a TLS port, a body of
 *                  the wrong shape, a pagination loop, a manifest or blob whose
 *                  bytes do not hash to its digest
 *   -EBADMSG       the same mismatch inside a bulk-manifests answer
 *   Before any request: -EINVAL for an invalid name, reference or digest;
 *   -ENOMEM. Writing a fetched blob to the caller's fd: that write's errno. */
#ifndef REGFS_CLIENT_H
#define REGFS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <regfs/digest.h>
#include <regfs/err.h>

/* Credentials a client resolved (regfs_client_creds), to hand to another
 * client for the same registry without looking them up again (a credential
 * helper runs once, not once per client). Strings are malloc'd; pass is a
 * secret: regfs_creds_free wipes it. user NULL: anonymous. */
struct regfs_creds {
	char *user, *pass;
	bool identity;      /* pass is a docker identity token */
	const char *source; /* static text: "--user", "docker config credHelpers", … */
};
void regfs_creds_free(struct regfs_creds *cr);

struct regfs_client_opts {
	const char *url;           /* "http://127.0.0.1:5000" (no trailing /v2) */
	const char *user, *pass;   /* Basic / token credentials; NULL: anonymous, or
	                            * REGFS_USERNAME/REGFS_PASSWORD, or docker config */
	const char *docker_config; /* path of config.json; NULL: ~/.docker/config.json */
	const struct regfs_creds *creds; /* resolved before: used as they are (also
	                            * anonymous), no other source is looked at */
	const char *ca_cert;       /* PEM bundle; NULL: system CAs */
	const char *client_cert;   /* PEM client certificate for mTLS, or NULL */
	const char *client_key;    /* its PEM key; NULL: in client_cert's file */
	bool insecure;             /* skip TLS verification */
	int timeout_s;             /* whole-request timeout; default 10 */
	int max_parallel;          /* concurrent requests in a batch; default 16 */
	size_t manifest_max;       /* a manifest body over this many bytes is refused
	                            * (-EFBIG) as it arrives, never buffered whole;
	                            * 0: 256 MiB */
	size_t list_max;           /* a catalog or tags list of more names than this is
	                            * refused (-EFBIG), and each of its pages is read
	                            * only up to list_max * 256 bytes; 0: no limit */
};

struct regfs_client;

/* Copies what it needs from opts. */
int regfs_client_new(const struct regfs_client_opts *opts, struct regfs_client **out,
		     struct regfs_err *err);
void regfs_client_free(struct regfs_client *c);

/* GET /v2/: checks the URL is a registry and the credentials are accepted.
 * Error messages are one line that says what to do ("is the registry running
 * at …?", "not a registry: GET /v2/ answered 200 without
 * Docker-Distribution-API-Version", "credentials refused: use --user"). */
int regfs_client_ping(struct regfs_client *c, struct regfs_err *err);

/* A list of malloc'd strings; free with regfs_strv_free. */
struct regfs_strv {
	char **v;
	size_t n;
};
void regfs_strv_free(struct regfs_strv *s);

/* All repositories (follows every Link page). */
int regfs_client_catalog(struct regfs_client *c, struct regfs_strv *out, struct regfs_err *err);
/* All tags of a repository (every page). */
int regfs_client_tags(struct regfs_client *c, const char *repo, struct regfs_strv *out,
		      struct regfs_err *err);

struct regfs_manifest_resp {
	char *data;                    /* exact bytes; malloc'd */
	size_t len;
	char *content_type;            /* malloc'd */
	char digest[REGFS_DIGEST_MAX]; /* Docker-Content-Digest, verified against the bytes */
	int64_t last_modified;         /* Last-Modified as unix time, 0 if absent */
};
void regfs_manifest_resp_free(struct regfs_manifest_resp *r);

/* GET a manifest by tag or digest, accepting Docker schema2 and OCI manifests
 * and indexes. When ref is a digest the bytes are verified against it. */
int regfs_client_manifest(struct regfs_client *c, const char *repo, const char *ref,
			  struct regfs_manifest_resp *out, struct regfs_err *err);

/* Many manifests in parallel (multi interface, at most opts.max_parallel at
 * once). Each item gets its own rc/err; returns 0 when the batch ran. */
struct regfs_manifest_req {
	const char *repo, *ref;         /* in */
	struct regfs_manifest_resp resp; /* out */
	int rc;                          /* out */
	struct regfs_err err;            /* out */
};
int regfs_client_manifests(struct regfs_client *c, struct regfs_manifest_req *reqs, size_t n);

/* HEAD of many manifests (by tag), in parallel as regfs_client_manifests:
 * for re-validating tags resolved before, without their bodies. Each
 * item's resp has only `digest` (the registry's Docker-Content-Digest:
 * compare it with a digest verified before, never trust it for bytes) and
 * `last_modified`; -EPROTO when the answer has no Docker-Content-Digest. */
int regfs_client_manifest_heads(struct regfs_client *c, struct regfs_manifest_req *reqs, size_t n);

/* Tags of many repositories in parallel. */
struct regfs_tags_req {
	const char *repo;       /* in */
	struct regfs_strv tags; /* out */
	int rc;
	struct regfs_err err;
};
int regfs_client_tags_many(struct regfs_client *c, struct regfs_tags_req *reqs, size_t n);

/* Range read of a blob: up to len bytes at off into buf; *got = bytes read
 * (short only at the end of the blob). Follows redirects (S3 presigned). */
int regfs_client_blob_read(struct regfs_client *c, const char *repo, const char *digest,
			   uint64_t off, size_t len, void *buf, size_t *got, struct regfs_err *err);
/* Whole blob into fd (from its current position), verified against digest.
 * No total deadline (layers can be big): fails when nothing arrives for
 * opts.timeout_s. */
int regfs_client_blob_fetch(struct regfs_client *c, const char *repo, const char *digest,
			    int fd, struct regfs_err *err);
/* Whole blob streamed to callbacks as it arrives (a cache that serves the
 * bytes while it receives them). size() runs once before the first byte with
 * the answer's Content-Length (-1 when it has none); data() runs for every
 * chunk. Either returns 0 to go on, or a negative errno that stops the
 * transfer and is returned. size may be NULL. After the last byte the
 * bytes are verified against digest: -EPROTO when they differ (data() has
 * seen them: the caller discards what it kept); a body shorter than its
 * Content-Length fails (-EIO). Retried (size() again) only before the first
 * data(). No total deadline: fails when nothing arrives for opts.timeout_s.
 * Callbacks run on the calling thread. */
struct regfs_blob_sink {
	int (*size)(void *arg, int64_t content_length);
	int (*data)(void *arg, const void *buf, size_t n);
	void *arg;
};
int regfs_client_blob_stream(struct regfs_client *c, const char *repo, const char *digest,
			     const struct regfs_blob_sink *sink, struct regfs_err *err);
/* HEAD a blob: size (for files whose size the manifest does not give). */
int regfs_client_blob_size(struct regfs_client *c, const char *repo, const char *digest,
			   uint64_t *size, struct regfs_err *err);

/* Writes (used by the mount's rm/ln/mv). */
int regfs_client_delete_manifest(struct regfs_client *c, const char *repo, const char *ref,
				 struct regfs_err *err);
int regfs_client_put_manifest(struct regfs_client *c, const char *repo, const char *ref,
			      const void *data, size_t len, const char *content_type,
			      char digest_out[REGFS_DIGEST_MAX], struct regfs_err *err);
/* Cross-repository blob mount (POST …/blobs/uploads/?mount=&from=); when the
 * registry answers 202 instead of 201, copies the blob through an upload. */
int regfs_client_mount_blob(struct regfs_client *c, const char *repo, const char *from,
			    const char *digest, struct regfs_err *err);

/* regfs-registry extensions (see docs/api-extensions.md). Both return
 * -ENOTSUP on registries that do not advertise them (X-Regfs-Extensions
 * header on GET /v2/). */
struct regfs_tag_info {
	char *tag;
	char digest[REGFS_DIGEST_MAX];
	int64_t pushed; /* unix time */
};
struct regfs_repo_tags {
	char *name;
	struct regfs_tag_info *tags;
	size_t n_tags;
};
/* GET /v2/_regfs/tags (every page): all repositories with all their tags. */
int regfs_client_bulk_tags(struct regfs_client *c, struct regfs_repo_tags **out, size_t *n,
			   struct regfs_err *err);
void regfs_repo_tags_free(struct regfs_repo_tags *r, size_t n);
/* GET /v2/<name>/_regfs/manifests: every manifest of a repo, tagged or not. */
/* One entry per manifest: digest, pushed, and `tag` = its tags joined with ","
 * (tags cannot contain commas), or NULL when the manifest is untagged.
 * Free with regfs_tag_info_free. */
int regfs_client_repo_manifests(struct regfs_client *c, const char *repo,
				struct regfs_tag_info **out, size_t *n, struct regfs_err *err);
void regfs_tag_info_free(struct regfs_tag_info *t, size_t n);
/* GET /v2/<repo>/_regfs/layerindex/<digest> (layer-index extension): the
 * index regfs-registry built when the layer was pushed (format: layer.h,
 * layer_index_decode). On success *buf (malloc'd, the caller frees) holds
 * *len bytes whose sha256 matched the Docker-Content-Digest the registry
 * sent. Errors: -ENOTSUP the registry does not advertise the extension (no
 * request is made); -ENOENT the index is not built (yet), the layer cannot
 * be indexed, or the repository does not hold the blob (message says which);
 * -EBADMSG the bytes do not match their digest; -EPROTO no digest header;
 * -EINVAL bad repo or digest; -EACCES, -EIO as other requests. */
int regfs_client_layer_index(struct regfs_client *c, const char *repo, const char *digest,
			     char **buf, size_t *len, struct regfs_err *err);
/* GET /v2/_regfs/usage (usage extension): the registry's own storage
 * figures, in bytes (docs/api-extensions.md): what it stores, what tags and
 * manifests reference, and the garbage a collection would free now.
 * Errors: -ENOTSUP not advertised (no request made); -EPROTO the answer is
 * not the documented shape; -EACCES, -EIO as other requests. */
struct regfs_usage {
	uint64_t stored, referenced;
	uint64_t garbage_blobs, garbage_manifests, garbage_uploads, garbage_total;
	size_t n_repos;  /* entries of its "repositories" array (0: the client
	                  * asks for the registry-wide totals alone) */
};
int regfs_client_usage(struct regfs_client *c, struct regfs_usage *out, struct regfs_err *err);
bool regfs_client_has_ext(struct regfs_client *c, const char *ext);
/* Every extension the registry advertises (X-Regfs-Extensions of GET /v2/),
 * as one malloc'd string of names separated by single spaces ("" when none);
 * NULL when the registry could not be asked or out of memory. */
char *regfs_client_extensions(struct regfs_client *c);
/* Copies the credentials c resolved into *out (free with regfs_creds_free):
 * 0 or -ENOMEM. */
int regfs_client_creds(const struct regfs_client *c, struct regfs_creds *out);

/* GET /v2/_regfs/manifests (bulk-manifests, every page): each repository
 * with its tags and every manifest it holds (tagged or not, index children
 * included) with the manifest's bytes. Streaming: cb runs once per
 * repository as each page arrives; the struct and everything it points to
 * are the client's, valid only during that call (copy what you keep), so
 * memory stays at one page (a few MB) whatever the registry's size.
 * Every `content` has been verified against its digest before cb sees it: a
 * mismatch fails the whole call with -EBADMSG (nothing of that repository
 * is passed on). content is NULL when the registry sent none (bytes that
 * are not UTF-8, or unreadable there): fetch that one by digest.
 * cb returns 0 to go on, or a negative errno that stops the walk and is
 * returned. -ENOTSUP (no request sent) when the registry does not
 * advertise bulk-manifests. */
struct regfs_manifest_info {
	char digest[REGFS_DIGEST_MAX];
	const char *media_type;   /* NULL when not given */
	int64_t pushed;           /* unix time the revision was written, 0 unknown */
	const char *content;      /* exact, verified bytes (NUL-terminated too), or NULL */
	size_t len;
};
struct regfs_repo_bulk {
	const char *name;
	const struct regfs_tag_info *tags;   /* tag, digest, pushed */
	size_t n_tags;
	const struct regfs_manifest_info *manifests;
	size_t n_manifests;
};
typedef int (*regfs_repo_bulk_cb)(const struct regfs_repo_bulk *repo, void *arg);
int regfs_client_bulk_manifests(struct regfs_client *c, regfs_repo_bulk_cb cb, void *arg,
				struct regfs_err *err);

struct regfs_client_stats {
	uint64_t requests, manifest_gets, tag_lists, catalog_pages, blob_reads, writes;
	uint64_t bytes_fetched, retries, errors, token_fetches;
};
void regfs_client_get_stats(struct regfs_client *c, struct regfs_client_stats *out);

#endif
