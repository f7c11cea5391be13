/* acl.h — the per-repository access rules (regfs.access, regfs.admins) as a
 * pure function: rules + who + repository -> the actions allowed. No I/O, no
 * locks: the caller keeps `ac` alive and unchanged while it asks.
 *
 * The rules (docs/config.md, "Access control"):
 * - without regfs.access (ac->set false) any authenticated user may do
 *   everything, anonymous nothing: registry:2's htpasswd behaviour;
 * - an admin (regfs.admins) may do everything everywhere, and list the catalog;
 * - otherwise the rule whose repository glob matches and is LONGEST decides
 *   (ties: the first in the file); its `anonymous` actions are everyone's,
 *   plus the actions it grants the user by name and through every group the
 *   user is a member of; no matching rule: nothing (but admins);
 * - globs are fnmatch(3) patterns where a star also crosses `/` (the glob
 *   "team/" + star covers "team/a/b");
 * - the catalog: admins, and the users and groups named in
 *   regfs.access.catalog ("anonymous" there lets anyone list it). */
#ifndef REGFS_ACL_H
#define REGFS_ACL_H

#include <stdbool.h>

#include <regfs/config.h>

/* The REGFS_ACT_* bits `user` ("" = anonymous) may take on `repo`. */
unsigned acl_actions(const struct regfs_access *ac, const char *user, const char *repo);

/* true when `user` ("" = anonymous) may list the catalog. */
bool acl_catalog(const struct regfs_access *ac, const char *user);

/* The rule that decides for `repo` (NULL: none matches). */
const struct regfs_access_rule *acl_rule_for(const struct regfs_access *ac, const char *repo);

#endif
