/* config_internal.h — what config.c shares with the parsers of its
 * list-valued sections (config_notify.c, config_tls.c, config_access.c,
 * config_quota.c) and the scalar forms (config_values.c). Not installed. */
#ifndef REGFS_CONFIG_INTERNAL_H
#define REGFS_CONFIG_INTERNAL_H

#include <regfs/config.h>
#include <yaml.h>

/* A YAML null: an empty, "~" or "null" plain scalar (`plain`: its style is
 * plain; a quoted "" is a string). */
bool config_is_null(const char *v, bool plain);

/* A YAML 1.1 boolean as go-yaml v2 reads it: true/yes/on/y, false/no/off/n
 * (any case). 0 or -EINVAL. */
int config_parse_bool(const char *s, bool *out);

/* health.file / health.http / health.tcp (`path`, of `kind`): appends one
 * struct regfs_health_check per list item to cfg->checks; an empty section
 * is none. -EINVAL (err names the check, key and line) or -ENOMEM. */
int config_checks_parse(yaml_document_t *doc, const char *source, struct regfs_config *cfg,
			struct regfs_err *err, yaml_node_t *node, enum regfs_check_kind kind,
			const char *path);

/* notifications.endpoints: appends one struct regfs_notify_endpoint per list
 * item to cfg->endpoints. -EINVAL (err names the item, key and line) or
 * -ENOMEM; what was appended stays for regfs_config_free. */
int config_endpoints_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			   struct regfs_config *cfg, struct regfs_err *err);

/* http.tls.clientcas: a list of PEM file paths, appended to
 * cfg->tls_clientcas. -EINVAL (err names the line) or -ENOMEM. */
int config_tls_clientcas_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			       struct regfs_config *cfg, struct regfs_err *err);

/* After file and environment: refuses an unknown minimumtls or clientauth
 * (naming the key), a verifying clientauth without clientcas, client
 * certificates without TLS; resolves cfg->tls_clientauth. */
int config_tls_check(const char *source, struct regfs_config *cfg, struct regfs_err *err);

/* regfs.access (admins false) or regfs.admins (admins true) into
 * cfg->access. -EINVAL (err names the key and line) or -ENOMEM; what was
 * stored stays for regfs_config_free. */
int config_access_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			bool admins, struct regfs_config *cfg, struct regfs_err *err);

/* regfs.quota: appends one struct regfs_quota per list item to cfg->quotas.
 * -EINVAL (err names the item, key and line) or -ENOMEM; what was appended
 * stays for regfs_config_free. */
int config_quotas_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			struct regfs_config *cfg, struct regfs_err *err);

/* proxy (registry2 true: registry:2's one section, prefix "") or
 * regfs.proxies (a list) into cfg->proxies (config_proxy.c); `proxy:` is
 * kept at index 0. -EINVAL (err names the entry, key and line) or -ENOMEM;
 * what was stored stays for regfs_config_free. */
int config_proxies_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			 bool registry2, struct regfs_config *cfg, struct regfs_err *err);

/* After file and environment: applies REGISTRY_PROXY_REMOTEURL/USERNAME/
 * PASSWORD/TTL to the `proxy:` entry (creating it), then refuses both forms
 * at once, a missing or non-http(s) remoteurl, an invalid prefix, a prefix
 * inside or equal to another, negative durations, regfs.proxycache.interval
 * under 1s. Trailing '/' of remoteurl and prefix are dropped. */
int config_proxies_finish(const char *source, struct regfs_config *cfg, struct regfs_err *err);

/* Frees what `p` holds (the password wiped first); `p` is zeroed. */
void regfs_proxy_config_free(struct regfs_proxy_config *p);

#endif
