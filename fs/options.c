/* options.c — the command line of regfs: one table of options.
 *
 * Each option is one row: its --name (also its -o name), an -o alias with
 * '_' for fstab, what it sets (a field of struct cli, by offset, as
 * libfuse's fuse_opt tables do) and how its value is read and checked. Both
 * forms are parsed from the table: `--name VALUE` through getopt_long (whose
 * long-option array is built from the rows) and `-o name=value,...`, which
 * mount.fuse3 uses for fstab lines (`URL /mnt fuse.regfs opts`). -o options
 * that are not ours go to FUSE; fstab-only words are dropped. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/log.h>

static void usage(FILE *f)
{
	fprintf(f,
"usage: regfs [options] URL MOUNTPOINT\n"
"Mount a container registry (OCI distribution API) as a directory tree.\n"
"\n"
"  -f, --foreground       stay in the foreground (default: daemonize)\n"
"  -d, --debug            debug log (requests, cache decisions)\n"
"  -o OPT[,OPT...]        mount options: FUSE ones (allow_other, ro, ...) and\n"
"                         any long option below as name=value (for fstab)\n"
"      --user USER[:PASS] credentials (else REGFS_USERNAME/REGFS_PASSWORD, else\n"
"                         ~/.docker/config.json credHelpers, credsStore, auths, else\n"
"                         anonymous); without :PASS the password comes from\n"
"                         --password-file, else it is asked on the terminal\n"
"      --password-file FILE  the password is FILE's first line (- = stdin)\n"
"      --ca-cert FILE     trust this CA bundle for https\n"
"      --client-cert FILE TLS client certificate (PEM) for registries that ask one\n"
"      --client-key FILE  its key (PEM; default: in the --client-cert file)\n"
"      --insecure         do not verify TLS certificates\n"
"      --ttl SECONDS      how long catalog and tag lists are cached (10)\n"
"      --timeout SECONDS  per-request timeout; an op fails with EIO after it (10)\n"
"      --cache-dir DIR    disk cache for manifests and blobs\n"
"                         ($XDG_CACHE_HOME/regfs, ~/.cache/regfs, root: /var/cache/regfs)\n"
"      --cache-size SIZE  cap of the disk cache, LRU (1G; K/M/G/T suffixes; 0 = off)\n"
"      --max-parallel N   concurrent requests in a batch (16)\n"
"      --memory SIZE      memory budget of the mount's tables and caches (256M;\n"
"                         at least 16M): an eighth bounds the nodes the kernel\n"
"                         is asked to keep, a sixteenth the manifests in memory\n"
"      --log-file FILE    log here (default when daemonized: CACHE_DIR/regfs.log)\n"
"      --protect GLOBS    tags rm/mv/rmdir must not touch: EPERM (e.g. 'latest,prod*';\n"
"                         in -o form separate them with ':')\n"
"      --force-remount    if MOUNTPOINT is a stale FUSE mount (its regfs was killed:\n"
"                         \"Transport endpoint is not connected\"), unmount it first\n"
"      --metrics ADDR     serve the mount's counters as Prometheus text on\n"
"                         http://ADDR/metrics (host:port; keep it on loopback)\n"
"      --version          print the version\n"
"  -h, --help             this help\n"
"\n"
"Unmount with: fusermount3 -u MOUNTPOINT  (or umount MOUNTPOINT as root)\n");
}

/* How a row's value is read into its field. */
enum opt_type {
	OT_FLAG,     /* bool = true; a value is ignored */
	OT_STR,      /* char * = strdup(value) */
	OT_USER,     /* USER[:PASS] into o.user and o.pass */
	OT_SECONDS,  /* double >= min */
	OT_INT,      /* int in [min, max] (a number, truncated) */
	OT_SIZE,     /* uint64_t from 512, 512M, 2GiB, ... (>= min) */
};

struct opt {
	const char *name;   /* --name and -o name */
	const char *alias;  /* -o only (fstab), or NULL */
	int key;            /* getopt_long's answer for it */
	enum opt_type type;
	size_t off;         /* of the field in struct cli */
	double min, max;
	const char *expect; /* "--name VALUE: expected ..." on a bad value */
};

#define F(field) offsetof(struct cli, field)
enum { K_FIRST = 1000, K_VERSION = 999 };
static const struct opt opts[] = {
	{"foreground", NULL, 'f', OT_FLAG, F(o.foreground), 0, 0, NULL},
	{"debug", NULL, 'd', OT_FLAG, F(o.debug), 0, 0, NULL},
	{"user", "username", K_FIRST + 0, OT_USER, 0, 0, 0, NULL},
	{"ca-cert", "ca_cert", K_FIRST + 1, OT_STR, F(o.ca_cert), 0, 0, NULL},
	{"insecure", NULL, K_FIRST + 2, OT_FLAG, F(o.insecure), 0, 0, NULL},
	{"ttl", NULL, K_FIRST + 3, OT_SECONDS, F(o.ttl), 0, INFINITY, "expected seconds >= 0"},
	{"timeout", NULL, K_FIRST + 4, OT_INT, F(o.timeout_s), 1, INFINITY,
	 "expected seconds >= 1"},
	{"cache-dir", "cache_dir", K_FIRST + 5, OT_STR, F(o.cache_dir), 0, 0, NULL},
	{"cache-size", "cache_size", K_FIRST + 6, OT_SIZE, F(o.cache_size), 0, 0,
	 "expected a size like 512M or 2G"},
	{"max-parallel", "max_parallel", K_FIRST + 7, OT_INT, F(o.max_parallel), 1, 256,
	 "expected 1..256"},
	{"protect", NULL, K_FIRST + 8, OT_STR, F(o.protect), 0, 0, NULL},
	{"log-file", "log_file", K_FIRST + 9, OT_STR, F(log_file), 0, 0, NULL},
	{"force-remount", "force_remount", K_FIRST + 10, OT_FLAG, F(force_remount), 0, 0, NULL},
	{"metrics", NULL, K_FIRST + 11, OT_STR, F(o.metrics_addr), 0, 0, NULL},
	{"client-cert", "client_cert", K_FIRST + 12, OT_STR, F(o.client_cert), 0, 0, NULL},
	{"client-key", "client_key", K_FIRST + 13, OT_STR, F(o.client_key), 0, 0, NULL},
	{"password-file", "password_file", K_FIRST + 14, OT_STR, F(o.password_file), 0, 0, NULL},
	{"memory", NULL, K_FIRST + 15, OT_SIZE, F(o.memory_bytes), 16 << 20, 0,
	 "expected a size of at least 16M like 256M or 1G"},
};
#undef F
#define NOPTS (sizeof opts / sizeof opts[0])

/* Words of an fstab line that are for mount(8), not for us or FUSE. */
static const char *const fstab_only[] = {"defaults", "auto", "noauto", "nofail", "_netdev",
					 "user", "users", "nouser", "rw", "owner", NULL};

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1024.0; end++; break;
	case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (*end == 'B' || *end == 'b' || (*end == 'i' && end[1] == 'B'))
		end += *end == 'i' ? 2 : 1;
	if (*end)
		return -EINVAL;
	*out = (uint64_t)(v * mul);
	return 0;
}

/* A number in [min, max]. */
static int parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void set_user(struct mount_opts *o, const char *v)
{
	free(o->user);
	if (o->pass)
		explicit_bzero(o->pass, strlen(o->pass));
	free(o->pass);
	o->pass = NULL;
	o->user = strdup(v);
	char *colon = o->user ? strchr(o->user, ':') : NULL;
	if (colon) {
		*colon = 0;
		o->pass = strdup(colon + 1);
	}
}

/* Stores val into row p's field of c: 0, or -1 on a bad value (printed). */
static int opt_set(const struct opt *p, struct cli *c, const char *val)
{
	char *field = (char *)c + p->off;
	double d;
	switch (p->type) {
	case OT_FLAG:
		*(bool *)field = true;
		return 0;
	case OT_STR:
		free(*(char **)field);
		*(char **)field = strdup(val);
		return 0;
	case OT_USER:
		set_user(&c->o, val);
		return 0;
	case OT_SIZE:
		if (parse_size(val, (uint64_t *)field) == 0 && *(uint64_t *)field >= p->min)
			return 0;
		break;
	case OT_SECONDS:
	case OT_INT:
		if (parse_num(val, p->min, p->max, &d) == 0) {
			if (p->type == OT_INT)
				*(int *)field = (int)d;
			else
				*(double *)field = d;
			return 0;
		}
		break;
	}
	fprintf(stderr, "regfs: --%s %s: %s\n", p->name, val, p->expect);
	return -1;
}

/* One option by name (from --name or -o name=value): 1 when it was ours,
 * 0 when not, -1 on a bad or missing value (message printed). */
static int opt_by_name(struct cli *c, const char *name, const char *val)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *p = &opts[i];
		if (strcmp(name, p->name) && (!p->alias || strcmp(name, p->alias)))
			continue;
		if (p->type == OT_USER && !val)
			return 0; /* fstab's "user" (let users mount): not ours */
		if (p->type != OT_FLAG && !val) {
			fprintf(stderr, "regfs: option %s needs a value\n", name);
			return -1;
		}
		return opt_set(p, c, val) ? -1 : 1;
	}
	return 0;
}

static void append_fuse_opt(struct mount_opts *o, const char *opt)
{
	char *n;
	if (asprintf(&n, "%s%s%s", o->fuse_opts ? o->fuse_opts : "", o->fuse_opts ? "," : "",
		     opt) < 0)
		return;
	free(o->fuse_opts);
	o->fuse_opts = n;
}

static bool is_fstab_only(const char *t)
{
	for (int i = 0; fstab_only[i]; i++)
		if (strcmp(t, fstab_only[i]) == 0)
			return true;
	return !strncmp(t, "x-", 2) || !strncmp(t, "comment=", 8);
}

/* -o a,b=c,...: ours are taken, fstab-only ones dropped, the rest go to FUSE. */
static int parse_o(struct cli *c, const char *arg)
{
	char *s = strdup(arg), *save = NULL;
	if (!s)
		return -1;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = 0;
		if (!strcmp(t, "password") || !strcmp(t, "pass")) {
			fprintf(stderr, "regfs: -o %s= is refused: /etc/fstab is readable by every "
				"user; put the password in a file only root reads and give "
				"password_file=FILE\n", t);
			free(s);
			return -1;
		}
		int r = opt_by_name(c, t, eq ? eq + 1 : NULL);
		if (r < 0) {
			free(s);
			return -1;
		}
		if (eq)
			*eq = '=';
		if (r || is_fstab_only(t))
			continue;
		if (!strcmp(t, "ro"))
			c->o.ro = true;
		append_fuse_opt(&c->o, t);
	}
	free(s);
	return 0;
}

/* getopt_long's table: the rows, then --help and --version. */
static void long_options(struct option *lo)
{
	size_t k = 0;
	for (size_t i = 0; i < NOPTS; i++)
		lo[k++] = (struct option){opts[i].name,
					  opts[i].type == OT_FLAG ? no_argument : required_argument,
					  NULL, opts[i].key};
	lo[k++] = (struct option){"help", no_argument, NULL, 'h'};
	lo[k++] = (struct option){"version", no_argument, NULL, K_VERSION};
	lo[k] = (struct option){0};
}

static const struct opt *opt_by_key(int key)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].key == key)
			return &opts[i];
	return NULL;
}

int cli_parse(int argc, char **argv, struct cli *c, const char **url_arg, const char **mnt_arg)
{
	struct option lo[NOPTS + 3];
	long_options(lo);
	c->o.ttl = 10;
	c->o.timeout_s = 10;
	c->o.max_parallel = 16;
	c->o.cache_size = 1ull << 30;
	c->o.memory_bytes = MOUNT_MEMORY_DEFAULT;
	int k;
	while ((k = getopt_long(argc, argv, "fdho:Vs", lo, NULL)) != -1) {
		const struct opt *p = opt_by_key(k);
		if (p) {
			if (opt_set(p, c, optarg))
				return -1;
			continue;
		}
		switch (k) {
		case 's': break; /* single-threaded: accepted for FUSE habit, ignored */
		case 'h': usage(stdout); exit(0);
		case 'V': case K_VERSION: printf("regfs %s\n", REGFS_VERSION); exit(0);
		case 'o':
			if (parse_o(c, optarg))
				return -1;
			break;
		default: usage(stderr); return -1;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "regfs: expected URL and MOUNTPOINT (see regfs --help)\n");
		return -1;
	}
	*url_arg = argv[optind];
	*mnt_arg = argv[optind + 1];
	return 0;
}

void cli_free(struct cli *c)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].type == OT_STR)
			free(*(char **)((char *)c + opts[i].off));
	/* The fields no option sets by itself. */
	char **rest[] = {&c->o.url, &c->o.mountpoint, &c->o.user, &c->o.fuse_opts};
	for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
		free(*rest[i]);
	if (c->o.pass)
		explicit_bzero(c->o.pass, strlen(c->o.pass));
	free(c->o.pass);
	*c = (struct cli){0};
}
