/* proxy_expire_plan.h — the decision of one expiry pass over one cached
 * repository, as pure data (no storage, no locks): from its tags (with the
 * time each was last pulled) and its manifest revisions (with what each
 * references), which tags expire, which manifests then become unreferenced
 * and which blobs those manifests referenced. proxy_expire.c gathers the
 * input from storage and applies the plan; whether a blob is referenced by
 * any other repository is not decided here (the usage model answers that).
 *
 * Rules (docs/proxy.md, "Expiry"):
 *  - a tag expires when it was last pulled before now - ttl: times are whole
 *    seconds and a pull recorded at second t happened in [t, t+1), so only a
 *    record older than now - ttl is surely more than ttl old;
 *  - a manifest is kept when a kept tag reaches it: directly, as a child of a
 *    reached index (recursively), or as a referrer whose subject is reached
 *    (a signature of a kept image stays), as gc.c's delete-untagged decides;
 *  - a manifest no kept tag reaches is still kept while its own time (a pull
 *    by digest, or when it was stored) is younger than ttl: an image pulled
 *    by digest only, or stored a moment before its tag link, is not removed;
 *    a kept manifest keeps what it reaches, as a tag does;
 *  - the blobs of a removed manifest are the manifest itself, its config
 *    and its layers (children are manifests of the list, decided on their own).
 */
#ifndef REGFS_PROXY_EXPIRE_PLAN_H
#define REGFS_PROXY_EXPIRE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <regfs/strvec.h>

struct pe_tag {
	const char *name;
	const char *digest;     /* what the tag points at */
	int64_t pulled;         /* unix seconds of its last pull (or what stands for it) */
};

struct pe_manifest {
	const char *digest;
	int64_t pulled;         /* last pull by digest, else when its revision was stored */
	const char *subject;    /* NULL or "": none */
	const char *const *refs; size_t n_refs;   /* config and layers */
	const char *const *kids; size_t n_kids;   /* index children */
};

/* The plan; every vector sorted and free of duplicates. */
struct pe_plan {
	struct strvec tags;       /* tag names to delete */
	struct strvec manifests;  /* revisions to delete */
	struct strvec blobs;      /* candidates: digests the deleted manifests held */
};

/* Fills *out (zeroed by the caller, cleared with pe_plan_clear even on
 * error). ttl <= 0: nothing expires. 0 or -ENOMEM. */
int pe_plan_repo(const struct pe_tag *tags, size_t n_tags, const struct pe_manifest *mfs,
		 size_t n_mfs, int64_t now, int64_t ttl, struct pe_plan *out);
void pe_plan_clear(struct pe_plan *p);

#endif
