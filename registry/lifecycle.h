/* lifecycle.h — the SIGHUP reload of `regfs-registry serve`: what of a
 * changed configuration a running server takes over, and what it names as
 * needing a restart. (The drain SIGTERM does is server.c's, for
 * cfg->http_drain_s.) */
#ifndef REGFS_LIFECYCLE_H
#define REGFS_LIFECYCLE_H

#include <regfs/config.h>
#include <regfs/err.h>

#include <stdint.h>

/* SIGHUP: reads `path` again. Applies what is safe to change while serving
 * (log.level, log.formatter, http.draintimeout; notifications.endpoints
 * through `reg`'s notifier when reg is not NULL) and logs each
 * change; logs every other change that only a restart applies (http.addr,
 * TLS, storage, ...). A file that no longer loads changes nothing (logged).
 * `running` keeps describing the running server (its applied fields are
 * updated). No-op with a log line when `path` is NULL (no config file). */
struct registry;
void lifecycle_reload(const char *path, struct regfs_config *running, struct registry *reg);

#endif
