/* auth_htpasswd.c — auth.htpasswd {realm, path}: Basic credentials checked
 * against an htpasswd file of bcrypt entries (`htpasswd -B`), then the
 * access rules of regfs.access (acl.h).
 *
 * - Only bcrypt lines are usable; any other scheme is refused with a log
 *   line naming the file, line and user (that user cannot log in).
 * - The file is re-read when it changes (inode, size, mtime; looked at no
 *   more than once a second, by the request that finds the second over) and
 *   on SIGHUP. A file that cannot be read then leaves the users as they were.
 * - A missing file at start is an error: registry:2 creates one with a
 *   random password that it prints in its log, and no secret may reach ours.
 * - bcrypt costs milliseconds: a verified user+password is remembered for
 *   CACHE_TTL_S under SHA-256(salt, user, password) (salt random per
 *   process, so the cache holds nothing that helps guess a password) in a
 *   fixed table; a change of the file forgets it all.
 * - An unknown user costs a bcrypt check too, against a hash no password
 *   matches, so the answer's timing does not tell names that exist. */
#include "auth.h"

#include "acl.h"
#include "htpasswd.h"

#include <regfs/log.h>

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LINE_MAX_LEN 4096
#define FILE_MAX_USERS 100000
#define CACHE_SLOTS 1024
#define CACHE_LOCKS 64          /* striped: slot i under lock i % CACHE_LOCKS */
#define CACHE_TTL_S 60
#define PASS_MAX 512

/* A bcrypt hash of a random string thrown away: what an unknown user's
 * password is checked against (cost 5, htpasswd -B's default). */
static const char no_user_hash[] = "$2y$05$u37X1mfLear9t4DaGkORF.C0XLhUCfOH7JzgpA/NSQvQImim2qo7K";

struct ht_user {
	char *name;
	char *hash;                   /* NULL: a refused (non-bcrypt) line */
};

struct ht_users {
	struct ht_user *u;
	int n;
};

struct cache_slot {
	unsigned char key[SHA256_DIGEST_LENGTH];
	int64_t expires;              /* 0: empty */
	unsigned gen;                 /* file generation it was verified against */
};

struct ht {
	pthread_rwlock_t rw;          /* realm, path, users, access, id */
	char *realm, *path;
	struct ht_users users;
	struct regfs_access access;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	atomic_uint gen;              /* bumped at every change of users */
	_Atomic int64_t last_look;    /* mono seconds of the last stat */
	bool gone_logged;             /* the file vanished: said once (under reread) */
	pthread_mutex_t reread;       /* one re-reader at a time */
	pthread_mutex_t cache_lock[CACHE_LOCKS];
	struct cache_slot cache[CACHE_SLOTS];
	unsigned char salt[32];
	/* fetched once: OpenSSL 3 looks an algorithm up (under a global lock)
	 * on every one-shot SHA256() call */
	EVP_MD *sha256;
};

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* ---- the file ---- */

bool htpasswd_verify(const char *hash, const char *pass)
{
	struct crypt_data *cd = calloc(1, sizeof *cd);
	if (!cd)
		return false;
	bool ok = false;
	char *out = crypt_rn(pass, hash, cd, (int)sizeof *cd);
	size_t hl = strlen(hash);
	if (out && out[0] != '*' && strlen(out) == hl)
		ok = CRYPTO_memcmp(out, hash, hl) == 0;
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return ok;
}

static void users_free(struct ht_users *us)
{
	for (int i = 0; i < us->n; i++) {
		free(us->u[i].name);
		free(us->u[i].hash);
	}
	free(us->u);
	us->u = NULL;
	us->n = 0;
}

static const struct ht_user *user_find(const struct ht_users *us, const char *name)
{
	for (int i = 0; i < us->n; i++)
		if (!strcmp(us->u[i].name, name))
			return &us->u[i];
	return NULL;
}

/* Adds one parsed line; the first line of a user wins (as Apache). */
static int users_add(struct ht_users *us, const char *path, int line, const char *user,
		     const char *hash, bool bcrypt)
{
	if (user_find(us, user)) {
		log_warn("auth.htpasswd: %s line %d: user \"%s\" appears again; the first "
			 "line counts", path, line, user);
		return 0;
	}
	if (us->n >= FILE_MAX_USERS)
		return -E2BIG;
	struct ht_user *nu = realloc(us->u, (size_t)(us->n + 1) * sizeof *nu);
	if (!nu)
		return -ENOMEM;
	us->u = nu;
	nu[us->n].name = strdup(user);
	nu[us->n].hash = bcrypt ? strdup(hash) : NULL;
	if (!nu[us->n].name || (bcrypt && !nu[us->n].hash)) {
		free(nu[us->n].name);
		free(nu[us->n].hash);
		return -ENOMEM;
	}
	us->n++;
	return 0;
}

static int load_line(struct ht_users *us, const char *path, int ln, char *line)
{
	char *user = NULL, *hash = NULL;
	switch (htpasswd_parse_line(line, &user, &hash)) {
	case HTPASSWD_SKIP:
		return 0;
	case HTPASSWD_BAD:
		log_warn("auth.htpasswd: %s line %d: not a user:hash line (ignored)", path, ln);
		return 0;
	case HTPASSWD_OTHER:
		log_error("auth.htpasswd: %s line %d: user \"%s\" has a password hash that is not "
			  "bcrypt; refused, this user cannot log in (set it again with "
			  "htpasswd -B)", path, ln, user);
		return users_add(us, path, ln, user, hash, false);
	case HTPASSWD_BCRYPT:
		return users_add(us, path, ln, user, hash, true);
	}
	return 0;
}

/* Reads `path` into *us (emptied first) and its identity into *st. */
static int load_file(const char *path, struct ht_users *us, struct stat *st,
		     struct regfs_err *err)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return regfs_errf(err, -errno, "cannot read %s: %s (create it with "
				  "htpasswd -cB %s USER)", path, strerror(errno), path);
	if (fstat(fileno(f), st)) {
		int e = errno;
		fclose(f);
		return regfs_errf(err, -e, "cannot stat %s: %s", path, strerror(e));
	}
	char *line = malloc(LINE_MAX_LEN + 2);
	int rc = line ? 0 : -ENOMEM, ln = 0;
	while (!rc && fgets(line, LINE_MAX_LEN + 2, f)) {
		ln++;
		size_t len = strlen(line);
		if (len > LINE_MAX_LEN) {
			rc = regfs_errf(err, -EINVAL, "%s line %d: longer than %d bytes", path, ln,
					LINE_MAX_LEN);
			break;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		rc = load_line(us, path, ln, line);
		explicit_bzero(line, len);
	}
	if (!rc && ferror(f))
		rc = regfs_errf(err, -EIO, "cannot read %s", path);
	else if (rc == -ENOMEM || rc == -E2BIG)
		regfs_errf(err, rc, "%s: %s", path, rc == -E2BIG ? "more than 100000 users" :
			   "out of memory");
	free(line);
	fclose(f);
	if (rc)
		users_free(us);
	return rc;
}

/* Takes over a freshly read file (caller holds the write lock). */
static void adopt(struct ht *h, struct ht_users *us, const struct stat *st)
{
	users_free(&h->users);
	h->users = *us;
	h->dev = st->st_dev;
	h->ino = st->st_ino;
	h->size = st->st_size;
	h->mtime = st->st_mtim;
	atomic_fetch_add(&h->gen, 1);
}

static bool same_file(const struct ht *h, const struct stat *st)
{
	return h->dev == st->st_dev && h->ino == st->st_ino && h->size == st->st_size &&
	       h->mtime.tv_sec == st->st_mtim.tv_sec && h->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Re-reads the file when it changed; looks at most once a second. */
static void maybe_reread(struct ht *h)
{
	int64_t now = mono_s();
	/* the plain load first: most requests stop here without writing */
	if (atomic_load(&h->last_look) == now || atomic_exchange(&h->last_look, now) == now)
		return;
	if (pthread_mutex_trylock(&h->reread))
		return; /* another thread is at it */
	pthread_rwlock_rdlock(&h->rw);
	char *path = strdup(h->path);
	struct stat st;
	int src = path ? stat(path, &st) : -1, serr = src ? errno : 0;
	bool changed = src == 0 && !same_file(h, &st);
	pthread_rwlock_unlock(&h->rw);
	if (src != 0 && path && !h->gone_logged)
		log_error("auth.htpasswd: %s cannot be read (%s); the users stay as they were",
			  path, strerror(serr));
	h->gone_logged = src != 0;
	if (changed) {
		struct ht_users us = {0};
		struct regfs_err e = {0};
		if (load_file(path, &us, &st, &e)) {
			log_error("auth.htpasswd: %s changed but does not load; the users stay as "
				  "they were: %s", path, regfs_err_str(&e));
		} else {
			pthread_rwlock_wrlock(&h->rw);
			adopt(h, &us, &st);
			pthread_rwlock_unlock(&h->rw);
			log_info("auth.htpasswd: %s changed: re-read, %d user(s)", path, us.n);
		}
	}
	free(path);
	pthread_mutex_unlock(&h->reread);
}

/* ---- the credentials cache ---- */

static void cache_key(const struct ht *h, const char *user, const char *pass,
		      unsigned char key[SHA256_DIGEST_LENGTH])
{
	/* salt, user, NUL, password: the NUL keeps "ab"+"c" apart from "a"+"bc" */
	unsigned char buf[sizeof h->salt + AUTH_USER_MAX + PASS_MAX];
	size_t ul = strlen(user), pl = strlen(pass), n = sizeof h->salt;
	memcpy(buf, h->salt, n);
	memcpy(buf + n, user, ul + 1);
	n += ul + 1;
	memcpy(buf + n, pass, pl);
	n += pl;
	if (EVP_Digest(buf, n, key, NULL, h->sha256, NULL) != 1)
		memset(key, 0, SHA256_DIGEST_LENGTH); /* all-zero: never stored (cache_put) */
	explicit_bzero(buf, sizeof buf);
}

static unsigned cache_index(const unsigned char *key)
{
	return ((unsigned)key[0] | (unsigned)key[1] << 8) % CACHE_SLOTS;
}

static bool cache_hit(struct ht *h, const unsigned char *key)
{
	unsigned i = cache_index(key);
	pthread_mutex_t *l = &h->cache_lock[i % CACHE_LOCKS];
	pthread_mutex_lock(l);
	struct cache_slot *s = &h->cache[i];
	bool hit = s->expires > mono_s() && s->gen == atomic_load(&h->gen) &&
		   CRYPTO_memcmp(s->key, key, SHA256_DIGEST_LENGTH) == 0;
	pthread_mutex_unlock(l);
	return hit;
}

static void cache_put(struct ht *h, const unsigned char *key, unsigned gen)
{
	static const unsigned char zero[SHA256_DIGEST_LENGTH];
	if (!memcmp(key, zero, sizeof zero))
		return; /* the digest failed: nothing to remember */
	unsigned i = cache_index(key);
	pthread_mutex_t *l = &h->cache_lock[i % CACHE_LOCKS];
	pthread_mutex_lock(l);
	struct cache_slot *s = &h->cache[i];
	memcpy(s->key, key, SHA256_DIGEST_LENGTH);
	s->expires = mono_s() + CACHE_TTL_S;
	s->gen = gen;
	pthread_mutex_unlock(l);
}

/* true when user:pass is a valid login. */
static bool login(struct ht *h, const char *user, const char *pass)
{
	unsigned char key[SHA256_DIGEST_LENGTH];
	cache_key(h, user, pass, key);
	if (cache_hit(h, key))
		return true;
	char hash[256] = "";
	pthread_rwlock_rdlock(&h->rw);
	unsigned gen = atomic_load(&h->gen);
	const struct ht_user *u = user_find(&h->users, user);
	if (u && u->hash)
		snprintf(hash, sizeof hash, "%s", u->hash);
	pthread_rwlock_unlock(&h->rw);
	/* an unknown or refused user pays the same bcrypt check and fails */
	bool ok = htpasswd_verify(hash[0] ? hash : no_user_hash, pass) && hash[0];
	if (ok)
		cache_put(h, key, gen);
	return ok;
}

/* ---- the backend ---- */

static bool ht_configured(const struct regfs_config *cfg)
{
	return cfg->htpasswd.path || cfg->htpasswd.realm;
}

/* Settings from cfg, checked; *realm and *path malloc'd. */
static int settings(const struct regfs_config *cfg, char **realm, char **path,
		    struct regfs_err *err)
{
	if (!cfg->htpasswd.path || !cfg->htpasswd.path[0])
		return regfs_errf(err, -EINVAL, "path: required (the htpasswd file)");
	const char *rl = cfg->htpasswd.realm && cfg->htpasswd.realm[0] ? cfg->htpasswd.realm
									: "regfs";
	for (const char *p = rl; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			return regfs_errf(err, -EINVAL, "realm: quotes, backslashes and control "
					  "characters cannot be sent in a challenge");
	*realm = strdup(rl);
	*path = strdup(cfg->htpasswd.path);
	if (!*realm || !*path) {
		free(*realm);
		free(*path);
		return regfs_errf(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static void ht_close(void *st)
{
	struct ht *h = st;
	if (!h)
		return;
	users_free(&h->users);
	regfs_access_free(&h->access);
	free(h->realm);
	free(h->path);
	pthread_rwlock_destroy(&h->rw);
	pthread_mutex_destroy(&h->reread);
	for (int i = 0; i < CACHE_LOCKS; i++)
		pthread_mutex_destroy(&h->cache_lock[i]);
	EVP_MD_free(h->sha256);
	explicit_bzero(h, sizeof *h);
	free(h);
}

static int ht_open(void **st, const struct regfs_config *cfg, struct regfs_err *err)
{
	*st = NULL;
	struct ht *h = calloc(1, sizeof *h);
	if (!h)
		return regfs_errf(err, -ENOMEM, "out of memory");
	pthread_rwlock_init(&h->rw, NULL);
	pthread_mutex_init(&h->reread, NULL);
	for (int i = 0; i < CACHE_LOCKS; i++)
		pthread_mutex_init(&h->cache_lock[i], NULL);
	int rc = settings(cfg, &h->realm, &h->path, err);
	if (!rc && !(h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		rc = regfs_errf(err, -EIO, "OpenSSL has no SHA-256");
	struct stat fs;
	struct ht_users us = {0};
	if (!rc && RAND_bytes(h->salt, sizeof h->salt) != 1)
		rc = regfs_errf(err, -EIO, "no random bytes for the credentials cache");
	if (!rc && regfs_access_copy(&h->access, &cfg->access))
		rc = regfs_errf(err, -ENOMEM, "out of memory");
	if (!rc)
		rc = load_file(h->path, &us, &fs, err);
	if (rc) {
		ht_close(h);
		return rc;
	}
	adopt(h, &us, &fs);
	atomic_store(&h->last_look, mono_s());
	log_info("auth.htpasswd: %s: %d user(s), realm \"%s\"%s", h->path, us.n, h->realm,
		 cfg->access.set ? ", regfs.access rules" : ", every user may do everything");
	*st = h;
	return 0;
}

static int ht_reload(void *st, const struct regfs_config *cfg, struct regfs_err *err)
{
	struct ht *h = st;
	char *realm = NULL, *path = NULL;
	int rc = settings(cfg, &realm, &path, err);
	if (rc)
		return rc;
	struct regfs_access ac;
	struct ht_users us = {0};
	struct stat fs;
	if (regfs_access_copy(&ac, &cfg->access)) {
		free(realm);
		free(path);
		return regfs_errf(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&h->reread);
	rc = load_file(path, &us, &fs, err);
	if (!rc) {
		pthread_rwlock_wrlock(&h->rw);
		adopt(h, &us, &fs);
		regfs_access_free(&h->access);
		h->access = ac;
		free(h->realm);
		free(h->path);
		h->realm = realm;
		h->path = path;
		pthread_rwlock_unlock(&h->rw);
		log_info("SIGHUP: auth.htpasswd: %s re-read, %d user(s); regfs.access %s", path,
			 us.n, ac.set ? "rules taken over" : "absent");
	} else {
		regfs_access_free(&ac);
		free(realm);
		free(path);
	}
	pthread_mutex_unlock(&h->reread);
	return rc;
}

/* The verdict of the rules for an identified (or anonymous) user. */
static enum auth_verdict decide(struct ht *h, const struct auth_want *w, struct auth_who *who)
{
	static const unsigned need_of[] = {[ACCESS_PULL] = REGFS_ACT_PULL,
					   [ACCESS_PUSH] = REGFS_ACT_PUSH,
					   [ACCESS_DELETE] = REGFS_ACT_DELETE};
	bool anon = !who->user[0], ok;
	pthread_rwlock_rdlock(&h->rw);
	if (w->access == ACCESS_NONE)
		ok = !anon; /* /v2/ tells a client without credentials to log in */
	else if (w->access == ACCESS_CATALOG || !w->repo)
		ok = acl_catalog(&h->access, who->user);
	else
		ok = (acl_actions(&h->access, who->user, w->repo) & need_of[w->access]) != 0;
	who->from_ok = w->from_repo &&
		       (acl_actions(&h->access, who->user, w->from_repo) & REGFS_ACT_PULL);
	pthread_rwlock_unlock(&h->rw);
	if (ok)
		return AUTH_ALLOW;
	return anon ? AUTH_CHALLENGE : AUTH_DENY;
}

static enum auth_verdict ht_check(void *st, const char *authorization, const char *peer,
				  const struct auth_want *w, struct auth_who *who, char *why,
				  size_t whylen)
{
	(void)peer;
	struct ht *h = st;
	maybe_reread(h);
	who->user[0] = '\0';
	if (authorization) {
		char pass[PASS_MAX];
		if (auth_basic_parse(authorization, who->user, sizeof who->user, pass,
				     sizeof pass)) {
			who->user[0] = '\0';
			who->failed_login = true;
			snprintf(why, whylen, "the Authorization header is not Basic "
				 "base64(user:password)");
			return AUTH_CHALLENGE;
		}
		/* an empty user and password is a client without credentials */
		bool anon = !who->user[0] && !pass[0];
		bool ok = anon || (who->user[0] && login(h, who->user, pass));
		explicit_bzero(pass, sizeof pass);
		if (!ok) {
			who->failed_login = true;
			snprintf(why, whylen, "wrong user name or password");
			return AUTH_CHALLENGE;
		}
	}
	enum auth_verdict v = decide(h, w, who);
	if (v == AUTH_CHALLENGE)
		snprintf(why, whylen, "authentication required");
	else if (v == AUTH_DENY)
		snprintf(why, whylen, "requested access to the resource is denied");
	return v;
}

static char *ht_challenge(void *st, const struct auth_want *w, enum auth_verdict v)
{
	(void)w;
	struct ht *h = st;
	char *out = NULL;
	if (v == AUTH_DENY)
		return NULL; /* logged in, not allowed: logging in again changes nothing */
	pthread_rwlock_rdlock(&h->rw);
	if (asprintf(&out, "Basic realm=\"%s\"", h->realm) < 0)
		out = NULL;
	pthread_rwlock_unlock(&h->rw);
	return out;
}

const struct auth_backend_ops auth_htpasswd_ops = {
	.name = "htpasswd",
	.configured = ht_configured,
	.open = ht_open,
	.check = ht_check,
	.challenge = ht_challenge,
	.reload = ht_reload,
	.close = ht_close,
};
