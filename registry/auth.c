/* auth.c — see auth.h: the table of backends, the per-address failed-login
 * limit, the refusals (401/403/429) and the Basic header parser the backends
 * share. */
#include "auth.h"

#include "auth_limit.h"
#include "metrics.h"
#include "registry.h"
#include "request.h"
#include "respond.h"

#include <regfs/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* One row per auth.<scheme>; NULL ops: the scheme is not built in. */
static const struct {
	const char *name;
	const struct auth_backend_ops *ops;
} backends[] = {
	{"htpasswd", &auth_htpasswd_ops},
	{"token", &auth_token_ops},
};

#define PEER_MAX AUTH_LIMIT_PEER_MAX

struct auth {
	const struct auth_backend_ops *ops;
	void *st;
	atomic_int maxfailures;       /* for log lines; the limit has its own copy */
	struct auth_limit *limit;     /* failed logins per address */
};

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* ---- lifecycle ---- */

int auth_open(struct auth **out, const struct regfs_config *cfg, struct regfs_err *err)
{
	*out = NULL;
	const struct auth_backend_ops *ops = NULL;
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		const struct auth_backend_ops *o = backends[i].ops;
		if (!o || !o->configured(cfg))
			continue;
		if (ops)
			return regfs_errf(err, -EINVAL, "auth: both %s and %s are configured; "
					  "configure one scheme", ops->name, o->name);
		ops = o;
	}
	if (!ops)
		return 0;
	struct auth *a = calloc(1, sizeof *a);
	if (!a)
		return regfs_errf(err, -ENOMEM, "out of memory");
	a->ops = ops;
	atomic_init(&a->maxfailures, cfg->auth_maxfailures);
	if (!(a->limit = auth_limit_new(cfg->auth_maxfailures))) {
		free(a);
		return regfs_errf(err, -ENOMEM, "out of memory");
	}
	int rc = ops->open(&a->st, cfg, err);
	if (rc) {
		regfs_err_prefix(err, "auth.%s: ", ops->name);
		auth_limit_free(a->limit);
		free(a);
		return rc;
	}
	log_info("auth: %s%s", ops->name, cfg->auth_maxfailures
		 ? "" : " (failed-login limit off: regfs.auth.maxfailures is 0)");
	*out = a;
	return 0;
}

void auth_reload(struct auth *a, const struct regfs_config *cfg)
{
	if (!a) {
		for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
			if (backends[i].ops && backends[i].ops->configured(cfg))
				log_warn("SIGHUP: auth.%s is now configured but applied only by a "
					 "restart", backends[i].name);
		return;
	}
	if (!a->ops->configured(cfg)) {
		log_warn("SIGHUP: auth.%s is no longer configured; the running server keeps "
			 "it until a restart", a->ops->name);
		return;
	}
	struct regfs_err e = {0};
	if (a->ops->reload && a->ops->reload(a->st, cfg, &e))
		log_error("SIGHUP: auth.%s unchanged: %s", a->ops->name, regfs_err_str(&e));
	atomic_store(&a->maxfailures, cfg->auth_maxfailures);
	auth_limit_set_max(a->limit, cfg->auth_maxfailures);
}

void auth_close(struct auth *a)
{
	if (!a)
		return;
	a->ops->close(a->st);
	auth_limit_free(a->limit);
	free(a);
}

/* ---- answers ---- */

static enum MHD_Result refuse(struct registry *r, struct request *q, struct auth *a,
			      const struct auth_want *w, enum auth_verdict v, const char *why)
{
	char *ch = a->ops->challenge ? a->ops->challenge(a->st, w, v) : NULL;
	enum MHD_Result res;
	if (v == AUTH_DENY)
		res = respond_error_with(r, q, 403, "DENIED",
					 why[0] ? why : "requested access to the resource is denied",
					 "WWW-Authenticate", ch);
	else
		res = respond_error_with(r, q, 401, "UNAUTHORIZED",
					 why[0] ? why : "authentication required",
					 "WWW-Authenticate", ch);
	free(ch);
	return res;
}

static const char *access_name(enum access a)
{
	static const char *const n[] = {"none", "pull", "push", "delete", "catalog"};
	return (unsigned)a < sizeof n / sizeof n[0] ? n[a] : "?";
}

/* What `q` needs: its route's access for the method, its repository, and
 * the source of a cross-repository mount. */
static void want_of(const struct request *q, struct auth_want *w)
{
	w->access = q->route->access[q->m];
	w->repo = q->route->named ? q->rt.name : NULL;
	w->from_repo = NULL;
	if (q->rt.kind == R_UPLOAD_START && q->m == HTTP_POST && request_query(q, "mount"))
		w->from_repo = request_query(q, "from");
}

bool auth_request(struct registry *r, struct request *q, enum MHD_Result *res)
{
	struct auth *a = r->auth;
	q->user[0] = '\0';
	q->from_ok = true;
	if (!a)
		return true;
	struct auth_want w;
	want_of(q, &w);
	char peer[PEER_MAX];
	auth_peer(q->conn, peer, sizeof peer);
	int64_t wait = auth_limit_blocked(a->limit, peer, mono_s());
	if (wait > 0) {
		char ra[24], msg[160];
		snprintf(ra, sizeof ra, "%lld", (long long)wait);
		snprintf(msg, sizeof msg, "too many failed logins from %s: retry in %llds", peer,
			 (long long)wait);
		*res = respond_error_with(r, q, 429, "TOOMANYREQUESTS", msg, "Retry-After", ra);
		return false;
	}
	const char *authz = request_header(q, MHD_HTTP_HEADER_AUTHORIZATION);
	struct auth_who who = {.user = "", .from_ok = false, .failed_login = false};
	char why[256] = "";
	enum auth_verdict v = a->ops->check(a->st, authz, peer, &w, &who, why, sizeof why);
	/* the access line names a user only once the login succeeded (allowed or
	 * denied); a failed login's name is in its own log line */
	if (v == AUTH_ALLOW || v == AUTH_DENY)
		snprintf(q->user, sizeof q->user, "%s", who.user);
	q->from_ok = w.from_repo ? who.from_ok : true;
	if (v == AUTH_ALLOW)
		return true;
	if (v == AUTH_CHALLENGE && who.failed_login) {
		log_warn("auth: failed login for user \"%s\" from %s: %s", who.user, peer,
			 why[0] ? why : "wrong credentials");
		metrics_count(METRICS_AUTH_FAILURES, 1);
		if (auth_limit_note(a->limit, peer, mono_s()))
			log_warn("auth: %s made more than %d failed logins in a minute: refused "
				 "(429) until the minute is over", peer, atomic_load(&a->maxfailures));
	} else if (v == AUTH_DENY) {
		log_info("auth: user \"%s\" from %s may not %s %s", who.user, peer,
			 access_name(w.access), w.repo ? w.repo : "the catalog");
	}
	if (v == AUTH_LIMIT) {
		*res = respond_error_with(r, q, 429, "TOOMANYREQUESTS",
					  why[0] ? why : "too many requests", "Retry-After", "60");
		return false;
	}
	*res = refuse(r, q, a, &w, v, why);
	return false;
}

/* ---- helpers for the backends ---- */

void auth_peer(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
		c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
	snprintf(out, cap, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		/* an IPv4 client of a dual-stack socket: its IPv4 form, so one
		 * client is one address whichever socket it reached */
		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, a6, out, (socklen_t)cap);
	}
}
