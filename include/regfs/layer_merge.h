/* layer_merge.h — an image's layers merged as a container runtime sees them
 * (the mount's .rootfs/ view): a pure function from the entries of each
 * layer, lowest first, to one tree.
 *
 * The OCI image spec's rules, applied layer by layer from the bottom:
 *  - `<dir>/.wh.<name>` deletes <dir>/<name> (and all below it) of the lower
 *    layers; `<dir>/.wh..wh..opq` hides every lower entry below <dir> (the
 *    directory itself stays). Whiteouts apply only to lower layers, never to
 *    entries of their own layer, and never appear in the result. Other
 *    `.wh..wh.*` names (aufs metadata) are dropped too.
 *  - an entry replaces the lower entry of the same path; a directory over a
 *    directory keeps the lower directory's children (the upper one's
 *    metadata wins, unless the upper one is only implied by deeper entries:
 *    then the lower one stays, as when a runtime extracts the layer);
 *    anything else over a directory removes its subtree.
 *  - a hard link is a name for its target's data: the merged tree keeps an
 *    inode identity per (layer, target entry), so every name that still
 *    shows the same data shares it and st_nlink counts them.
 *
 * Inputs are described by a callback per layer (no dependency on how the
 * layer index stores them). Paths are normalized relative paths ("a/b", ""
 * for the root directory): the layer index refused names that climb.
 *
 * Bad input never fails the merge: a whiteout with an empty name or "."/"..",
 * an entry whose parent is missing or not a directory after the merge, a hard
 * link whose target index is out of range: the entry is left out and counted
 * in layer_merged_dropped() (the caller logs it). Errors: -ENOMEM, -EINVAL
 * (more than UINT32_MAX entries or layers). Not thread-safe while being
 * built; a finished merged tree is read-only and may be read by many threads. */
#ifndef REGFS_LAYER_MERGE_H
#define REGFS_LAYER_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/err.h>

/* One entry of one layer, as the merge needs it. `path` is borrowed for the
 * duration of layer_merge only (it is copied). */
struct layer_merge_item {
	const char *path;
	bool is_dir;
	bool implied;       /* a directory absent from the tar, implied by a
	                     * deeper entry (the layer index made it up) */
	int64_t link;       /* a hard link: index of its target entry in the same
	                     * layer; -1 otherwise */
};

struct layer_merge_layer {
	size_t n;           /* entries */
	/* Fills *out with entry i (0 <= i < n) of the layer. */
	void (*item)(void *arg, size_t i, struct layer_merge_item *out);
	void *arg;
};

#define LAYER_MERGED_NONE UINT32_MAX

/* One name of the merged tree. Index 0 is always the root (path ""). */
struct layer_merged_entry {
	const char *path;     /* "a/b" (owned by the tree) */
	const char *name;     /* the last component (points into path) */
	uint32_t layer;       /* which layer it comes from (LAYER_MERGED_NONE: the
	                       * root when no layer has an entry for it) */
	uint32_t entry;       /* its index in that layer */
	uint32_t data_entry;  /* the entry holding its data: the hard link's
	                       * target, else `entry` */
	uint32_t parent;      /* index of its directory (the root: 0) */
	uint32_t first_child, n_children; /* directories: see layer_merged_child_at */
	uint32_t ino;         /* the same for every name of the same data: the
	                       * index of the first such name */
	uint32_t nlink;       /* names sharing ino (directories: 1) */
	bool is_dir;
};

struct layer_merged;

/* Merges layers[0..n) (lowest first) into *out (free with
 * layer_merged_free). 0, -ENOMEM, -EINVAL (err filled). */
int layer_merge(const struct layer_merge_layer *layers, size_t n, struct layer_merged **out,
		struct regfs_err *err);
void layer_merged_free(struct layer_merged *m);

size_t layer_merged_count(const struct layer_merged *m);
/* Entry i (< count); NULL when out of range. */
const struct layer_merged_entry *layer_merged_get(const struct layer_merged *m, size_t i);
/* Index of the entry at `path` ("" the root), or -ENOENT. O(log n). */
int64_t layer_merged_find(const struct layer_merged *m, const char *path);
/* Index of the child `name` of directory `dir`, or -ENOENT (-ENOTDIR when
 * dir is not a directory). O(log children). */
int64_t layer_merged_child(const struct layer_merged *m, size_t dir, const char *name);
/* The k-th child (k < n_children) of directory `dir`, in strcmp order of
 * names: an entry index; -ENOENT when out of range. */
int64_t layer_merged_child_at(const struct layer_merged *m, size_t dir, size_t k);
/* Entries left out as bad input (see above). */
size_t layer_merged_dropped(const struct layer_merged *m);

#endif
