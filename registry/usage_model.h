/* usage_model.h — the in-memory storage accounting of regfs-registry: what
 * every blob costs, which repository references it, and the figures derived
 * from that (per repository: bytes, exclusive, shared; totals: stored,
 * referenced, garbage). Pure data: no storage, no HTTP; registry/usage.c
 * feeds it from a startup walk and from the write paths.
 *
 * "Referenced" follows garbage collection's mark phase (gc.c) exactly: a
 * repository references every manifest revision it holds (with
 * delete_untagged: only those its tags reach, through index children and
 * referrers whose subject is reached), and what each of them references
 * (config, layers; for an index its children, recursively, depth <= 16). A
 * stored blob no repository references is garbage: what `garbage-collect`
 * (with --delete-untagged when delete_untagged) would free. It counts as
 * garbage.manifests when it is a manifest revision of some repository (an
 * untagged manifest, with delete_untagged), garbage.blobs otherwise (layers,
 * configs, and manifests no repository lists any more).
 *
 * Every update is idempotent (adding what is there, removing what is not,
 * are no-ops), so the startup walk and the hooks may overlap (usage.c).
 *
 * Memory: per blob digest ~130 bytes (entry 32, digest string ~90 with its
 * allocation, hash slot 8); per parsed manifest 16 bytes + 4 per reference;
 * per repository and referenced blob ~8 bytes (a slot of its id set); per tag
 * its name plus 16. Digests are interned once (an id per digest).
 *
 * Thread safety: none here; usage.c serializes every call with one mutex.
 * Functions return 0 or -ENOMEM (the model is then unchanged or, for a
 * repository, recomputed at the next change). */
#ifndef REGFS_USAGE_MODEL_H
#define REGFS_USAGE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/strvec.h>

struct regfs_manifest;
struct usage_model;

struct usage_totals {
	uint64_t stored;            /* blobs (manifests included) + uploads in progress */
	uint64_t referenced;        /* stored blobs some repository references */
	uint64_t garbage_blobs, garbage_manifests, garbage_uploads;
	uint64_t blobs, uploads;    /* bytes of stored blobs; of uploads in progress */
};

struct usage_repo_figures {
	uint64_t tags, manifests;   /* tags; manifest revisions */
	uint64_t bytes;             /* unique bytes it references (manifests included) */
	uint64_t exclusive;         /* of which no other repository references */
	uint64_t shared;            /* bytes - exclusive */
};

struct usage_model *usage_model_new(bool delete_untagged);   /* NULL on ENOMEM */
void usage_model_free(struct usage_model *m);

/* A blob's data is in storage with this size (a size change is applied to
 * every figure that counts it). */
int usage_model_blob_stored(struct usage_model *m, const char *digest, uint64_t size);
/* A blob's data was deleted. */
int usage_model_blob_removed(struct usage_model *m, const char *digest);
/* How many repositories reference the blob (0 when unknown). */
uint32_t usage_model_blob_nrepos(const struct usage_model *m, const char *digest);
/* true when the model knows the blob as stored. */
bool usage_model_blob_is_stored(const struct usage_model *m, const char *digest);
/* What manifest `digest` references (parsed; a manifest is immutable, so the
 * first call wins). */
int usage_model_manifest(struct usage_model *m, const char *digest,
			 const struct regfs_manifest *parsed);
bool usage_model_manifest_known(const struct usage_model *m, const char *digest);

/* Repository changes. Each recomputes what the repository references. */
int usage_model_revision_add(struct usage_model *m, const char *repo, const char *digest);
/* Also removes the tags that point at it (as DELETE by digest does). */
int usage_model_revision_remove(struct usage_model *m, const char *repo, const char *digest);
int usage_model_tag_set(struct usage_model *m, const char *repo, const char *tag,
			const char *digest);
int usage_model_tag_remove(struct usage_model *m, const char *repo, const char *tag);
/* Replaces everything known of a repository's revisions and tags (the walk):
 * tags is 2*n_tags strings, name then digest. */
int usage_model_repo_replace(struct usage_model *m, const char *repo, const struct strvec *revs,
			     const struct strvec *tags);
/* Makes the repository known (listed with zeros). */
int usage_model_repo_touch(struct usage_model *m, const char *repo);
/* A counter bumped by every change of the repository (0: unknown). */
uint64_t usage_model_repo_gen(const struct usage_model *m, const char *repo);

/* Uploads in progress: set (size, start time) or removed. */
int usage_model_upload_set(struct usage_model *m, const char *repo, const char *uuid,
			   uint64_t size, int64_t started);
void usage_model_upload_remove(struct usage_model *m, const char *uuid);

/* Totals; uploads started before `upload_cutoff` count as garbage. */
void usage_model_totals(const struct usage_model *m, int64_t upload_cutoff,
			struct usage_totals *out);
/* A repository's figures; -ENOENT when unknown. */
int usage_model_repo(const struct usage_model *m, const char *repo,
		     struct usage_repo_figures *out);
/* Every known repository name, sorted, appended to out. */
int usage_model_repo_names(const struct usage_model *m, struct strvec *out);

/* Quota check: the repository's figures now (`now`) and if manifest
 * `digest` (len bytes, `parsed`) were pushed to it (tag NULL: by digest).
 * The manifest counts as referenced whether or not a tag reaches it, so a
 * push by digest cannot escape a quota. *added: the exclusive bytes the
 * push adds. */
int usage_model_would_be(const struct usage_model *m, const char *repo, const char *tag,
			 const char *digest, uint64_t len, const struct regfs_manifest *parsed,
			 struct usage_repo_figures *now, struct usage_repo_figures *out,
			 uint64_t *added);

#endif
