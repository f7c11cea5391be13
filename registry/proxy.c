/* proxy.c — the pull-through cache's upstreams (proxy.h): building them from
 * the configuration, which upstream owns a repository name, containerd's
 * `?ns=<host>` mirror parameter, and the refusal of writes under a cache.
 *
 * Routing happens before auth, so access rules, logs and every handler see
 * our name ("<prefix>/<name>") whatever the client sent. */
#include "proxy.h"
#include "proxy_internal.h"

#include "registry.h"
#include "request.h"
#include "respond.h"

#include <regfs/client.h>
#include <regfs/log.h>
#include <regfs/names.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A whole request to an upstream (manifest, tags) may take this long; a
 * tag served from storage when the upstream is down waits at most this. */
#define UPSTREAM_TIMEOUT_S 15
/* The most tags an upstream's tags list may have: more (an upstream whose
 * pages never end) is refused and the stored tags are listed instead. */
#define UPSTREAM_TAGS_MAX 100000

/* Docker Hub answers under several names; containerd says "docker.io". */
static bool is_dockerhub(const char *host)
{
	return !strcasecmp(host, "docker.io") || !strcasecmp(host, "registry-1.docker.io") ||
	       !strcasecmp(host, "index.docker.io") || !strcasecmp(host, "registry.hub.docker.com");
}

bool proxy_is_dockerhub(const struct proxy *p)
{
	return is_dockerhub(p->host);
}

/* Does `host` (a ?ns= value) name upstream p? */
static bool names_proxy(const struct proxy *p, const char *host)
{
	if (!strcasecmp(host, p->host) || (is_dockerhub(host) && is_dockerhub(p->host)))
		return true;
	for (int i = 0; i < p->n_ns; i++)
		if (!strcasecmp(host, p->ns[i]) || (is_dockerhub(host) && is_dockerhub(p->ns[i])))
			return true;
	return false;
}

const struct proxy *proxy_for_ns(const struct registry *r, const char *host)
{
	if (!r->proxies || !host || !*host)
		return NULL;
	for (int i = 0; i < r->proxies->n; i++)
		if (names_proxy(&r->proxies->v[i], host))
			return &r->proxies->v[i];
	return NULL;
}

const struct proxy *proxy_of(const struct registry *r, const char *name,
			     const char **upstream_name)
{
	if (!r->proxies)
		return NULL;
	for (int i = 0; i < r->proxies->n; i++) {
		const struct proxy *p = &r->proxies->v[i];
		size_t n = strlen(p->prefix);
		if (n == 0) {
			if (upstream_name)
				*upstream_name = name;
			return p;
		}
		if (!strncmp(name, p->prefix, n) && name[n] == '/' && name[n + 1]) {
			if (upstream_name)
				*upstream_name = name + n + 1;
			return p;
		}
	}
	return NULL;
}

int proxy_upstream_name(const struct proxy *p, const char *upstream_name, char *out, size_t cap)
{
	/* Docker Hub keeps its official images under library/: "alpine" there
	 * is "library/alpine", as docker pull resolves it */
	bool lib = proxy_is_dockerhub(p) && !strchr(upstream_name, '/');
	int n = snprintf(out, cap, "%s%s", lib ? "library/" : "", upstream_name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int proxy_ns_rewrite(const struct proxy *p, const char *name, char *out, size_t cap)
{
	if (!p->prefix[0]) {
		int n = snprintf(out, cap, "%s", name);
		return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
	}
	int n = snprintf(out, cap, "%s/%s", p->prefix, name);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return regfs_name_valid(out) ? 0 : -EINVAL;
}

/* Writes under a cache: pushing manifests and everything about uploads. */
static bool is_write(const struct request *q)
{
	enum route_kind k = q->rt.kind;
	return (k == R_MANIFEST && q->m == HTTP_PUT) || k == R_UPLOAD_START || k == R_UPLOAD;
}

const struct proxy *proxy_ns_foreign(const struct registry *r, const char *host)
{
	if (!r->proxies || !host || !*host || proxy_for_ns(r, host))
		return NULL;
	const struct proxy *all = proxy_of(r, "a", NULL); /* only `proxy:` owns every name */
	return all && !all->prefix[0] ? all : NULL;
}

/* Applies ?ns=: a host that names an upstream makes the name ours. false
 * with *res set when the rewritten name is not valid, or when the whole
 * namespace is another registry's cache (its content would be served under
 * the name of a different registry's image: 404, and containerd falls back
 * to that registry). */
static bool apply_ns(struct registry *r, struct request *q, enum MHD_Result *res)
{
	const char *ns = request_query(q, "ns");
	const struct proxy *p = proxy_for_ns(r, ns), *all = proxy_ns_foreign(r, ns);
	if (all) {
		*res = respond_errorf(r, q, 404, "NAME_UNKNOWN", "repository name not known to "
				      "registry: %s (ns=%s names a registry this cache does not "
				      "mirror: it mirrors %s)", q->rt.name, ns, all->remoteurl);
		return false;
	}
	if (!p)
		return true; /* a host we do not cache: the name is a local one */
	char name[ROUTE_NAME_MAX];
	int rc = proxy_ns_rewrite(p, q->rt.name, name, sizeof name);
	if (rc) {
		*res = respond_errorf(r, q, 400, "NAME_INVALID", "invalid repository name: %s/%s "
				      "(ns=%s names the cache of %s under %s/): %s", p->prefix,
				      q->rt.name, ns, p->remoteurl, p->prefix,
				      rc == -ENAMETOOLONG ? "too long" : "not a repository name");
		return false;
	}
	memcpy(q->rt.name, name, strlen(name) + 1);
	return true;
}

bool proxy_route(struct registry *r, struct request *q, enum MHD_Result *res)
{
	if (!r->proxies || !q->rt.name_ok)
		return true;
	if (!apply_ns(r, q, res))
		return false;
	q->proxy = proxy_of(r, q->rt.name, NULL);
	if (!q->proxy || !is_write(q))
		return true;
	*res = respond_errorf(r, q, 405, "UNSUPPORTED", "%s is a read-only cache of %s: pushes "
			      "are refused here%s", q->rt.name, q->proxy->remoteurl,
			      q->proxy->prefix[0] ? " (push to a name outside the cache's prefix)"
						  : "");
	return false;
}

/* ---- building the upstreams ---------------------------------------------- */

/* remoteurl's host[:port] (config_proxy.c checked the URL's shape). */
static void host_of(const char *url, char *out, size_t cap)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	snprintf(out, cap, "%.*s", (int)strcspn(h, "/"), h);
}

static int open_one(struct proxy *p, const struct regfs_proxy_config *pc, int idx,
		    size_t manifest_max, struct regfs_err *err)
{
	snprintf(p->prefix, sizeof p->prefix, "%s", pc->prefix ? pc->prefix : "");
	snprintf(p->remoteurl, sizeof p->remoteurl, "%s", pc->remoteurl);
	host_of(p->remoteurl, p->host, sizeof p->host);
	p->ttl_s = pc->ttl_s;
	p->revalidate_s = pc->ttl_s > 0 && pc->ttl_s < pc->revalidate_s ? pc->ttl_s
									 : pc->revalidate_s;
	if (pc->n_ns && !(p->ns = calloc((size_t)pc->n_ns, sizeof *p->ns)))
		return regfs_errf(err, -ENOMEM, "out of memory");
	for (int i = 0; i < pc->n_ns; i++, p->n_ns++)
		if (!(p->ns[i] = strdup(pc->ns[i])))
			return regfs_errf(err, -ENOMEM, "out of memory");
	/* the configured credentials or none: never the environment's or a
	 * docker config's, which belong to whoever runs the server */
	struct regfs_creds creds = {.user = pc->username, .pass = pc->password,
				    .source = pc->username ? "the configured upstream credentials"
							   : "none (anonymous)"};
	const char *key = p->prefix[0] ? "regfs.proxies" : "proxy";
	if (pc->cacert && access(pc->cacert, R_OK) != 0)
		return regfs_errf(err, -EINVAL, "%s[%d].cacert: cannot read %s: %s", key, idx,
				  pc->cacert, strerror(errno));
	struct regfs_client_opts o = {.url = p->remoteurl, .creds = &creds,
				      .ca_cert = pc->cacert, .timeout_s = UPSTREAM_TIMEOUT_S,
				      /* an upstream's manifest over our limit is cut off as it
				       * arrives, not buffered: it would be refused anyway */
				      .manifest_max = manifest_max,
				      .list_max = UPSTREAM_TAGS_MAX};
	struct regfs_err ce = {0};
	int rc = regfs_client_new(&o, &p->up, &ce);
	if (rc)
		return regfs_errf(err, rc, "%s[%d] (%s): %s", key, idx, p->remoteurl, ce.msg);
	p->tags = proxy_tags_new();
	if (!p->tags)
		return regfs_errf(err, -ENOMEM, "out of memory");
	log_info("pull-through cache: %s%s from %s (%s credentials, revalidate %llds, "
		 "ttl %llds)", p->prefix[0] ? p->prefix : "every repository",
		 p->prefix[0] ? "/*" : "", p->remoteurl, pc->username ? "with" : "no",
		 (long long)p->revalidate_s, (long long)p->ttl_s);
	return 0;
}

int proxies_open(struct registry *r, struct regfs_err *err)
{
	const struct regfs_config *cfg = r->cfg;
	r->proxies = NULL;
	if (!cfg->n_proxies)
		return 0;
	struct proxies *ps = calloc(1, sizeof *ps);
	if (ps)
		ps->v = calloc((size_t)cfg->n_proxies, sizeof *ps->v);
	if (!ps || !ps->v) {
		free(ps);
		return regfs_errf(err, -ENOMEM, "out of memory");
	}
	r->proxies = ps;
	for (int i = 0; i < cfg->n_proxies; i++) {
		int rc = open_one(&ps->v[i], &cfg->proxies[i], i,
				  (size_t)cfg->limits.manifestsize, err);
		ps->n = i + 1; /* what open_one began is freed by proxies_close */
		if (!rc)
			rc = proxy_flights_new(r, &ps->v[i].flights, err);
		if (rc)
			return rc;
		if (!(ps->v[i].pulls = proxy_pulls_new(cfg)))
			return regfs_errf(err, -ENOMEM, "out of memory");
	}
	return 0;
}

void proxies_close(struct registry *r)
{
	struct proxies *ps = r ? r->proxies : NULL;
	if (!ps)
		return;
	for (int i = 0; i < ps->n; i++) {
		struct proxy *p = &ps->v[i];
		proxy_flights_free(p->flights); /* its fetches use p->up */
		regfs_client_free(p->up);
		proxy_tags_free(p->tags);
		proxy_pulls_free(p->pulls);
		for (int j = 0; j < p->n_ns; j++)
			free(p->ns[j]);
		free(p->ns);
	}
	free(ps->v);
	free(ps);
	r->proxies = NULL;
}
