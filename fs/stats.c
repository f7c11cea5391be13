/* stats.c — the contents of .regfs/status and .regfs/stats.
 *
 * status: human-readable, one "key: value" per line.
 * stats:  one JSON object: the client's request counters (by kind, bytes,
 *         retries, errors), the caches' hits and misses, and walk counts —
 *         what the benchmark reads to count requests.
 * --metrics: the same counters as Prometheus text on a small listener. */
#include "mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>

#include <regfs/dynbuf.h>
#include <regfs/log.h>

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
	size_t notes = 0, notes_bytes = 0;
	if (m->lc)
		layer_cache_notes(m->lc, &notes, &notes_bytes);
	json_t *lv = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
		"bytes_fetched", U(atomic_load(&m->st.lv_bytes)),
		"indexes_built", U(atomic_load(&m->st.lv_built)),
		"indexes_loaded", U(atomic_load(&m->st.lv_loaded)),
		"indexes_fetched", U(atomic_load(&m->st.lv_fetched)),
		"memory_bytes", U(m->lc ? layer_cache_memory(m->lc) : 0),
		"notes", U(notes), "notes_bytes", U(notes_bytes));
	if (!lv || json_object_set_new(j, "layer_views", lv)) {
		json_decref(j);
		return -ENOMEM;
	}
	/* the node table and its memory bound (node.c, reaper.c) */
	struct nodes_usage nu;
	nodes_usage(m->nodes, &nu);
	json_t *nj = json_pack("{s:o,s:o,s:o,s:o}", "count", U(nu.count), "bytes", U(nu.bytes),
			       "budget", U(nu.budget), "drops_asked", U(nu.asked));
	if (!nj || json_object_set_new(j, "nodes", nj)) {
		json_decref(j);
		return -ENOMEM;
	}
	/* the manifest cache and its memory bound (cache/manifests.c) */
	struct mcache_usage mu = {0};
	if (m->mc)
		mcache_usage(m->mc, &mu);
	json_t *mj = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "bytes", U(mu.bytes), "budget",
			       U(mu.budget), "entries", U(mu.entries), "dropped", U(mu.dropped),
			       "written_to_disk", U(mu.written), "read_from_disk",
			       U(mu.read_back));
	if (!mj || json_object_set_new(j, "manifest_cache", mj)) {
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

/* ---- Prometheus text (--metrics) ---- */

/* One family: HELP, TYPE and its samples "labels value" (labels may be ""). */
static int family(struct dynbuf *b, const char *name, const char *type, const char *help,
		  size_t n, const char *const *labels, const uint64_t *v)
{
	int rc = dynbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < n && !rc; i++)
		rc = dynbuf_printf(b, "%s%s %llu\n", name, labels[i], (unsigned long long)v[i]);
	return rc;
}

#define ONE(b, name, type, help, val) \
	family(b, name, type, help, 1, (const char *const[]){""}, (const uint64_t[]){(uint64_t)(val)})
#define LD(x) atomic_load(&m->st.x)

static int prom_client(struct mnt *m, struct dynbuf *b)
{
	struct regfs_client_stats cs = {0};
	if (m->client)
		regfs_client_get_stats(m->client, &cs);
	static const char *const kinds[] = {"{kind=\"manifest\"}", "{kind=\"tags\"}",
					    "{kind=\"catalog\"}", "{kind=\"blob\"}",
					    "{kind=\"write\"}"};
	uint64_t per[] = {cs.manifest_gets, cs.tag_lists, cs.catalog_pages, cs.blob_reads, cs.writes};
	int rc = ONE(b, "regfs_mount_requests_total", "counter",
		     "Requests the mount sent to the registry.", cs.requests);
	rc = rc ? rc : family(b, "regfs_mount_requests_by_kind_total", "counter",
			      "Requests the mount sent to the registry, by kind.", 5, kinds, per);
	rc = rc ? rc : ONE(b, "regfs_mount_fetched_bytes_total", "counter",
			   "Bytes received from the registry.", cs.bytes_fetched);
	rc = rc ? rc : ONE(b, "regfs_mount_retries_total", "counter", "Requests retried.", cs.retries);
	rc = rc ? rc : ONE(b, "regfs_mount_errors_total", "counter",
			   "Requests that failed after their retries.", cs.errors);
	rc = rc ? rc : ONE(b, "regfs_mount_token_fetches_total", "counter",
			   "Bearer tokens fetched.", cs.token_fetches);
	return rc ? rc : ONE(b, "regfs_mount_range_reads_total", "counter",
			     "Blob reads at an offset (HTTP range requests).", LD(range_reads));
}

static int prom_local(struct mnt *m, struct dynbuf *b)
{
	static const char *const caches[] = {"{cache=\"names\"}", "{cache=\"manifests\"}",
					     "{cache=\"blobs\"}"};
	uint64_t hits[] = {LD(nc_hits), LD(mc_hits), LD(bc_hits)};
	uint64_t misses[] = {LD(nc_misses), LD(mc_misses), LD(bc_misses)};
	static const char *const ops[] = {"{op=\"lookup\"}", "{op=\"getattr\"}", "{op=\"opendir\"}",
					  "{op=\"readdir\"}"};
	uint64_t kern[] = {LD(k_lookup), LD(k_getattr), LD(k_opendir), LD(k_readdir)};
	int rc = family(b, "regfs_mount_cache_hits_total", "counter", "Cache hits, by cache.", 3,
			caches, hits);
	rc = rc ? rc : family(b, "regfs_mount_cache_misses_total", "counter",
			      "Cache misses, by cache.", 3, caches, misses);
	rc = rc ? rc : ONE(b, "regfs_mount_cache_disk_bytes", "gauge",
			   "Bytes held by the disk cache.", blob_cache_used(m->bc));
	rc = rc ? rc : family(b, "regfs_mount_kernel_requests_total", "counter",
			      "Requests from the kernel, by operation.", 4, ops, kern);
	rc = rc ? rc : ONE(b, "regfs_mount_walks_total", "counter", "Directory walks.", LD(walks));
	return rc ? rc : ONE(b, "regfs_mount_mounted_since_seconds", "gauge",
			     "When the mount started (Unix time).", m->mounted_since);
}

int stats_prometheus_text(struct mnt *m, char **buf, size_t *len)
{
	struct dynbuf b;
	dynbuf_init(&b, DYNBUF_NO_CAP);
	int rc = prom_client(m, &b);
	rc = rc ? rc : prom_local(m, &b);
	*buf = rc ? NULL : dynbuf_take(&b, len);
	dynbuf_free(&b);
	return rc ? rc : *buf ? 0 : -ENOMEM;
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	(void)version; (void)data; (void)size;
	static int first;
	if (!*con_cls) {
		*con_cls = &first;
		return MHD_YES;
	}
	char *body = NULL;
	size_t len = 0;
	unsigned status = 200;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		status = 405;
	else if (strcmp(url, "/metrics"))
		status = 404;
	else if (stats_prometheus_text(cls, &body, &len))
		status = 500;
	if (status != 200) {
		body = strdup(status == 404 ? "not found: the metrics are at /metrics\n"
					    : status == 405 ? "only GET and HEAD\n" : "out of memory\n");
		len = body ? strlen(body) : 0;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (void *)"",
								 body ? MHD_RESPMEM_MUST_FREE
								      : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
					      : "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* "host:port" or "[v6]:port" -> a socket address (numeric port). */
static int metrics_addr(const char *addr, struct sockaddr_storage *ss, struct regfs_err *err)
{
	const char *colon = strrchr(addr, ':');
	char host[256];
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (!colon || !colon[1] || hl >= sizeof host)
		return regfs_errf(err, -EINVAL, "--metrics %s: expected host:port", addr);
	memcpy(host, addr, hl);
	host[hl] = '\0';
	char *h = host;
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		h = host + 1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &ai);
	if (rc || !ai)
		return regfs_errf(err, -EINVAL, "--metrics %s: cannot resolve: %s", addr,
				  gai_strerror(rc));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int stats_metrics_start(struct mnt *m, struct regfs_err *err)
{
	m->metrics = NULL;
	if (!m->o.metrics_addr)
		return 0;
	struct sockaddr_storage ss;
	int rc = metrics_addr(m->o.metrics_addr, &ss, err);
	if (rc)
		return rc;
	m->metrics = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
				      (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				      0, NULL, NULL, on_metrics, m, MHD_OPTION_SOCK_ADDR, &ss,
				      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!m->metrics)
		return regfs_errf(err, -EADDRINUSE, "--metrics %s: cannot listen (in use, or not "
				  "an address of this host)", m->o.metrics_addr);
	log_info("metrics on http://%s/metrics", m->o.metrics_addr);
	return 0;
}

void stats_metrics_stop(struct mnt *m)
{
	if (m->metrics)
		MHD_stop_daemon(m->metrics);
	m->metrics = NULL;
}
