/* reaper.c — keeps the node table within its share of --memory by asking
 * the kernel to forget the entries used least recently.
 *
 * The kernel holds a node (and we its struct node and strings) for
 * every entry it has looked up until its own memory pressure evicts the
 * dentry; on a machine with memory to spare that is never, and a du of a
 * large registry leaves every entry behind. Past the table's budget
 * (nodes_set_budget), this thread names the least recently used entries to
 * the kernel with FUSE_NOTIFY_INVAL_ENTRY (parent nodeid, name): the kernel
 * drops the dentry and, once nothing uses the inode, sends FORGET, which
 * frees the node (node.c). Looking the name up again makes a new node with
 * the same st_ino and content.
 *
 * Why a thread of its own: libfuse's rule for the notify calls is "not from
 * a filesystem operation, and not with a lock held that an operation can
 * hold": the kernel takes the directory's inode lock for the invalidation,
 * and a lookup in that directory holds it while it waits for our answer.
 * This thread holds no lock while it notifies and no request waits for it.
 *
 * What is never named: the root, a node with open file handles
 * (nodes_open), and every directory that is a process's working or root
 * directory (or one above it), found in /proc/PID/cwd and /proc/PID/root at
 * the start of each round: dropping its entry would make getcwd(3) fail
 * there with ENOENT. Processes of other users are not visible to us (their
 * cwd is then not protected: with -o allow_other only). The kernel may
 * still refuse a name (gone meanwhile: ENOENT); that node is skipped until
 * the others had their turn. */
#include "mount.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <regfs/log.h>

#define ROUND_MAX 4096       /* entries named per round */
#define PAUSE_MS 20          /* between rounds: the FORGETs arrive meanwhile */
#define IDLE_S 1.0           /* recheck the stop flag this often */

static pthread_t reaper_thread;
static bool running;
static atomic_bool stopping;
static atomic_bool unsupported; /* the kernel has no FUSE_NOTIFY_INVAL_ENTRY */

/* The directories processes are in, relative to the mountpoint. */
struct inuse {
	char **rel;
	size_t n, cap;
};

static void inuse_clear(struct inuse *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->rel[i]);
	free(u->rel);
	*u = (struct inuse){0};
}

/* Adds the part of `link` (a /proc symlink) below mountpoint mp. */
static void inuse_add(struct inuse *u, const char *mp, const char *link)
{
	char target[PATH_MAX];
	ssize_t l = readlink(link, target, sizeof target - 1);
	size_t ml = strlen(mp);
	if (l <= 0 || (size_t)l <= ml || strncmp(target, mp, ml) || target[ml] != '/')
		return; /* unreadable (another user's), outside, or the root itself */
	target[l] = 0;
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 16;
		char **v = realloc(u->rel, cap * sizeof *v);
		if (!v)
			return;
		u->rel = v;
		u->cap = cap;
	}
	char *s = strdup(target + ml + 1);
	if (s)
		u->rel[u->n++] = s;
}

static void inuse_scan(struct inuse *u, const char *mp)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		char p[64];
		snprintf(p, sizeof p, "/proc/%.20s/cwd", de->d_name);
		inuse_add(u, mp, p);
		snprintf(p, sizeof p, "/proc/%.20s/root", de->d_name);
		inuse_add(u, mp, p);
	}
	closedir(d);
}

/* keep() of nodes_pick_victims: path is a directory a process is in, or
 * one above it. */
static bool in_use(const char *path, void *arg)
{
	const struct inuse *u = arg;
	size_t pl = strlen(path);
	for (size_t i = 0; i < u->n; i++)
		if (!strncmp(u->rel[i], path, pl) && (u->rel[i][pl] == 0 || u->rel[i][pl] == '/'))
			return true;
	return false;
}

/* A round's victims: names still to free if the thread is cancelled
 * while the kernel keeps it waiting (see reaper_stop). */
struct round {
	struct node_victim *v;
	size_t i, n;
};

static void round_free(void *arg)
{
	struct round *r = arg;
	for (; r->i < r->n; r->i++)
		free(r->v[r->i].name);
}

/* One round: names up to ROUND_MAX entries; how many the kernel took. */
static size_t reap_round(struct mnt *m, struct node_victim *v)
{
	struct inuse u = {0};
	inuse_scan(&u, m->o.mountpoint);
	struct round r = {v, 0, nodes_pick_victims(m->nodes, v, ROUND_MAX, in_use, &u)};
	inuse_clear(&u);
	size_t ok = 0, gone = 0;
	pthread_cleanup_push(round_free, &r);
	for (; r.i < r.n; r.i++) {
		struct node_victim *x = &v[r.i];
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		int rc = atomic_load(&stopping) ? -ECANCELED
			 : fuse_lowlevel_notify_inval_entry(m->se, x->parent, x->name,
							    strlen(x->name));
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (rc == 0)
			ok++;
		else if (rc == -ENOENT)
			gone++; /* the kernel had already dropped it, or its directory */
		else if (rc == -ENOSYS && !atomic_exchange(&unsupported, true))
			log_warn("nodes: this kernel cannot be asked to drop entries "
				 "(FUSE_NOTIFY_INVAL_ENTRY: %s): the node table is not bounded",
				 strerror(-rc));
		else if (rc != -ECANCELED && rc != -ENOSYS)
			log_debug("nodes: the kernel refused to drop %s (node %llu): %s", x->name,
				  (unsigned long long)x->id, strerror(-rc));
		free(x->name);
	}
	pthread_cleanup_pop(0);
	if (r.n)
		log_debug("nodes: asked the kernel to drop %zu entries (%zu dropped, %zu already "
			  "gone)", r.n, ok, gone);
	return ok;
}

static void *reaper_main(void *arg)
{
	struct mnt *m = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	struct node_victim *v = malloc(ROUND_MAX * sizeof *v);
	if (!v) {
		log_warn("nodes: out of memory: the node table is not bounded");
		return NULL;
	}
	pthread_cleanup_push(free, v);
	while (!atomic_load(&stopping) && !atomic_load(&unsupported)) {
		if (!nodes_wait_pressure(m->nodes, IDLE_S))
			continue;
		size_t ok = reap_round(m, v);
		/* Nothing could be dropped (all busy): wait for a change rather
		 * than spin over the same nodes. */
		struct timespec ts = {0, (ok ? PAUSE_MS : 999) * 1000000L};
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL); /* reaper_stop: at once */
		while (!atomic_load(&stopping) && nanosleep(&ts, &ts) && errno == EINTR)
			;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	}
	pthread_cleanup_pop(1);
	if (atomic_load(&unsupported))
		nodes_set_budget(m->nodes, 0); /* .regfs/stats: unbounded */
	return NULL;
}

int reaper_start(struct mnt *m)
{
	uint64_t budget = m->o.memory_bytes / NODES_MEMORY_SHARE;
	nodes_set_budget(m->nodes, budget);
	atomic_store(&stopping, false);
	int rc = pthread_create(&reaper_thread, NULL, reaper_main, m);
	if (rc) {
		log_warn("nodes: cannot start a thread (%s): the node table is not bounded",
			 strerror(rc));
		nodes_set_budget(m->nodes, 0);
		return -rc;
	}
	running = true;
	return 0;
}

/* After the request loop: a notify can wait for the kernel's directory
 * lock, which a request nobody answers any more may hold until the session
 * ends, so the thread is cancelled (only in the notify call or its pause
 * between rounds) as well as told. */
void reaper_stop(struct mnt *m)
{
	if (!running)
		return;
	atomic_store(&stopping, true);
	nodes_set_budget(m->nodes, 0); /* wakes it */
	pthread_cancel(reaper_thread);
	pthread_join(reaper_thread, NULL);
	running = false;
}
