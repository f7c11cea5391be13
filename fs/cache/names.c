/* names.c — the names cache: what a name points at right now.
 *
 * Catalog, each repository's tag list and each tag's digest can change at
 * any time, so they are kept for --ttl seconds and then fetched again (the
 * kernel's entry/attr timeouts for these nodes are the same ttl, see
 * kinds.c). Snapshots (struct catalog, struct tagset) are immutable lists
 * shared by reference count, so a readdir keeps a consistent view while a
 * refresh installs a new one. A tag's resolution (digest, mtime) lives in
 * its tagset entry and is filled lazily, in parallel batches.
 *
 * Single flight (regfs/sflight.h): while one thread fetches something,
 * others that need the same thing wait for its result instead of sending
 * the same request (one lock and one wake-up for the whole cache; waits are
 * short and rare, so broadcast-to-all is fine). A failed fetch is not cached: the next
 * operation tries again, which is how the mount recovers when the registry
 * comes back.
 *
 * The cache's files: names.c (the cache, its entries, installing a tag
 * list), catalog.c, tags.c (tag lists), resolve.c (tag -> digest), bulk.c
 * (the bulk-manifests extension's prefetch). */
#include "names_internal.h"
#include "digests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/hash.h>
#include <regfs/cmp.h>
#include <regfs/log.h>

int names_cmptag(const void *a, const void *b)
{
	return strcmp(((const struct tag_ent *)a)->tag, ((const struct tag_ent *)b)->tag);
}

void tagdig_clear(struct tag_ent *te)
{
	if (te->dig_kind == TAGDIG_STR)
		free(te->dig.str);
	memset(&te->dig, 0, sizeof te->dig);
	te->dig_kind = TAGDIG_NONE;
}

int tagdig_set(struct tag_ent *te, const char *d)
{
	tagdig_clear(te);
	if (!d || !d[0])
		return 0;
	if (digkey_len(d) == sizeof te->dig.raw) {
		digkey_put(d, te->dig.raw);
		te->dig_kind = TAGDIG_RAW;
		return 0;
	}
	if (!(te->dig.str = strdup(d)))
		return -ENOMEM;
	te->dig_kind = TAGDIG_STR;
	return 0;
}

int tagdig_copy(struct tag_ent *dst, const struct tag_ent *src)
{
	if (src->dig_kind == TAGDIG_STR)
		return tagdig_set(dst, src->dig.str);
	tagdig_clear(dst);
	dst->dig = src->dig;
	dst->dig_kind = src->dig_kind;
	return 0;
}

bool tagdig_known(const struct tag_ent *te)
{
	return te->dig_kind != TAGDIG_NONE;
}

bool tagdig_is(const struct tag_ent *te, const char *d)
{
	if (te->dig_kind == TAGDIG_NONE)
		return !d || !d[0];
	if (te->dig_kind == TAGDIG_STR)
		return d && strcmp(te->dig.str, d) == 0;
	return d && digkey_eq(te->dig.raw, true, d);
}

void tagdig_get(const struct tag_ent *te, char out[REGFS_DIGEST_MAX])
{
	if (te->dig_kind == TAGDIG_RAW)
		digkey_str(te->dig.raw, true, out);
	else
		snprintf(out, REGFS_DIGEST_MAX, "%s", te->dig_kind == TAGDIG_STR ? te->dig.str : "");
}

struct names_cache *names_cache_new(struct regfs_client *cl, const struct mount_opts *o,
				    struct fs_stats *st, struct manifest_cache *mc)
{
	struct names_cache *nc = calloc(1, sizeof *nc);
	if (!nc)
		return NULL;
	*nc = (struct names_cache){.client = cl, .o = o, .st = st, .mc = mc};
	sflight_group_init(&nc->g, loop_may_block);
	return nc;
}

void catalog_put(struct catalog *c)
{
	if (!c || !sflight_ref_put(&c->ref))
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c);
}

void tagset_put(struct tagset *t)
{
	if (!t || !sflight_ref_put(&t->ref))
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->t[i].tag);
		tagdig_clear(&t->t[i]);
	}
	free(t->t);
	free(t);
}

void names_cache_free(struct names_cache *nc)
{
	if (!nc)
		return;
	catalog_put(nc->cat);
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct repo_ent *r = nc->b[i], *nx; r; r = nx) {
			nx = r->next;
			tagset_put(r->ts);
			names_set_manifests(r, NULL, 0);
			free(r->repo);
			free(r);
		}
	sflight_group_destroy(&nc->g);
	free(nc);
}


struct repo_ent *names_repo_ent(struct names_cache *nc, const char *repo)
{
	size_t b = regfs_fnv1a64_str(repo) % NBUCKETS;
	for (struct repo_ent *r = nc->b[b]; r; r = r->next)
		if (strcmp(r->repo, repo) == 0)
			return r;
	struct repo_ent *r = calloc(1, sizeof *r);
	if (!r || !(r->repo = strdup(repo))) {
		free(r);
		return NULL;
	}
	r->next = nc->b[b];
	nc->b[b] = r;
	return r;
}

/* Takes ownership of the strings in v. */


/* Caller holds g.mu. Copies the resolutions of `old` into the unresolved
 * entries of `ts` with the same tag (both sorted by tag). */
static void carry_resolutions(const struct tagset *old, struct tagset *ts)
{
	if (!old)
		return;
	size_t i = 0, j = 0;
	while (i < old->n && j < ts->n) {
		int c = strcmp(old->t[i].tag, ts->t[j].tag);
		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0) {
			j++;
			continue;
		}
		const struct tag_ent *o = &old->t[i++];
		struct tag_ent *n = &ts->t[j++];
		/* An expired one is carried too: it is re-validated (cheaply, see
		 * revalidate) before anyone uses it. */
		if (n->resolved_at > 0 || o->state != T_IDLE || o->resolved_at <= 0 || o->rc ||
		    !tagdig_known(o) || tagdig_copy(n, o) != 0)
			continue;
		n->mtime = o->mtime;
		n->mtime_src = o->mtime_src;
		n->resolved_at = o->resolved_at;
		n->rc = 0;
	}
}

/* Caller holds g.mu. Installs a fresh tagset (takes the caller's reference). */
void names_install(struct repo_ent *r, struct tagset *ts)
{
	carry_resolutions(r->ts, ts);
	tagset_put(r->ts);
	r->ts = ts;
	sflight_set(&r->sf);
	ts->at = r->sf.at;
}

/* v's digests as 32 raw bytes each when every one is a sha256 (a list per
 * manifest of the registry: 32 bytes a manifest instead of a pointer and a
 * copied string, 88), else NULL. */
static uint8_t (*manifests_raw(char **v, size_t n))[32]
{
	if (!n)
		return NULL;
	for (size_t k = 0; k < n; k++)
		if (!v[k] || digkey_len(v[k]) != 32)
			return NULL;
	uint8_t (*raw)[32] = malloc(n * sizeof *raw);
	for (size_t k = 0; raw && k < n; k++)
		digkey_put(v[k], raw[k]);
	return raw;
}

void names_set_manifests(struct repo_ent *r, char **v, size_t n)
{
	for (size_t k = 0; r->mf && k < r->nmf; k++)
		free(r->mf[k]);
	free(r->mf);
	free(r->mf_raw);
	r->mf = v;
	r->mf_raw = manifests_raw(v, n);
	r->nmf = n;
	if (r->mf_raw) {
		for (size_t k = 0; k < n; k++)
			free(v[k]);
		free(v);
		r->mf = NULL;
	}
}

void names_manifest_at(const struct repo_ent *r, size_t i, char out[REGFS_DIGEST_MAX])
{
	if (r->mf_raw)
		digkey_str(r->mf_raw[i], true, out);
	else
		snprintf(out, REGFS_DIGEST_MAX, "%s", r->mf[i] ? r->mf[i] : "");
}

struct tagset *names_tagset_of(const struct regfs_tag_info *tags, size_t n, bool all_resolved)
{
	struct tagset *ts = calloc(1, sizeof *ts);
	if (!ts || !(ts->t = calloc(n + 1, sizeof *ts->t))) {
		free(ts);
		return NULL;
	}
	double now = now_mono();
	for (size_t j = 0; j < n; j++) {
		struct tag_ent *te = &ts->t[ts->n];
		if (!tags[j].tag || !(te->tag = strdup(tags[j].tag)))
			continue;
		/* A digest that cannot be kept (out of memory) leaves the tag
		 * unresolved: it is asked for again, never taken for "none". */
		bool kept = tagdig_set(te, tags[j].digest) == 0;
		tag_time_set(te, tags[j].pushed, 0);
		te->resolved_at = kept && (all_resolved || tagdig_known(te)) ? now : 0;
		ts->n++;
	}
	regfs_qsort(ts->t, ts->n, sizeof *ts->t, names_cmptag);
	sflight_ref_init(&ts->ref, 1);
	return ts;
}

void names_hit(struct names_cache *nc, struct sflight_ref *ref)
{
	sflight_ref_get(ref);
	pthread_mutex_unlock(&nc->g.mu);
	atomic_fetch_add(&nc->st->nc_hits, 1);
}
