/* layers.c — the layer index cache (layers.h): indexes and merged images in
 * memory under a byte budget, encoded indexes on disk:
 *
 *   <dir>/layers/<alg>/<hex>.lix   the encoded index (immutable; written
 *                                  through a temp file + rename)
 *   <dir>/layers/<alg>/<hex>.tar   the decoded tar stream of a layer that has
 *                                  no random access (a single-frame zstd)
 *
 * Where an index and the bytes of a read come from (disk, registry, the
 * blob) is layerio.c. One mutex (the sflight group's) guards the lists and
 * counts; fills and reads run without it. An entry is pinned by its
 * references (readers, and the thread filling it) and is freed only when
 * unpinned and beyond the budget, or when its fill failed. */
#include "layers_internal.h"
#include "digests.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <regfs/hash.h>
#include <regfs/log.h>

int layers_mkdirs(const char *path)
{
	char buf[4400];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

/* Forgets every digest -> repository note (caller holds g.mu, or is the
 * only user). */
static void notes_clear(struct layer_cache *lc)
{
	for (size_t i = 0; i < NOTE_BUCKETS; i++) {
		while (lc->notes[i]) {
			struct note *n = lc->notes[i];
			lc->notes[i] = n->next;
			free(n);
		}
	}
	lc->nnotes = 0;
	lc->notes_bytes = 0;
	for (size_t i = 0; i < RNAME_BUCKETS; i++)
		while (lc->rnames[i]) {
			struct rname *r = lc->rnames[i];
			lc->rnames[i] = r->next;
			free(r);
		}
}

/* Caller holds g.mu. repo's interned copy; NULL when out of memory. */
static const char *rname_of(struct layer_cache *lc, const char *repo)
{
	struct rname **b = &lc->rnames[regfs_fnv1a64_str(repo) % RNAME_BUCKETS];
	for (struct rname *r = *b; r; r = r->next)
		if (strcmp(r->name, repo) == 0)
			return r->name;
	size_t l = strlen(repo) + 1;
	struct rname *r = malloc(sizeof *r + l);
	if (!r)
		return NULL;
	memcpy(r->name, repo, l);
	lc->notes_bytes += malloc_usable_size(r);
	r->next = *b;
	*b = r;
	return r->name;
}

/* Caller holds g.mu. The note of digest (key, raw: its digkey) or NULL. */
static struct note *note_find(struct layer_cache *lc, const char *digest, const uint8_t *key,
			      bool raw)
{
	struct note *n = lc->notes[regfs_fnv1a64_str(digest) % NOTE_BUCKETS];
	while (n && !digkey_same(n->key, n->raw, key, raw))
		n = n->next;
	return n;
}

struct layer_cache *layer_cache_new(const char *dir, uint64_t budget, struct blob_cache *bc,
				    struct fs_stats *st)
{
	struct layer_cache *lc = calloc(1, sizeof *lc);
	if (!lc)
		return NULL;
	lc->notes = calloc(NOTE_BUCKETS, sizeof *lc->notes);
	if (!lc->notes) {
		free(lc);
		return NULL;
	}
	sflight_group_init(&lc->g, loop_may_block);
	lc->bc = bc;
	lc->st = st;
	lc->budget = budget ? budget : LAYER_CACHE_BUDGET;
	if (dir && asprintf(&lc->dir, "%s/layers", dir) < 0)
		lc->dir = NULL;
	if (lc->dir && layers_mkdirs(lc->dir)) {
		log_warn("layer views: cannot create %s: indexes are kept in memory only", lc->dir);
		free(lc->dir);
		lc->dir = NULL;
	}
	return lc;
}

static void lview_free(struct lview *v)
{
	layer_index_free(v->ix);
	free(v->nlink);
	free(v);
}

static void rview_free(struct layer_cache *lc, struct rview *r);

void layer_cache_free(struct layer_cache *lc)
{
	if (!lc)
		return;
	while (lc->rhead) {
		struct rview *r = lc->rhead;
		lc->rhead = r->next;
		rview_free(lc, r);
	}
	while (lc->lhead) {
		struct lview *v = lc->lhead;
		lc->lhead = v->next;
		lview_free(v);
	}
	notes_clear(lc);
	free(lc->notes);
	free(lc->dir);
	sflight_group_destroy(&lc->g);
	free(lc);
}

uint64_t layer_cache_memory(struct layer_cache *lc)
{
	pthread_mutex_lock(&lc->g.mu);
	uint64_t m = lc->mem;
	pthread_mutex_unlock(&lc->g.mu);
	return m;
}

/* ---- digest -> repository ---- */

void layer_cache_notes(struct layer_cache *lc, size_t *count, size_t *bytes)
{
	pthread_mutex_lock(&lc->g.mu);
	*count = lc->nnotes;
	*bytes = lc->notes_bytes;
	pthread_mutex_unlock(&lc->g.mu);
}

void layer_cache_note_repo(struct layer_cache *lc, const char *digest, const char *repo,
			   uint64_t size)
{
	if (!lc || !repo)
		return;
	uint8_t key[REGFS_DIGEST_MAX];
	bool raw = digkey_put(digest, key);
	pthread_mutex_lock(&lc->g.mu);
	struct note *n = note_find(lc, digest, key, raw);
	if (!n) {
		/* a mount that has shown this many digests forgets them all: a
		 * view whose digest is forgotten answers ENOENT until its
		 * manifest directory is listed again */
		if (lc->nnotes >= NOTES_MAX)
			notes_clear(lc);
		size_t kl = digkey_len(digest);
		if ((n = calloc(1, offsetof(struct note, key) + kl))) {
			memcpy(n->key, key, kl);
			n->raw = raw;
			lc->notes_bytes += malloc_usable_size(n);
			struct note **b = &lc->notes[regfs_fnv1a64_str(digest) % NOTE_BUCKETS];
			n->next = *b;
			*b = n;
			lc->nnotes++;
		}
	}
	if (n && (!n->repo || strcmp(n->repo, repo) != 0)) {
		const char *r = rname_of(lc, repo);
		if (r)
			n->repo = r;
	}
	if (n && size)
		n->size = size;
	pthread_mutex_unlock(&lc->g.mu);
}

int layer_cache_repo(struct layer_cache *lc, const char *digest, char *repo, size_t size,
		     uint64_t *blob_size)
{
	int rc = -ENOENT;
	uint8_t key[REGFS_DIGEST_MAX];
	bool raw = digkey_put(digest, key);
	pthread_mutex_lock(&lc->g.mu);
	struct note *n = note_find(lc, digest, key, raw);
	if (n && n->repo && strlen(n->repo) < size) {
		memcpy(repo, n->repo, strlen(n->repo) + 1);
		if (blob_size)
			*blob_size = n->size;
		rc = 0;
	}
	pthread_mutex_unlock(&lc->g.mu);
	return rc;
}

/* ---- eviction (caller holds g.mu) ---- */

#define UNLINK(head, v) do {                                   \
		if ((v)->prev) (v)->prev->next = (v)->next;    \
		else (head) = (v)->next;                       \
		if ((v)->next) (v)->next->prev = (v)->prev;    \
		(v)->prev = (v)->next = NULL;                  \
	} while (0)
#define PUSH(head, v) do {                                     \
		(v)->prev = NULL;                              \
		(v)->next = (head);                            \
		if (head) (head)->prev = (v);                  \
		(head) = (v);                                  \
	} while (0)

static void lview_drop_locked(struct layer_cache *lc, struct lview *v)
{
	UNLINK(lc->lhead, v);
	lc->mem -= v->mem;
	lview_free(v);
}

static void lview_unpin_locked(struct layer_cache *lc, struct lview *v);

static void rview_free_locked(struct layer_cache *lc, struct rview *r)
{
	for (size_t i = 0; i < r->nl; i++)
		if (r->layers[i])
			lview_unpin_locked(lc, r->layers[i]);
	layer_merged_free(r->mt);
	free(r->layers);
	free(r);
}

static void rview_free(struct layer_cache *lc, struct rview *r)
{
	rview_free_locked(lc, r);
}

/* Frees unpinned entries, least recently used first, until the budget
 * holds: merged images first (they pin their layers). */
static void evict_locked(struct layer_cache *lc)
{
	struct rview *rt = lc->rhead;
	while (rt && rt->next)
		rt = rt->next;
	while (rt && lc->mem > lc->budget) {
		struct rview *prev = rt->prev;
		if (rt->ref == 0 && !rt->sf.busy) {
			UNLINK(lc->rhead, rt);
			lc->mem -= rt->mem;
			rview_free_locked(lc, rt);
		}
		rt = prev;
	}
	struct lview *t = lc->lhead;
	while (t && t->next)
		t = t->next;
	while (t && lc->mem > lc->budget) {
		struct lview *prev = t->prev;
		if (t->ref == 0 && !t->sf.busy)
			lview_drop_locked(lc, t);
		t = prev;
	}
}

/* ---- one layer: get, put, install ---- */

/* Names per entry's data: 1 + the hard links to it. */
static uint32_t *count_links(const struct layer_index *ix)
{
	size_t n = layer_index_count(ix);
	uint32_t *c = calloc(n, sizeof *c);
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (e->type == LAYER_HARDLINK && e->link_index < n)
			c[e->link_index]++;
	}
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (e->type != LAYER_HARDLINK || e->link_index >= n)
			c[i] = c[i] + 1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_index_entry(ix, i);
		if (e->type == LAYER_HARDLINK && e->link_index < n)
			c[i] = c[e->link_index];
	}
	return c;
}

/* Caller holds g.mu: v's value is ix (taken over); false when out of
 * memory (ix freed). */
static bool lview_set_locked(struct layer_cache *lc, struct lview *v, struct layer_index *ix)
{
	uint32_t *nl = count_links(ix);
	if (!nl) {
		layer_index_free(ix);
		return false;
	}
	struct layer_index_stats st;
	layer_index_stats(ix, &st);
	v->ix = ix;
	v->nlink = nl;
	v->mem = st.memory + layer_index_count(ix) * sizeof *nl + sizeof *v;
	lc->mem += v->mem;
	return true;
}

/* Caller holds g.mu: the entry of digest, made (and pinned) when absent. */
static struct lview *lview_pin_locked(struct layer_cache *lc, const char *digest)
{
	struct lview *v = lc->lhead;
	while (v && strcmp(v->digest, digest) != 0)
		v = v->next;
	if (!v) {
		v = calloc(1, sizeof *v);
		if (!v)
			return NULL;
		snprintf(v->digest, sizeof v->digest, "%s", digest);
		PUSH(lc->lhead, v);
	} else {
		UNLINK(lc->lhead, v);
		PUSH(lc->lhead, v);
	}
	v->ref++;
	return v;
}

/* Caller holds g.mu: drops a pin; an entry without a value goes. */
static void lview_unpin_locked(struct layer_cache *lc, struct lview *v)
{
	v->ref--;
	if (v->ref == 0 && !v->sf.valid && !v->sf.busy && !v->bad)
		lview_drop_locked(lc, v);
}

int layer_cache_get(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		    const char *digest, uint64_t size, struct lview **out)
{
	*out = NULL;
	if (!regfs_digest_valid(digest))
		return -ENOENT;
	pthread_mutex_lock(&lc->g.mu);
	struct lview *v = lview_pin_locked(lc, digest);
	if (!v) {
		pthread_mutex_unlock(&lc->g.mu);
		return -ENOMEM;
	}
	if (sflight_begin(&lc->g, &v->sf, INFINITY) == SFLIGHT_HIT) {
		pthread_mutex_unlock(&lc->g.mu);
		*out = v;
		return 0;
	}
	if (v->bad && now_mono() - v->bad_at < LAYER_CACHE_BAD_TTL) {
		int bad = v->bad; /* already logged */
		sflight_end(&lc->g, &v->sf, false);
		lview_unpin_locked(lc, v);
		pthread_mutex_unlock(&lc->g.mu);
		return bad;
	}
	pthread_mutex_unlock(&lc->g.mu);
	struct layer_index *ix = NULL;
	int rc = layer_fill(lc, cl, repo, digest, size, &ix);
	pthread_mutex_lock(&lc->g.mu);
	if (rc == 0 && !lview_set_locked(lc, v, ix))
		rc = -ENOMEM;
	/* a bad layer stays bad: not fetched and read again at every lookup
	 * (a registry failure is tried again at once) */
	bool bad = rc == -EBADMSG;
	if (bad)
		rc = -EIO;
	v->bad = bad ? -EIO : 0;
	v->bad_at = now_mono();
	sflight_end(&lc->g, &v->sf, rc == 0);
	if (rc)
		lview_unpin_locked(lc, v);
	else
		evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
	if (rc == 0)
		*out = v;
	return rc;
}

void layer_cache_put(struct layer_cache *lc, struct lview *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&lc->g.mu);
	lview_unpin_locked(lc, v);
	evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
}

int layer_cache_install(struct layer_cache *lc, const char *digest, struct layer_index *ix)
{
	pthread_mutex_lock(&lc->g.mu);
	struct lview *v = lview_pin_locked(lc, digest);
	int rc = 0;
	if (!v) {
		layer_index_free(ix);
		rc = -ENOMEM;
	} else if (v->sf.valid || v->sf.busy) {
		layer_index_free(ix);
		rc = -EEXIST;
	} else if (!lview_set_locked(lc, v, ix)) {
		rc = -ENOMEM;
	} else {
		sflight_set(&v->sf);
	}
	if (v)
		lview_unpin_locked(lc, v);
	evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
	return rc;
}

/* ---- one image: the merged tree of its layers ---- */

static void merge_item(void *arg, size_t i, struct layer_merge_item *out)
{
	const struct layer_entry *e = layer_index_entry(arg, i);
	out->path = e->path;
	out->is_dir = e->type == LAYER_DIR;
	out->implied = e->flags & LAYER_F_SYNTHETIC;
	out->link = e->type == LAYER_HARDLINK && e->link_index != LAYER_NONE
			    ? (int64_t)e->link_index : -1;
}

/* Gets every layer (references into r->layers) and merges them. */
static int rfill(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		 struct rview *r, const struct regfs_descriptor *layers)
{
	struct layer_merge_layer *ml = calloc(r->nl ? r->nl : 1, sizeof *ml);
	if (!ml)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < r->nl && rc == 0; i++) {
		rc = layer_cache_get(lc, cl, repo, layers[i].digest, (uint64_t)layers[i].size,
				     &r->layers[i]);
		if (rc == 0)
			ml[i] = (struct layer_merge_layer){layer_index_count(r->layers[i]->ix),
							   merge_item, r->layers[i]->ix};
	}
	struct regfs_err e = {0};
	if (rc == 0 && (rc = layer_merge(ml, r->nl, &r->mt, &e)))
		fs_warn("image %s: cannot merge its layers: %s", r->digest, regfs_err_str(&e));
	free(ml);
	if (rc == 0 && layer_merged_dropped(r->mt))
		log_warn("image %s: %zu entries left out of its merged tree (bad whiteouts, or "
			 "entries under a non-directory)", r->digest, layer_merged_dropped(r->mt));
	return rc;
}

static uint64_t merged_mem(const struct layer_merged *mt)
{
	uint64_t b = 0;
	size_t n = layer_merged_count(mt);
	for (size_t i = 0; i < n; i++)
		b += sizeof(struct layer_merged_entry) + 4 + strlen(layer_merged_get(mt, i)->path) + 1;
	return b;
}

static void rview_drop_refs(struct layer_cache *lc, struct rview *r)
{
	for (size_t i = 0; i < r->nl; i++) {
		if (r->layers[i])
			lview_unpin_locked(lc, r->layers[i]);
		r->layers[i] = NULL;
	}
	layer_merged_free(r->mt);
	r->mt = NULL;
}

int layer_cache_rget(struct layer_cache *lc, struct regfs_client *cl, const char *repo,
		     const char *digest, const struct regfs_descriptor *layers, size_t n,
		     struct rview **out)
{
	*out = NULL;
	pthread_mutex_lock(&lc->g.mu);
	struct rview *r = lc->rhead;
	while (r && strcmp(r->digest, digest) != 0)
		r = r->next;
	if (!r && (r = calloc(1, sizeof *r)) && !(r->layers = calloc(n ? n : 1, sizeof(void *)))) {
		free(r);
		r = NULL;
	}
	if (!r) {
		pthread_mutex_unlock(&lc->g.mu);
		return -ENOMEM;
	}
	if (!r->digest[0]) {
		snprintf(r->digest, sizeof r->digest, "%s", digest);
		r->nl = n;
	} else {
		UNLINK(lc->rhead, r);
	}
	PUSH(lc->rhead, r);
	r->ref++;
	if (sflight_begin(&lc->g, &r->sf, INFINITY) == SFLIGHT_HIT) {
		pthread_mutex_unlock(&lc->g.mu);
		*out = r;
		return 0;
	}
	pthread_mutex_unlock(&lc->g.mu);
	int rc = r->nl == n ? rfill(lc, cl, repo, r, layers) : -EIO;
	pthread_mutex_lock(&lc->g.mu);
	if (rc == 0) {
		r->mem = merged_mem(r->mt) + sizeof *r;
		lc->mem += r->mem;
	} else {
		rview_drop_refs(lc, r);
	}
	sflight_end(&lc->g, &r->sf, rc == 0);
	r->ref--;
	if (rc == 0) {
		r->ref++;
		*out = r;
		evict_locked(lc);
	} else if (r->ref == 0 && !r->sf.busy) {
		UNLINK(lc->rhead, r);
		rview_free_locked(lc, r);
	}
	pthread_mutex_unlock(&lc->g.mu);
	return rc;
}

void layer_cache_rput(struct layer_cache *lc, struct rview *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&lc->g.mu);
	r->ref--;
	evict_locked(lc);
	pthread_mutex_unlock(&lc->g.mu);
}
