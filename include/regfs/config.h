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

struct regfs_config {
	char *version;                 /* "0.1" */
	enum regfs_log_level log_level;
	bool log_json;                 /* log.formatter: json (text otherwise; logstash = json) */

	enum regfs_storage_type storage_type;
	char *fs_rootdirectory;        /* storage.filesystem.rootdirectory; default /var/lib/registry */
	struct regfs_s3_config s3;
	bool delete_enabled;           /* storage.delete.enabled */
	bool redirect_disable;         /* storage.redirect.disable */
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

	char *http_addr;               /* "host:port" or ":port"; default ":5000" */
	char *http_host;               /* external base URL for Location headers, may be NULL */
	struct regfs_header *headers;  int n_headers;
	char *tls_certificate, *tls_key;

	struct {
		bool enabled;
		int64_t interval_s;    /* default 10s */
		int threshold;         /* default 1 */
	} health_storage;

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
/* "10485760", "10MiB"?—registry:2 takes plain integers; we accept both. */
int regfs_size_parse(const char *s, uint64_t *bytes);

void regfs_config_free(struct regfs_config *cfg);

#endif
