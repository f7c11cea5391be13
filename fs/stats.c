/* stats.c — the contents of .regfs/status and .regfs/stats.
 *
 * status: human-readable, one "key: value" per line.
 * stats:  one JSON object: the client's request counters (by kind, bytes,
 *         retries, errors), the caches' hits and misses, and walk counts —
 *         what the benchmark reads to count requests. */
#include "mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* What tag mtimes mean on this registry, from the tags resolved so far. */
static const char *tag_times_text(void)
{
	uint64_t c[3];
	tag_time_counts(c);
	if (c[MTIME_PUSHED] && !c[MTIME_CREATED] && !c[MTIME_UNKNOWN])
		return "pushed (the registry gives push times: a tag's mtime is when it was pushed)";
	if (!c[MTIME_PUSHED] && (c[MTIME_CREATED] || c[MTIME_UNKNOWN]))
		return "created (the registry gives no push times: a tag's mtime is its image's "
		       "build time, or when the mount resolved it where that is unknown; "
		       "find -mtime is NOT the age since the push)";
	if (c[MTIME_PUSHED])
		return "mixed (push times for some tags, image build times or unknown for others: "
		       "see the xattr user.regfs.mtime-source of each)";
	return "not known yet (no tag resolved)";
}

int stats_status_text(struct mnt *m, char **buf, size_t *len)
{
	uint64_t c[3];
	tag_time_counts(c);
	char since[64];
	struct tm tm;
	gmtime_r(&m->mounted_since, &tm);
	strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
	int n = asprintf(buf,
			 "registry: %s\n"
			 "registry version: %s\n"
			 "regfs version: %s\n"
			 "mounted since: %s\n"
			 "ttl: %g s\n"
			 "timeout: %d s\n"
			 "cache dir: %s\n"
			 "read-only: %s\n"
			 "protected tags: %s\n"
			 "tag times: %s\n"
			 "tag time sources: %llu pushed, %llu created, %llu unknown\n",
			 m->o.url, m->registry_version ? m->registry_version : "unknown",
			 REGFS_VERSION, since, m->o.ttl, m->o.timeout_s,
			 m->bc ? m->o.cache_dir : "(disabled)",
			 m->o.ro ? "yes (-o ro)" : "no (rm/ln -s/mv in _tags, rmdir in _manifests)",
			 m->o.protect ? m->o.protect : "(none)", tag_times_text(),
			 (unsigned long long)c[MTIME_PUSHED], (unsigned long long)c[MTIME_CREATED],
			 (unsigned long long)c[MTIME_UNKNOWN]);
	if (n < 0)
		return -ENOMEM;
	*len = (size_t)n;
	return 0;
}

#define U(x) json_integer((json_int_t)(x))

int stats_json_text(struct mnt *m, char **buf, size_t *len)
{
	struct regfs_client_stats cs = {0};
	if (m->client)
		regfs_client_get_stats(m->client, &cs);
	json_t *j = json_pack(
		"{s:{s:o,s:o,s:o,s:o,s:o,s:o},s:o,s:o,s:o,s:o,s:o,"
		"s:{s:{s:o,s:o},s:{s:o,s:o},s:{s:o,s:o,s:o}},s:{s:o,s:o,s:o,s:o},s:o,s:o}",
		"requests",
		"total", U(cs.requests), "manifest", U(cs.manifest_gets), "tags", U(cs.tag_lists),
		"catalog", U(cs.catalog_pages), "blob", U(cs.blob_reads), "write", U(cs.writes),
		"bytes_fetched", U(cs.bytes_fetched), "retries", U(cs.retries),
		"errors", U(cs.errors), "token_fetches", U(cs.token_fetches),
		"range_reads", U(atomic_load(&m->st.range_reads)),
		"cache",
		"names", "hits", U(atomic_load(&m->st.nc_hits)), "misses",
				   U(atomic_load(&m->st.nc_misses)),
		"manifests", "hits", U(atomic_load(&m->st.mc_hits)), "misses",
				       U(atomic_load(&m->st.mc_misses)),
		"blobs", "hits", U(atomic_load(&m->st.bc_hits)), "misses",
				   U(atomic_load(&m->st.bc_misses)),
		"disk_bytes", U(blob_cache_used(m->bc)),
		"kernel",
		"lookup", U(atomic_load(&m->st.k_lookup)), "getattr",
			    U(atomic_load(&m->st.k_getattr)),
		"opendir", U(atomic_load(&m->st.k_opendir)), "readdir",
			     U(atomic_load(&m->st.k_readdir)),
		"walks", U(atomic_load(&m->st.walks)),
		"mounted_since", U(m->mounted_since));
	if (!j)
		return -ENOMEM;
	/* the layer views: bytes fetched for them, indexes by origin, memory */
	json_t *lv = json_pack("{s:o,s:o,s:o,s:o,s:o}",
		"bytes_fetched", U(atomic_load(&m->st.lv_bytes)),
		"indexes_built", U(atomic_load(&m->st.lv_built)),
		"indexes_loaded", U(atomic_load(&m->st.lv_loaded)),
		"indexes_fetched", U(atomic_load(&m->st.lv_fetched)),
		"memory_bytes", U(m->lc ? layer_cache_memory(m->lc) : 0));
	if (!lv || json_object_set_new(j, "layer_views", lv)) {
		json_decref(j);
		return -ENOMEM;
	}
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	size_t l = strlen(s);
	*buf = malloc(l + 2);
	if (!*buf) {
		free(s);
		return -ENOMEM;
	}
	memcpy(*buf, s, l);
	(*buf)[l] = '\n';
	(*buf)[l + 1] = 0;
	*len = l + 1;
	free(s);
	return 0;
}
