/* jsonbuf.c — the capped text buffer with a sticky error (jsonbuf.h) over
 * struct dynbuf, and the one JSON string escaper of the registry. */
#include "jsonbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jb_init(struct jbuf *b, size_t cap)
{
	dynbuf_init(&b->d, cap);
	b->err = 0;
}

void jb_add(struct jbuf *b, const char *s, size_t n)
{
	if (!b->err)
		b->err = dynbuf_add(&b->d, s, n);
}

void jb_puts(struct jbuf *b, const char *s)
{
	jb_add(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	if (b->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	b->err = dynbuf_vprintf(&b->d, fmt, ap);
	va_end(ap);
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
	return dynbuf_ptr(&b->d);
}

size_t jb_len(const struct jbuf *b)
{
	return dynbuf_len(&b->d);
}

char *jb_take(struct jbuf *b, size_t *len)
{
	return dynbuf_take(&b->d, len);
}

void jb_free(struct jbuf *b)
{
	dynbuf_free(&b->d);
}
