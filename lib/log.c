/* log.c — the process-wide logger: level, text or JSON lines, one write per
 * message to stderr or the chosen fd. See include/regfs/log.h. */
#include <regfs/log.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
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

void regfs_log_set_level(enum regfs_log_level lvl) { g_level = lvl; }
enum regfs_log_level regfs_log_get_level(void) { return g_level; }
void regfs_log_set_json(int json) { g_json = json; }
void regfs_log_set_fd(int fd) { g_fd = fd; }

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

/* One line for an already formatted message, written with one write(2) so
 * that lines from different threads never interleave. */
static void log_line(enum regfs_log_level lvl, const char *msg)
{
	char ts[32];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);

	char line[4096 + 64];
	int n;
	if (g_json) {
		char esc[4096];
		json_escape(esc, sizeof esc, msg);
		n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
			     ts, level_names[lvl], esc);
	} else {
		n = snprintf(line, sizeof line, "%s %-5s %s\n", ts, level_names[lvl], msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	pthread_mutex_lock(&g_lock);
	ssize_t w = write(g_fd, line, (size_t)n);
	(void)w;
	pthread_mutex_unlock(&g_lock);
}

void regfs_log(enum regfs_log_level lvl, const char *fmt, ...)
{
	if (lvl > g_level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0'; /* an encoding error: the line goes out without text */
	va_end(ap);
	log_line(lvl, msg);
}
