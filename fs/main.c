/* main.c — `regfs [options] URL MOUNTPOINT`: pre-mount checks, the FUSE
 * session, its request loop and the teardown (options: options.c).
 *
 * Order matters: everything that can fail for a reason the user should see
 * (bad options, registry unreachable, credentials refused, mountpoint
 * unusable) happens before fuse_daemonize(), while stderr is still the
 * terminal, so the user gets one line and exit status 1 with nothing
 * mounted. mount.fuse3 (fstab: `URL /mnt fuse.regfs opts` or
 * `regfs#URL /mnt fuse opts`) calls us as `regfs URL MOUNTPOINT -o opts`,
 * so every long option is also accepted as -o name=value (options.c). */
#include "options.h"

#include <errno.h>
#include <fcntl.h>
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
static int mountpoint_check(const char *arg, struct mount_opts *o, bool force_remount)
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
	const char *auth = sep ? sep + 3 : url;
	const char *at = strchr(auth, '@');
	if (at && at < auth + strcspn(auth, "/")) {
		/* user:pass@host would be in the mount table (fsname), ps and logs */
		fprintf(stderr, "regfs: the registry URL has credentials in it (%.*s@…): give "
			"them with --user USER and --password-file, not in the URL\n",
			(int)strcspn(auth, ":@"), auth);
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

/* Options, URL and mountpoint: 0, or -1 with the reason printed. */
static int args_check(int argc, char **argv, struct cli *c)
{
	const char *url, *mnt;
	if (cli_parse(argc, argv, c, &url, &mnt))
		return -1;
	if (url_normalize(url, &c->o.url))
		return -1;
	if (mountpoint_check(mnt, &c->o, c->force_remount))
		return -1;
	if (!c->o.cache_dir)
		c->o.cache_dir = default_cache_dir();
	return 0;
}

/* The credentials the pre-mount check resolved: the serving client (made
 * after the fork) takes them as they are, so a docker credential helper runs
 * once and cannot answer differently the second time. */
static struct regfs_creds resolved;
static bool resolved_set;

static int client_make(const struct mount_opts *o, struct regfs_client **out,
		       struct regfs_err *e)
{
	struct regfs_client_opts co = {
		.url = o->url, .user = o->user, .pass = o->pass,
		.creds = resolved_set ? &resolved : NULL,
		.ca_cert = o->ca_cert, .insecure = o->insecure,
		.client_cert = o->client_cert, .client_key = o->client_key,
		.timeout_s = o->timeout_s, .max_parallel = o->max_parallel,
	};
	return regfs_client_new(&co, out, e);
}

/* The registry answers, is a registry, and takes our credentials; what it
 * advertises becomes m->registry_version. 0, or -1 with the reason printed. */
static int registry_check(struct mnt *m)
{
	struct regfs_err e = {0};
	struct regfs_client *c = NULL;
	int rc = client_make(&m->o, &c, &e);
	if (rc == 0)
		rc = regfs_client_ping(c, &e);
	if (rc) {
		fprintf(stderr, "regfs: %s\n", regfs_err_str(&e));
		regfs_client_free(c);
		return -1;
	}
	resolved_set = regfs_client_creds(c, &resolved) == 0;
	/* Whatever the registry advertises, named as it names them. */
	char *exts = regfs_client_extensions(c);
	regfs_client_free(c);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (asprintf(&m->registry_version, "registry/2.0 API%s%s", exts && *exts ?
		     " + regfs extensions: " : "", exts ? exts : "") < 0)
		m->registry_version = NULL;
	free(exts);
	return 0;
}

/* Daemonized, or asked for with --log-file: the log goes to a file (by
 * default in the disk cache's directory). -1 when --log-file cannot be
 * opened (printed). */
static int log_open(const struct mnt *m, const char *log_file)
{
	if (!log_file && m->o.foreground)
		return 0;
	char *lf = (char *)log_file;
	if (!lf && m->bc && asprintf(&lf, "%s/regfs.log", m->o.cache_dir) < 0)
		lf = NULL;
	int fd = lf ? open(lf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	if (fd < 0 && log_file) {
		fprintf(stderr, "regfs: cannot open log file %s: %s\n", lf, strerror(errno));
		return -1;
	}
	if (fd >= 0)
		regfs_log_set_fd(fd);
	if (lf != log_file)
		free(lf);
	return 0;
}

/* The inode table and the disk cache (the memory caches need the client:
 * see serve), then the log. The disk cache is optional: without it
 * everything works, only slower and with more requests. */
static int caches_make(struct mnt *m, const char *log_file)
{
	m->mounted_since = time(NULL);
	m->nodes = nodes_new();
	if (!m->nodes) {
		fprintf(stderr, "regfs: out of memory\n");
		return -1;
	}
	m->bc = blob_cache_new(m->o.cache_dir, m->o.cache_size, &m->st);
	return log_open(m, log_file);
}

/* The FUSE session, mounted on the mountpoint (args: FUSE's own options,
 * freed by the caller). 0, or -1 with the reason printed. */
static int session_make(struct mnt *m, const char *argv0, struct fuse_args *args)
{
	char *fsopts = NULL;
	if (asprintf(&fsopts, "fsname=%s,subtype=regfs%s%s", m->o.url,
		     m->o.fuse_opts ? "," : "", m->o.fuse_opts ? m->o.fuse_opts : "") < 0)
		return -1;
	/* FUSE's option parser treats ',' as a separator; a URL has none. */
	if (fuse_opt_add_arg(args, argv0) || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, fsopts)) {
		free(fsopts);
		fprintf(stderr, "regfs: out of memory\n");
		return -1;
	}
	free(fsopts);
	struct fuse_session *se = fuse_session_new(args, &regfs_ops, sizeof regfs_ops, m);
	if (!se) {
		fprintf(stderr, "regfs: bad mount options: %s\n", m->o.fuse_opts ? m->o.fuse_opts : "");
		return -1;
	}
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, m->o.mountpoint) != 0) {
		fprintf(stderr, "regfs: cannot mount on %s (is it already a mount, or not empty?)\n",
			m->o.mountpoint);
		fuse_session_destroy(se);
		return -1;
	}
	m->se = se;
	return 0;
}

static void session_end(struct fuse_session *se)
{
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
}

/* Daemonizes, then makes the client that serves requests (after the fork,
 * so no thread or connection of the parent is inherited) and the memory
 * caches that use it, and serves until unmount. 0, or -1 (logged). */
static int serve(struct mnt *m)
{
	fuse_daemonize(m->o.foreground);
	struct regfs_err e = {0};
	int rc = client_make(&m->o, &m->client, &e);
	if (rc == 0) {
		m->mc = manifest_cache_new(m->client, &m->o, &m->st, m->bc);
		m->nc = m->mc ? names_cache_new(m->client, &m->o, &m->st, m->mc) : NULL;
		/* the layer views (NULL when out of memory: they answer ENOENT) */
		m->lc = layer_cache_new(m->bc ? m->o.cache_dir : NULL, 0, m->bc, &m->st);
		if (!m->nc)
			regfs_errf(&e, -ENOMEM, "out of memory");
	}
	if (rc || !m->nc) {
		log_error("cannot create the registry client: %s", regfs_err_str(&e));
		session_end(m->se);
		return -1;
	}
	if (stats_metrics_start(m, &e)) {
		log_error("%s", regfs_err_str(&e));
		session_end(m->se);
		return -1;
	}
	log_info("mounted %s on %s (ttl %g s, timeout %d s, cache %s)", m->o.url, m->o.mountpoint,
		 m->o.ttl, m->o.timeout_s, m->bc ? m->o.cache_dir : "off");
	reaper_start(m);
	rc = loop_run(m->se, (unsigned)(m->o.max_parallel > 16 ? m->o.max_parallel : 16));
	if (rc)
		log_error("the FUSE request loop stopped: %s", strerror(-rc));
	reaper_stop(m);
	stats_metrics_stop(m);
	walk_shutdown();
	root_probe_shutdown();
	ra_shutdown();
	session_end(m->se);
	log_info("unmounted %s", m->o.mountpoint);
	return rc ? -1 : 0;
}

static void teardown(struct mnt *m, struct cli *c)
{
	regfs_client_free(m->client);
	nodes_free(m->nodes);
	manifest_cache_free(m->mc);
	names_cache_free(m->nc);
	layer_cache_free(m->lc);
	blob_cache_free(m->bc);
	free(m->registry_version);
	c->o = m->o; /* the strings main moved into the mount */
	cli_free(c);
	regfs_creds_free(&resolved);
}

int main(int argc, char **argv)
{
	static struct mnt m;
	static struct cli c;
	/* Many short-lived worker threads (FUSE, batches) would each get a
	 * malloc arena; a few shared ones keep the RSS down. */
	mallopt(M_ARENA_MAX, 2);
	if (args_check(argc, argv, &c))
		return 1;
	/* before anything can fail or wait: out of ps at once */
	argv_hide_password(argc, argv, c.o.pass);
	if (cli_password(&c))
		return 1;
	m.o = c.o;
	regfs_log_set_level(m.o.debug ? REGFS_LOG_DEBUG : REGFS_LOG_INFO);
	if (registry_check(&m) || caches_make(&m, c.log_file))
		return 1;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	if (session_make(&m, argv[0], &args)) {
		fuse_opt_free_args(&args);
		return 1;
	}
	int rc = serve(&m);
	fuse_opt_free_args(&args);
	if (m.nc) /* else serve has left at once (logged) */
		teardown(&m, &c);
	return rc ? 1 : 0;
}
