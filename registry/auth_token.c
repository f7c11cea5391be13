/* auth_token.c — the "token" backend of auth.h: Docker registry token
 * authentication. A client without a token gets 401 and a Bearer challenge
 * naming the token server (auth.token.realm), the service and the scope the
 * request needs; it comes back with "Authorization: Bearer <JWT>", which
 * lib/jwt.c verifies (signature, exp/nbf, iss, aud); the token's access
 * claims then decide:
 *   pull     repository:<name>:pull
 *   push     repository:<name>:pull,push (distribution asks for both)
 *   delete   repository:<name>:delete
 *   catalog  registry:catalog:*
 *   /v2/     any valid token
 * A cross-repository mount also asks for pull on its source (who->from_ok).
 * A bad token is 401 with error="invalid_token"; a good one lacking the
 * action is 403 DENIED with error="insufficient_scope" (RFC 6750 §3.1).
 *
 * Verified tokens are cached (keyed by SHA-256 of the token, never the token
 * itself) until min(exp, TOKEN_CACHE_S from now), so a keep-alive client
 * does not pay an RSA verification per request. SIGHUP re-reads
 * rootcertbundle and jwks and empties the cache. */
#include "auth.h"

#include <regfs/jwt.h>
#include <regfs/log.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#define TOKEN_CACHE_SLOTS 512
#define TOKEN_CACHE_S 60

struct tcache {
	unsigned char h[SHA256_DIGEST_LENGTH];
	time_t until;            /* 0: free */
	struct jwt_token *tok;
};

struct tstate {
	pthread_rwlock_t lock;   /* keys and the policy strings (SIGHUP swaps them) */
	struct jwt_keys *keys;
	char *realm, *service, *issuer, *algs;
	pthread_mutex_t clock;   /* the cache */
	struct tcache cache[TOKEN_CACHE_SLOTS];
};

/* Why the last check of this thread refused, for challenge(): auth.c calls
 * challenge() right after check() on the same thread. */
enum tfail { TF_NONE, TF_INVALID, TF_SCOPE };
static _Thread_local enum tfail last_fail;

static bool tok_configured(const struct regfs_config *cfg)
{
	return cfg->token.realm || cfg->token.service || cfg->token.issuer ||
	       cfg->token.rootcertbundle || cfg->token.jwks;
}

static void cache_flush(struct tstate *s)
{
	pthread_mutex_lock(&s->clock);
	for (int i = 0; i < TOKEN_CACHE_SLOTS; i++) {
		jwt_token_free(s->cache[i].tok);
		s->cache[i].tok = NULL;
		s->cache[i].until = 0;
	}
	pthread_mutex_unlock(&s->clock);
}

static void strs_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
}

/* Reads cfg into fresh keys and strings; 0 or -errno with err. */
static int tok_load(const struct regfs_config *cfg, struct jwt_keys **keys, char *str[4],
		    struct regfs_err *err)
{
	const struct {
		const char *name, *v;
	} need[] = {{"realm", cfg->token.realm}, {"service", cfg->token.service},
		    {"issuer", cfg->token.issuer}};
	for (size_t i = 0; i < 3; i++)
		if (!need[i].v || !*need[i].v)
			return regfs_errf(err, -EINVAL, "auth.token.%s is required (as in "
					  "distribution): tokens are checked against it", need[i].name);
	int rc = jwt_keys_load(keys, cfg->token.rootcertbundle, cfg->token.jwks, err);
	if (rc)
		return rc;
	const char *v[4] = {cfg->token.realm, cfg->token.service, cfg->token.issuer,
			    cfg->token.signingalgorithms};
	for (int i = 0; i < 4; i++) {
		str[i] = v[i] ? strdup(v[i]) : NULL;
		if (v[i] && !str[i]) {
			strs_free(str, i);
			jwt_keys_free(*keys);
			return regfs_errf(err, -ENOMEM, "out of memory");
		}
	}
	/* refuse a list naming nothing we accept: every token would fail */
	const char *a = str[3];
	if (a && !strstr(a, "RS256") && !strstr(a, "ES256") && !strstr(a, "EdDSA")) {
		rc = regfs_errf(err, -EINVAL, "auth.token.signingalgorithms \"%s\" names none of "
				"RS256, ES256, EdDSA", a);
		strs_free(str, 4);
		jwt_keys_free(*keys);
		return rc;
	}
	return 0;
}

static void tok_set(struct tstate *s, struct jwt_keys *keys, char *str[4])
{
	pthread_rwlock_wrlock(&s->lock);
	jwt_keys_free(s->keys);
	free(s->realm);
	free(s->service);
	free(s->issuer);
	free(s->algs);
	s->keys = keys;
	s->realm = str[0];
	s->service = str[1];
	s->issuer = str[2];
	s->algs = str[3];
	pthread_rwlock_unlock(&s->lock);
	cache_flush(s);
}

static int tok_open(void **st, const struct regfs_config *cfg, struct regfs_err *err)
{
	struct jwt_keys *keys = NULL;
	char *str[4] = {0};
	int rc = tok_load(cfg, &keys, str, err);
	if (rc)
		return rc;
	struct tstate *s = calloc(1, sizeof *s);
	if (!s) {
		strs_free(str, 4);
		jwt_keys_free(keys);
		return regfs_errf(err, -ENOMEM, "out of memory");
	}
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->clock, NULL);
	tok_set(s, keys, str);
	log_info("auth.token: realm %s, service %s, issuer %s, algorithms %s", s->realm, s->service,
		 s->issuer, s->algs ? s->algs : "RS256,ES256,EdDSA");
	*st = s;
	return 0;
}

static int tok_reload(void *st, const struct regfs_config *cfg, struct regfs_err *err)
{
	struct jwt_keys *keys = NULL;
	char *str[4] = {0};
	int rc = tok_load(cfg, &keys, str, err);
	if (rc)
		return rc;
	tok_set(st, keys, str);
	log_info("SIGHUP: auth.token keys re-read");
	return 0;
}

static void tok_close(void *st)
{
	struct tstate *s = st;
	if (!s)
		return;
	cache_flush(s);
	jwt_keys_free(s->keys);
	free(s->realm);
	free(s->service);
	free(s->issuer);
	free(s->algs);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->clock);
	free(s);
}

/* What w needs of the token, as (type, name, JWT_* bits). */
static void need_of(const struct auth_want *w, const char **type, const char **name, unsigned *acts)
{
	*type = "repository";
	*name = w->repo ? w->repo : "";
	switch (w->access) {
	case ACCESS_PULL:
		*acts = JWT_PULL;
		break;
	case ACCESS_PUSH:
		*acts = JWT_PULL | JWT_PUSH;
		break;
	case ACCESS_DELETE:
		*acts = JWT_DELETE;
		break;
	case ACCESS_CATALOG:
		*type = "registry";
		*name = "catalog";
		*acts = JWT_ANY;
		break;
	default:
		*acts = 0;
		break;
	}
}

/* The access decision on a verified token. */
static enum auth_verdict decide(const struct jwt_token *t, const struct auth_want *w,
				struct auth_who *who, char *why, size_t wl)
{
	const char *type, *name;
	unsigned acts;
	need_of(w, &type, &name, &acts);
	who->from_ok = w->from_repo && jwt_allows(t, "repository", w->from_repo, JWT_PULL);
	if (!acts || jwt_allows(t, type, name, acts))
		return AUTH_ALLOW;
	last_fail = TF_SCOPE;
	snprintf(why, wl, "the token does not grant %s:%s:%s", type, name,
		 acts == JWT_ANY ? "*" : acts == JWT_DELETE ? "delete" :
		 acts == JWT_PULL ? "pull" : "pull,push");
	return AUTH_DENY;
}

/* The token's subject as the user of access lines: control characters and
 * quotes (which a log line would carry) become '?'. */
static void who_set(struct auth_who *who, const char *sub)
{
	snprintf(who->user, sizeof who->user, "%s", sub);
	for (char *p = who->user; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			*p = '?';
}

/* The cached token of hash h, copied into a decision under the lock.
 * true when found (and *v set). */
static bool cache_decide(struct tstate *s, const unsigned char *h, const struct auth_want *w,
			 struct auth_who *who, char *why, size_t wl, enum auth_verdict *v)
{
	time_t now = time(NULL);
	struct tcache *e = &s->cache[(h[0] | h[1] << 8) % TOKEN_CACHE_SLOTS];
	bool hit = false;
	pthread_mutex_lock(&s->clock);
	if (e->tok && e->until > now && memcmp(e->h, h, sizeof e->h) == 0) {
		who_set(who, e->tok->sub);
		*v = decide(e->tok, w, who, why, wl);
		hit = true;
	}
	pthread_mutex_unlock(&s->clock);
	return hit;
}

/* Keeps t (taken) under h. */
static void cache_put(struct tstate *s, const unsigned char *h, struct jwt_token *t)
{
	time_t now = time(NULL), until = now + TOKEN_CACHE_S;
	if (t->exp < until)
		until = t->exp;
	if (until <= now) {
		jwt_token_free(t);
		return;
	}
	struct tcache *e = &s->cache[(h[0] | h[1] << 8) % TOKEN_CACHE_SLOTS];
	pthread_mutex_lock(&s->clock);
	jwt_token_free(e->tok);
	memcpy(e->h, h, sizeof e->h);
	e->tok = t;
	e->until = until;
	pthread_mutex_unlock(&s->clock);
}

/* The token of an "Authorization: Bearer <token>" value; NULL when the
 * value is not Bearer. *len excludes trailing blanks. */
static const char *bearer_of(const char *authz, size_t *len)
{
	if (!authz || strncasecmp(authz, "Bearer ", 7) != 0)
		return NULL;
	const char *p = authz + 7;
	p += strspn(p, " \t");
	size_t n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*len = n;
	return n ? p : NULL;
}

static enum auth_verdict tok_check(void *st, const char *authz, const char *peer,
				   const struct auth_want *w, struct auth_who *who, char *why,
				   size_t wl)
{
	(void)peer;
	struct tstate *s = st;
	last_fail = TF_NONE;
	who->user[0] = '\0';
	who->from_ok = false;
	size_t n = 0;
	const char *tok = bearer_of(authz, &n);
	if (!tok) {
		snprintf(why, wl, authz ? "a Bearer token is required (got another scheme)"
					: "authentication required");
		/* no Bearer token (none, or Basic credentials: clients follow the
		 * challenge to the token server): not a failed login, and no error
		 * code in the challenge (RFC 6750 §3.1) */
		return AUTH_CHALLENGE;
	}
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)tok, n, h);
	enum auth_verdict v;
	if (cache_decide(s, h, w, who, why, wl, &v))
		return v;
	struct jwt_token *t = NULL;
	char reason[200];
	pthread_rwlock_rdlock(&s->lock);
	struct jwt_policy p = {.issuer = s->issuer, .service = s->service, .algs = s->algs};
	int rc = jwt_verify(tok, n, s->keys, &p, &t, reason, sizeof reason);
	pthread_rwlock_unlock(&s->lock);
	if (rc) {
		last_fail = TF_INVALID;
		who->failed_login = true; /* logged and counted against the peer */
		snprintf(why, wl, "invalid token: %s", reason);
		return AUTH_CHALLENGE;
	}
	who_set(who, t->sub);
	v = decide(t, w, who, why, wl);
	cache_put(s, h, t);
	return v;
}

/* Appends ,key="value" with value quoted (RFC 9110 quoted-string). */
static void add_param(char *out, size_t cap, size_t *n, const char *key, const char *v)
{
	int m = snprintf(out + *n, cap - *n, "%s%s=\"", *n > 7 ? "," : "", key);
	if (m < 0 || (size_t)m >= cap - *n)
		return;
	*n += (size_t)m;
	for (; *v && *n + 3 < cap; v++) {
		if (*v == '"' || *v == '\\')
			out[(*n)++] = '\\';
		out[(*n)++] = *v;
	}
	if (*n + 2 < cap)
		out[(*n)++] = '"';
	out[*n] = '\0';
}

static char *tok_challenge(void *st, const struct auth_want *w, enum auth_verdict v)
{
	struct tstate *s = st;
	const char *type, *name;
	unsigned acts;
	need_of(w, &type, &name, &acts);
	char scope[600] = "";
	if (acts)
		snprintf(scope, sizeof scope, "%s:%s:%s", type, name,
			 acts == JWT_ANY ? "*" : acts == JWT_DELETE ? "delete" :
			 acts == JWT_PULL ? "pull" : "pull,push");
	if (acts && w->from_repo) {
		size_t l = strlen(scope);
		snprintf(scope + l, sizeof scope - l, " repository:%s:pull", w->from_repo);
	}
	size_t cap = 2048, n = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	n = (size_t)snprintf(out, cap, "Bearer ");
	pthread_rwlock_rdlock(&s->lock);
	add_param(out, cap, &n, "realm", s->realm);
	add_param(out, cap, &n, "service", s->service);
	pthread_rwlock_unlock(&s->lock);
	if (*scope)
		add_param(out, cap, &n, "scope", scope);
	if (last_fail == TF_INVALID && v == AUTH_CHALLENGE)
		add_param(out, cap, &n, "error", "invalid_token");
	else if (last_fail == TF_SCOPE && v == AUTH_DENY)
		add_param(out, cap, &n, "error", "insufficient_scope");
	return out;
}

const struct auth_backend_ops auth_token_ops = {
	.name = "token",
	.configured = tok_configured,
	.open = tok_open,
	.check = tok_check,
	.challenge = tok_challenge,
	.reload = tok_reload,
	.close = tok_close,
};
