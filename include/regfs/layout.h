/* layout.h — the reference registry's storage path scheme (distribution v2),
 * so a directory or bucket written by registry:2 is served unchanged.
 *
 *   /docker/registry/v2/blobs/<alg>/<hex[0:2]>/<hex>/data
 *   /docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
 *   /docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
 *   /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
 *   /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
 *   /docker/registry/v2/repositories/<name>/_uploads/<uuid>/{data,startedat,hashstates/<alg>/<offset>}
 *
 * A "link" file holds a digest string ("sha256:…", no newline).
 * Every function returns a malloc'd path (caller frees) or NULL when the
 * input is invalid (bad digest, name or tag) or memory ran out. Inputs are
 * validated here, so no path built through this module escapes the root. */
#ifndef REGFS_LAYOUT_H
#define REGFS_LAYOUT_H

#define REGFS_LAYOUT_ROOT "/docker/registry/v2"
#define REGFS_LAYOUT_REPOS REGFS_LAYOUT_ROOT "/repositories"
#define REGFS_LAYOUT_BLOBS REGFS_LAYOUT_ROOT "/blobs"

char *regfs_layout_blob_data(const char *digest);
char *regfs_layout_blob_dir(const char *digest);
char *regfs_layout_repo(const char *name);
char *regfs_layout_layer_link(const char *name, const char *digest);
char *regfs_layout_revision_link(const char *name, const char *digest);
char *regfs_layout_revisions_dir(const char *name, const char *alg); /* …/revisions/<alg> */
char *regfs_layout_tags_dir(const char *name);
char *regfs_layout_tag_dir(const char *name, const char *tag);
char *regfs_layout_tag_current(const char *name, const char *tag);
char *regfs_layout_tag_index_link(const char *name, const char *tag, const char *digest);
char *regfs_layout_uploads_dir(const char *name);
char *regfs_layout_upload_dir(const char *name, const char *uuid);
char *regfs_layout_upload_data(const char *name, const char *uuid);
char *regfs_layout_upload_startedat(const char *name, const char *uuid);

/* uuid: 36-char RFC 4122 text form, lowercase; validated. */
int regfs_layout_uuid_valid(const char *uuid);

/* Last path component (pointer into p). */
const char *regfs_path_base(const char *p);

#endif
