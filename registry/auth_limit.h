/* auth_limit.h — the failed-login limit of auth.c: per client address, more
 * than `max` failed logins within a window of AUTH_LIMIT_WINDOW_S seconds
 * (from the first failure) and that address is refused until the window is
 * over, whatever it sends.
 *
 * Memory is fixed (AUTH_LIMIT_SLOTS addresses, set-associative by hash: an
 * address lives in one set of AUTH_LIMIT_WAYS slots; a full set recycles the
 * entry whose window started first, so the newest attackers are always
 * counted). Thread-safe; `now` is passed in (CLOCK_MONOTONIC seconds in the
 * server, anything monotonic in tests). */
#ifndef REGFS_AUTH_LIMIT_H
#define REGFS_AUTH_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define AUTH_LIMIT_SLOTS 1024
#define AUTH_LIMIT_WAYS 8
#define AUTH_LIMIT_WINDOW_S 60
#define AUTH_LIMIT_PEER_MAX 64    /* longer addresses are cut (never: v6 text is < 46) */

struct auth_limit;

/* A table for `max` failures per window (0: no limit). NULL: out of memory. */
struct auth_limit *auth_limit_new(int max);
void auth_limit_free(struct auth_limit *l);
/* A new limit (SIGHUP); counts so far stay. */
void auth_limit_set_max(struct auth_limit *l, int max);

/* Seconds `peer` must still wait at `now` (0: not limited). Takes no lock
 * when no failure was counted in the last window. */
int64_t auth_limit_blocked(struct auth_limit *l, const char *peer, int64_t now);
/* Counts a failed login of `peer` at `now`; true exactly when this one
 * crosses the limit (the first refusal: log it once). */
bool auth_limit_note(struct auth_limit *l, const char *peer, int64_t now);

#endif
