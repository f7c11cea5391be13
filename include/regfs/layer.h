/* layer.h — the layer index: every tar entry of a layer blob with its data
 * offset, plus what random access into the compressed blob needs (gzip
 * checkpoints, zstd frames), in one streaming pass; random-access reads that
 * verify every span they use; our own on-disk format (docs/layer-index.md).
 *
 * Pure: no FUSE, no HTTP, no storage. Bytes come in through callbacks the
 * caller writes (a storage reader, an HTTP Range request, a cache file).
 *
 * Thread safety: an index is immutable once built or decoded; any number of
 * threads may call the const functions and layer_read() on it at once, each
 * with its own struct layer_cursor (or none).
 *
 * Errors: 0 or a negative errno; when `e` is non-NULL it is filled with a
 * message naming the layer (opts->name), the entry or span, and why:
 *   -EINVAL   not a tar, corrupt header, corrupt gzip/zstd, hostile index
 *   -E2BIG    a limit of struct layer_build_opts was exceeded
 *   -EIO      a span's bytes do not match the digest stored in the index,
 *             or the fetch callback returned fewer bytes than the span has
 *   -ENOTSUP  unsupported compression (the magic is named in the message)
 *   -ENOMEM   out of memory
 *   any -errno returned by a read/fetch callback is passed through.
 *
 * Typical use (the mount):
 *     struct layer_index *ix;
 *     if (layer_index_build(blob_read, &r, &(struct layer_build_opts){
 *                     .name = digest }, &ix, &err) < 0) ...
 *     long i = layer_index_find(ix, "etc/os-release");
 *     ssize_t n = layer_read(ix, i, 0, buf, sizeof buf, range_fetch, &http,
 *                            cursor, &err);
 *     layer_index_free(ix);                                                */
#ifndef REGFS_LAYER_H
#define REGFS_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "regfs/dynbuf.h"
#include "regfs/err.h"

/* ---- inputs ------------------------------------------------------------ */

/* Streaming input for layer_index_build: fill up to `len` bytes of `buf` with
 * the next bytes of the blob. Returns the number of bytes (0 = end of blob)
 * or a negative errno (build stops and returns it). Short reads are fine. */
typedef ssize_t (*layer_read_fn)(void *arg, void *buf, size_t len);

/* Random-access input for layer_read: copy `len` bytes starting at `off` of
 * the fetch space (see layer_index_fetch_space) into `buf`. Returns the
 * number of bytes copied, which must be `len` unless the space ends first,
 * or a negative errno. One call per span read; `len` <= the largest span
 * (about span_size of output, compressed) + 1 byte. */
typedef ssize_t (*layer_fetch_fn)(void *arg, uint64_t off, void *buf, size_t len);

/* Optional copy of the decompressed tar stream, written in order during the
 * build (e.g. to a cache file, for single-frame zstd layers). 0 or -errno
 * (stops the build). */
typedef int (*layer_sink_fn)(void *arg, const void *buf, size_t len);

/* Options of layer_index_build (and the limits of layer_index_decode).
 * A zeroed field (or a NULL pointer to the whole struct) means its default. */
struct layer_build_opts {
	const char *name;           /* layer name for messages (its digest); "layer" */
	uint64_t span_size;         /* output bytes between checkpoints/spans; 4 MiB;
	                               at least 64 KiB, at most 64 MiB */
	uint32_t max_entries;       /* tar entries kept; 1,000,000 */
	uint32_t max_path;          /* bytes of a path or link target; 4096 */
	uint32_t max_pax;           /* bytes of one pax header or GNU long name; 1 MiB */
	uint64_t max_meta;          /* total bytes of names, link targets, xattrs and
	                               sparse maps held; 256 MiB */
	uint64_t max_uncompressed;  /* bytes of tar stream read; 1 TiB */
	layer_sink_fn sink;         /* optional, see layer_sink_fn */
	void *sink_arg;
};

/* ---- the index --------------------------------------------------------- */

struct layer_index; /* opaque */

enum layer_compression {
	LAYER_PLAIN = 0,  /* uncompressed tar */
	LAYER_GZIP = 1,   /* gzip, one or several members */
	LAYER_ZSTD = 2,   /* zstd, one or several frames */
};

enum layer_type {
	LAYER_REG = 0,
	LAYER_DIR,
	LAYER_SYMLINK,
	LAYER_HARDLINK,
	LAYER_CHR,
	LAYER_BLK,
	LAYER_FIFO,
};

/* entry flags */
#define LAYER_F_WHITEOUT   0x01u /* name is ".wh.<x>": deletes <x> in lower layers */
#define LAYER_F_OPAQUE     0x02u /* name is ".wh..wh..opq": its directory is opaque */
#define LAYER_F_SYNTHETIC  0x04u /* directory absent from the tar, implied by a
                                    deeper entry: mode 0755, uid/gid 0, mtime 0 */

#define LAYER_NONE UINT32_MAX  /* "no entry" in link_index */

struct layer_xattr {
	const char *name;     /* e.g. "security.capability" (from SCHILY.xattr.) */
	const void *value;    /* `len` bytes, may contain NULs */
	uint32_t len;
};

/* One piece of a sparse file's data: `len` bytes of the file at `off`, stored
 * in the archive one piece after another from the entry's `offset`. */
struct layer_sparse {
	uint64_t off;
	uint64_t len;
};

/* An entry. Every pointer stays valid as long as the index lives; the index
 * owns them. Entry 0 is the root directory (path ""). */
struct layer_entry {
	const char *path;     /* normalized: no leading "./" or "/", no "." / ".."
	                         / empty component, no trailing "/"; "" = root */
	const char *name;     /* last component (points into path); "" = root */
	const char *link;     /* symlink: target as stored (not normalized, may be
	                         absolute: the caller must not follow it outside
	                         the layer); hardlink: the normalized target path;
	                         NULL for other types */
	uint64_t offset;      /* data offset in the decompressed tar stream */
	uint64_t size;        /* file size (the logical size for sparse files) */
	uint64_t stored;      /* data bytes in the archive (== size unless sparse) */
	int64_t mtime;        /* seconds since the epoch */
	uint32_t mtime_nsec;  /* from pax mtime, else 0 */
	uint32_t mode;        /* permission bits only (07777); see layer_entry_st_mode */
	uint32_t uid, gid;
	uint32_t devmajor, devminor; /* LAYER_CHR / LAYER_BLK */
	uint32_t parent;      /* index of the parent directory (root: 0) */
	uint32_t link_index;  /* LAYER_HARDLINK: index of the entry whose data and
	                         inode it shares (never itself a hardlink); else
	                         LAYER_NONE */
	uint32_t nxattrs;
	const struct layer_xattr *xattrs;
	uint32_t nsparse;     /* 0 unless the entry is a GNU/pax sparse file */
	const struct layer_sparse *sparse;
	uint8_t type;         /* enum layer_type */
	uint8_t flags;        /* LAYER_F_* */
};

/* S_IFxxx | mode of an entry, for stat(2). */
static inline mode_t layer_entry_st_mode(const struct layer_entry *e)
{
	static const mode_t fmt[] = { S_IFREG, S_IFDIR, S_IFLNK, S_IFREG,
	                              S_IFCHR, S_IFBLK, S_IFIFO };
	return (e->type < sizeof fmt / sizeof fmt[0] ? fmt[e->type] : S_IFREG)
		| (mode_t)(e->mode & 07777);
}

/* Build the index of one layer blob in one streaming pass over read_fn.
 * Compression is detected by magic (gzip 1f 8b, zstd 28 b5 2f fd, else a tar
 * header with a valid checksum); anything else: -ENOTSUP or -EINVAL naming
 * what was found. On success *out is the caller's (layer_index_free).
 *
 * Entries: tar semantics, the last entry of a path wins. Entries that cannot
 * be kept safely are LEFT OUT, each with a warning naming the layer and the
 * entry: names that climb ("..") or are empty after normalization, hard links
 * to names absent from the layer (or to directories), ".wh." with an empty
 * name, uid/gid/device numbers above 2^32-1, unknown types. Absolute names
 * ("/etc/x") are made relative. Directories implied by deeper entries but
 * absent from the tar are synthesized (LAYER_F_SYNTHETIC). A path whose parent
 * is a non-directory entry replaces nothing: the later entry is left out.
 * The whole layer fails (-EINVAL) on a corrupt header checksum, a truncated
 * archive or corrupt compressed data; a limit of `opts` exceeded gives -E2BIG.
 * Memory is bounded by the limits of `opts` (plus one window per checkpoint,
 * compressed). */
int layer_index_build(layer_read_fn read_fn, void *arg,
                      const struct layer_build_opts *opts,
                      struct layer_index **out, struct regfs_err *e);

/* Free an index (NULL is fine). Every pointer into it becomes invalid. */
void layer_index_free(struct layer_index *ix);

/* Number of entries, root included (>= 1). */
size_t layer_index_count(const struct layer_index *ix);

/* Entry `i` (0 <= i < count), NULL when out of range. */
const struct layer_entry *layer_index_entry(const struct layer_index *ix, size_t i);

/* The index of the entry with this path (normalized as above; a leading "/"
 * or "./" and a trailing "/" are accepted), or -ENOENT. O(log n). */
long layer_index_find(const struct layer_index *ix, const char *path);

/* The children of directory `dir` are the entries first .. first+n-1, sorted
 * by name (bytewise). 0, or -ENOTDIR / -ENOENT (out of range). O(1). */
int layer_index_children(const struct layer_index *ix, size_t dir,
                         size_t *first, size_t *n);

/* The child of directory `dir` named `name` (one component), or -ENOENT.
 * O(log n). */
long layer_index_child(const struct layer_index *ix, size_t dir, const char *name);

/* ---- random access ----------------------------------------------------- */

enum layer_fetch_space {
	LAYER_SPACE_BLOB = 0,    /* fetch returns bytes of the blob as stored
	                            (HTTP Range on the blob, or a cached blob file) */
	LAYER_SPACE_DECODED = 1, /* fetch returns bytes of the decompressed tar
	                            stream: a single-frame zstd layer, which has no
	                            random access; the caller keeps that stream
	                            (e.g. written by opts.sink during the build) */
};

/* Which bytes layer_read's fetch callback must return for this index. */
enum layer_fetch_space layer_index_fetch_space(const struct layer_index *ix);

/* Holds the last span a read decoded (about span_size bytes), so that
 * sequential small reads of one file (the kernel's 128 KiB reads) decode and
 * fetch each span once. One cursor per open file handle; one thread at a time
 * per cursor. Without a cursor every read fetches and decodes its span. */
struct layer_cursor;
struct layer_cursor *layer_cursor_new(void); /* NULL on ENOMEM */
void layer_cursor_free(struct layer_cursor *c); /* NULL is fine */

/* Read up to `len` bytes of the data of entry `i` at file offset `off` into
 * `buf`. Returns the number of bytes read (short only at the end of the file;
 * 0 at or past it) or a negative errno. Hard links read their target's data;
 * sparse holes read as zeros; types other than REG/HARDLINK: -EINVAL.
 * Reads the span(s) covering the range through `fetch` (see
 * layer_index_fetch_space): for gzip, compressed bytes from the checkpoint
 * before the data to the next one (inflating at most about one span of output
 * before the wanted bytes); for zstd, the frames of the span; plain tar: the
 * bytes of the span. Every span's fetched bytes are checked against the sha256
 * stored in the index before use: a mismatch is -EIO naming the span and the
 * layer, and nothing from that span is returned. */
ssize_t layer_read(const struct layer_index *ix, size_t i, uint64_t off,
                   void *buf, size_t len, layer_fetch_fn fetch, void *arg,
                   struct layer_cursor *cur, struct regfs_err *e);

/* Where a read of entry `i` at `off` will fetch from: the span's range in the
 * fetch space, so a caller can prefetch or account bytes. 0; -ENOENT (no such
 * entry), -EINVAL (not a regular file), -ENODATA (off is at or past the end,
 * or in a hole of a sparse file: nothing is fetched). */
int layer_index_span_range(const struct layer_index *ix, size_t i, uint64_t off,
                           uint64_t *fetch_off, uint64_t *fetch_len);

/* ---- the format -------------------------------------------------------- */

/* Append the encoded index to `out` (our format: magic "RGFSLIX", version,
 * sections, trailing sha256 of everything before it; docs/layer-index.md).
 * Deterministic: the same index encodes to the same bytes. 0, -ENOMEM, -E2BIG
 * (out's cap). */
int layer_index_encode(const struct layer_index *ix, struct dynbuf *out,
                       struct regfs_err *e);

/* Decode `n` bytes at `p` (not kept: the index copies what it needs). Checks
 * the magic, the version, the trailing sha256 and every field and offset
 * (a hostile index is -EINVAL, never a crash, never an entry path that climbs);
 * limits from `opts` (NULL: defaults) bound the memory. On success *out is
 * the caller's. */
int layer_index_decode(const void *p, size_t n, const struct layer_build_opts *opts,
                       struct layer_index **out, struct regfs_err *e);

struct layer_index_stats {
	enum layer_compression compression;
	size_t entries;           /* root included */
	size_t spans;             /* verified units of random access */
	size_t checkpoints;       /* gzip: checkpoints with a window; else 0 */
	size_t frames;            /* zstd: frames; else 0 */
	uint64_t blob_size;       /* compressed bytes read during the build */
	uint64_t tar_size;        /* decompressed tar stream bytes */
	uint64_t memory;          /* bytes the index holds in memory (for eviction) */
	uint64_t encoded_size;    /* bytes of layer_index_encode's output */
};

void layer_index_stats(const struct layer_index *ix, struct layer_index_stats *st);

#endif
