/* log.c — the process-wide logger: level, text or JSON lines, one write per
 * message to stderr or the chosen fd. See include/regfs/log.h. */
#include <regfs/log.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum regfs_log_level g_level = REGFS_LOG_INFO;
static int g_json;
static int g_fd = 2;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* log.fields: set once at start (before threads), read by every line. */
#define FIELDS_MAX 32
static char *g_fields[FIELDS_MAX][2];
static int g_n_fields;

void regfs_log_set_level(enum regfs_log_level lvl) { g_level = lvl; }
enum regfs_log_level regfs_log_get_level(void) { return g_level; }
void regfs_log_set_json(int json) { g_json = json; }
void regfs_log_set_fd(int fd) { g_fd = fd; }

int regfs_log_set_fields(const char *const *kv, int n)
{
	for (int i = 0; i < g_n_fields; i++) {
		free(g_fields[i][0]);
		free(g_fields[i][1]);
	}
	g_n_fields = 0;
	if (n > FIELDS_MAX)
		return -E2BIG;
	for (int i = 0; i < n; i++) {
		char *k = strdup(kv[2 * i]), *v = strdup(kv[2 * i + 1] ? kv[2 * i + 1] : "");
		if (!k || !v) {
			free(k);
			free(v);
			return -ENOMEM;
		}
		g_fields[i][0] = k;
		g_fields[i][1] = v;
		g_n_fields = i + 1;
	}
	return 0;
}

int regfs_log_level_parse(const char *s, enum regfs_log_level *out)
{
	static const struct { const char *name; enum regfs_log_level lvl; } tab[] = {
		{"error", REGFS_LOG_ERROR}, {"fatal", REGFS_LOG_ERROR}, {"panic", REGFS_LOG_ERROR},
		{"warn", REGFS_LOG_WARN},   {"warning", REGFS_LOG_WARN},
		{"info", REGFS_LOG_INFO},   {"debug", REGFS_LOG_DEBUG}, {"trace", REGFS_LOG_DEBUG},
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
		if (strcasecmp(s, tab[i].name) == 0) {
			*out = tab[i].lvl;
			return 0;
		}
	}
	return -EINVAL;
}

/* Appends `s` to dst as JSON string content (without quotes). */
static size_t json_escape(char *dst, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", c);
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

/* Appends one "key":"value" (JSON) or " key=value" (text) pair to line
 * at *n; numbers unquoted in JSON. Silently stops at the end of the buffer. */
static void add_pair(char *line, size_t cap, size_t *n, const char *key, const char *str,
		     long long num, bool is_num)
{
	char ek[128], ev[2048];
	if (*n >= cap)
		return;
	int w;
	if (g_json) {
		json_escape(ek, sizeof ek, key);
		if (is_num) {
			w = snprintf(line + *n, cap - *n, ",\"%s\":%lld", ek, num);
		} else {
			json_escape(ev, sizeof ev, str);
			w = snprintf(line + *n, cap - *n, ",\"%s\":\"%s\"", ek, ev);
		}
	} else if (is_num) {
		w = snprintf(line + *n, cap - *n, " %s=%lld", key, num);
	} else {
		w = snprintf(line + *n, cap - *n, strpbrk(str, " \"=") || !*str ? " %s=\"%s\"" : " %s=%s",
			     key, str);
	}
	if (w > 0)
		*n += (size_t)w;
}

/* One line for an already formatted message and its fields (the call's,
 * then log.fields), written with one write(2) so that lines from different
 * threads never interleave. */
static void log_line(enum regfs_log_level lvl, const char *msg,
		     const struct regfs_log_field *f, int nf)
{
	char ts[32];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);

	char line[8192];
	size_t cap = sizeof line - 2; /* room for "}\n" */
	int w;
	if (g_json) {
		char esc[4096];
		json_escape(esc, sizeof esc, msg);
		w = snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"", ts,
			     level_names[lvl], esc);
	} else {
		w = snprintf(line, cap, "%s %-5s %s", ts, level_names[lvl], msg);
	}
	if (w < 0)
		return;
	size_t n = (size_t)w < cap ? (size_t)w : cap - 1;
	for (int i = 0; g_json && i < nf; i++) /* text: the message says them */
		add_pair(line, cap, &n, f[i].key, f[i].str ? f[i].str : "", f[i].num, !f[i].str);
	for (int i = 0; i < g_n_fields; i++)
		add_pair(line, cap, &n, g_fields[i][0], g_fields[i][1], 0, false);
	if (n >= cap) /* cut: keep the line one line (and the JSON closed) */
		n = cap - 1;
	if (g_json)
		line[n++] = '}';
	line[n++] = '\n';
	pthread_mutex_lock(&g_lock);
	ssize_t wr = write(g_fd, line, n);
	(void)wr;
	pthread_mutex_unlock(&g_lock);
}

static void log_v(enum regfs_log_level lvl, const struct regfs_log_field *f, int nf,
		  const char *fmt, va_list ap)
{
	char msg[2048];
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0'; /* an encoding error: the line goes out without text */
	log_line(lvl, msg, f, nf);
}

void regfs_log_fields(enum regfs_log_level lvl, const struct regfs_log_field *f, int nf,
		      const char *fmt, ...)
{
	if (lvl > g_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v(lvl, f, nf, fmt, ap);
	va_end(ap);
}

void regfs_log(enum regfs_log_level lvl, const char *fmt, ...)
{
	if (lvl > g_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v(lvl, NULL, 0, fmt, ap);
	va_end(ap);
}
