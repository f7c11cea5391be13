/* usage_internal.h — the state shared by usage.c (lifecycle, hooks),
 * usage_walk.c (the startup walk) and usage_http.c (endpoint, gauges). Not
 * for other modules: they use usage.h. */
#ifndef REGFS_USAGE_INTERNAL_H
#define REGFS_USAGE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "digestset.h"
#include "usage_model.h"

struct registry;

struct usage {
	pthread_mutex_t lock;       /* guards model and touched */
	struct usage_model *model;
	/* while the walk runs: blob digests and upload uuids a hook has set
	 * (the walk leaves those alone); NULL once it ended */
	struct digestset *touched;
	atomic_bool ready;          /* the walk finished */
	atomic_bool stop;           /* usage_stop: the walk gives up */
	pthread_t thread;
	bool thread_started;
	int64_t upload_age_s;       /* uploads older than this are garbage (purging age) */
	int maxseries;              /* regfs.usage.maxseries */
};

/* The walk thread (usage_walk.c): fills the model, sets ready. */
void *usage_walk_thread(void *registry);

/* Marks a digest or uuid as set by a hook (lock held). */
void usage_touch(struct usage *u, const char *key);

#endif
