/* options.h — the regfs command line: every option, its default, its -o
 * form and its error message, from one table (fs/options.c). */
#ifndef REGFS_FS_OPTIONS_H
#define REGFS_FS_OPTIONS_H

#include "mount.h"

/* What the command line sets: the mount's options and the two that only
 * main needs. The strings are malloc'd; cli_free releases them. */
struct cli {
	struct mount_opts o;
	char *log_file;      /* --log-file, NULL: default */
	bool force_remount;  /* --force-remount: clear a stale FUSE mount first */
};

/* Parses argv into c (defaults first). --help and --version print and exit
 * 0. Returns 0, or -1 after printing one line (or the usage) to stderr.
 * Positional URL and MOUNTPOINT are left for the caller: *url_arg and
 * *mnt_arg point into argv. */
int cli_parse(int argc, char **argv, struct cli *c, const char **url_arg, const char **mnt_arg);
void cli_free(struct cli *c);

/* password.c: the password when --user gave none (--password-file, else the
 * terminal, else empty) into c->o.pass. 0, or -1 after printing one line. */
int cli_password(struct cli *c);
/* Overwrites every ":pass" in argv[1..] in place with ":***" so that ps and
 * /proc/PID/cmdline do not show it (call after cli_parse copied it). */
void argv_hide_password(int argc, char **argv, const char *pass);

#endif
