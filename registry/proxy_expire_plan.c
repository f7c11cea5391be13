/* proxy_expire_plan.c — see proxy_expire_plan.h. Reachability is a fixpoint
 * over a sorted index of the revisions (each round marks at least one more
 * manifest or ends), so a repository of n revisions costs O(n^2) at worst
 * and O(n log n) for the usual image-plus-index shapes. */
#include "proxy_expire_plan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	const char *digest;
	size_t i;        /* index into mfs */
};

struct plan_ctx {
	const struct pe_manifest *mfs;
	size_t n;
	struct slot *order;   /* the revisions sorted by digest */
	bool *reached;
};

static int by_digest(const void *a, const void *b)
{
	return strcmp(((const struct slot *)a)->digest, ((const struct slot *)b)->digest);
}

/* The index of manifest `digest` in mfs, or -1 when it is not a revision. */
static long find(const struct plan_ctx *c, const char *digest)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->order[mid].digest, digest);
		if (cmp == 0)
			return (long)c->order[mid].i;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool mark(struct plan_ctx *c, const char *digest)
{
	long i = digest ? find(c, digest) : -1;
	if (i < 0 || c->reached[i])
		return false;
	c->reached[i] = true;
	return true;
}

/* Children of reached indexes and referrers of reached subjects, until
 * nothing changes. */
static void close_over(struct plan_ctx *c)
{
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < c->n; i++) {
			const struct pe_manifest *m = &c->mfs[i];
			if (!c->reached[i] && m->subject && m->subject[0]) {
				long s = find(c, m->subject);
				if (s >= 0 && c->reached[s]) {
					c->reached[i] = true;
					changed = true;
				}
			}
			if (!c->reached[i])
				continue;
			for (size_t k = 0; k < m->n_kids; k++)
				changed |= mark(c, m->kids[k]);
		}
	}
}

/* Blobs of removed manifests that no kept manifest of this repository holds. */
static int candidates(const struct plan_ctx *c, struct pe_plan *out)
{
	struct strvec kept = {0};
	int rc = 0;
	for (size_t i = 0; i < c->n && rc == 0; i++) {
		const struct pe_manifest *m = &c->mfs[i];
		struct strvec *to = c->reached[i] ? &kept : &out->blobs;
		rc = strvec_push(to, m->digest);
		for (size_t k = 0; k < m->n_refs && rc == 0; k++)
			rc = strvec_push(to, m->refs[k]);
	}
	strvec_sort(&kept);
	strvec_sort(&out->blobs);
	strvec_uniq(&out->blobs);
	/* drop what a kept manifest holds (both sorted: one merge pass) */
	size_t w = 0, k = 0;
	for (size_t i = 0; rc == 0 && i < out->blobs.n; i++) {
		while (k < kept.n && strcmp(kept.v[k], out->blobs.v[i]) < 0)
			k++;
		if (k < kept.n && strcmp(kept.v[k], out->blobs.v[i]) == 0)
			free(out->blobs.v[i]);
		else
			out->blobs.v[w++] = out->blobs.v[i];
	}
	if (rc == 0) {
		out->blobs.n = w;
		if (out->blobs.v)
			out->blobs.v[w] = NULL;
	}
	strvec_clear(&kept);
	return rc;
}

int pe_plan_repo(const struct pe_tag *tags, size_t n_tags, const struct pe_manifest *mfs,
		 size_t n_mfs, int64_t now, int64_t ttl, struct pe_plan *out)
{
	if (ttl <= 0)
		return 0;
	int64_t cutoff = now - ttl;
	struct plan_ctx c = {.mfs = mfs, .n = n_mfs};
	c.order = malloc((n_mfs ? n_mfs : 1) * sizeof *c.order);
	c.reached = calloc(n_mfs ? n_mfs : 1, sizeof *c.reached);
	int rc = c.order && c.reached ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n_mfs; i++)
		c.order[i] = (struct slot){mfs[i].digest, i};
	if (rc == 0 && n_mfs > 1)
		qsort(c.order, n_mfs, sizeof *c.order, by_digest);
	for (size_t i = 0; rc == 0 && i < n_tags; i++) {
		if (tags[i].pulled < cutoff)
			rc = strvec_push(&out->tags, tags[i].name);
		else
			mark(&c, tags[i].digest);
	}
	for (size_t i = 0; rc == 0 && i < n_mfs; i++)
		if (mfs[i].pulled >= cutoff)
			c.reached[i] = true;
	if (rc == 0)
		close_over(&c);
	for (size_t i = 0; rc == 0 && i < n_mfs; i++)
		if (!c.reached[i])
			rc = strvec_push(&out->manifests, mfs[i].digest);
	if (rc == 0)
		rc = candidates(&c, out);
	strvec_sort(&out->tags);
	strvec_uniq(&out->tags);
	strvec_sort(&out->manifests);
	strvec_uniq(&out->manifests);
	free(c.order);
	free(c.reached);
	return rc;
}

void pe_plan_clear(struct pe_plan *p)
{
	strvec_clear(&p->tags);
	strvec_clear(&p->manifests);
	strvec_clear(&p->blobs);
}
