/* jsonbuf.h — a struct dynbuf (regfs/dynbuf.h) with a sticky error, for
 * the JSON bodies the registry builds by hand (lists, errors, bulk pages) and
 * the manifest bodies it receives.
 *
 * Appends after a failure do nothing, so a builder appends freely and checks
 * jb_error once at the end. The cap is set at init: an append that would take
 * the length past it fails with -E2BIG and leaves the text as it was.
 *
 * Ownership: the buffer owns its bytes until jb_take hands them over or
 * jb_free releases them. Not thread-safe. */
#ifndef REGFS_JSONBUF_H
#define REGFS_JSONBUF_H

#include <stddef.h>

#include <regfs/dynbuf.h>

#define JB_NO_CAP DYNBUF_NO_CAP

struct jbuf {
	struct dynbuf d;
	int err;                      /* first failure: -ENOMEM or -E2BIG; 0 */
};

/* An empty buffer that may hold at most `cap` bytes (JB_NO_CAP: memory).
 * Allocates nothing; a zeroed struct jbuf is not initialised. */
void jb_init(struct jbuf *b, size_t cap);
void jb_add(struct jbuf *b, const char *s, size_t n);
void jb_puts(struct jbuf *b, const char *s);
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string literal, quotes included: '"', '\\' and control
 * characters escaped (NUL as \u0000); other bytes copied (the caller checked
 * they are UTF-8). */
void jb_json_bytes(struct jbuf *b, const char *s, size_t n);
/* The NUL-terminated s, as jb_json_bytes. */
void jb_json_str(struct jbuf *b, const char *s);
/* 0, or the first failure (-ENOMEM, -E2BIG). */
int jb_error(const struct jbuf *b);
const char *jb_ptr(const struct jbuf *b);
size_t jb_len(const struct jbuf *b);
/* Hands the bytes to the caller (free() them); the buffer is left empty.
 * NULL on ENOMEM. */
char *jb_take(struct jbuf *b, size_t *len);
void jb_free(struct jbuf *b);

#endif
