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

/* regfs.quota: appends one struct regfs_quota per list item to cfg->quotas.
 * -EINVAL (err names the item, key and line) or -ENOMEM; what was appended
 * stays for regfs_config_free. */
int config_quotas_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			struct regfs_config *cfg, struct regfs_err *err);

#endif
