/* regfs-layerindex — fetches a layer's push-time index through the client
 * (regfs_client_layer_index), decodes it (layer_index_decode) and prints its
 * entries, so integration tests can compare them with `tar -tvf` of the blob.
 *
 *   regfs-layerindex URL REPO DIGEST [OUT]
 *
 * One line per entry (the root and directories the tar does not hold are
 * left out), the fields of GNU `tar -tv --numeric-owner`:
 *   <type><rwx×3> <uid>/<gid> <size> <path>[ -> <symlink target>| link to <target>]
 * with <type> as tar prints it ('-' file, 'd', 'l', 'h', 'c', 'b', 'p') and
 * size 0 for everything but regular files. OUT: the raw index bytes too.
 * On failure: "E<ERRNO-NAME>: message" on stderr; exit 1 (3 when the
 * index is not built: ENOENT, so a test can wait for it), 2 for usage. */
#include <regfs/client.h>
#include <regfs/layer.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(int rc, const struct regfs_err *e)
{
	const char *name = strerrorname_np(-rc);
	fprintf(stderr, "%s: %s\n", name ? name : "E?", regfs_err_str(e));
	return rc == -ENOENT ? 3 : 1;
}

static void mode_string(const struct layer_entry *en, char out[11])
{
	static const char type[] = {[LAYER_REG] = '-', [LAYER_DIR] = 'd', [LAYER_SYMLINK] = 'l',
				    [LAYER_HARDLINK] = 'h', [LAYER_CHR] = 'c', [LAYER_BLK] = 'b',
				    [LAYER_FIFO] = 'p'};
	out[0] = en->type <= LAYER_FIFO ? type[en->type] : '?';
	const char *rwx = "rwxrwxrwx";
	for (int i = 0; i < 9; i++)
		out[1 + i] = (en->mode & (0400u >> i)) ? rwx[i] : '-';
	/* setuid/setgid/sticky as ls and tar show them */
	if (en->mode & 04000)
		out[3] = (en->mode & 0100) ? 's' : 'S';
	if (en->mode & 02000)
		out[6] = (en->mode & 0010) ? 's' : 'S';
	if (en->mode & 01000)
		out[9] = (en->mode & 0001) ? 't' : 'T';
	out[10] = '\0';
}

static void print_entries(const struct layer_index *ix)
{
	size_t n = layer_index_count(ix);
	for (size_t i = 1; i < n; i++) {
		const struct layer_entry *en = layer_index_entry(ix, i);
		if (!en || (en->flags & LAYER_F_SYNTHETIC))
			continue;
		char m[11];
		mode_string(en, m);
		printf("%s %" PRIu32 "/%" PRIu32 " %" PRIu64 " %s", m, en->uid, en->gid,
		       en->type == LAYER_REG ? en->size : 0, en->path);
		if (en->type == LAYER_SYMLINK && en->link)
			printf(" -> %s", en->link);
		else if (en->type == LAYER_HARDLINK && en->link)
			printf(" link to %s", en->link);
		putchar('\n');
	}
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: regfs-layerindex URL REPO DIGEST [OUT]\n");
		return 2;
	}
	struct regfs_client_opts o = {.url = argv[1]};
	struct regfs_client *c = NULL;
	struct regfs_err e = {0};
	int rc = regfs_client_new(&o, &c, &e);
	if (rc)
		return fail(rc, &e);
	char *buf = NULL;
	size_t len = 0;
	rc = regfs_client_layer_index(c, argv[2], argv[3], &buf, &len, &e);
	regfs_client_free(c);
	if (rc)
		return fail(rc, &e);
	if (argc == 5) {
		FILE *f = fopen(argv[4], "wb");
		if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
			fprintf(stderr, "cannot write %s\n", argv[4]);
			free(buf);
			return 1;
		}
	}
	struct layer_index *ix = NULL;
	rc = layer_index_decode(buf, len, NULL, &ix, &e);
	free(buf);
	if (rc)
		return fail(rc, &e);
	print_entries(ix);
	layer_index_free(ix);
	return 0;
}
