/* sdnotify.h — systemd's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram ("READY=1", "STOPPING=1", "STATUS=...") to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). */
#ifndef REGFS_SDNOTIFY_H
#define REGFS_SDNOTIFY_H

/* Sends `msg` when $NOTIFY_SOCKET is set. 0 when sent or when not running
 * under systemd (no variable); -errno when the socket is unusable (the caller
 * logs it: readiness is lost, the service will time out starting). */
int sd_notify_send(const char *msg);

#endif
