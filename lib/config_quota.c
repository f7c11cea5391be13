/* config_quota.c — `regfs.quota`, a list of sections (see config_internal.h):
 *
 *   regfs:
 *     quota:
 *       - repository: "team/&#42;"   (i.e. team/ then a star)
 *         bytes: 10GiB
 *         tags: 100
 *
 * Each item becomes a struct regfs_quota. repository is required, and at
 * least one of bytes and tags; unknown keys are warnings, like everywhere
 * else in the file; a bad value is an error naming the item, key and line. */
#include "config_internal.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(const char *source, const yaml_node_t *n, int idx, const char *key,
	       const char *want, struct regfs_err *err)
{
	return regfs_errf(err, -EINVAL, "%s line %d: regfs.quota[%d].%s: expected %s", source,
			  line_of(n), idx, key, want);
}

static int quota_key(const char *source, int idx, const char *k, yaml_node_t *v,
		     struct regfs_quota *q, struct regfs_config *cfg, struct regfs_err *err)
{
	const char *s = scalar(v);
	if (!strcmp(k, "repository")) {
		if (!s || !*s)
			return bad(source, v, idx, k, "a repository name or glob like team/*", err);
		free(q->repository);
		q->repository = strdup(s);
		return q->repository ? 0 : regfs_errf(err, -ENOMEM, "out of memory reading "
						       "configuration");
	}
	if (!strcmp(k, "bytes")) {
		if (!s || regfs_size_parse(s, &q->bytes))
			return bad(source, v, idx, k, "a size like 10737418240 or 10GiB", err);
		return 0;
	}
	if (!strcmp(k, "tags")) {
		char *end;
		errno = 0;
		unsigned long long n = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
		if (!s || *s < '0' || *s > '9' || *end || errno)
			return bad(source, v, idx, k, "a non-negative integer", err);
		q->tags = n;
		return 0;
	}
	log_warn("%s line %d: unknown key regfs.quota[%d].%s (ignored)", source, line_of(v), idx, k);
	cfg->warnings++;
	return 0;
}

static int quota_item(yaml_document_t *doc, yaml_node_t *item, const char *source, int idx,
		      struct regfs_quota *q, struct regfs_config *cfg, struct regfs_err *err)
{
	if (item->type != YAML_MAPPING_NODE)
		return regfs_errf(err, -EINVAL, "%s line %d: regfs.quota[%d]: expected a section "
				  "(repository, bytes, tags)", source, line_of(item), idx);
	for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(doc, p->key));
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (!k || !v)
			return regfs_errf(err, -EINVAL, "%s line %d: regfs.quota[%d]: keys must be "
					  "plain words", source, line_of(item), idx);
		int rc = quota_key(source, idx, k, v, q, cfg, err);
		if (rc)
			return rc;
	}
	if (!q->repository)
		return regfs_errf(err, -EINVAL, "%s line %d: regfs.quota[%d].repository: required "
				  "(a repository name or glob like team/*)", source, line_of(item), idx);
	if (!q->bytes && !q->tags)
		return regfs_errf(err, -EINVAL, "%s line %d: regfs.quota[%d] (%s): set bytes, tags "
				  "or both (above 0)", source, line_of(item), idx, q->repository);
	return 0;
}

int config_quotas_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			struct regfs_config *cfg, struct regfs_err *err)
{
	if (node->type == YAML_SCALAR_NODE && !*scalar(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return regfs_errf(err, -EINVAL, "%s line %d: regfs.quota: expected a list of quotas "
				  "(- repository: …)", source, line_of(node));
	for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
		struct regfs_quota *nq = realloc(cfg->quotas, (size_t)(cfg->n_quotas + 1) * sizeof *nq);
		if (!nq)
			return regfs_errf(err, -ENOMEM, "out of memory reading configuration");
		cfg->quotas = nq;
		struct regfs_quota *q = &nq[cfg->n_quotas++];
		memset(q, 0, sizeof *q);
		yaml_node_t *item = yaml_document_get_node(doc, *i);
		int rc = item ? quota_item(doc, item, source, cfg->n_quotas - 1, q, cfg, err) : -EINVAL;
		if (rc)
			return rc;
	}
	return 0;
}
