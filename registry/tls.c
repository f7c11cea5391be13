/* tls.c — see tls.h. */
#include "tls.h"

#include "conn.h"

#include <regfs/dynbuf.h>
#include <regfs/log.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* One generation of credentials: what new connections get. A connection
 * holds a reference from its start to its close; a reload retires the set,
 * which is freed once unused (checked at later reloads and at close). */
struct tls_creds {
	atomic_int refs;
	bool idle_seen;                 /* unused at the previous sweep */
	gnutls_certificate_credentials_t cred;
	enum regfs_tls_clientauth mode;
	struct tls_creds *next_retired;
};

struct tls {
	pthread_mutex_t lock;
	struct tls_creds *cur;          /* under lock */
	struct tls_creds *retired;      /* under lock */
	char *mem_cert, *mem_key;       /* the daemon's startup pair */
	char priorities[128];
};

/* Per connection (MHD's socket_context). */
struct tls_conn {
	struct tls_creds *cr;
	int fd;
	bool read_once;
	atomic_bool cert_ok;            /* the handshake passed verify_client */
	char addr[INET6_ADDRSTRLEN + 8];
};

/* ---- files and credentials ---- */

static char *read_small_file(const char *path, struct regfs_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		regfs_errf(err, -errno, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	struct dynbuf b = DYNBUF_INIT(1 << 20);
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = dynbuf_add(&b, chunk, n);
	fclose(f);
	char *s = rc ? NULL : dynbuf_take(&b, NULL);
	dynbuf_free(&b);
	if (!s)
		regfs_errf(err, rc == -E2BIG ? -EINVAL : -ENOMEM, "cannot read %s: %s", path,
			   rc == -E2BIG ? "larger than 1 MiB" : "out of memory");
	return s;
}

static void creds_free(struct tls_creds *cr)
{
	if (!cr)
		return;
	if (cr->cred)
		gnutls_certificate_free_credentials(cr->cred);
	free(cr);
}

/* "CN=registry,O=x, serial 0a1b, until 2027-12-07" of the served certificate. */
static void describe_cert(gnutls_certificate_credentials_t cred, char *out, size_t cap)
{
	snprintf(out, cap, "?");
	gnutls_datum_t der = {0};
	gnutls_x509_crt_t crt;
	if (gnutls_certificate_get_crt_raw(cred, 0, 0, &der) < 0 || gnutls_x509_crt_init(&crt) < 0)
		return;
	gnutls_datum_t dn = {0};
	unsigned char serial[40];
	size_t sl = sizeof serial;
	if (gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0 &&
	    gnutls_x509_crt_get_serial(crt, serial, &sl) >= 0) {
		char hex[2 * sizeof serial + 1];
		for (size_t i = 0; i < sl; i++)
			snprintf(hex + 2 * i, 3, "%02x", serial[i]);
		hex[2 * sl] = '\0';
		time_t until = gnutls_x509_crt_get_expiration_time(crt);
		struct tm tm;
		char day[16] = "?";
		if (gmtime_r(&until, &tm))
			strftime(day, sizeof day, "%Y-%m-%d", &tm);
		snprintf(out, cap, "%s, serial %s, valid until %s%s", (const char *)dn.data, hex, day,
			 until < time(NULL) ? " (EXPIRED)" : "");
	}
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

/* The client CAs: each file must hold at least one certificate. */
static int load_clientcas(gnutls_certificate_credentials_t cred, const struct regfs_config *cfg,
			  struct regfs_err *err)
{
	for (size_t i = 0; i < cfg->tls_clientcas.n; i++) {
		const char *f = cfg->tls_clientcas.v[i];
		int n = gnutls_certificate_set_x509_trust_file(cred, f, GNUTLS_X509_FMT_PEM);
		if (n <= 0)
			return regfs_errf(err, -EINVAL, "http.tls.clientcas: %s: %s", f,
					  n == 0 ? "no PEM certificate in the file" : gnutls_strerror(n));
	}
	return 0;
}

/* A new generation from the files `cfg` names. */
static int creds_load(const struct regfs_config *cfg, struct tls_creds **out, struct regfs_err *err)
{
	*out = NULL;
	struct tls_creds *cr = calloc(1, sizeof *cr);
	if (!cr || gnutls_certificate_allocate_credentials(&cr->cred) < 0) {
		free(cr);
		return regfs_errf(err, -ENOMEM, "out of memory loading http.tls");
	}
	atomic_init(&cr->refs, 0);
	cr->mode = cfg->tls_clientauth;
	int g = gnutls_certificate_set_x509_key_file2(cr->cred, cfg->tls_certificate, cfg->tls_key,
						      GNUTLS_X509_FMT_PEM, NULL, 0);
	int rc = 0;
	if (g < 0)
		rc = regfs_errf(err, -EINVAL, "http.tls: certificate %s with key %s: %s",
				cfg->tls_certificate, cfg->tls_key, gnutls_strerror(g));
	else
		rc = load_clientcas(cr->cred, cfg, err);
	if (rc) {
		creds_free(cr);
		return rc;
	}
	gnutls_certificate_set_known_dh_params(cr->cred, GNUTLS_SEC_PARAM_MEDIUM);
	*out = cr;
	return 0;
}

static struct tls_creds *creds_get(struct tls *t)
{
	pthread_mutex_lock(&t->lock);
	struct tls_creds *cr = t->cur;
	atomic_fetch_add(&cr->refs, 1);
	pthread_mutex_unlock(&t->lock);
	return cr;
}

/* Frees retired sets seen unused at two sweeps in a row: a connection's
 * close drops its reference just before GnuTLS lets go of the session, so a
 * set is never freed in that instant. Under t->lock. */
static void sweep_retired(struct tls *t, bool all)
{
	struct tls_creds **pp = &t->retired;
	while (*pp) {
		struct tls_creds *cr = *pp;
		bool idle = atomic_load(&cr->refs) == 0;
		if (all || (idle && cr->idle_seen)) {
			*pp = cr->next_retired;
			creds_free(cr);
			continue;
		}
		cr->idle_seen = idle;
		pp = &cr->next_retired;
	}
}

/* ---- per connection ---- */

static struct tls_conn *conn_of(gnutls_session_t s)
{
	gnutls_transport_ptr_t recv_ptr = NULL, send_ptr = NULL;
	gnutls_transport_get_ptr2(s, &recv_ptr, &send_ptr);
	return recv_ptr;
}

/* The subject of the client's certificate, for the log. */
static void peer_subject(const gnutls_datum_t *der, char *out, size_t cap)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = {0};
	snprintf(out, cap, "?");
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0)
		snprintf(out, cap, "%s", (const char *)dn.data);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

/* clientauth for the log: "none" rather than Go's NoClientCert. */
static const char *auth_word(enum regfs_tls_clientauth m)
{
	return m == REGFS_TLS_NOCLIENTCERT ? "none" : regfs_tls_clientauth_name(m);
}

static int accept_client(struct tls_conn *tc)
{
	atomic_store(&tc->cert_ok, true);
	return 0;
}

/* Fails the handshake with a fatal alert, so the client's error names the
 * reason (libmicrohttpd sends none when a handshake fails; the socket is
 * non-blocking, and an alert that does not fit is simply not sent). */
static int refuse(gnutls_session_t s, gnutls_alert_description_t why)
{
	gnutls_alert_send(s, GNUTLS_AL_FATAL, why);
	return -1;
}

/* Called by GnuTLS in the handshake once the client's Certificate message is
 * in: nonzero fails the handshake. */
static int verify_client(gnutls_session_t s)
{
	struct tls_conn *tc = conn_of(s);
	enum regfs_tls_clientauth mode = tc->cr->mode;
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0) {
		if (mode != REGFS_TLS_REQUIRE_ANY && mode != REGFS_TLS_REQUIRE_AND_VERIFY)
			return accept_client(tc);
		log_warn("TLS: refused %s: no client certificate (http.tls.clientauth: %s)",
			 tc->addr, regfs_tls_clientauth_name(mode));
		return refuse(s, gnutls_protocol_get_version(s) == GNUTLS_TLS1_3
					 ? GNUTLS_A_CERTIFICATE_REQUIRED : GNUTLS_A_HANDSHAKE_FAILURE);
	}
	if (mode != REGFS_TLS_VERIFY_IF_GIVEN && mode != REGFS_TLS_REQUIRE_AND_VERIFY)
		return accept_client(tc);
	gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
					 (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
	unsigned status = 0;
	int rc = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
	if (rc >= 0 && status == 0)
		return accept_client(tc);
	char subject[256];
	peer_subject(&certs[0], subject, sizeof subject);
	gnutls_datum_t why = {0};
	if (rc < 0 || gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) < 0)
		why.data = NULL;
	const char *reason = rc < 0 ? gnutls_strerror(rc) : why.data ? (const char *)why.data : "not trusted";
	int rl = (int)strlen(reason);
	while (rl > 0 && reason[rl - 1] == ' ')
		rl--; /* GnuTLS ends its sentences with a space */
	log_warn("TLS: refused the client certificate of %s (%s): %.*s", tc->addr, subject, rl, reason);
	gnutls_free(why.data);
	return refuse(s, (status & GNUTLS_CERT_SIGNER_NOT_FOUND) ? GNUTLS_A_UNKNOWN_CA
								: GNUTLS_A_BAD_CERTIFICATE);
}

/* A plain HTTP request where a TLS ClientHello belongs: answered in clear
 * text, as Go's servers (registry:2) do, then the handshake fails. */
static void answer_plain_http(struct tls_conn *tc)
{
	static const char msg[] = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
				  "Connection: close\r\n\r\nThis port speaks TLS: use https://\n";
	log_warn("TLS: a client speaks plain HTTP to the TLS port (%s); answered 400", tc->addr);
	ssize_t w = send(tc->fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
}

/* GnuTLS's read from the socket. The first bytes of a TLS connection are a
 * record header (content type 20..24, or 0x80 for an SSLv2 hello); an
 * upper-case letter is an HTTP method. */
static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tls_conn *tc = p;
	ssize_t n = recv(tc->fd, buf, len, 0);
	if (n > 0 && !tc->read_once) {
		tc->read_once = true;
		unsigned char c0 = *(unsigned char *)buf;
		if (c0 >= 'A' && c0 <= 'Z') {
			answer_plain_http(tc);
			errno = ECONNRESET;
			return -1;
		}
	}
	return n;
}

static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct tls_conn *tc = p;
	struct pollfd pfd = {.fd = tc->fd, .events = POLLIN};
	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static void format_addr(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ai ? ai->client_addr : NULL;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		port = ntohs(s4->sin_port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		port = ntohs(s6->sin6_port);
	}
	snprintf(out, cap, "%s:%u", host, port);
}

/* Before the handshake: this connection's credentials, client-certificate
 * request and verification, and our socket reader. */
static int conn_start(struct tls *t, struct MHD_Connection *c, struct tls_conn **out)
{
	const union MHD_ConnectionInfo *si = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!si || !si->tls_session || !fi)
		return -EINVAL;
	gnutls_session_t s = (gnutls_session_t)si->tls_session;
	struct tls_conn *tc = calloc(1, sizeof *tc);
	if (!tc)
		return -ENOMEM;
	tc->fd = fi->connect_fd;
	format_addr(c, tc->addr, sizeof tc->addr);
	tc->cr = creds_get(t);
	int g = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tc->cr->cred);
	if (g < 0) {
		atomic_fetch_sub(&tc->cr->refs, 1);
		free(tc);
		return -ENOMEM;
	}
	enum regfs_tls_clientauth m = tc->cr->mode;
	if (m != REGFS_TLS_NOCLIENTCERT) {
		/* REQUEST even when required: verify_client then refuses a
		 * missing certificate with a log line naming the client (GnuTLS's
		 * own REQUIRE fails silently); tls_conn_allowed is the backstop */
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(s, verify_client);
	}
	gnutls_transport_set_ptr2(s, tc, (gnutls_transport_ptr_t)(intptr_t)tc->fd);
	gnutls_transport_set_pull_function(s, tls_pull);
	gnutls_transport_set_pull_timeout_function(s, tls_pull_timeout);
	*out = tc;
	return 0;
}

void tls_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe)
{
	struct tls *t = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct tls_conn *tc = NULL;
		int rc = conn_start(t, c, &tc);
		*socket_context = tc;
		if (rc) {
			/* never let it handshake with the startup credentials and no
			 * client-certificate check */
			const union MHD_ConnectionInfo *fi =
				MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
			log_error("TLS: cannot set up a connection: %s; closing it", strerror(-rc));
			if (fi)
				shutdown(fi->connect_fd, SHUT_RDWR);
		}
		return;
	}
	struct tls_conn *tc = *socket_context;
	if (!tc)
		return;
	atomic_fetch_sub(&tc->cr->refs, 1);
	free(tc);
	*socket_context = NULL;
}

bool tls_conn_allowed(struct MHD_Connection *c)
{
	const struct conn_ctx *cx = conn_ctx_of(c);
	const struct tls_conn *tc = cx ? cx->tls : NULL;
	if (!tc)
		return false;
	enum regfs_tls_clientauth m = tc->cr->mode;
	if (m == REGFS_TLS_NOCLIENTCERT || atomic_load(&tc->cert_ok))
		return true;
	if (m == REGFS_TLS_REQUEST || m == REGFS_TLS_VERIFY_IF_GIVEN) {
		/* no certificate, no check needed; one sent must have been checked */
		const union MHD_ConnectionInfo *si = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		unsigned n = 0;
		if (si && !gnutls_certificate_get_peers((gnutls_session_t)si->tls_session, &n))
			return true;
		if (m == REGFS_TLS_REQUEST)
			return true;
	}
	log_error("TLS: %s got through the handshake without its client certificate being "
		  "checked (http.tls.clientauth: %s); closing it", tc->addr,
		  regfs_tls_clientauth_name(tc->cr->mode));
	return false;
}

/* ---- lifecycle ---- */

/* GnuTLS priorities for http.tls.minimumtls (0 = tls1.0 ... 3 = tls1.3). */
static void priorities_for(int min, char *out, size_t cap)
{
	static const char *const vers[] = {"+VERS-TLS1.0", "+VERS-TLS1.1", "+VERS-TLS1.2", "+VERS-TLS1.3"};
	size_t n = (size_t)snprintf(out, cap, "NORMAL:-VERS-ALL");
	for (int v = 3; v >= min && n < cap; v--)
		n += (size_t)snprintf(out + n, cap - n, ":%s", vers[v]);
}

int tls_open(const struct regfs_config *cfg, struct tls **out, struct regfs_err *err)
{
	*out = NULL;
	if (!cfg->tls_certificate && !cfg->tls_key)
		return 0;
	if (!cfg->tls_certificate || !cfg->tls_key)
		return regfs_errf(err, -EINVAL, "http.tls needs both certificate and key");
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return regfs_errf(err, -ENOTSUP, "http.tls is set but this libmicrohttpd was "
				  "built without TLS (gnutls); install a TLS-enabled "
				  "libmicrohttpd or terminate TLS in a proxy");
	struct tls *t = calloc(1, sizeof *t);
	if (!t)
		return regfs_errf(err, -ENOMEM, "out of memory loading http.tls");
	pthread_mutex_init(&t->lock, NULL);
	priorities_for(regfs_tls_min_version(cfg), t->priorities, sizeof t->priorities);
	int rc = creds_load(cfg, &t->cur, err);
	if (!rc) {
		t->mem_cert = read_small_file(cfg->tls_certificate, err);
		t->mem_key = t->mem_cert ? read_small_file(cfg->tls_key, err) : NULL;
		if (!t->mem_key) {
			regfs_err_prefix(err, "http.tls: ");
			rc = -EINVAL;
		}
	}
	if (rc) {
		tls_close(t);
		return rc;
	}
	atomic_fetch_add(&t->cur->refs, 1); /* the current set holds one */
	char what[512];
	describe_cert(t->cur->cred, what, sizeof what);
	log_info("TLS: serving certificate %s; TLS %s and later; client certificates: %s",
		 what, cfg->tls_minimumtls ? cfg->tls_minimumtls + 3 : "1.2",
		 auth_word(cfg->tls_clientauth));
	*out = t;
	return 0;
}

void tls_mhd_options(const struct tls *t, struct MHD_OptionItem opts[TLS_MHD_OPTIONS])
{
	opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->mem_cert};
	opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->mem_key};
	opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)t->priorities};
	opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

int tls_reload(struct tls *t, const struct regfs_config *cfg, struct regfs_err *err)
{
	if (!cfg->tls_certificate || !cfg->tls_key)
		return regfs_errf(err, -EINVAL, "http.tls: TLS cannot be turned off by a reload");
	struct tls_creds *cr = NULL;
	int rc = creds_load(cfg, &cr, err);
	if (rc)
		return rc;
	atomic_fetch_add(&cr->refs, 1);
	pthread_mutex_lock(&t->lock);
	struct tls_creds *old = t->cur;
	t->cur = cr;
	old->next_retired = t->retired;
	t->retired = old;
	atomic_fetch_sub(&old->refs, 1);
	sweep_retired(t, false);
	pthread_mutex_unlock(&t->lock);
	char what[512];
	describe_cert(cr->cred, what, sizeof what);
	log_info("SIGHUP: TLS: new connections get certificate %s; client certificates: %s",
		 what, auth_word(cr->mode));
	return 0;
}

void tls_close(struct tls *t)
{
	if (!t)
		return;
	sweep_retired(t, true);
	creds_free(t->cur);
	free(t->mem_cert);
	free(t->mem_key);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
