/* password.c — where the mount's password comes from when --user gives none,
 * and keeping the one given on the command line out of `ps`.
 *
 *   --user USER:PASS          on the command line (then hidden, below)
 *   --user USER --password-file FILE   FILE's first line; "-" reads stdin
 *                             (docker login's --password-stdin)
 *   --user USER on a terminal asked for, echo off, before daemonizing
 *   --user USER otherwise     an empty password (tokens-only registries)
 *
 * `-o password=…` is refused (options.c): an fstab line is world-readable.
 * The process title: argv is the memory `ps` and /proc/PID/cmdline read, so
 * the password is overwritten there in place ("alice:s3cret" becomes
 * "alice:***") once the options were copied. Between exec and that moment
 * it is visible, as with every program that takes a secret in argv: the
 * other sources do not have that window. */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The first line of f (without its end of line), malloc'd; NULL on error. */
static char *read_line(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	if (n < 0) {
		if (line)
			explicit_bzero(line, cap);
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int from_file(struct mount_opts *o)
{
	bool std = strcmp(o->password_file, "-") == 0;
	FILE *f = std ? stdin : fopen(o->password_file, "re");
	if (!f) {
		fprintf(stderr, "regfs: --password-file %s: %s\n", o->password_file, strerror(errno));
		return -1;
	}
	o->pass = read_line(f);
	if (!std)
		fclose(f);
	if (!o->pass) {
		fprintf(stderr, "regfs: --password-file %s: no password in it (the first line "
			"is the password)\n", o->password_file);
		return -1;
	}
	return 0;
}

/* Asks on the terminal with echo off; restores it whatever happens. */
static int from_terminal(struct mount_opts *o)
{
	struct termios old, quiet;
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return 0;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	/* echo off before the prompt: what is typed after it is never shown */
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	fprintf(stderr, "Password for %s at %s: ", o->user, o->url ? o->url : "the registry");
	fflush(stderr);
	o->pass = read_line(stdin);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	if (!o->pass) {
		fprintf(stderr, "regfs: no password read from the terminal\n");
		return -1;
	}
	return 0;
}

int cli_password(struct cli *c)
{
	struct mount_opts *o = &c->o;
	if (o->password_file && !o->user) {
		fprintf(stderr, "regfs: --password-file needs --user USER (the password of whom?)\n");
		return -1;
	}
	if (o->password_file && o->pass) {
		fprintf(stderr, "regfs: --user USER:PASS and --password-file both give a password: "
			"give it once\n");
		return -1;
	}
	if (!o->user || o->pass)
		return 0;
	if (o->password_file)
		return from_file(o);
	return isatty(STDIN_FILENO) ? from_terminal(o) : 0;
}

/* Overwrites each ":PASS" in s with ":***" (fewer stars for a shorter one),
 * moving the rest of s left and zeroing the bytes freed at its end. */
static void hide_in(char *s, const char *pass, size_t pl)
{
	size_t len = strlen(s);
	for (char *p = strstr(s, pass); p; p = strstr(p, pass)) {
		if (p == s || p[-1] != ':') {
			p++;
			continue;
		}
		size_t ml = pl < 3 ? pl : 3;
		memset(p, '*', ml);
		memmove(p + ml, p + pl, strlen(p + pl) + 1);
		p += ml;
	}
	size_t now = strlen(s);
	memset(s + now, 0, len - now);
}

void argv_hide_password(int argc, char **argv, const char *pass)
{
	size_t pl = pass ? strlen(pass) : 0;
	if (!pl)
		return;
	for (int i = 1; i < argc; i++)
		hide_in(argv[i], pass, pl);
}
