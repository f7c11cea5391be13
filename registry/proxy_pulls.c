/* proxy_pulls.c — see proxy_pulls.h. Storage I/O is never done under the
 * mutex: a load reads first and merges under it; a flush renders the dirty
 * repositories under it and writes them after. */
#include "proxy_pulls.h"

#include "registry.h"

#include <regfs/hash.h>
#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/names.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PULLS_DIR REGFS_LAYOUT_ROOT "/_regfs/proxy"
#define PULLS_FILE "_pulls.json"
#define PULLS_MAX_BYTES (16u << 20) /* a larger object is refused as malformed */

struct rec {
	char *key;
	int64_t t;
	bool unseen;   /* pulls_fresh_unseen reported it once (see there) */
};

struct prepo {
	char *name;
	struct rec *v;
	size_t n, cap;
	bool loaded, dirty;
	struct prepo *next;  /* hash chain */
};

struct proxy_pulls {
	pthread_mutex_t mu;
	pthread_cond_t released;    /* the claim below was released */
	char *claim_repo, *claim_key; /* the key being deleted (pulls_claim), or NULL */
	uint64_t releases;            /* pulls_release calls */
	struct prepo **slot;
	size_t nslots, nrepos;
	int64_t started;
	int64_t floor;   /* stored records count as no older than this */
	bool floor_set;  /* pulls_set_floor was called (the first pass) */
};

struct proxy_pulls *pulls_new(int64_t started, int64_t slack)
{
	struct proxy_pulls *pl = calloc(1, sizeof *pl);
	if (!pl)
		return NULL;
	pl->nslots = 64;
	pl->slot = calloc(pl->nslots, sizeof *pl->slot);
	if (!pl->slot) {
		free(pl);
		return NULL;
	}
	pl->started = started;
	pl->floor = started - (slack > 0 ? slack : 0);
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->released, NULL);
	return pl;
}

static void prepo_free(struct prepo *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].key);
	free(p->v);
	free(p->name);
	free(p);
}

void pulls_free(struct proxy_pulls *pl)
{
	if (!pl)
		return;
	for (size_t i = 0; i < pl->nslots; i++)
		for (struct prepo *p = pl->slot[i], *nx; p; p = nx) {
			nx = p->next;
			prepo_free(p);
		}
	free(pl->slot);
	free(pl->claim_repo);
	free(pl->claim_key);
	pthread_cond_destroy(&pl->released);
	pthread_mutex_destroy(&pl->mu);
	free(pl);
}

int64_t pulls_started(const struct proxy_pulls *pl)
{
	return pl->started;
}

/* Doubles the table when chains grow past two on average (mutex held); a
 * failed growth keeps the old table (longer chains, still correct). */
static void grow(struct proxy_pulls *pl)
{
	size_t n = pl->nslots * 2;
	struct prepo **s = calloc(n, sizeof *s);
	if (!s)
		return;
	for (size_t i = 0; i < pl->nslots; i++)
		for (struct prepo *p = pl->slot[i], *nx; p; p = nx) {
			nx = p->next;
			size_t k = regfs_fnv1a64_str(p->name) % n;
			p->next = s[k];
			s[k] = p;
		}
	free(pl->slot);
	pl->slot = s;
	pl->nslots = n;
}

/* The repository's entry (mutex held); created when `create`. NULL: absent
 * or ENOMEM. */
static struct prepo *repo_of(struct proxy_pulls *pl, const char *name, bool create)
{
	size_t k = regfs_fnv1a64_str(name) % pl->nslots;
	for (struct prepo *p = pl->slot[k]; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	if (!create)
		return NULL;
	if (pl->nrepos + 1 > pl->nslots * 2) {
		grow(pl);
		k = regfs_fnv1a64_str(name) % pl->nslots;
	}
	struct prepo *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(name))) {
		free(p);
		return NULL;
	}
	p->next = pl->slot[k];
	pl->slot[k] = p;
	pl->nrepos++;
	return p;
}

static struct rec *rec_of(struct prepo *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].key, key) == 0)
			return &p->v[i];
	return NULL;
}

/* Sets key to max(old, when) or, with only_new, only when absent (mutex
 * held). 0 or -ENOMEM. */
static int rec_set(struct prepo *p, const char *key, int64_t when, bool only_new)
{
	struct rec *e = rec_of(p, key);
	if (e) {
		if (!only_new && when > e->t) {
			e->t = when;
			e->unseen = false;
			p->dirty = true;
		}
		return 0;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct rec *v = realloc(p->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	char *k = strdup(key);
	if (!k)
		return -ENOMEM;
	p->v[p->n++] = (struct rec){k, when, false};
	p->dirty = true;
	return 0;
}

static bool claimed(const struct proxy_pulls *pl, const char *repo, const char *key)
{
	return pl->claim_key && strcmp(pl->claim_key, key) == 0 &&
	       strcmp(pl->claim_repo, repo) == 0;
}

static void set(struct proxy_pulls *pl, const char *repo, const char *key, int64_t when,
		bool only_new)
{
	pthread_mutex_lock(&pl->mu);
	/* a pull of a key being deleted waits for the deletion (pulls_claim);
	 * pulls_default is the claimer's own call and never waits */
	while (!only_new && claimed(pl, repo, key))
		pthread_cond_wait(&pl->released, &pl->mu);
	struct prepo *p = repo_of(pl, repo, true);
	int rc = p ? rec_set(p, key, when, only_new) : -ENOMEM;
	pthread_mutex_unlock(&pl->mu);
	if (rc)
		log_warn("proxy cache: out of memory recording a pull of %s %s; it counts as "
			 "pulled when it was stored", repo, key);
}

void pulls_note(struct proxy_pulls *pl, const char *repo, const char *key, int64_t when)
{
	set(pl, repo, key, when, false);
}

void pulls_default(struct proxy_pulls *pl, const char *repo, const char *key, int64_t when)
{
	set(pl, repo, key, when, true);
}

int64_t pulls_get(struct proxy_pulls *pl, const char *repo, const char *key)
{
	pthread_mutex_lock(&pl->mu);
	struct prepo *p = repo_of(pl, repo, false);
	struct rec *e = p ? rec_of(p, key) : NULL;
	int64_t t = e ? e->t : -1;
	pthread_mutex_unlock(&pl->mu);
	return t;
}

bool pulls_claim(struct proxy_pulls *pl, const char *repo, const char *key, int64_t cutoff)
{
	char *cr = strdup(repo), *ck = strdup(key);
	pthread_mutex_lock(&pl->mu);
	struct prepo *p = repo_of(pl, repo, false);
	struct rec *e = p ? rec_of(p, key) : NULL;
	bool ok = cr && ck && !pl->claim_key && !(e && e->t >= cutoff);
	if (ok) {
		pl->claim_repo = cr;
		pl->claim_key = ck;
	}
	pthread_mutex_unlock(&pl->mu);
	if (!ok) {
		free(cr);
		free(ck);
	}
	return ok;
}

void pulls_release(struct proxy_pulls *pl)
{
	pthread_mutex_lock(&pl->mu);
	char *cr = pl->claim_repo, *ck = pl->claim_key;
	pl->claim_repo = pl->claim_key = NULL;
	pl->releases++;
	pthread_cond_broadcast(&pl->released);
	pthread_mutex_unlock(&pl->mu);
	free(cr);
	free(ck);
}

uint64_t pulls_releases(struct proxy_pulls *pl)
{
	pthread_mutex_lock(&pl->mu);
	uint64_t n = pl->releases;
	pthread_mutex_unlock(&pl->mu);
	return n;
}

static bool in_sorted(const struct strvec *v, const char *s)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v->v[mid], s);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void pulls_retain(struct proxy_pulls *pl, const char *repo, const struct strvec *keep)
{
	pthread_mutex_lock(&pl->mu);
	struct prepo *p = repo_of(pl, repo, false);
	size_t w = 0;
	for (size_t i = 0; p && i < p->n; i++) {
		if (in_sorted(keep, p->v[i].key)) {
			p->v[i].unseen = false;
			p->v[w++] = p->v[i];
		} else {
			free(p->v[i].key);
			p->dirty = true;
		}
	}
	if (p)
		p->n = w;
	pthread_mutex_unlock(&pl->mu);
}

bool pulls_fresh_unseen(struct proxy_pulls *pl, const char *repo, const struct strvec *seen,
			int64_t after, char *key, size_t cap)
{
	bool found = false;
	pthread_mutex_lock(&pl->mu);
	struct prepo *p = repo_of(pl, repo, false);
	for (size_t i = 0; p && i < p->n; i++) {
		struct rec *e = &p->v[i];
		if (e->t <= after || in_sorted(seen, e->key))
			continue;
		if (e->unseen)
			continue; /* unseen twice in a row: it is gone (a DELETE) */
		e->unseen = true;
		if (!found)
			snprintf(key, cap, "%s", e->key);
		found = true;
	}
	pthread_mutex_unlock(&pl->mu);
	return found;
}

/* "<dir>/<name>/_pulls.json"; NULL for a name that is not a valid
 * repository name (it would not stay under the directory) or ENOMEM. */
static char *object_path(const char *repo)
{
	if (!regfs_name_valid(repo))
		return NULL;
	size_t n = strlen(PULLS_DIR) + strlen(repo) + strlen(PULLS_FILE) + 3;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s/%s", PULLS_DIR, repo, PULLS_FILE);
	return s;
}

static int64_t max_t(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Merges one JSON object of key -> time into p, keys prefixed by `pfx`
 * (mutex held). Values that are not non-negative integers are skipped. */
static int merge_obj(struct prepo *p, json_t *obj, const char *pfx, int64_t floor)
{
	const char *k;
	json_t *v;
	int rc = 0;
	if (!json_is_object(obj))
		return 0;
	json_object_foreach(obj, k, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || strlen(k) > 300)
			continue;
		char key[320];
		snprintf(key, sizeof key, "%s%s", pfx, k);
		/* a stored time older than a pull seen since start loses */
		if (rc == 0)
			rc = rec_set(p, key, max_t((int64_t)json_integer_value(v), floor), false);
	}
	return rc;
}

void pulls_load(struct registry *r, struct proxy_pulls *pl, const char *repo)
{
	pthread_mutex_lock(&pl->mu);
	struct prepo *p = repo_of(pl, repo, false);
	bool done = p && p->loaded;
	pthread_mutex_unlock(&pl->mu);
	if (done)
		return;
	char *path = object_path(repo);
	char *data = NULL;
	size_t len = 0;
	struct regfs_err e = {0};
	int rc = path ? regfs_storage_get(r->st, path, &data, &len, &e) : -EINVAL;
	json_t *root = NULL;
	if (rc == 0 && len <= PULLS_MAX_BYTES) {
		json_error_t je;
		root = json_loadb(data, len, 0, &je);
		if (!root || !json_is_object(root))
			log_warn("proxy cache: %s: not a pull record object (%s); its tags count "
				 "as pulled at start", path, root ? "not an object" : je.text);
	} else if (rc == 0) {
		log_warn("proxy cache: %s: %zu bytes, over the bound; ignored", path, len);
	} else if (rc != -ENOENT) {
		log_warn("proxy cache: reading the pull records of %s failed: %s; its tags "
			 "count as pulled at start", repo, regfs_err_str(&e));
	}
	pthread_mutex_lock(&pl->mu);
	p = repo_of(pl, repo, true);
	if (p) {
		bool was_dirty = p->dirty;
		int mrc = 0;
		if (root && json_is_object(root)) {
			mrc = merge_obj(p, json_object_get(root, "tags"), "", pl->floor);
			if (mrc == 0)
				mrc = merge_obj(p, json_object_get(root, "digests"), "@", pl->floor);
		}
		/* what was read is what is stored: not a change to write back */
		p->dirty = was_dirty || mrc != 0;
		p->loaded = true;
	}
	pthread_mutex_unlock(&pl->mu);
	json_decref(root);
	free(data);
	free(path);
}

/* The JSON text of p's records (mutex held); NULL on ENOMEM. */
static char *render(const struct prepo *p)
{
	json_t *root = json_object(), *tags = json_object(), *digests = json_object();
	int rc = root && tags && digests ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < p->n; i++) {
		const char *k = p->v[i].key;
		json_t *t = json_integer((json_int_t)p->v[i].t);
		rc = k[0] == '@' ? json_object_set_new(digests, k + 1, t)
				 : json_object_set_new(tags, k, t);
	}
	if (rc == 0)
		rc = json_object_set(root, "tags", tags) || json_object_set(root, "digests", digests);
	char *text = rc == 0 ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(tags);
	json_decref(digests);
	json_decref(root);
	return text;
}

struct pending {
	char *repo;
	char *text;   /* NULL: no record left (delete the object) */
};

/* Takes the dirty repositories' texts (mutex held); clears their flag. */
static size_t collect(struct proxy_pulls *pl, struct pending **out)
{
	size_t n = 0, cap = 0;
	struct pending *v = NULL;
	for (size_t i = 0; i < pl->nslots; i++)
		for (struct prepo *p = pl->slot[i]; p; p = p->next) {
			if (!p->dirty)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct pending *nv = realloc(v, nc * sizeof *nv);
				if (!nv)
					goto out;
				v = nv;
				cap = nc;
			}
			char *text = p->n ? render(p) : NULL;
			char *repo = strdup(p->name);
			if ((p->n && !text) || !repo) {
				free(text);
				free(repo);
				goto out;   /* stays dirty: the next pass tries again */
			}
			v[n++] = (struct pending){repo, text};
			p->dirty = false;
		}
out:
	*out = v;
	return n;
}

int pulls_flush(struct registry *r, struct proxy_pulls *pl)
{
	struct pending *v = NULL;
	pthread_mutex_lock(&pl->mu);
	size_t n = collect(pl, &v);
	pthread_mutex_unlock(&pl->mu);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		char *path = object_path(v[i].repo);
		struct regfs_err e = {0};
		int rc = !path ? -EINVAL
			 : v[i].text ? regfs_storage_put(r->st, path, v[i].text, strlen(v[i].text), &e)
				     : regfs_storage_del(r->st, path, &e);
		if (rc == -ENOENT && !v[i].text)
			rc = 0;
		if (rc) {
			failed++;
			log_warn("proxy cache: writing the pull records of %s failed: %s; retried "
				 "at the next pass", v[i].repo, path ? regfs_err_str(&e) : "bad name");
			pthread_mutex_lock(&pl->mu);
			struct prepo *p = repo_of(pl, v[i].repo, false);
			if (p)
				p->dirty = true;
			pthread_mutex_unlock(&pl->mu);
		}
		free(path);
		free(v[i].repo);
		free(v[i].text);
	}
	free(v);
	return failed;
}

int64_t pulls_floor(const struct proxy_pulls *pl, bool *set)
{
	*set = pl->floor_set;
	return pl->floor;
}

void pulls_set_floor(struct proxy_pulls *pl, int64_t floor)
{
	pl->floor = floor;
	pl->floor_set = true;
}

#define STOPPED_MARK PULLS_DIR "/_stopped"

int pulls_mark_stopped(struct registry *r)
{
	char t[32];
	int n = snprintf(t, sizeof t, "%lld", (long long)time(NULL));
	struct regfs_err e = {0};
	int rc = regfs_storage_put(r->st, STOPPED_MARK, t, (size_t)n, &e);
	if (rc)
		log_warn("proxy cache: cannot write %s: %s; the next start assumes records of "
			 "the last interval were lost", STOPPED_MARK, regfs_err_str(&e));
	return rc;
}

bool pulls_take_stopped(struct registry *r)
{
	struct regfs_stat_info st;
	if (regfs_storage_stat(r->st, STOPPED_MARK, &st, NULL) != 0)
		return false;
	/* removed before use: a crash after this start must not find it */
	return regfs_storage_del(r->st, STOPPED_MARK, NULL) == 0;
}
