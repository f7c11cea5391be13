/* dynbuf.h — one growable byte buffer with a size cap, for every place that
 * collects bytes of unknown length (HTTP bodies, JSON being built, files read
 * whole, strings joined).
 *
 * The cap is set once, at init, and is the largest length the buffer may ever
 * hold: a response body, a manifest or a file cannot make the process allocate
 * more than its caller decided. Every append goes through one grow path that
 * checks the cap and the arithmetic before it touches memory.
 *
 * Invariants (true after every call, successful or not):
 *  - dynbuf_ptr(b) is a NUL-terminated string of dynbuf_len(b) bytes (the
 *    bytes may contain NULs of their own; the terminator is one past len);
 *  - dynbuf_len(b) <= the cap;
 *  - a failed call leaves the contents exactly as they were.
 *
 * Ownership: the buffer owns its memory until dynbuf_take() hands it to the
 * caller (who then free()s it) or dynbuf_free() releases it. A struct dynbuf
 * holds no other resource, so one that never grew needs no dynbuf_free(), but
 * calling it is always correct.
 *
 * Errors: -ENOMEM when memory runs out, -E2BIG when the append would take the
 * length over the cap. Neither changes the buffer.
 *
 * Not thread-safe: one buffer, one thread at a time.
 *
 *     struct dynbuf b;
 *     dynbuf_init(&b, 64 * 1024);
 *     if (dynbuf_addstr(&b, "name=") || dynbuf_printf(&b, "%d", n))
 *             goto fail;                  (-ENOMEM or -E2BIG, b unchanged)
 *     size_t len;
 *     char *s = dynbuf_take(&b, &len);    (s is the caller's; b is empty)  */
#ifndef REGFS_DYNBUF_H
#define REGFS_DYNBUF_H

#include <stdarg.h>
#include <stddef.h>

/* The cap that means "no limit but memory": for buffers whose size the caller
 * already bounds some other way. */
#define DYNBUF_NO_CAP ((size_t)-1)

/* Read through the functions below; the fields are here only so that a
 * struct dynbuf can live on the stack or inside another struct. */
struct dynbuf {
	char *buf;    /* NULL until the first byte is added */
	size_t len;   /* bytes held, not counting the terminating NUL */
	size_t alloc; /* bytes allocated at buf (len + 1 <= alloc) */
	size_t cap;   /* largest len allowed */
};

/* A static initializer, same as dynbuf_init(&b, cap). */
#define DYNBUF_INIT(cap) { NULL, 0, 0, (cap) }

/* Make `b` an empty buffer whose length may never exceed `cap` bytes
 * (DYNBUF_NO_CAP: no limit). Allocates nothing. Does not free what `b` held:
 * call it on fresh memory, or after dynbuf_free()/dynbuf_take(). */
void dynbuf_init(struct dynbuf *b, size_t cap);

/* Append `n` bytes from `p` (p may be NULL when n is 0).
 * 0, -ENOMEM, -E2BIG. */
int dynbuf_add(struct dynbuf *b, const void *p, size_t n);

/* Append the string `s` (without its NUL). 0, -ENOMEM, -E2BIG. */
int dynbuf_addstr(struct dynbuf *b, const char *s);

/* Append printf-style formatted text. 0, -ENOMEM, -E2BIG; -EINVAL when the
 * format itself fails (an encoding error): nothing is appended. The arguments
 * must not point into `b` itself (the append may move its bytes). */
int dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int dynbuf_vprintf(struct dynbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Empty the buffer but keep its memory and cap, to fill it again. */
void dynbuf_reset(struct dynbuf *b);

/* Release the memory; the buffer is empty, keeps its cap and may be reused. */
void dynbuf_free(struct dynbuf *b);

/* Hand the bytes to the caller: returns a malloc'd, NUL-terminated block of
 * *len bytes (len may be NULL) that the caller must free(). The buffer is left
 * empty, with its cap, ready for reuse. When the buffer holds nothing, returns
 * a malloc'd "" (*len = 0), or NULL if even that allocation fails. */
char *dynbuf_take(struct dynbuf *b, size_t *len);

/* The bytes held, NUL-terminated; "" (a static string) when empty. Valid until
 * the next call that changes the buffer. */
const char *dynbuf_ptr(const struct dynbuf *b);

/* The number of bytes held (the terminator not counted). */
size_t dynbuf_len(const struct dynbuf *b);

#endif
