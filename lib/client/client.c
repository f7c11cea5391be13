/* client.c — the client object (regfs_client_new/free), GET /v2/ (ping and
 * extension discovery), counters, and small helpers shared by api.c/batch.c. */
#include "internal.h"

#include <regfs/log.h>
#include <regfs/mem.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int regfs_client_new(const struct regfs_client_opts *opts, struct regfs_client **out,
		     struct regfs_err *err)
{
	*out = NULL;
	if (!opts || !opts->url || !*opts->url)
		return regfs_errf(err, -EINVAL, "no registry URL given: use e.g. http://127.0.0.1:5000");
	const char *u = opts->url;
	if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
		return regfs_errf(err, -EINVAL,
				  "registry URL %s has no scheme: use http://%s or https://%s", u, u, u);
	const char *auth = strstr(u, "://") + 3, *at = strchr(auth, '@');
	if (at && at < auth + strcspn(auth, "/"))
		/* not echoed: it may hold a password */
		return regfs_errf(err, -EINVAL, "the registry URL has credentials in it (user@host): "
				  "give them as user and password, not in the URL");
	struct regfs_client *c = calloc(1, sizeof *c);
	if (!c)
		return regfs_errf(err, -ENOMEM, "out of memory");
	size_t n = strlen(u);
	while (n && u[n - 1] == '/')
		n--;
	/* Accept a pasted ".../v2" too. */
	if (n >= 3 && strncmp(u + n - 3, "/v2", 3) == 0)
		n -= 3;
	c->url = strndup(u, n);
	const char *hs = c->url ? strstr(c->url, "://") + 3 : NULL;
	if (hs) {
		size_t hl = strcspn(hs, "/");
		c->host = strndup(hs, hl);
		c->origin = strndup(c->url, (size_t)(hs - c->url) + hl);
	}
	c->ca_cert = opts->ca_cert ? strdup(opts->ca_cert) : NULL;
	c->client_cert = opts->client_cert ? strdup(opts->client_cert) : NULL;
	c->client_key = opts->client_key ? strdup(opts->client_key) : NULL;
	c->insecure = opts->insecure;
	c->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 10;
	c->max_parallel = opts->max_parallel > 0 ? opts->max_parallel : 16;
	c->manifest_max = opts->manifest_max;
	c->list_max = opts->list_max;
	pthread_mutex_init(&c->lock, NULL);
	if (!c->url || !c->host || !c->origin || (opts->ca_cert && !c->ca_cert) ||
	    (opts->client_cert && !c->client_cert) || (opts->client_key && !c->client_key)) {
		regfs_client_free(c);
		return regfs_errf(err, -ENOMEM, "out of memory");
	}
	int rc = creds_resolve(c, opts, err);
	if (rc) {
		regfs_client_free(c);
		return rc;
	}
	rc = regfs_http_init(&c->http, err);
	if (rc) {
		regfs_client_free(c);
		return rc;
	}
	log_debug("client: registry %s%s%s", c->url, c->user ? ", credentials from " : "",
		  c->user ? c->cred_source : "");
	*out = c;
	return 0;
}

void regfs_client_free(struct regfs_client *c)
{
	if (!c)
		return;
	regfs_http_cleanup(&c->http);
	REGFS_FREE_STRS(&c->url, &c->origin, &c->host, &c->user, &c->ca_cert, &c->client_cert,
			&c->client_key, &c->realm,
			&c->service, &c->extensions);
	regfs_free_secret(c->pass);
	tokens_free(c->tokens);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Does the server at c's (http://) origin complete a TLS handshake? Asked
 * only after a plain-HTTP request failed at the transport level, so that
 * http:// to a TLS port says "use https://" instead of "empty reply". */
static bool speaks_tls(struct regfs_client *c)
{
	if (strncasecmp(c->origin, "http://", 7) != 0)
		return false;
	char *url = xasprintf("https://%s/", c->origin + 7);
	CURL *h = url ? curl_easy_init() : NULL;
	bool tls = false;
	if (h) {
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L); /* TCP + TLS handshake only */
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L); /* any certificate will do */
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_s * 1000);
		tls = curl_easy_perform(h) == CURLE_OK;
		curl_easy_cleanup(h);
	}
	free(url);
	return tls;
}

int regfs_client_ping(struct regfs_client *c, struct regfs_err *err)
{
	char *url = xasprintf("%s/v2/", c->url);
	if (!url)
		return regfs_errf(err, -ENOMEM, "out of memory");
	struct rq q = {.method = "GET", .url = url, .idempotent = true};
	struct resp r = {.sink = SINK_MEM, .content_length = -1};
	int rc = client_do(c, &q, &r, err);
	if (rc && rc != -ECONNREFUSED && rc != -EHOSTUNREACH && rc != -ETIMEDOUT &&
	    speaks_tls(c)) {
		char was[sizeof err->msg];
		snprintf(was, sizeof was, "%s", regfs_err_str(err));
		regfs_err_clear(err); /* replaces the transport error: this is the cause */
		rc = regfs_errf(err, -EPROTO,
				"registry %s: the server speaks TLS: use https://%s (plain HTTP "
				"failed: %s)", c->url, c->url + 7, was);
		goto out;
	}
	if (rc)
		goto out;
	if (r.status == 401 || r.status == 403) {
		rc = access_denied(c, err, "registry %s: credentials refused (GET /v2/ answered %ld%s%s)",
				   c->url, r.status, c->user ? "; tried credentials from " : "",
				   c->user ? c->cred_source : "");
		goto out;
	}
	if (r.status == 404 || (r.status == 200 && !r.api_version)) {
		ST_INC(c, st_errors);
		rc = regfs_errf(err, -EPROTO,
				"not a registry: GET %s answered %ld without "
				"Docker-Distribution-API-Version: check the URL",
				url, r.status);
		goto out;
	}
	if (r.status != 200) {
		rc = status_err(c, &r, "GET", url, "registry check", err);
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	if (c->mode == AUTH_UNKNOWN)
		c->mode = AUTH_NONE;
	free(c->extensions);
	c->extensions = r.extensions ? strdup(r.extensions) : NULL;
	c->ext_known = true;
	pthread_mutex_unlock(&c->lock);
out:
	resp_free(&r);
	free(url);
	return rc;
}

bool regfs_client_has_ext(struct regfs_client *c, const char *ext)
{
	pthread_mutex_lock(&c->lock);
	bool known = c->ext_known;
	pthread_mutex_unlock(&c->lock);
	if (!known && regfs_client_ping(c, NULL) != 0)
		return false;
	bool has = false;
	pthread_mutex_lock(&c->lock);
	/* Comma-separated list of tokens, whitespace allowed. */
	for (const char *p = c->extensions; p && *p && !has;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		has = n && n == strlen(ext) && strncmp(p, ext, n) == 0;
		p += n;
	}
	pthread_mutex_unlock(&c->lock);
	return has;
}

char *regfs_client_extensions(struct regfs_client *c)
{
	pthread_mutex_lock(&c->lock);
	bool known = c->ext_known;
	pthread_mutex_unlock(&c->lock);
	if (!known && regfs_client_ping(c, NULL) != 0)
		return NULL;
	pthread_mutex_lock(&c->lock);
	const char *p = c->extensions ? c->extensions : "";
	char *out = malloc(strlen(p) + 1), *o = out;
	while (out && *p) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		if (n) {
			if (o != out)
				*o++ = ' ';
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	if (out)
		*o = 0;
	pthread_mutex_unlock(&c->lock);
	return out;
}

void regfs_client_get_stats(struct regfs_client *c, struct regfs_client_stats *o)
{
#define LD(f) atomic_load_explicit(&c->f, memory_order_relaxed)
	*o = (struct regfs_client_stats){
		.requests = LD(st_requests),
		.manifest_gets = LD(st_manifest_gets),
		.tag_lists = LD(st_tag_lists),
		.catalog_pages = LD(st_catalog_pages),
		.blob_reads = LD(st_blob_reads),
		.writes = LD(st_writes),
		.bytes_fetched = LD(st_bytes),
		.retries = LD(st_retries),
		.errors = LD(st_errors),
		.token_fetches = LD(st_token_fetches),
	};
#undef LD
}

void regfs_strv_free(struct regfs_strv *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Slots of a list of n names (strv_push's only allocator): the next power of
 * two of n + 1 (the NULL), so a list of 100 000 tags is 17 reallocs, not
 * 100 000 copies. */
static size_t strv_slots(size_t n)
{
	size_t c = 2;
	while (c < n + 1)
		c *= 2;
	return c;
}

int strv_push(struct regfs_strv *s, const char *v)
{
	if (!s->v || strv_slots(s->n + 1) != strv_slots(s->n)) {
		char **nv = realloc(s->v, strv_slots(s->n + 1) * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		s->v = nv;
	}
	char **nv = s->v;
	if (!(nv[s->n] = strdup(v)))
		return -ENOMEM;
	nv[++s->n] = NULL;
	return 0;
}

char *scope_pull(const char *repo)
{
	return xasprintf("repository:%s:pull", repo);
}

char *link_next(struct regfs_client *c, const char *link)
{
	/* Link: <url>; rel="next" (possibly among other links). */
	for (const char *p = link; p && (p = strchr(p, '<'));) {
		const char *e = strchr(p, '>');
		if (!e)
			return NULL;
		const char *params = e + 1, *end = strchr(params, ',');
		size_t pl = end ? (size_t)(end - params) : strlen(params);
		char *ps = strndup(params, pl);
		bool next = ps && (strstr(ps, "rel=\"next\"") || strstr(ps, "rel=next"));
		free(ps);
		if (next) {
			char *target = strndup(p + 1, (size_t)(e - p - 1));
			if (!target)
				return NULL;
			/* An absolute URL is taken for its path on our origin: the next
			 * page goes to the registry we asked, never where its answer
			 * points (another host would get our credentials). */
			const char *path = target, *sch = strstr(target, "://");
			if (sch) {
				path = sch + 3 + strcspn(sch + 3, "/");
				if (strncasecmp(target, c->origin, strlen(c->origin)) != 0 ||
				    target + strlen(c->origin) != path)
					log_warn("client: %s: next page %.200s is not on %s: asked there "
						 "instead", c->origin, target, c->origin);
			}
			char *abs = xasprintf("%s%s%s", c->origin, path[0] == '/' ? "" : "/", path);
			free(target);
			return abs;
		}
		p = e + 1;
	}
	return NULL;
}
