/* config.h — regfs-registry's configuration: the registry:2 config.yml format
 * (https://distribution.github.io/distribution/about/configuration/), parsed
 * with libyaml.
 *
 * Unknown keys are warnings naming the key (logged, and counted in
 * `warnings`); a bad value is an error naming the key and the expected form.
 * Durations accept registry:2's forms: "10s", "1m30s", "24h", "168h", and a
 * bare integer meaning nanoseconds (as Go's yaml does for time.Duration). */
#ifndef REGFS_CONFIG_H
#define REGFS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <regfs/err.h>
#include <regfs/log.h>
#include <regfs/strvec.h>

enum regfs_storage_type { REGFS_STORAGE_FILESYSTEM = 0, REGFS_STORAGE_S3 = 1 };

struct regfs_s3_config {
	char *accesskey, *secretkey;   /* NULL: from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY */
	char *region;                  /* default "us-east-1" */
	char *regionendpoint;          /* NULL: AWS's endpoint for region */
	char *bucket;
	char *rootdirectory;           /* key prefix; "" or "/" for none */
	bool encrypt, secure, skipverify, v4auth, forcepathstyle;
	uint64_t chunksize;                  /* default 10 MiB, minimum 5 MiB */
	uint64_t multipartcopythresholdsize; /* default 32 MiB */
	uint64_t multipartcopychunksize;     /* default 32 MiB */
};

struct regfs_header {           /* http.headers: name -> values */
	char *name;
	char **values;
	int n_values;
};

/* notifications.endpoints[]: where push/pull/delete events are POSTed
 * (registry/notify.h). Defaults as registry:2: timeout 1 s, threshold 10,
 * backoff 1 s. */
struct regfs_notify_endpoint {
	char *name;                    /* required */
	char *url;                     /* required: http:// or https:// */
	struct regfs_header *headers;  int n_headers;
	int64_t timeout_ms;            /* per POST */
	int threshold;                 /* failures in a row before "down" */
	int64_t backoff_ms;            /* wait after a failure */
	char **ignored_mediatypes;     int n_ignored_mediatypes; /* + ignore.mediatypes */
	char **ignored_actions;        int n_ignored_actions;    /* ignore.actions */
	bool disabled;
};

/* regfs.quota[]: a limit on the repositories whose name matches `repository`
 * (an fnmatch glob where '*' also crosses '/'; the longest matching glob
 * wins). 0: no limit of that kind. registry/quota.c enforces them. */
struct regfs_quota {
	char *repository;
	uint64_t bytes;                /* exclusive bytes (docs/config.md) */
	uint64_t tags;
};

/* One upstream of the pull-through cache (registry/proxy.h): registry:2's
 * `proxy:` section (prefix "") or an entry of `regfs.proxies` (config_proxy.c). */
struct regfs_proxy_config {
	char *prefix;                  /* "" for `proxy:` */
	char *remoteurl;               /* required: http:// or https:// */
	char *username, *password;     /* NULL: anonymous at the upstream */
	int64_t ttl_s;                 /* registry:2's ttl: a cached tag not pulled this long
	                                * expires (default 168 h; 0: never); it also bounds
	                                * revalidate */
	int64_t revalidate_s;          /* a tag is checked upstream (HEAD) at most this often:
	                                * min(revalidate, ttl); default 60 s */
	char **ns; int n_ns;           /* extra ?ns= hosts naming this upstream */
	char *cacert;                  /* PEM bundle for the upstream's TLS; NULL: system */
};

enum regfs_check_kind { REGFS_CHECK_FILE, REGFS_CHECK_HTTP, REGFS_CHECK_TCP };

/* health.file / health.http / health.tcp: one check, as registry:2. */
struct regfs_health_check {
	enum regfs_check_kind kind;
	char *target;                  /* file: path; http: uri; tcp: host:port */
	unsigned statuscode;           /* http: the expected status; default 200 */
	int64_t timeout_s;             /* http, tcp; default 5s */
	int64_t interval_s;            /* default 10s */
	int threshold;                 /* http, tcp: failures in a row; default 1 (file: 1) */
};

/* http.tls.clientauth, as distribution v3 names Go's tls.ClientAuthType. */
enum regfs_tls_clientauth {
	REGFS_TLS_NOCLIENTCERT,        /* no client certificate asked for */
	REGFS_TLS_REQUEST,             /* asked for, not required, not verified */
	REGFS_TLS_REQUIRE_ANY,         /* required, not verified */
	REGFS_TLS_VERIFY_IF_GIVEN,     /* verified against clientcas when sent */
	REGFS_TLS_REQUIRE_AND_VERIFY,  /* required and verified (default with clientcas) */
};

/* regfs.access (lib/config_access.c, registry/acl.h): per-repository rules
 * for authenticated users. Actions are bits. */
enum { REGFS_ACT_PULL = 1u, REGFS_ACT_PUSH = 2u, REGFS_ACT_DELETE = 4u,
       REGFS_ACT_ALL = 7u };

struct regfs_access_grant {     /* a user or group and its actions */
	char *name;
	unsigned actions;
};

struct regfs_access_rule {      /* regfs.access.rules[] */
	char *repository;              /* a glob: "team/<any>", "<any>", "app" */
	struct regfs_access_grant *users;  int n_users;
	struct regfs_access_grant *groups; int n_groups;
	unsigned anonymous;            /* actions anyone may take, logged in or not */
};

struct regfs_access_group {     /* regfs.access.groups: name -> members */
	char *name;
	char **members; int n_members;
};

struct regfs_access {
	bool set;                      /* regfs.access present: rules apply */
	char **admins; int n_admins;   /* regfs.admins: every action everywhere, the catalog */
	char **catalog; int n_catalog; /* regfs.access.catalog: users/groups that may list it */
	struct regfs_access_group *groups; int n_groups;
	struct regfs_access_rule *rules;   int n_rules;
};

struct regfs_config {
	char *version;                 /* "0.1" */
	enum regfs_log_level log_level;
	bool log_json;                 /* log.formatter: json (text otherwise; logstash = json) */
	char **log_fields;             /* log.fields: 2*n_log_fields strings, name then value */
	int n_log_fields;
	bool accesslog_disabled;       /* log.accesslog.disabled */

	enum regfs_storage_type storage_type;
	char *fs_rootdirectory;        /* storage.filesystem.rootdirectory; default /var/lib/registry */
	struct regfs_s3_config s3;
	bool delete_enabled;           /* storage.delete.enabled */
	bool redirect_disable;         /* storage.redirect.disable */
	/* storage.cache.blobdescriptor: "inmemory" turns the blob descriptor
	 * cache on (registry/blobdesc.h); absent or "" leaves it off, as
	 * registry:2 does; any other value is logged and leaves it off */
	char *cache_blobdescriptor;
	int cache_blobdescriptorsize;  /* storage.cache.blobdescriptorsize: entries; default 10000 */
	struct {
		bool enabled;          /* default true */
		int64_t age_s;         /* default 168h */
		int64_t interval_s;    /* default 24h */
		bool dryrun;
	} uploadpurging;
	/* regfs extension: online garbage collection (see docs/config.md) */
	struct {
		bool enabled;
		int64_t interval_s;    /* default 1h */
		int64_t delay_s;       /* keep blobs/uploads younger than this; default 1h */
		bool deleteuntagged;
	} gc;
	/* regfs extension: push-time layer indexes (see docs/config.md) */
	struct {
		bool enabled;          /* default false */
		int workers;           /* background builders; default 1 */
		uint64_t maxsize;      /* larger layer blobs are not indexed; default 8 GiB */
		int maxqueue;          /* manifests queued in memory; default 1000 */
		int64_t rescan_s;      /* scan of the stored queue; default 60s */
	} layerindex;
	/* regfs extension: limits on every input (docs/config.md "regfs.limits").
	 * 0 turns a limit off where the comment says so. */
	struct {
		uint64_t manifestsize; /* manifest PUT body; default 4 MiB (413 over it) */
		int jsondepth;         /* nesting of manifest JSON; default 64 (400) */
		int headers;           /* header fields per request; default 100 (431) */
		uint64_t headersize;   /* bytes of header fields; default 16 KiB (431) */
		uint64_t requestline;  /* request target bytes; default 8 KiB (414) */
		uint64_t uploadsize;   /* bytes per blob upload; default 0: none (413) */
		int uploads;           /* upload requests in flight; default 512; 0: none (429) */
		int uploadsperclient;  /* the same per client address; default 128; 0: none (429) */
		int connsperclient;    /* open connections per address; default 256; 0: none */
		int64_t requesttimeout_s; /* to send a request's headers; default 30s */
		int64_t idletimeout_s; /* a connection with no traffic; default 120s */
		int largereads;        /* concurrent GETs of manifests over 512 KiB; default 64 (503) */
	} limits;

	char *http_addr;               /* "host:port" or ":port"; default ":5000" */
	char *http_host;               /* external base URL for Location headers, may be NULL */
	/* http.draintimeout: on SIGTERM, how long requests in flight may take to
	 * finish. Default 5s (registry:2's default 0 cuts them at once; an
	 * upload cut at a restart is a failed deploy push). */
	int64_t http_drain_s;
	struct regfs_header *headers;  int n_headers;
	char *tls_certificate, *tls_key;
	char *tls_minimumtls;          /* tls1.0 ... tls1.3; NULL: tls1.2 */
	struct strvec tls_clientcas;   /* http.tls.clientcas: CA files for client certificates */
	char *tls_clientauth_name;     /* http.tls.clientauth as written; NULL: the default */
	enum regfs_tls_clientauth tls_clientauth; /* resolved after loading */
	char *debug_addr;              /* http.debug.addr; NULL: no debug listener */
	bool prometheus_enabled;       /* http.debug.prometheus.enabled */
	char *prometheus_path;         /* http.debug.prometheus.path; default /metrics */

	struct {
		bool enabled;
		int64_t interval_s;    /* default 10s */
		int threshold;         /* default 1 */
	} health_storage;
	struct regfs_health_check *checks; int n_checks; /* health.file/http/tcp */

	struct regfs_notify_endpoint *endpoints; int n_endpoints; /* notifications.endpoints */
	/* regfs extension: storage accounting and quotas (docs/config.md) */
	struct {
		int maxseries;         /* regfs_storage_bytes repositories; default 500 */
	} usage;
	struct regfs_quota *quotas; int n_quotas;                  /* regfs.quota */
	/* pull-through cache: `proxy:` first (prefix ""), then regfs.proxies */
	struct regfs_proxy_config *proxies; int n_proxies;
	int64_t proxycache_interval_s; /* regfs.proxycache.interval: expiry pass; default 10 min */
	char *proxycache_spooldir;     /* regfs.proxycache.spooldir: blobs being fetched;
	                                * NULL: $TMPDIR (else /var/tmp)/regfs-registry-spool-<uid> */
	uint64_t proxycache_minrate;   /* regfs.proxycache.minrate: a blob fetch slower than this
	                                * (bytes/s, average since its start) once past the grace
	                                * is cut; default 1 KiB/s; 0: no minimum */
	int64_t proxycache_minrate_grace_s; /* regfs.proxycache.minrategrace: default 60 s */

	/* auth.token (registry/auth_token.c): realm NULL when not configured */
	struct {
		char *realm;           /* the token server URL named in the challenge */
		char *service;         /* the audience tokens must carry */
		char *issuer;          /* the iss tokens must carry */
		char *rootcertbundle;  /* PEM: the issuer's certificate(s) */
		char *jwks;            /* a JSON Web Key Set file */
		char *signingalgorithms; /* comma-joined list; NULL: RS256,ES256,EdDSA */
	} token;
	/* auth.htpasswd (registry/auth_htpasswd.c): both NULL when not configured */
	struct {
		char *realm;           /* default "regfs" when only path is set */
		char *path;
	} htpasswd;
	/* regfs.auth: failed logins per client address per minute before 429;
	 * default 10, 0 turns the limit off */
	int auth_maxfailures;
	struct regfs_access access;    /* regfs.access, regfs.admins */

	int warnings;                  /* number of unknown keys seen */
};

/* Defaults: filesystem storage in `default_rootdir`, addr 127.0.0.1:5000 when
 * `default_rootdir` is given (the no-config `serve`), delete disabled. */
void regfs_config_defaults(struct regfs_config *cfg, const char *default_rootdir);

/* Loads a YAML file over the defaults. -EINVAL (message names the key and the
 * expected form, and the line) or -ENOENT/-EACCES for the file itself.
 * Environment overrides as registry:2: REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY,
 * REGISTRY_HTTP_ADDR, REGISTRY_LOG_LEVEL, REGISTRY_STORAGE_DELETE_ENABLED — in
 * fact REGISTRY_<KEY> for every scalar key in docs/config.md (they win over
 * the file). On error `cfg` may be partly updated: still regfs_config_free it.
 * regfs_config_parse("", 0, …) gives defaults + environment (no-config serve). */
int regfs_config_load(const char *path, struct regfs_config *cfg, struct regfs_err *err);
/* Same, from a string (tests). */
int regfs_config_parse(const char *yaml, size_t len, struct regfs_config *cfg,
		       struct regfs_err *err);

/* "10s", "1m30s", "2h", "168h", "500ms" (rounded up to seconds), or a bare integer of ns. */
int regfs_duration_parse(const char *s, int64_t *seconds);
/* The same forms, in milliseconds (rounded up): "500ms" is 500. */
int regfs_duration_parse_ms(const char *s, int64_t *ms);
/* Frees what an endpoint holds (not `ep` itself); `ep` is zeroed. */
void regfs_notify_endpoint_free(struct regfs_notify_endpoint *ep);
/* "10485760", "10MiB"?—registry:2 takes plain integers; we accept both. */
int regfs_size_parse(const char *s, uint64_t *bytes);

void regfs_config_free(struct regfs_config *cfg);

/* http.tls.minimumtls of a loaded config: 0 (tls1.0) ... 3 (tls1.3); 2 when unset. */
int regfs_tls_min_version(const struct regfs_config *cfg);
/* The configuration word for a clientauth mode ("require-and-verify-client-cert"). */
const char *regfs_tls_clientauth_name(enum regfs_tls_clientauth a);
/* A deep copy of `src` into `dst` (a running server keeps its rules apart
 * from the configuration a reload frees). 0 or -ENOMEM (dst then empty). */
int regfs_access_copy(struct regfs_access *dst, const struct regfs_access *src);
/* Frees what `ac` holds; `ac` is zeroed. */
void regfs_access_free(struct regfs_access *ac);

#endif
