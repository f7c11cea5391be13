/* proxy.h — the pull-through cache: repositories whose content comes from an
 * upstream registry on first pull, is stored in our storage as it streams to
 * the client, and is served from storage afterwards (docs/proxy.md).
 *
 * Configuration (lib/config_proxy.c fills cfg->proxies):
 *  - registry:2's `proxy: {remoteurl, username, password, ttl}` is one upstream
 *    with the empty prefix: the whole namespace is its cache and, as in
 *    registry:2, writes are refused (405 UNSUPPORTED);
 *  - `regfs.proxies: [{prefix, remoteurl, username, password, ttl, revalidate, ns,
 *    cacert}]`
 *    gives each upstream the names under "<prefix>/"; every other name is an
 *    ordinary repository that accepts pushes. Writes under a prefix are refused
 *    (405 UNSUPPORTED); DELETE is allowed (it evicts from the cache).
 *
 * Layout: a cached repository is an ordinary repository of the storage layout
 * (tags, revisions, layer links as a push writes them), so the catalog, the
 * mount, du, the usage model and garbage collection see it with no special
 * case. What only the cache needs (when a tag was last checked upstream and
 * last pulled) lives in memory and under `<root>/_regfs/proxy/` (proxy_expire.c).
 *
 * Modules: proxy.c (configuration, routing, ?ns=, the upstream clients),
 * proxy_manifest.c (manifests and tags: fetch, verify, store, revalidate, the
 * upstream-down fallback), proxy_blob.c + proxy_spool.c (blobs: one upstream
 * fetch per digest into a spool file that every waiting client reads as it
 * grows; verified, then stored), proxy_expire.c (pull records, expiry by
 * reference: cached tags not pulled for `ttl` are removed, then what no cached
 * or pushed manifest references).
 *
 * Threading: every function here may be called from any request thread. */
#ifndef REGFS_PROXY_H
#define REGFS_PROXY_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include <regfs/err.h>

struct registry;
struct request;
struct regfs_client;
struct proxy_tags;   /* proxy_manifest.c: per-upstream tag check times */
struct proxy_flights; /* proxy_blob.c: blob fetches in flight */
struct proxy_pulls;  /* proxy_expire.c: pull records */

#define PROXY_PREFIX_MAX 128
#define PROXY_URL_MAX 512

/* One configured upstream. Immutable after proxies_open except through the
 * locked state objects it points at. */
struct proxy {
	char prefix[PROXY_PREFIX_MAX];  /* "" for `proxy:` (the whole namespace) */
	char remoteurl[PROXY_URL_MAX];  /* "https://registry-1.docker.io", no trailing / */
	char host[PROXY_URL_MAX];       /* remoteurl's host[:port], matched against ?ns= */
	char **ns; int n_ns;            /* further ?ns= hosts (config `ns`; docker.io is
	                                 * implied for registry-1.docker.io) */
	int64_t ttl_s;                  /* a cached tag not pulled this long expires; 0: never */
	int64_t revalidate_s;           /* a tag is checked upstream at most this often
	                                 * (min of the config's revalidate and ttl) */
	struct regfs_client *up;        /* the upstream (lib/client: token flow, TLS) */
	struct proxy_tags *tags;        /* owned by proxy_manifest.c */
	struct proxy_flights *flights;  /* owned by proxy_blob.c */
	struct proxy_pulls *pulls;      /* owned by proxy_expire.c */
};

/* The set of upstreams: r->proxies, NULL when none is configured. */
struct proxies {
	struct proxy *v;
	int n;
};

/* Builds r->proxies from r->cfg (NULL when there is none): one upstream
 * client each (creds from username/password), the state objects. Does not
 * contact the upstreams (they may be down at start). -EINVAL with err naming
 * the key on a bad entry (overlapping prefixes, a prefix that is not a valid
 * repository-name prefix, a remoteurl that is not http(s)). */
int proxies_open(struct registry *r, struct regfs_err *err);
void proxies_close(struct registry *r); /* NULL-safe; frees r->proxies */

/* The upstream that owns repository `name` (our name, prefix included), or
 * NULL for an ordinary repository. *upstream_name points into `name` past
 * the prefix and its '/' (the name at the upstream). */
const struct proxy *proxy_of(const struct registry *r, const char *name,
			     const char **upstream_name);

/* Called by the dispatcher for every named route before auth, on the first
 * callback: applies containerd's `?ns=<host>` (a host that names a proxy
 * rewrites q->rt.name to "<prefix>/<name>", so access rules and everything
 * after see our name), sets q->proxy, and refuses writes to a cache
 * (405 UNSUPPORTED, DELETE excepted). Returns false with *res set when it
 * answered. An unknown ?ns= host leaves the request alone (a local name). */
bool proxy_route(struct registry *r, struct request *q, enum MHD_Result *res);

/* Manifest GET/HEAD on a cached repository (q->proxy set), by tag or digest:
 * serves from storage when present (by digest always; by tag while its last
 * upstream check is younger than ttl), else asks the upstream (HEAD for a
 * tag; GET on a miss or a moved tag), verifies the digest, stores blob,
 * revision link and tag link, then answers. Upstream down or failing: a
 * stored tag is served as last seen, with a log line; nothing stored: the
 * upstream's error (404 MANIFEST_UNKNOWN, or 502/504 with the reason).
 * (proxy_manifest.c) */
enum MHD_Result proxy_manifest(struct registry *r, struct request *q);

/* Blob GET/HEAD on a cached repository when the blob is not stored (the
 * stored case is served by blobs.c as usual): one upstream fetch per digest
 * (single flight); every client streams from the spool as it grows; the
 * bytes are verified against the digest before they are stored (blob data,
 * layer link); a failed or short fetch stores nothing and ends every
 * waiting client's response early (so no client accepts a short blob).
 * (proxy_blob.c) */
enum MHD_Result proxy_blob(struct registry *r, struct request *q);

/* The blob fetches in flight of one upstream (p->flights): made by
 * proxies_open, which fails when the spool directory
 * (regfs.proxycache.spooldir) cannot be made or is not private (-errno, err
 * names it); freed by proxies_close before the upstream client, after the
 * HTTP daemon stopped: free stops the fetches still running and waits for
 * them. (proxy_blob.c) */
int proxy_flights_new(struct registry *r, struct proxy_flights **out, struct regfs_err *err);
void proxy_flights_free(struct proxy_flights *f); /* NULL-safe */

/* Before the HTTP daemon stops (libmicrohttpd must not be stopped with a
 * connection suspended): every fetch in flight is failed, which resumes the
 * connections waiting for its bytes (their answers are cut), and no new
 * fetch starts. (proxy_blob.c) */
void proxies_release_waiters(struct registry *r);
/* At the end of a request (and of its connection): drops the wait record a
 * blob GET left in the connection's context (conn.h), if any; NULL-safe.
 * (proxy_blob.c) */
struct conn_ctx;
void proxy_blob_conn_done(struct conn_ctx *cx);

/* A pull in cached repository `name` of tag `tag` and of manifest `digest`
 * (either may be NULL): each recorded for expiry (cheap: memory, flushed in
 * the background). Waits while the expiry deletes that tag or manifest
 * (pulls_claim, proxy_pulls.h): call it before reading them. (proxy_expire.c) */
void proxy_note_pull(struct registry *r, const struct proxy *p, const char *name,
		     const char *tag, const char *digest);
/* How many tag or manifest deletions p's expiry has ended (a counter): a
 * puller that read a reference before proxy_note_pull reads it again when
 * this changed in between (the deletion may have ended before the note
 * could wait for it). 0 without expiry. (proxy_expire.c) */
uint64_t proxy_expiry_deletions(const struct proxy *p);

/* p->pulls, the pull records (proxy_expire.c): proxies_open creates one per
 * upstream (NULL on ENOMEM), proxies_close frees it (NULL-safe). A NULL
 * p->pulls records nothing and that upstream never expires. */
struct regfs_config;
struct proxy_pulls *proxy_pulls_new(const struct regfs_config *cfg);
void proxy_pulls_free(struct proxy_pulls *pl);
/* Saves every upstream's changed pull records (the expiry thread, as it
 * stops, so a restart loses none). */
void proxy_pulls_flush_all(struct registry *r);

/* true when some upstream has a ttl: writers then keep the online GC's notes
 * (registry_open sets gc_online), which expiry's blob deletion relies on. */
bool proxy_expire_wanted(const struct regfs_config *cfg);

/* One expiry pass over every upstream (run by the maintenance thread every
 * regfs.proxycache.interval): removes cached tags not pulled for `ttl`,
 * then the cached manifests no tag references, then the blobs those
 * manifests referenced that no other manifest (cached or pushed) references
 * (reference counts of the usage model, deleted under the online GC's
 * protocol, gc.c, so a push that references a blob again keeps it). Fills
 * *removed with the count of tags removed. (proxy_expire.c) */
int proxy_expire_run(struct registry *r, int *removed, struct regfs_err *err);

#endif
