/* repo.h — repositories over storage: link files (read, write, exists),
 * repository existence, and the sorted lists of repositories, tags,
 * revisions and layer links. Errors are negative errno values with `err`
 * filled when given (may be NULL). */
#ifndef REGFS_REPO_H
#define REGFS_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/digest.h>
#include <regfs/err.h>
#include <regfs/storage.h>
#include <regfs/strvec.h>

struct registry;

/* Reads a link file into out (a validated digest). -ENOENT if missing,
 * -EINVAL if the content is not a digest. */
int repo_read_link(struct registry *r, const char *path, char out[REGFS_DIGEST_MAX],
		   int64_t *mtime, struct regfs_err *err);
/* Writes a link (digest text, no newline), atomically. */
int repo_write_link(struct registry *r, const char *path, const char *digest,
		    struct regfs_err *err);
/* true when the path exists (st filled when not NULL). */
bool repo_exists(struct registry *r, const char *path, struct regfs_stat_info *st);
/* true when the repository directory exists. */
bool repo_known(struct registry *r, const char *name);

/* Calls cb for every repository name (a directory under repositories/ with a
 * _manifests, _layers or _uploads child), in no particular order. */
typedef int (*repo_name_cb)(const char *name, void *ud);
int repo_walk(struct registry *r, repo_name_cb cb, void *ud, struct regfs_err *err);


/* The lists below fill `out` (a struct strvec the caller owns and clears). */

/* All repository names, sorted. */
int repo_list_all(struct registry *r, struct strvec *out, struct regfs_err *err);
/* Tag names of a repository, sorted. -ENOENT when the repo has no tags dir. */
int repo_list_tags(struct registry *r, const char *name, struct strvec *out,
		   struct regfs_err *err);
/* Manifest digests of a repository (revision links), sorted. */
int repo_list_revisions(struct registry *r, const char *name, struct strvec *out,
			struct regfs_err *err);
/* Layer-link digests of a repository. */
int repo_list_layers(struct registry *r, const char *name, struct strvec *out,
		     struct regfs_err *err);

#endif
