/* sigv4.h — AWS Signature Version 4 (header-signed requests and presigned
 * URLs), as specified in "Signature Version 4 signing process" and the S3 API
 * reference ("Authenticating Requests", header and query-parameter forms).
 *
 * Hand-written because no Debian library does SigV4 for C except curl's
 * CURLOPT_AWS_SIGV4, which cannot presign URLs and (7.88) neither adds
 * x-amz-content-sha256 nor lets us choose UNSIGNED-PAYLOAD.
 *
 * Pure functions: no I/O, no global state; thread-safe. Strings returned are
 * malloc'd (caller frees); NULL only on allocation failure. */
#ifndef REGFS_SIGV4_H
#define REGFS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define REGFS_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define REGFS_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

struct regfs_sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;   /* "us-east-1" */
	const char *service;  /* "s3" */
};

struct regfs_sigv4_header {
	const char *name;     /* any case; canonicalized to lowercase */
	const char *value;    /* trimmed, inner runs of spaces collapsed */
};

struct regfs_sigv4_request {
	const char *method;   /* "GET" */
	/* The request path exactly as sent, already URI-encoded (for S3: every
	 * byte outside A-Za-z0-9-._~ of the key as %XX, "/" kept). */
	const char *path;
	/* The query string as sent, without "?", names and values already
	 * URI-encoded ("list-type=2&prefix=a%2Fb", "uploads" or "uploads=");
	 * NULL or "" for none. The signer sorts it canonically. */
	const char *query;
	/* Every header to sign, including host and x-amz-date (and for S3
	 * x-amz-content-sha256). Order and case do not matter. */
	const struct regfs_sigv4_header *headers;
	size_t n_headers;
	const char *payload_hash; /* lowercase hex SHA-256 of the body, or REGFS_SIGV4_UNSIGNED */
};

/* "20150830T123600Z" (UTC) for t; out has room for 17 bytes. */
void regfs_sigv4_amz_date(time_t t, char out[17]);

/* Lowercase hex SHA-256 of a buffer into out[65]. */
void regfs_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* URI-encodes per SigV4: bytes outside A-Za-z0-9-._~ become %XX (uppercase
 * hex); "/" is kept when keep_slash. */
char *regfs_sigv4_uri_encode(const char *s, size_t len, bool keep_slash);

/* The canonical request (for tests and debugging). */
char *regfs_sigv4_canonical_request(const struct regfs_sigv4_request *r);

/* The value of the Authorization header:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=a;b, Signature=hex". amz_date as regfs_sigv4_amz_date. */
char *regfs_sigv4_authorization(const struct regfs_sigv4_key *k, const char *amz_date,
				const struct regfs_sigv4_request *r);

/* A presigned query string (no leading "?"): the request's own query plus
 * X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders=host and
 * -Signature, with payload UNSIGNED-PAYLOAD as S3 specifies for presigned
 * URLs. `host` is the Host header value the client will send ("h:port"
 * when the port is not the scheme's default). */
char *regfs_sigv4_presign_query(const struct regfs_sigv4_key *k, const char *amz_date,
				const char *method, const char *host, const char *path,
				const char *query, int expires_s);

#endif
