/* clock.h — absolute deadlines for timed waits (pthread_cond_timedwait). */
#ifndef REGFS_CLOCK_H
#define REGFS_CLOCK_H

#include <time.h>

/* CLOCK_REALTIME `ms` milliseconds from now, normalised (tv_nsec < 1e9):
 * the absolute time pthread_cond_timedwait takes. Cannot fail. */
struct timespec regfs_deadline_ms(long ms);

#endif
