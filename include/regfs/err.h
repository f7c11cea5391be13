/* err.h — error reporting shared by every libregfs module.
 *
 * Convention: functions return 0 on success or a negative errno-style code
 * (-ENOENT, -EIO, -EINVAL, ...). When the caller passes a non-NULL
 * `struct regfs_err *`, the failing function fills it with a message a user can
 * act on: what failed, on what, and what to do. The first error set wins
 * (inner functions are closest to the cause); callers may add context with
 * regfs_err_prefix(). A NULL err pointer is always allowed. */
#ifndef REGFS_ERR_H
#define REGFS_ERR_H

#include <stddef.h>

struct regfs_err {
	int code;       /* negative errno, 0 when nothing failed */
	char msg[512];  /* NUL-terminated, empty when nothing failed */
};

/* Fill `e` (if non-NULL and still empty) and return `code` (negative errno),
 * so a failure can be reported in one statement:
 *     return regfs_errf(err, -ENOENT, "blob %s not found", digest);      */
int regfs_errf(struct regfs_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context ("while pushing x: ") to an already-set message. */
void regfs_err_prefix(struct regfs_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reset to "no error". */
void regfs_err_clear(struct regfs_err *e);

/* The message if set, else strerror(-code), else "unknown error". Never NULL. */
const char *regfs_err_str(const struct regfs_err *e);

#endif
