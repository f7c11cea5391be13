/* acl.c — see acl.h. */
#include "acl.h"

#include <fnmatch.h>
#include <string.h>

static bool in_list(char *const *list, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

static bool is_admin(const struct regfs_access *ac, const char *user)
{
	return user[0] && in_list(ac->admins, ac->n_admins, user);
}

/* true when `user` is a member of the group `name`. */
static bool in_group(const struct regfs_access *ac, const char *name, const char *user)
{
	for (int i = 0; i < ac->n_groups; i++)
		if (!strcmp(ac->groups[i].name, name))
			return in_list(ac->groups[i].members, ac->groups[i].n_members, user);
	return false;
}

const struct regfs_access_rule *acl_rule_for(const struct regfs_access *ac, const char *repo)
{
	const struct regfs_access_rule *best = NULL;
	size_t best_len = 0;
	for (int i = 0; i < ac->n_rules; i++) {
		const struct regfs_access_rule *r = &ac->rules[i];
		size_t len = strlen(r->repository);
		if ((!best || len > best_len) && fnmatch(r->repository, repo, 0) == 0) {
			best = r;
			best_len = len;
		}
	}
	return best;
}

unsigned acl_actions(const struct regfs_access *ac, const char *user, const char *repo)
{
	if (!ac->set)
		return user[0] ? REGFS_ACT_ALL : 0;
	if (is_admin(ac, user))
		return REGFS_ACT_ALL;
	const struct regfs_access_rule *r = acl_rule_for(ac, repo);
	if (!r)
		return 0;
	unsigned act = r->anonymous;
	if (!user[0])
		return act;
	for (int i = 0; i < r->n_users; i++)
		if (!strcmp(r->users[i].name, user))
			act |= r->users[i].actions;
	for (int i = 0; i < r->n_groups; i++)
		if (in_group(ac, r->groups[i].name, user))
			act |= r->groups[i].actions;
	return act;
}

bool acl_catalog(const struct regfs_access *ac, const char *user)
{
	if (!ac->set)
		return user[0] != '\0';
	if (is_admin(ac, user) || in_list(ac->catalog, ac->n_catalog, "anonymous"))
		return true;
	if (!user[0])
		return false;
	if (in_list(ac->catalog, ac->n_catalog, user))
		return true;
	for (int i = 0; i < ac->n_catalog; i++)
		if (in_group(ac, ac->catalog[i], user))
			return true;
	return false;
}
