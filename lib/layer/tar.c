/* lib/layer/tar.c — the tar reader of the layer index, hand-written (no
 * library gives entry data offsets in a streamed archive): ustar, pax 'x'/'g'
 * (path, linkpath, size, mtime, uid, gid, SCHILY.xattr.*, GNU.sparse.*),
 * GNU 'L'/'K' long names, GNU old sparse 'S', base-256 numbers; every
 * header's checksum is checked. Entries that cannot be kept safely are left
 * out with a warning naming the entry; a broken archive fails as a whole. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "regfs/log.h"

#define BLK 512

struct xa {
	char *name;
	unsigned char *val;
	size_t len;
};

/* What pax/GNU headers said about the next entry (or, for 'g', all of them). */
struct pend {
	char *path, *link, *sparse_name;
	size_t path_len, link_len;
	bool has_size, has_mtime, has_uid, has_gid, has_realsize;
	uint64_t size, uid, gid, realsize;
	int64_t mtime;
	uint32_t nsec;
	struct xa *xa;
	size_t nxa;
	struct layer_sparse *sp;   /* pax 0.0/0.1 map */
	size_t nsp;
	bool sp_off_pending;       /* 0.0: an offset waiting for its numbytes */
	int sparse_major;          /* -1 none, 0 (0.x), 1 (1.0) */
};

struct tar {
	struct lx_src *s;
	struct lx_arena *a;
	struct lx_raws *out;
	const struct lx_opts *o;
	struct pend p, g;
	uint64_t seq;
	uint64_t hdr_off;          /* decoded offset of the current header */
};

static void pend_clear(struct pend *p)
{
	free(p->path);
	free(p->link);
	free(p->sparse_name);
	for (size_t i = 0; i < p->nxa; i++) {
		free(p->xa[i].name);
		free(p->xa[i].val);
	}
	free(p->xa);
	free(p->sp);
	memset(p, 0, sizeof *p);
	p->sparse_major = -1;
}

/* ---- numbers ---- */

/* Octal (spaces/NULs around) or base-256 (top bit of the first byte set). */
static int tar_num(const unsigned char *f, size_t n, int64_t *out)
{
	if (f[0] & 0x80) {
		bool neg = f[0] == 0xff;
		uint64_t v = neg ? ~0ull : 0;
		if (!neg)
			v = f[0] & 0x7f;
		for (size_t i = 1; i < n; i++) {
			if (!neg && v > (UINT64_MAX >> 8))
				return -EINVAL;
			v = (v << 8) | f[i];
		}
		if (!neg && v > INT64_MAX)
			return -EINVAL;
		if (neg && (int64_t)v >= 0)
			return -EINVAL;
		*out = (int64_t)v;
		return 0;
	}
	size_t i = 0;
	while (i < n && (f[i] == ' ' || f[i] == 0))
		i++;
	uint64_t v = 0;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3) || (v << 3) > (uint64_t)INT64_MAX)
			return -EINVAL;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != 0)
			return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

static int tar_unum(const unsigned char *f, size_t n, uint64_t *out)
{
	int64_t v;
	if (tar_num(f, n, &v) < 0 || v < 0)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

/* Decimal for pax values; *end gets the first byte not used. */
static int dec_u64(const char *p, const char *lim, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	const char *q = p;
	for (; q < lim && *q >= '0' && *q <= '9'; q++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	if (q == p)
		return -EINVAL;
	*out = v;
	if (end)
		*end = q;
	else if (q != lim)
		return -EINVAL;
	return 0;
}

static int hdr_checksum_ok(const unsigned char *h)
{
	int64_t want;
	if (tar_num(h + 148, 8, &want) < 0)
		return 0;
	uint64_t u = 0;
	int64_t sg = 0;
	for (int i = 0; i < BLK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
		u += c;
		sg += (signed char)c;
	}
	return (int64_t)u == want || sg == want;
}

static bool blk_zero(const unsigned char *h)
{
	for (int i = 0; i < BLK; i++)
		if (h[i])
			return false;
	return true;
}

static bool is_ustar(const unsigned char *h)
{
	return memcmp(h + 257, "ustar\0", 6) == 0;
}

/* ---- pax ---- */

/* Appends one (offset, length) to the sparse map; `cap` is what p->sp holds
 * room for (0 before the first push). 0 or -ENOMEM. */
static int sparse_push(struct pend *p, size_t *cap, uint64_t off, uint64_t len)
{
	void *v = p->sp;
	if (lx_grow(&v, cap, p->nsp, sizeof *p->sp, 16))
		return -ENOMEM;
	p->sp = v;
	p->sp[p->nsp++] = (struct layer_sparse){ off, len };
	return 0;
}

static int pax_sparse_map(struct pend *p, const char *v, const char *lim)
{
	/* "off,len,off,len,..." */
	size_t cap = 0;
	uint64_t pair[2];
	int k = 0;
	while (v < lim) {
		const char *end;
		if (dec_u64(v, lim, &pair[k], &end) < 0)
			return -EINVAL;
		v = end < lim ? end + 1 : end;
		if (++k == 2) {
			if (sparse_push(p, &cap, pair[0], pair[1]))
				return -ENOMEM;
			k = 0;
		}
	}
	return k ? -EINVAL : 0;
}

static int pax_push_sparse(struct pend *p, uint64_t v, bool is_off)
{
	if (is_off) {
		void *n = realloc(p->sp, (p->nsp + 1) * sizeof *p->sp);
		if (!n)
			return -ENOMEM;
		p->sp = n;
		p->sp[p->nsp++] = (struct layer_sparse){ v, 0 };
		p->sp_off_pending = true;
		return 0;
	}
	if (!p->sp_off_pending)
		return -EINVAL;
	p->sp[p->nsp - 1].len = v;
	p->sp_off_pending = false;
	return 0;
}

static int set_str(char **dst, size_t *dlen, const char *v, size_t n)
{
	char *c = malloc(n + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, v, n);
	c[n] = 0;
	free(*dst);
	*dst = c;
	if (dlen)
		*dlen = strnlen(c, n);
	return 0;
}

static int pax_xattr(struct pend *p, const char *name, size_t nlen, const char *v, size_t n)
{
	void *nx = realloc(p->xa, (p->nxa + 1) * sizeof *p->xa);
	if (!nx)
		return -ENOMEM;
	p->xa = nx;
	struct xa *x = &p->xa[p->nxa];
	x->name = malloc(nlen + 1);
	x->val = malloc(n ? n : 1);
	if (!x->name || !x->val) {
		free(x->name);
		free(x->val);
		return -ENOMEM;
	}
	memcpy(x->name, name, nlen);
	x->name[nlen] = 0;
	memcpy(x->val, v, n);
	x->len = n;
	p->nxa++;
	return 0;
}

static int pax_time(const char *v, const char *lim, int64_t *sec, uint32_t *nsec)
{
	bool neg = v < lim && *v == '-';
	uint64_t s;
	const char *end;
	if (dec_u64(v + neg, lim, &s, &end) < 0 || s > INT64_MAX)
		return -EINVAL;
	uint32_t ns = 0;
	if (end < lim && *end == '.') {
		int digits = 0;
		for (end++; end < lim && *end >= '0' && *end <= '9'; end++)
			if (digits++ < 9)
				ns = ns * 10 + (uint32_t)(*end - '0');
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (end != lim)
		return -EINVAL;
	*sec = neg ? -(int64_t)s : (int64_t)s;
	*nsec = neg ? 0 : ns;
	return 0;
}

/* One "key=value" record. Unknown keys are ignored (as tar does). */
static int pax_record(struct pend *p, const char *k, size_t kl, const char *v, size_t vl)
{
	const char *lim = v + vl;
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
	if (KEY("path"))
		return set_str(&p->path, &p->path_len, v, vl);
	if (KEY("linkpath"))
		return set_str(&p->link, &p->link_len, v, vl);
	if (KEY("size"))
		return p->has_size = true, dec_u64(v, lim, &p->size, NULL);
	if (KEY("uid"))
		return p->has_uid = true, dec_u64(v, lim, &p->uid, NULL);
	if (KEY("gid"))
		return p->has_gid = true, dec_u64(v, lim, &p->gid, NULL);
	if (KEY("mtime"))
		return p->has_mtime = true, pax_time(v, lim, &p->mtime, &p->nsec);
	if (kl > 13 && memcmp(k, "SCHILY.xattr.", 13) == 0)
		return pax_xattr(p, k + 13, kl - 13, v, vl);
	if (KEY("GNU.sparse.name"))
		return set_str(&p->sparse_name, NULL, v, vl);
	if (KEY("GNU.sparse.size") || KEY("GNU.sparse.realsize")) {
		p->has_realsize = true;
		if (p->sparse_major < 0)
			p->sparse_major = 0;
		return dec_u64(v, lim, &p->realsize, NULL);
	}
	if (KEY("GNU.sparse.major")) {
		uint64_t m = 0;
		int r = dec_u64(v, lim, &m, NULL);
		p->sparse_major = m == 1 ? 1 : 0;
		return r;
	}
	if (KEY("GNU.sparse.map"))
		return pax_sparse_map(p, v, lim);
	if (KEY("GNU.sparse.offset") || KEY("GNU.sparse.numbytes")) {
		uint64_t x;
		if (dec_u64(v, lim, &x, NULL) < 0)
			return -EINVAL;
		return pax_push_sparse(p, x, k[11] == 'o');
	}
#undef KEY
	return 0;
}

static int pax_parse(struct tar *t, struct pend *p, const char *b, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (b[i] == 0)   /* NUL padding after the records */
			break;
		uint64_t len;
		const char *sp;
		if (dec_u64(b + i, b + n, &len, &sp) < 0 || sp >= b + n || *sp != ' ' ||
		    len > n - i || len < (uint64_t)(sp - (b + i)) + 3 || b[i + len - 1] != '\n')
			goto bad;
		const char *k = sp + 1, *end = b + i + len - 1;
		const char *eq = memchr(k, '=', (size_t)(end - k));
		if (!eq || eq == k)
			goto bad;
		int r = pax_record(p, k, (size_t)(eq - k), eq + 1, (size_t)(end - eq - 1));
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			goto bad;
		i += len;
	}
	return 0;
bad:
	return regfs_errf(t->s->e, -EINVAL, "%s: malformed pax header at byte %llu of the tar "
	                  "stream", t->o->name, (unsigned long long)t->hdr_off);
}

/* Read the data of a pax or GNU long-name header (size bytes, padded). */
static int read_meta(struct tar *t, uint64_t size, char **out)
{
	if (size > t->o->max_pax)
		return regfs_errf(t->s->e, -E2BIG, "%s: a pax/long-name header of %llu bytes at "
		                  "byte %llu is over the limit of %u", t->o->name,
		                  (unsigned long long)size, (unsigned long long)t->hdr_off,
		                  t->o->max_pax);
	char *b = malloc((size_t)size + 1);
	if (!b)
		return -ENOMEM;
	int r = lx_src_read(t->s, b, (size_t)size);
	if (r == 0)
		r = lx_src_skip_padding(t->s, (BLK - size % BLK) % BLK);
	if (r < 0) {
		free(b);
		return r;
	}
	b[size] = 0;
	*out = b;
	return 0;
}
/* ---- sparse maps ---- */

/* Old GNU 'S': 4 map entries in the header, then extension blocks of 21. */
static int gnu_sparse_map(struct tar *t, const unsigned char *h, struct pend *p)
{
	const unsigned char *m = h + 386;
	int nent = 4, ext = h[482];
	unsigned char b[BLK];
	size_t cap = 0;
	for (;;) {
		for (int i = 0; i < nent; i++) {
			uint64_t off, len;
			if (m[i * 24] == 0)
				break;
			if (tar_unum(m + i * 24, 12, &off) < 0 || tar_unum(m + i * 24 + 12, 12, &len) < 0)
				return -EINVAL;
			if ((p->nsp + 1) * sizeof *p->sp > t->o->max_pax)
				return -E2BIG;
			if (sparse_push(p, &cap, off, len))
				return -ENOMEM;
		}
		if (!ext)
			return 0;
		int r = lx_src_read(t->s, b, BLK);
		if (r < 0)
			return r;
		m = b;
		nent = 21;
		ext = b[504];
	}
}

/* pax sparse 1.0: the map is at the start of the data, decimal lines
 * "count\n" then "offset\nlength\n" pairs, padded to a block. Returns the
 * bytes of data it took (blocks), or -errno. */
static int64_t pax1_sparse_map(struct tar *t, struct pend *p, uint64_t size)
{
	char *buf = NULL;
	size_t have = 0, pos = 0;
	uint64_t want = UINT64_MAX, got = 0, nums[2];
	int r = 0;
	while (got < want) {
		char *nl = have > pos ? memchr(buf + pos, '\n', have - pos) : NULL;
		if (!nl) {
			if (have + BLK > t->o->max_pax || have + BLK > size) {
				r = -EINVAL;
				break;
			}
			char *nb = realloc(buf, have + BLK);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			if ((r = lx_src_read(t->s, buf + have, BLK)) < 0)
				break;
			have += BLK;
			continue;
		}
		uint64_t v;
		if ((r = dec_u64(buf + pos, nl, &v, NULL)) < 0)
			break;
		pos = (size_t)(nl - buf) + 1;
		if (want == UINT64_MAX) {
			if (v > t->o->max_pax / sizeof *p->sp) {
				r = -E2BIG;
				break;
			}
			want = 2 * v;
			free(p->sp);
			p->sp = malloc((v ? v : 1) * sizeof *p->sp);
			p->nsp = 0;
			if (!p->sp) {
				r = -ENOMEM;
				break;
			}
			continue;
		}
		nums[got++ % 2] = v;
		if (got % 2 == 0)
			p->sp[p->nsp++] = (struct layer_sparse){ nums[0], nums[1] };
	}
	free(buf);
	return r < 0 ? r : (int64_t)have;
}

/* The map is sorted, inside the file, and accounts for every stored byte. */
static bool sparse_valid(const struct pend *p, uint64_t realsize, uint64_t stored)
{
	uint64_t end = 0, sum = 0;
	for (size_t i = 0; i < p->nsp; i++) {
		const struct layer_sparse *s = &p->sp[i];
		if (s->off < end || s->len > realsize || s->off > realsize - s->len)
			return false;
		end = s->off + s->len;
		sum += s->len;
	}
	return sum == stored;
}

/* ---- entries ---- */

static int type_of(char tf)
{
	switch (tf) {
	case '0': case '\0': case '7': case 'S': return LAYER_REG;
	case '1': return LAYER_HARDLINK;
	case '2': return LAYER_SYMLINK;
	case '3': return LAYER_CHR;
	case '4': return LAYER_BLK;
	case '5': case 'D': return LAYER_DIR;
	case '6': return LAYER_FIFO;
	default: return -1;
	}
}

/* The entry's name as the archive spells it, malloc'd. */
static char *raw_name(const struct tar *t, const unsigned char *h, size_t *len)
{
	const char *src = t->p.sparse_name ? t->p.sparse_name : t->p.path;
	if (src) {
		*len = strlen(src);
		return strdup(src);
	}
	char *b = malloc(100 + 1 + 155 + 1);
	if (!b)
		return NULL;
	size_t n = 0;
	if (is_ustar(h) && h[345]) {
		size_t pl = strnlen((const char *)h + 345, 155);
		memcpy(b, h + 345, pl);
		b[pl] = '/';
		n = pl + 1;
	}
	size_t nl = strnlen((const char *)h, 100);
	memcpy(b + n, h, nl);
	n += nl;
	b[n] = 0;
	*len = n;
	return b;
}

/* Numeric fields of an entry; -EINVAL names the field. */
static int entry_numbers(struct tar *t, const unsigned char *h, struct layer_entry *e,
                         const char **bad)
{
	int64_t mode, mt = 0;
	uint64_t uid = 0, gid = 0, dmaj = 0, dmin = 0;
	if (tar_num(h + 100, 8, &mode) < 0)
		return *bad = "mode", -EINVAL;
	if (tar_unum(h + 108, 8, &uid) < 0 && !t->p.has_uid)
		return *bad = "uid", -EINVAL;
	if (tar_unum(h + 116, 8, &gid) < 0 && !t->p.has_gid)
		return *bad = "gid", -EINVAL;
	if (tar_num(h + 136, 12, &mt) < 0 && !t->p.has_mtime)
		return *bad = "mtime", -EINVAL;
	if ((e->type == LAYER_CHR || e->type == LAYER_BLK) &&
	    (tar_unum(h + 329, 8, &dmaj) < 0 || tar_unum(h + 337, 8, &dmin) < 0))
		return *bad = "device number", -EINVAL;
	const struct pend *p = &t->p, *g = &t->g;
	uid = p->has_uid ? p->uid : g->has_uid ? g->uid : uid;
	gid = p->has_gid ? p->gid : g->has_gid ? g->gid : gid;
	e->mtime = p->has_mtime ? p->mtime : g->has_mtime ? g->mtime : mt;
	e->mtime_nsec = p->has_mtime ? p->nsec : g->has_mtime ? g->nsec : 0;
	if (uid > UINT32_MAX || gid > UINT32_MAX)
		return *bad = "uid/gid above 2^32-1", -EINVAL;
	if (dmaj > UINT32_MAX || dmin > UINT32_MAX)
		return *bad = "device number above 2^32-1", -EINVAL;
	e->mode = (uint32_t)(mode & 07777);
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	e->devmajor = (uint32_t)dmaj;
	e->devminor = (uint32_t)dmin;
	return 0;
}

/* Sparse map of the entry (old GNU, pax 0.x, pax 1.0); moves e->offset past
 * a 1.0 map. 1 = not sparse, 0 = sparse, 2 = the map is inconsistent (the
 * entry is left out), <0 = the map cannot be read (the archive is broken). */
static int entry_sparse(struct tar *t, const unsigned char *h, char tf,
                        struct layer_entry *e, uint64_t *data)
{
	struct pend *p = &t->p;
	uint64_t real = 0;
	int r = 0;
	if (tf == 'S') {
		r = gnu_sparse_map(t, h, p);
		if (r == 0 && tar_unum(h + 483, 12, &real) < 0)
			r = -EINVAL;
	} else if (p->sparse_major == 1) {
		int64_t used = pax1_sparse_map(t, p, *data);
		if (used < 0)
			r = (int)used;
		else
			*data -= (uint64_t)used;
		real = p->realsize;
	} else if (p->sparse_major == 0 && p->has_realsize) {
		real = p->realsize;
	} else {
		return 1;
	}
	if (r < 0)
		return regfs_errf(t->s->e, r, "%s: the sparse map of the tar entry at byte %llu "
		                  "cannot be read (%s)", t->o->name, (unsigned long long)t->hdr_off,
		                  r == -E2BIG ? "too many pieces" : "malformed");
	e->offset = lx_src_pos(t->s);
	e->size = real;
	e->stored = *data;
	if (p->sp_off_pending || !sparse_valid(p, real, *data))
		return 2;
	return 0;
}

/* Copy link, xattrs and sparse map into the arena. */
static int entry_commit(struct tar *t, struct layer_entry *e, const char *link, size_t ll)
{
	struct lx_arena *a = t->a;
	if (link && !(e->link = lx_arena_strndup(a, link, ll)))
		return -E2BIG;
	const struct pend *p = &t->p;
	if (p->nxa) {
		struct layer_xattr *x = lx_arena_alloc(a, p->nxa * sizeof *x);
		if (!x)
			return -E2BIG;
		for (size_t i = 0; i < p->nxa; i++) {
			x[i].name = lx_arena_strndup(a, p->xa[i].name, strlen(p->xa[i].name));
			void *v = lx_arena_alloc(a, p->xa[i].len ? p->xa[i].len : 1);
			if (!x[i].name || !v)
				return -E2BIG;
			memcpy(v, p->xa[i].val, p->xa[i].len);
			x[i].value = v;
			x[i].len = (uint32_t)p->xa[i].len;
		}
		e->xattrs = x;
		e->nxattrs = (uint32_t)p->nxa;
	}
	if (e->stored != e->size || p->nsp) {
		struct layer_sparse *s = lx_arena_alloc(a, (p->nsp ? p->nsp : 1) * sizeof *s);
		if (!s)
			return -E2BIG;
		if (p->nsp)
			memcpy(s, p->sp, p->nsp * sizeof *s);
		e->sparse = s;
		e->nsparse = (uint32_t)p->nsp;
	}
	if (t->out->n == t->out->alloc) {
		size_t na = t->out->alloc ? t->out->alloc * 2 : 256;
		void *v = realloc(t->out->v, na * sizeof *t->out->v);
		if (!v)
			return -ENOMEM;
		t->out->v = v;
		t->out->alloc = na;
	}
	t->out->v[t->out->n++] = (struct lx_raw){ .e = *e, .seq = t->seq++ };
	return 0;
}

/* The checks on an entry's names: *why says why it is left out (or stays
 * NULL); -E2BIG (the memory limit) and -ENOMEM fail the whole layer. */
static int entry_names(struct tar *t, struct layer_entry *e, const char *name, size_t nl,
                       const char **link, size_t *ll, const unsigned char *h,
                       const char **why)
{
	char *path;
	int r = lx_path_normalize(t->a, name, nl, t->o->max_path, &path);
	if (r == -EINVAL)
		return *why = nl > t->o->max_path ? "its name is longer than the limit" :
		              "its name climbs out of the layer (\"..\")", 0;
	if (r < 0)
		return r;
	e->path = path;
	if (!*path && e->type != LAYER_DIR)
		return *why = "its name is empty", 0;
	const char *slash = strrchr(path, '/');
	e->name = slash ? slash + 1 : path;
	if (strcmp(e->name, ".wh.") == 0)
		return *why = "it is a whiteout with an empty name", 0;
	if (strcmp(e->name, ".wh..wh..opq") == 0)
		e->flags |= LAYER_F_OPAQUE;
	else if (strncmp(e->name, ".wh.", 4) == 0)
		e->flags |= LAYER_F_WHITEOUT;
	*link = NULL;
	*ll = 0;
	if (e->type == LAYER_SYMLINK || e->type == LAYER_HARDLINK) {
		*link = t->p.link ? t->p.link : (const char *)h + 157;
		*ll = t->p.link ? t->p.link_len : strnlen((const char *)h + 157, 100);
		if (*ll == 0)
			return *why = "its link target is empty", 0;
		if (*ll > t->o->max_path)
			return *why = "its link target is longer than the limit", 0;
	}
	if (e->type == LAYER_HARDLINK) {
		char *tgt;
		r = lx_path_normalize(t->a, *link, *ll, t->o->max_path, &tgt);
		if (r == -EINVAL || (r == 0 && !*tgt))
			return *why = "it is a hard link to a name outside the layer", 0;
		if (r < 0)
			return r;
		*link = tgt;
		*ll = strlen(tgt);
	}
	return 0;
}

static int tar_entry(struct tar *t, const unsigned char *h, char tf, uint64_t hsize)
{
	struct layer_entry e = { .link_index = LAYER_NONE };
	int type = type_of(tf);
	uint64_t data = t->p.has_size ? t->p.size : hsize;
	const char *why = NULL, *bad = "", *link;
	size_t nl, ll;
	char *name = raw_name(t, h, &nl);
	if (!name)
		return -ENOMEM;
	if (type < 0) {
		why = "its type is not supported";
	} else {
		e.type = (uint8_t)type;
		if (type == LAYER_CHR || type == LAYER_BLK || type == LAYER_FIFO)
			data = 0;   /* no data blocks follow these (POSIX) */
		if (entry_numbers(t, h, &e, &bad) < 0)
			why = bad;
	}
	e.offset = lx_src_pos(t->s);
	e.size = e.stored = type == LAYER_REG ? data : 0;
	int r = type == LAYER_REG ? entry_sparse(t, h, tf, &e, &data) : 1;
	if (r < 0)
		goto out;
	if (r == 1)
		t->p.nsp = 0;   /* a map without a sparse size: the entry is not sparse */
	if (r == 2 && !why)
		why = "its sparse map is inconsistent";
	if (!why && (r = entry_names(t, &e, name, nl, &link, &ll, h, &why)) < 0) {
		if (r == -E2BIG)
			r = regfs_errf(t->s->e, -E2BIG, "%s: names, links and xattrs exceed the "
			               "limit of %llu bytes", t->o->name,
			               (unsigned long long)t->o->max_meta);
		goto out;
	}
	if (!why && t->out->n >= t->o->max_entries) {
		r = regfs_errf(t->s->e, -E2BIG, "%s: more than %u entries (the limit)",
		               t->o->name, t->o->max_entries);
		goto out;
	}
	r = 0;
	if (why)
		log_warn("%s: tar entry \"%.*s\" at byte %llu left out: %s", t->o->name,
		         (int)(nl > 300 ? 300 : nl), name, (unsigned long long)t->hdr_off, why);
	else if ((r = entry_commit(t, &e, link, ll)) == -E2BIG)
		r = regfs_errf(t->s->e, -E2BIG, "%s: names, links and xattrs exceed the limit of "
		               "%llu bytes", t->o->name, (unsigned long long)t->o->max_meta);
	if (r == 0 && (r = lx_src_skip(t->s, data)) == -EINVAL)
		regfs_err_prefix(t->s->e, "tar entry \"%.*s\" (%llu bytes of data): ",
		                 (int)(nl > 300 ? 300 : nl), name, (unsigned long long)data);
	if (r == 0)
		r = lx_src_skip_padding(t->s, (BLK - data % BLK) % BLK);
out:
	free(name);
	pend_clear(&t->p);
	return r < 0 ? r : 0;
}

static int tar_meta(struct tar *t, char tf, uint64_t size)
{
	char *b = NULL;
	int r = read_meta(t, size, &b);
	if (r < 0)
		return r;
	if (tf == 'x' || tf == 'g')
		r = pax_parse(t, tf == 'x' ? &t->p : &t->g, b, (size_t)size);
	else if (tf == 'L')
		r = set_str(&t->p.path, &t->p.path_len, b, (size_t)size);
	else
		r = set_str(&t->p.link, &t->p.link_len, b, (size_t)size);
	free(b);
	return r;
}

static int tar_header(struct tar *t, const unsigned char *h)
{
	uint64_t size;
	char tf = (char)h[156];
	if (tar_unum(h + 124, 12, &size) < 0)
		return regfs_errf(t->s->e, -EINVAL, "%s: tar header at byte %llu has an invalid "
		                  "size field", t->o->name, (unsigned long long)t->hdr_off);
	if (size > t->o->max_uncompressed)
		return regfs_errf(t->s->e, -E2BIG, "%s: tar entry at byte %llu claims %llu bytes, "
		                  "over the limit", t->o->name, (unsigned long long)t->hdr_off,
		                  (unsigned long long)size);
	if (tf == 'x' || tf == 'g' || tf == 'L' || tf == 'K')
		return tar_meta(t, tf, size);
	if (tf == 'V')   /* volume label: not a file */
		return lx_src_skip(t->s, size + (BLK - size % BLK) % BLK);
	return tar_entry(t, h, tf, size);
}

int lx_tar_read(struct lx_src *s, struct lx_arena *a, struct lx_raws *out)
{
	struct tar t = { .s = s, .a = a, .out = out, .o = s->o };
	pend_clear(&t.p);
	pend_clear(&t.g);
	unsigned char h[BLK];
	int r = 0;
	for (;;) {
		t.hdr_off = lx_src_pos(s);
		if ((r = lx_src_at_end(s)) != 0) {
			if (r > 0 && t.hdr_off == 0)
				r = regfs_errf(s->e, -EINVAL, "%s: the layer is empty (not a tar archive)",
				               s->o->name);
			else if (r > 0)
				log_warn("%s: the tar archive has no end-of-archive blocks", s->o->name);
			break;
		}
		if ((r = lx_src_read(s, h, BLK)) < 0)
			break;
		if (blk_zero(h))
			break;
		if (!hdr_checksum_ok(h)) {
			r = regfs_errf(s->e, -EINVAL, t.hdr_off ?
			               "%s: corrupt tar header at byte %llu (bad checksum)" :
			               "%s: not a tar archive (bad header checksum at byte %llu)",
			               s->o->name, (unsigned long long)t.hdr_off);
			break;
		}
		if ((r = tar_header(&t, h)) < 0)
			break;
	}
	pend_clear(&t.p);
	pend_clear(&t.g);
	return r < 0 ? r : 0;
}
