/* config_notify.c — `notifications.endpoints`, the one list of sections in
 * registry:2's config.yml (see config_internal.h). Each item becomes a
 * struct regfs_notify_endpoint; unknown keys in an item are warnings, like
 * everywhere else in the file, and a bad value is an error naming the item,
 * the key and the line. */
#include "config_internal.h"

#include <regfs/log.h>
#include <regfs/mem.h>
#include <regfs/strvec.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OOM(err) regfs_errf(err, -ENOMEM, "out of memory reading configuration")

struct ectx {
	yaml_document_t *doc;
	const char *source;
	struct regfs_err *err;
	int idx;               /* item number, for messages */
	int *warnings;
};

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(struct ectx *c, const yaml_node_t *n, const char *key, const char *want)
{
	return regfs_errf(c->err, -EINVAL, "%s line %d: notifications.endpoints[%d].%s: expected %s",
			  c->source, line_of(n), c->idx, key, want);
}

/* A scalar or a list of scalars, appended to `sv`. */
static int strlist(struct ectx *c, yaml_node_t *v, const char *key, struct strvec *sv)
{
	if (v->type == YAML_SCALAR_NODE)
		return strvec_push(sv, scalar(v)) ? OOM(c->err) : 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return bad(c, v, key, "a list of strings");
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
		const char *s = scalar(yaml_document_get_node(c->doc, *i));
		if (!s)
			return bad(c, v, key, "a list of strings");
		if (strvec_push(sv, s))
			return OOM(c->err);
	}
	return 0;
}

/* headers: name -> [values], as http.headers. */
static int headers(struct ectx *c, yaml_node_t *v, struct regfs_notify_endpoint *ep)
{
	if (v->type != YAML_MAPPING_NODE)
		return bad(c, v, "headers", "a map of header name to list of values");
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		const char *name = scalar(yaml_document_get_node(c->doc, p->key));
		yaml_node_t *vals = yaml_document_get_node(c->doc, p->value);
		if (!name || !vals)
			return bad(c, v, "headers", "header names that are strings");
		struct regfs_header *nh = realloc(ep->headers, (size_t)(ep->n_headers + 1) * sizeof *nh);
		if (!nh)
			return OOM(c->err);
		ep->headers = nh;
		struct regfs_header *h = &nh[ep->n_headers];
		memset(h, 0, sizeof *h);
		if (!(h->name = strdup(name)))
			return OOM(c->err);
		ep->n_headers++;
		struct strvec sv = STRVEC_INIT;
		int rc = strlist(c, vals, "headers", &sv);
		size_t n = sv.n;
		h->values = strvec_take(&sv, &n);
		h->n_values = (int)n;
		strvec_clear(&sv);
		if (rc)
			return rc;
	}
	return 0;
}

static int take_list(struct ectx *c, yaml_node_t *v, const char *key, char ***arr, int *n)
{
	struct strvec sv = STRVEC_INIT;
	for (int i = 0; i < *n; i++)
		if (strvec_push(&sv, (*arr)[i]))
			return OOM(c->err);
	int rc = strlist(c, v, key, &sv);
	if (rc == 0) {
		size_t m = 0;
		for (int i = 0; i < *n; i++)
			free((*arr)[i]);
		free(*arr);
		*arr = strvec_take(&sv, &m);
		*n = (int)m;
	}
	strvec_clear(&sv);
	return rc;
}

/* ignore: {mediatypes: [...], actions: [...]} */
static int ignore(struct ectx *c, yaml_node_t *v, struct regfs_notify_endpoint *ep)
{
	if (v->type != YAML_MAPPING_NODE)
		return bad(c, v, "ignore", "a section with mediatypes and actions");
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(c->doc, p->key));
		yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
		int rc = 0;
		if (!k || !val)
			return bad(c, v, "ignore", "a section with mediatypes and actions");
		if (!strcmp(k, "mediatypes"))
			rc = take_list(c, val, "ignore.mediatypes", &ep->ignored_mediatypes,
				       &ep->n_ignored_mediatypes);
		else if (!strcmp(k, "actions"))
			rc = take_list(c, val, "ignore.actions", &ep->ignored_actions,
				       &ep->n_ignored_actions);
		else {
			log_warn("%s line %d: unknown key notifications.endpoints[%d].ignore.%s (ignored)",
				 c->source, line_of(val), c->idx, k);
			(*c->warnings)++;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int scalar_key(struct ectx *c, const char *k, yaml_node_t *v,
		      struct regfs_notify_endpoint *ep)
{
	const char *s = scalar(v);
	if (!s)
		return bad(c, v, k, "a single value");
	if (!strcmp(k, "name") || !strcmp(k, "url")) {
		char **dst = k[0] == 'n' ? &ep->name : &ep->url;
		free(*dst);
		return (*dst = strdup(s)) ? 0 : OOM(c->err);
	}
	if (!strcmp(k, "timeout") || !strcmp(k, "backoff")) {
		int64_t *dst = k[0] == 't' ? &ep->timeout_ms : &ep->backoff_ms;
		return regfs_duration_parse_ms(s, dst) ? bad(c, v, k, "a duration like 500ms or 1s") : 0;
	}
	if (!strcmp(k, "threshold")) {
		char *end;
		long n = strtol(s, &end, 10);
		if (!*s || *end || n < 0 || n > 1000000)
			return bad(c, v, k, "a non-negative integer");
		ep->threshold = (int)n;
		return 0;
	}
	if (!strcmp(k, "disabled")) {
		if (config_parse_bool(s, &ep->disabled))
			return bad(c, v, k, "true or false");
		return 0;
	}
	log_warn("%s line %d: unknown key notifications.endpoints[%d].%s (ignored)", c->source,
		 line_of(v), c->idx, k);
	(*c->warnings)++;
	return 0;
}

static int endpoint_key(struct ectx *c, const char *k, yaml_node_t *v,
			struct regfs_notify_endpoint *ep)
{
	if (!strcmp(k, "headers"))
		return headers(c, v, ep);
	if (!strcmp(k, "ignoredmediatypes"))
		return take_list(c, v, k, &ep->ignored_mediatypes, &ep->n_ignored_mediatypes);
	if (!strcmp(k, "ignore"))
		return ignore(c, v, ep);
	return scalar_key(c, k, v, ep);
}

static int endpoint(struct ectx *c, yaml_node_t *item, struct regfs_notify_endpoint *ep)
{
	ep->timeout_ms = 1000;
	ep->threshold = 10;
	ep->backoff_ms = 1000;
	if (item->type != YAML_MAPPING_NODE)
		return regfs_errf(c->err, -EINVAL, "%s line %d: notifications.endpoints[%d]: expected "
				  "a section (name, url, …)", c->source, line_of(item), c->idx);
	for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(c->doc, p->key));
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (!k || !v)
			return regfs_errf(c->err, -EINVAL, "%s line %d: notifications.endpoints[%d]: keys "
					  "must be plain words", c->source, line_of(item), c->idx);
		int rc = endpoint_key(c, k, v, ep);
		if (rc)
			return rc;
	}
	if (!ep->name || !*ep->name)
		return regfs_errf(c->err, -EINVAL, "%s line %d: notifications.endpoints[%d].name: "
				  "required", c->source, line_of(item), c->idx);
	if (!ep->url || (strncmp(ep->url, "http://", 7) && strncmp(ep->url, "https://", 8)))
		return regfs_errf(c->err, -EINVAL, "%s line %d: notifications.endpoints[%d].url: "
				  "required, an http:// or https:// URL (endpoint %s)", c->source,
				  line_of(item), c->idx, ep->name);
	if (ep->timeout_ms <= 0)
		ep->timeout_ms = 1000; /* registry:2: 0 means the default */
	if (ep->threshold <= 0)
		ep->threshold = 10;
	if (ep->backoff_ms <= 0)
		ep->backoff_ms = 1000;
	return 0;
}

int config_endpoints_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			   struct regfs_config *cfg, struct regfs_err *err)
{
	struct ectx c = {.doc = doc, .source = source, .err = err, .warnings = &cfg->warnings};
	if (node->type == YAML_SCALAR_NODE && !*scalar(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return regfs_errf(err, -EINVAL, "%s line %d: notifications.endpoints: expected a list "
				  "of endpoints (- name: …)", source, line_of(node));
	for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
		struct regfs_notify_endpoint *ne = realloc(cfg->endpoints,
			(size_t)(cfg->n_endpoints + 1) * sizeof *ne);
		if (!ne)
			return OOM(err);
		cfg->endpoints = ne;
		struct regfs_notify_endpoint *ep = &ne[cfg->n_endpoints++];
		memset(ep, 0, sizeof *ep);
		c.idx = cfg->n_endpoints - 1;
		int rc = endpoint(&c, yaml_document_get_node(doc, *i), ep);
		if (rc)
			return rc;
		for (int j = 0; j < c.idx; j++)
			if (!strcmp(cfg->endpoints[j].name, ep->name))
				return regfs_errf(err, -EINVAL, "%s: notifications.endpoints: two endpoints "
						  "are named %s; names must be unique", source, ep->name);
	}
	return 0;
}

static void free_strs(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void regfs_notify_endpoint_free(struct regfs_notify_endpoint *ep)
{
	REGFS_FREE_STRS(&ep->name, &ep->url);
	for (int i = 0; i < ep->n_headers; i++) {
		free(ep->headers[i].name);
		free_strs(ep->headers[i].values, ep->headers[i].n_values);
	}
	free(ep->headers);
	free_strs(ep->ignored_mediatypes, ep->n_ignored_mediatypes);
	free_strs(ep->ignored_actions, ep->n_ignored_actions);
	memset(ep, 0, sizeof *ep);
}
