/* progress.h — one progress line on a terminal for long-running commands
 * (garbage-collect; the shell tools print the same format).
 *
 * The line shows items done (of a total when known), bytes, rates and, with a
 * total, an ETA, and is rewritten in place with "\r":
 *     sweep: 120/500 blobs (24%), 34.5 MiB, 40 blobs/s, 11.5 MiB/s, ETA 0:09
 * It is drawn only when the stream is a terminal (isatty), so logs, pipes and
 * journald never see it; REGFS_PROGRESS=0 turns it off on a terminal too and
 * REGFS_PROGRESS=1 forces it on (tests). Every function is a no-op on an
 * inactive progress, so callers need no checks of their own.
 *
 * Usage:
 *     struct regfs_progress p;
 *     regfs_progress_begin(&p, stderr, "sweep", "blobs", n);
 *     for (...) { ...; regfs_progress_update(&p, i + 1, bytes); }
 *     regfs_progress_end(&p);
 * Before printing anything else to the same terminal, call
 * regfs_progress_clear() so the message does not mix with the line (the next
 * update draws it again). No allocation, no error: nothing to free. */
#ifndef REGFS_PROGRESS_H
#define REGFS_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct regfs_progress {
	FILE *out;
	bool on;              /* drawing at all (terminal, or forced) */
	bool shown;           /* a line is on the terminal now */
	char what[32];        /* phase: "sweep" */
	char unit[16];        /* items: "blobs" */
	uint64_t total;       /* items expected; 0: unknown (no percentage, no ETA) */
	uint64_t items, bytes;
	bool no_bytes;        /* set after begin when the phase counts no bytes:
			       * the line then shows items and their rate only */
	double start, last;   /* monotonic seconds: start, last draw */
	int width;            /* length of the line drawn, to blank a shorter one */
};

/* Starts a phase on `out` (usually stderr). `what` and `unit` are copied
 * (truncated to the fields' sizes). */
void regfs_progress_begin(struct regfs_progress *p, FILE *out, const char *what,
			  const char *unit, uint64_t total);
/* Records the counts; redraws the line at most every 200 ms (the first
 * update draws at once). */
void regfs_progress_update(struct regfs_progress *p, uint64_t items, uint64_t bytes);
/* Erases the line (it is drawn again by the next update). */
void regfs_progress_clear(struct regfs_progress *p);
/* Draws the final counts and ends the line with a newline, so the last state
 * stays visible on the terminal. */
void regfs_progress_end(struct regfs_progress *p);

/* The text of the line (no "\r"), as drawn `elapsed` seconds after begin:
 * exposed for tests. Returns what snprintf returns. */
int regfs_progress_format(const struct regfs_progress *p, double elapsed, char *buf,
			  size_t n);
/* "512 B", "1.5 KiB", "34.5 MiB"… into buf (at least 16 bytes). */
void regfs_progress_human(uint64_t bytes, char *buf, size_t n);

#endif
