/* tls.h — http.tls for regfs-registry: the server certificate, TLS versions
 * (minimumtls), client certificates (clientcas, clientauth) and their reload
 * on SIGHUP, over libmicrohttpd built with GnuTLS.
 *
 * How it hooks into libmicrohttpd: the daemon starts with the certificate and
 * key read at startup (MHD needs one), but every new connection is switched,
 * before its handshake, to the credentials current at that moment (a
 * refcounted set that tls_reload replaces), so a reload never touches a
 * connection already open and never drops one. The same hook asks for the
 * client certificate as clientauth says and verifies it during the handshake
 * (as distribution does: a refused certificate fails the handshake; there is
 * no HTTP answer), and answers a plain HTTP request on the TLS port with a
 * 400 that says so.
 *
 * Threads: tls_on_connection runs on libmicrohttpd's threads; tls_reload on
 * the signal thread; tls_close after the daemon is stopped. */
#ifndef REGFS_REGISTRY_TLS_H
#define REGFS_REGISTRY_TLS_H

#include <regfs/config.h>
#include <regfs/err.h>

#include <microhttpd.h>

struct tls;

/* Loads http.tls of `cfg` (certificate, key, client CAs): *out is NULL when
 * TLS is not configured. -EINVAL with err naming the key and file when a file
 * does not load, -ENOTSUP when libmicrohttpd lacks TLS, -ENOMEM. The caller
 * frees *out with tls_close. */
int tls_open(const struct regfs_config *cfg, struct tls **out, struct regfs_err *err);

/* The MHD_OPTION_ARRAY items a TLS daemon needs (certificate, key,
 * priorities), ending with MHD_OPTION_END; valid until tls_close. */
#define TLS_MHD_OPTIONS 4
void tls_mhd_options(const struct tls *t, struct MHD_OptionItem opts[TLS_MHD_OPTIONS]);

/* Called from the server's connection callback (cls: the struct tls) with
 * its slot of the connection's context (conn.h). */
void tls_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe);

/* Whether a request on `c` may be served: its connection was set up by
 * tls_on_connection and, when clientauth asks for a client certificate, the
 * handshake checked it (GnuTLS calls the check; this is the guard that it
 * did). Looks at the connection's context only: no TLS work per request. */
bool tls_conn_allowed(struct MHD_Connection *c);

/* SIGHUP: re-reads the certificate, key and client CAs named in `cfg` (the
 * files may have been renewed under the same names) and the clientauth mode;
 * new connections get them, open ones keep theirs. On error (err says which
 * file and why) the current credentials stay. */
int tls_reload(struct tls *t, const struct regfs_config *cfg, struct regfs_err *err);

/* Frees everything; only after the daemon using `t` is stopped. NULL is fine. */
void tls_close(struct tls *t);

#endif
