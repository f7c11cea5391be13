/* auth_htpasswd.c — auth.htpasswd: Basic credentials checked against an
 * htpasswd file of bcrypt entries. */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>

static bool ht_configured(const struct regfs_config *cfg)
{
	return cfg->htpasswd.path || cfg->htpasswd.realm;
}

static int ht_open(void **st, const struct regfs_config *cfg, struct regfs_err *err)
{
	(void)cfg;
	*st = NULL;
	return regfs_errf(err, -ENOTSUP, "not available in this build");
}

static enum auth_verdict ht_check(void *st, const char *authorization, const char *peer,
				  const struct auth_want *w, struct auth_who *who, char *why,
				  size_t whylen)
{
	(void)st; (void)authorization; (void)peer; (void)w; (void)who; (void)why; (void)whylen;
	return AUTH_CHALLENGE;
}

static void ht_close(void *st)
{
	free(st);
}

const struct auth_backend_ops auth_htpasswd_ops = {
	.name = "htpasswd",
	.configured = ht_configured,
	.open = ht_open,
	.check = ht_check,
	.challenge = NULL,
	.reload = NULL,
	.close = ht_close,
};
