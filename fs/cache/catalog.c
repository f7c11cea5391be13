/* catalog.c — the catalog in the names cache: every repository name,
 * fetched once per ttl, and what a directory of the mount sees of it
 * (classify a path, list the next components). */
#include "names_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>
#include <regfs/log.h>


/* One GET of the catalog: *out a new snapshot holding two references (the
 * cache's and the caller's), or a negative errno (logged). */
static int catalog_fetch(struct names_cache *nc, struct catalog **out)
{
	struct regfs_strv v = {0};
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_catalog(nc->client, &v, &e);
	if (rc)
		return fs_client_errno(rc, &e, "listing the catalog");
	struct catalog *c = calloc(1, sizeof *c);
	if (!c) {
		regfs_strv_free(&v);
		return -ENOMEM;
	}
	regfs_qsort(v.v, v.n, sizeof *v.v, regfs_cmp_str);
	c->names = v.v;
	c->n = v.n;
	sflight_ref_init(&c->ref, 2);
	*out = c;
	return 0;
}

int names_catalog(struct names_cache *nc, struct catalog **out)
{
	pthread_mutex_lock(&nc->g.mu);
	if (sflight_begin(&nc->g, &nc->cat_sf, nc->o->ttl) == SFLIGHT_HIT) {
		*out = nc->cat;
		names_hit(nc, &nc->cat->ref);
		return 0;
	}
	pthread_mutex_unlock(&nc->g.mu);
	atomic_fetch_add(&nc->st->nc_misses, 1);
	struct catalog *c = NULL;
	int rc = catalog_fetch(nc, &c);
	pthread_mutex_lock(&nc->g.mu);
	if (c) {
		catalog_put(nc->cat);
		nc->cat = c;
	}
	sflight_end(&nc->g, &nc->cat_sf, c != NULL);
	if (c) {
		c->at = nc->cat_sf.at;
		*out = c;
	}
	pthread_mutex_unlock(&nc->g.mu);
	return rc;
}

/* First index i with names[i] >= key. */
static size_t lower_bound(const struct catalog *c, const char *key)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(c->names[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int catalog_classify(const struct catalog *c, const char *path)
{
	int r = 0;
	size_t i = lower_bound(c, path);
	if (i < c->n && strcmp(c->names[i], path) == 0)
		r |= 1;
	size_t pl = strlen(path);
	char *prefix = malloc(pl + 2);
	if (!prefix)
		return r;
	memcpy(prefix, path, pl);
	prefix[pl] = '/';
	prefix[pl + 1] = 0;
	/* Names sharing a prefix are contiguous in sorted order. */
	i = lower_bound(c, prefix);
	if (i < c->n && strncmp(c->names[i], prefix, pl + 1) == 0)
		r |= 2;
	free(prefix);
	return r;
}

int catalog_children(const struct catalog *c, const char *path, char ***names, size_t *n)
{
	size_t pl = strlen(path);
	char *prefix = malloc(pl + 2);
	if (!prefix)
		return -ENOMEM;
	memcpy(prefix, path, pl);
	if (pl)
		prefix[pl++] = '/';
	prefix[pl] = 0;
	size_t cap = 16, k = 0;
	char **v = malloc(cap * sizeof *v);
	if (!v) {
		free(prefix);
		return -ENOMEM;
	}
	for (size_t i = lower_bound(c, prefix); i < c->n; i++) {
		const char *s = c->names[i];
		if (strncmp(s, prefix, pl) != 0)
			break;
		const char *comp = s + pl, *slash = strchr(comp, '/');
		size_t cl = slash ? (size_t)(slash - comp) : strlen(comp);
		if (cl == 0)
			continue;
		if (k == cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		v[k] = strndup(comp, cl);
		if (v[k])
			k++;
	}
	free(prefix);
	/* "a/b", "a/b-c", "a/b/c": the same component need not be adjacent. */
	regfs_qsort(v, k, sizeof *v, regfs_cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u && strcmp(v[u - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[u++] = v[i];
	}
	*names = v;
	*n = u;
	return 0;
}
