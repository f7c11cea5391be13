/* layout.c — the storage paths of the reference registry's layout (blob data,
 * repositories, layer and revision links), built from validated names and
 * digests. See include/regfs/layout.h. */
#include <regfs/layout.h>
#include <regfs/digest.h>
#include <regfs/fmt.h>
#include <regfs/names.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits a validated digest into algorithm name and hex. */
static int split(const char *digest, const char **alg, const char **hex)
{
	enum regfs_digest_alg a;
	if (regfs_digest_parse(digest, &a, hex, NULL) != 0)
		return -1;
	*alg = regfs_digest_alg_name(a);
	return 0;
}

char *regfs_layout_blob_dir(const char *digest)
{
	const char *alg, *hex;
	if (split(digest, &alg, &hex))
		return NULL;
	return xasprintf(REGFS_LAYOUT_BLOBS "/%s/%.2s/%s", alg, hex, hex);
}

char *regfs_layout_blob_data(const char *digest)
{
	const char *alg, *hex;
	if (split(digest, &alg, &hex))
		return NULL;
	return xasprintf(REGFS_LAYOUT_BLOBS "/%s/%.2s/%s/data", alg, hex, hex);
}

char *regfs_layout_repo(const char *name)
{
	if (!regfs_name_valid(name))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s", name);
}

static char *repo_digest_path(const char *name, const char *digest, const char *mid)
{
	const char *alg, *hex;
	if (!regfs_name_valid(name) || split(digest, &alg, &hex))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/%s/%s/%s/link", name, mid, alg, hex);
}

char *regfs_layout_layer_link(const char *name, const char *digest)
{
	return repo_digest_path(name, digest, "_layers");
}

char *regfs_layout_revision_link(const char *name, const char *digest)
{
	return repo_digest_path(name, digest, "_manifests/revisions");
}

char *regfs_layout_revisions_dir(const char *name, const char *alg)
{
	if (!regfs_name_valid(name) || (strcmp(alg, "sha256") && strcmp(alg, "sha512")))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_manifests/revisions/%s", name, alg);
}

char *regfs_layout_tags_dir(const char *name)
{
	if (!regfs_name_valid(name))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_manifests/tags", name);
}

char *regfs_layout_tag_dir(const char *name, const char *tag)
{
	if (!regfs_name_valid(name) || !regfs_tag_valid(tag))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_manifests/tags/%s", name, tag);
}

char *regfs_layout_tag_current(const char *name, const char *tag)
{
	if (!regfs_name_valid(name) || !regfs_tag_valid(tag))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_manifests/tags/%s/current/link", name, tag);
}

char *regfs_layout_tag_index_link(const char *name, const char *tag, const char *digest)
{
	const char *alg, *hex;
	if (!regfs_name_valid(name) || !regfs_tag_valid(tag) || split(digest, &alg, &hex))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_manifests/tags/%s/index/%s/%s/link", name, tag, alg, hex);
}

char *regfs_layout_uploads_dir(const char *name)
{
	if (!regfs_name_valid(name))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_uploads", name);
}

int regfs_layout_uuid_valid(const char *u)
{
	if (!u || strlen(u) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		char c = u[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

static char *upload_path(const char *name, const char *uuid, const char *leaf)
{
	if (!regfs_name_valid(name) || !regfs_layout_uuid_valid(uuid))
		return NULL;
	return xasprintf(REGFS_LAYOUT_REPOS "/%s/_uploads/%s%s%s", name, uuid, *leaf ? "/" : "", leaf);
}

char *regfs_layout_upload_dir(const char *name, const char *uuid) { return upload_path(name, uuid, ""); }
char *regfs_layout_upload_data(const char *name, const char *uuid) { return upload_path(name, uuid, "data"); }
char *regfs_layout_upload_startedat(const char *name, const char *uuid)
{
	return upload_path(name, uuid, "startedat");
}

const char *regfs_path_base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}
