/* framing.c — see framing.h. */
#include "framing.h"

#include "registry.h"
#include "request.h"
#include "respond.h"

#include <regfs/log.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* true for a control character (0x00-0x1f, 0x7f) */
static bool is_ctl(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

enum framing_target framing_target_check(const char *uri, size_t max_len)
{
	const char *p = uri;
	for (; *p && *p != '?'; p++) {
		if (is_ctl((unsigned char)*p))
			return TARGET_CTL;
		/* an encoded '/' would move the route's separators (hostile%2ft
		 * is not a name; registry:2 answers 404) */
		if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			unsigned char d = (unsigned char)(hexval(p[1]) * 16 + hexval(p[2]));
			if (is_ctl(d) || d == '/')
				return TARGET_CTL;
		}
	}
	if (max_len && (size_t)(p - uri) + strlen(p) > max_len)
		return TARGET_LONG;
	return TARGET_OK;
}

const char *framing_origin_path(const char *url)
{
	const char *p = NULL;
	if (!strncasecmp(url, "http://", 7))
		p = url + 7;
	else if (!strncasecmp(url, "https://", 8))
		p = url + 8;
	if (!p)
		return url;
	const char *slash = strchr(p, '/');
	return slash ? slash : "/";
}

void framing_peer(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, size, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  (socklen_t)size);
}

enum MHD_Result framing_refuse_target(struct registry *r, struct MHD_Connection *c,
				      const char *method, const char *url,
				      enum framing_target why)
{
	struct request q;
	char peer[64];
	framing_peer(c, peer, sizeof peer);
	request_init(&q, c, method, url);
	if (why == TARGET_LONG) {
		log_warn("http: %s from %s refused (414): the request target is longer than "
			 "regfs.limits.requestline (%llu bytes)", method, peer,
			 (unsigned long long)r->cfg->limits.requestline);
		return respond_errorf(r, &q, 414, "UNKNOWN", "the request target is longer than "
				      "%llu bytes (regfs.limits.requestline)",
				      (unsigned long long)r->cfg->limits.requestline);
	}
	log_warn("http: %s %.200s from %s refused (400): control character or encoded '/' "
		 "in the path", method, url, peer);
	return respond_errorf(r, &q, 400, "NAME_INVALID", "the request path holds a control "
			      "character (raw or %%-encoded) or an encoded '/' (%%2F): refused");
}

/* Framing facts gathered over the request's headers (RFC 9112 section 6). */
struct framing {
	unsigned n_cl, n_te, n_headers;
	size_t header_bytes;
	bool bad_cl, bad_te, bad_name;
	char what[160];
};

static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool all_digits(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return false;
	return true;
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	struct framing *f = cls;
	f->n_headers++;
	f->header_bytes += key_size + value_size + 4; /* "name: value\r\n" */
	bool tok = key_size > 0;
	for (size_t i = 0; i < key_size; i++)
		tok = tok && is_tchar((unsigned char)key[i]);
	if (!tok) {
		if (!f->bad_name)
			snprintf(f->what, sizeof f->what, "header name \"%.60s\" is not a token "
				 "(empty, or space before the colon)", key);
		f->bad_name = true;
		return MHD_YES;
	}
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		f->n_cl++;
		f->bad_cl = f->bad_cl || !value || !all_digits(value);
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->n_te++;
		f->bad_te = f->bad_te || !value || strcasecmp(value, "chunked");
	}
	return MHD_YES;
}

/* 431 when the header block is over regfs.limits (what names the key). */
static unsigned size_check(const struct regfs_config *cfg, struct framing *f)
{
	if (cfg->limits.headers && f->n_headers > (unsigned)cfg->limits.headers) {
		snprintf(f->what, sizeof f->what, "%u header fields, more than "
			 "regfs.limits.headers (%d)", f->n_headers, cfg->limits.headers);
		return 431;
	}
	if (cfg->limits.headersize && f->header_bytes > cfg->limits.headersize) {
		snprintf(f->what, sizeof f->what, "%zu bytes of header fields, more than "
			 "regfs.limits.headersize (%llu)", f->header_bytes,
			 (unsigned long long)cfg->limits.headersize);
		return 431;
	}
	return 0;
}

/* Checks the request's framing headers before any body byte is read; 0 when
 * sound, else the status to refuse with and a message in f->what. */
static unsigned framing_check(const struct regfs_config *cfg, struct MHD_Connection *c,
			      struct framing *f)
{
	memset(f, 0, sizeof *f);
	MHD_get_connection_values_n(c, MHD_HEADER_KIND, framing_header, f);
	unsigned st = size_check(cfg, f);
	if (st)
		return st;
	if (f->bad_name)
		return 400;
	if (f->n_cl > 1 || f->bad_cl) {
		snprintf(f->what, sizeof f->what, "%s Content-Length",
			 f->n_cl > 1 ? "repeated" : "invalid");
		return 400;
	}
	if (f->n_cl && f->n_te) {
		snprintf(f->what, sizeof f->what, "both Content-Length and Transfer-Encoding");
		return 400;
	}
	if (f->n_te > 1 || f->bad_te) {
		snprintf(f->what, sizeof f->what, "Transfer-Encoding other than a single \"chunked\"");
		return 501;
	}
	return 0;
}

bool framing_refuse_headers(struct registry *r, struct MHD_Connection *c, const char *method,
			    const char *url, enum MHD_Result *res)
{
	struct framing f;
	unsigned st = framing_check(r->cfg, c, &f);
	if (!st)
		return false;
	struct request q;
	char peer[64];
	framing_peer(c, peer, sizeof peer);
	request_init(&q, c, method, url);
	log_warn("http: %s %.200s from %s refused (%u): %s", method, url, peer, st, f.what);
	const char *code = st == 501 ? "UNSUPPORTED" : "UNKNOWN";
	if (st == 431)
		*res = respond_errorf(r, &q, st, code, "request header fields too large: %s", f.what);
	else
		*res = respond_errorf(r, &q, st, code, "malformed request framing: %s", f.what);
	return true;
}
