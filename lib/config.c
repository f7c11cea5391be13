/* config.c — see include/regfs/config.h
 *
 * registry:2's config.yml, read with libyaml's document API. One table
 * (`keys`) lists every dotted key we act on, its kind and where it lands in
 * struct regfs_config; the same table drives the YAML walk and the
 * REGISTRY_<KEY> environment overrides, so the two can never disagree. The
 * keys registry:2 knows that change nothing here are a plain list
 * (`accepted`), and a section is whatever has a known key under it.
 *
 * Behaviour follows registry:2 (go-yaml v2) where a user could notice:
 * booleans are YAML 1.1 (yes/no/on/off too), durations are Go's
 * time.ParseDuration or a bare integer of nanoseconds, duplicate keys are an
 * error, every key under `storage:` that is not a known section is a storage
 * driver. Our own extension lives under the top-level `regfs:` key, which
 * registry:2 ignores (it would refuse an unknown key under storage:). */
#include "config_internal.h"

#include <regfs/config.h>
#include <regfs/dynbuf.h>
#include <regfs/mem.h>
#include <regfs/strvec.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define MiB (1024ull * 1024)
#define CONFIG_MAX (16 * MiB) /* a config.yml larger than this is refused */

enum kind {
	K_MAP,       /* a section: descend */
	K_STR, K_LIST, K_BOOL, K_DUR, K_INT, K_SIZE, K_LEVEL, K_FORMATTER, /* scalars */
	K_HEADERS,   /* http.headers: name -> [values] */
	K_ENDPOINTS, /* notifications.endpoints: a list of sections (config_notify.c) */
	K_QUOTAS,    /* regfs.quota: a list of sections (config_quota.c) */
	K_PROXIES,   /* proxy (off 1: registry:2's one section), regfs.proxies (off 0): config_proxy.c */
	K_FIELDS,    /* log.fields: name -> value */
	K_CHECKS,    /* health.file/http/tcp: a list of checks */
	K_CLIENTCAS, /* http.tls.clientcas: a list of files (config_tls.c) */
	K_ACCESS,    /* regfs.access (off 0), regfs.admins (off 1): config_access.c */
	K_ACCEPT,    /* known, no effect for us: ignored silently */
	K_WARN,      /* known, not supported: ignored with a warning */
	K_REFUSE,    /* known, cannot work: error */
};

struct key {
	const char *path;
	enum kind kind;
	size_t off;          /* into struct regfs_config, for scalar kinds */
	const char *note;    /* K_WARN / K_REFUSE: what to tell the user */
};

#define F(m) offsetof(struct regfs_config, m)
#define UNSUPPORTED_DRIVER "this storage driver is not supported; use filesystem or s3"
static const struct key keys[] = {
	{"version", K_STR, F(version), NULL},
	{"loglevel", K_LEVEL, F(log_level), NULL}, /* registry:2's deprecated top-level form */
	{"log.level", K_LEVEL, F(log_level), NULL},
	{"log.formatter", K_FORMATTER, F(log_json), NULL},
	{"log.fields", K_FIELDS, 0, NULL},
	{"log.accesslog.disabled", K_BOOL, F(accesslog_disabled), NULL},

	{"storage.filesystem.rootdirectory", K_STR, F(fs_rootdirectory), NULL},
	{"storage.s3.accesskey", K_STR, F(s3.accesskey), NULL},
	{"storage.s3.secretkey", K_STR, F(s3.secretkey), NULL},
	{"storage.s3.region", K_STR, F(s3.region), NULL},
	{"storage.s3.regionendpoint", K_STR, F(s3.regionendpoint), NULL},
	{"storage.s3.bucket", K_STR, F(s3.bucket), NULL},
	{"storage.s3.rootdirectory", K_STR, F(s3.rootdirectory), NULL},
	{"storage.s3.encrypt", K_BOOL, F(s3.encrypt), NULL},
	{"storage.s3.secure", K_BOOL, F(s3.secure), NULL},
	{"storage.s3.skipverify", K_BOOL, F(s3.skipverify), NULL},
	{"storage.s3.v4auth", K_BOOL, F(s3.v4auth), NULL},
	{"storage.s3.forcepathstyle", K_BOOL, F(s3.forcepathstyle), NULL},
	{"storage.s3.chunksize", K_SIZE, F(s3.chunksize), NULL},
	{"storage.s3.multipartcopythresholdsize", K_SIZE, F(s3.multipartcopythresholdsize), NULL},
	{"storage.s3.multipartcopychunksize", K_SIZE, F(s3.multipartcopychunksize), NULL},
	{"storage.inmemory", K_REFUSE, 0,
	 "the inmemory driver is not supported (it loses every image on restart); use filesystem"},
	{"storage.azure", K_REFUSE, 0, UNSUPPORTED_DRIVER},
	{"storage.gcs", K_REFUSE, 0, UNSUPPORTED_DRIVER},
	{"storage.swift", K_REFUSE, 0, UNSUPPORTED_DRIVER},
	{"storage.oss", K_REFUSE, 0, UNSUPPORTED_DRIVER},
	{"storage.delete.enabled", K_BOOL, F(delete_enabled), NULL},
	{"storage.maintenance.uploadpurging.enabled", K_BOOL, F(uploadpurging.enabled), NULL},
	{"storage.maintenance.uploadpurging.age", K_DUR, F(uploadpurging.age_s), NULL},
	{"storage.maintenance.uploadpurging.interval", K_DUR, F(uploadpurging.interval_s), NULL},
	{"storage.maintenance.uploadpurging.dryrun", K_BOOL, F(uploadpurging.dryrun), NULL},
	{"storage.redirect.disable", K_BOOL, F(redirect_disable), NULL},
	{"storage.cache.blobdescriptor", K_STR, F(cache_blobdescriptor), NULL},
	{"storage.cache.blobdescriptorsize", K_INT, F(cache_blobdescriptorsize), NULL},

	{"regfs.gc.enabled", K_BOOL, F(gc.enabled), NULL},
	{"regfs.gc.interval", K_DUR, F(gc.interval_s), NULL},
	{"regfs.gc.delay", K_DUR, F(gc.delay_s), NULL},
	{"regfs.gc.deleteuntagged", K_BOOL, F(gc.deleteuntagged), NULL},
	{"regfs.layerindex", K_MAP, 0, NULL},
	{"regfs.layerindex.enabled", K_BOOL, F(layerindex.enabled), NULL},
	{"regfs.layerindex.workers", K_INT, F(layerindex.workers), NULL},
	{"regfs.layerindex.maxsize", K_SIZE, F(layerindex.maxsize), NULL},
	{"regfs.layerindex.maxqueue", K_INT, F(layerindex.maxqueue), NULL},
	{"regfs.layerindex.rescan", K_DUR, F(layerindex.rescan_s), NULL},
	{"regfs.limits.manifestsize", K_SIZE, F(limits.manifestsize), NULL},
	{"regfs.limits.jsondepth", K_INT, F(limits.jsondepth), NULL},
	{"regfs.limits.headers", K_INT, F(limits.headers), NULL},
	{"regfs.limits.headersize", K_SIZE, F(limits.headersize), NULL},
	{"regfs.limits.requestline", K_SIZE, F(limits.requestline), NULL},
	{"regfs.limits.uploadsize", K_SIZE, F(limits.uploadsize), NULL},
	{"regfs.limits.uploads", K_INT, F(limits.uploads), NULL},
	{"regfs.limits.uploadsperclient", K_INT, F(limits.uploadsperclient), NULL},
	{"regfs.limits.connsperclient", K_INT, F(limits.connsperclient), NULL},
	{"regfs.limits.requesttimeout", K_DUR, F(limits.requesttimeout_s), NULL},
	{"regfs.limits.idletimeout", K_DUR, F(limits.idletimeout_s), NULL},
	{"regfs.limits.largereads", K_INT, F(limits.largereads), NULL},
	{"regfs.usage", K_MAP, 0, NULL},
	{"regfs.usage.maxseries", K_INT, F(usage.maxseries), NULL},
	{"regfs.quota", K_QUOTAS, 0, NULL},
	{"regfs.proxies", K_PROXIES, 0, NULL},
	{"regfs.proxycache.interval", K_DUR, F(proxycache_interval_s), NULL},
	{"regfs.proxycache.spooldir", K_STR, F(proxycache_spooldir), NULL},
	{"regfs.proxycache.minrate", K_SIZE, F(proxycache_minrate), NULL},
	{"regfs.proxycache.minrategrace", K_DUR, F(proxycache_minrate_grace_s), NULL},

	{"http.addr", K_STR, F(http_addr), NULL},
	{"http.host", K_STR, F(http_host), NULL},
	{"http.draintimeout", K_DUR, F(http_drain_s), NULL},
	{"http.headers", K_HEADERS, 0, NULL},
	{"http.tls.certificate", K_STR, F(tls_certificate), NULL},
	{"http.tls.key", K_STR, F(tls_key), NULL},
	{"http.tls.minimumtls", K_STR, F(tls_minimumtls), NULL},
	{"http.tls.clientauth", K_STR, F(tls_clientauth_name), NULL},
	{"http.tls.clientcas", K_CLIENTCAS, 0, NULL},
	{"http.tls.ciphersuites", K_WARN, 0, "ignored: GnuTLS's default cipher suites for the "
	 "allowed TLS versions are used"},
	{"http.tls.letsencrypt", K_WARN, 0, "Let's Encrypt is not supported; set certificate and key"},
	{"http.debug.addr", K_STR, F(debug_addr), NULL},
	{"http.debug.prometheus.enabled", K_BOOL, F(prometheus_enabled), NULL},
	{"http.debug.prometheus.path", K_STR, F(prometheus_path), NULL},
	{"http.prefix", K_WARN, 0, "a URL prefix is not supported; serve the registry at / behind your proxy"},

	{"health.storagedriver.enabled", K_BOOL, F(health_storage.enabled), NULL},
	{"health.storagedriver.interval", K_DUR, F(health_storage.interval_s), NULL},
	{"health.storagedriver.threshold", K_INT, F(health_storage.threshold), NULL},
	{"health.file", K_CHECKS, REGFS_CHECK_FILE, NULL},
	{"health.http", K_CHECKS, REGFS_CHECK_HTTP, NULL},
	{"health.tcp", K_CHECKS, REGFS_CHECK_TCP, NULL},

	{"auth.token.realm", K_STR, F(token.realm), NULL},
	{"auth.token.service", K_STR, F(token.service), NULL},
	{"auth.token.issuer", K_STR, F(token.issuer), NULL},
	{"auth.token.rootcertbundle", K_STR, F(token.rootcertbundle), NULL},
	{"auth.token.jwks", K_STR, F(token.jwks), NULL},
	{"auth.token.signingalgorithms", K_LIST, F(token.signingalgorithms), NULL},
	{"auth.token.autoredirect", K_WARN, 0, "not supported; the challenge names auth.token.realm as set"},
	{"auth.token.autoredirectpath", K_WARN, 0, "not supported; the challenge names auth.token.realm as set"},
	{"auth.htpasswd.realm", K_STR, F(htpasswd.realm), NULL},
	{"auth.htpasswd.path", K_STR, F(htpasswd.path), NULL},
	{"auth.silly", K_REFUSE, 0, "the silly scheme lets anyone in; use auth.htpasswd"},
	{"regfs.auth.maxfailures", K_INT, F(auth_maxfailures), NULL},
	{"regfs.access", K_ACCESS, 0, NULL},
	{"regfs.admins", K_ACCESS, 1, NULL},
	{"notifications.endpoints", K_ENDPOINTS, 0, NULL},
	{"redis", K_WARN, 0, "redis is not used by regfs; ignored"},
	{"proxy", K_PROXIES, 1, NULL},
	{"validation", K_WARN, 0, "manifest validation settings are not supported; ignored"},
	{"reporting", K_WARN, 0, "reporting (bugsnag, newrelic) is not supported; ignored"},
	{"compatibility", K_WARN, 0, "compatibility settings are not supported; ignored"},
	{"middleware", K_WARN, 0, "middleware is not supported; ignored"},
};
#undef F

/* Keys registry:2 knows that have no effect here: read and ignored silently
 * (they are not scalars we apply, so the environment does not name them). */
static const char *const accepted[] = {
	"log.hooks", "storage.filesystem.maxthreads",
	"storage.s3.multipartcopymaxconcurrency", "storage.s3.keyid",
	"storage.s3.storageclass", "storage.s3.objectacl", "storage.s3.useragent",
	"storage.s3.usedualstack", "storage.s3.accelerate", "storage.s3.loglevel",
	"storage.s3.sessiontoken", "storage.maintenance.readonly",
	"http.secret", "http.net",
	"http.relativeurls", "http.http2", "http.h2c",
	"notifications.events",
};
static const struct key accepted_key = {"", K_ACCEPT, 0, NULL};
/* A section ("storage.s3") is not listed: it is any prefix of a known key. */
static const struct key section_key = {"", K_MAP, 0, NULL};

/* Does `key` lie under the section `path` ("storage.s3.bucket" under "storage.s3")? */
static bool under(const char *key, const char *path, size_t pl)
{
	return strncmp(key, path, pl) == 0 && key[pl] == '.';
}

struct ctx {
	yaml_document_t *doc;
	struct regfs_config *cfg;
	struct regfs_err *err;
	const char *source;      /* file name for messages */
	bool seen_fs, seen_s3;   /* storage drivers configured */
	bool seen_forcepathstyle;
	int storage_line;
};

static const struct key *find_key(const char *path)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].path, path) == 0)
			return &keys[i];
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
		if (strcmp(accepted[i], path) == 0)
			return &accepted_key;
	size_t pl = strlen(path);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (under(keys[i].path, path, pl))
			return &section_key;
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
		if (under(accepted[i], path, pl))
			return &section_key;
	return NULL;
}

/* ---- applying one value --------------------------------------------------- */


/* Stores scalar `v` for key `k`. `loc` says where it came from
 * ("config.yml line 12" or "environment REGISTRY_HTTP_ADDR"). */
static int apply_scalar(struct ctx *c, const struct key *k, const char *v, bool plain,
			const char *loc)
{
	char *base = (char *)c->cfg;
	const char *want = NULL;
	switch (k->kind) {
	case K_STR:
	case K_LIST: {
		char **dst = (char **)(base + k->off);
		char *nv = NULL;
		if (!config_is_null(v, plain) && !(nv = strdup(v)))
			return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
		free(*dst);
		*dst = nv;
		return 0;
	}
	case K_BOOL:
		if (config_parse_bool(v, (bool *)(base + k->off)) == 0)
			return 0;
		want = "true or false";
		break;
	case K_DUR:
		if (regfs_duration_parse(v, (int64_t *)(base + k->off)) == 0)
			return 0;
		want = "a duration like 10s, 1m30s, 24h";
		break;
	case K_INT: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (*v && !*end && !errno && n >= 0 && n <= 1000000) {
			*(int *)(base + k->off) = (int)n;
			return 0;
		}
		want = "a non-negative integer";
		break;
	}
	case K_SIZE:
		if (regfs_size_parse(v, (uint64_t *)(base + k->off)) == 0)
			return 0;
		want = "a size in bytes like 10485760 or 10MiB";
		break;
	case K_LEVEL:
		if (regfs_log_level_parse(v, (enum regfs_log_level *)(base + k->off)) == 0)
			return 0;
		want = "error, warn, info or debug";
		break;
	case K_FORMATTER:
		if (!strcasecmp(v, "text") || !strcasecmp(v, "json") || !strcasecmp(v, "logstash")) {
			*(bool *)(base + k->off) = strcasecmp(v, "text") != 0;
			return 0;
		}
		want = "text, json or logstash";
		break;
	default:
		return regfs_errf(c->err, -EINVAL, "%s: %s: expected a section, got \"%s\"", loc, k->path, v);
	}
	return regfs_errf(c->err, -EINVAL, "%s: %s: expected %s, got \"%s\"", loc, k->path, want, v);
}

/* ---- YAML walk ------------------------------------------------------------ */

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static int headers_add(struct ctx *c, yaml_node_t *val, const char *name, char *loc)
{
	struct regfs_config *cfg = c->cfg;
	struct regfs_header *nh = realloc(cfg->headers, (size_t)(cfg->n_headers + 1) * sizeof *nh);
	if (!nh)
		return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
	cfg->headers = nh;
	struct regfs_header *h = &nh[cfg->n_headers];
	memset(h, 0, sizeof *h);
	if (!(h->name = strdup(name)))
		return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
	cfg->n_headers++;
	yaml_node_item_t *items = NULL;
	size_t n = 0;
	if (val->type == YAML_SEQUENCE_NODE) {
		items = val->data.sequence.items.start;
		n = (size_t)(val->data.sequence.items.top - items);
	} else if (val->type != YAML_SCALAR_NODE) {
		return regfs_errf(c->err, -EINVAL, "%s: http.headers.%s: expected a list of strings like [nosniff]",
				  loc, name);
	} else {
		n = 1; /* a single value: registry:2 wants a list, we are lenient */
	}
	if (!(h->values = calloc(n + 1, sizeof *h->values)))
		return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = items ? yaml_document_get_node(c->doc, items[i]) : val;
		if (!it || it->type != YAML_SCALAR_NODE)
			return regfs_errf(c->err, -EINVAL, "%s: http.headers.%s: expected a list of strings", loc, name);
		if (!(h->values[i] = strdup((const char *)it->data.scalar.value)))
			return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
		h->n_values++;
	}
	return 0;
}

static int walk_headers(struct ctx *c, yaml_node_t *node)
{
	char loc[320];
	snprintf(loc, sizeof loc, "%s line %d", c->source, line_of(node));
	if (node->type == YAML_SCALAR_NODE && config_is_null((const char *)node->data.scalar.value,
						      node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return regfs_errf(c->err, -EINVAL, "%s: http.headers: expected a map of header name to list of values",
				  loc);
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return regfs_errf(c->err, -EINVAL, "%s: http.headers: header names must be strings", loc);
		snprintf(loc, sizeof loc, "%s line %d", c->source, line_of(v));
		int r = headers_add(c, v, (const char *)k->data.scalar.value, loc);
		if (r)
			return r;
	}
	return 0;
}

static int oom(struct ctx *c)
{
	return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
}

/* log.fields: a map of names to scalar values, kept as pairs. */
static int walk_fields(struct ctx *c, yaml_node_t *node)
{
	struct regfs_config *cfg = c->cfg;
	if (node->type != YAML_MAPPING_NODE)
		return regfs_errf(c->err, -EINVAL, "%s line %d: log.fields: expected a map of "
				  "names to values (service: registry)", c->source, line_of(node));
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
			return regfs_errf(c->err, -EINVAL, "%s line %d: log.fields: each field is "
					  "name: value (a single value)", c->source,
					  line_of(k ? k : node));
		char **nf = realloc(cfg->log_fields, (size_t)(cfg->n_log_fields + 1) * 2 * sizeof *nf);
		if (!nf)
			return oom(c);
		cfg->log_fields = nf;
		nf += 2 * cfg->n_log_fields;
		nf[0] = strdup((const char *)k->data.scalar.value);
		nf[1] = strdup((const char *)v->data.scalar.value);
		cfg->n_log_fields++;
		if (!nf[0] || !nf[1])
			return oom(c);
	}
	return 0;
}

static int walk_map(struct ctx *c, yaml_node_t *node, const char *prefix);

/* A K_LIST key given as a YAML list of words: stored comma-joined, as the
 * same key given as one scalar ("a,b") or in the environment is. */
static int walk_list(struct ctx *c, yaml_node_t *node, const struct key *k, const char *loc)
{
	char joined[512] = "";
	size_t n = 0;
	for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(c->doc, *i);
		if (!it || it->type != YAML_SCALAR_NODE)
			return regfs_errf(c->err, -EINVAL, "%s: %s: expected a list of words", loc, k->path);
		const char *w = (const char *)it->data.scalar.value;
		int m = snprintf(joined + n, sizeof joined - n, "%s%s", n ? "," : "", w);
		if (m < 0 || (size_t)m >= sizeof joined - n)
			return regfs_errf(c->err, -EINVAL, "%s: %s: list too long", loc, k->path);
		n += (size_t)m;
	}
	return apply_scalar(c, k, joined, false, loc);
}

/* One "key: value" pair at dotted `path`. */
static int walk_pair(struct ctx *c, const char *path, const char *prefix, yaml_node_t *kn,
		     yaml_node_t *v)
{
	char loc[320];
	snprintf(loc, sizeof loc, "%s line %d", c->source, line_of(kn));
	const struct key *k = find_key(path);
	if (!k) {
		/* registry:2 reads every other key under storage: as a driver name */
		if (strcmp(prefix, "storage") == 0)
			return regfs_errf(c->err, -EINVAL,
					  "%s: %s: unknown storage driver \"%s\"; use filesystem or s3",
					  loc, path, path + strlen("storage."));
		log_warn("%s: unknown key %s (ignored)", loc, path);
		c->cfg->warnings++;
		return 0;
	}
	if (!strcmp(path, "storage.filesystem"))
		c->seen_fs = true;
	else if (!strcmp(path, "storage.s3"))
		c->seen_s3 = true;
	else if (!strcmp(path, "storage.s3.forcepathstyle"))
		c->seen_forcepathstyle = true;

	switch (k->kind) {
	case K_MAP:
		return walk_map(c, v, path);
	case K_HEADERS:
		return walk_headers(c, v);
	case K_ENDPOINTS:
		return config_endpoints_parse(c->doc, v, c->source, c->cfg, c->err);
	case K_QUOTAS:
		return config_quotas_parse(c->doc, v, c->source, c->cfg, c->err);
	case K_PROXIES:
		return config_proxies_parse(c->doc, v, c->source, k->off == 1, c->cfg, c->err);
	case K_FIELDS:
		return walk_fields(c, v);
	case K_CHECKS:
		return config_checks_parse(c->doc, c->source, c->cfg, c->err, v,
					   (enum regfs_check_kind)k->off, k->path);
	case K_LIST:
		if (v->type == YAML_SEQUENCE_NODE)
			return walk_list(c, v, k, loc);
		break;
	case K_CLIENTCAS:
		return config_tls_clientcas_parse(c->doc, v, c->source, c->cfg, c->err);
	case K_ACCESS:
		return config_access_parse(c->doc, v, c->source, k->off == 1, c->cfg, c->err);
	case K_ACCEPT:
		return 0;
	case K_WARN:
		log_warn("%s: %s: %s", loc, path, k->note);
		return 0;
	case K_REFUSE:
		return regfs_errf(c->err, -EINVAL, "%s: %s: %s", loc, path, k->note);
	default:
		break;
	}
	snprintf(loc, sizeof loc, "%s line %d", c->source, line_of(v));
	if (v->type != YAML_SCALAR_NODE)
		return regfs_errf(c->err, -EINVAL, "%s: %s: expected a single value, got a %s", loc, path,
				  v->type == YAML_MAPPING_NODE ? "map" : "list");
	return apply_scalar(c, k, (const char *)v->data.scalar.value,
			    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, loc);
}

static int walk_map(struct ctx *c, yaml_node_t *node, const char *prefix)
{
	if (node->type == YAML_SCALAR_NODE &&
	    config_is_null((const char *)node->data.scalar.value, node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
		return 0; /* "filesystem:" with nothing under it */
	if (node->type != YAML_MAPPING_NODE)
		return regfs_errf(c->err, -EINVAL, "%s line %d: %s: expected a section (key: value lines)",
				  c->source, line_of(node), *prefix ? prefix : "top level");
	if (!strcmp(prefix, "storage"))
		c->storage_line = line_of(node);
	yaml_node_pair_t *start = node->data.mapping.pairs.start;
	for (yaml_node_pair_t *p = start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (!kn || !v || kn->type != YAML_SCALAR_NODE)
			return regfs_errf(c->err, -EINVAL, "%s line %d: keys must be plain words", c->source,
					  kn ? line_of(kn) : 0);
		const char *name = (const char *)kn->data.scalar.value;
		/* go-yaml refuses duplicate keys; so do we (the second would win silently) */
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
			if (qk && qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value, name))
				return regfs_errf(c->err, -EINVAL, "%s line %d: %s%s%s: key defined twice (first at line %d)",
						  c->source, line_of(kn), prefix, *prefix ? "." : "", name, line_of(qk));
		}
		char path[256];
		int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
		if (n < 0 || n >= (int)sizeof path) {
			log_warn("%s line %d: key too long (ignored)", c->source, line_of(kn));
			c->cfg->warnings++;
			continue;
		}
		int r = walk_pair(c, path, prefix, kn, v);
		if (r)
			return r;
	}
	return 0;
}

/* REGISTRY_<PATH> environment overrides, for every scalar key we know
 * (REGISTRY_STORAGE_S3_SECRETKEY keeps secrets out of the file). */
static int apply_env(struct ctx *c)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key *k = &keys[i];
		if (k->kind < K_STR || k->kind > K_FORMATTER)
			continue;
		char name[128] = "REGISTRY_";
		size_t j = strlen(name);
		for (const char *p = k->path; *p && j + 1 < sizeof name; p++)
			name[j++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		name[j] = '\0';
		const char *v = getenv(name);
		if (!v)
			continue;
		char loc[160];
		snprintf(loc, sizeof loc, "environment variable %s", name);
		if (!strncmp(k->path, "storage.filesystem.", 19))
			c->seen_fs = true;
		else if (!strncmp(k->path, "storage.s3.", 11))
			c->seen_s3 = true;
		if (!strcmp(k->path, "storage.s3.forcepathstyle"))
			c->seen_forcepathstyle = true;
		int r = apply_scalar(c, k, v, false, loc);
		if (r)
			return r;
		log_debug("configuration: %s from the environment", k->path);
	}
	return 0;
}

/* regfs.layerindex: values that cannot work are refused, naming the key. */
static int check_layerindex(struct ctx *c)
{
	const struct regfs_config *cfg = c->cfg;
	if (cfg->layerindex.workers < 1 || cfg->layerindex.workers > 64)
		return regfs_errf(c->err, -EINVAL, "%s: regfs.layerindex.workers: %d is not "
				  "between 1 and 64", c->source, cfg->layerindex.workers);
	if (cfg->layerindex.maxqueue < 1)
		return regfs_errf(c->err, -EINVAL, "%s: regfs.layerindex.maxqueue: must be at "
				  "least 1", c->source);
	if (cfg->layerindex.rescan_s < 1)
		return regfs_errf(c->err, -EINVAL, "%s: regfs.layerindex.rescan: must be at "
				  "least 1s", c->source);
	return 0;
}

/* regfs.limits: values that cannot work are refused, naming the key. */
static int check_limits(struct ctx *c)
{
	const struct regfs_config *cfg = c->cfg;
	const char *bad = NULL;
	if (cfg->limits.manifestsize < 1024 || cfg->limits.manifestsize > 64 * MiB)
		bad = "manifestsize: must be between 1KiB and 64MiB";
	else if (cfg->limits.jsondepth < 2 || cfg->limits.jsondepth > 1000)
		bad = "jsondepth: must be between 2 and 1000";
	else if (cfg->limits.largereads < 1)
		bad = "largereads: must be at least 1";
	else if (cfg->limits.requesttimeout_s < 1 || cfg->limits.idletimeout_s < 1)
		bad = "requesttimeout, idletimeout: must be at least 1s";
	if (bad)
		return regfs_errf(c->err, -EINVAL, "%s: regfs.limits.%s", c->source, bad);
	return 0;
}

/* Cross-key rules, after file and environment. */
static int finish(struct ctx *c)
{
	int lr = check_layerindex(c);
	if (!lr)
		lr = check_limits(c);
	if (!lr)
		lr = config_tls_check(c->source, c->cfg, c->err);
	if (!lr)
		lr = config_proxies_finish(c->source, c->cfg, c->err);
	if (lr)
		return lr;
	struct regfs_config *cfg = c->cfg;
	if (c->seen_fs && c->seen_s3)
		return regfs_errf(c->err, -EINVAL,
				  "%s line %d: storage: both filesystem and s3 are configured (in the file or REGISTRY_STORAGE_* variables); configure exactly one storage driver",
				  c->source, c->storage_line ? c->storage_line : 1);
	cfg->storage_type = c->seen_s3 ? REGFS_STORAGE_S3 : REGFS_STORAGE_FILESYSTEM;
	if (cfg->storage_type == REGFS_STORAGE_FILESYSTEM &&
	    (!cfg->fs_rootdirectory || !cfg->fs_rootdirectory[0]))
		return regfs_errf(c->err, -EINVAL, "%s: storage.filesystem.rootdirectory: must not be empty",
				  c->source);
	if (cfg->storage_type == REGFS_STORAGE_S3) {
		struct regfs_s3_config *s3 = &cfg->s3;
		if (!s3->bucket || !s3->bucket[0])
			return regfs_errf(c->err, -EINVAL, "%s: storage.s3.bucket: required for the s3 driver",
					  c->source);
		if (!s3->region || !s3->region[0]) {
			free(s3->region);
			if (!(s3->region = strdup("us-east-1")))
				return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
		}
		if (s3->chunksize < 5 * MiB)
			return regfs_errf(c->err, -EINVAL,
					  "%s: storage.s3.chunksize: %llu bytes is below S3's 5 MiB minimum part size (5242880)",
					  c->source, (unsigned long long)s3->chunksize);
		if (!c->seen_forcepathstyle)
			s3->forcepathstyle = s3->regionendpoint && s3->regionendpoint[0];
	}
	if (!cfg->http_addr || !cfg->http_addr[0])
		return regfs_errf(c->err, -EINVAL, "%s: http.addr: must not be empty (e.g. :5000)", c->source);
	return 0;
}

/* ---- public API ----------------------------------------------------------- */

void regfs_config_defaults(struct regfs_config *cfg, const char *default_rootdir)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->version = strdup("0.1");
	cfg->log_level = REGFS_LOG_INFO;
	cfg->storage_type = REGFS_STORAGE_FILESYSTEM;
	cfg->fs_rootdirectory = strdup(default_rootdir ? default_rootdir : "/var/lib/registry");
	cfg->s3.region = strdup("us-east-1");
	cfg->s3.secure = true;
	cfg->s3.v4auth = true;
	cfg->s3.chunksize = 10 * MiB;
	cfg->s3.multipartcopythresholdsize = 32 * MiB;
	cfg->s3.multipartcopychunksize = 32 * MiB;
	cfg->uploadpurging.enabled = true;
	cfg->uploadpurging.age_s = 168 * 3600;
	cfg->uploadpurging.interval_s = 24 * 3600;
	cfg->gc.interval_s = 3600;
	cfg->gc.delay_s = 3600;
	cfg->layerindex.workers = 1;
	cfg->layerindex.maxsize = 8192 * MiB;
	cfg->layerindex.maxqueue = 1000;
	cfg->layerindex.rescan_s = 60;
	cfg->limits.manifestsize = 4 * MiB;
	cfg->limits.jsondepth = 64;
	cfg->limits.headers = 100;
	cfg->limits.headersize = 16 * 1024;
	cfg->limits.requestline = 8 * 1024;
	cfg->limits.uploads = 512;
	cfg->limits.uploadsperclient = 128;
	cfg->limits.connsperclient = 256;
	cfg->limits.requesttimeout_s = 30;
	cfg->limits.idletimeout_s = 120;
	cfg->limits.largereads = 64;
	cfg->usage.maxseries = 500;
	cfg->proxycache_interval_s = 600;
	cfg->proxycache_minrate = 1024;
	cfg->proxycache_minrate_grace_s = 60;
	cfg->cache_blobdescriptorsize = 10000;
	cfg->http_addr = strdup(default_rootdir ? "127.0.0.1:5000" : ":5000");
	cfg->health_storage.interval_s = 10;
	cfg->health_storage.threshold = 1;
	cfg->http_drain_s = 5;
	cfg->prometheus_path = strdup("/metrics");
	cfg->auth_maxfailures = 10;
}

static int parse_named(const char *yaml, size_t len, const char *source,
		       struct regfs_config *cfg, struct regfs_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return regfs_errf(err, -ENOMEM, "out of memory reading configuration");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		int r = regfs_errf(err, -EINVAL, "%s line %zu: invalid YAML: %s%s%s", source,
				   parser.problem_mark.line + 1, parser.problem ? parser.problem : "syntax error",
				   parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return r;
	}
	struct ctx c = { .doc = &doc, .cfg = cfg, .err = err, .source = source };
	int r = 0;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root) /* an empty file means "all defaults" */
		r = walk_map(&c, root, "");
	if (!r)
		r = apply_env(&c);
	if (!r)
		r = finish(&c);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return r;
}

int regfs_config_parse(const char *yaml, size_t len, struct regfs_config *cfg,
		       struct regfs_err *err)
{
	return parse_named(yaml, len, "config.yml", cfg, err);
}

int regfs_config_load(const char *path, struct regfs_config *cfg, struct regfs_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		return regfs_errf(err, e == ENOENT ? -ENOENT : e == EACCES ? -EACCES : -e,
				  "cannot read configuration %s: %s", path, strerror(e));
	}
	struct dynbuf b = DYNBUF_INIT(CONFIG_MAX);
	char chunk[8192];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = dynbuf_add(&b, chunk, n);
	int rerr = ferror(f);
	fclose(f);
	if (rc == -E2BIG)
		rc = regfs_errf(err, -EINVAL, "configuration %s is larger than 16 MiB", path);
	else if (rc)
		rc = regfs_errf(err, -ENOMEM, "out of memory reading %s", path);
	else if (rerr)
		rc = regfs_errf(err, -EIO, "cannot read configuration %s", path);
	else
		rc = parse_named(dynbuf_ptr(&b), dynbuf_len(&b), path, cfg, err);
	dynbuf_free(&b);
	return rc;
}

void regfs_config_free(struct regfs_config *cfg)
{
	if (!cfg)
		return;
	struct regfs_s3_config *s3 = &cfg->s3;
	REGFS_FREE_STRS(&cfg->version, &cfg->fs_rootdirectory, &s3->accesskey, &s3->secretkey,
			&s3->region, &s3->regionendpoint, &s3->bucket, &s3->rootdirectory,
			&cfg->http_addr, &cfg->http_host);
	for (int i = 0; i < cfg->n_headers; i++) {
		free(cfg->headers[i].name);
		for (int j = 0; j < cfg->headers[i].n_values; j++)
			free(cfg->headers[i].values[j]);
		free(cfg->headers[i].values);
	}
	free(cfg->headers);
	for (int i = 0; i < cfg->n_endpoints; i++)
		regfs_notify_endpoint_free(&cfg->endpoints[i]);
	free(cfg->endpoints);
	for (int i = 0; i < cfg->n_quotas; i++)
		free(cfg->quotas[i].repository);
	free(cfg->quotas);
	for (int i = 0; i < cfg->n_proxies; i++)
		regfs_proxy_config_free(&cfg->proxies[i]);
	free(cfg->proxies);
	for (int i = 0; i < 2 * cfg->n_log_fields; i++)
		free(cfg->log_fields[i]);
	free(cfg->log_fields);
	for (int i = 0; i < cfg->n_checks; i++)
		free(cfg->checks[i].target);
	free(cfg->checks);
	free(cfg->debug_addr);
	free(cfg->prometheus_path);
	free(cfg->tls_certificate);
	free(cfg->tls_key);
	free(cfg->token.realm);
	free(cfg->token.service);
	free(cfg->token.issuer);
	free(cfg->token.rootcertbundle);
	free(cfg->token.jwks);
	free(cfg->token.signingalgorithms);
	free(cfg->tls_minimumtls);
	free(cfg->tls_clientauth_name);
	strvec_clear(&cfg->tls_clientcas);
	free(cfg->htpasswd.realm);
	free(cfg->htpasswd.path);
	free(cfg->proxycache_spooldir);
	free(cfg->cache_blobdescriptor);
	regfs_access_free(&cfg->access);
	memset(cfg, 0, sizeof *cfg);
}
