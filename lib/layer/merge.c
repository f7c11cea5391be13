/* merge.c — an image's layers merged with OCI whiteouts (layer_merge.h).
 *
 * The merged set is kept as an array of entries; each layer filters it
 * (what the layer deletes, makes opaque or replaces goes) and appends its
 * own entries. Lookups during a layer go through hash sets of the layer's
 * paths, so one layer costs O(entries x depth). At the end the array is
 * sorted in "component order" (a path's subtree follows it), every entry
 * gets its parent, and each directory its children, contiguous and in
 * name order in one array. */
#include <regfs/layer_merge.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/cmp.h>
#include <regfs/hash.h>

struct went {
	char *path;
	uint32_t layer, entry, data_entry;
	bool is_dir;
};

struct layer_merged {
	struct layer_merged_entry *v;
	size_t n;
	uint32_t *kids;      /* children of every directory, by parent */
	size_t dropped;
};

/* ---- a set of path strings (keys borrowed), looked up by (ptr, len) ---- */

struct sset {
	const char **key;
	uint32_t *klen;
	unsigned char *val;
	size_t cap, n;
};

static int sset_init(struct sset *s, size_t want)
{
	s->cap = 16;
	while (s->cap < want * 2 + 2)
		s->cap *= 2;
	s->n = 0;
	s->key = calloc(s->cap, sizeof *s->key);
	s->klen = calloc(s->cap, sizeof *s->klen);
	s->val = calloc(s->cap, 1);
	return s->key && s->klen && s->val ? 0 : -ENOMEM;
}

static void sset_free(struct sset *s)
{
	free(s->key);
	free(s->klen);
	free(s->val);
	memset(s, 0, sizeof *s);
}

/* The slot of (p, len): where it is, or the empty slot where it goes. */
static size_t sset_slot(const struct sset *s, const char *p, size_t len)
{
	size_t i = regfs_fnv1a64(p, len) & (s->cap - 1);
	while (s->key[i] && !(s->klen[i] == len && memcmp(s->key[i], p, len) == 0))
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* Adds or overwrites; the capacity was sized for every key (sset_init). */
static void sset_put(struct sset *s, const char *p, size_t len, unsigned char val)
{
	size_t i = sset_slot(s, p, len);
	if (!s->key[i]) {
		s->key[i] = p;
		s->klen[i] = (uint32_t)len;
		s->n++;
	}
	s->val[i] = val;
}

/* 0 when absent, else the value + 1. */
static int sset_get(const struct sset *s, const char *p, size_t len)
{
	size_t i = sset_slot(s, p, len);
	return s->key[i] ? s->val[i] + 1 : 0;
}

/* ---- component order: '/' sorts before every other byte ---- */

static int path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned ca = (unsigned char)*a, cb = (unsigned char)*b;
		if (ca == cb) {
			if (!ca)
				return 0;
			continue;
		}
		unsigned ka = !ca ? 0 : ca == '/' ? 1 : ca + 1;
		unsigned kb = !cb ? 0 : cb == '/' ? 1 : cb + 1;
		return ka < kb ? -1 : 1;
	}
}

static int went_cmp(const void *a, const void *b)
{
	return path_cmp(((const struct went *)a)->path, ((const struct went *)b)->path);
}

/* ---- one layer ---- */

struct lstate {
	struct went *cur;   /* the merged set so far */
	size_t n, cap;
	size_t dropped;
};

static int cur_push(struct lstate *s, const struct went *w)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 256;
		struct went *nv = realloc(s->cur, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		s->cur = nv;
		s->cap = nc;
	}
	s->cur[s->n++] = *w;
	return 0;
}

/* What a layer does to the lower ones: its own paths (value: MINE_*), the
 * paths it deletes, the directories it makes opaque; `keep`: implied
 * directories of the layer under which a lower directory stays. The
 * deleted/opaque paths are built strings kept in `owned`. */
enum { MINE_FILE = 0, MINE_DIR = 1, MINE_IMPLIED = 2 }; /* sset_get: value + 1 */
struct ldesc {
	struct sset mine, dels, opq, keep;
	struct went *adds;
	size_t n_adds;
	char **owned;
	size_t n_owned;
};

static void ldesc_free(struct ldesc *d)
{
	sset_free(&d->mine);
	sset_free(&d->dels);
	sset_free(&d->opq);
	sset_free(&d->keep);
	for (size_t i = 0; i < d->n_adds; i++)
		free(d->adds[i].path);
	free(d->adds);
	for (size_t i = 0; i < d->n_owned; i++)
		free(d->owned[i]);
	free(d->owned);
}

/* A whiteout entry at `path` (its last component starts with ".wh."):
 * recorded in dels or opq; bad names counted. */
static int note_whiteout(struct ldesc *d, const char *path, const char *base, size_t *dropped)
{
	const char *rest = base + 4;
	size_t dirlen = base == path ? 0 : (size_t)(base - path - 1);
	if (strcmp(rest, ".wh..opq") == 0) {
		sset_put(&d->opq, path, dirlen, 1);
		return 0;
	}
	if (strncmp(rest, ".wh.", 4) == 0)
		return 0; /* aufs metadata: never shown */
	if (!*rest || strcmp(rest, ".") == 0 || strcmp(rest, "..") == 0) {
		(*dropped)++;
		return 0;
	}
	size_t rl = strlen(rest);
	char *t = malloc(dirlen + 1 + rl + 1);
	if (!t)
		return -ENOMEM;
	size_t k = 0;
	if (dirlen) {
		memcpy(t, path, dirlen);
		t[dirlen] = '/';
		k = dirlen + 1;
	}
	memcpy(t + k, rest, rl + 1);
	d->owned[d->n_owned++] = t;
	sset_put(&d->dels, t, k + rl, 1);
	return 0;
}

static int ldesc_fill_one(struct ldesc *d, const struct layer_merge_layer *L, uint32_t li,
			  size_t i, size_t *dropped)
{
	struct layer_merge_item it = {0};
	L->item(L->arg, i, &it);
	if (!it.path)
		return ++*dropped, 0;
	const char *slash = strrchr(it.path, '/');
	const char *base = slash ? slash + 1 : it.path;
	if (strncmp(base, ".wh.", 4) == 0)
		return note_whiteout(d, it.path, base, dropped);
	if (it.link >= 0 && (uint64_t)it.link >= L->n)
		return ++*dropped, 0;
	char *p = strdup(it.path);
	if (!p)
		return -ENOMEM;
	struct went w = {p, li, (uint32_t)i, it.link >= 0 ? (uint32_t)it.link : (uint32_t)i,
			 it.is_dir};
	size_t len = strlen(p);
	int had = sset_get(&d->mine, p, len);
	if (had) {
		/* same path twice in one layer: the later entry wins (tar) */
		for (size_t k = 0; k < d->n_adds; k++)
			if (strcmp(d->adds[k].path, p) == 0) {
				free(d->adds[k].path);
				d->adds[k] = w;
				break;
			}
	} else {
		d->adds[d->n_adds++] = w;
	}
	sset_put(&d->mine, p, len,
		 !it.is_dir ? MINE_FILE : it.implied ? MINE_IMPLIED : MINE_DIR);
	return 0;
}

static int ldesc_fill(struct ldesc *d, const struct layer_merge_layer *L, uint32_t li,
		      size_t *dropped)
{
	memset(d, 0, sizeof *d);
	size_t n = L->n;
	int rc = sset_init(&d->mine, n) || sset_init(&d->dels, n) || sset_init(&d->opq, n) ||
			 sset_init(&d->keep, n) ? -ENOMEM : 0;
	if (rc)
		return rc;
	d->adds = calloc(n ? n : 1, sizeof *d->adds);
	d->owned = calloc(n ? n : 1, sizeof *d->owned);
	if (!d->adds || !d->owned)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = ldesc_fill_one(d, L, li, i, dropped);
	return rc;
}

/* Does the layer described by d hide the lower entry w? A lower directory
 * under an implied one of the layer stays (noted in d->keep). */
static bool hidden_by(struct ldesc *d, const struct went *w)
{
	const char *p = w->path;
	size_t len = strlen(p);
	if (sset_get(&d->dels, p, len) || (len && sset_get(&d->opq, "", 0)))
		return true;
	for (size_t k = 0; k < len; k++) {
		if (p[k] != '/')
			continue;
		int anc = sset_get(&d->mine, p, k);
		if (sset_get(&d->dels, p, k) || sset_get(&d->opq, p, k) || anc == MINE_FILE + 1)
			return true; /* a non-directory of the layer replaces it */
	}
	int mine = sset_get(&d->mine, p, len);
	if (mine == MINE_IMPLIED + 1 && w->is_dir) {
		sset_put(&d->keep, p, len, 1);
		return false;
	}
	return mine != 0;
}

static int merge_one(struct lstate *s, const struct layer_merge_layer *L, uint32_t li)
{
	struct ldesc d;
	int rc = ldesc_fill(&d, L, li, &s->dropped);
	if (rc) {
		ldesc_free(&d);
		return rc;
	}
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (hidden_by(&d, &s->cur[i]))
			free(s->cur[i].path);
		else
			s->cur[k++] = s->cur[i];
	}
	s->n = k;
	for (size_t i = 0; i < d.n_adds && rc == 0; i++) {
		if (sset_get(&d.keep, d.adds[i].path, strlen(d.adds[i].path)))
			continue; /* the lower directory stays */
		rc = cur_push(s, &d.adds[i]);
		if (rc == 0)
			d.adds[i].path = NULL; /* moved */
	}
	ldesc_free(&d);
	return rc;
}

/* ---- the finished tree ---- */

static int64_t find_in(const struct layer_merged_entry *v, size_t n, const char *path)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = path_cmp(v[mid].path, path);
		if (c == 0)
			return (int64_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

/* Moves the sorted set into m->v, leaving out entries whose parent is
 * missing or not a directory (the parent, earlier in component order, was
 * already decided). */
static int finish_entries(struct layer_merged *m, struct lstate *s)
{
	m->v = calloc(s->n + 1, sizeof *m->v);
	if (!m->v)
		return -ENOMEM;
	size_t n = 0;
	if (s->n == 0 || s->cur[0].path[0] != '\0')
		m->v[n++] = (struct layer_merged_entry){.path = "", .name = "",
			.layer = LAYER_MERGED_NONE, .entry = LAYER_MERGED_NONE,
			.data_entry = LAYER_MERGED_NONE, .is_dir = true};
	for (size_t i = 0; i < s->n; i++) {
		struct went *w = &s->cur[i];
		const char *slash = strrchr(w->path, '/');
		int64_t par = 0;
		if (i == 0 && !w->path[0]) {
			/* the root is a directory whatever the tar says */
			m->v[n++] = (struct layer_merged_entry){.path = w->path, .name = w->path,
				.layer = w->layer, .entry = w->entry, .data_entry = w->data_entry,
				.is_dir = true};
			continue;
		}
		if (slash) {
			*(char *)slash = '\0';
			par = find_in(m->v, n, w->path);
			*(char *)slash = '/';
		}
		if (par < 0 || !m->v[par].is_dir) {
			s->dropped++;
			free(w->path);
			continue;
		}
		m->v[n++] = (struct layer_merged_entry){.path = w->path,
			.name = slash ? slash + 1 : w->path, .layer = w->layer, .entry = w->entry,
			.data_entry = w->data_entry, .parent = (uint32_t)par, .is_dir = w->is_dir};
	}
	m->n = n;
	return 0;
}

static int finish_children(struct layer_merged *m)
{
	m->kids = calloc(m->n ? m->n : 1, sizeof *m->kids);
	if (!m->kids)
		return -ENOMEM;
	for (size_t i = 1; i < m->n; i++)
		m->v[m->v[i].parent].n_children++;
	uint32_t at = 0;
	for (size_t i = 0; i < m->n; i++) {
		m->v[i].first_child = at;
		at += m->v[i].n_children;
		m->v[i].n_children = 0;
	}
	/* in component order, the children of a directory come in name order */
	for (size_t i = 1; i < m->n; i++) {
		struct layer_merged_entry *p = &m->v[m->v[i].parent];
		m->kids[p->first_child + p->n_children++] = (uint32_t)i;
	}
	return 0;
}

struct lkey {
	uint64_t key;   /* layer << 32 | data entry */
	uint32_t idx;
};

static int lkey_cmp(const void *a, const void *b)
{
	const struct lkey *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* ino and nlink: names with the same (layer, data entry) share the data;
 * ino is the first of them in path order. */
static int finish_links(struct layer_merged *m)
{
	struct lkey *keys = malloc((m->n ? m->n : 1) * sizeof *keys);
	if (!keys)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		struct layer_merged_entry *e = &m->v[i];
		e->ino = (uint32_t)i;
		e->nlink = 1;
		if (!e->is_dir && e->layer != LAYER_MERGED_NONE)
			keys[k++] = (struct lkey){(uint64_t)e->layer << 32 | e->data_entry,
						  (uint32_t)i};
	}
	regfs_qsort(keys, k, sizeof *keys, lkey_cmp);
	for (size_t a = 0, b; a < k; a = b) {
		for (b = a; b < k && keys[b].key == keys[a].key; b++)
			;
		for (size_t j = a; j < b; j++) {
			m->v[keys[j].idx].ino = keys[a].idx;
			m->v[keys[j].idx].nlink = (uint32_t)(b - a);
		}
	}
	free(keys);
	return 0;
}

void layer_merged_free(struct layer_merged *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (i > 0 || m->v[0].layer != LAYER_MERGED_NONE)
			free((char *)m->v[i].path); /* else the static "" of a made-up root */
	free(m->v);
	free(m->kids);
	free(m);
}

static void lstate_free(struct lstate *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->cur[i].path);
	free(s->cur);
}

int layer_merge(const struct layer_merge_layer *layers, size_t n, struct layer_merged **out,
		struct regfs_err *err)
{
	*out = NULL;
	if (n >= LAYER_MERGED_NONE)
		return regfs_errf(err, -EINVAL, "cannot merge %zu layers", n);
	struct lstate s = {0};
	int rc = 0;
	size_t total = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		total += layers[i].n;
		if (total >= LAYER_MERGED_NONE)
			rc = regfs_errf(err, -EINVAL, "layers hold %zu entries or more: too many",
					total);
		else
			rc = merge_one(&s, &layers[i], (uint32_t)i);
	}
	struct layer_merged *m = rc ? NULL : calloc(1, sizeof *m);
	if (rc == 0 && !m)
		rc = -ENOMEM;
	if (rc == 0) {
		regfs_qsort(s.cur, s.n, sizeof *s.cur, went_cmp);
		rc = finish_entries(m, &s);
		if (rc == 0) {
			free(s.cur); /* the paths moved into m or were freed */
			s = (struct lstate){.dropped = s.dropped};
			m->dropped = s.dropped;
			rc = finish_children(m);
		}
		if (rc == 0)
			rc = finish_links(m);
	}
	lstate_free(&s);
	if (rc) {
		layer_merged_free(m);
		return rc == -ENOMEM ? regfs_errf(err, rc, "out of memory merging %zu layers", n)
				     : rc;
	}
	*out = m;
	return 0;
}

size_t layer_merged_count(const struct layer_merged *m)
{
	return m->n;
}

const struct layer_merged_entry *layer_merged_get(const struct layer_merged *m, size_t i)
{
	return i < m->n ? &m->v[i] : NULL;
}

int64_t layer_merged_find(const struct layer_merged *m, const char *path)
{
	return find_in(m->v, m->n, path);
}

int64_t layer_merged_child(const struct layer_merged *m, size_t dir, const char *name)
{
	if (dir >= m->n)
		return -ENOENT;
	const struct layer_merged_entry *d = &m->v[dir];
	if (!d->is_dir)
		return -ENOTDIR;
	size_t lo = 0, hi = d->n_children;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t k = m->kids[d->first_child + mid];
		int c = strcmp(m->v[k].name, name);
		if (c == 0)
			return k;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

int64_t layer_merged_child_at(const struct layer_merged *m, size_t dir, size_t k)
{
	if (dir >= m->n || k >= m->v[dir].n_children)
		return -ENOENT;
	return m->kids[m->v[dir].first_child + k];
}

size_t layer_merged_dropped(const struct layer_merged *m)
{
	return m->dropped;
}
