/* htpasswd.h — the pieces of auth.htpasswd that need no server: the line
 * parser and the bcrypt check (registry/auth_htpasswd.c; unit tests and
 * the fuzz target call them directly). */
#ifndef REGFS_HTPASSWD_H
#define REGFS_HTPASSWD_H

#include <stdbool.h>

enum htpasswd_line {
	HTPASSWD_SKIP,      /* blank or a # comment */
	HTPASSWD_BCRYPT,    /* user:$2y$… (or $2a$, $2b$): usable */
	HTPASSWD_OTHER,     /* user:<another scheme> (MD5, SHA1, crypt, plain): refused */
	HTPASSWD_BAD,       /* no colon, empty user or hash, a control character */
};

/* Splits one line (no newline; a trailing \r is dropped) in place: *user and
 * *hash point into `line` for BCRYPT and OTHER. */
enum htpasswd_line htpasswd_parse_line(char *line, char **user, char **hash);

/* true when `pass` matches the bcrypt `hash` (libcrypt; the comparison of
 * the result is constant-time). false for any failure (not bcrypt, out of
 * memory). Costs what the hash's cost factor says (milliseconds). */
bool htpasswd_verify(const char *hash, const char *pass);

#endif
