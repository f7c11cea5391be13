/* api.c — the thin Distribution API over request.c: catalog and tags (every
 * Link page), manifests (all four manifest media types, digest verified),
 * blob Range reads, whole-blob fetches (verified), blob sizes, and writes
 * (manifest DELETE/PUT, cross-repository blob mount). */
#include "internal.h"

#include <regfs/log.h>
#include <regfs/names.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

/* Bound on pages followed, so a registry looping its Link never hangs us. */

static int check_repo(const char *repo, struct regfs_err *err)
{
	if (!repo || !regfs_name_valid(repo))
		return regfs_errf(err, -EINVAL,
				  "\"%s\" is not a valid repository name (lowercase a-z0-9 "
				  "components separated by / . _ -)", repo ? repo : "(null)");
	return 0;
}

static int check_ref(const char *ref, struct regfs_err *err)
{
	if (!ref || (!regfs_tag_valid(ref) && !regfs_digest_valid(ref)))
		return regfs_errf(err, -EINVAL, "\"%s\" is neither a tag nor a digest",
				  ref ? ref : "(null)");
	return 0;
}

static int check_digest(const char *d, struct regfs_err *err)
{
	if (!d || !regfs_digest_valid(d))
		return regfs_errf(err, -EINVAL, "\"%s\" is not a digest (sha256:<64 hex>)",
				  d ? d : "(null)");
	return 0;
}

/* Parses one JSON page holding {"<key>": [strings] | null} into out.
 * -EPROTO when it is not that shape, -ENOMEM. */
static int page_strings(const char *url, const char *body, size_t len, const char *key,
			size_t max, struct regfs_strv *out, struct regfs_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, 0, &je);
	json_t *a = json_object_get(j, key);
	int rc = 0;
	if (!j || (!json_is_array(a) && !json_is_null(a) && a))
		rc = regfs_errf(err, -EPROTO, "GET %s: answer is not {\"%s\": [...]} (%s): not a registry?",
				url, key, j ? "wrong shape" : je.text);
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (rc)
			break;
		if (max && out->n >= max)
			rc = regfs_errf(err, -EFBIG, "GET %s: more than %zu names in the list: "
					"refused", url, max);
		else if (json_is_string(v))
			rc = strv_push(out, json_string_value(v));
	}
	json_decref(j);
	return rc;
}

int walk_pages(struct regfs_client *c, char *first, const struct pages *pg,
	       struct regfs_err *err)
{
	char *url = first;
	int rc = url ? 0 : regfs_errf(err, -ENOMEM, "out of memory");
	for (int n = 0; url && !rc; n++) {
		if (n >= MAX_PAGES) {
			rc = regfs_errf(err, -EPROTO, "%s: more than %d pages: the registry's Link loops",
					pg->what, MAX_PAGES);
			break;
		}
		struct rq q = {.method = "GET", .url = url, .scope = pg->scope, .idempotent = true};
		/* a page of list_max names of at most 256 bytes each, at most */
		struct resp r = {.sink = SINK_MEM, .content_length = -1,
				 .body_max = c->list_max ? c->list_max * 256 : 0};
		atomic_fetch_add_explicit(pg->counter, 1, memory_order_relaxed);
		rc = client_do(c, &q, &r, err);
		if (!rc && r.status != 200)
			rc = status_err(c, &r, "GET", url, pg->what, err);
		if (!rc) {
			rc = pg->page(url, dynbuf_ptr(&r.body), dynbuf_len(&r.body), pg->arg, err);
			if (rc == -EPROTO || rc == -EBADMSG)
				ST_INC(c, st_errors);
		}
		char *next = !rc && r.link ? link_next(c, r.link) : NULL;
		if (next && strcmp(next, url) == 0) {
			/* A Link back to the same page would never end. */
			ST_INC(c, st_errors);
			rc = regfs_errf(err, -EPROTO, "%s: GET %s links to itself as the next page: "
					"the registry's pagination is broken", pg->what, url);
			free(next);
			next = NULL;
		}
		resp_free(&r);
		free(url);
		url = next;
	}
	free(url);
	return rc;
}

struct strings_acc {
	const char *key;
	size_t max; /* 0: no limit */
	struct regfs_strv *out;
};

static int strings_page(const char *url, const char *body, size_t len, void *arg,
			struct regfs_err *err)
{
	struct strings_acc *a = arg;
	return page_strings(url, body, len, a->key, a->max, a->out, err);
}

/* Follows pages from first_url, collecting `key` strings. */
static int paged_list(struct regfs_client *c, const char *first_url, const char *scope,
		      const char *key, const char *what, _Atomic uint64_t *counter,
		      struct regfs_strv *out, struct regfs_err *err)
{
	*out = (struct regfs_strv){0};
	struct strings_acc a = {key, c->list_max, out};
	struct pages pg = {.scope = scope, .what = what, .counter = counter,
			   .page = strings_page, .arg = &a};
	int rc = walk_pages(c, strdup(first_url), &pg, err);
	if (rc)
		regfs_strv_free(out);
	return rc;
}

int regfs_client_catalog(struct regfs_client *c, struct regfs_strv *out, struct regfs_err *err)
{
	/* n=1000: registry:2's default maximum, 10x fewer round trips than its
	 * default page of 100. */
	char *url = xasprintf("%s/v2/_catalog?n=1000", c->url);
	if (!url)
		return regfs_errf(err, -ENOMEM, "out of memory");
	struct regfs_err e1 = {0};
	int rc = paged_list(c, url, "registry:catalog:*", "repositories", "repository catalog",
			    &c->st_catalog_pages, out, &e1);
	free(url);
	if (rc == -EIO && strstr(e1.msg, "PAGINATION_NUMBER_INVALID")) {
		/* A registry configured with catalog.maxentries < 1000 refuses
		 * n=1000 (400): let it choose the page size. */
		url = xasprintf("%s/v2/_catalog", c->url);
		if (!url)
			return regfs_errf(err, -ENOMEM, "out of memory");
		rc = paged_list(c, url, "registry:catalog:*", "repositories",
				"repository catalog", &c->st_catalog_pages, out, err);
		free(url);
		return rc;
	}
	if (rc && err && !err->code)
		*err = e1;
	return rc;
}

int tags_parse(struct regfs_client *c, const char *repo, const char *url, struct resp *r,
	       struct regfs_strv *out, struct regfs_err *err)
{
	(void)repo;
	int rc = page_strings(url, dynbuf_ptr(&r->body), dynbuf_len(&r->body), "tags",
			      c->list_max, out, err);
	if (rc == -EPROTO)
		ST_INC(c, st_errors);
	return rc;
}

int regfs_client_tags(struct regfs_client *c, const char *repo, struct regfs_strv *out,
		      struct regfs_err *err)
{
	*out = (struct regfs_strv){0};
	int rc = check_repo(repo, err);
	if (rc)
		return rc;
	char *url = xasprintf("%s/v2/%s/tags/list", c->url, repo);
	char *scope = scope_pull(repo);
	char *what = xasprintf("tags of repository %s", repo);
	if (url && scope && what)
		rc = paged_list(c, url, scope, "tags", what, &c->st_tag_lists, out, err);
	else
		rc = regfs_errf(err, -ENOMEM, "out of memory");
	free(url);
	free(scope);
	free(what);
	return rc;
}

void regfs_manifest_resp_free(struct regfs_manifest_resp *r)
{
	if (!r)
		return;
	free(r->data);
	free(r->content_type);
	*r = (struct regfs_manifest_resp){0};
}

int manifest_fill(struct regfs_client *c, const char *repo, const char *ref, struct resp *r,
		  struct regfs_manifest_resp *out, struct regfs_err *err)
{
	*out = (struct regfs_manifest_resp){0};
	char what[400];
	snprintf(what, sizeof what, "manifest %s:%s", repo, ref);
	char url[600];
	snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", c->url, repo, ref);
	if (r->status != 200)
		return status_err(c, r, "GET", url, what, err);
	if (!dynbuf_len(&r->body)) {
		ST_INC(c, st_errors);
		return regfs_errf(err, -EPROTO, "GET %s answered an empty manifest", url);
	}
	/* The bytes must hash to the digest asked for, and to the one the
	 * registry claims; a mismatch means corruption or a lying proxy. */
	enum regfs_digest_alg alg = REGFS_SHA256;
	const char *want = regfs_digest_valid(ref) ? ref : NULL;
	if (!want && r->dcd && regfs_digest_valid(r->dcd))
		want = r->dcd;
	if (want)
		regfs_digest_parse(want, &alg, NULL, NULL);
	char got[REGFS_DIGEST_MAX];
	regfs_digest_buf(alg, dynbuf_ptr(&r->body), dynbuf_len(&r->body), got);
	if (want && strcmp(got, want) != 0) {
		ST_INC(c, st_errors);
		return regfs_errf(err, -EPROTO,
				  "GET %s: manifest bytes hash to %s, not %s: the registry or a "
				  "proxy altered the manifest", url, got, want);
	}
	if (r->dcd && regfs_digest_valid(r->dcd) && want != r->dcd) {
		enum regfs_digest_alg a2 = REGFS_SHA256;
		char d2[REGFS_DIGEST_MAX];
		regfs_digest_parse(r->dcd, &a2, NULL, NULL);
		regfs_digest_buf(a2, dynbuf_ptr(&r->body), dynbuf_len(&r->body), d2);
		if (strcmp(d2, r->dcd) != 0) {
			ST_INC(c, st_errors);
			return regfs_errf(err, -EPROTO,
					  "GET %s: Docker-Content-Digest %s does not match the bytes (%s)",
					  url, r->dcd, d2);
		}
	}
	snprintf(out->digest, sizeof out->digest, "%s", got);
	if (r->ctype) {
		out->content_type = strdup(r->ctype);
		/* "application/…+json; charset=utf-8" → the media type alone. */
		if (out->content_type)
			out->content_type[strcspn(out->content_type, ";")] = '\0';
	} else {
		json_t *j = json_loadb(dynbuf_ptr(&r->body), dynbuf_len(&r->body), 0, NULL);
		const char *mt = json_string_value(json_object_get(j, "mediaType"));
		out->content_type = strdup(mt ? mt : "application/vnd.oci.image.manifest.v1+json");
		json_decref(j);
	}
	if (!out->content_type)
		return regfs_errf(err, -ENOMEM, "out of memory");
	out->data = dynbuf_take(&r->body, &out->len);
	if (r->last_modified) {
		time_t t = curl_getdate(r->last_modified, NULL);
		out->last_modified = t > 0 ? (int64_t)t : 0;
	}
	return 0;
}

/* A manifest request's checks and call: the repository and reference must be
 * valid before anything is allocated. */
static int manifest_call(struct regfs_client *c, struct call *k, const char *repo,
			 const char *ref, const char *action, struct regfs_err *err)
{
	*k = (struct call){0};
	int rc = check_repo(repo, err);
	if (!rc)
		rc = check_ref(ref, err);
	if (!rc)
		rc = call_init(k, xasprintf("%s/v2/%s/manifests/%s", c->url, repo, ref),
			       xasprintf("repository:%s:%s", repo, action), SINK_MEM, err);
	return rc;
}

int regfs_client_manifest(struct regfs_client *c, const char *repo, const char *ref,
			  struct regfs_manifest_resp *out, struct regfs_err *err)
{
	*out = (struct regfs_manifest_resp){0};
	struct call k;
	int rc = manifest_call(c, &k, repo, ref, "pull", err);
	if (!rc) {
		const char *hdrs[] = {manifest_accept_hdr, NULL};
		struct rq q = {.method = "GET", .url = k.url, .scope = k.scope, .headers = hdrs,
			       .idempotent = true};
		k.r.body_max = c->manifest_max;
		ST_INC(c, st_manifest_gets);
		rc = client_do(c, &q, &k.r, err);
	}
	if (!rc)
		rc = manifest_fill(c, repo, ref, &k.r, out, err);
	call_free(&k);
	return rc;
}

/* Shared set-up of blob requests. */
static int blob_call(struct regfs_client *c, struct call *k, const char *repo,
		     const char *digest, enum sink_kind sink, struct regfs_err *err)
{
	*k = (struct call){0};
	int rc = check_repo(repo, err);
	if (!rc)
		rc = check_digest(digest, err);
	if (!rc)
		rc = call_init(k, xasprintf("%s/v2/%s/blobs/%s", c->url, repo, digest),
			       scope_pull(repo), sink, err);
	return rc;
}

int regfs_client_blob_read(struct regfs_client *c, const char *repo, const char *digest,
			   uint64_t off, size_t len, void *buf, size_t *got, struct regfs_err *err)
{
	*got = 0;
	struct call k;
	int rc = blob_call(c, &k, repo, digest, SINK_BUF, err);
	if (rc || len == 0) {
		call_free(&k);
		return rc;
	}
	char range[80];
	snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	const char *hdrs[] = {range, NULL};
	struct rq q = {.method = "GET", .url = k.url, .scope = k.scope, .headers = hdrs,
		       .idempotent = true};
	k.r.buf = buf;
	k.r.buf_cap = len;
	k.r.skip = off;
	ST_INC(c, st_blob_reads);
	rc = client_do(c, &q, &k.r, err);
	if (!rc) {
		if (k.r.status == 206 || k.r.status == 200)
			*got = k.r.buf_got;
		else if (k.r.status == 416)
			*got = 0; /* at or past the end */
		else
			rc = status_errf(c, &k.r, "GET", k.url, err, "blob %s in %s", digest, repo);
	}
	call_free(&k);
	return rc;
}

/* The end of a streamed blob GET: the status, the size callback of an
 * empty body (callback sinks), the digest of what was received. */
static int stream_end(struct regfs_client *c, struct call *k, const char *repo,
		      const char *digest, struct regfs_err *err)
{
	if (k->r.status != 200)
		return status_errf(c, &k->r, "GET", k->url, err, "blob %s in %s", digest, repo);
	const struct regfs_blob_sink *sk = k->r.cb;
	if (sk && !k->r.cb_sized && sk->size) {
		k->r.cb_sized = true;
		int rc = sk->size(sk->arg, k->r.content_length);
		if (rc)
			return regfs_errf(err, rc, "GET %s: the receiver refused the blob", k->url);
	}
	char got[REGFS_DIGEST_MAX];
	regfs_hasher_final(k->r.hasher, got);
	if (strcmp(got, digest) == 0)
		return 0;
	ST_INC(c, st_errors);
	return regfs_errf(err, -EPROTO, "GET %s: the %llu bytes received hash to %s: the blob is "
			  "corrupt in the registry or was altered in transit", k->url,
			  (unsigned long long)k->r.written, got);
}

/* GET of a whole blob into an fd (sink NULL) or a callback sink, verified
 * against its digest. */
static int blob_get(struct regfs_client *c, const char *repo, const char *digest, int fd,
		    const struct regfs_blob_sink *sink, struct regfs_err *err)
{
	struct call k;
	int rc = blob_call(c, &k, repo, digest, sink ? SINK_CB : SINK_FD, err);
	if (rc) {
		call_free(&k);
		return rc;
	}
	enum regfs_digest_alg alg = REGFS_SHA256;
	regfs_digest_parse(digest, &alg, NULL, NULL);
	struct rq q = {.method = "GET", .url = k.url, .scope = k.scope, .idempotent = true,
		       .stream = true};
	if (sink)
		k.r.cb = sink;
	else
		k.r.fd = fd;
	k.r.hasher = regfs_hasher_new(alg);
	if (!k.r.hasher) {
		rc = regfs_errf(err, -ENOMEM, "out of memory");
	} else {
		ST_INC(c, st_blob_reads);
		rc = client_do(c, &q, &k.r, err);
	}
	if (!rc)
		rc = stream_end(c, &k, repo, digest, err);
	call_free(&k);
	return rc;
}

int regfs_client_blob_fetch(struct regfs_client *c, const char *repo, const char *digest,
			    int fd, struct regfs_err *err)
{
	return blob_get(c, repo, digest, fd, NULL, err);
}

int regfs_client_blob_stream(struct regfs_client *c, const char *repo, const char *digest,
			     const struct regfs_blob_sink *sink, struct regfs_err *err)
{
	return blob_get(c, repo, digest, -1, sink, err);
}

int regfs_client_blob_size(struct regfs_client *c, const char *repo, const char *digest,
			   uint64_t *size, struct regfs_err *err)
{
	*size = 0;
	struct call k;
	int rc = blob_call(c, &k, repo, digest, SINK_NONE, err);
	if (!rc) {
		struct rq q = {.method = "HEAD", .url = k.url, .scope = k.scope, .idempotent = true};
		rc = client_do(c, &q, &k.r, err);
	}
	if (!rc && k.r.status != 200)
		rc = status_errf(c, &k.r, "HEAD", k.url, err, "blob %s in %s", digest, repo);
	if (!rc && k.r.content_length < 0) {
		ST_INC(c, st_errors);
		rc = regfs_errf(err, -EPROTO, "HEAD %s answered without Content-Length", k.url);
	}
	if (!rc)
		*size = (uint64_t)k.r.content_length;
	call_free(&k);
	return rc;
}

int regfs_client_delete_manifest(struct regfs_client *c, const char *repo, const char *ref,
				 struct regfs_err *err)
{
	struct call k;
	int rc = manifest_call(c, &k, repo, ref, "delete", err);
	if (!rc) {
		/* DELETE is idempotent in the spec's sense; a retried delete that
		 * already happened answers 404, which is reported. */
		struct rq q = {.method = "DELETE", .url = k.url, .scope = k.scope,
			       .idempotent = false};
		ST_INC(c, st_writes);
		rc = client_do(c, &q, &k.r, err);
	}
	long st = k.r.status;
	if (!rc && st == 400 && !regfs_digest_valid(ref) &&
	    strstr(dynbuf_ptr(&k.r.body), "DIGEST_INVALID")) {
		/* registry:2 (2.8) cannot delete a tag: it parses the tag as a
		 * digest and answers 400 DIGEST_INVALID. Say so as -ENOTSUP so the
		 * caller can take its fallback. */
		ST_INC(c, st_errors);
		rc = regfs_errf(err, -ENOTSUP,
				"deleting tag %s:%s: registry %s cannot delete tags (DELETE by tag "
				"answered 400 DIGEST_INVALID); delete the manifest by digest instead",
				repo, ref, c->url);
	} else if (!rc && st != 202 && st != 200 && st != 204) {
		rc = status_errf(c, &k.r, "DELETE", k.url, err, "deleting manifest %s:%s", repo,
				 ref);
	}
	if (!rc)
		log_info("client: deleted %s:%s", repo, ref);
	call_free(&k);
	return rc;
}

int regfs_client_put_manifest(struct regfs_client *c, const char *repo, const char *ref,
			      const void *data, size_t len, const char *content_type,
			      char digest_out[REGFS_DIGEST_MAX], struct regfs_err *err)
{
	int rc = check_repo(repo, err);
	if (!rc)
		rc = check_ref(ref, err);
	if (rc)
		return rc;
	if (!content_type || !*content_type)
		return regfs_errf(err, -EINVAL, "putting manifest %s:%s: no content type", repo, ref);
	struct call k;
	char *ct = xasprintf("Content-Type: %s", content_type);
	rc = manifest_call(c, &k, repo, ref, "pull,push", err);
	if (!rc && !ct)
		rc = regfs_errf(err, -ENOMEM, "out of memory");
	char local[REGFS_DIGEST_MAX];
	if (!rc) {
		regfs_digest_buf(REGFS_SHA256, data, len, local);
		const char *hdrs[] = {ct, NULL};
		struct rq q = {.method = "PUT", .url = k.url, .scope = k.scope, .headers = hdrs,
			       .body = data, .body_len = len, .idempotent = true};
		ST_INC(c, st_writes);
		rc = client_do(c, &q, &k.r, err);
	}
	if (!rc && k.r.status != 201 && k.r.status != 200)
		rc = status_errf(c, &k.r, "PUT", k.url, err, "putting manifest %s:%s", repo, ref);
	if (!rc && digest_out)
		snprintf(digest_out, REGFS_DIGEST_MAX, "%s",
			 k.r.dcd && regfs_digest_valid(k.r.dcd) ? k.r.dcd : local);
	call_free(&k);
	free(ct);
	return rc;
}

/* The upload URL of a 202 (Location, maybe relative) plus ?digest=. */
static char *upload_put_url(struct regfs_client *c, const char *loc, const char *digest)
{
	const char *sep = strchr(loc, '?') ? "&" : "?";
	if (strstr(loc, "://"))
		return xasprintf("%s%sdigest=%s", loc, sep, digest);
	return xasprintf("%s%s%s%sdigest=%s", c->origin, loc[0] == '/' ? "" : "/", loc, sep,
			 digest);
}

/* 202: the registry opened an upload instead of mounting: copy the blob
 * through a temporary file (verified by blob_fetch) into that upload. */
static int copy_through_upload(struct regfs_client *c, const char *repo, const char *from,
			       const char *digest, const char *location, const char *scope,
			       struct regfs_err *err)
{
	FILE *tmp = tmpfile();
	if (!tmp)
		return regfs_errf(err, -errno, "copying blob %s to %s: cannot create a temporary "
				  "file: %s (set TMPDIR)", digest, repo, strerror(errno));
	int rc = regfs_client_blob_fetch(c, from, digest, fileno(tmp), err);
	char *url = NULL;
	struct resp r = {.sink = SINK_MEM, .content_length = -1};
	if (rc)
		goto out;
	off_t size = lseek(fileno(tmp), 0, SEEK_CUR);
	rewind(tmp);
	url = upload_put_url(c, location, digest);
	if (!url) {
		rc = regfs_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
	struct rq q = {.method = "PUT", .url = url, .scope = scope, .headers = hdrs,
		       .upload_fp = tmp, .upload_size = size, .stream = true};
	ST_INC(c, st_writes);
	rc = client_do(c, &q, &r, err);
	if (!rc && r.status != 201) {
		rc = status_errf(c, &r, "PUT", url, err, "uploading blob %s to %s", digest, repo);
	}
out:
	resp_free(&r);
	free(url);
	fclose(tmp);
	return rc;
}

int regfs_client_mount_blob(struct regfs_client *c, const char *repo, const char *from,
			    const char *digest, struct regfs_err *err)
{
	int rc = check_repo(repo, err);
	if (!rc)
		rc = check_repo(from, err);
	if (!rc)
		rc = check_digest(digest, err);
	if (rc)
		return rc;
	struct call k;
	rc = call_init(&k,
		       xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", c->url, repo, digest,
				 from),
		       xasprintf("repository:%s:pull,push repository:%s:pull", repo, from),
		       SINK_MEM, err);
	if (!rc) {
		struct rq q = {.method = "POST", .url = k.url, .scope = k.scope, .body = "",
			       .body_len = 0};
		ST_INC(c, st_writes);
		rc = client_do(c, &q, &k.r, err);
	}
	if (!rc && k.r.status == 202 && k.r.location)
		rc = copy_through_upload(c, repo, from, digest, k.r.location, k.scope, err);
	else if (!rc && k.r.status != 201)
		rc = status_errf(c, &k.r, "POST", k.url, err, "mounting blob %s from %s into %s",
				 digest, from, repo);
	call_free(&k);
	return rc;
}
