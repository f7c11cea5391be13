/* config_tls.c — http.tls: the client CA list and the checks on minimumtls
 * and clientauth (see config_internal.h). The scalar keys themselves are rows
 * of config.c's table. */
#include "config_internal.h"

#include <regfs/strvec.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int config_tls_clientcas_parse(yaml_document_t *doc, yaml_node_t *node, const char *source,
			       struct regfs_config *cfg, struct regfs_err *err)
{
	int line = (int)node->start_mark.line + 1;
	if (node->type == YAML_SCALAR_NODE && node->data.scalar.length == 0)
		return 0; /* "clientcas:" with nothing under it */
	if (node->type != YAML_SEQUENCE_NODE)
		return regfs_errf(err, -EINVAL, "%s line %d: http.tls.clientcas: expected a list "
				  "of CA certificate files (- /etc/registry/ca.pem)", source, line);
	for (yaml_node_item_t *i = node->data.sequence.items.start;
	     i < node->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(doc, *i);
		if (!it || it->type != YAML_SCALAR_NODE || it->data.scalar.length == 0)
			return regfs_errf(err, -EINVAL, "%s line %d: http.tls.clientcas: each item "
					  "is the path of a PEM file", source,
					  it ? (int)it->start_mark.line + 1 : line);
		if (strvec_push(&cfg->tls_clientcas, (const char *)it->data.scalar.value))
			return regfs_errf(err, -ENOMEM, "out of memory reading configuration");
	}
	return 0;
}

static const char *const versions[] = {"tls1.0", "tls1.1", "tls1.2", "tls1.3"};
static const char *const auths[] = {
	[REGFS_TLS_NOCLIENTCERT] = "noclientcert",
	[REGFS_TLS_REQUEST] = "request-client-cert",
	[REGFS_TLS_REQUIRE_ANY] = "require-any-client-cert",
	[REGFS_TLS_VERIFY_IF_GIVEN] = "verify-client-cert-if-given",
	[REGFS_TLS_REQUIRE_AND_VERIFY] = "require-and-verify-client-cert",
};

/* Which version `s` names (0 for tls1.0 ... 3 for tls1.3), or -1. */
static int version_index(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(s, versions[i]))
			return i;
	return -1;
}

const char *regfs_tls_clientauth_name(enum regfs_tls_clientauth a)
{
	return (unsigned)a < sizeof auths / sizeof auths[0] ? auths[a] : "?";
}

/* clientauth: empty means distribution's default, which depends on whether
 * client CAs are configured (require-and-verify with them, none without). */
static int check_clientauth(const char *source, struct regfs_config *cfg, struct regfs_err *err)
{
	const char *s = cfg->tls_clientauth_name;
	if (!s || !*s) {
		cfg->tls_clientauth = cfg->tls_clientcas.n ? REGFS_TLS_REQUIRE_AND_VERIFY
							   : REGFS_TLS_NOCLIENTCERT;
		return 0;
	}
	for (size_t i = 0; i < sizeof auths / sizeof auths[0]; i++) {
		if (!strcasecmp(s, auths[i])) {
			cfg->tls_clientauth = (enum regfs_tls_clientauth)i;
			break;
		}
		if (i + 1 == sizeof auths / sizeof auths[0])
			return regfs_errf(err, -EINVAL, "%s: http.tls.clientauth: \"%s\" is not one of "
					  "request-client-cert, require-any-client-cert, "
					  "verify-client-cert-if-given, require-and-verify-client-cert",
					  source, s);
	}
	bool verifies = cfg->tls_clientauth == REGFS_TLS_VERIFY_IF_GIVEN ||
			cfg->tls_clientauth == REGFS_TLS_REQUIRE_AND_VERIFY;
	if (verifies && !cfg->tls_clientcas.n)
		return regfs_errf(err, -EINVAL, "%s: http.tls.clientauth: %s needs http.tls.clientcas "
				  "(the CAs client certificates are verified against)", source, s);
	return 0;
}

int config_tls_check(const char *source, struct regfs_config *cfg, struct regfs_err *err)
{
	const char *m = cfg->tls_minimumtls;
	if (m && *m && version_index(m) < 0)
		return regfs_errf(err, -EINVAL, "%s: http.tls.minimumtls: \"%s\" is not one of "
				  "tls1.0, tls1.1, tls1.2, tls1.3", source, m);
	int rc = check_clientauth(source, cfg, err);
	if (rc)
		return rc;
	bool tls = cfg->tls_certificate || cfg->tls_key;
	if (!tls && (cfg->tls_clientcas.n || cfg->tls_clientauth != REGFS_TLS_NOCLIENTCERT))
		return regfs_errf(err, -EINVAL, "%s: http.tls.clientcas/clientauth need "
				  "http.tls.certificate and http.tls.key (client certificates "
				  "are only asked for over TLS)", source);
	return 0;
}

int regfs_tls_min_version(const struct regfs_config *cfg)
{
	const char *m = cfg->tls_minimumtls;
	int v = m && *m ? version_index(m) : -1;
	return v < 0 ? 2 : v;
}
