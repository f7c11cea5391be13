/* meta.c — .regfs/ (META) and its files (METAFILE): status, stats,
 * errors, usage and usage.txt, generated at every open and stat (stats.c,
 * util.c, usage_out.c). */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int meta_list(struct mnt *m, struct node *dir, struct child **out, size_t *n)
{
	(void)m, (void)dir;
	struct clist l = {0};
	static const char *const files[] = {"errors", "stats", "status", "usage",
					       "usage.txt"}; /* sorted */
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		struct child *c = cl_add(&l, files[i], K_METAFILE, NULL);
		if (c && !(c->arg = strdup(files[i])))
			l.err = -ENOMEM;
	}
	return cl_done(&l, out, n);
}

static int metafile_content(struct mnt *m, struct node *n, char **buf, size_t *len)
{
	if (strcmp(n->arg, "status") == 0)
		return stats_status_text(m, buf, len);
	if (strcmp(n->arg, "errors") == 0)
		return fs_errors_text(buf, len);
	if (strcmp(n->arg, "usage") == 0)
		return usage_json_text(m, buf, len);
	if (strcmp(n->arg, "usage.txt") == 0)
		return usage_table_text(m, buf, len);
	return stats_json_text(m, buf, len);
}

/* Size of what a read would get now; read fresh every time (timeout 0). */
static int metafile_attr(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	char *buf;
	size_t len;
	int rc = metafile_content(m, n, &buf, &len);
	if (rc)
		return rc;
	free(buf);
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	st->st_mtim.tv_sec = time(NULL);
	*timeout = 0;
	return 0;
}

static int metafile_open(struct mnt *m, struct node *n, struct fuse_file_info *fi, struct fh *h)
{
	h->type = FH_OWNED;
	fi->direct_io = 1; /* changes on every read */
	return metafile_content(m, n, &h->owned, &h->len);
}

const struct kind_ops meta_kind = {
	.name = ".regfs", .type = S_IFDIR,
	.list = meta_list, .lookup = lookup_by_list, .attr = attr_dir,
};

const struct kind_ops metafile_kind = {
	.name = ".regfs file", .type = S_IFREG,
	.attr = metafile_attr, .open = metafile_open, .content = metafile_content,
};
