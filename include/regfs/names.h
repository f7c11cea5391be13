/* names.h — repository-name, tag and reference grammar (OCI Distribution
 * Spec v1.1). Everything that turns a user-supplied name into a storage path
 * or URL validates it here first. */
#ifndef REGFS_NAMES_H
#define REGFS_NAMES_H

#include <stdbool.h>
#include <regfs/err.h>

#define REGFS_NAME_MAX 255
#define REGFS_TAG_MAX 128

/* Repository name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * at most 255 characters. */
bool regfs_name_valid(const char *name);
/* Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */
bool regfs_tag_valid(const char *tag);
/* A reference is a tag or a digest. A string containing ':' is treated as a
 * digest (and must be valid); otherwise as a tag. Returns 1 for a digest,
 * 0 for a tag, -EINVAL (with err) for neither. */
int regfs_reference_kind(const char *ref, struct regfs_err *err);

#endif
