/* fmt.c — formatted allocation (fmt.h). */
#include <regfs/fmt.h>

#include <stdio.h>
#include <stdlib.h>

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL; /* glibc leaves s undefined on failure */
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}
