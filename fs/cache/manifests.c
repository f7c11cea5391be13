/* manifests.c — the manifest cache: manifests by digest (content-addressed: never stale).
 *
 * Parsed manifests (packed by mpack.c, ~1 KB each) are kept in memory while
 * someone holds them and, unheld, up to a byte budget in least-recently-used
 * order: du, ls and every manifest directory need them, but a registry of a
 * million tags would not fit in memory whole. Past the budget the oldest
 * unheld entries are dropped (slot and all: memory stops growing with the
 * registry); their bytes stay in the disk blob cache (blobs.c) — written
 * there when dropped if they came in a bulk page, memory only — so the next
 * get reads them from disk, or from the registry when the disk cache let
 * them go. Bytes are always verified against the digest before they are
 * believed, whether they come from the registry (the client verifies) or
 * from disk (verified here).
 *
 * Single flight per digest (regfs/sflight.h); a slot being filled is held by
 * its filler, so it is never dropped under it. A failed fetch leaves its slot
 * empty (dropped once no one holds it): the next reader fetches again.
 *
 * The cache's other files: times.c (image and tag times), exist.c (whether
 * index children still exist), mpack.c (how a parsed manifest is kept). */
#include "manifests_internal.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/hash.h>
#include <regfs/log.h>

struct slot {
	struct mentry e;              /* e.digest points at dig */
	struct sflight sf;            /* valid: e is filled (never stale) */
	struct slot *next;            /* hash chain */
	struct slot *older, *newer;   /* the LRU list, while filled and unheld */
	bool in_lru;
	bool on_disk;                 /* the bytes are in the disk cache (or there is none) */
	bool disk_read;               /* filled from the disk cache (mcache_usage) */
	unsigned holds;               /* getters holding it, and its filler */
	size_t cost;                  /* memory it keeps while filled (malloc's usable sizes) */
	char dig[];                   /* exactly as long as the digest */
};

size_t mcache_budget(const struct mount_opts *o)
{
	uint64_t mem = o && o->memory_bytes ? o->memory_bytes : MOUNT_MEMORY_DEFAULT;
	/* A sixteenth (16 MiB of the default 256): the node table and the
	 * accounting need most of the rest, and a dropped manifest costs one
	 * disk read to get back. */
	return (size_t)(mem / 16);
}

/* An empty slot for digest (not in any chain); NULL when out of memory. */
static struct slot *slot_new(const char *digest)
{
	size_t n = strlen(digest) + 1;
	struct slot *s = calloc(1, sizeof *s + n);
	if (!s)
		return NULL;
	memcpy(s->dig, digest, n);
	s->e.digest = s->dig;
	return s;
}

struct manifest_cache *manifest_cache_new(struct regfs_client *cl, const struct mount_opts *o,
					  struct fs_stats *st, struct blob_cache *bc)
{
	struct manifest_cache *mc = calloc(1, sizeof *mc);
	struct slot **b = calloc(65536, sizeof *b);
	if (!mc || !b) {
		free(mc);
		free(b);
		return NULL;
	}
	*mc = (struct manifest_cache){.client = cl, .o = o, .st = st, .bc = bc, .b = b, .nb = 65536,
				      .budget = mcache_budget(o)};
	sflight_group_init(&mc->g, loop_may_block);
	return mc;
}

static void slot_free(struct slot *s)
{
	free(s->e.data);
	free(s->e.m); /* packed: one block (mpack.c) */
	free(s);
}

void manifest_cache_free(struct manifest_cache *mc)
{
	if (!mc)
		return;
	for (size_t i = 0; i < EXIST_BUCKETS; i++)
		for (struct exist *x = mc->eb[i], *nx; x; x = nx) {
			nx = x->next;
			free(x->key);
			free(x);
		}
	for (size_t i = 0; i < mc->nb; i++)
		for (struct slot *s = mc->b[i], *nx; s; s = nx) {
			nx = s->next;
			slot_free(s);
		}
	free(mc->b);
	sflight_group_destroy(&mc->g);
	free(mc);
}

/* Caller holds g.mu. */
static struct slot *find(struct manifest_cache *mc, const char *digest)
{
	for (struct slot *s = mc->b[regfs_fnv1a64_str(digest) % mc->nb]; s; s = s->next)
		if (strcmp(s->e.digest, digest) == 0)
			return s;
	return NULL;
}

/* Caller holds g.mu. Puts s (not in the table) into the table. */
static void table_add(struct manifest_cache *mc, struct slot *s)
{
	size_t b = regfs_fnv1a64_str(s->e.digest) % mc->nb;
	s->next = mc->b[b];
	mc->b[b] = s;
}

/* Caller holds g.mu. Takes s out of the table. */
static void table_remove(struct manifest_cache *mc, struct slot *s)
{
	struct slot **pp = &mc->b[regfs_fnv1a64_str(s->e.digest) % mc->nb];
	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	s->next = NULL;
}

/* Caller holds g.mu. */
static void lru_unlink(struct manifest_cache *mc, struct slot *s)
{
	if (!s->in_lru)
		return;
	if (s->older)
		s->older->newer = s->newer;
	else
		mc->lru_old = s->newer;
	if (s->newer)
		s->newer->older = s->older;
	else
		mc->lru_new = s->older;
	s->older = s->newer = NULL;
	s->in_lru = false;
}

/* Caller holds g.mu. One more hold on s (out of the LRU list meanwhile). */
static void hold(struct manifest_cache *mc, struct slot *s)
{
	lru_unlink(mc, s);
	s->holds++;
}

/* Caller holds g.mu. Gives back a hold. An unheld filled slot becomes the
 * most recently used; an unheld empty one (its fill failed) is dropped. */
static void unhold(struct manifest_cache *mc, struct slot *s)
{
	if (--s->holds)
		return;
	if (s->sf.valid) {
		s->older = mc->lru_new;
		s->newer = NULL;
		if (mc->lru_new)
			mc->lru_new->newer = s;
		else
			mc->lru_old = s;
		mc->lru_new = s;
		s->in_lru = true;
	} else if (!s->sf.busy) {
		table_remove(mc, s);
		slot_free(s);
	}
}

/* Caller holds g.mu. Takes the least recently used unheld slots out while
 * the cache is over budget: a chain (through next) for evict_finish. */
static struct slot *evict_collect(struct manifest_cache *mc)
{
	struct slot *out = NULL;
	while (mc->bytes > mc->budget && mc->lru_old) {
		struct slot *s = mc->lru_old;
		lru_unlink(mc, s);
		table_remove(mc, s);
		mc->bytes -= s->cost;
		mc->entries--;
		mc->evictions++;
		s->next = out;
		out = s;
	}
	return out;
}

/* Without g.mu: writes the memory-only ones of the dropped slots to the disk
 * cache, then frees them. A get meanwhile misses memory and fetches again;
 * it never sees a half-written file (blob_cache_put renames into place, and
 * from_disk verifies). */
static void evict_finish(struct manifest_cache *mc, struct slot *s)
{
	uint64_t written = 0;
	for (struct slot *nx; s; s = nx) {
		nx = s->next;
		if (!s->on_disk && blob_cache_put(mc->bc, s->e.digest, s->e.data, s->e.len) == 0)
			written++;
		slot_free(s);
	}
	if (written) {
		pthread_mutex_lock(&mc->g.mu);
		mc->written += written;
		pthread_mutex_unlock(&mc->g.mu);
	}
}

/* Gives back a hold on s and drops what is over budget. */
static void release(struct manifest_cache *mc, struct slot *s)
{
	pthread_mutex_lock(&mc->g.mu);
	unhold(mc, s);
	struct slot *v = evict_collect(mc);
	pthread_mutex_unlock(&mc->g.mu);
	evict_finish(mc, v);
}

void mcache_put(struct manifest_cache *mc, const struct mentry *e)
{
	if (e)
		release(mc, (struct slot *)((char *)e - offsetof(struct slot, e)));
}

void mcache_set_budget(struct manifest_cache *mc, size_t bytes)
{
	pthread_mutex_lock(&mc->g.mu);
	mc->budget = bytes;
	struct slot *v = evict_collect(mc);
	pthread_mutex_unlock(&mc->g.mu);
	evict_finish(mc, v);
}

size_t mcache_bytes(struct manifest_cache *mc)
{
	pthread_mutex_lock(&mc->g.mu);
	size_t n = mc->bytes;
	pthread_mutex_unlock(&mc->g.mu);
	return n;
}

uint64_t mcache_evictions(struct manifest_cache *mc)
{
	pthread_mutex_lock(&mc->g.mu);
	uint64_t n = mc->evictions;
	pthread_mutex_unlock(&mc->g.mu);
	return n;
}

void mcache_usage(struct manifest_cache *mc, struct mcache_usage *out)
{
	pthread_mutex_lock(&mc->g.mu);
	*out = (struct mcache_usage){.bytes = mc->bytes, .budget = mc->budget,
				     .entries = mc->entries, .dropped = mc->evictions,
				     .written = mc->written, .read_back = mc->read_back};
	pthread_mutex_unlock(&mc->g.mu);
}

/* Caller holds g.mu. The slot of digest, held (made empty when new); NULL
 * when out of memory. */
static struct slot *slot_hold(struct manifest_cache *mc, const char *digest)
{
	struct slot *s = find(mc, digest);
	if (!s) {
		if (!(s = slot_new(digest)))
			return NULL;
		table_add(mc, s);
	}
	hold(mc, s);
	return s;
}

const struct mentry *mcache_peek(struct manifest_cache *mc, const char *digest)
{
	pthread_mutex_lock(&mc->g.mu);
	struct slot *s = find(mc, digest);
	const struct mentry *e = NULL;
	if (s && s->sf.valid) {
		hold(mc, s);
		e = &s->e;
	}
	pthread_mutex_unlock(&mc->g.mu);
	return e;
}

/* Parses bytes into slot fields (not yet published), packed (mpack.c).
 * Takes ownership of data. */
static int fill(struct slot *s, char *data, size_t len, const char *ctype)
{
	struct regfs_err e = {0};
	struct regfs_manifest *m = NULL;
	int rc = regfs_manifest_parse(data, len, ctype, &m, &e);
	if (rc) {
		fs_warn("manifest %s: %s", s->e.digest, regfs_err_str(&e));
		free(data);
		return -EIO;
	}
	size_t packed = 0;
	s->e.m = manifest_pack(m, &packed);
	regfs_manifest_free(m);
	if (!s->e.m) {
		free(data);
		return -ENOMEM;
	}
	/* Read buffers grow by doubling (4 KB for a 700-byte manifest): what
	 * the entry keeps is trimmed to the bytes, as its cost counts them. */
	char *trim = realloc(data, len + 1);
	s->e.data = trim ? trim : data;
	s->e.len = len;
	/* What malloc gave, not what was asked: a slot, its bytes and its
	 * parsed form are three blocks, each rounded up with a header. */
	s->cost = malloc_usable_size(s) + malloc_usable_size(s->e.data) +
		  malloc_usable_size(s->e.m);
	return 0;
}

/* Reads a manifest from the disk cache, verified; NULL if absent/bad. */
static char *from_disk(struct manifest_cache *mc, const char *digest, size_t *len)
{
	int fd = blob_cache_open(mc->bc, digest);
	if (fd < 0)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= REGFS_MANIFEST_MAX)
				break;
			char *nb = realloc(buf, (cap = cap ? cap * 2 : 4096) + 1);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0) {
			if (r == 0) {
				close(fd);
				char d[REGFS_DIGEST_MAX];
				enum regfs_digest_alg alg = strncmp(digest, "sha512:", 7) == 0
					? REGFS_SHA512 : REGFS_SHA256;
				regfs_digest_buf(alg, buf, n, d);
				if (strcmp(d, digest) != 0) {
					log_warn("disk cache: %s is corrupt; fetching it again", digest);
					free(buf);
					return NULL;
				}
				buf[n] = 0;
				*len = n;
				return buf;
			}
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	free(buf);
	return NULL;
}

void mcache_observe(struct manifest_cache *mc, void (*fn)(void *, const struct mentry *),
		    void *arg)
{
	pthread_mutex_lock(&mc->g.mu);
	mc->observer = fn;
	mc->observer_arg = arg;
	pthread_mutex_unlock(&mc->g.mu);
}

/* Caller holds g.mu; s just filled. Under the lock, so that once
 * mcache_observe returns no call of the old observer is running. */
static void observe(struct manifest_cache *mc, struct slot *s)
{
	if (mc->observer)
		mc->observer(mc->observer_arg, &s->e);
}

/* Caller holds g.mu; s filled and held by the caller: counted, and
 * published to its waiters. */
static void publish(struct manifest_cache *mc, struct slot *s)
{
	observe(mc, s);
	mc->bytes += s->cost;
	mc->entries++;
	sflight_set(&s->sf);
	pthread_cond_broadcast(&mc->g.cv);
}

/* Hands s (held) to the caller as *out, or gives the hold back when out
 * is NULL. */
static void hand_out(struct manifest_cache *mc, struct slot *s, const struct mentry **out)
{
	if (out)
		*out = &s->e;
	else
		release(mc, s);
}

/* mcache_store(_mem): parses a copy of data and publishes it in the slot
 * of digest, unless the slot is filled already (then data is not parsed);
 * a slot another thread is filling is waited for. *out as hand_out says. */
static int put(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
	       const char *ctype, bool persist, const struct mentry **out)
{
	pthread_mutex_lock(&mc->g.mu);
	struct slot *s = find(mc, digest);
	if (s && s->sf.valid) {
		hold(mc, s);
		pthread_mutex_unlock(&mc->g.mu);
		hand_out(mc, s, out);
		return 0;
	}
	pthread_mutex_unlock(&mc->g.mu);
	struct slot *ns = slot_new(digest);
	char *copy = malloc(len + 1);
	if (!ns || !copy) {
		free(ns);
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, data, len);
	copy[len] = 0;
	int rc = fill(ns, copy, len, ctype);
	if (rc) {
		free(ns);
		return rc;
	}
	if (persist)
		blob_cache_put(mc->bc, digest, data, len);
	ns->on_disk = persist || !mc->bc;
	pthread_mutex_lock(&mc->g.mu);
	s = find(mc, digest);
	if (s) {
		/* Being filled elsewhere, or waited on after a failed fill:
		 * never write into a slot another thread is filling. */
		hold(mc, s);
		sflight_wait_idle(&mc->g, &s->sf);
		if (s->sf.valid) {
			pthread_mutex_unlock(&mc->g.mu);
			slot_free(ns);
			hand_out(mc, s, out);
			return 0;
		}
		s->e.data = ns->e.data;
		s->e.len = ns->e.len;
		s->e.m = ns->e.m;
		s->cost = ns->cost;
		s->on_disk = ns->on_disk;
		free(ns);
		ns = s;
	} else {
		table_add(mc, ns);
		hold(mc, ns);
	}
	publish(mc, ns);
	pthread_mutex_unlock(&mc->g.mu);
	hand_out(mc, ns, out);
	return 0;
}

int mcache_store(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
		 const char *ctype, const struct mentry **out)
{
	return put(mc, digest, data, len, ctype, true, out);
}

int mcache_store_mem(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
		     const char *ctype, const struct mentry **out)
{
	return put(mc, digest, data, len, ctype, false, out);
}

/* The registry's answer to a GET of s's digest (rc, r, e) parsed into s,
 * its bytes stored on disk; or why not, logged. Frees r. */
static int fill_from_resp(struct manifest_cache *mc, struct slot *s, const char *repo, int rc,
			  struct regfs_manifest_resp *r, struct regfs_err *e)
{
	if (rc == 0) {
		blob_cache_put(mc->bc, s->e.digest, r->data, r->len);
		s->on_disk = true;
		rc = fill(s, r->data, r->len, r->content_type);
		r->data = NULL;
	} else {
		char what[400];
		snprintf(what, sizeof what, "fetching manifest %s@%s", repo, s->e.digest);
		rc = fs_client_errno(rc, e, what);
	}
	regfs_manifest_resp_free(r);
	return rc;
}

/* Caller holds g.mu and the claim on s: ends it, counted when ok. */
static void fill_end(struct manifest_cache *mc, struct slot *s, bool ok)
{
	if (ok) {
		observe(mc, s);
		mc->bytes += s->cost;
		mc->entries++;
		mc->read_back += s->disk_read;
	}
	sflight_end(&mc->g, &s->sf, ok);
}

int mcache_get(struct manifest_cache *mc, const char *repo, const char *digest,
	       const struct mentry **out)
{
	pthread_mutex_lock(&mc->g.mu);
	struct slot *s = slot_hold(mc, digest);
	if (!s) {
		pthread_mutex_unlock(&mc->g.mu);
		return -ENOMEM;
	}
	if (sflight_begin(&mc->g, &s->sf, INFINITY) == SFLIGHT_HIT) {
		pthread_mutex_unlock(&mc->g.mu);
		atomic_fetch_add(&mc->st->mc_hits, 1);
		*out = &s->e;
		return 0;
	}
	pthread_mutex_unlock(&mc->g.mu);
	int rc;
	size_t len = 0;
	char *data = from_disk(mc, digest, &len);
	if (data) {
		atomic_fetch_add(&mc->st->mc_hits, 1);
		s->on_disk = s->disk_read = true;
		rc = fill(s, data, len, NULL);
	} else {
		atomic_fetch_add(&mc->st->mc_misses, 1);
		struct regfs_manifest_resp r = {0};
		struct regfs_err e = {0};
		loop_may_block();
		rc = regfs_client_manifest(mc->client, repo, digest, &r, &e);
		rc = fill_from_resp(mc, s, repo, rc, &r, &e);
	}
	pthread_mutex_lock(&mc->g.mu);
	fill_end(mc, s, rc == 0);
	pthread_mutex_unlock(&mc->g.mu);
	if (rc) {
		release(mc, s);
		return rc;
	}
	*out = &s->e;
	return 0;
}


/* Claims the slots of digests[0..n) that are neither filled nor being
 * filled: mine[0..k) (held), their repositories in reqs[0..k).repo.
 * Returns k. */
static size_t prefetch_claim(struct manifest_cache *mc, const char **repos, const char **digests,
			     size_t n, struct slot **mine, struct regfs_manifest_req *reqs)
{
	size_t k = 0;
	pthread_mutex_lock(&mc->g.mu);
	for (size_t i = 0; i < n; i++) {
		struct slot *s = slot_hold(mc, digests[i]);
		if (!s)
			break;
		if (!sflight_claim(&s->sf, INFINITY)) {
			unhold(mc, s);
			continue; /* cached, or someone is fetching it */
		}
		mine[k] = s;
		reqs[k].repo = repos[i];
		k++;
	}
	pthread_mutex_unlock(&mc->g.mu);
	return k;
}

/* Fills the claimed mine[0..k): from disk, the rest with one parallel batch
 * of GETs (reqs reused for it). rc[i]: how mine[i] went. */
static void prefetch_fill(struct manifest_cache *mc, struct slot **mine,
			  struct regfs_manifest_req *reqs, size_t k, int *rc)
{
	size_t *idx = calloc(k ? k : 1, sizeof *idx), nr = 0;
	for (size_t i = 0; i < k; i++) {
		size_t len;
		char *data = idx ? from_disk(mc, mine[i]->e.digest, &len) : NULL;
		if (!idx) {
			rc[i] = -ENOMEM;
		} else if (data) {
			atomic_fetch_add(&mc->st->mc_hits, 1);
			mine[i]->on_disk = mine[i]->disk_read = true;
			rc[i] = fill(mine[i], data, len, NULL);
		} else {
			idx[nr] = i;
			reqs[nr].repo = reqs[i].repo; /* nr <= i: read before written */
			reqs[nr].ref = mine[i]->e.digest;
			nr++;
		}
	}
	if (nr) {
		atomic_fetch_add(&mc->st->mc_misses, nr);
		loop_may_block();
		regfs_client_manifests(mc->client, reqs, nr);
	}
	for (size_t j = 0; j < nr; j++)
		rc[idx[j]] = fill_from_resp(mc, mine[idx[j]], reqs[j].repo, reqs[j].rc, &reqs[j].resp,
					    &reqs[j].err);
	free(idx);
}

void manifest_cache_prefetch(struct manifest_cache *mc, const char **repos, const char **digests,
			     size_t n)
{
	if (n > PREFETCH_CHUNK) {
		for (size_t i = 0; i < n; i += PREFETCH_CHUNK)
			manifest_cache_prefetch(mc, repos + i, digests + i,
						n - i < PREFETCH_CHUNK ? n - i : PREFETCH_CHUNK);
		return;
	}
	struct slot **mine = calloc(n ? n : 1, sizeof *mine);
	struct regfs_manifest_req *reqs = calloc(n ? n : 1, sizeof *reqs);
	int *rc = calloc(n ? n : 1, sizeof *rc);
	if (mine && reqs && rc) {
		size_t k = prefetch_claim(mc, repos, digests, n, mine, reqs);
		prefetch_fill(mc, mine, reqs, k, rc);
		pthread_mutex_lock(&mc->g.mu);
		for (size_t i = 0; i < k; i++) {
			fill_end(mc, mine[i], rc[i] == 0);
			unhold(mc, mine[i]);
		}
		struct slot *v = evict_collect(mc);
		pthread_mutex_unlock(&mc->g.mu);
		evict_finish(mc, v);
	}
	free(mine);
	free(reqs);
	free(rc);
}
