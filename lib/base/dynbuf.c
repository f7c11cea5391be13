/* dynbuf.c — the growable, capped byte buffer of dynbuf.h: one grow path
 * (ensure_room) that every append goes through, so the cap and the size
 * arithmetic are checked in exactly one place. */
#include <regfs/dynbuf.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation: small enough for a header value, big enough that short
 * strings do not realloc on every byte. */
#define DYNBUF_FIRST_ALLOC 32

void dynbuf_init(struct dynbuf *b, size_t cap)
{
	b->buf = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

/* Make room for `n` more bytes plus the terminator, growing geometrically so
 * that appending byte by byte stays linear, but never allocating more than the
 * cap allows. Changes nothing on failure. */
static int ensure_room(struct dynbuf *b, size_t n)
{
	if (n > b->cap - b->len)
		return -E2BIG;
	if (n >= SIZE_MAX - b->len) /* len + n + 1 would wrap */
		return -ENOMEM;
	size_t need = b->len + n + 1;
	if (need <= b->alloc)
		return 0;
	size_t a = b->alloc ? b->alloc : DYNBUF_FIRST_ALLOC;
	while (a < need)
		a = a > SIZE_MAX / 2 ? need : a * 2;
	if (b->cap < SIZE_MAX && a > b->cap + 1) /* the cap bounds the allocation too */
		a = b->cap + 1;
	char *p = realloc(b->buf, a);
	if (!p)
		return -ENOMEM;
	b->buf = p;
	b->alloc = a;
	return 0;
}

int dynbuf_add(struct dynbuf *b, const void *p, size_t n)
{
	int rc = ensure_room(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->buf + b->len, p, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return 0;
}

int dynbuf_addstr(struct dynbuf *b, const char *s)
{
	return dynbuf_add(b, s, strlen(s));
}

int dynbuf_vprintf(struct dynbuf *b, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -EINVAL;
	int rc = ensure_room(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = dynbuf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void dynbuf_reset(struct dynbuf *b)
{
	b->len = 0;
	if (b->buf)
		b->buf[0] = '\0';
}

void dynbuf_free(struct dynbuf *b)
{
	free(b->buf);
	dynbuf_init(b, b->cap);
}

char *dynbuf_take(struct dynbuf *b, size_t *len)
{
	char *p = b->buf ? b->buf : strdup("");
	if (p && len)
		*len = b->len;
	if (p)
		dynbuf_init(b, b->cap);
	return p;
}

const char *dynbuf_ptr(const struct dynbuf *b)
{
	return b->buf ? b->buf : "";
}

size_t dynbuf_len(const struct dynbuf *b)
{
	return b->len;
}
