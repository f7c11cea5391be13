/* quota.h — regfs.quota (docs/config.md): a manifest PUT that would take its
 * repository past its bytes or tags limit is refused with 403 DENIED before
 * anything is stored.
 *
 * Bytes are the repository's exclusive bytes (usage_model.h): what it
 * references that no other repository references, so a base layer shared
 * with another repository does not count. A push that adds no exclusive
 * bytes is never refused for bytes (re-tagging, pushing what another
 * repository already holds), even when the repository is over its limit
 * (the limit was lowered): deleting stays possible and nothing grows.
 *
 * Exact under concurrent pushes: the check and the commit (storing the
 * manifest, linking it, recording it in the accounting) run under one lock
 * per repository (striped), taken only when a quota applies. */
#ifndef REGFS_QUOTA_H
#define REGFS_QUOTA_H

#include <pthread.h>
#include <stddef.h>

#include <regfs/config.h>

struct registry;
struct regfs_manifest;

/* The quota of a repository: the longest matching glob; NULL when none.
 * The list may be replaced by quota_reload: callers other than quota.c's
 * own use it only while no SIGHUP can run (tests, start-up). */
const struct regfs_quota *quota_for(const struct regfs_config *cfg, const char *repo);
/* SIGHUP: the running config takes n's quota list (n then holds the old one
 * and frees it); a push being admitted uses either list whole, never a mix. */
void quota_reload(struct regfs_config *running, struct regfs_config *n);

struct quota_hold {
	pthread_mutex_t *lock; /* held between quota_admit and quota_release; NULL: none */
};

/* Before storing manifest `digest` (len bytes, parsed `m`) in `repo` (tag
 * NULL: by digest). 0: go ahead, and call quota_release after the push is
 * recorded (or failed). -EDQUOT: refused, msg says the quota and the usage
 * (answer 403 DENIED). -EAGAIN: the accounting is still being built (answer
 * 503). -ENOMEM. On an error nothing is held. */
int quota_admit(struct registry *r, const char *repo, const char *tag, const char *digest,
		size_t len, const struct regfs_manifest *m, struct quota_hold *h, char *msg,
		size_t cap);
void quota_release(struct quota_hold *h);

#endif
