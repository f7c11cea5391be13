/* config_internal.h — what config.c hands to the parsers of its list-valued
 * sections (config_notify.c). Not installed. */
#ifndef REGFS_CONFIG_INTERNAL_H
#define REGFS_CONFIG_INTERNAL_H

#include <regfs/config.h>
#include <yaml.h>

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

#endif
