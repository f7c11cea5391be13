/* quota.c — see quota.h. */
#include "quota.h"

#include "registry.h"
#include "usage.h"
#include "usage_model.h"

#include <regfs/hash.h>
#include <regfs/log.h>

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define STRIPES 64
static pthread_mutex_t stripes[STRIPES] = {
	[0 ... STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER,
};
/* Guards the running config's quota list: readers are pushes (quota_admit),
 * the writer is a SIGHUP (quota_reload). */
static pthread_rwlock_t rules_lock = PTHREAD_RWLOCK_INITIALIZER;

const struct regfs_quota *quota_for(const struct regfs_config *cfg, const char *repo)
{
	const struct regfs_quota *best = NULL;
	for (int i = 0; i < cfg->n_quotas; i++) {
		const struct regfs_quota *q = &cfg->quotas[i];
		if (fnmatch(q->repository, repo, 0) != 0)
			continue;
		if (!best || strlen(q->repository) > strlen(best->repository))
			best = q;
	}
	return best;
}

/* Human sizes for the message: exact bytes always, a GiB/MiB hint after. */
static void size_text(uint64_t v, char *out, size_t cap)
{
	if (v >= (1ull << 30))
		snprintf(out, cap, "%" PRIu64 " bytes (%.2f GiB)", v, (double)v / (1ull << 30));
	else if (v >= (1ull << 20))
		snprintf(out, cap, "%" PRIu64 " bytes (%.2f MiB)", v, (double)v / (1ull << 20));
	else
		snprintf(out, cap, "%" PRIu64 " bytes", v);
}

/* The limits of the quota that applies, copied out of the list (a SIGHUP may
 * replace it while the push runs). */
struct quota_rule {
	uint64_t bytes, tags;
	char repository[256];
};

static bool rule_for(const struct regfs_config *cfg, const char *repo, struct quota_rule *out)
{
	pthread_rwlock_rdlock(&rules_lock);
	const struct regfs_quota *q = quota_for(cfg, repo);
	if (q) {
		out->bytes = q->bytes;
		out->tags = q->tags;
		snprintf(out->repository, sizeof out->repository, "%s", q->repository);
	}
	pthread_rwlock_unlock(&rules_lock);
	return q != NULL;
}

void quota_reload(struct regfs_config *running, struct regfs_config *n)
{
	pthread_rwlock_wrlock(&rules_lock);
	struct regfs_quota *q = running->quotas;
	int k = running->n_quotas;
	running->quotas = n->quotas;
	running->n_quotas = n->n_quotas;
	n->quotas = q; /* freed with n */
	n->n_quotas = k;
	pthread_rwlock_unlock(&rules_lock);
}

static bool over(const struct quota_rule *q, const char *repo, const struct usage_repo_figures *now,
		 const struct usage_repo_figures *then, uint64_t added, char *msg, size_t cap)
{
	if (q->bytes && added > 0 && then->exclusive > q->bytes) {
		char lim[64], use[64], add[64];
		size_text(q->bytes, lim, sizeof lim);
		size_text(now->exclusive, use, sizeof use);
		size_text(added, add, sizeof add);
		snprintf(msg, cap, "quota exceeded for %s: the push adds %s to its exclusive "
			 "usage of %s, past its quota of %s (regfs.quota \"%s\")", repo, add, use,
			 lim, q->repository);
		return true;
	}
	if (q->tags && then->tags > q->tags && then->tags > now->tags) {
		snprintf(msg, cap, "quota exceeded for %s: a new tag would make %" PRIu64 " tags, "
			 "past its quota of %" PRIu64 " tags (regfs.quota \"%s\")", repo, then->tags,
			 q->tags, q->repository);
		return true;
	}
	return false;
}

int quota_admit(struct registry *r, const char *repo, const char *tag, const char *digest,
		size_t len, const struct regfs_manifest *m, struct quota_hold *h, char *msg,
		size_t cap)
{
	h->lock = NULL;
	struct quota_rule rule;
	if (!rule_for(r->cfg, repo, &rule))
		return 0;
	pthread_mutex_t *lock = &stripes[regfs_fnv1a64_str(repo) % STRIPES];
	pthread_mutex_lock(lock);
	struct usage_repo_figures now, then;
	uint64_t added = 0;
	int rc = usage_would_be(r, repo, tag, digest, len, m, &now, &then, &added);
	if (rc == 0 && over(&rule, repo, &now, &then, added, msg, cap)) {
		log_info("manifest %s refused in %s: %s", digest, repo, msg);
		rc = -EDQUOT;
	}
	if (rc) {
		pthread_mutex_unlock(lock);
		return rc;
	}
	h->lock = lock;
	return 0;
}

void quota_release(struct quota_hold *h)
{
	if (h->lock)
		pthread_mutex_unlock(h->lock);
	h->lock = NULL;
}
