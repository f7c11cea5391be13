/* server.h — `regfs-registry serve`: runs the HTTP server for `cfg` until
 * SIGTERM/SIGINT, then drains (http.draintimeout). `config_path` is the file
 * `cfg` came from (NULL: none): SIGHUP reloads it, and http.draintimeout is
 * read from it (lifecycle.h). Sends READY=1/STOPPING=1 to $NOTIFY_SOCKET.
 * 0 after a clean stop (also when requests were cut: they are logged), else
 * a negative errno with err filled (bad address, TLS files, storage). */
#ifndef REGFS_SERVER_H
#define REGFS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <regfs/config.h>
#include <regfs/err.h>

struct registry;
struct request;

int server_run(struct regfs_config *cfg, const char *config_path, struct regfs_err *err);

/* The end of every request, called once when its response is queued:
 * writes the access line (info level, unless log.accesslog.disabled:
 * method, path, status, body bytes, duration; the path only, never a query
 * or a header) and counts it in the metrics (metrics.h). Other per-request
 * consumers (notifications) belong here too. */
void request_done(struct registry *r, const struct request *q, unsigned status,
		  uint64_t bytes);

/* "host:port", ":port", "[v6]:port" -> a socket address (numeric port;
 * the host resolved). *any: the host is a wildcard. 0 or -EINVAL with err
 * naming the address. */
int server_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		      bool *any, struct regfs_err *err);

#endif
