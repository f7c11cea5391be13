/* auth.c — credentials and the registry auth flows.
 *
 * Credentials come from (first found) the options, REGFS_USERNAME /
 * REGFS_PASSWORD, or the docker config (creds.c: credHelpers, credsStore,
 * auths) for our host[:port].
 * We send nothing until the registry challenges us (401 with
 * WWW-Authenticate), so credentials never go to a registry that did not ask:
 *   Basic  → from then on every request carries Basic credentials;
 *   Bearer → GET realm?service=…&scope=… (with Basic credentials if we have
 *            some), read `token` or `access_token` and `expires_in` (default
 *            60 s), cache the token under the scope the request needed, and
 *            send it until it expires. An identity token (docker config
 *            "identitytoken", or a helper's Username "<token>") is sent as
 *            the refresh_token of an OAuth2 POST to the realm instead, as
 *            docker does.
 * Tokens and passwords are never logged; buffers holding them are wiped. */
#include "internal.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#define TOKEN_DEFAULT_TTL 60

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

char *basic_header(const char *user, const char *pass)
{
	char *u = xasprintf("%s:%s", user, pass ? pass : "");
	if (!u)
		return NULL;
	size_t n = strlen(u);
	char *b64 = malloc(4 * ((n + 2) / 3) + 1);
	char *h = NULL;
	if (b64) {
		EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)u, (int)n);
		h = xasprintf("Authorization: Basic %s", b64);
		wipe_free(b64);
	}
	wipe_free(u);
	return h;
}

int creds_resolve(struct regfs_client *c, const struct regfs_client_opts *o,
		  struct regfs_err *err)
{
	if (o->creds) {
		c->cred_source = o->creds->source;
		c->identity = o->creds->identity;
		if (o->creds->user) {
			c->user = strdup(o->creds->user);
			c->pass = strdup(o->creds->pass ? o->creds->pass : "");
		}
	} else if (o->user) {
		c->user = strdup(o->user);
		c->pass = strdup(o->pass ? o->pass : "");
		c->cred_source = "--user";
	} else if (getenv("REGFS_USERNAME")) {
		c->user = strdup(getenv("REGFS_USERNAME"));
		const char *p = getenv("REGFS_PASSWORD");
		c->pass = strdup(p ? p : "");
		c->cred_source = "REGFS_USERNAME/REGFS_PASSWORD";
	} else {
		char *path = NULL;
		if (o->docker_config) {
			path = strdup(o->docker_config);
		} else if (getenv("DOCKER_CONFIG")) {
			path = xasprintf("%s/config.json", getenv("DOCKER_CONFIG"));
		} else if (getenv("HOME")) {
			path = xasprintf("%s/.docker/config.json", getenv("HOME"));
		}
		int rc = path ? docker_config_creds(c, path, err) : 0;
		free(path);
		if (rc)
			return rc;
	}
	if (c->user && !c->pass)
		return regfs_errf(err, -ENOMEM, "out of memory");
	return 0;
}

int regfs_client_creds(const struct regfs_client *c, struct regfs_creds *out)
{
	*out = (struct regfs_creds){.identity = c->identity, .source = c->cred_source};
	if (!c->user)
		return 0;
	out->user = strdup(c->user);
	out->pass = strdup(c->pass ? c->pass : "");
	if (out->user && out->pass)
		return 0;
	regfs_creds_free(out);
	return -ENOMEM;
}

void regfs_creds_free(struct regfs_creds *cr)
{
	free(cr->user);
	wipe_free(cr->pass);
	*cr = (struct regfs_creds){0};
}

void tokens_free(struct token *t)
{
	while (t) {
		struct token *n = t->next;
		free(t->scope);
		wipe_free(t->value);
		free(t);
		t = n;
	}
}

/* Caller holds c->lock. */
static struct token *token_find(struct regfs_client *c, const char *scope)
{
	time_t now = time(NULL);
	for (struct token *t = c->tokens; t; t = t->next)
		if (strcmp(t->scope, scope) == 0)
			return t->expires > now ? t : NULL;
	return NULL;
}

static int token_store(struct regfs_client *c, const char *scope, const char *value, long ttl)
{
	/* Renew a little early so a token does not expire in flight. */
	long margin = ttl > 20 ? 10 : ttl / 4;
	time_t exp = time(NULL) + ttl - margin;
	pthread_mutex_lock(&c->lock);
	struct token *t = c->tokens;
	for (; t; t = t->next)
		if (strcmp(t->scope, scope) == 0)
			break;
	if (!t) {
		t = calloc(1, sizeof *t);
		if (t)
			t->scope = strdup(scope);
		if (!t || !t->scope) {
			free(t);
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		t->next = c->tokens;
		c->tokens = t;
	}
	char *v = strdup(value);
	if (v) {
		wipe_free(t->value);
		t->value = v;
		t->expires = exp;
	}
	pthread_mutex_unlock(&c->lock);
	return v ? 0 : -ENOMEM;
}

char *auth_header_for(struct regfs_client *c, const char *scope)
{
	char *h = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->mode == AUTH_BASIC && c->user) {
		h = basic_header(c->user, c->pass);
	} else if (c->mode == AUTH_BEARER) {
		struct token *t = token_find(c, scope ? scope : "");
		if (t)
			h = xasprintf("Authorization: Bearer %s", t->value);
	}
	pthread_mutex_unlock(&c->lock);
	return h;
}

char *challenge_param(const char *hdr, const char *key)
{
	const char *p = hdr;
	/* Skip the scheme ("Bearer"). */
	while (*p && *p != ' ')
		p++;
	size_t kl = strlen(key);
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *k = p;
		while (*p && *p != '=' && *p != ',' && *p != ' ')
			p++;
		size_t n = (size_t)(p - k);
		if (*p != '=')
			continue;
		p++;
		char *val = malloc(strlen(p) + 1), *o = val;
		if (!val)
			return NULL;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				*o++ = *p;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != ' ')
				*o++ = *p++;
		}
		*o = '\0';
		if (n == kl && strncasecmp(k, key, kl) == 0)
			return val;
		free(val);
	}
	return NULL;
}

/* Append "?name=value" (or "&name=value" after the first) to a URL. */
static int add_param(struct dynbuf *u, char *sep, const char *name, const char *value)
{
	char *e = url_escape(value);
	int rc = e ? dynbuf_printf(u, "%c%s=%s", *sep, name, e) : -ENOMEM;
	*sep = '&';
	free(e);
	return rc;
}

/* Wipes what b held (a request body with a secret), then frees it. */
static void dynbuf_free_secret(struct dynbuf *b)
{
	size_t n;
	char *p = dynbuf_take(b, &n);
	if (p)
		explicit_bzero(p, n);
	free(p);
}

/* realm?service=…&scope=…&scope=…: the token spec's GET. */
static int token_url(const char *realm, const char *service, const char *want_scopes,
		     struct dynbuf *u)
{
	int rc = dynbuf_addstr(u, realm);
	char sep = strchr(realm, '?') ? '&' : '?';
	if (!rc && service && *service)
		rc = add_param(u, &sep, "service", service);
	/* Several scopes come space-separated in one challenge; the token
	 * endpoint takes one scope parameter each. */
	char *scopes = strdup(want_scopes ? want_scopes : ""), *save = NULL;
	if (!scopes)
		return -ENOMEM;
	for (char *s = strtok_r(scopes, " ", &save); s && !rc; s = strtok_r(NULL, " ", &save))
		rc = add_param(u, &sep, "scope", s);
	free(scopes);
	return rc;
}

/* The OAuth2 form an identity token is sent in (docker's fetchTokenWithOAuth):
 * grant_type=refresh_token, the token, service, client_id and the scopes
 * space-separated in one parameter. */
static int oauth_form(struct regfs_client *c, const char *realm, const char *service,
		      const char *want_scopes, struct dynbuf *u, struct dynbuf *form)
{
	char sep = '&';
	int rc = dynbuf_addstr(u, realm);
	if (!rc)
		rc = dynbuf_addstr(form, "grant_type=refresh_token&client_id=regfs");
	if (!rc)
		rc = add_param(form, &sep, "refresh_token", c->pass);
	if (!rc && service && *service)
		rc = add_param(form, &sep, "service", service);
	if (!rc && want_scopes && *want_scopes)
		rc = add_param(form, &sep, "scope", want_scopes);
	return rc;
}

/* GET the token endpoint for want_scopes (space-separated); stores the token
 * under each of the nkeys cache keys. */
static int token_fetch(struct regfs_client *c, const char *realm, const char *service,
		       const char *want_scopes, const char *const *keys, size_t nkeys,
		       struct regfs_err *err)
{
	struct dynbuf u = DYNBUF_INIT(DYNBUF_NO_CAP), form = DYNBUF_INIT(DYNBUF_NO_CAP);
	int rc = c->identity ? oauth_form(c, realm, service, want_scopes, &u, &form)
			     : token_url(realm, service, want_scopes, &u);
	if (rc) {
		dynbuf_free(&u);
		dynbuf_free_secret(&form);
		return regfs_errf(err, -ENOMEM, "out of memory building the token request");
	}
	static const char *const form_hdr[] = {
		"Content-Type: application/x-www-form-urlencoded", NULL};
	struct rq q = {.method = "GET", .url = dynbuf_ptr(&u), .idempotent = true, .no_auth = true,
		       .basic_user = c->user, .basic_pass = c->pass};
	if (c->identity)
		q = (struct rq){.method = "POST", .url = dynbuf_ptr(&u), .idempotent = true,
				.no_auth = true, .headers = form_hdr, .body = dynbuf_ptr(&form),
				.body_len = dynbuf_len(&form)};
	struct resp r = {.sink = SINK_MEM, .content_length = -1};
	ST_INC(c, st_token_fetches);
	rc = client_do(c, &q, &r, err);
	if (rc) {
		regfs_err_prefix(err, "fetching a registry token from %s: ", realm);
		goto out;
	}
	if (r.status == 401 || r.status == 403) {
		rc = access_denied(c, err, "the token server %s refused %s (HTTP %ld) for scope \"%s\"",
				   realm, c->user ? "the credentials" : "anonymous access", r.status,
				   want_scopes ? want_scopes : "");
		goto out;
	}
	if (r.status != 200) {
		rc = status_err(c, &r, "GET", realm, "registry token", err);
		goto out;
	}
	json_t *j = json_loadb(dynbuf_ptr(&r.body), dynbuf_len(&r.body), 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	json_t *ei = json_object_get(j, "expires_in");
	long ttl = json_is_integer(ei) ? (long)json_integer_value(ei) : TOKEN_DEFAULT_TTL;
	if (ttl <= 0)
		ttl = TOKEN_DEFAULT_TTL;
	if (!tok || !*tok) {
		ST_INC(c, st_errors);
		rc = regfs_errf(err, -EPROTO,
				"the token server %s answered without a token or access_token: "
				"is the realm in the registry's WWW-Authenticate right?",
				realm);
	} else {
		for (size_t i = 0; i < nkeys && !rc; i++)
			rc = token_store(c, keys[i], tok, ttl);
		log_debug("client: got a token for %zu scope(s) valid %ld s", nkeys, ttl);
	}
	json_decref(j);
	size_t blen;
	char *body = dynbuf_take(&r.body, &blen); /* it held the token */
	if (body)
		explicit_bzero(body, blen);
	free(body);
out:
	resp_free(&r);
	dynbuf_free(&u);
	dynbuf_free_secret(&form);
	return rc;
}

int auth_on_401(struct regfs_client *c, const struct resp *r, const char *scope,
		bool sent_auth, struct regfs_err *err)
{
	const char *h = r->www_auth;
	if (!h)
		return -EACCES;
	if (strncasecmp(h, "Bearer", 6) == 0) {
		char *realm = challenge_param(h, "realm");
		char *service = challenge_param(h, "service");
		char *chscope = challenge_param(h, "scope");
		if (!realm) {
			free(service);
			free(chscope);
			return regfs_errf(err, -EPROTO,
					  "registry %s sent a Bearer challenge without realm: "
					  "check its auth configuration", c->url);
		}
		pthread_mutex_lock(&c->lock);
		c->mode = AUTH_BEARER;
		free(c->realm);
		free(c->service);
		c->realm = strdup(realm);
		c->service = service ? strdup(service) : NULL;
		pthread_mutex_unlock(&c->lock);
		int rc = token_fetch(c, realm, service, chscope ? chscope : scope, &scope, 1, err);
		free(realm);
		free(service);
		free(chscope);
		return rc;
	}
	if (strncasecmp(h, "Basic", 5) == 0) {
		pthread_mutex_lock(&c->lock);
		bool was_basic = c->mode == AUTH_BASIC;
		c->mode = AUTH_BASIC;
		pthread_mutex_unlock(&c->lock);
		if (!c->user || (was_basic && sent_auth))
			return -EACCES;
		return 0;
	}
	return -EACCES;
}

/* Scopes per token request: keeps the URL and the JWT (one access entry per
 * scope) of a sane size. */
#define SCOPES_PER_TOKEN 32

int auth_prepare_many(struct regfs_client *c, const char *const *scopes, size_t n,
		      struct regfs_err *err)
{
	pthread_mutex_lock(&c->lock);
	enum auth_mode m = c->mode;
	pthread_mutex_unlock(&c->lock);
	if (m == AUTH_UNKNOWN) {
		int rc = regfs_client_ping(c, err);
		if (rc)
			return rc;
	}
	const char **need = calloc(n ? n : 1, sizeof *need);
	if (!need)
		return regfs_errf(err, -ENOMEM, "out of memory");
	size_t nn = 0;
	pthread_mutex_lock(&c->lock);
	char *realm = c->mode == AUTH_BEARER && c->realm ? strdup(c->realm) : NULL;
	char *service = realm && c->service ? strdup(c->service) : NULL;
	for (size_t i = 0; realm && i < n; i++)
		if (!token_find(c, scopes[i]))
			need[nn++] = scopes[i];
	pthread_mutex_unlock(&c->lock);
	/* One token for many repositories: the token spec allows several scope
	 * parameters, so a batch over 1,000 repositories costs ~32 token
	 * requests, not 1,000. A chunk the server refuses is not an error here:
	 * its items meet a 401 and take the single-request path, which reports
	 * per item. */
	for (size_t i = 0; i < nn; i += SCOPES_PER_TOKEN) {
		size_t k = nn - i < SCOPES_PER_TOKEN ? nn - i : SCOPES_PER_TOKEN;
		struct dynbuf joined = DYNBUF_INIT(DYNBUF_NO_CAP);
		int rc = 0;
		for (size_t j = 0; j < k && !rc; j++)
			rc = (j && dynbuf_addstr(&joined, " ")) || dynbuf_addstr(&joined, need[i + j]);
		struct regfs_err e = {0};
		if (!rc)
			rc = token_fetch(c, realm, service, dynbuf_ptr(&joined), need + i, k, &e);
		if (rc)
			log_debug("client: token for %zu scopes failed: %s", k, regfs_err_str(&e));
		dynbuf_free(&joined);
	}
	free(need);
	free(realm);
	free(service);
	return 0;
}

void auth_prefetch(struct regfs_client *c, const char *scope)
{
	pthread_mutex_lock(&c->lock);
	bool need = c->mode == AUTH_BEARER && c->realm && !token_find(c, scope);
	pthread_mutex_unlock(&c->lock);
	/* Failures are left to the 401 path, which reports them. */
	if (need)
		auth_prepare_many(c, &scope, 1, NULL);
}
