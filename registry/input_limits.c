/* input_limits.c — see input_limits.h. */
#include "input_limits.h"

#include "framing.h"
#include "registry.h"
#include "request.h"
#include "respond.h"

#include <regfs/log.h>
#include <regfs/oci.h>

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Arenas for 16 worker threads: 4 keeps lock contention low on the hot
 * path (which allocates almost nothing) while bounding retained memory. */
#define ARENAS_DEFAULT 4
#define PEERS_MAX 1024 /* addresses with uploads in flight tracked at once */

int limits_arena_max(void)
{
	const char *e = getenv("REGFS_MALLOC_ARENAS");
	long n = e ? strtol(e, NULL, 10) : 0;
	return n >= 1 && n <= 64 ? (int)n : ARENAS_DEFAULT;
}

void limits_apply(const struct regfs_config *cfg)
{
	mallopt(M_ARENA_MAX, limits_arena_max());
	/* A fixed threshold: blocks of 256 KiB and more are mmap'd and given
	 * back to the system when freed. glibc otherwise raises the threshold
	 * after the first large free, and from then on keeps such blocks (a
	 * manifest body, its parse) in the arenas for good. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	regfs_manifest_set_limits((size_t)cfg->limits.manifestsize, cfg->limits.jsondepth);
}

/* ---- uploads in flight ---- */

struct peer_count {
	char addr[64];
	int n;
};

static pthread_mutex_t up_lock = PTHREAD_MUTEX_INITIALIZER;
static int up_total;
static struct peer_count up_peers[PEERS_MAX];
static int up_n_peers;

static struct peer_count *peer_find(const char *addr)
{
	for (int i = 0; i < up_n_peers; i++)
		if (!strcmp(up_peers[i].addr, addr))
			return &up_peers[i];
	return NULL;
}

/* Counts one more upload from `addr`; the limit key it is over, else NULL. */
static const char *up_enter(const struct regfs_config *cfg, const char *addr)
{
	const char *over = NULL;
	pthread_mutex_lock(&up_lock);
	struct peer_count *p = peer_find(addr);
	if (cfg->limits.uploads && up_total >= cfg->limits.uploads)
		over = "regfs.limits.uploads";
	else if (cfg->limits.uploadsperclient && p && p->n >= cfg->limits.uploadsperclient)
		over = "regfs.limits.uploadsperclient";
	else if (!p && up_n_peers == PEERS_MAX)
		over = "the server's table of client addresses (1024)";
	if (!over) {
		if (!p) {
			p = &up_peers[up_n_peers++];
			snprintf(p->addr, sizeof p->addr, "%s", addr);
			p->n = 0;
		}
		p->n++;
		up_total++;
	}
	pthread_mutex_unlock(&up_lock);
	return over;
}

void limits_upload_done(struct MHD_Connection *c)
{
	char addr[64];
	framing_peer(c, addr, sizeof addr);
	pthread_mutex_lock(&up_lock);
	struct peer_count *p = peer_find(addr);
	if (p) {
		up_total--;
		if (--p->n == 0)
			*p = up_peers[--up_n_peers];
	}
	pthread_mutex_unlock(&up_lock);
}

bool limits_upload_refused(struct registry *r, struct request *q, enum MHD_Result *res)
{
	char addr[64];
	framing_peer(q->conn, addr, sizeof addr);
	const char *over = up_enter(r->cfg, addr);
	if (!over)
		return false;
	const struct regfs_config *cfg = r->cfg;
	log_warn("upload %s %s from %s refused (429): over %s (%d in flight, %d per client)",
		 q->method, q->url, addr, over, cfg->limits.uploads, cfg->limits.uploadsperclient);
	char msg[200];
	snprintf(msg, sizeof msg, "too many uploads in flight (%s): retry later", over);
	*res = limits_respond_busy(r, q, 429, "TOOMANYREQUESTS", msg);
	return true;
}

enum MHD_Result limits_respond_busy(struct registry *r, struct request *q, unsigned status,
				    const char *code, const char *msg)
{
	return respond_error_with(r, q, status, code, msg, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

/* ---- large manifest reads ---- */

static atomic_int large_reads;

bool limits_large_read_begin(const struct regfs_config *cfg)
{
	if (atomic_fetch_add(&large_reads, 1) < cfg->limits.largereads)
		return true;
	atomic_fetch_sub(&large_reads, 1);
	return false;
}

void limits_large_read_done(void)
{
	atomic_fetch_sub(&large_reads, 1);
}
