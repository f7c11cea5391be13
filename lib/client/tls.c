/* tls.c — TLS of the registry client: the options every handle gets (CA
 * bundle, client certificate and key, verification) and the one-line message
 * of a TLS failure, which says which certificate, why it was refused and
 * which option fixes it.
 *
 * Why a second handshake for the message: with verification on, OpenSSL
 * stops the handshake at the bad certificate, before libcurl gathers
 * CURLINFO_CERTINFO; the reason (X509_verify_cert_error_string of the verify
 * result) is already in curl's error buffer. So on a failure only, one more
 * handshake without verification and with CERTINFO reads the certificate's
 * subject and issuer. It sends no request and no credentials. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void tls_setopts(struct regfs_client *c, CURL *h)
{
	if (c->ca_cert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_cert);
	if (c->client_cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
	if (c->client_key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* The TLS alerts a server sends when it wants (another) client certificate;
 * libcurl reports them as a send/receive or connect error with OpenSSL's
 * text in the error buffer. */
static const char *const client_cert_alerts[] = {
	"alert certificate required", "alert bad certificate", "alert unknown ca",
	"alert certificate unknown", "alert handshake failure", "alert access denied", NULL,
};

bool tls_client_cert_refused(const char *errbuf)
{
	for (int i = 0; errbuf && client_cert_alerts[i]; i++)
		if (strcasestr(errbuf, client_cert_alerts[i]))
			return true;
	return false;
}

bool tls_wants_client_cert(struct regfs_client *c, CURLcode cc, const char *url, char *alert,
			   size_t n)
{
	if (c->client_cert || strncasecmp(url, "https://", 8) != 0)
		return false;
	if (cc != CURLE_RECV_ERROR && cc != CURLE_SEND_ERROR && cc != CURLE_GOT_NOTHING &&
	    cc != CURLE_SSL_CONNECT_ERROR)
		return false;
	/* A TLS 1.2 handshake without a certificate: there the server's refusal
	 * comes inside the handshake (in TLS 1.3 only after it, racing with
	 * our first read, which then fails with whatever the socket says). */
	CURL *h = curl_easy_init();
	if (!h)
		return false;
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION,
			 (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_s * 1000);
	bool wants = curl_easy_perform(h) != CURLE_OK && tls_client_cert_refused(errbuf);
	curl_easy_cleanup(h);
	if (wants)
		snprintf(alert, n, "%s", errbuf);
	return wants;
}

/* Copies the value of "Subject:" / "Issuer:" of the leaf certificate from
 * CURLINFO_CERTINFO into out ("" when absent). */
static void certinfo_field(struct curl_certinfo *ci, const char *key, char *out, size_t n)
{
	out[0] = '\0';
	if (!ci || ci->num_of_certs < 1)
		return;
	size_t kl = strlen(key);
	for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
		if (strncasecmp(s->data, key, kl) == 0 && s->data[kl] == ':') {
			const char *v = s->data + kl + 1;
			while (*v == ' ')
				v++;
			snprintf(out, n, "%s", v);
			for (char *p = out; *p; p++) /* one line */
				if (*p == '\n' || *p == '\r')
					*p = ' ';
			return;
		}
}

/* "subject …, issuer …" of the server's certificate at url, or "" when the
 * handshake does not get that far. */
static void server_cert_names(struct regfs_client *c, const char *url, char *out, size_t n)
{
	out[0] = '\0';
	CURL *h = curl_easy_init();
	if (!h)
		return;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L); /* TCP + TLS handshake only */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_s * 1000);
	struct curl_certinfo *ci = NULL;
	if (curl_easy_perform(h) == CURLE_OK &&
	    curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) == CURLE_OK) {
		char sub[256], iss[256];
		certinfo_field(ci, "Subject", sub, sizeof sub);
		certinfo_field(ci, "Issuer", iss, sizeof iss);
		if (sub[0] || iss[0])
			snprintf(out, n, "subject \"%s\", issuer \"%s\"", sub, iss);
	}
	curl_easy_cleanup(h);
}

/* The certificate the registry showed was refused: say which, why, and
 * which option fixes it. */
static int server_cert_err(struct regfs_client *c, const char *detail, const char *method,
			   const char *url, struct regfs_err *err)
{
	char names[600];
	server_cert_names(c, url, names, sizeof names);
	const char *fix;
	if (strcasestr(detail, "subject name") || strcasestr(detail, "host name") ||
	    strcasestr(detail, "hostname"))
		fix = "use the host name the certificate was issued for in the URL, or "
		      "--insecure to skip verification";
	else if (c->ca_cert)
		fix = "the CA in --ca-cert did not sign it: pass the CA that did with "
		      "--ca-cert <CA file>, or --insecure to skip verification";
	else
		fix = "pass the CA that signed it with --ca-cert <CA file>, or --insecure to "
		      "skip verification";
	return regfs_errf(err, -EIO, "%s %s: the registry's TLS certificate (%s) was refused: "
			  "%s: %s", method, url, names[0] ? names : "not readable", detail, fix);
}

int tls_err(struct regfs_client *c, CURLcode cc, const char *detail, const char *method,
	    const char *url, struct regfs_err *err)
{
	if (tls_client_cert_refused(detail)) {
		if (!c->client_cert)
			return regfs_errf(err, -EACCES,
					  "%s %s: the registry asks for a TLS client certificate "
					  "(%s): pass --client-cert FILE --client-key FILE",
					  method, url, detail);
		return regfs_errf(err, -EACCES,
				  "%s %s: the registry refused the client certificate %s (%s): "
				  "use one signed by a CA the registry trusts (its clientcas)",
				  method, url, c->client_cert, detail);
	}
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		return server_cert_err(c, detail, method, url, err);
	case CURLE_SSL_CACERT_BADFILE:
		return regfs_errf(err, -EIO, "%s %s: --ca-cert %s cannot be used (%s): pass a "
				  "readable PEM file of CA certificates", method, url,
				  c->ca_cert ? c->ca_cert : "(system CAs)", detail);
	case CURLE_SSL_CERTPROBLEM:
		return regfs_errf(err, -EIO, "%s %s: --client-cert %s / --client-key %s cannot "
				  "be used (%s): pass a PEM certificate and its unencrypted key",
				  method, url, c->client_cert ? c->client_cert : "(none)",
				  c->client_key ? c->client_key : "(in the certificate file)",
				  detail);
	default:
		return regfs_errf(err, -EIO, "%s %s: TLS failed (%s): pass the registry's CA with "
				  "--ca-cert <CA file>, or --insecure to skip verification",
				  method, url, detail);
	}
}
