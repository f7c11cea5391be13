/* base64.h — base64 decoding (RFC 4648), the one decoder for the
 * Authorization header (standard alphabet, padding optional) and bearer
 * tokens and their x5c certificates (base64url without padding, and
 * standard base64). */
#ifndef REGFS_BASE64_H
#define REGFS_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Decodes the n characters at s into out[cap]. `url`: the base64url
 * alphabet ('-', '_') and no '=' accepted; otherwise the standard alphabet
 * ('+', '/') with optional trailing '=' padding. Writes at most
 * regfs_base64_max(n) bytes. Returns the decoded length, or -EINVAL (a
 * character outside the alphabet, or a length no encoding produces) or
 * -ENOSPC (out is too small). out is not NUL-terminated. */
ssize_t regfs_base64_decode(const char *s, size_t n, bool url, unsigned char *out, size_t cap);

/* The most bytes n base64 characters decode to. */
static inline size_t regfs_base64_max(size_t n)
{
	return n / 4 * 3 + 2;
}

#endif
