/* content_range.h — the Content-Range header of a chunked-upload PATCH (and
 * of the PUT that ends an upload), as the Distribution spec writes it:
 * "<start>-<end>" (inclusive, decimal), optionally prefixed "bytes=" or
 * "bytes " and optionally followed by "/<anything>" (RFC 9110's complete
 * length, which the spec does not use). Pure: no allocation, no I/O; the
 * fuzz target tests/fuzz/fuzz_content_range.c calls it on arbitrary bytes. */
#ifndef REGFS_CONTENT_RANGE_H
#define REGFS_CONTENT_RANGE_H

#include <stdbool.h>
#include <stdint.h>

/* Parses the NUL-terminated header value h into *start and *end.
 * 0 when well formed with end >= start; -EINVAL when malformed (signs,
 * spaces, missing bound, trailing bytes, end < start); -ERANGE when a bound
 * does not fit 64 bits. *start and *end are meaningful only on 0. */
int regfs_content_range_parse(const char *h, uint64_t *start, uint64_t *end);

/* true when [start, end] describes exactly len bytes (len > 0). */
bool regfs_content_range_fits(uint64_t start, uint64_t end, uint64_t len);

#endif
