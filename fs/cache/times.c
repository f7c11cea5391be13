/* times.c — the times tags show as mtime: the image's build time from its
 * config blob (read whole through the disk cache), which source a tag's
 * time came from, and whether a time can be believed. */
#include "manifests_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <regfs/log.h>

/* "2026-11-28T08:00:00.123Z" / "...+02:00" -> unix time; 0 when unparsable. */
static int64_t parse_rfc3339(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t t = (int64_t)timegm(&tm);
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	int oh, om;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
		t -= (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
	return t;
}

/* Reads a small blob whole: disk cache, else registry (verified, then cached). */
static char *small_blob(struct manifest_cache *mc, const char *repo, const char *digest, uint64_t size,
			size_t *len)
{
	if (size > REGFS_MANIFEST_MAX)
		return NULL;
	char *buf = malloc(size + 1);
	if (!buf)
		return NULL;
	int fd = blob_cache_open(mc->bc, digest);
	if (fd >= 0) {
		ssize_t r = pread(fd, buf, size, 0);
		close(fd);
		if (r == (ssize_t)size) {
			buf[size] = 0;
			*len = size;
			atomic_fetch_add(&mc->st->bc_hits, 1);
			return buf;
		}
	}
	atomic_fetch_add(&mc->st->bc_misses, 1);
	size_t got = 0;
	struct regfs_err e = {0};
	loop_may_block();
	int rc = regfs_client_blob_read(mc->client, repo, digest, 0, size, buf, &got, &e);
	if (rc || got != size) {
		if (rc)
			fs_client_errno(rc, &e, "fetching a config blob");
		free(buf);
		return NULL;
	}
	char d[REGFS_DIGEST_MAX];
	regfs_digest_buf(strncmp(digest, "sha512:", 7) == 0 ? REGFS_SHA512 : REGFS_SHA256,
			 buf, size, d);
	if (strcmp(d, digest) != 0) {
		fs_warn("blob %s@%s: the registry sent bytes that hash to %s", repo, digest, d);
		free(buf);
		return NULL;
	}
	blob_cache_put(mc->bc, digest, buf, size);
	buf[size] = 0;
	*len = size;
	return buf;
}

int64_t manifest_cache_created(struct manifest_cache *mc, const char *repo, const struct mentry *e)
{
	int64_t c = __atomic_load_n(&e->created, __ATOMIC_ACQUIRE);
	if (c)
		return c;
	c = -1;
	const struct regfs_manifest *m = e->m;
	if (m->kind == REGFS_MANIFEST_INDEX) {
		/* An index has no config: its first child's image time. */
		const struct mentry *ch;
		if (m->n_manifests && mcache_get(mc, repo, m->manifests[0].digest, &ch) == 0) {
			if (ch->m->kind == REGFS_MANIFEST_IMAGE)
				c = manifest_cache_created(mc, repo, ch);
			mcache_put(mc, ch);
		}
	} else if (m->has_config) {
		size_t len;
		char *buf = small_blob(mc, repo, m->config.digest, (uint64_t)m->config.size, &len);
		if (!buf)
			return 0; /* not cached: try again next time */
		json_t *j = json_loadb(buf, len, 0, NULL);
		const char *s = json_string_value(json_object_get(j, "created"));
		int64_t t = s ? parse_rfc3339(s) : 0;
		if (tag_time_plausible(t))
			c = t;
		json_decref(j);
		free(buf);
	}
	__atomic_store_n((int64_t *)&e->created, c, __ATOMIC_RELEASE);
	return c;
}

/* ---- tag times: which source, and whether it can be believed ---- */

/* 2013-01-01T00:00:00Z: Docker's first release; no OCI image is older. */
#define OLDEST_PLAUSIBLE 1356998400LL
#define CLOCK_SKEW_S 86400

static atomic_uint_fast64_t src_count[3];

int64_t tag_time_plausible(int64_t t)
{
	if (t < OLDEST_PLAUSIBLE || t > (int64_t)time(NULL) + CLOCK_SKEW_S)
		return 0;
	return t;
}

void tag_time_set(struct tag_ent *te, int64_t pushed, int64_t created)
{
	if (tag_time_plausible(pushed)) {
		te->mtime = pushed;
		te->mtime_src = MTIME_PUSHED;
	} else if (tag_time_plausible(created)) {
		te->mtime = created;
		te->mtime_src = MTIME_CREATED;
	} else {
		/* Neither: the time of this resolution, which the ttl renews, so
		 * `find -mtime +N` never takes a tag of unknown age for old (the
		 * mount time would, once the mount is N days old). */
		te->mtime = (int64_t)time(NULL);
		te->mtime_src = MTIME_UNKNOWN;
	}
	atomic_fetch_add(&src_count[te->mtime_src], 1);
}

void tag_time_counts(uint64_t out[3])
{
	for (int i = 0; i < 3; i++)
		out[i] = atomic_load(&src_count[i]);
}

const char *mtime_src_name(int src)
{
	return src == MTIME_PUSHED ? "pushed" : src == MTIME_CREATED ? "created" : "unknown";
}
