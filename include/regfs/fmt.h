/* fmt.h — formatted allocation: one malloc'd string from a printf format, for
 * paths, URLs and messages built in one statement.
 *
 * The result is the caller's to free(). The only failure is running out of
 * memory (or an encoding error in the format): the functions then return NULL,
 * so callers check once, typically together with the other allocations:
 *     char *p = xasprintf("%s/%s", dir, name);
 *     if (!p)
 *             return -ENOMEM;                                              */
#ifndef REGFS_FMT_H
#define REGFS_FMT_H

#include <stdarg.h>

char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
