/* config_proxy.c — the pull-through cache's upstreams (registry/proxy.h):
 *
 *   proxy:                          registry:2's form: one upstream, the
 *     remoteurl: https://registry-1.docker.io    whole namespace (prefix "")
 *     username: …
 *     password: …
 *     ttl: 168h
 *
 *   regfs:
 *     proxies:                      ours: several upstreams, each under a prefix
 *       - prefix: dockerhub
 *         remoteurl: https://registry-1.docker.io
 *         ns: [docker.io]
 *         revalidate: 1m
 *
 * Both go to cfg->proxies; `proxy:` (prefix "") is kept first. The two forms
 * exclude each other (the whole namespace cannot also hold prefixes).
 * registry:2's REGISTRY_PROXY_REMOTEURL/USERNAME/PASSWORD/TTL override (or
 * create) the `proxy:` entry, as they do in registry:2; the key table's
 * automatic overrides cannot, because the section is a list entry.
 *
 * Passwords are never written to a message: errors name keys and lines. */
#include "config_internal.h"

#include <regfs/log.h>
#include <regfs/names.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREFIX_MAX 127          /* registry/proxy.h's PROXY_PREFIX_MAX - 1 */
#define URL_MAX 511             /* PROXY_URL_MAX - 1 */
#define DEFAULT_TTL_S (168 * 3600)
#define DEFAULT_REVALIDATE_S 60

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int oom(struct regfs_err *err)
{
	return regfs_errf(err, -ENOMEM, "out of memory reading configuration");
}

/* "proxy" or "regfs.proxies[i]", for messages. */
static void entry_name(char *out, size_t cap, bool r2, int idx)
{
	if (r2)
		snprintf(out, cap, "proxy");
	else
		snprintf(out, cap, "regfs.proxies[%d]", idx);
}

static int set_str(char **dst, const char *v, struct regfs_err *err)
{
	char *n = strdup(v);
	if (!n)
		return oom(err);
	free(*dst);
	*dst = n;
	return 0;
}

/* `ns`: one host or a list of hosts. */
static int parse_ns(yaml_document_t *doc, yaml_node_t *v, const char *where,
		    struct regfs_proxy_config *p, struct regfs_err *err)
{
	yaml_node_item_t *it = NULL, *end = NULL;
	if (v->type == YAML_SEQUENCE_NODE) {
		it = v->data.sequence.items.start;
		end = v->data.sequence.items.top;
	}
	bool none = !it && v->type == YAML_SCALAR_NODE &&
		    config_is_null(scalar(v), v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
	size_t n = it ? (size_t)(end - it) : none ? 0 : 1;
	char **nv = calloc(n ? n : 1, sizeof *nv);
	if (!nv)
		return oom(err);
	for (int i = 0; i < p->n_ns; i++)
		free(p->ns[i]);
	free(p->ns);
	p->ns = nv;
	p->n_ns = 0;
	for (size_t i = 0; i < n; i++) {
		const char *h = scalar(it ? yaml_document_get_node(doc, it[i]) : v);
		if (!h || !*h || strpbrk(h, "/ \t?#@"))
			return regfs_errf(err, -EINVAL, "%s.ns: expected a host name or a list of "
					  "them, like [docker.io]", where);
		if (!(p->ns[p->n_ns] = strdup(h)))
			return oom(err);
		p->n_ns++;
	}
	return 0;
}

static int parse_duration_key(const char *s, int64_t *out, const char *where, const char *k,
			      struct regfs_err *err)
{
	if (s && regfs_duration_parse(s, out) == 0)
		return 0;
	return regfs_errf(err, -EINVAL, "%s.%s: expected a duration like 60s, 10m, 168h",
			  where, k);
}

/* One key of an entry. registry:2's `proxy:` knows remoteurl, username,
 * password and ttl; revalidate, ns and cacert are ours and allowed there
 * too (registry:2 ignores keys it does not know); prefix is regfs.proxies'
 * only (`proxy:` is the whole namespace). */
static int entry_key(yaml_document_t *doc, const char *k, yaml_node_t *v, bool r2,
		     const char *where, struct regfs_proxy_config *p, struct regfs_config *cfg,
		     struct regfs_err *err)
{
	const char *s = scalar(v);
	if (r2 && !strcmp(k, "prefix")) {
		log_warn("%s.%s: proxy caches the whole namespace (ignored); use regfs.proxies "
			 "for upstreams under a prefix", where, k);
		cfg->warnings++;
		return 0;
	}
	if (!strcmp(k, "ns"))
		return parse_ns(doc, v, where, p, err);
	if (!strcmp(k, "ttl"))
		return parse_duration_key(s, &p->ttl_s, where, k, err);
	if (!strcmp(k, "revalidate"))
		return parse_duration_key(s, &p->revalidate_s, where, k, err);
	char **dst = !strcmp(k, "prefix")      ? &p->prefix
		     : !strcmp(k, "remoteurl") ? &p->remoteurl
		     : !strcmp(k, "username")  ? &p->username
		     : !strcmp(k, "password")  ? &p->password
		     : !strcmp(k, "cacert")    ? &p->cacert
					       : NULL;
	if (!dst) {
		log_warn("%s: unknown key %s.%s (ignored)", where, where, k);
		cfg->warnings++;
		return 0;
	}
	if (!s)
		return regfs_errf(err, -EINVAL, "%s.%s: expected a single value", where, k);
	if (!*s) { /* "username:" left empty: not set (anonymous, system CAs, …) */
		free(*dst);
		*dst = NULL;
		return 0;
	}
	return set_str(dst, s, err);
}

static void entry_defaults(struct regfs_proxy_config *p)
{
	memset(p, 0, sizeof *p);
	p->ttl_s = DEFAULT_TTL_S;
	p->revalidate_s = DEFAULT_REVALIDATE_S;
}

/* Appends a zeroed entry with defaults; NULL on ENOMEM. `first` puts it at
 * index 0 (the `proxy:` entry). */
static struct regfs_proxy_config *append(struct regfs_config *cfg, bool first)
{
	struct regfs_proxy_config *nv =
		realloc(cfg->proxies, (size_t)(cfg->n_proxies + 1) * sizeof *nv);
	if (!nv)
		return NULL;
	cfg->proxies = nv;
	if (first)
		memmove(nv + 1, nv, (size_t)cfg->n_proxies * sizeof *nv);
	struct regfs_proxy_config *p = first ? nv : &nv[cfg->n_proxies];
	cfg->n_proxies++;
	entry_defaults(p);
	return p;
}

static int parse_entry(yaml_document_t *doc, yaml_node_t *item, const char *source, bool r2,
		       int idx, struct regfs_config *cfg, struct regfs_err *err)
{
	char name[64], where[320];
	entry_name(name, sizeof name, r2, idx);
	snprintf(where, sizeof where, "%s line %d: %s", source, line_of(item), name);
	if (item->type != YAML_MAPPING_NODE)
		return regfs_errf(err, -EINVAL, "%s: expected a section (%s)", where,
				  r2 ? "remoteurl, username, password, ttl"
				     : "prefix, remoteurl, username, password, ttl, revalidate, "
				       "ns, cacert");
	struct regfs_proxy_config *p = append(cfg, r2);
	if (!p)
		return oom(err);
	if (r2 && !(p->prefix = strdup("")))
		return oom(err);
	for (yaml_node_pair_t *kv = item->data.mapping.pairs.start;
	     kv < item->data.mapping.pairs.top; kv++) {
		yaml_node_t *kn = yaml_document_get_node(doc, kv->key);
		yaml_node_t *v = yaml_document_get_node(doc, kv->value);
		const char *k = scalar(kn);
		if (!k || !v)
			return regfs_errf(err, -EINVAL, "%s: keys must be plain words", where);
		char kw[320];
		snprintf(kw, sizeof kw, "%s line %d: %s", source, line_of(kn), name);
		int rc = entry_key(doc, k, v, r2, kw, p, cfg, err);
		if (rc)
			return rc;
	}
	return 0;
}

int config_proxies_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			 bool registry2, struct regfs_config *cfg, struct regfs_err *err)
{
	if (node->type == YAML_SCALAR_NODE &&
	    config_is_null(scalar(node), node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
		return 0; /* "proxy:" with nothing under it: no cache */
	if (registry2)
		return parse_entry(doc, node, source, true, 0, cfg, err);
	if (node->type != YAML_SEQUENCE_NODE)
		return regfs_errf(err, -EINVAL, "%s line %d: regfs.proxies: expected a list of "
				  "upstreams (- prefix: …\\n  remoteurl: …)", source, line_of(node));
	int idx = 0;
	for (yaml_node_item_t *i = node->data.sequence.items.start;
	     i < node->data.sequence.items.top; i++, idx++) {
		yaml_node_t *item = yaml_document_get_node(doc, *i);
		int rc = item ? parse_entry(doc, item, source, false, idx, cfg, err) : -EINVAL;
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- environment, then validation ---------------------------------------- */

/* registry:2's REGISTRY_PROXY_* variables: they override the `proxy:`
 * entry, creating it when the file has none. */
static int apply_env(struct regfs_config *cfg, struct regfs_err *err)
{
	static const char *const vars[] = {"REGISTRY_PROXY_REMOTEURL", "REGISTRY_PROXY_USERNAME",
					   "REGISTRY_PROXY_PASSWORD", "REGISTRY_PROXY_TTL"};
	const char *val[4];
	bool any = false;
	for (int i = 0; i < 4; i++)
		any |= (val[i] = getenv(vars[i])) != NULL;
	if (!any)
		return 0;
	struct regfs_proxy_config *p = cfg->n_proxies && cfg->proxies[0].prefix &&
					       !cfg->proxies[0].prefix[0]
					       ? &cfg->proxies[0]
					       : NULL;
	if (!p && (!(p = append(cfg, true)) || !(p->prefix = strdup(""))))
		return oom(err);
	char **dst[] = {&p->remoteurl, &p->username, &p->password};
	for (int i = 0; i < 3; i++)
		if (val[i] && set_str(dst[i], val[i], err))
			return -ENOMEM;
	if (val[3] && regfs_duration_parse(val[3], &p->ttl_s))
		return regfs_errf(err, -EINVAL, "environment variable REGISTRY_PROXY_TTL: "
				  "expected a duration like 168h");
	log_debug("configuration: proxy from REGISTRY_PROXY_* environment variables");
	return 0;
}

/* remoteurl: http(s)://host[:port] with an optional trailing '/', which is
 * dropped (the cache appends /v2/…). */
static int check_url(const char *where, struct regfs_proxy_config *p, struct regfs_err *err)
{
	const char *u = p->remoteurl;
	if (!u || !*u)
		return regfs_errf(err, -EINVAL, "%s.remoteurl: required (the upstream registry, "
				  "like https://registry-1.docker.io)", where);
	const char *h = !strncasecmp(u, "https://", 8) ? u + 8
			: !strncasecmp(u, "http://", 7) ? u + 7
							 : NULL;
	size_t len = strlen(u);
	while (len && u[len - 1] == '/')
		len--;
	p->remoteurl[len] = '\0';
	size_t hl = h ? strcspn(h, "/?#@ ") : 0;
	if (!h || hl == 0 || h[hl] || len > URL_MAX)
		return regfs_errf(err, -EINVAL, "%s.remoteurl: \"%.200s\" is not an http:// or "
				  "https:// URL of a registry host (scheme://host[:port], no path, "
				  "no credentials; at most %d characters)", where, u, URL_MAX);
	return 0;
}

/* prefix: a repository name (so "<prefix>/<name>" is one), not too long to
 * leave room for names under it. A trailing '/' is dropped. */
static int check_prefix(const char *where, struct regfs_proxy_config *p, struct regfs_err *err)
{
	if (!p->prefix)
		return regfs_errf(err, -EINVAL, "%s.prefix: required (the repositories "
				  "under \"<prefix>/\" are this upstream's cache)", where);
	size_t n = strlen(p->prefix);
	if (n && p->prefix[n - 1] == '/')
		p->prefix[--n] = '\0';
	if (!n || n > PREFIX_MAX || !regfs_name_valid(p->prefix))
		return regfs_errf(err, -EINVAL, "%s.prefix: \"%.200s\" is not a valid repository "
				  "name prefix (lowercase components like dockerhub or "
				  "cache/quay, at most %d characters)", where, p->prefix,
				  PREFIX_MAX);
	return 0;
}

/* Is `a` equal to `b` or one of its ancestors ("a" of "a/b")? */
static bool covers(const char *a, const char *b)
{
	size_t n = strlen(a);
	return !strncmp(a, b, n) && (b[n] == '\0' || b[n] == '/');
}

static int check_overlaps(const char *source, const struct regfs_config *cfg,
			  struct regfs_err *err)
{
	for (int i = 0; i < cfg->n_proxies; i++)
		for (int j = 0; j < cfg->n_proxies; j++) {
			const char *a = cfg->proxies[i].prefix, *b = cfg->proxies[j].prefix;
			if (i == j || !covers(a, b))
				continue;
			if (strlen(a) == strlen(b) && i > j)
				continue; /* reported once */
			return regfs_errf(err, -EINVAL, "%s: regfs.proxies[%d].prefix \"%s\" %s "
					  "regfs.proxies[%d].prefix \"%s\": every repository "
					  "must belong to one upstream at most", source, j, b,
					  strlen(a) == strlen(b) ? "duplicates" : "lies inside",
					  i, a);
		}
	return 0;
}

/* registry:2 is a cache only when proxy.remoteurl is set: a `proxy:`
 * section without one (a template's empty value) is dropped, with a warning. */
static void drop_empty_r2(const char *source, struct regfs_config *cfg)
{
	struct regfs_proxy_config *p = cfg->n_proxies ? &cfg->proxies[0] : NULL;
	if (!p || !p->prefix || p->prefix[0] || (p->remoteurl && p->remoteurl[0]))
		return;
	log_warn("%s: proxy: no remoteurl: not a pull-through cache (as in registry:2)", source);
	cfg->warnings++;
	regfs_proxy_config_free(p);
	memmove(p, p + 1, (size_t)(cfg->n_proxies - 1) * sizeof *p);
	cfg->n_proxies--;
}

int config_proxies_finish(const char *source, struct regfs_config *cfg, struct regfs_err *err)
{
	int rc = apply_env(cfg, err);
	if (rc)
		return rc;
	drop_empty_r2(source, cfg);
	if (cfg->proxycache_interval_s < 1)
		return regfs_errf(err, -EINVAL, "%s: regfs.proxycache.interval: must be at least "
				  "1s", source);
	bool r2 = cfg->n_proxies && cfg->proxies[0].prefix && !cfg->proxies[0].prefix[0];
	if (r2 && cfg->n_proxies > 1)
		return regfs_errf(err, -EINVAL, "%s: proxy and regfs.proxies are both configured: "
				  "proxy makes the whole namespace one upstream's cache, so no "
				  "prefix can be another's; keep one of them (regfs.proxies with "
				  "a prefix keeps pushes possible)", source);
	for (int i = 0; i < cfg->n_proxies; i++) {
		struct regfs_proxy_config *p = &cfg->proxies[i];
		char where[300], name[64];
		entry_name(name, sizeof name, r2, i);
		snprintf(where, sizeof where, "%s: %s", source, name);
		rc = r2 ? 0 : check_prefix(where, p, err);
		if (!rc)
			rc = check_url(where, p, err);
		if (!rc && p->ttl_s < 0)
			rc = regfs_errf(err, -EINVAL, "%s.ttl: must not be negative", where);
		if (!rc && p->revalidate_s < 0)
			rc = regfs_errf(err, -EINVAL, "%s.revalidate: must not be negative", where);
		if (rc)
			return rc;
	}
	return r2 ? 0 : check_overlaps(source, cfg, err);
}

void regfs_proxy_config_free(struct regfs_proxy_config *p)
{
	free(p->prefix);
	free(p->remoteurl);
	free(p->username);
	if (p->password) {
		/* a secret: wiped before it goes back to the allocator */
		volatile char *s = p->password;
		while (*s)
			*s++ = '\0';
		free(p->password);
	}
	for (int i = 0; i < p->n_ns; i++)
		free(p->ns[i]);
	free(p->ns);
	free(p->cacert);
	memset(p, 0, sizeof *p);
}
