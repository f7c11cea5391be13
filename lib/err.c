/* err.c — struct regfs_err: setting the first error, adding context in front
 * of it, clearing and printing it. See include/regfs/err.h. */
#include <regfs/err.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int regfs_errf(struct regfs_err *e, int code, const char *fmt, ...)
{
	if (!e || e->code != 0)
		return code;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return code;
}

void regfs_err_prefix(struct regfs_err *e, const char *fmt, ...)
{
	if (!e || e->code == 0)
		return;
	char prefix[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	/* Shift the message right, then copy the prefix in front (truncating). */
	size_t pl = strlen(prefix), ml = strlen(e->msg);
	if (pl >= sizeof e->msg)
		pl = sizeof e->msg - 1;
	if (pl + ml >= sizeof e->msg)
		ml = sizeof e->msg - 1 - pl;
	memmove(e->msg + pl, e->msg, ml);
	memcpy(e->msg, prefix, pl);
	e->msg[pl + ml] = '\0';
}

void regfs_err_clear(struct regfs_err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}

const char *regfs_err_str(const struct regfs_err *e)
{
	if (!e)
		return "unknown error";
	if (e->msg[0])
		return e->msg;
	if (e->code)
		return strerror(-e->code);
	return "unknown error";
}
