/* usage_walk.c — the accounting's input made from what the walk found
 * (walk.c): one reference per tag and per untagged manifest, each with the
 * blobs it reaches through the manifest cache (its own bytes, config,
 * layers, and an index's children with theirs), leaving out the manifests
 * the walk found missing, as du does. */
#include "mount.h"
#include "usage.h"

#include <errno.h>
#include <string.h>

/* Was (repo, digest) found missing? (few: a linear scan) */
static bool is_gone(const struct usage_walk_in *in, const char *repo, const char *digest)
{
	for (size_t i = 0; i < in->n_gone; i++)
		if (in->gone_repo[i] == repo && strcmp(in->gone_digest[i], digest) == 0)
			return true;
	return false;
}

/* Adds e's blobs and (depth permitting) its children's. */
static int closure(struct usage_builder *b, struct manifest_cache *mc,
		   const struct usage_walk_in *in, const char *repo, const struct mentry *e,
		   int depth)
{
	const struct regfs_manifest *man = e->m;
	int rc = usage_ref_blob(b, e->digest, e->len, USAGE_MANIFEST);
	if (!rc && man->has_config)
		rc = usage_ref_blob(b, man->config.digest, (uint64_t)man->config.size,
				    USAGE_CONFIG);
	for (size_t l = 0; !rc && l < man->n_layers; l++)
		rc = usage_ref_blob(b, man->layers[l].digest, (uint64_t)man->layers[l].size,
				    USAGE_LAYER);
	for (size_t c = 0; !rc && depth < 5 && c < man->n_manifests; c++) {
		const char *d = man->manifests[c].digest;
		const struct mentry *ce;
		if (is_gone(in, repo, d) || mcache_get(mc, repo, d, &ce) != 0)
			continue;
		rc = closure(b, mc, in, repo, ce, depth + 1);
		mcache_put(mc, ce);
	}
	return rc;
}

int usage_from_walk(struct manifest_cache *mc, const struct usage_walk_in *in,
		    struct usage **out)
{
	struct usage_builder *b = usage_builder_new();
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const char *repo = in->repo[i], *digest = in->digest[i];
		const struct tag_ent *te = in->te[i];
		if (!te && is_gone(in, repo, digest))
			continue;
		const struct mentry *e;
		if (mcache_get(mc, repo, digest, &e) != 0)
			continue; /* the walk failed on it: no accounting then (walk.c) */
		int rc = usage_ref_begin(b, repo, te ? te->tag : NULL, digest, te ? te->mtime : 0);
		if (!rc)
			rc = closure(b, mc, in, repo, e, 0);
		mcache_put(mc, e);
		if (rc) {
			usage_builder_free(b);
			return rc;
		}
	}
	return usage_build(b, out);
}
