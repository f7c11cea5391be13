/* auth_parse.c — the parsers of what clients and files hand to
 * authentication: the Basic Authorization header (auth.h) and the htpasswd
 * line (htpasswd.h). Pure (no I/O, no allocation): the fuzz target
 * tests/fuzz/fuzz_authorization.c compiles this file with lib/base/base64.c. */
#include "auth.h"
#include "htpasswd.h"

#include <regfs/base64.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Standard base64 (padding optional) into out[cap-1] + NUL; length or -EINVAL. */
static long b64_decode(const char *in, char *out, size_t cap)
{
	ssize_t n = regfs_base64_decode(in, strlen(in), false, (unsigned char *)out, cap - 1);
	if (n < 0)
		return -EINVAL;
	out[n] = '\0';
	return (long)n;
}

int auth_basic_parse(const char *authorization, char *user, size_t usercap, char *pass,
		     size_t passcap)
{
	if (!authorization || strncasecmp(authorization, "Basic ", 6))
		return -EINVAL;
	const char *p = authorization + 6;
	while (*p == ' ')
		p++;
	char buf[1024];
	if (strlen(p) > 4 * (sizeof buf / 3))
		return -EINVAL;
	long n = b64_decode(p, buf, sizeof buf);
	int rc = -EINVAL;
	char *colon = n > 0 ? memchr(buf, ':', (size_t)n) : NULL;
	if (colon && (size_t)n == strlen(buf)) { /* no NUL inside */
		size_t ul = (size_t)(colon - buf), pl = (size_t)n - ul - 1;
		bool ctl = false;
		for (long i = 0; i < n; i++)
			ctl = ctl || (unsigned char)buf[i] < 0x20 || buf[i] == 0x7f;
		if (!ctl && ul < usercap && pl < passcap) {
			memcpy(user, buf, ul);
			user[ul] = '\0';
			memcpy(pass, colon + 1, pl);
			pass[pl] = '\0';
			rc = 0;
		}
	}
	explicit_bzero(buf, sizeof buf);
	return rc;
}

enum htpasswd_line htpasswd_parse_line(char *line, char **user, char **hash)
{
	size_t len = strlen(line);
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	const char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || *p == '#')
		return HTPASSWD_SKIP;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return HTPASSWD_BAD;
	char *colon = strchr(line, ':');
	if (!colon || colon == line || !colon[1])
		return HTPASSWD_BAD;
	*colon = '\0';
	*user = line;
	*hash = colon + 1;
	if (!strncmp(*hash, "$2y$", 4) || !strncmp(*hash, "$2a$", 4) || !strncmp(*hash, "$2b$", 4))
		return HTPASSWD_BCRYPT;
	return HTPASSWD_OTHER;
}
