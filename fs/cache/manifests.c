/* manifests.c — the manifest cache: manifests by digest (content-addressed: never stale).
 *
 * Parsed manifests stay in memory for the life of the mount (they are small:
 * ~1 KB each packed by mpack.c, 10 MB for 10,000) because du, ls and every
 * manifest directory need them; their bytes are also written to the disk blob cache (blobs.c) so
 * a remount does not fetch them again. Bytes are always verified against the
 * digest before they are believed, whether they come from the registry (the
 * client verifies) or from disk (verified here).
 *
 * Single flight per digest (regfs/sflight.h). A failed fetch leaves its
 * slot empty: the next reader fetches again.
 *
 * The cache's other files: times.c (image and tag times), exist.c (whether
 * index children still exist), mpack.c (how a parsed manifest is kept). */
#include "manifests_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/hash.h>
#include <regfs/log.h>

struct slot {
	struct mentry e;       /* e.digest points at dig */
	struct sflight sf;     /* valid: e is filled (never stale) */
	struct slot *next;
	char dig[];            /* exactly as long as the digest: a slot per manifest of the registry */
};

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
	*mc = (struct manifest_cache){.client = cl, .o = o, .st = st, .bc = bc, .b = b, .nb = 65536};
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

/* Caller holds g.mu. The slot of digest, made (empty) when new; NULL when
 * out of memory. */
static struct slot *slot_of(struct manifest_cache *mc, const char *digest)
{
	struct slot *s = find(mc, digest);
	if (s)
		return s;
	if (!(s = slot_new(digest)))
		return NULL;
	size_t b = regfs_fnv1a64_str(digest) % mc->nb;
	s->next = mc->b[b];
	mc->b[b] = s;
	return s;
}

const struct mentry *manifest_cache_peek(struct manifest_cache *mc, const char *digest)
{
	pthread_mutex_lock(&mc->g.mu);
	struct slot *s = find(mc, digest);
	const struct mentry *e = s && s->sf.valid ? &s->e : NULL;
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
	s->e.m = manifest_pack(m);
	regfs_manifest_free(m);
	if (!s->e.m) {
		free(data);
		return -ENOMEM;
	}
	s->e.data = data;
	s->e.len = len;
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

static int put(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
	       const char *ctype, bool persist, const struct mentry **out);

int manifest_cache_store(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
	       const char *ctype, const struct mentry **out)
{
	return put(mc, digest, data, len, ctype, true, out);
}

int manifest_cache_store_mem(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
		   const char *ctype, const struct mentry **out)
{
	return put(mc, digest, data, len, ctype, false, out);
}

static int put(struct manifest_cache *mc, const char *digest, const char *data, size_t len,
	       const char *ctype, bool persist, const struct mentry **out)
{
	pthread_mutex_lock(&mc->g.mu);
	struct slot *s = find(mc, digest);
	if (s && s->sf.valid) {
		pthread_mutex_unlock(&mc->g.mu);
		*out = &s->e;
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
	pthread_mutex_lock(&mc->g.mu);
	s = find(mc, digest);
	if (s && s->sf.valid) {
		/* Someone else won the race; keep theirs. */
		pthread_mutex_unlock(&mc->g.mu);
		slot_free(ns);
		*out = &s->e;
		return 0;
	}
	if (s) {
		/* In flight elsewhere (or failed there): publish ours into
		 * their slot; its waiters find it filled. */
		s->e.data = ns->e.data;
		s->e.len = ns->e.len;
		s->e.m = ns->e.m;
		free(ns);
		ns = s;
	} else {
		size_t b = regfs_fnv1a64_str(digest) % mc->nb;
		ns->next = mc->b[b];
		mc->b[b] = ns;
	}
	sflight_set(&ns->sf);
	pthread_cond_broadcast(&mc->g.cv);
	pthread_mutex_unlock(&mc->g.mu);
	*out = &ns->e;
	return 0;
}

/* The registry's answer to a GET of s's digest (rc, r, e) parsed into s,
 * its bytes stored on disk; or why not, logged. Frees r. */
static int fill_from_resp(struct manifest_cache *mc, struct slot *s, const char *repo, int rc,
			  struct regfs_manifest_resp *r, struct regfs_err *e)
{
	if (rc == 0) {
		blob_cache_put(mc->bc, s->e.digest, r->data, r->len);
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

int manifest_cache_get(struct manifest_cache *mc, const char *repo, const char *digest,
		       const struct mentry **out)
{
	pthread_mutex_lock(&mc->g.mu);
	struct slot *s = slot_of(mc, digest);
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
	sflight_end(&mc->g, &s->sf, rc == 0);
	if (rc == 0)
		*out = &s->e;
	pthread_mutex_unlock(&mc->g.mu);
	return rc;
}


/* Claims the slots of digests[0..n) that are neither filled nor being
 * filled: mine[0..k), their repositories in reqs[0..k).repo. Returns k. */
static size_t prefetch_claim(struct manifest_cache *mc, const char **repos, const char **digests,
			     size_t n, struct slot **mine, struct regfs_manifest_req *reqs)
{
	size_t k = 0;
	pthread_mutex_lock(&mc->g.mu);
	for (size_t i = 0; i < n; i++) {
		struct slot *s = slot_of(mc, digests[i]);
		if (!s)
			break;
		if (!sflight_claim(&s->sf, INFINITY))
			continue; /* cached, or someone is fetching it */
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
		for (size_t i = 0; i < k; i++)
			sflight_end(&mc->g, &mine[i]->sf, rc[i] == 0);
		pthread_mutex_unlock(&mc->g.mu);
	}
	free(mine);
	free(reqs);
	free(rc);
}
