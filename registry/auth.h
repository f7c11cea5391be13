/* auth.h — who may do what: authentication of a request (auth.<scheme> in the
 * configuration: htpasswd, token) and the answer to a refused one.
 *
 * The server calls auth_request() ONCE per request, after routing, with the
 * access the route's table row names for the method (route.h). When no
 * `auth:` section is configured every request is allowed (registry:2's
 * behaviour without auth). Otherwise the configured backend (one row of the
 * table in auth.c) decides: allow, 401 with a challenge, 403 DENIED, or 429
 * TOOMANYREQUESTS; auth.c answers the refusals with the distribution error
 * bodies and headers (WWW-Authenticate, Retry-After) and keeps the
 * per-address failed-login limit.
 *
 * Secrets: the Authorization header is never logged nor copied beyond the
 * backend's check; log lines name the user and the peer address only. */
#ifndef REGFS_AUTH_H
#define REGFS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>

#include <regfs/config.h>
#include <regfs/err.h>

#include "route.h"

struct registry;
struct request;

/* What a request needs. */
struct auth_want {
	enum access access;         /* from the route table (ACCESS_NONE: anyone) */
	const char *repo;           /* NULL: /v2/, the catalog */
	const char *from_repo;      /* cross-repository mount source (needs pull there); NULL: none */
};

#define AUTH_USER_MAX 128

/* Who asked, as the backend found out. */
struct auth_who {
	char user[AUTH_USER_MAX];   /* "" = anonymous; shown in access lines */
	bool from_ok;               /* may read want->from_repo (mount allowed) */
	bool failed_login;          /* credentials were sent and are wrong (or
				     * unreadable): counted against the peer */
};

enum auth_verdict {
	AUTH_ALLOW,
	AUTH_CHALLENGE,             /* 401 UNAUTHORIZED + WWW-Authenticate */
	AUTH_DENY,                  /* 403 DENIED: authenticated, not allowed */
	AUTH_LIMIT,                 /* 429 TOOMANYREQUESTS + Retry-After */
};

/* One authentication scheme (auth.<name> in the configuration). Every
 * function is called from any server thread at once: a backend locks what
 * it shares. */
struct auth_backend_ops {
	const char *name;           /* "htpasswd", "token": the key under auth: */
	/* true when `cfg` configures this scheme (auth.<name> present). */
	bool (*configured)(const struct regfs_config *cfg);
	/* Reads its configuration; *st is the backend's state. 0 or -errno
	 * with err naming the key and why (the server does not start). */
	int (*open)(void **st, const struct regfs_config *cfg, struct regfs_err *err);
	/* Decides on one request. `authorization` is the Authorization header
	 * (NULL: none), `peer` the client's address as text. Fills `who` (user
	 * "" when anonymous) and, for a refusal, `why` (a sentence for the log
	 * and the error message; never a secret). A failed login (credentials
	 * given and wrong) returns AUTH_CHALLENGE with who->failed_login set and
	 * who->user the name tried (auth.c logs it and counts it against the
	 * peer). */
	enum auth_verdict (*check)(void *st, const char *authorization, const char *peer,
				   const struct auth_want *w, struct auth_who *who, char *why,
				   size_t whylen);
	/* The WWW-Authenticate value for a refusal of `w` (malloc'd; NULL when
	 * out of memory: the answer then goes without it). */
	char *(*challenge)(void *st, const struct auth_want *w, enum auth_verdict v);
	/* SIGHUP with the new configuration: takes over what it can (files
	 * re-read, rules replaced); on error the old state stays and err says why. */
	int (*reload)(void *st, const struct regfs_config *cfg, struct regfs_err *err);
	void (*close)(void *st);
};

/* The backends: rows of auth.c's table (a row with NULL ops names a scheme
 * this build does not have: configuring it is an error). */
extern const struct auth_backend_ops auth_htpasswd_ops;
extern const struct auth_backend_ops auth_token_ops;

struct auth;

/* Opens the backend `cfg` names (*out NULL when auth is not configured: every
 * request allowed). 0, or -errno with err saying why (unknown scheme, two
 * schemes, the backend's own errors). */
int auth_open(struct auth **out, const struct regfs_config *cfg, struct regfs_err *err);
/* SIGHUP: hands `cfg` to the backend (a change of scheme needs a restart:
 * logged). Errors are logged; the old state keeps serving. NULL `a`: no-op
 * (turning auth on needs a restart, logged). */
void auth_reload(struct auth *a, const struct regfs_config *cfg);
void auth_close(struct auth *a);

/* The check of one request, on its first callback: fills q->user and
 * q->from_ok. Returns true when the request may go on; false when it was
 * answered (401/403/429) and *res is what the handler returns. */
bool auth_request(struct registry *r, struct request *q, enum MHD_Result *res);

/* ---- shared by the backends (auth.c) ---- */

/* Decodes a "Basic <base64(user:password)>" Authorization value into
 * user[usercap] and pass[passcap] (NUL-terminated; both may be empty:
 * clients send "Basic Og==", base64 of ":", when they have no credentials).
 * 0, or -EINVAL (not Basic, bad base64, no colon, a control character, too
 * long). The caller wipes `pass` (explicit_bzero) when done. */
int auth_basic_parse(const char *authorization, char *user, size_t usercap, char *pass,
		     size_t passcap);

/* The client address of `c` as text ("127.0.0.1", "::1") into out[cap]. */
void auth_peer(struct MHD_Connection *c, char *out, size_t cap);

#endif
