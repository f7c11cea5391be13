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

#endif
