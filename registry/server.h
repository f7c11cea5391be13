/* server.h — `regfs-registry serve`: runs the HTTP server for `cfg` until
 * SIGTERM/SIGINT. 0 after a clean stop, else a negative errno with err
 * filled (bad address, TLS files, storage). */
#ifndef REGFS_SERVER_H
#define REGFS_SERVER_H

#include <regfs/config.h>
#include <regfs/err.h>

int server_run(struct regfs_config *cfg, struct regfs_err *err);

#endif
