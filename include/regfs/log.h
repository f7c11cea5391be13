/* log.h — the one logger of regfs (library, registry and mount).
 *
 * Thread-safe; writes one line per message to stderr (or a file set with
 * regfs_log_set_fd). Text format:  "2026-11-28T08:00:00Z info  message"
 * JSON format: {"time":"…","level":"info","msg":"…"} (log.formatter: json).
 * Fields follow the message: in JSON a line's own fields (regfs_log_fields)
 * then the process-wide log.fields, as `,"key":value` (numbers unquoted); in
 * text only log.fields, as ` key=value` (quoted when the value holds a space,
 * a quote or "="), since a text message already says its own fields. A line longer
 * than 8 KiB is cut, still one line (and in JSON still one object).
 * Never log credentials: callers redact before formatting. */
#ifndef REGFS_LOG_H
#define REGFS_LOG_H

enum regfs_log_level {
	REGFS_LOG_ERROR = 0,
	REGFS_LOG_WARN = 1,
	REGFS_LOG_INFO = 2,
	REGFS_LOG_DEBUG = 3,
};

void regfs_log_set_level(enum regfs_log_level lvl);
enum regfs_log_level regfs_log_get_level(void);
void regfs_log_set_json(int json);
void regfs_log_set_fd(int fd);
/* Parses "error|warn|info|debug" (also registry:2's "warning"); -EINVAL otherwise. */
int regfs_log_level_parse(const char *s, enum regfs_log_level *out);

/* log.fields: n key/value pairs (kv[2i], kv[2i+1]) added to every line from
 * now on; copied. Call before other threads log. 0, -E2BIG over 32 pairs
 * (none kept), -ENOMEM. n = 0 clears them (and frees the copies). */
int regfs_log_set_fields(const char *const *kv, int n);

/* One field of a line: a string (str != NULL) or a number (str NULL). */
struct regfs_log_field {
	const char *key;
	const char *str;
	long long num;
};

/* A line with its own fields (access lines: method, path, status, …),
 * written as members of the JSON object; text lines show the message only. */
void regfs_log_fields(enum regfs_log_level lvl, const struct regfs_log_field *f, int nf,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

void regfs_log(enum regfs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) regfs_log(REGFS_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  regfs_log(REGFS_LOG_WARN, __VA_ARGS__)
#define log_info(...)  regfs_log(REGFS_LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (regfs_log_get_level() >= REGFS_LOG_DEBUG) \
	regfs_log(REGFS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
