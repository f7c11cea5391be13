/* lifecycle.h — what `regfs-registry serve` does on signals, apart from the
 * HTTP server itself: the drain timeout SIGTERM honours and the SIGHUP reload.
 *
 * http.draintimeout is registry:2's key (a duration; default 0: no drain,
 * requests in flight are cut at once, as registry:2 does). lib/config.c
 * accepts the key without storing it; it is read here, from the same file,
 * with the same REGISTRY_HTTP_DRAINTIMEOUT override. */
#ifndef REGFS_LIFECYCLE_H
#define REGFS_LIFECYCLE_H

#include <regfs/config.h>
#include <regfs/err.h>

#include <stdint.h>

/* http.draintimeout of the config file at `path` (NULL: no file, the
 * environment only) into *seconds. 0 or -EINVAL/-ENOENT/... with err naming
 * the key, the value and the expected form. */
int lifecycle_drain_timeout(const char *path, int64_t *seconds, struct regfs_err *err);

/* SIGHUP: reads `path` again. Applies what is safe to change while serving
 * (log.level, log.formatter, http.draintimeout into *drain_s) and logs each
 * change; logs every other change that only a restart applies (http.addr,
 * TLS, storage, ...). A file that no longer loads changes nothing (logged).
 * `running` keeps describing the running server (its applied fields are
 * updated). No-op with a log line when `path` is NULL (no config file). */
void lifecycle_reload(const char *path, struct regfs_config *running, int64_t *drain_s);

#endif
