/* debug.h — the debug listener of `serve` on http.debug.addr (registry:2's
 * place for it): GET /debug/health (the JSON of every health check, 200 or
 * 503 when one fails) and, when http.debug.prometheus.enabled, the metrics
 * as Prometheus text at http.debug.prometheus.path (default /metrics).
 * Anything else is 404. It has no TLS and no auth: bind it to loopback or a
 * private network. */
#ifndef REGFS_DEBUG_H
#define REGFS_DEBUG_H

#include <microhttpd.h>

#include <regfs/err.h>

struct registry;

/* Starts the listener for r->cfg (nothing when http.debug.addr is unset:
 * *out NULL, 0). -EINVAL/-EADDRINUSE with err naming the address. */
int debug_start(struct registry *r, struct MHD_Daemon **out, struct regfs_err *err);
/* Stops it (NULL-safe). */
void debug_stop(struct MHD_Daemon *d);

#endif
