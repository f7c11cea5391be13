/* platforms.c — an index's platforms/ (PLATFORMS): one symlink per child
 * manifest (PLATLINK, <os>-<arch>[-<variant>] -> ../../<child digest>),
 * named by platform, unique and stable by manifest order. Fixed by the
 * index's digest. */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int platforms_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	const struct mentry *e;
	int rc = node_manifest(m, dir, &e);
	if (rc)
		return rc;
	struct clist l = {0};
	for (size_t i = 0; i < e->m->n_manifests; i++) {
		const struct regfs_descriptor *d = &e->m->manifests[i];
		char base[256], name[280];
		if (d->os && d->arch)
			snprintf(base, sizeof base, "%s-%s%s%s", d->os, d->arch,
				 d->variant ? "-" : "", d->variant ? d->variant : "");
		else
			snprintf(base, sizeof base, "unknown");
		/* Platform fields are free text; a directory entry cannot hold
		 * '/' (the kernel fails the whole listing on one). */
		for (char *q = base; *q; q++)
			if (*q == '/')
				*q = '_';
		/* Two children with one platform (attestations, duplicates): keep
		 * names unique and stable by manifest order. */
		snprintf(name, sizeof name, "%s", base);
		for (int k = 2;; k++) {
			bool dup = false;
			for (size_t j = 0; j < l.n; j++)
				dup |= strcmp(l.v[j].name, name) == 0;
			if (!dup)
				break;
			snprintf(name, sizeof name, "%s.%d", base, k);
		}
		struct child *c = cl_add(&l, name, K_PLATLINK, dir->repo);
		if (c)
			snprintf(c->digest, sizeof c->digest, "%s", d->digest);
	}
	mcache_put(m->mc, e);
	return cl_done(&l, out, n);
}

static int platlink_readlink(struct mnt *m, struct node *n, char *buf, size_t size)
{
	(void)m;
	snprintf(buf, size, "../../%s", n->digest);
	return 0;
}

static int platlink_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	(void)m;
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_size = (off_t)(strlen("../../") + strlen(n->digest));
	*timeout = IMMUTABLE_TIMEOUT;
	return 0;
}

const struct kind_ops platforms_kind = {
	.name = "platforms", .type = S_IFDIR,
	.list = platforms_list, .lookup = lookup_by_list, .attr = attr_fixed_dir,
	.unlink = inside_manifest_unlink, .rmdir = inside_manifest_rmdir,
};

const struct kind_ops platlink_kind = {
	.name = "platform link", .type = S_IFLNK,
	.attr = platlink_attr, .readlink = platlink_readlink,
};
