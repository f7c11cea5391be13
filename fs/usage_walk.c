/* usage_walk.c — what the walk keeps of each manifest it counted, and the
 * accounting's input made from it (walk.c).
 *
 * The walk table is all the accounting needs after a manifest is parsed:
 * per blob its size and kind, per manifest the blobs it reaches directly
 * (its own bytes, config, layers) and its index children, as 32-bit ids of
 * interned digests (fs/cache/digests.c). The manifests themselves can then
 * leave memory (the manifest cache's budget) while the walk goes on, and the
 * accounting never reads one again: one reference per tag and per untagged
 * manifest, each with the blobs it reaches (an index's children with
 * theirs), leaving out the manifests the walk found missing, as du does. */
#include "mount.h"
#include "usage.h"
#include "cache/digests.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { K_NAMED = 0 }; /* only named as an index child so far: not counted */

struct wrec {
	uint32_t from, nblob;      /* pool[from, from + nblob): the blobs, the manifest first */
	uint32_t nkid;             /* then pool[.., + nkid): its index children */
};

struct walk_table {
	struct digtab *d;
	uint64_t *size;            /* per id */
	uint8_t *kind;             /* per id: K_NAMED or enum usage_blob_kind + 1 */
	uint32_t *rec;             /* per id: index in r + 1, 0 none */
	size_t cap;
	struct wrec *r;
	size_t nr, capr;
	uint32_t *pool;
	size_t npool, cappool;
};

struct walk_table *walk_table_new(void)
{
	struct walk_table *t = calloc(1, sizeof *t);
	if (t && !(t->d = digtab_new())) {
		free(t);
		t = NULL;
	}
	return t;
}

void walk_table_free(struct walk_table *t)
{
	if (!t)
		return;
	digtab_free(t->d);
	free(t->size);
	free(t->kind);
	free(t->rec);
	free(t->r);
	free(t->pool);
	free(t);
}

size_t walk_table_bytes(const struct walk_table *t)
{
	return sizeof *t + digtab_bytes(t->d) + t->cap * (sizeof *t->size + 1 + sizeof *t->rec) +
	       t->capr * sizeof *t->r + t->cappool * sizeof *t->pool;
}

static int grow(void *pp, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 1024;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*(void **)pp, nc * size);
	if (!np)
		return -ENOMEM;
	*(void **)pp = np;
	*cap = nc;
	return 0;
}

/* The id of digest, with room in the per-id arrays (new ids: K_NAMED). */
static int intern(struct walk_table *t, const char *digest, uint32_t *id)
{
	size_t n = digtab_count(t->d);
	if (n + 1 > t->cap) {
		size_t c = t->cap, c2 = t->cap, c3 = t->cap;
		if (grow(&t->size, &c, n + 1, sizeof *t->size) ||
		    grow(&t->kind, &c2, n + 1, sizeof *t->kind) ||
		    grow(&t->rec, &c3, n + 1, sizeof *t->rec))
			return -ENOMEM;
		t->cap = c;
	}
	bool added;
	if (digtab_intern(t->d, digest, id, &added))
		return -ENOMEM;
	if (added) {
		t->size[*id] = 0;
		t->kind[*id] = K_NAMED;
		t->rec[*id] = 0;
	}
	return 0;
}

bool walk_table_counted(const struct walk_table *t, const char *digest)
{
	uint32_t id = digtab_find(t->d, digest);
	return id != DIGTAB_NONE && t->kind[id] != K_NAMED;
}

/* Counts blob `digest` once (bytes, 512-byte blocks) and appends it to the
 * pool. */
static int add_blob(struct walk_table *t, const char *digest, uint64_t size,
		    enum usage_blob_kind kind, uint64_t *bytes, uint64_t *blocks)
{
	uint32_t id;
	if (intern(t, digest, &id) || grow(&t->pool, &t->cappool, t->npool + 1, sizeof *t->pool))
		return -ENOMEM;
	if (t->kind[id] == K_NAMED) {
		t->kind[id] = (uint8_t)(kind + 1);
		t->size[id] = size;
		*bytes += size;
		*blocks += (size + 511) / 512;
	}
	t->pool[t->npool++] = id;
	return 0;
}

int walk_table_add(struct walk_table *t, const struct mentry *e, uint64_t *bytes,
		   uint64_t *blocks)
{
	const struct regfs_manifest *man = e->m;
	if (walk_table_counted(t, e->digest))
		return 0;
	if (t->npool + 2 + man->n_layers + man->n_manifests >= UINT32_MAX ||
	    grow(&t->r, &t->capr, t->nr + 1, sizeof *t->r))
		return -ENOMEM;
	struct wrec r = {.from = (uint32_t)t->npool};
	int rc = add_blob(t, e->digest, e->len, USAGE_MANIFEST, bytes, blocks);
	if (!rc && man->has_config)
		rc = add_blob(t, man->config.digest, (uint64_t)man->config.size, USAGE_CONFIG,
			      bytes, blocks);
	for (size_t l = 0; !rc && l < man->n_layers; l++)
		rc = add_blob(t, man->layers[l].digest, (uint64_t)man->layers[l].size, USAGE_LAYER,
			      bytes, blocks);
	r.nblob = (uint32_t)(t->npool - r.from);
	for (size_t c = 0; !rc && c < man->n_manifests; c++) {
		uint32_t id;
		if (intern(t, man->manifests[c].digest, &id) ||
		    grow(&t->pool, &t->cappool, t->npool + 1, sizeof *t->pool))
			return -ENOMEM;
		t->pool[t->npool++] = id;
	}
	if (rc)
		return rc;
	r.nkid = (uint32_t)(t->npool - r.from - r.nblob);
	uint32_t mid = t->pool[r.from];
	t->r[t->nr] = r;
	t->rec[mid] = (uint32_t)++t->nr;
	return 1;
}

/* Was (repo, digest) found missing? (few: a linear scan) */
static bool is_gone(const struct usage_walk_in *in, const char *repo, const char *digest)
{
	for (size_t i = 0; i < in->n_gone; i++)
		if (in->gone_repo[i] == repo && strcmp(in->gone_digest[i], digest) == 0)
			return true;
	return false;
}

/* Adds the blobs of record r and (depth permitting) its children's. */
static int closure(struct usage_builder *b, const struct walk_table *t,
		   const struct usage_walk_in *in, const char *repo, const struct wrec *r,
		   int depth)
{
	char d[REGFS_DIGEST_MAX];
	int rc = 0;
	for (uint32_t k = r->from; !rc && k < r->from + r->nblob; k++) {
		uint32_t id = t->pool[k];
		digtab_str(t->d, id, d);
		rc = usage_ref_blob(b, d, t->size[id], (enum usage_blob_kind)(t->kind[id] - 1));
	}
	uint32_t k0 = r->from + r->nblob;
	for (uint32_t k = k0; !rc && depth < 5 && k < k0 + r->nkid; k++) {
		uint32_t id = t->pool[k];
		if (!t->rec[id])
			continue; /* not counted: gone, or the walk failed on it */
		digtab_str(t->d, id, d);
		if (!is_gone(in, repo, d))
			rc = closure(b, t, in, repo, &t->r[t->rec[id] - 1], depth + 1);
	}
	return rc;
}

int usage_from_walk(const struct walk_table *t, const struct usage_walk_in *in,
		    struct usage **out)
{
	struct usage_builder *b = usage_builder_new();
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const char *repo = in->repo[i], *digest = in->digest[i];
		const struct tag_ent *te = in->te[i];
		if (!te && is_gone(in, repo, digest))
			continue;
		uint32_t id = digtab_find(t->d, digest);
		if (id == DIGTAB_NONE || !t->rec[id])
			continue; /* the walk failed on it: no accounting then (walk.c) */
		int rc = usage_ref_begin(b, repo, te ? te->tag : NULL, digest, te ? te->mtime : 0);
		if (!rc)
			rc = closure(b, t, in, repo, &t->r[t->rec[id] - 1], 0);
		if (rc) {
			usage_builder_free(b);
			return rc;
		}
	}
	return usage_build(b, out);
}
