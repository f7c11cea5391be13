/* server.h — `regfs-registry serve`: runs the HTTP server for `cfg` until
 * SIGTERM/SIGINT, then drains (http.draintimeout). `config_path` is the file
 * `cfg` came from (NULL: none): SIGHUP reloads it, and http.draintimeout is
 * read from it (lifecycle.h). Sends READY=1/STOPPING=1 to $NOTIFY_SOCKET.
 * 0 after a clean stop (also when requests were cut: they are logged), else
 * a negative errno with err filled (bad address, TLS files, storage). */
#ifndef REGFS_SERVER_H
#define REGFS_SERVER_H

#include <regfs/config.h>
#include <regfs/err.h>

int server_run(struct regfs_config *cfg, const char *config_path, struct regfs_err *err);

#endif
