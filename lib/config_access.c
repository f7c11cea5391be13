/* config_access.c — `regfs.admins` and `regfs.access` (see config_internal.h
 * and docs/config.md, "Access control"): the per-repository rules of
 * registry/acl.h. Everything wrong is an error naming the key and the line:
 * a rule that silently does nothing would open or close a repository
 * without anyone noticing. */
#include "config_internal.h"

#include <regfs/log.h>
#include <regfs/strvec.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OOM(err) regfs_errf(err, -ENOMEM, "out of memory reading configuration")

struct actx {
	yaml_document_t *doc;
	const char *source;
	struct regfs_err *err;
	struct regfs_access *ac;
};

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(struct actx *c, const yaml_node_t *n, const char *key, const char *want)
{
	return regfs_errf(c->err, -EINVAL, "%s line %d: %s: expected %s", c->source,
			  n ? line_of(n) : 0, key, want);
}

/* A list of non-empty strings (a single scalar counts as a list of one). */
static int names(struct actx *c, yaml_node_t *v, const char *key, char ***out, int *n)
{
	struct strvec sv = STRVEC_INIT;
	int rc = 0;
	if (v->type == YAML_SCALAR_NODE) {
		rc = scalar(v)[0] ? strvec_push(&sv, scalar(v)) : 0;
	} else if (v->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = v->data.sequence.items.start;
		     !rc && i < v->data.sequence.items.top; i++) {
			const char *s = scalar(yaml_document_get_node(c->doc, *i));
			if (!s || !s[0]) {
				strvec_clear(&sv);
				return bad(c, v, key, "a list of names like [alice, bob]");
			}
			rc = strvec_push(&sv, s);
		}
	} else {
		return bad(c, v, key, "a list of names like [alice, bob]");
	}
	if (rc) {
		strvec_clear(&sv);
		return OOM(c->err);
	}
	size_t k = 0;
	char **list = strvec_take(&sv, &k);
	for (int i = 0; i < *n; i++)
		free((*out)[i]);
	free(*out);
	*out = list;
	*n = (int)k;
	return 0;
}

/* [pull, push, delete] or "*" -> REGFS_ACT_* bits. */
static int actions(struct actx *c, yaml_node_t *v, const char *key, unsigned *out)
{
	char **list = NULL;
	int n = 0, rc = names(c, v, key, &list, &n);
	*out = 0;
	for (int i = 0; !rc && i < n; i++) {
		if (!strcmp(list[i], "pull"))
			*out |= REGFS_ACT_PULL;
		else if (!strcmp(list[i], "push"))
			*out |= REGFS_ACT_PUSH;
		else if (!strcmp(list[i], "delete"))
			*out |= REGFS_ACT_DELETE;
		else if (!strcmp(list[i], "*"))
			*out |= REGFS_ACT_ALL;
		else
			rc = regfs_errf(c->err, -EINVAL, "%s line %d: %s: unknown action \"%s\" "
					"(pull, push, delete or \"*\")", c->source, line_of(v), key,
					list[i]);
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

/* users: / groups: of a rule: name -> actions. */
static int grants(struct actx *c, yaml_node_t *v, const char *key,
		  struct regfs_access_grant **out, int *n)
{
	if (v->type != YAML_MAPPING_NODE)
		return bad(c, v, key, "a map of name to actions, like {alice: [pull, push]}");
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
		const char *name = scalar(kn);
		if (!name || !name[0] || !vn)
			return bad(c, v, key, "names as keys");
		struct regfs_access_grant *ng = realloc(*out, (size_t)(*n + 1) * sizeof *ng);
		if (!ng)
			return OOM(c->err);
		*out = ng;
		ng[*n] = (struct regfs_access_grant){.name = strdup(name)};
		if (!ng[*n].name)
			return OOM(c->err);
		(*n)++;
		char k[200];
		snprintf(k, sizeof k, "%s.%s", key, name);
		int rc = actions(c, vn, k, &ng[*n - 1].actions);
		if (rc)
			return rc;
	}
	return 0;
}

/* One pair of a rule map. */
static int rule_key(struct actx *c, struct regfs_access_rule *r, const char *key,
		    yaml_node_t *v, const char *where)
{
	char k[160];
	snprintf(k, sizeof k, "%s.%s", where, key);
	if (!strcmp(key, "repository")) {
		const char *s = scalar(v);
		if (!s || !s[0])
			return bad(c, v, k, "a repository name or glob like \"team/*\"");
		free(r->repository);
		return (r->repository = strdup(s)) ? 0 : OOM(c->err);
	}
	if (!strcmp(key, "users"))
		return grants(c, v, k, &r->users, &r->n_users);
	if (!strcmp(key, "groups"))
		return grants(c, v, k, &r->groups, &r->n_groups);
	if (!strcmp(key, "anonymous"))
		return actions(c, v, k, &r->anonymous);
	return regfs_errf(c->err, -EINVAL, "%s line %d: %s: unknown key (repository, users, "
			  "groups, anonymous)", c->source, line_of(v), k);
}

static int rule(struct actx *c, yaml_node_t *item, int idx)
{
	char where[64];
	snprintf(where, sizeof where, "regfs.access.rules[%d]", idx);
	if (item->type != YAML_MAPPING_NODE)
		return bad(c, item, where, "a map (repository, users, groups, anonymous)");
	struct regfs_access *ac = c->ac;
	struct regfs_access_rule *nr = realloc(ac->rules, (size_t)(ac->n_rules + 1) * sizeof *nr);
	if (!nr)
		return OOM(c->err);
	ac->rules = nr;
	struct regfs_access_rule *r = &nr[ac->n_rules++];
	memset(r, 0, sizeof *r);
	for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
		const char *key = scalar(yaml_document_get_node(c->doc, p->key));
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (!key || !v)
			return bad(c, item, where, "words as keys");
		int rc = rule_key(c, r, key, v, where);
		if (rc)
			return rc;
	}
	if (!r->repository)
		return bad(c, item, where, "a repository (a name or glob like \"team/*\")");
	for (int i = 0; i < ac->n_rules - 1; i++)
		if (!strcmp(ac->rules[i].repository, r->repository))
			return regfs_errf(c->err, -EINVAL, "%s line %d: %s: repository \"%s\" has "
					  "a rule already (regfs.access.rules[%d])", c->source,
					  line_of(item), where, r->repository, i);
	return 0;
}

static int groups(struct actx *c, yaml_node_t *v)
{
	if (v->type != YAML_MAPPING_NODE)
		return bad(c, v, "regfs.access.groups", "a map of group name to members");
	struct regfs_access *ac = c->ac;
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		const char *name = scalar(yaml_document_get_node(c->doc, p->key));
		yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
		if (!name || !name[0] || !vn)
			return bad(c, v, "regfs.access.groups", "group names as keys");
		struct regfs_access_group *ng = realloc(ac->groups, (size_t)(ac->n_groups + 1) * sizeof *ng);
		if (!ng)
			return OOM(c->err);
		ac->groups = ng;
		ng[ac->n_groups] = (struct regfs_access_group){.name = strdup(name)};
		if (!ng[ac->n_groups].name)
			return OOM(c->err);
		ac->n_groups++;
		char k[160];
		snprintf(k, sizeof k, "regfs.access.groups.%s", name);
		int rc = names(c, vn, k, &ng[ac->n_groups - 1].members,
			       &ng[ac->n_groups - 1].n_members);
		if (rc)
			return rc;
	}
	return 0;
}

static int rules(struct actx *c, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return bad(c, v, "regfs.access.rules", "a list of rules (- repository: …)");
	int idx = 0;
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(c->doc, *i);
		int rc = it ? rule(c, it, idx++) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

/* Every group a rule names is defined: a typo must not silently grant nothing. */
static int check_groups(struct actx *c, const yaml_node_t *where)
{
	const struct regfs_access *ac = c->ac;
	for (int i = 0; i < ac->n_rules; i++)
		for (int j = 0; j < ac->rules[i].n_groups; j++) {
			const char *g = ac->rules[i].groups[j].name;
			bool found = false;
			for (int k = 0; k < ac->n_groups && !found; k++)
				found = !strcmp(ac->groups[k].name, g);
			if (!found)
				return regfs_errf(c->err, -EINVAL, "%s line %d: regfs.access.rules[%d]"
						  ".groups: group \"%s\" is not defined in "
						  "regfs.access.groups", c->source, line_of(where),
						  i, g);
		}
	return 0;
}

static int access_section(struct actx *c, yaml_node_t *node)
{
	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node, "regfs.access", "a section (groups, rules, catalog)");
	c->ac->set = true;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		const char *key = scalar(yaml_document_get_node(c->doc, p->key));
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		int rc;
		if (!key || !v)
			return bad(c, node, "regfs.access", "words as keys");
		if (!strcmp(key, "groups"))
			rc = groups(c, v);
		else if (!strcmp(key, "rules"))
			rc = rules(c, v);
		else if (!strcmp(key, "catalog"))
			rc = names(c, v, "regfs.access.catalog", &c->ac->catalog, &c->ac->n_catalog);
		else
			rc = regfs_errf(c->err, -EINVAL, "%s line %d: regfs.access.%s: unknown key "
					"(groups, rules, catalog)", c->source, line_of(v), key);
		if (rc)
			return rc;
	}
	return check_groups(c, node);
}

int config_access_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			bool admins, struct regfs_config *cfg, struct regfs_err *err)
{
	struct actx c = {.doc = doc, .source = source, .err = err, .ac = &cfg->access};
	if (admins)
		return names(&c, node, "regfs.admins", &cfg->access.admins, &cfg->access.n_admins);
	return access_section(&c, node);
}

/* ---- copy and free ---- */

static void strs_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void grants_free(struct regfs_access_grant *g, int n)
{
	for (int i = 0; i < n; i++)
		free(g[i].name);
	free(g);
}

void regfs_access_free(struct regfs_access *ac)
{
	strs_free(ac->admins, ac->n_admins);
	strs_free(ac->catalog, ac->n_catalog);
	for (int i = 0; i < ac->n_groups; i++) {
		free(ac->groups[i].name);
		strs_free(ac->groups[i].members, ac->groups[i].n_members);
	}
	free(ac->groups);
	for (int i = 0; i < ac->n_rules; i++) {
		free(ac->rules[i].repository);
		grants_free(ac->rules[i].users, ac->rules[i].n_users);
		grants_free(ac->rules[i].groups, ac->rules[i].n_groups);
	}
	free(ac->rules);
	memset(ac, 0, sizeof *ac);
}

static int strs_copy(char ***dst, int *dn, char *const *src, int n)
{
	*dn = 0;
	*dst = n ? calloc((size_t)n, sizeof **dst) : NULL;
	if (n && !*dst)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		if (!((*dst)[i] = strdup(src[i])))
			return -ENOMEM;
		(*dn)++;
	}
	return 0;
}

static int grants_copy(struct regfs_access_grant **dst, int *dn,
		       const struct regfs_access_grant *src, int n)
{
	*dn = 0;
	*dst = n ? calloc((size_t)n, sizeof **dst) : NULL;
	if (n && !*dst)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		(*dst)[i].actions = src[i].actions;
		if (!((*dst)[i].name = strdup(src[i].name)))
			return -ENOMEM;
		(*dn)++;
	}
	return 0;
}

static int rules_copy(struct regfs_access *d, const struct regfs_access *s)
{
	d->rules = s->n_rules ? calloc((size_t)s->n_rules, sizeof *d->rules) : NULL;
	if (s->n_rules && !d->rules)
		return -ENOMEM;
	for (int i = 0; i < s->n_rules; i++) {
		struct regfs_access_rule *r = &d->rules[i];
		d->n_rules++;
		r->anonymous = s->rules[i].anonymous;
		if (!(r->repository = strdup(s->rules[i].repository)) ||
		    grants_copy(&r->users, &r->n_users, s->rules[i].users, s->rules[i].n_users) ||
		    grants_copy(&r->groups, &r->n_groups, s->rules[i].groups, s->rules[i].n_groups))
			return -ENOMEM;
	}
	return 0;
}

int regfs_access_copy(struct regfs_access *dst, const struct regfs_access *src)
{
	memset(dst, 0, sizeof *dst);
	dst->set = src->set;
	int rc = strs_copy(&dst->admins, &dst->n_admins, src->admins, src->n_admins);
	if (!rc)
		rc = strs_copy(&dst->catalog, &dst->n_catalog, src->catalog, src->n_catalog);
	if (!rc && src->n_groups) {
		dst->groups = calloc((size_t)src->n_groups, sizeof *dst->groups);
		rc = dst->groups ? 0 : -ENOMEM;
		for (int i = 0; !rc && i < src->n_groups; i++) {
			dst->n_groups++;
			if (!(dst->groups[i].name = strdup(src->groups[i].name)) ||
			    strs_copy(&dst->groups[i].members, &dst->groups[i].n_members,
				      src->groups[i].members, src->groups[i].n_members))
				rc = -ENOMEM;
		}
	}
	if (!rc)
		rc = rules_copy(dst, src);
	if (rc)
		regfs_access_free(dst);
	return rc;
}
