/* usage_model.c — see usage_model.h.
 *
 * Blobs are interned: every digest gets an id (its index in `blobs`), found
 * through an open-addressing table. A repository keeps the ids of its
 * revisions, its tags, and the set `refs` of every id it references; each
 * change recomputes `refs` from revisions and tags (in memory: no storage)
 * and applies the difference to the per-blob count of referencing
 * repositories (`nrepos`). The per-repository bytes/exclusive and the totals
 * are kept as sums updated at each transition, so reading them is O(1) per
 * repository.
 *
 * Exclusive: a blob referenced by exactly one repository counts in that
 * repository's exclusive bytes; `owner` remembers which. When a second
 * repository starts referencing it, the owner loses it; when it drops back
 * to one, the remaining repository is found by a scan of the repositories
 * (rare: a shared blob losing its last-but-one referrer). */
#include "usage_model.h"

#include "idset.h"

#include <regfs/hash.h>
#include <regfs/oci.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE IDSET_NONE
#define TOMB IDSET_TOMB
#define MAX_DEPTH 16 /* as gc.c's mark_manifest */

/* ---- the model ---- */

struct blob {
	char *digest;
	uint64_t size;
	uint32_t nrepos;   /* repositories whose refs hold it */
	uint32_t nrev;     /* repositories holding it as a manifest revision */
	int32_t owner;     /* the repository when nrepos == 1, else -1 */
	int32_t mf;        /* index in `mfs` when a parsed manifest, else -1 */
	bool stored;
};

struct mf {            /* what a manifest references */
	uint32_t *refs;    /* config and layers */
	uint32_t *kids;    /* index children */
	uint32_t nrefs, nkids;
	uint32_t subject;  /* NONE when absent */
	bool index;
};

struct tag {
	char *name;
	uint32_t id;
};

struct repo {
	char *name;
	struct idset revs, refs;
	struct tag *tags;
	size_t ntags, tcap;
	uint64_t bytes, excl, gen;
};

struct upload {
	char uuid[40];
	uint32_t repo;
	uint64_t size;
	int64_t started;
};

struct usage_model {
	bool delete_untagged;
	struct blob *blobs;
	uint32_t nblobs, bcap;
	uint32_t *bslot;          /* digest -> id table; NONE empty */
	uint32_t bslots;
	struct mf *mfs;
	uint32_t nmfs, mcap;
	struct repo *repos;
	uint32_t nrepos, rcap;
	uint32_t *rslot;          /* name -> index table; NONE empty */
	uint32_t rslots;
	struct upload *ups;
	size_t nups, ucap;
	struct usage_totals t;    /* uploads and garbage_uploads computed on read */
};

struct usage_model *usage_model_new(bool delete_untagged)
{
	struct usage_model *m = calloc(1, sizeof *m);
	if (m)
		m->delete_untagged = delete_untagged;
	return m;
}

void usage_model_free(struct usage_model *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nblobs; i++)
		free(m->blobs[i].digest);
	for (uint32_t i = 0; i < m->nmfs; i++) {
		free(m->mfs[i].refs);
		free(m->mfs[i].kids);
	}
	for (uint32_t i = 0; i < m->nrepos; i++) {
		struct repo *r = &m->repos[i];
		free(r->name);
		ids_free(&r->revs);
		ids_free(&r->refs);
		for (size_t k = 0; k < r->ntags; k++)
			free(r->tags[k].name);
		free(r->tags);
	}
	free(m->blobs);
	free(m->bslot);
	free(m->mfs);
	free(m->repos);
	free(m->rslot);
	free(m->ups);
	free(m);
}

static uint32_t blob_find(const struct usage_model *m, const char *digest)
{
	if (!m->bslots)
		return NONE;
	for (uint32_t i = (uint32_t)regfs_fnv1a64_str(digest) & (m->bslots - 1);;
	     i = (i + 1) & (m->bslots - 1)) {
		uint32_t id = m->bslot[i];
		if (id == NONE || !strcmp(m->blobs[id].digest, digest))
			return id;
	}
}

static int blob_table_grow(struct usage_model *m)
{
	uint32_t cap = m->bslots ? m->bslots * 2 : 64;
	uint32_t *s = malloc((size_t)cap * sizeof *s);
	if (!s)
		return -ENOMEM;
	memset(s, 0xff, (size_t)cap * sizeof *s);
	for (uint32_t id = 0; id < m->nblobs; id++) {
		uint32_t i = (uint32_t)regfs_fnv1a64_str(m->blobs[id].digest) & (cap - 1);
		while (s[i] != NONE)
			i = (i + 1) & (cap - 1);
		s[i] = id;
	}
	free(m->bslot);
	m->bslot = s;
	m->bslots = cap;
	return 0;
}

/* The id of a digest, interned on first use; NONE on ENOMEM. */
static uint32_t blob_id(struct usage_model *m, const char *digest)
{
	uint32_t id = blob_find(m, digest);
	if (id != NONE)
		return id;
	if ((m->nblobs + 1) * 4 > m->bslots * 3 && blob_table_grow(m))
		return NONE;
	if (m->nblobs == m->bcap) {
		uint32_t cap = m->bcap ? m->bcap * 2 : 64;
		struct blob *b = realloc(m->blobs, (size_t)cap * sizeof *b);
		if (!b)
			return NONE;
		m->blobs = b;
		m->bcap = cap;
	}
	char *d = strdup(digest);
	if (!d)
		return NONE;
	id = m->nblobs++;
	m->blobs[id] = (struct blob){.digest = d, .owner = -1, .mf = -1};
	uint32_t i = (uint32_t)regfs_fnv1a64_str(d) & (m->bslots - 1);
	while (m->bslot[i] != NONE)
		i = (i + 1) & (m->bslots - 1);
	m->bslot[i] = id;
	return id;
}

/* A blob's share of the totals, added (sign 1) or taken away (-1) around
 * every change of its state. */
static void account(struct usage_model *m, const struct blob *b, int sign)
{
	if (!b->stored)
		return;
	uint64_t s = sign > 0 ? b->size : (uint64_t)0 - b->size;
	m->t.blobs += s;
	if (b->nrepos)
		m->t.referenced += s;
	else if (b->nrev)
		m->t.garbage_manifests += s;
	else
		m->t.garbage_blobs += s;
}

static void repo_add_size(struct usage_model *m, uint32_t id, uint64_t delta)
{
	struct blob *b = &m->blobs[id];
	for (uint32_t i = 0; i < m->nrepos && b->nrepos; i++) {
		if (!ids_has(&m->repos[i].refs, id))
			continue;
		m->repos[i].bytes += delta;
		if (b->nrepos == 1)
			m->repos[i].excl += delta;
	}
}

int usage_model_blob_stored(struct usage_model *m, const char *digest, uint64_t size)
{
	uint32_t id = blob_id(m, digest);
	if (id == NONE)
		return -ENOMEM;
	struct blob *b = &m->blobs[id];
	account(m, b, -1);
	if (b->size != size)
		repo_add_size(m, id, size - b->size); /* unsigned wrap: a decrease */
	b->size = size;
	b->stored = true;
	account(m, b, 1);
	return 0;
}

int usage_model_blob_removed(struct usage_model *m, const char *digest)
{
	uint32_t id = blob_find(m, digest);
	if (id == NONE)
		return 0;
	struct blob *b = &m->blobs[id];
	account(m, b, -1);
	b->stored = false;
	return 0;
}

uint32_t usage_model_blob_nrepos(const struct usage_model *m, const char *digest)
{
	uint32_t id = blob_find(m, digest);
	return id != NONE ? m->blobs[id].nrepos : 0;
}

bool usage_model_blob_is_stored(const struct usage_model *m, const char *digest)
{
	uint32_t id = blob_find(m, digest);
	return id != NONE && m->blobs[id].stored;
}

bool usage_model_manifest_known(const struct usage_model *m, const char *digest)
{
	uint32_t id = blob_find(m, digest);
	return id != NONE && m->blobs[id].mf >= 0;
}

static int ids_of(struct usage_model *m, const struct regfs_descriptor *d, size_t n,
		  bool config, const struct regfs_descriptor *cfg, uint32_t **out, uint32_t *nout)
{
	size_t total = n + (config ? 1 : 0);
	*out = NULL;
	*nout = 0;
	if (!total)
		return 0;
	uint32_t *v = malloc(total * sizeof *v);
	if (!v)
		return -ENOMEM;
	uint32_t k = 0;
	if (config)
		v[k++] = blob_id(m, cfg->digest);
	for (size_t i = 0; i < n; i++)
		v[k++] = blob_id(m, d[i].digest);
	for (uint32_t i = 0; i < k; i++)
		if (v[i] == NONE) {
			free(v);
			return -ENOMEM;
		}
	*out = v;
	*nout = k;
	return 0;
}

int usage_model_manifest(struct usage_model *m, const char *digest,
			 const struct regfs_manifest *p)
{
	uint32_t id = blob_id(m, digest);
	if (id == NONE)
		return -ENOMEM;
	if (m->blobs[id].mf >= 0)
		return 0;
	if (m->nmfs == m->mcap) {
		uint32_t cap = m->mcap ? m->mcap * 2 : 64;
		struct mf *v = realloc(m->mfs, (size_t)cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		m->mfs = v;
		m->mcap = cap;
	}
	struct mf f = {.subject = NONE, .index = regfs_media_type_is_index(p->media_type)};
	if (ids_of(m, p->layers, p->n_layers, p->has_config, &p->config, &f.refs, &f.nrefs) ||
	    ids_of(m, p->manifests, p->n_manifests, false, NULL, &f.kids, &f.nkids) ||
	    (p->has_subject && (f.subject = blob_id(m, p->subject.digest)) == NONE)) {
		free(f.refs);
		free(f.kids);
		return -ENOMEM;
	}
	struct blob *b = &m->blobs[id];
	account(m, b, -1);
	b->mf = (int32_t)m->nmfs;
	m->mfs[m->nmfs++] = f;
	account(m, b, 1);
	return 0;
}


/* ---- repositories ---- */

/* name -> index table (open addressing, NONE empty), as for digests */
static int32_t repo_find(const struct usage_model *m, const char *name)
{
	if (!m->rslots)
		return -1;
	for (uint32_t i = (uint32_t)regfs_fnv1a64_str(name) & (m->rslots - 1);;
	     i = (i + 1) & (m->rslots - 1)) {
		uint32_t ri = m->rslot[i];
		if (ri == NONE)
			return -1;
		if (!strcmp(m->repos[ri].name, name))
			return (int32_t)ri;
	}
}

static void repo_slot_put(uint32_t *slots, uint32_t cap, const char *name, uint32_t ri)
{
	uint32_t i = (uint32_t)regfs_fnv1a64_str(name) & (cap - 1);
	while (slots[i] != NONE)
		i = (i + 1) & (cap - 1);
	slots[i] = ri;
}

static int repo_table_grow(struct usage_model *m)
{
	uint32_t cap = m->rslots ? m->rslots * 2 : 32;
	uint32_t *s = malloc((size_t)cap * sizeof *s);
	if (!s)
		return -ENOMEM;
	memset(s, 0xff, (size_t)cap * sizeof *s);
	for (uint32_t ri = 0; ri < m->nrepos; ri++)
		repo_slot_put(s, cap, m->repos[ri].name, ri);
	free(m->rslot);
	m->rslot = s;
	m->rslots = cap;
	return 0;
}

static int32_t repo_get(struct usage_model *m, const char *name)
{
	int32_t i = repo_find(m, name);
	if (i >= 0)
		return i;
	if ((m->nrepos + 1) * 4 > m->rslots * 3 && repo_table_grow(m))
		return -1;
	if (m->nrepos == m->rcap) {
		uint32_t cap = m->rcap ? m->rcap * 2 : 16;
		struct repo *v = realloc(m->repos, (size_t)cap * sizeof *v);
		if (!v)
			return -1;
		m->repos = v;
		m->rcap = cap;
	}
	struct repo *r = &m->repos[m->nrepos];
	memset(r, 0, sizeof *r);
	if (!(r->name = strdup(name)))
		return -1;
	repo_slot_put(m->rslot, m->rslots, name, m->nrepos);
	return (int32_t)m->nrepos++;
}

/* Adds (1) or removes (0) blob `id` as a revision of repository `r`. */
static int rev_set(struct usage_model *m, struct repo *r, uint32_t id, bool on)
{
	int rc = 1;
	if (on && (rc = ids_add(&r->revs, id)) != 1)
		return rc;
	if (!on) {
		if (!ids_has(&r->revs, id))
			return 0;
		ids_del(&r->revs, id);
	}
	struct blob *b = &m->blobs[id];
	account(m, b, -1);
	b->nrev += on ? 1 : (uint32_t)-1;
	account(m, b, 1);
	return 1;
}

static void revs_clear(struct usage_model *m, struct repo *r)
{
	for (uint32_t s = 0; s < r->revs.cap; s++)
		if (r->revs.slot[s] < TOMB)
			rev_set(m, r, r->revs.slot[s], false);
	ids_free(&r->revs);
}

/* Repository `ri` starts referencing blob `id`. */
static void acquire(struct usage_model *m, uint32_t ri, uint32_t id)
{
	struct blob *b = &m->blobs[id];
	account(m, b, -1);
	b->nrepos++;
	m->repos[ri].bytes += b->size;
	if (b->nrepos == 1) {
		b->owner = (int32_t)ri;
		m->repos[ri].excl += b->size;
	} else if (b->nrepos == 2 && b->owner >= 0) {
		m->repos[b->owner].excl -= b->size;
		b->owner = -1;
	}
	account(m, b, 1);
}

/* Repository `ri` stops referencing blob `id` (already out of its refs). */
static void release(struct usage_model *m, uint32_t ri, uint32_t id)
{
	struct blob *b = &m->blobs[id];
	account(m, b, -1);
	m->repos[ri].bytes -= b->size;
	if (b->nrepos == 1) {
		m->repos[ri].excl -= b->size;
		b->owner = -1;
	} else if (b->nrepos == 2) {
		for (uint32_t i = 0; i < m->nrepos; i++)
			if (i != ri && ids_has(&m->repos[i].refs, id)) {
				b->owner = (int32_t)i;
				m->repos[i].excl += b->size;
				break;
			}
	}
	b->nrepos--;
	account(m, b, 1);
}

/* gc.c's mark_manifest: the manifest, what it references, its children.
 * `visited`: the manifests already expanded (a digest marked first as a
 * layer is still expanded when reached as a manifest, as in gc.c). */
static int mark(const struct usage_model *m, struct idset *into, struct idset *visited,
		uint32_t id, int depth)
{
	int rc = ids_add(into, id);
	if (rc < 0 || ids_has(visited, id) || depth > MAX_DEPTH)
		return rc < 0 ? rc : 0;
	if (ids_add(visited, id) < 0)
		return -ENOMEM;
	const struct blob *b = &m->blobs[id];
	if (b->mf < 0)
		return 0; /* not parsed: gc skips what it cannot read */
	const struct mf *f = &m->mfs[b->mf];
	for (uint32_t i = 0; i < f->nrefs && rc >= 0; i++)
		rc = ids_add(into, f->refs[i]);
	for (uint32_t i = 0; i < f->nkids && rc >= 0; i++)
		rc = mark(m, into, visited, f->kids[i], depth + 1);
	return rc < 0 ? rc : 0;
}

/* gc.c's reached_set (delete-untagged): tag targets, then to a fixpoint the
 * children of reached indexes and the referrers whose subject is reached. */
static int reached(const struct usage_model *m, const struct repo *r, struct idset *out)
{
	int rc = 0;
	for (size_t i = 0; i < r->ntags && rc >= 0; i++)
		rc = ids_add(out, r->tags[i].id);
	for (bool changed = true; rc >= 0 && changed;) {
		changed = false;
		for (uint32_t s = 0; s < r->revs.cap && rc >= 0; s++) {
			uint32_t id = r->revs.slot[s];
			if (id >= TOMB || m->blobs[id].mf < 0)
				continue;
			const struct mf *f = &m->mfs[m->blobs[id].mf];
			bool in = ids_has(out, id);
			if (!in && f->subject != NONE && ids_has(out, f->subject)) {
				rc = ids_add(out, id);
				changed = in = true;
			}
			for (uint32_t k = 0; in && f->index && k < f->nkids && rc >= 0; k++)
				if ((rc = ids_add(out, f->kids[k])) == 1)
					changed = true;
		}
	}
	return rc < 0 ? rc : 0;
}

/* The set of ids repository `r` references now. */
static int compute_refs(const struct usage_model *m, const struct repo *r, struct idset *out)
{
	struct idset reach = {0}, visited = {0};
	int rc = m->delete_untagged ? reached(m, r, &reach) : 0;
	for (uint32_t s = 0; s < r->revs.cap && rc == 0; s++) {
		uint32_t id = r->revs.slot[s];
		if (id < TOMB && (!m->delete_untagged || ids_has(&reach, id)))
			rc = mark(m, out, &visited, id, 0);
	}
	ids_free(&reach);
	ids_free(&visited);
	return rc;
}

/* Recomputes what repository `ri` references and applies the difference. */
static int refresh(struct usage_model *m, uint32_t ri)
{
	struct idset now = {0};
	int rc = compute_refs(m, &m->repos[ri], &now);
	if (rc) {
		ids_free(&now);
		return rc;
	}
	struct idset old = m->repos[ri].refs;
	m->repos[ri].refs = now;
	for (uint32_t s = 0; s < old.cap; s++)
		if (old.slot[s] < TOMB && !ids_has(&now, old.slot[s]))
			release(m, ri, old.slot[s]);
	for (uint32_t s = 0; s < now.cap; s++)
		if (now.slot[s] < TOMB && !ids_has(&old, now.slot[s]))
			acquire(m, ri, now.slot[s]);
	ids_free(&old);
	m->repos[ri].gen++;
	return 0;
}

int usage_model_repo_touch(struct usage_model *m, const char *repo)
{
	return repo_get(m, repo) < 0 ? -ENOMEM : 0;
}

uint64_t usage_model_repo_gen(const struct usage_model *m, const char *repo)
{
	int32_t ri = repo_find(m, repo);
	return ri < 0 ? 0 : m->repos[ri].gen;
}

int usage_model_revision_add(struct usage_model *m, const char *repo, const char *digest)
{
	int32_t ri = repo_get(m, repo);
	uint32_t id = ri < 0 ? NONE : blob_id(m, digest);
	if (id == NONE)
		return -ENOMEM;
	int rc = rev_set(m, &m->repos[ri], id, true);
	return rc < 0 ? rc : rc ? refresh(m, (uint32_t)ri) : 0;
}

static void tag_drop(struct repo *r, size_t k)
{
	free(r->tags[k].name);
	r->tags[k] = r->tags[--r->ntags];
}

/* Removals create an unknown repository too: the generation then tells a
 * walk reading it that it changed (usage.c). */
int usage_model_revision_remove(struct usage_model *m, const char *repo, const char *digest)
{
	int32_t ri = repo_get(m, repo);
	if (ri < 0)
		return -ENOMEM;
	uint32_t id = blob_find(m, digest);
	struct repo *r = &m->repos[ri];
	if (id == NONE) {
		r->gen++;
		return 0;
	}
	rev_set(m, r, id, false);
	for (size_t k = r->ntags; k-- > 0;)
		if (r->tags[k].id == id)
			tag_drop(r, k);
	return refresh(m, (uint32_t)ri);
}

static int tag_put(struct repo *r, const char *tag, uint32_t id)
{
	for (size_t k = 0; k < r->ntags; k++)
		if (!strcmp(r->tags[k].name, tag)) {
			r->tags[k].id = id;
			return 0;
		}
	if (r->ntags == r->tcap) {
		size_t cap = r->tcap ? r->tcap * 2 : 8;
		struct tag *v = realloc(r->tags, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		r->tags = v;
		r->tcap = cap;
	}
	char *n = strdup(tag);
	if (!n)
		return -ENOMEM;
	r->tags[r->ntags++] = (struct tag){n, id};
	return 0;
}

int usage_model_tag_set(struct usage_model *m, const char *repo, const char *tag,
			const char *digest)
{
	int32_t ri = repo_get(m, repo);
	uint32_t id = ri < 0 ? NONE : blob_id(m, digest);
	if (id == NONE || tag_put(&m->repos[ri], tag, id))
		return -ENOMEM;
	return refresh(m, (uint32_t)ri);
}

int usage_model_tag_remove(struct usage_model *m, const char *repo, const char *tag)
{
	int32_t ri = repo_get(m, repo);
	if (ri < 0)
		return -ENOMEM;
	struct repo *r = &m->repos[ri];
	for (size_t k = 0; k < r->ntags; k++)
		if (!strcmp(r->tags[k].name, tag)) {
			tag_drop(r, k);
			return refresh(m, (uint32_t)ri);
		}
	r->gen++;
	return 0;
}

int usage_model_repo_replace(struct usage_model *m, const char *repo, const struct strvec *revs,
			     const struct strvec *tags)
{
	int32_t ri = repo_get(m, repo);
	if (ri < 0)
		return -ENOMEM;
	struct repo *r = &m->repos[ri];
	revs_clear(m, r);
	while (r->ntags)
		tag_drop(r, r->ntags - 1);
	int rc = 0;
	for (size_t i = 0; i < revs->n && rc == 0; i++) {
		uint32_t id = blob_id(m, revs->v[i]);
		rc = id == NONE ? -ENOMEM : rev_set(m, r, id, true) < 0 ? -ENOMEM : 0;
	}
	for (size_t i = 0; i + 1 < tags->n && rc == 0; i += 2) {
		uint32_t id = blob_id(m, tags->v[i + 1]);
		rc = id == NONE ? -ENOMEM : tag_put(r, tags->v[i], id);
	}
	int rc2 = refresh(m, (uint32_t)ri);
	return rc ? rc : rc2;
}

/* ---- uploads ---- */

int usage_model_upload_set(struct usage_model *m, const char *repo, const char *uuid,
			   uint64_t size, int64_t started)
{
	int32_t ri = repo_get(m, repo);
	if (ri < 0)
		return -ENOMEM;
	for (size_t i = 0; i < m->nups; i++)
		if (!strcmp(m->ups[i].uuid, uuid)) {
			m->ups[i].size = size;
			return 0;
		}
	if (m->nups == m->ucap) {
		size_t cap = m->ucap ? m->ucap * 2 : 16;
		struct upload *v = realloc(m->ups, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		m->ups = v;
		m->ucap = cap;
	}
	struct upload *u = &m->ups[m->nups++];
	snprintf(u->uuid, sizeof u->uuid, "%s", uuid);
	u->repo = (uint32_t)ri;
	u->size = size;
	u->started = started;
	return 0;
}

void usage_model_upload_remove(struct usage_model *m, const char *uuid)
{
	for (size_t i = 0; i < m->nups; i++)
		if (!strcmp(m->ups[i].uuid, uuid)) {
			m->ups[i] = m->ups[--m->nups];
			return;
		}
}

/* ---- reading ---- */

void usage_model_totals(const struct usage_model *m, int64_t upload_cutoff,
			struct usage_totals *out)
{
	*out = m->t;
	out->uploads = out->garbage_uploads = 0;
	for (size_t i = 0; i < m->nups; i++) {
		out->uploads += m->ups[i].size;
		if (m->ups[i].started < upload_cutoff)
			out->garbage_uploads += m->ups[i].size;
	}
	out->stored = out->blobs + out->uploads;
}

static void figures(const struct repo *r, struct usage_repo_figures *out)
{
	out->tags = r->ntags;
	out->manifests = r->revs.n;
	out->bytes = r->bytes;
	out->exclusive = r->excl;
	out->shared = r->bytes - r->excl;
}

int usage_model_repo(const struct usage_model *m, const char *repo,
		     struct usage_repo_figures *out)
{
	int32_t ri = repo_find(m, repo);
	if (ri < 0)
		return -ENOENT;
	figures(&m->repos[ri], out);
	return 0;
}

int usage_model_repo_names(const struct usage_model *m, struct strvec *out)
{
	for (uint32_t i = 0; i < m->nrepos; i++)
		if (strvec_push(out, m->repos[i].name))
			return -ENOMEM;
	strvec_sort(out);
	return 0;
}

/* ---- quota ---- */

/* The bytes of the ids of `set` that repository `r` (NULL: new) does not
 * reference yet: all of them (*bytes), and those no repository references
 * (*excl). */
static void new_bytes(const struct usage_model *m, const struct repo *r, const struct idset *set,
		      uint64_t *bytes, uint64_t *excl)
{
	for (uint32_t s = 0; s < set->cap; s++) {
		uint32_t id = set->slot[s];
		if (id >= TOMB || (r && ids_has(&r->refs, id)))
			continue;
		*bytes += m->blobs[id].size;
		if (m->blobs[id].nrepos == 0)
			*excl += m->blobs[id].size;
	}
}

static int add_known(const struct usage_model *m, struct idset *set, const char *digest)
{
	uint32_t id = blob_find(m, digest);
	return id == NONE || ids_add(set, id) >= 0 ? 0 : -ENOMEM;
}

int usage_model_would_be(const struct usage_model *m, const char *repo, const char *tag,
			 const char *digest, uint64_t len, const struct regfs_manifest *p,
			 struct usage_repo_figures *now, struct usage_repo_figures *out,
			 uint64_t *added)
{
	int32_t ri = repo_find(m, repo);
	const struct repo *r = ri < 0 ? NULL : &m->repos[ri];
	memset(now, 0, sizeof *now);
	if (r)
		figures(r, now);
	*out = *now;
	struct idset set = {0};
	int rc = 0;
	uint32_t self = blob_find(m, digest);
	uint64_t add = 0;
	if (self == NONE || !m->blobs[self].stored)
		add += len; /* the manifest's own bytes: new */
	else
		rc = ids_add(&set, self) < 0 ? -ENOMEM : 0;
	if (rc == 0 && p->has_config)
		rc = add_known(m, &set, p->config.digest);
	for (size_t i = 0; rc == 0 && i < p->n_layers; i++)
		rc = add_known(m, &set, p->layers[i].digest);
	struct idset visited = {0};
	for (size_t i = 0; rc == 0 && i < p->n_manifests; i++) {
		uint32_t id = blob_find(m, p->manifests[i].digest);
		if (id != NONE)
			rc = mark(m, &set, &visited, id, 1);
	}
	ids_free(&visited);
	if (rc == 0) {
		uint64_t bytes = add;
		new_bytes(m, r, &set, &bytes, &add);
		out->exclusive += add;
		out->bytes += bytes;
		out->shared = out->bytes - out->exclusive;
		bool new_tag = tag != NULL;
		for (size_t k = 0; r && tag && k < r->ntags; k++)
			if (!strcmp(r->tags[k].name, tag))
				new_tag = false;
		out->tags += new_tag;
	}
	*added = add;
	ids_free(&set);
	return rc;
}
