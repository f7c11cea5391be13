/* main.c — `regfs [options] URL MOUNTPOINT`: options, pre-mount checks,
 * the FUSE session and its multithreaded loop.
 *
 * Order matters: everything that can fail for a reason the user should see
 * (bad options, registry unreachable, credentials refused, mountpoint
 * unusable) happens before fuse_daemonize(), while stderr is still the
 * terminal, so the user gets one line and exit status 1 with nothing
 * mounted. mount.fuse3 (fstab: `URL /mnt fuse.regfs opts` or
 * `regfs#URL /mnt fuse opts`) calls us as `regfs URL MOUNTPOINT -o opts`,
 * so every long option is also accepted as -o name=value. */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regfs/log.h>

extern const struct fuse_lowlevel_ops regfs_ops;


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
"                         ~/.docker/config.json auths, else anonymous)\n"
"      --ca-cert FILE     trust this CA bundle for https\n"
"      --insecure         do not verify TLS certificates\n"
"      --ttl SECONDS      how long catalog and tag lists are cached (10)\n"
"      --timeout SECONDS  per-request timeout; an op fails with EIO after it (10)\n"
"      --cache-dir DIR    disk cache for manifests and blobs\n"
"                         ($XDG_CACHE_HOME/regfs, ~/.cache/regfs, root: /var/cache/regfs)\n"
"      --cache-size SIZE  cap of the disk cache, LRU (1G; K/M/G/T suffixes; 0 = off)\n"
"      --max-parallel N   concurrent requests in a batch (16)\n"
"      --log-file FILE    log here (default when daemonized: CACHE_DIR/regfs.log)\n"
"      --protect GLOBS    tags rm/mv/rmdir must not touch: EPERM (e.g. 'latest,prod*';\n"
"                         in -o form separate them with ':')\n"
"      --force-remount    if MOUNTPOINT is a stale FUSE mount (its regfs was killed:\n"
"                         \"Transport endpoint is not connected\"), unmount it first\n"
"      --version          print the version\n"
"  -h, --help             this help\n"
"\n"
"Unmount with: fusermount3 -u MOUNTPOINT  (or umount MOUNTPOINT as root)\n");
}

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

static int parse_num(const char *s, double min, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < min)
		return -EINVAL;
	*out = v;
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

static void set_user(struct mount_opts *o, const char *v)
{
	free(o->user);
	free(o->pass);
	o->pass = NULL;
	o->user = strdup(v);
	char *colon = o->user ? strchr(o->user, ':') : NULL;
	if (colon) {
		*colon = 0;
		o->pass = strdup(colon + 1);
	}
}

static char *log_file;
static bool force_remount; /* --force-remount: clear a stale FUSE mount first */

/* One of our long options by name (from --name or -o name=value).
 * Returns 1 when it was ours, 0 when not, -1 on a bad value (message printed). */
static int our_opt(struct mount_opts *o, const char *name, const char *val)
{
	double d;
#define NEEDV do { if (!val) { fprintf(stderr, "regfs: option %s needs a value\n", name); return -1; } } while (0)
	if (!strcmp(name, "user") || !strcmp(name, "username")) {
		if (!val)
			return 0; /* fstab's "user" (let users mount): not ours */
		set_user(o, val);
	} else if (!strcmp(name, "ca-cert") || !strcmp(name, "ca_cert")) {
		NEEDV;
		free(o->ca_cert);
		o->ca_cert = strdup(val);
	} else if (!strcmp(name, "insecure")) {
		o->insecure = true;
	} else if (!strcmp(name, "ttl")) {
		NEEDV;
		if (parse_num(val, 0, &d)) {
			fprintf(stderr, "regfs: --ttl %s: expected seconds >= 0\n", val);
			return -1;
		}
		o->ttl = d;
	} else if (!strcmp(name, "timeout")) {
		NEEDV;
		if (parse_num(val, 1, &d)) {
			fprintf(stderr, "regfs: --timeout %s: expected seconds >= 1\n", val);
			return -1;
		}
		o->timeout_s = (int)d;
	} else if (!strcmp(name, "cache-dir") || !strcmp(name, "cache_dir")) {
		NEEDV;
		free(o->cache_dir);
		o->cache_dir = strdup(val);
	} else if (!strcmp(name, "cache-size") || !strcmp(name, "cache_size")) {
		NEEDV;
		if (parse_size(val, &o->cache_size)) {
			fprintf(stderr, "regfs: --cache-size %s: expected a size like 512M or 2G\n", val);
			return -1;
		}
	} else if (!strcmp(name, "max-parallel") || !strcmp(name, "max_parallel")) {
		NEEDV;
		if (parse_num(val, 1, &d) || d > 256) {
			fprintf(stderr, "regfs: --max-parallel %s: expected 1..256\n", val);
			return -1;
		}
		o->max_parallel = (int)d;
	} else if (!strcmp(name, "protect")) {
		NEEDV;
		free(o->protect);
		o->protect = strdup(val);
	} else if (!strcmp(name, "log-file") || !strcmp(name, "log_file")) {
		NEEDV;
		free(log_file);
		log_file = strdup(val);
	} else if (!strcmp(name, "force-remount") || !strcmp(name, "force_remount")) {
		force_remount = true;
	} else if (!strcmp(name, "debug")) {
		o->debug = true;
	} else if (!strcmp(name, "foreground")) {
		o->foreground = true;
	} else {
		return 0;
	}
	return 1;
#undef NEEDV
}

/* -o a,b=c,...: ours are taken, fstab-only ones dropped, the rest go to FUSE. */
static int parse_o(struct mount_opts *o, const char *arg)
{
	char *s = strdup(arg), *save = NULL;
	if (!s)
		return -1;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = 0;
		int r = our_opt(o, t, eq ? eq + 1 : NULL);
		if (r < 0) {
			free(s);
			return -1;
		}
		if (eq)
			*eq = '=';
		if (r)
			continue;
		static const char *const drop[] = {"defaults", "auto", "noauto", "nofail", "_netdev",
						   "user", "users", "nouser", "rw", "owner", NULL};
		bool dropped = false;
		for (int i = 0; drop[i]; i++)
			dropped |= strcmp(t, drop[i]) == 0;
		if (dropped || !strncmp(t, "x-", 2) || !strncmp(t, "comment=", 8))
			continue;
		if (!strcmp(t, "ro"))
			o->ro = true;
		append_fuse_opt(o, t);
	}
	free(s);
	return 0;
}

static char *default_cache_dir(void)
{
	char *d = NULL;
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	if (x && *x) {
		if (asprintf(&d, "%s/regfs", x) < 0)
			d = NULL;
	} else if (geteuid() == 0 || !h || !*h) {
		d = strdup("/var/cache/regfs");
	} else if (asprintf(&d, "%s/.cache/regfs", h) < 0) {
		d = NULL;
	}
	return d;
}

/* Mount table line of `path` (fields 5 and 9, 10 of /proc/self/mountinfo,
 * octal escapes undone): 0 when found, -ENOENT when path is no mount point. */
static int mount_lookup(const char *path, char *fstype, size_t ftn, char *source, size_t sn)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;
	while (rc && getline(&line, &cap, f) > 0) {
		char mp[4096], ft[256], src[1024];
		/* id parent maj:min root MOUNTPOINT opts [optional...] - FSTYPE SOURCE superopts */
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%255s %1023s", ft, src) != 2)
			continue;
		char un[4096];
		size_t j = 0;
		for (size_t i = 0; mp[i] && j + 1 < sizeof un; i++) {
			if (mp[i] == '\\' && mp[i + 1] >= '0' && mp[i + 1] <= '3' && mp[i + 2] && mp[i + 3]) {
				un[j++] = (char)(((mp[i + 1] - '0') << 6) | ((mp[i + 2] - '0') << 3) | (mp[i + 3] - '0'));
				i += 3;
			} else {
				un[j++] = mp[i];
			}
		}
		un[j] = 0;
		if (strcmp(un, path) == 0) {
			snprintf(fstype, ftn, "%s", ft);
			snprintf(source, sn, "%s", src);
			rc = 0; /* the last match wins (mounts stack): keep reading */
			continue;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* Runs `fusermount3 -u path`; 0 when it unmounted. */
static int run_fusermount_u(const char *path)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", path, (char *)NULL);
		fprintf(stderr, "regfs: cannot run fusermount3: %s\n", strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EBUSY;
}

/* The absolute path of `arg`, also when it is a dead FUSE mount (whose own
 * stat fails with ENOTCONN, so realpath of it fails too). */
static char *abs_mountpoint(const char *arg)
{
	char *p = realpath(arg, NULL);
	if (p || errno != ENOTCONN)
		return p;
	char *dup = strdup(arg), *slash = dup ? strrchr(dup, '/') : NULL;
	while (slash && slash > dup && slash[1] == 0) { /* "mnt/" */
		*slash = 0;
		slash = strrchr(dup, '/');
	}
	const char *base = slash ? slash + 1 : dup;
	char *dir = slash ? (slash == dup ? strdup("/") : strndup(dup, (size_t)(slash - dup))) : strdup(".");
	char *rdir = dir ? realpath(dir, NULL) : NULL;
	if (rdir && asprintf(&p, "%s%s%s", rdir, strcmp(rdir, "/") ? "/" : "", base) < 0)
		p = NULL;
	free(rdir);
	free(dir);
	free(dup);
	errno = ENOTCONN;
	return p;
}

/* The mountpoint must be a directory we can mount on: refused here, before
 * daemonizing, so the user sees why (a regular file would mount and then
 * answer EIO to everything). A dead FUSE mount left by a killed regfs
 * (ENOTCONN) is named as such, and cleared with --force-remount; a live one
 * is refused (mounting over it would hide it). */
static int mountpoint_check(const char *arg, struct mount_opts *o)
{
	o->mountpoint = abs_mountpoint(arg);
	if (!o->mountpoint) {
		fprintf(stderr, "regfs: mountpoint %s: %s (create it with mkdir -p)\n", arg,
			strerror(errno));
		return -1;
	}
	const char *mp = o->mountpoint;
	char ft[256] = "", src[1024] = "";
	struct statfs sfs;
	/* statfs always reaches the FUSE daemon (stat may be answered from
	 * the kernel's cache even when the daemon is dead). */
	if (mount_lookup(mp, ft, sizeof ft, src, sizeof src) == 0 && strncmp(ft, "fuse", 4) == 0) {
		if (statfs(mp, &sfs) == 0 || errno != ENOTCONN) {
			fprintf(stderr, "regfs: %s is already mounted (%s %s): unmount it first with "
				"`fusermount3 -u %s`\n", mp, ft, src, mp);
			return -1;
		}
		if (!force_remount) {
			fprintf(stderr, "regfs: %s is a stale FUSE mount (%s %s): Transport endpoint "
				"is not connected (the process that served it is gone). Unmount it "
				"with `fusermount3 -u %s`, or run regfs with --force-remount\n",
				mp, ft, src, mp);
			return -1;
		}
		if (run_fusermount_u(mp) != 0) {
			fprintf(stderr, "regfs: --force-remount: cannot unmount the stale mount %s "
				"(fusermount3 -u failed, see above): try `umount -l %s` as root\n", mp, mp);
			return -1;
		}
		fprintf(stderr, "regfs: unmounted the stale mount on %s (--force-remount)\n", mp);
	}
	struct stat st;
	if (stat(mp, &st) != 0) {
		fprintf(stderr, "regfs: mountpoint %s: %s\n", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "regfs: mountpoint %s is not a directory: regfs mounts a directory "
			"tree, so mount it on an (empty) directory (mkdir -p DIR)\n", mp);
		return -1;
	}
	return 0;
}

/* mount.fuse3 passes "regfs#URL"-style sources already split; a bare
 * host:port means https. Any other scheme is refused here: prefixing it with
 * https:// would send the user after a "cannot resolve host ftp" error. */
static int url_normalize(const char *url, char **out)
{
	const char *sep = strstr(url, "://");
	if (sep && strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8)) {
		fprintf(stderr, "regfs: %s: unsupported URL scheme %.*s:// (a registry speaks "
			"http:// or https://, e.g. https://%s)\n", url, (int)(sep - url), url, sep + 3);
		return -1;
	}
	int n = sep ? asprintf(out, "%s", url) : asprintf(out, "https://%s", url);
	if (n < 0)
		return -1;
	size_t ul = strlen(*out);
	while (ul > 8 && (*out)[ul - 1] == '/')
		(*out)[--ul] = 0;
	return 0;
}

static int parse_args(int argc, char **argv, struct mount_opts *o)
{
	enum { O_USER = 1000, O_CA, O_INSECURE, O_TTL, O_TIMEOUT, O_CDIR, O_CSIZE, O_MAXPAR,
	       O_PROTECT, O_LOG, O_VERSION, O_FORCE };
	static const struct option lo[] = {
		{"foreground", no_argument, 0, 'f'}, {"debug", no_argument, 0, 'd'},
		{"help", no_argument, 0, 'h'},       {"version", no_argument, 0, O_VERSION},
		{"user", required_argument, 0, O_USER}, {"ca-cert", required_argument, 0, O_CA},
		{"insecure", no_argument, 0, O_INSECURE}, {"ttl", required_argument, 0, O_TTL},
		{"timeout", required_argument, 0, O_TIMEOUT},
		{"cache-dir", required_argument, 0, O_CDIR},
		{"cache-size", required_argument, 0, O_CSIZE},
		{"max-parallel", required_argument, 0, O_MAXPAR},
		{"protect", required_argument, 0, O_PROTECT},
		{"log-file", required_argument, 0, O_LOG},
		{"force-remount", no_argument, 0, O_FORCE}, {0, 0, 0, 0},
	};
	o->ttl = 10;
	o->timeout_s = 10;
	o->max_parallel = 16;
	o->cache_size = 1ull << 30;
	int c, idx;
	while ((c = getopt_long(argc, argv, "fdho:Vs", lo, &idx)) != -1) {
		switch (c) {
		case 'f': o->foreground = true; break;
		case 'd': o->debug = true; break;
		case 's': break; /* single-threaded: accepted for FUSE habit, ignored */
		case 'h': usage(stdout); exit(0);
		case 'V': case O_VERSION: printf("regfs %s\n", REGFS_VERSION); exit(0);
		case 'o':
			if (parse_o(o, optarg))
				return -1;
			break;
		case '?': usage(stderr); return -1;
		default:
			if (our_opt(o, lo[idx].name, optarg) < 0)
				return -1;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "regfs: expected URL and MOUNTPOINT (see regfs --help)\n");
		return -1;
	}
	if (url_normalize(argv[optind], &o->url))
		return -1;
	if (mountpoint_check(argv[optind + 1], o))
		return -1;
	if (!o->cache_dir)
		o->cache_dir = default_cache_dir();
	return 0;
}

static int client_make(const struct mount_opts *o, struct regfs_client **out,
		       struct regfs_err *e)
{
	struct regfs_client_opts co = {
		.url = o->url, .user = o->user, .pass = o->pass,
		.ca_cert = o->ca_cert, .insecure = o->insecure,
		.timeout_s = o->timeout_s, .max_parallel = o->max_parallel,
	};
	return regfs_client_new(&co, out, e);
}

int main(int argc, char **argv)
{
	static struct mnt m;
	/* Many short-lived worker threads (FUSE, batches) would each get a
	 * malloc arena; a few shared ones keep the RSS down. */
	mallopt(M_ARENA_MAX, 2);
	if (parse_args(argc, argv, &m.o))
		return 1;
	regfs_log_set_level(m.o.debug ? REGFS_LOG_DEBUG : REGFS_LOG_INFO);

	/* 1. The registry answers, is a registry, and takes our credentials. */
	struct regfs_err e = {0};
	struct regfs_client *c = NULL;
	int rc = client_make(&m.o, &c, &e);
	if (rc == 0)
		rc = regfs_client_ping(c, &e);
	if (rc) {
		fprintf(stderr, "regfs: %s\n", regfs_err_str(&e));
		regfs_client_free(c);
		return 1;
	}
	/* Whatever the registry advertises, named as it names them. */
	char *exts = regfs_client_extensions(c);
	regfs_client_free(c);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (asprintf(&m.registry_version, "registry/2.0 API%s%s", exts && *exts ?
		     " + regfs extensions: " : "", exts ? exts : "") < 0)
		m.registry_version = NULL;
	free(exts);

	/* 2. The disk cache (the memory caches need the client: step 4). It is
	 * optional: without it everything works, only slower and with more
	 * requests. */
	m.mounted_since = time(NULL);
	m.nodes = nodes_new();
	if (!m.nodes) {
		fprintf(stderr, "regfs: out of memory\n");
		return 1;
	}
	m.bc = bcache_new(m.o.cache_dir, m.o.cache_size, &m.st);
	if (log_file || !m.o.foreground) {
		char *lf = log_file;
		if (!lf && m.bc && asprintf(&lf, "%s/regfs.log", m.o.cache_dir) < 0)
			lf = NULL;
		int fd = lf ? open(lf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
		if (fd < 0 && log_file) {
			fprintf(stderr, "regfs: cannot open log file %s: %s\n", lf, strerror(errno));
			return 1;
		}
		if (fd >= 0)
			regfs_log_set_fd(fd);
		if (lf != log_file)
			free(lf);
	}

	/* 3. Mount. */
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char *fsopts = NULL;
	if (asprintf(&fsopts, "fsname=%s,subtype=regfs%s%s", m.o.url,
		     m.o.fuse_opts ? "," : "", m.o.fuse_opts ? m.o.fuse_opts : "") < 0)
		return 1;
	/* FUSE's option parser treats ',' as a separator; a URL has none. */
	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, fsopts)) {
		fprintf(stderr, "regfs: out of memory\n");
		return 1;
	}
	free(fsopts);
	struct fuse_session *se = fuse_session_new(&args, &regfs_ops, sizeof regfs_ops, &m);
	if (!se) {
		fprintf(stderr, "regfs: bad mount options: %s\n", m.o.fuse_opts ? m.o.fuse_opts : "");
		fuse_opt_free_args(&args);
		return 1;
	}
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, m.o.mountpoint) != 0) {
		fprintf(stderr, "regfs: cannot mount on %s (is it already a mount, or not empty?)\n",
			m.o.mountpoint);
		fuse_session_destroy(se);
		fuse_opt_free_args(&args);
		return 1;
	}
	/* 4. Daemonize, then make the client that serves requests (after the
	 * fork, so no thread or connection of the parent is inherited) and the
	 * memory caches that use it. */
	m.se = se;
	fuse_daemonize(m.o.foreground);
	rc = client_make(&m.o, &m.client, &e);
	if (rc == 0) {
		m.mc = mcache_new(m.client, &m.o, &m.st, m.bc);
		m.nc = m.mc ? ncache_new(m.client, &m.o, &m.st, m.mc) : NULL;
		if (!m.nc)
			regfs_errf(&e, -ENOMEM, "out of memory");
	}
	if (rc || !m.nc) {
		log_error("cannot create the registry client: %s", regfs_err_str(&e));
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
		return 1;
	}
	log_info("mounted %s on %s (ttl %g s, timeout %d s, cache %s)", m.o.url, m.o.mountpoint,
		 m.o.ttl, m.o.timeout_s, m.bc ? m.o.cache_dir : "off");

	rc = loop_run(se, (unsigned)(m.o.max_parallel > 16 ? m.o.max_parallel : 16));
	if (rc)
		log_error("the FUSE request loop stopped: %s", strerror(-rc));

	walk_shutdown();
	root_probe_shutdown();
	ra_shutdown();
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	log_info("unmounted %s", m.o.mountpoint);

	regfs_client_free(m.client);
	nodes_free(m.nodes);
	mcache_free(m.mc);
	ncache_free(m.nc);
	bcache_free(m.bc);
	free(m.registry_version);
	free(m.o.url);
	free(m.o.mountpoint);
	free(m.o.user);
	free(m.o.pass);
	free(m.o.ca_cert);
	free(m.o.cache_dir);
	free(m.o.protect);
	free(m.o.fuse_opts);
	free(log_file);
	return rc ? 1 : 0;
}
