/* lifecycle.c — see lifecycle.h. */
#include "lifecycle.h"

#include "auth.h"
#include "notify.h"
#include "quota.h"
#include "registry.h"
#include "tls.h"

#include <regfs/log.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- SIGHUP ---- */

static const char *level_name(enum regfs_log_level l)
{
	static const char *const n[] = {"error", "warn", "info", "debug"};
	return (unsigned)l < 4 ? n[l] : "?";
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* Appends `name` to the list of changed keys that need a restart. */
static void note(char *list, size_t cap, bool changed, const char *name)
{
	if (!changed)
		return;
	size_t n = strlen(list);
	snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

static bool quotas_differ(const struct regfs_config *o, const struct regfs_config *n)
{
	if (o->n_quotas != n->n_quotas)
		return true;
	for (int i = 0; i < o->n_quotas; i++)
		if (str_differs(o->quotas[i].repository, n->quotas[i].repository) ||
		    o->quotas[i].bytes != n->quotas[i].bytes || o->quotas[i].tags != n->quotas[i].tags)
			return true;
	return false;
}

/* The cache's upstreams (proxies_open reads them once, at start). */
static bool proxies_differ(const struct regfs_config *o, const struct regfs_config *n)
{
	if (o->n_proxies != n->n_proxies || o->proxycache_interval_s != n->proxycache_interval_s ||
	    o->proxycache_minrate != n->proxycache_minrate ||
	    o->proxycache_minrate_grace_s != n->proxycache_minrate_grace_s)
		return true;
	for (int i = 0; i < o->n_proxies; i++) {
		const struct regfs_proxy_config *a = &o->proxies[i], *b = &n->proxies[i];
		bool ns = a->n_ns != b->n_ns;
		for (int j = 0; !ns && j < a->n_ns; j++)
			ns = strcmp(a->ns[j], b->ns[j]) != 0;
		if (ns || str_differs(a->prefix, b->prefix) || str_differs(a->remoteurl, b->remoteurl) ||
		    str_differs(a->username, b->username) || str_differs(a->password, b->password) ||
		    str_differs(a->cacert, b->cacert) || a->ttl_s != b->ttl_s ||
		    a->revalidate_s != b->revalidate_s)
			return true;
	}
	return false;
}

/* The keys a running server cannot take over: each changed one is named. */
static void restart_only(const struct regfs_config *o, const struct regfs_config *n,
			 char *list, size_t cap)
{
	list[0] = '\0';
	note(list, cap, str_differs(o->http_addr, n->http_addr), "http.addr");
	note(list, cap, str_differs(o->http_host, n->http_host), "http.host");
	note(list, cap, (o->tls_certificate == NULL) != (n->tls_certificate == NULL),
	     "http.tls (turning TLS on or off)");
	note(list, cap, str_differs(o->tls_minimumtls, n->tls_minimumtls), "http.tls.minimumtls");
	note(list, cap, o->n_headers != n->n_headers, "http.headers");
	note(list, cap, o->storage_type != n->storage_type, "storage driver");
	note(list, cap, str_differs(o->fs_rootdirectory, n->fs_rootdirectory),
	     "storage.filesystem.rootdirectory");
	note(list, cap, str_differs(o->s3.bucket, n->s3.bucket) ||
			       str_differs(o->s3.regionendpoint, n->s3.regionendpoint) ||
			       str_differs(o->s3.rootdirectory, n->s3.rootdirectory) ||
			       str_differs(o->s3.region, n->s3.region), "storage.s3");
	note(list, cap, o->delete_enabled != n->delete_enabled, "storage.delete.enabled");
	note(list, cap, o->redirect_disable != n->redirect_disable, "storage.redirect");
	note(list, cap, o->uploadpurging.enabled != n->uploadpurging.enabled ||
			       o->uploadpurging.age_s != n->uploadpurging.age_s ||
			       o->uploadpurging.interval_s != n->uploadpurging.interval_s ||
			       o->uploadpurging.dryrun != n->uploadpurging.dryrun,
	     "storage.maintenance.uploadpurging");
	note(list, cap, o->gc.enabled != n->gc.enabled || o->gc.interval_s != n->gc.interval_s ||
			       o->gc.delay_s != n->gc.delay_s ||
			       o->gc.deleteuntagged != n->gc.deleteuntagged, "gc");
	/* both zeroed by regfs_config_defaults first: padding compares equal */
	note(list, cap, memcmp(&o->limits, &n->limits, sizeof o->limits) != 0, "regfs.limits");
	note(list, cap, o->health_storage.enabled != n->health_storage.enabled ||
			       o->health_storage.interval_s != n->health_storage.interval_s ||
			       o->health_storage.threshold != n->health_storage.threshold,
	     "health.storagedriver");
	note(list, cap, o->usage.maxseries != n->usage.maxseries, "regfs.usage.maxseries");
	note(list, cap, proxies_differ(o, n), "proxy/regfs.proxies/regfs.proxycache");
}

/* Applies the keys that are safe to change while serving; names them. */
static void apply_safe(struct regfs_config *run, const struct regfs_config *n, char *done,
		       size_t cap)
{
	done[0] = '\0';
	if (run->log_level != n->log_level) {
		size_t k = strlen(done);
		snprintf(done + k, cap - k, "%slog.level %s -> %s", k ? ", " : "",
			 level_name(run->log_level), level_name(n->log_level));
		run->log_level = n->log_level;
		regfs_log_set_level(n->log_level);
	}
	if (run->log_json != n->log_json) {
		size_t k = strlen(done);
		snprintf(done + k, cap - k, "%slog.formatter %s", k ? ", " : "",
			 n->log_json ? "json" : "text");
		run->log_json = n->log_json;
		regfs_log_set_json(n->log_json);
	}
	if (run->http_drain_s != n->http_drain_s) {
		size_t k = strlen(done);
		snprintf(done + k, cap - k, "%shttp.draintimeout %" PRId64 "s -> %" PRId64 "s",
			 k ? ", " : "", run->http_drain_s, n->http_drain_s);
		run->http_drain_s = n->http_drain_s;
	}
}

/* notifications.endpoints: the notifier takes the new list (events queued
 * for an endpoint that keeps its name move over); the running config then
 * owns the new list, so it keeps describing what is served. */
static void reload_notifications(struct registry *reg, struct regfs_config *run,
				 struct regfs_config *n, char *done, size_t cap)
{
	if (!reg || (run->n_endpoints == 0 && n->n_endpoints == 0))
		return;
	struct regfs_err e = {0};
	if (notify_reload(reg, n, &e) != 0) {
		log_error("SIGHUP: notifications unchanged: %s", regfs_err_str(&e));
		return;
	}
	struct regfs_notify_endpoint *ep = run->endpoints;
	int k = run->n_endpoints;
	run->endpoints = n->endpoints;
	run->n_endpoints = n->n_endpoints;
	n->endpoints = ep; /* freed with n */
	n->n_endpoints = k;
	size_t len = strlen(done);
	snprintf(done + len, cap - len, "%snotifications.endpoints (%d)", len ? ", " : "",
		 run->n_endpoints);
}

/* regfs.quota: the next push is admitted under the new list (the accounting
 * it compares against is the registry's, unchanged). */
static void reload_quotas(struct registry *reg, struct regfs_config *run, struct regfs_config *n,
			  char *done, size_t cap)
{
	if (!reg || !quotas_differ(run, n))
		return;
	quota_reload(run, n);
	size_t len = strlen(done);
	snprintf(done + len, cap - len, "%sregfs.quota (%d rule%s)", len ? ", " : "",
		 run->n_quotas, run->n_quotas == 1 ? "" : "s");
}

/* http.tls: the certificate, key and client CAs are re-read even when the
 * file names did not change (a renewed certificate keeps its name); a file
 * that does not load keeps the current ones. */
static void reload_tls(struct registry *reg, const struct regfs_config *n, char *done, size_t cap)
{
	if (!reg || !reg->tls || !n)
		return;
	struct regfs_err e = {0};
	if (tls_reload(reg->tls, n, &e) != 0) {
		log_error("SIGHUP: TLS certificate unchanged (still serving the previous one): %s",
			  regfs_err_str(&e));
		return;
	}
	size_t len = strlen(done);
	snprintf(done + len, cap - len, "%shttp.tls (certificate, key, client CAs)", len ? ", " : "");
}

void lifecycle_reload(const char *path, struct regfs_config *running, struct registry *reg)
{
	if (!path) {
		log_warn("SIGHUP: serving without a configuration file: nothing to reload");
		return;
	}
	struct regfs_config n;
	struct regfs_err e = {0};
	regfs_config_defaults(&n, NULL);
	if (regfs_config_load(path, &n, &e) != 0) {
		log_error("SIGHUP: %s does not load, nothing changed: %s", path, regfs_err_str(&e));
		regfs_config_free(&n);
		return;
	}
	char done[400], later[600];
	restart_only(running, &n, later, sizeof later);
	apply_safe(running, &n, done, sizeof done);
	reload_notifications(reg, running, &n, done, sizeof done);
	reload_quotas(reg, running, &n, done, sizeof done);
	reload_tls(reg, n.tls_certificate ? &n : NULL, done, sizeof done);
	if (reg)
		auth_reload(reg->auth, &n);
	log_info("SIGHUP: reloaded %s: %s", path, done[0] ? done : "no change to log.level, "
		 "log.formatter, http.draintimeout, notifications, http.tls, regfs.quota");
	if (later[0])
		log_warn("SIGHUP: changed in %s but applied only by a restart: %s", path, later);
	regfs_config_free(&n);
}
