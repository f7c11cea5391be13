/* framing.h — the checks on a request's framing that come before any
 * handler: the raw request target (control characters, length), the
 * header block (RFC 9112 section 6: Content-Length / Transfer-Encoding
 * ambiguity, header names that are not tokens; header count and size
 * against regfs.limits), and the absolute-form target.
 *
 * A request whose framing is ambiguous is refused, never guessed: a proxy
 * in front could read its body differently and the rest become a second,
 * smuggled request. Refusals are queued on the first access-handler call
 * (after the headers, before the body): libmicrohttpd then answers at once
 * and closes the connection without reading a body it has not handed over. */
#ifndef REGFS_FRAMING_H
#define REGFS_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>

struct registry;

/* What is wrong with a raw request target (as libmicrohttpd's URI callback
 * sees it, before %XX decoding). */
enum framing_target {
	TARGET_OK,
	TARGET_CTL,   /* a control character in the path, raw or %-encoded, or %2F */
	TARGET_LONG,  /* longer than regfs.limits.requestline */
};

/* Classifies the raw target `uri`; `max_len` 0: no length limit. The decoded
 * path is a C string: "%00" would silently cut it (".../a%00b" naming tag
 * "a"), so a control character anywhere in the path is refused. */
enum framing_target framing_target_check(const char *uri, size_t max_len);

/* The path of an absolute-form target ("http://host:port/v2/", RFC 9112
 * section 3.2.2, which servers must accept); other targets unchanged. Points
 * into `url`. */
const char *framing_origin_path(const char *url);

/* Answers a request whose target framing_target_check refused (400 for a
 * control character, 414 for a target over the limit) and logs the refusal
 * with the client address. */
enum MHD_Result framing_refuse_target(struct registry *r, struct MHD_Connection *c,
				      const char *method, const char *url,
				      enum framing_target why);

/* Checks the request's header block; false when sound. Otherwise answers it
 * (400 for ambiguous framing or a header name that is not a token, 501 for
 * a transfer coding other than plain chunked, 431 for more headers or more
 * header bytes than regfs.limits allows), logs why with the client address
 * and the limit key, sets *res to the result to return and returns true. */
bool framing_refuse_headers(struct registry *r, struct MHD_Connection *c, const char *method,
			    const char *url, enum MHD_Result *res);

/* "a.b.c.d" / "v6" of the connection's peer into out (size >= 64); "?" when
 * unknown. For log lines. */
void framing_peer(struct MHD_Connection *c, char *out, size_t size);

#endif
