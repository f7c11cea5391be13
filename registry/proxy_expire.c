/* proxy_expire.c — pull records and expiry of cached repositories
 * (proxy.h). Placeholder until the implementation lands: nothing is
 * recorded and nothing expires. */
#include "proxy.h"

void proxy_note_pull(struct registry *r, const struct proxy *p, const char *name,
		     const char *tag, const char *digest)
{
	(void)r, (void)p, (void)name, (void)tag, (void)digest;
}

int proxy_expire_run(struct registry *r, int *removed, struct regfs_err *err)
{
	(void)r, (void)err;
	*removed = 0;
	return 0;
}
