/* jsonbuf.c — the capped text buffer with a sticky error (jsonbuf.h) and
 * the one JSON string escaper of the registry. */
#include "jsonbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jb_init(struct jbuf *b, size_t cap)
{
	memset(b, 0, sizeof *b);
	b->cap = cap;
}

/* Room for `extra` more bytes and the NUL; false (and b->err set) if not. */
static bool jb_grow(struct jbuf *b, size_t extra)
{
	if (b->err)
		return false;
	if (extra > b->cap - b->len) {
		b->err = -E2BIG;
		return false;
	}
	if (b->len + extra + 1 <= b->alloc)
		return true;
	size_t alloc = b->alloc ? b->alloc : 256;
	while (alloc < b->len + extra + 1)
		alloc *= 2;
	char *s = realloc(b->s, alloc);
	if (!s) {
		b->err = -ENOMEM;
		return false;
	}
	b->s = s;
	b->alloc = alloc;
	return true;
}

void jb_add(struct jbuf *b, const char *s, size_t n)
{
	if (!jb_grow(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void jb_puts(struct jbuf *b, const char *s)
{
	jb_add(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !jb_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void jb_json_bytes(struct jbuf *b, const char *s, size_t n)
{
	jb_add(b, "\"", 1);
	size_t run = 0; /* start of the current run of bytes that need no escape */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		jb_add(b, s + run, i - run);
		run = i + 1;
		char esc[8];
		switch (ch) {
		case '"': jb_add(b, "\\\"", 2); break;
		case '\\': jb_add(b, "\\\\", 2); break;
		case '\n': jb_add(b, "\\n", 2); break;
		case '\r': jb_add(b, "\\r", 2); break;
		case '\t': jb_add(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			jb_add(b, esc, 6);
		}
	}
	jb_add(b, s + run, n - run);
	jb_add(b, "\"", 1);
}

void jb_json_str(struct jbuf *b, const char *s)
{
	jb_json_bytes(b, s, strlen(s));
}

int jb_error(const struct jbuf *b)
{
	return b->err;
}

const char *jb_ptr(const struct jbuf *b)
{
	return b->s ? b->s : "";
}

size_t jb_len(const struct jbuf *b)
{
	return b->len;
}

char *jb_take(struct jbuf *b, size_t *len)
{
	char *s = b->s ? b->s : strdup("");
	if (len)
		*len = s ? b->len : 0;
	size_t cap = b->cap;
	jb_init(b, cap);
	return s;
}

void jb_free(struct jbuf *b)
{
	free(b->s);
	jb_init(b, b->cap);
}
