/* mpack.c — parsed manifests packed into one allocation each.
 *
 * The mount keeps parsed manifests in memory up to a budget (manifests.c). regfs_manifest_parse builds it from many small
 * allocations: a string per media type, an array per descriptor list. With
 * tens of thousands of manifests their malloc headers and the repeated media
 * type strings ("application/vnd.oci.image.layer.v1.tar+gzip", the same for
 * every layer of a registry) were a third of the manifest cache. Packed, a
 * manifest is one block: the struct, its descriptors, then the strings that
 * differ between manifests (annotations); media types, artifact types and
 * platform strings point into a process-wide intern table.
 *
 * The intern table only grows (its strings must outlive every packed
 * manifest that points at them) and is bounded by MPACK_INTERN_MAX strings
 * of at most MPACK_INTERN_LEN bytes (a media type is at most 127 by RFC
 * 6838): past either, strings are copied into the block like annotations,
 * so a registry with unbounded or huge distinct media types costs memory
 * per manifest, which goes with the manifest, not for the process's life. */
#include "manifests_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/hash.h>

#define INTERN_SLOTS (MPACK_INTERN_MAX * 2) /* open addressing, at most half full */

static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;
static char *intern_tab[INTERN_SLOTS];
static size_t intern_n;

/* The interned copy of s, NULL when the table is full or out of memory. */
static const char *intern(const char *s)
{
	size_t j = regfs_fnv1a64_str(s) & (INTERN_SLOTS - 1);
	const char *r = NULL;
	pthread_mutex_lock(&intern_mu);
	while (intern_tab[j] && strcmp(intern_tab[j], s) != 0)
		j = (j + 1) & (INTERN_SLOTS - 1);
	if (intern_tab[j])
		r = intern_tab[j];
	else if (intern_n < MPACK_INTERN_MAX && (intern_tab[j] = strdup(s))) {
		intern_n++;
		r = intern_tab[j];
	}
	pthread_mutex_unlock(&intern_mu);
	return r;
}

/* One string field. Sizing (dst NULL): the bytes s needs in the tail.
 * Copying: *dst points at the interned string or at s copied to *tail. An
 * interned string stays interned, so both passes agree on what goes where. */
static size_t pack_str(const char *s, bool shared, char **dst, char **tail)
{
	if (!s) {
		if (dst)
			*dst = NULL;
		return 0;
	}
	const char *in = shared && strlen(s) <= MPACK_INTERN_LEN ? intern(s) : NULL;
	if (in) {
		if (dst)
			*dst = (char *)in; /* read-only for every user of a cached manifest */
		return 0;
	}
	size_t n = strlen(s) + 1;
	if (dst) {
		memcpy(*tail, s, n);
		*dst = *tail;
		*tail += n;
	}
	return n;
}

/* A descriptor's strings; dst (NULL when sizing) already holds *src's copy. */
static size_t pack_desc(const struct regfs_descriptor *src, struct regfs_descriptor *dst, char **tail)
{
	size_t n = pack_str(src->media_type, true, dst ? &dst->media_type : NULL, tail);
	n += pack_str(src->artifact_type, true, dst ? &dst->artifact_type : NULL, tail);
	n += pack_str(src->os, true, dst ? &dst->os : NULL, tail);
	n += pack_str(src->arch, true, dst ? &dst->arch : NULL, tail);
	n += pack_str(src->variant, true, dst ? &dst->variant : NULL, tail);
	n += pack_str(src->annotations, false, dst ? &dst->annotations : NULL, tail);
	return n;
}

/* Every string of m (sizing when out is NULL, else into out and *tail). */
static size_t pack_all(const struct regfs_manifest *m, struct regfs_manifest *out, char **tail)
{
	size_t n = pack_str(m->media_type, true, out ? &out->media_type : NULL, tail);
	n += pack_str(m->artifact_type, true, out ? &out->artifact_type : NULL, tail);
	n += pack_str(m->annotations, false, out ? &out->annotations : NULL, tail);
	n += pack_desc(&m->config, out ? &out->config : NULL, tail);
	n += pack_desc(&m->subject, out ? &out->subject : NULL, tail);
	for (size_t i = 0; i < m->n_layers; i++)
		n += pack_desc(&m->layers[i], out ? &out->layers[i] : NULL, tail);
	for (size_t i = 0; i < m->n_manifests; i++)
		n += pack_desc(&m->manifests[i], out ? &out->manifests[i] : NULL, tail);
	return n;
}

struct regfs_manifest *manifest_pack(const struct regfs_manifest *m, size_t *bytes)
{
	size_t nd = m->n_layers + m->n_manifests;
	size_t head = sizeof *m + nd * sizeof(struct regfs_descriptor);
	size_t strs = pack_all(m, NULL, NULL);
	/* The struct holds pointers, so descriptors after it are aligned. */
	struct regfs_manifest *o = malloc(head + strs);
	if (!o)
		return NULL;
	*bytes = head + strs;
	*o = *m;
	struct regfs_descriptor *d = (struct regfs_descriptor *)(o + 1);
	o->layers = m->n_layers ? d : NULL;
	o->manifests = m->n_manifests ? d + m->n_layers : NULL;
	if (m->n_layers)
		memcpy(o->layers, m->layers, m->n_layers * sizeof *d);
	if (m->n_manifests)
		memcpy(o->manifests, m->manifests, m->n_manifests * sizeof *d);
	char *tail = (char *)(d + nd);
	pack_all(m, o, &tail);
	return o;
}
