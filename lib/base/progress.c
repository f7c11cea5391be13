/* progress.c — the terminal progress line (include/regfs/progress.h). */
#include <regfs/progress.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Redraws closer together than this only cost terminal bandwidth. */
#define REDRAW_S 0.2

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool wanted(FILE *out)
{
	const char *env = getenv("REGFS_PROGRESS");
	if (env && !strcmp(env, "0"))
		return false;
	if (env && !strcmp(env, "1"))
		return true;
	return out && isatty(fileno(out));
}

void regfs_progress_begin(struct regfs_progress *p, FILE *out, const char *what,
			  const char *unit, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->out = out;
	p->on = wanted(out);
	snprintf(p->what, sizeof p->what, "%s", what ? what : "");
	snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "items");
	p->total = total;
	p->start = now_s();
	p->last = -1;
}

void regfs_progress_human(uint64_t bytes, char *buf, size_t n)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	if (bytes < 1024) {
		snprintf(buf, n, "%llu B", (unsigned long long)bytes);
		return;
	}
	double v = (double)bytes / 1024;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, "%.1f %s", v, units[u]);
}

/* "m:ss" or "h:mm:ss" */
static void eta_str(double s, char *buf, size_t n)
{
	unsigned long t = s < 0 ? 0 : (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
}

int regfs_progress_format(const struct regfs_progress *p, double elapsed, char *buf,
			  size_t n)
{
	char count[64], size[24], rate[64] = "", eta[32] = "";
	if (p->total) {
		unsigned pct = (unsigned)(p->items >= p->total ? 100 : p->items * 100 / p->total);
		snprintf(count, sizeof count, "%llu/%llu %s (%u%%)", (unsigned long long)p->items,
			 (unsigned long long)p->total, p->unit, pct);
	} else {
		snprintf(count, sizeof count, "%llu %s", (unsigned long long)p->items, p->unit);
	}
	if (p->no_bytes)
		size[0] = '\0';
	else
		regfs_progress_human(p->bytes, size, sizeof size);
	/* Rates need some elapsed time to mean anything. */
	if (elapsed >= 0.05) {
		char bps[24];
		regfs_progress_human((uint64_t)((double)p->bytes / elapsed), bps, sizeof bps);
		snprintf(rate, sizeof rate, ", %.0f %s/s%s%s%s", (double)p->items / elapsed,
			 p->unit, p->no_bytes ? "" : ", ", p->no_bytes ? "" : bps,
			 p->no_bytes ? "" : "/s");
		if (p->total && p->items && p->items < p->total) {
			char t[24];
			eta_str((double)(p->total - p->items) * elapsed / (double)p->items, t,
				sizeof t);
			snprintf(eta, sizeof eta, ", ETA %s", t);
		}
	}
	return snprintf(buf, n, "%s: %s%s%s%s%s", p->what, count, size[0] ? ", " : "", size, rate,
			eta);
}

static void draw(struct regfs_progress *p, double t)
{
	char line[256];
	int len = regfs_progress_format(p, t - p->start, line, sizeof line);
	if (len < 0)
		return;
	if (len >= (int)sizeof line)
		len = (int)sizeof line - 1;
	/* pad with blanks over the tail of a longer previous line */
	int pad = p->width > len ? p->width - len : 0;
	fprintf(p->out, "\r%s%*s", line, pad, "");
	fflush(p->out);
	p->width = len;
	p->shown = true;
	p->last = t;
}

void regfs_progress_update(struct regfs_progress *p, uint64_t items, uint64_t bytes)
{
	p->items = items;
	p->bytes = bytes;
	if (!p->on)
		return;
	double t = now_s();
	if (p->last < 0 || t - p->last >= REDRAW_S)
		draw(p, t);
}

void regfs_progress_clear(struct regfs_progress *p)
{
	if (!p->on || !p->shown)
		return;
	fprintf(p->out, "\r%*s\r", p->width, "");
	fflush(p->out);
	p->shown = false;
	p->width = 0;
	p->last = -1; /* the next update draws again at once */
}

void regfs_progress_end(struct regfs_progress *p)
{
	if (!p->on)
		return;
	draw(p, now_s());
	fputc('\n', p->out);
	fflush(p->out);
	p->shown = false;
	p->width = 0;
	p->on = false; /* a second end draws nothing */
}
