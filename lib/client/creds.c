/* creds.c — credentials from a docker config.json (what `docker login`
 * writes), looked up the way the docker CLI does for our host[:port]:
 *
 *   credHelpers[host]  → run `docker-credential-<name> get` with the host on
 *                        stdin; it answers {"ServerURL","Username","Secret"}
 *   credsStore         → the same with that helper, for every host
 *   (a helper that has nothing for us, "credentials not found": on to auths)
 *   auths[host]        → "auth": base64(user:password), or "identitytoken"
 *
 * Keys match with or without a scheme and path ("https://reg:5000/v1/" and
 * "reg:5000" are the same host). A Username of "<token>" (or an
 * identitytoken) is an identity token: auth.c sends it as the refresh token
 * of an OAuth2 token request, as docker does.
 *
 * A helper runs with posix_spawnp (no shell; PATH is searched), its stdin
 * fed and stdout/stderr read through pipes under a deadline; one that hangs
 * is killed. Its output held the secret and is wiped. */
#include "internal.h"

#include <regfs/log.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

extern char **environ;

#define HELPER_OUT_MAX (64 * 1024)
#define IDENTITY_USER "<token>"

/* "https://host:port/v1/" or "host:port" → "host:port" (malloc'd). */
static char *host_of(const char *s)
{
	const char *p = strstr(s, "://");
	p = p ? p + 3 : s;
	size_t n = strcspn(p, "/");
	return strndup(p, n);
}

static bool host_matches(const char *key, const char *host)
{
	char *h = host_of(key);
	bool m = h && strcasecmp(h, host) == 0;
	free(h);
	return m;
}

/* Takes user and secret (copies); Username "<token>" marks an identity token. */
static int creds_set(struct regfs_client *c, const char *user, const char *secret,
		     const char *source)
{
	c->identity = strcmp(user, IDENTITY_USER) == 0;
	c->user = strdup(user);
	c->pass = strdup(secret ? secret : "");
	c->cred_source = source;
	return c->user && c->pass ? 0 : -ENOMEM;
}

/* A helper name is one word of the docker-credential-* family: no path, no
 * shell characters. */
static bool helper_name_ok(const char *n)
{
	if (!*n || strlen(n) > 64)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

struct helper_io {
	int in, out, err; /* our ends */
	struct dynbuf stdout_b, stderr_b;
};

/* Feeds host to the helper's stdin without dying of SIGPIPE when it exits
 * before reading (the signal is blocked and a pending one consumed). */
static void helper_feed(int fd, const char *host)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(fd, host, strlen(host));
	(void)w; /* a helper that does not read fails on its own */
	struct timespec zero = {0, 0};
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(fd);
}

/* Reads stdout and stderr until both close or the deadline: 0, or -ETIMEDOUT. */
static int helper_drain(struct helper_io *io, int timeout_s)
{
	int64_t deadline = regfs_http_now_ms() + (int64_t)timeout_s * 1000;
	struct pollfd p[2] = {{io->out, POLLIN, 0}, {io->err, POLLIN, 0}};
	struct dynbuf *b[2] = {&io->stdout_b, &io->stderr_b};
	int open_n = 2;
	while (open_n > 0) {
		int64_t left = deadline - regfs_http_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		int n = poll(p, 2, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < 2 && n > 0; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			char buf[4096];
			ssize_t r = read(p[i].fd, buf, sizeof buf);
			if (r > 0 && dynbuf_add(b[i], buf, (size_t)r) == 0)
				continue;
			if (r < 0 && errno == EINTR)
				continue;
			p[i].fd = -1; /* EOF, error or over the cap */
			open_n--;
		}
	}
	return 0;
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/* Starts prog with three pipes; io gets our ends. 0 or -errno. */
static int helper_spawn(const char *prog, struct helper_io *io, pid_t *pid)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		int e = -errno;
		close_pair(pin);
		close_pair(pout);
		close_pair(perr);
		return e;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* dup2 onto 0/1/2 clears O_CLOEXEC there; the originals close at exec. */
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	char *argv[] = {(char *)prog, (char *)"get", NULL};
	int rc = posix_spawnp(pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (rc) {
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		return -rc;
	}
	io->in = pin[1];
	io->out = pout[0];
	io->err = perr[0];
	return 0;
}

/* The first non-empty line of b, on one line, for messages. */
static void first_line(const struct dynbuf *b, char *out, size_t n)
{
	const char *s = dynbuf_ptr(b);
	size_t len = dynbuf_len(b), i = 0;
	while (i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' '))
		i++;
	size_t j = 0;
	for (; i < len && s[i] != '\n' && s[i] != '\r' && j + 1 < n; i++)
		out[j++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	out[j] = '\0';
}

/* Runs docker-credential-<name> get for c->host: 0 with c's credentials set,
 * 1 when the helper has none for this host, or -errno with err naming the
 * helper and what it said on stderr. */
static int helper_get(struct regfs_client *c, const char *name, const char *which,
		      struct regfs_err *err)
{
	if (!helper_name_ok(name))
		return regfs_errf(err, -EINVAL, "credential helper name \"%s\" is not a "
				  "docker-credential-* name", name);
	char prog[96];
	snprintf(prog, sizeof prog, "docker-credential-%s", name);
	struct helper_io io = {.stdout_b = DYNBUF_INIT(HELPER_OUT_MAX),
			       .stderr_b = DYNBUF_INIT(HELPER_OUT_MAX)};
	pid_t pid;
	int rc = helper_spawn(prog, &io, &pid);
	if (rc)
		return regfs_errf(err, rc, "credential helper %s (from %s) cannot be run: %s: "
				  "is it installed and in PATH?", prog, which,
				  strerror(-rc));
	helper_feed(io.in, c->host);
	rc = helper_drain(&io, c->timeout_s);
	close(io.out);
	close(io.err);
	if (rc == -ETIMEDOUT)
		kill(pid, SIGKILL); /* our own child, by its pid */
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char line[300];
	if (rc == -ETIMEDOUT)
		rc = regfs_errf(err, -ETIMEDOUT, "credential helper %s get %s: no answer within "
				"%d s (killed)", prog, c->host, c->timeout_s);
	else if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		first_line(&io.stdout_b, line, sizeof line);
		if (strcasestr(line, "credentials not found")) {
			rc = 1;
		} else {
			if (dynbuf_len(&io.stderr_b))
				first_line(&io.stderr_b, line, sizeof line);
			rc = regfs_errf(err, -EACCES, "credential helper %s get %s failed (%s %d): %s",
					prog, c->host, WIFEXITED(st) ? "exit" : "signal",
					WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
					line[0] ? line : "(no message)");
		}
	} else if (rc == 0) {
		json_t *j = json_loadb(dynbuf_ptr(&io.stdout_b), dynbuf_len(&io.stdout_b), 0, NULL);
		const char *u = json_string_value(json_object_get(j, "Username"));
		const char *s = json_string_value(json_object_get(j, "Secret"));
		if (!u || !s)
			rc = regfs_errf(err, -EPROTO, "credential helper %s get %s: the answer is not "
					"{\"Username\":…,\"Secret\":…}", prog, c->host);
		else if (creds_set(c, u, s, c->cred_source) != 0)
			rc = regfs_errf(err, -ENOMEM, "out of memory");
		json_decref(j);
	} else {
		rc = regfs_errf(err, rc, "credential helper %s: reading its answer: %s", prog,
				strerror(-rc));
	}
	size_t len;
	char *p = dynbuf_take(&io.stdout_b, &len); /* it held the secret */
	if (p)
		explicit_bzero(p, len);
	free(p);
	dynbuf_free(&io.stderr_b);
	log_debug("client: credential helper %s for %s: %s", prog, c->host,
		  rc == 0 ? "credentials" : rc == 1 ? "none" : "failed");
	return rc;
}

/* auths[host]: "auth" (base64 user:password), "identitytoken", or
 * "username"/"password". 0 (set or nothing there) or -errno. */
static int auths_entry(struct regfs_client *c, const char *path, const char *key, json_t *v,
		       struct regfs_err *err)
{
	const char *a = json_string_value(json_object_get(v, "auth"));
	const char *it = json_string_value(json_object_get(v, "identitytoken"));
	const char *u = json_string_value(json_object_get(v, "username"));
	const char *p = json_string_value(json_object_get(v, "password"));
	if (it && *it)
		return creds_set(c, IDENTITY_USER, it, "docker config identitytoken");
	if (!a || !*a)
		return u ? creds_set(c, u, p, "docker config") : 0;
	size_t n = strlen(a);
	unsigned char *dec = calloc(1, n + 4);
	if (!dec)
		return regfs_errf(err, -ENOMEM, "out of memory");
	int dl = EVP_DecodeBlock(dec, (const unsigned char *)a, (int)n);
	/* EVP_DecodeBlock counts the padding as zero bytes: trim them. */
	while (dl > 0 && n && a[n - 1] == '=') {
		dl--;
		n--;
	}
	char *colon = dl > 0 ? memchr(dec, ':', (size_t)dl) : NULL;
	int rc = 0;
	if (!colon) {
		rc = regfs_errf(err, -EINVAL, "docker config %s: the auth entry for %s is not "
				"base64(user:password): run docker login again", path, key);
	} else {
		dec[dl] = '\0';
		*colon = '\0';
		rc = creds_set(c, (char *)dec, colon + 1, "docker config") ? -ENOMEM : 0;
	}
	explicit_bzero(dec, n + 4);
	free(dec);
	return rc;
}

/* credHelpers[host], else credsStore: 0 (found), 1 (nothing), -errno. */
static int helpers_lookup(struct regfs_client *c, json_t *root, struct regfs_err *err)
{
	json_t *helpers = json_object_get(root, "credHelpers");
	const char *key, *name = NULL;
	json_t *v;
	json_object_foreach(helpers, key, v)
		if (json_is_string(v) && host_matches(key, c->host)) {
			name = json_string_value(v);
			c->cred_source = "docker config credHelpers";
			break;
		}
	if (!name) {
		name = json_string_value(json_object_get(root, "credsStore"));
		c->cred_source = "docker config credsStore";
	}
	if (!name || !*name) {
		c->cred_source = NULL;
		return 1;
	}
	int rc = helper_get(c, name, c->cred_source + strlen("docker config "), err);
	if (rc)
		c->cred_source = NULL;
	return rc;
}

int docker_config_creds(struct regfs_client *c, const char *path, struct regfs_err *err)
{
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	if (!root) {
		if (access(path, F_OK) != 0)
			return 0; /* no docker config: anonymous */
		log_warn("client: ignoring docker config %s: %s (line %d)", path, je.text, je.line);
		return 0;
	}
	int rc = helpers_lookup(c, root, err);
	if (rc < 0) {
		regfs_err_prefix(err, "docker config %s: ", path);
	} else if (rc == 1) {
		rc = 0;
		json_t *auths = json_object_get(root, "auths"), *v;
		const char *key;
		json_object_foreach(auths, key, v)
			if (host_matches(key, c->host)) {
				rc = auths_entry(c, path, key, v, err);
				if (rc || c->user)
					break;
			}
	}
	json_decref(root);
	return rc;
}
