/* lib/layer/index.c — putting a layer's entries in order: tar semantics
 * (the last entry of a path wins), implied directories synthesized, entries
 * under non-directories and dangling hard links left out, then breadth-first
 * numbering so that the children of every directory are one contiguous run
 * sorted by name (O(1) listing, O(log n) lookup by name). Also the lookups
 * and the small accessors of the public API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "regfs/hash.h"
#include "regfs/log.h"

int lx_path_normalize(struct lx_arena *a, const char *p, size_t n, uint32_t max, char **out)
{
	n = strnlen(p, n);
	char *b = malloc(n + 1);
	if (!b)
		return -ENOMEM;
	size_t o = 0, i = 0;
	int r = 0;
	while (i < n && r == 0) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t cl = j - i;
		if (cl == 2 && p[i] == '.' && p[i + 1] == '.')
			r = -EINVAL;
		if (r == 0 && cl && !(cl == 1 && p[i] == '.')) {
			if (o)
				b[o++] = '/';
			memcpy(b + o, p + i, cl);
			o += cl;
		}
		i = j + 1;
	}
	if (r == 0 && o > max)
		r = -EINVAL;
	if (r == 0 && !(*out = lx_arena_strndup(a, b, o)))
		r = -E2BIG;
	free(b);
	return r;
}

/* Order: path, then synthetic before real, then tar order: after sorting,
 * the last of a run of equal paths is the one that wins. */
static int raw_cmp(const void *x, const void *y)
{
	const struct lx_raw *a = x, *b = y;
	int c = strcmp(a->e.path, b->e.path);
	if (c)
		return c;
	int sa = !(a->e.flags & LAYER_F_SYNTHETIC), sb = !(b->e.flags & LAYER_F_SYNTHETIC);
	if (sa != sb)
		return sa - sb;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Index in [lo, hi) of the name equal to `name` (len bytes, not terminated)
 * in an array sorted by strcmp, or -1; `name_at` reads the i-th name. One
 * search serves the raw entries (by full path) and a directory's children. */
static long sorted_find(const void *arr, size_t lo, size_t hi,
			const char *(*name_at)(const void *arr, size_t i), const char *name, size_t len)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *q = name_at(arr, mid);
		int c = strncmp(q, name, len);
		if (c == 0 && q[len])
			c = 1;
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static const char *raw_path_at(const void *arr, size_t i)
{
	return ((const struct lx_raw *)arr)[i].e.path;
}

/* Index of `path` (len bytes) in the sorted unique array, or -1. */
static long raw_find(const struct lx_raw *v, size_t n, const char *path, size_t len)
{
	return sorted_find(v, 0, n, raw_path_at, path, len);
}

static int raws_push(struct lx_raws *r, const struct lx_raw *x)
{
	void *v = r->v;
	if (lx_grow(&v, &r->alloc, r->n, sizeof *r->v, 64))
		return -ENOMEM;
	r->v = v;
	r->v[r->n++] = *x;
	return 0;
}

/* Sort, keep the last of each path. */
static void raws_dedupe(struct lx_raws *r)
{
	if (r->n)
		qsort(r->v, r->n, sizeof *r->v, raw_cmp);
	size_t o = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (i + 1 < r->n && strcmp(r->v[i].e.path, r->v[i + 1].e.path) == 0)
			continue;
		r->v[o++] = r->v[i];
	}
	r->n = o;
}

/* The synthesized directories so far, by path: an open-addressing set of
 * indexes into `syn`, so that each implied directory is added once however
 * many entries lie under it (tars without directory entries are common). */
struct pset {
	uint32_t *slot;   /* syn index + 1; 0 = empty */
	size_t cap, n;
};

static uint32_t *pset_slot(struct pset *s, const struct lx_raws *syn, const char *p, size_t len)
{
	size_t i = (size_t)regfs_fnv1a64(p, len) & (s->cap - 1);
	for (;; i = (i + 1) & (s->cap - 1)) {
		uint32_t v = s->slot[i];
		if (!v)
			return &s->slot[i];
		const char *q = syn->v[v - 1].e.path;
		if (strncmp(q, p, len) == 0 && !q[len])
			return &s->slot[i];
	}
}

static int pset_grow(struct pset *s, const struct lx_raws *syn)
{
	if ((s->n + 1) * 2 <= s->cap)
		return 0;
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	struct pset ns = { calloc(ncap, sizeof *ns.slot), ncap, s->n };
	if (!ns.slot)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i]) {
			const char *q = syn->v[s->slot[i] - 1].e.path;
			*pset_slot(&ns, syn, q, strlen(q)) = s->slot[i];
		}
	free(s->slot);
	*s = ns;
	return 0;
}

/* Add a synthetic directory for every missing ancestor (and the root). */
static int add_implied(struct lx_raws *r, struct lx_arena *a)
{
	struct lx_raws syn = { 0 };
	struct pset set = { 0 };
	struct lx_raw root = { .e = { .path = "", .name = "", .type = LAYER_DIR, .mode = 0755,
	                              .flags = LAYER_F_SYNTHETIC, .link_index = LAYER_NONE } };
	int ret = raws_push(&syn, &root);
	size_t n = r->n;
	for (size_t i = 0; i < n && ret == 0; i++) {
		const char *p = r->v[i].e.path;
		const char *s = strrchr(p, '/');
		while (s && ret == 0 && raw_find(r->v, n, p, (size_t)(s - p)) < 0) {
			size_t len = (size_t)(s - p);
			if ((ret = pset_grow(&set, &syn)) < 0)
				break;
			uint32_t *slot = pset_slot(&set, &syn, p, len);
			if (*slot)
				break;   /* added before, with its own ancestors */
			struct lx_raw d = root;
			if (!(d.e.path = lx_arena_strndup(a, p, len))) {
				ret = -E2BIG;
				break;
			}
			const char *sl = strrchr(d.e.path, '/');
			d.e.name = sl ? sl + 1 : d.e.path;
			if ((ret = raws_push(&syn, &d)) < 0)
				break;
			*slot = (uint32_t)syn.n;
			set.n++;
			while (s > p && *--s != '/')
				;
			if (s == p)
				s = NULL;
		}
	}
	for (size_t i = 0; i < syn.n && ret == 0; i++)
		ret = raws_push(r, &syn.v[i]);
	free(syn.v);
	free(set.slot);
	if (ret == 0)
		raws_dedupe(r);
	return ret;
}

/* parent[i] in the sorted array; entries whose parent is missing or not a
 * directory are dropped (drop[i] = 1). */
static void link_parents(const struct lx_opts *o, struct lx_raws *r, uint32_t *parent,
                         unsigned char *drop)
{
	for (size_t i = 0; i < r->n; i++) {
		const char *p = r->v[i].e.path;
		if (!*p) {
			parent[i] = (uint32_t)i;
			continue;
		}
		const char *s = strrchr(p, '/');
		long pi = raw_find(r->v, r->n, p, s ? (size_t)(s - p) : 0);
		if (pi < 0 || drop[pi] || r->v[pi].e.type != LAYER_DIR) {
			if (pi >= 0 && !drop[pi])
				log_warn("%s: tar entry \"%s\" left out: its parent is not a directory",
				         o->name, p);
			drop[i] = 1;
			continue;
		}
		parent[i] = (uint32_t)pi;
	}
}

/* Resolve every hard link to the entry holding the data. */
static void link_hardlinks(const struct lx_opts *o, struct lx_raws *r, uint32_t *target,
                           unsigned char *drop)
{
	for (size_t i = 0; i < r->n; i++) {
		target[i] = LAYER_NONE;
		if (drop[i] || r->v[i].e.type != LAYER_HARDLINK)
			continue;
		long t = (long)i;
		for (int hop = 0; hop < 32 && t >= 0 && r->v[t].e.type == LAYER_HARDLINK; hop++) {
			const char *l = r->v[t].e.link;
			t = raw_find(r->v, r->n, l, strlen(l));
		}
		if (t < 0 || drop[t] || r->v[t].e.type == LAYER_HARDLINK ||
		    r->v[t].e.type == LAYER_DIR) {
			log_warn("%s: tar entry \"%s\" left out: hard link to \"%s\", which is not "
			         "a file of the layer", o->name, r->v[i].e.path, r->v[i].e.link);
			drop[i] = 1;
			continue;
		}
		target[i] = (uint32_t)t;
	}
}

/* Breadth-first order: children of each directory together, by name. */
static int number_bfs(struct layer_index *ix, struct lx_raws *r, const uint32_t *parent,
                      const uint32_t *target, const unsigned char *drop)
{
	size_t n = r->n;
	uint32_t *cnt = calloc(n + 1, sizeof *cnt), *kids = malloc((n + 1) * sizeof *kids);
	uint32_t *ord = malloc((n + 1) * sizeof *ord), *newi = malloc((n + 1) * sizeof *newi);
	int ret = -ENOMEM;
	if (!cnt || !kids || !ord || !newi)
		goto out;
	for (size_t i = 1; i < n; i++)
		if (!drop[i])
			cnt[parent[i] + 1]++;
	for (size_t i = 1; i <= n; i++)
		cnt[i] += cnt[i - 1];          /* cnt[p] = start of p's children in kids */
	for (size_t i = 1; i < n; i++)
		if (!drop[i])
			kids[cnt[parent[i]]++] = (uint32_t)i;
	/* cnt[p] is now the end of p's run; the start is cnt[p-1] (0 for p = 0) */
	size_t m = 0;
	ord[m++] = 0;
	newi[0] = 0;
	for (size_t q = 0; q < m; q++) {
		uint32_t p = ord[q];
		for (uint32_t k = p ? cnt[p - 1] : 0; k < cnt[p]; k++) {
			newi[kids[k]] = (uint32_t)m;
			ord[m++] = kids[k];
		}
	}
	ix->ent = calloc(m, sizeof *ix->ent);
	if (!ix->ent)
		goto out;
	ix->n = m;
	for (size_t j = 0; j < m; j++) {
		const struct lx_raw *x = &r->v[ord[j]];
		struct layer_entry *e = &ix->ent[j];
		*e = x->e;
		e->parent = newi[parent[ord[j]]];
		e->link_index = LAYER_NONE;
		if (e->type == LAYER_HARDLINK) {
			e->link_index = newi[target[ord[j]]];
			e->size = r->v[target[ord[j]]].e.size;
			e->stored = 0;
			e->nsparse = 0;
			e->sparse = NULL;
		}
	}
	ret = lx_index_children_build(ix);
out:
	free(cnt);
	free(kids);
	free(ord);
	free(newi);
	return ret;
}

int lx_index_children_build(struct layer_index *ix)
{
	free(ix->child_first);
	free(ix->child_n);
	ix->child_first = calloc(ix->n, sizeof *ix->child_first);
	ix->child_n = calloc(ix->n, sizeof *ix->child_n);
	if (!ix->child_first || !ix->child_n)
		return -ENOMEM;
	for (size_t j = 1; j < ix->n; j++) {
		uint32_t p = ix->ent[j].parent;
		if (ix->child_n[p]++ == 0)
			ix->child_first[p] = (uint32_t)j;
	}
	return 0;
}

int lx_index_finish(struct layer_index *ix, struct lx_raws *r, const struct lx_opts *o,
                    struct regfs_err *e)
{
	raws_dedupe(r);
	int ret = add_implied(r, &ix->arena);
	if (ret == -E2BIG)
		return regfs_errf(e, -E2BIG, "%s: names exceed the limit of %llu bytes", o->name,
		                  (unsigned long long)o->max_meta);
	if (ret < 0)
		return ret;
	if (r->n > o->max_entries + 1ull)
		return regfs_errf(e, -E2BIG, "%s: more than %u entries with the implied "
		                  "directories (the limit)", o->name, o->max_entries);
	uint32_t *parent = malloc(r->n * sizeof *parent), *target = malloc(r->n * sizeof *target);
	unsigned char *drop = calloc(r->n, 1);
	ret = -ENOMEM;
	if (parent && target && drop) {
		link_parents(o, r, parent, drop);
		link_hardlinks(o, r, target, drop);
		ret = number_bfs(ix, r, parent, target, drop);
	}
	free(parent);
	free(target);
	free(drop);
	return ret;
}

/* ---- lookups ---- */

size_t layer_index_count(const struct layer_index *ix)
{
	return ix->n;
}

const struct layer_entry *layer_index_entry(const struct layer_index *ix, size_t i)
{
	return i < ix->n ? &ix->ent[i] : NULL;
}

int layer_index_children(const struct layer_index *ix, size_t dir, size_t *first, size_t *n)
{
	if (dir >= ix->n)
		return -ENOENT;
	if (ix->ent[dir].type != LAYER_DIR)
		return -ENOTDIR;
	*first = ix->child_first[dir];
	*n = ix->child_n[dir];
	return 0;
}

static const char *ent_name_at(const void *arr, size_t i)
{
	return ((const struct layer_index *)arr)->ent[i].name;
}

static long child_n(const struct layer_index *ix, size_t dir, const char *name, size_t len)
{
	if (dir >= ix->n || ix->ent[dir].type != LAYER_DIR)
		return -ENOENT;
	size_t lo = ix->child_first[dir], hi = lo + ix->child_n[dir];
	long i = sorted_find(ix, lo, hi, ent_name_at, name, len);
	return i < 0 ? -ENOENT : i;
}

long layer_index_child(const struct layer_index *ix, size_t dir, const char *name)
{
	size_t len = strlen(name);
	if (!len || memchr(name, '/', len))
		return -ENOENT;
	return child_n(ix, dir, name, len);
}

long layer_index_find(const struct layer_index *ix, const char *path)
{
	long cur = 0;
	const char *p = path;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t cl = s ? (size_t)(s - p) : strlen(p);
		if (cl == 2 && p[0] == '.' && p[1] == '.')
			return -ENOENT;
		if (cl && !(cl == 1 && p[0] == '.') && (cur = child_n(ix, (size_t)cur, p, cl)) < 0)
			return cur;
		p += cl + (s ? 1 : 0);
	}
	return cur;
}

enum layer_fetch_space layer_index_fetch_space(const struct layer_index *ix)
{
	return ix->space;
}

uint64_t lx_span_end(const struct layer_index *ix, size_t k)
{
	return k + 1 < ix->spans.n ? ix->spans.v[k + 1].out_off : ix->tar_size;
}

void layer_index_free(struct layer_index *ix)
{
	if (!ix)
		return;
	free(ix->ent);
	free(ix->child_first);
	free(ix->child_n);
	lx_spans_free(&ix->spans);
	lx_arena_free(&ix->arena);
	free(ix);
}

void layer_index_stats(const struct layer_index *ix, struct layer_index_stats *st)
{
	memset(st, 0, sizeof *st);
	st->compression = ix->comp;
	st->entries = ix->n;
	st->spans = ix->spans.n;
	st->frames = ix->frames;
	st->blob_size = ix->blob_size;
	st->tar_size = ix->tar_size;
	st->encoded_size = ix->encoded_size;
	uint64_t mem = sizeof *ix + ix->n * (sizeof *ix->ent + 8) + ix->arena.used +
	               ix->spans.n * sizeof *ix->spans.v;
	for (size_t i = 0; i < ix->spans.n; i++) {
		mem += ix->spans.v[i].win_len;
		if (ix->spans.v[i].kind == LX_SPAN_GZ_RAW)
			st->checkpoints++;
	}
	st->memory = mem;
}
