/* manifests.c — the manifest cache: manifests by digest (content-addressed: never stale).
 *
 * Parsed manifests stay in memory for the life of the mount (they are small:
 * ~1 KB each, 10 MB for 10,000) because du, ls and every manifest directory
 * need them; their bytes are also written to the disk blob cache (blobs.c) so
 * a remount does not fetch them again. Bytes are always verified against the
 * digest before they are believed, whether they come from the registry (the
 * client verifies) or from disk (verified here).
 *
 * Single flight per digest (regfs/sflight.h). A failed fetch leaves its
 * slot empty: the next reader fetches again. */
#include "../mount.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <regfs/hash.h>
#include <regfs/log.h>

struct slot {
	struct mentry e;
	struct sflight sf;     /* valid: e is filled (never stale) */
	struct slot *next;
};

/* Whether a manifest still exists in a repository, as last checked (content
 * never changes, existence does: a garbage collection removes index
 * children that nothing tags). Keyed by "repo@digest". */
struct exist {
	char *key;
	int present;     /* 1 exists, 0 gone (404) */
	double at;       /* now_mono() of the check: trusted for the ttl */
	bool logged;     /* a 404 is logged once per pair for the mount's life */
	struct exist *next;
};
#define EXIST_BUCKETS 4096

struct manifest_cache {
	struct regfs_client *client;
	const struct mount_opts *o;  /* ttl */
	struct fs_stats *st;
	struct blob_cache *bc;           /* NULL: no disk cache */
	struct sflight_group g;          /* slots and existence records */
	struct slot **b;
	size_t nb;
	struct exist *eb[EXIST_BUCKETS];
};

struct manifest_cache *manifest_cache_new(struct regfs_client *cl, const struct mount_opts *o,
			  struct fs_stats *st, struct blob_cache *bc)
{
	struct manifest_cache *mc = calloc(1, sizeof *mc);
	if (!mc)
		return NULL;
	mc->client = cl;
	mc->o = o;
	mc->st = st;
	mc->bc = bc;
	mc->nb = 65536;
	mc->b = calloc(mc->nb, sizeof *mc->b);
	if (!mc->b) {
		free(mc);
		return NULL;
	}
	sflight_group_init(&mc->g, loop_may_block);
	return mc;
}

static void slot_free(struct slot *s)
{
	free(s->e.data);
	regfs_manifest_free(s->e.m);
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
	if (!(s = calloc(1, sizeof *s)))
		return NULL;
	snprintf(s->e.digest, sizeof s->e.digest, "%s", digest);
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

/* Parses bytes into slot fields (not yet published). Takes ownership of data. */
static int fill(struct slot *s, char *data, size_t len, const char *ctype)
{
	struct regfs_err e = {0};
	int rc = regfs_manifest_parse(data, len, ctype, &s->e.m, &e);
	if (rc) {
		fs_warn("manifest %s: %s", s->e.digest, regfs_err_str(&e));
		free(data);
		return -EIO;
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
	struct slot *ns = calloc(1, sizeof *ns);
	char *copy = malloc(len + 1);
	if (!ns || !copy) {
		free(ns);
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, data, len);
	copy[len] = 0;
	snprintf(ns->e.digest, sizeof ns->e.digest, "%s", digest);
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

/* Batches bigger than this go in several rounds: every response of a round
 * is held until the round ends, so unbounded rounds (a whole registry's
 * manifests) would set the daemon's peak memory. */
#define PREFETCH_CHUNK 512

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

/* "2026-11-28T08:00:00.123Z" / "...+02:00" -> unix time; 0 when unparsable. */
static int64_t parse_rfc3339(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t t = (int64_t)timegm(&tm);
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	int oh, om;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
		t -= (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
	return t;
}

/* Reads a small blob whole: disk cache, else registry (verified, then cached). */
static char *small_blob(struct manifest_cache *mc, const char *repo, const char *digest, uint64_t size,
			size_t *len)
{
	if (size > REGFS_MANIFEST_MAX)
		return NULL;
	char *buf = malloc(size + 1);
	if (!buf)
		return NULL;
	int fd = blob_cache_open(mc->bc, digest);
	if (fd >= 0) {
		ssize_t r = pread(fd, buf, size, 0);
		close(fd);
		if (r == (ssize_t)size) {
			buf[size] = 0;
			*len = size;
			atomic_fetch_add(&mc->st->bc_hits, 1);
			return buf;
		}
	}
	atomic_fetch_add(&mc->st->bc_misses, 1);
	size_t got = 0;
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_blob_read(mc->client, repo, digest, 0, size, buf, &got, &e);
	if (rc || got != size) {
		if (rc)
			fs_client_errno(rc, &e, "fetching a config blob");
		free(buf);
		return NULL;
	}
	char d[REGFS_DIGEST_MAX];
	regfs_digest_buf(strncmp(digest, "sha512:", 7) == 0 ? REGFS_SHA512 : REGFS_SHA256,
			 buf, size, d);
	if (strcmp(d, digest) != 0) {
		fs_warn("blob %s@%s: the registry sent bytes that hash to %s", repo, digest, d);
		free(buf);
		return NULL;
	}
	blob_cache_put(mc->bc, digest, buf, size);
	buf[size] = 0;
	*len = size;
	return buf;
}

int64_t manifest_cache_created(struct manifest_cache *mc, const char *repo, const struct mentry *e)
{
	int64_t c = __atomic_load_n(&e->created, __ATOMIC_ACQUIRE);
	if (c)
		return c;
	c = -1;
	const struct regfs_manifest *m = e->m;
	if (m->kind == REGFS_MANIFEST_INDEX) {
		/* An index has no config: its first child's image time. */
		const struct mentry *ch;
		if (m->n_manifests && manifest_cache_get(mc, repo, m->manifests[0].digest, &ch) == 0 &&
		    ch->m->kind == REGFS_MANIFEST_IMAGE)
			c = manifest_cache_created(mc, repo, ch);
	} else if (m->has_config) {
		size_t len;
		char *buf = small_blob(mc, repo, m->config.digest, (uint64_t)m->config.size, &len);
		if (!buf)
			return 0; /* not cached: try again next time */
		json_t *j = json_loadb(buf, len, 0, NULL);
		const char *s = json_string_value(json_object_get(j, "created"));
		int64_t t = s ? parse_rfc3339(s) : 0;
		if (tag_time_plausible(t))
			c = t;
		json_decref(j);
		free(buf);
	}
	__atomic_store_n((int64_t *)&e->created, c, __ATOMIC_RELEASE);
	return c;
}

/* ---- tag times: which source, and whether it can be believed ---- */

/* 2013-01-01T00:00:00Z: Docker's first release; no OCI image is older. */
#define OLDEST_PLAUSIBLE 1356998400LL
#define CLOCK_SKEW_S 86400

static atomic_uint_fast64_t src_count[3];

int64_t tag_time_plausible(int64_t t)
{
	if (t < OLDEST_PLAUSIBLE || t > (int64_t)time(NULL) + CLOCK_SKEW_S)
		return 0;
	return t;
}

void tag_time_set(struct tag_ent *te, int64_t pushed, int64_t created)
{
	if (tag_time_plausible(pushed)) {
		te->mtime = pushed;
		te->mtime_src = MTIME_PUSHED;
	} else if (tag_time_plausible(created)) {
		te->mtime = created;
		te->mtime_src = MTIME_CREATED;
	} else {
		/* Neither: the time of this resolution, which the ttl renews, so
		 * `find -mtime +N` never takes a tag of unknown age for old (the
		 * mount time would, once the mount is N days old). */
		te->mtime = (int64_t)time(NULL);
		te->mtime_src = MTIME_UNKNOWN;
	}
	atomic_fetch_add(&src_count[te->mtime_src], 1);
}

void tag_time_counts(uint64_t out[3])
{
	for (int i = 0; i < 3; i++)
		out[i] = atomic_load(&src_count[i]);
}

const char *mtime_src_name(int src)
{
	return src == MTIME_PUSHED ? "pushed" : src == MTIME_CREATED ? "created" : "unknown";
}

/* ---- existence of index children ---- */

/* Caller holds g.mu. NULL when absent and !make (or out of memory). */
static struct exist *exist_of(struct manifest_cache *mc, const char *repo, const char *digest, bool make)
{
	char key[1024];
	snprintf(key, sizeof key, "%s@%s", repo, digest);
	size_t b = regfs_fnv1a64_str(key) % EXIST_BUCKETS;
	for (struct exist *x = mc->eb[b]; x; x = x->next)
		if (strcmp(x->key, key) == 0)
			return x;
	if (!make)
		return NULL;
	struct exist *x = calloc(1, sizeof *x);
	if (!x || !(x->key = strdup(key))) {
		free(x);
		return NULL;
	}
	x->at = -1e18;
	x->next = mc->eb[b];
	mc->eb[b] = x;
	return x;
}

bool manifest_cache_missing(struct manifest_cache *mc, const char *repo, const char *digest)
{
	pthread_mutex_lock(&mc->g.mu);
	struct exist *x = exist_of(mc, repo, digest, false);
	bool gone = x && x->present == 0 && now_mono() - x->at < mc->o->ttl;
	pthread_mutex_unlock(&mc->g.mu);
	return gone;
}

/* Records one answer; logs a 404 the first time the pair has one. */
static void exist_record(struct manifest_cache *mc, const char *repo, const char *digest, int present)
{
	pthread_mutex_lock(&mc->g.mu);
	struct exist *x = exist_of(mc, repo, digest, true);
	bool log_it = false;
	if (x) {
		x->present = present;
		x->at = now_mono();
		log_it = present == 0 && !x->logged;
		if (log_it)
			x->logged = true;
	}
	pthread_mutex_unlock(&mc->g.mu);
	if (log_it)
		fs_warn("%s: an index references manifest %s, which the registry no longer has "
			 "(404; removed by a garbage collection?): it is left out of _manifests/, "
			 "du and df, and the index's platforms/ link to it dangles", repo, digest);
}

/* regfs-registry: existence from the repo-manifests list (one request per
 * repository and ttl instead of one per manifest). 1/0, or -1 unavailable. */
static int listed_in_repo(struct names_cache *nc, const char *repo, const char *digest, char ***cache_v,
			  size_t *cache_n, const char **cache_repo)
{
	if (!*cache_repo || strcmp(*cache_repo, repo) != 0) {
		for (size_t k = 0; k < *cache_n; k++)
			free((*cache_v)[k]);
		free(*cache_v);
		*cache_v = NULL;
		*cache_n = 0;
		*cache_repo = NULL;
		if (names_repo_manifests(nc, repo, cache_v, cache_n) != 0)
			return -1;
		*cache_repo = repo;
	}
	for (size_t k = 0; k < *cache_n; k++)
		if (strcmp((*cache_v)[k], digest) == 0)
			return 1;
	return 0;
}

/* GETs by digest the pairs in idx[0..k) (present[] -1 so far). */
static void exist_fetch(struct manifest_cache *mc, const char **repos, const char **digests,
			const size_t *idx, size_t k,
			int *present)
{
	struct regfs_manifest_req *reqs = calloc(k ? k : 1, sizeof *reqs);
	if (!reqs)
		return;
	for (size_t j = 0; j < k; j++) {
		reqs[j].repo = repos[idx[j]];
		reqs[j].ref = digests[idx[j]];
	}
	atomic_fetch_add(&mc->st->mc_misses, k);
	loop_may_block();
	regfs_client_manifests(mc->client, reqs, k);
	for (size_t j = 0; j < k; j++) {
		size_t i = idx[j];
		if (reqs[j].rc == 0 && strcmp(reqs[j].resp.digest, digests[i]) == 0) {
			const struct mentry *e;
			if (manifest_cache_store(mc, digests[i], reqs[j].resp.data, reqs[j].resp.len,
				       reqs[j].resp.content_type, &e) == 0)
				present[i] = 1;
		} else if (reqs[j].rc == -ENOENT) {
			present[i] = 0;
		} else {
			char what[400];
			snprintf(what, sizeof what, "checking manifest %s@%s", repos[i], digests[i]);
			fs_client_errno(reqs[j].rc ? reqs[j].rc : -EIO, &reqs[j].err, what);
		}
		if (present[i] >= 0)
			exist_record(mc, repos[i], digests[i], present[i]);
		regfs_manifest_resp_free(&reqs[j].resp);
	}
	free(reqs);
}

void manifest_cache_check_exist(struct manifest_cache *mc, struct names_cache *nc, const char **repos,
			const char **digests, size_t n, int *present)
{
	size_t *todo = calloc(n ? n : 1, sizeof *todo), k = 0;
	char **lv = NULL;
	size_t ln = 0;
	const char *lrepo = NULL;
	bool has_list = regfs_client_has_ext(mc->client, "repo-manifests");
	for (size_t i = 0; i < n; i++) {
		present[i] = -1;
		pthread_mutex_lock(&mc->g.mu);
		struct exist *x = exist_of(mc, repos[i], digests[i], false);
		if (x && now_mono() - x->at < mc->o->ttl)
			present[i] = x->present;
		pthread_mutex_unlock(&mc->g.mu);
		if (present[i] < 0 && has_list) {
			int l = listed_in_repo(nc, repos[i], digests[i], &lv, &ln, &lrepo);
			if (l == 0)
				exist_record(mc, repos[i], digests[i], 0);
			if (l == 0 || (l == 1 && manifest_cache_peek(mc, digests[i])))
				present[i] = l;
		}
		if (present[i] < 0 && todo)
			todo[k++] = i;
	}
	for (size_t j = 0; j < ln; j++)
		free(lv[j]);
	free(lv);
	/* In rounds, like manifest_cache_prefetch: each round's bodies are held at once. */
	for (size_t c0 = 0; c0 < k; c0 += PREFETCH_CHUNK)
		exist_fetch(mc, repos, digests, todo + c0,
			    k - c0 < PREFETCH_CHUNK ? k - c0 : PREFETCH_CHUNK,
			    present);
	free(todo);
}
