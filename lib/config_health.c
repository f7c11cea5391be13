/* config_health.c — health.file, health.http and health.tcp: each a list of
 * checks (struct regfs_health_check), as registry:2 reads them. Unknown keys
 * in a check are warnings; a bad value is an error naming the check, the key
 * and the line. */
#include "config_internal.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hctx {
	yaml_document_t *doc;
	struct regfs_config *cfg;
	struct regfs_err *err;
	const char *source;
};

static int oom(struct hctx *c)
{
	return regfs_errf(c->err, -ENOMEM, "out of memory reading configuration");
}

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

/* One key of one health check ("interval: 10s"). */
static int check_key(struct hctx *c, struct regfs_health_check *h, const char *sec,
		     const char *key, const char *v, int line)
{
	static const char *const target[] = {"file", "uri", "addr"};
	char loc[320];
	snprintf(loc, sizeof loc, "%s line %d: health.%s.%s", c->source, line, sec, key);
	if (!strcmp(key, target[h->kind])) {
		free(h->target);
		return (h->target = strdup(v)) ? 0 : oom(c);
	}
	if (!strcmp(key, "interval") || (h->kind != REGFS_CHECK_FILE && !strcmp(key, "timeout"))) {
		int64_t *d = key[0] == 'i' ? &h->interval_s : &h->timeout_s;
		if (regfs_duration_parse(v, d) == 0 && *d > 0)
			return 0;
		return regfs_errf(c->err, -EINVAL, "%s: expected a duration like 10s, got \"%s\"", loc, v);
	}
	long n = 0;
	char *end = NULL;
	bool is_int = (n = strtol(v, &end, 10), *v && !*end);
	if (h->kind != REGFS_CHECK_FILE && !strcmp(key, "threshold")) {
		if (is_int && n >= 0 && n <= 1000000) {
			h->threshold = (int)n;
			return 0;
		}
		return regfs_errf(c->err, -EINVAL, "%s: expected a non-negative integer, got \"%s\"", loc, v);
	}
	if (h->kind == REGFS_CHECK_HTTP && !strcmp(key, "statuscode")) {
		if (is_int && n >= 100 && n <= 599) {
			h->statuscode = (unsigned)n;
			return 0;
		}
		return regfs_errf(c->err, -EINVAL, "%s: expected an HTTP status (100-599), got \"%s\"", loc, v);
	}
	log_warn("%s: unknown key (ignored)", loc);
	c->cfg->warnings++;
	return 0;
}

/* One item of health.file/http/tcp: a map of its keys. */
static int walk_check(struct hctx *c, yaml_node_t *item, enum regfs_check_kind kind,
		      const char *sec)
{
	if (item->type != YAML_MAPPING_NODE)
		return regfs_errf(c->err, -EINVAL, "%s line %d: health.%s: each check is a map "
				  "(- %s: …)", c->source, line_of(item), sec,
				  kind == REGFS_CHECK_FILE ? "file" : kind == REGFS_CHECK_HTTP ? "uri" : "addr");
	struct regfs_config *cfg = c->cfg;
	struct regfs_health_check *nc = realloc(cfg->checks, (size_t)(cfg->n_checks + 1) * sizeof *nc);
	if (!nc)
		return oom(c);
	cfg->checks = nc;
	struct regfs_health_check *h = &nc[cfg->n_checks++];
	*h = (struct regfs_health_check){.kind = kind, .statuscode = 200, .timeout_s = 5,
					 .interval_s = 10, .threshold = 1};
	for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return regfs_errf(c->err, -EINVAL, "%s line %d: health.%s: keys must be words",
					  c->source, line_of(item), sec);
		const char *key = (const char *)k->data.scalar.value;
		if (v->type != YAML_SCALAR_NODE) { /* http headers: not sent */
			log_warn("%s line %d: health.%s.%s: not supported (ignored)", c->source,
				 line_of(k), sec, key);
			c->cfg->warnings++;
			continue;
		}
		int r = check_key(c, h, sec, key, (const char *)v->data.scalar.value, line_of(v));
		if (r)
			return r;
	}
	if (!h->target)
		return regfs_errf(c->err, -EINVAL, "%s line %d: health.%s: a check needs its %s",
				  c->source, line_of(item), sec,
				  kind == REGFS_CHECK_FILE ? "file" : kind == REGFS_CHECK_HTTP ? "uri" : "addr");
	return 0;
}

/* health.file / health.http / health.tcp: a list of checks. */
int config_checks_parse(yaml_document_t *doc, const char *source, struct regfs_config *cfg,
			struct regfs_err *err, yaml_node_t *node, enum regfs_check_kind kind,
			const char *path)
{
	struct hctx hc = {doc, cfg, err, source}, *c = &hc;
	const char *sec = path + strlen("health.");
	if (node->type == YAML_SCALAR_NODE && config_is_null((const char *)node->data.scalar.value,
						      node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
		return 0; /* "file:" with nothing under it */
	if (node->type != YAML_SEQUENCE_NODE)
		return regfs_errf(c->err, -EINVAL, "%s line %d: %s: expected a list of checks",
				  c->source, line_of(node), path);
	for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(c->doc, *i);
		int r = it ? walk_check(c, it, kind, sec) : 0;
		if (r)
			return r;
	}
	return 0;
}
