/* version.c — listing versions of the ttl directories (the kernel's
 * readdir cache).
 *
 * The mount answers opendir with ENOSYS, so the kernel opens directories
 * without a round trip and caches every listing (FOPEN_CACHE_DIR). It reuses
 * a cached listing while the directory's mtime is unchanged: at the start of
 * each listing it refreshes the attributes (getattr once their timeout
 * passed) and compares. So for a ttl directory mtime is the version of its
 * listing: dir_version_refresh lists it and moves mtime only when the names
 * differ from the last listing; the attr timeout ends when the catalog or
 * tag list the names came from expires. Directories fixed by a digest never
 * change and keep the mount time. The version is the node's payload
 * (struct dir_version), guarded by vmu. */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <regfs/hash.h>

static pthread_mutex_t vmu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec last_issued;

/* The names and kinds of a listing; only ever compared within this
 * process. */
static uint64_t names_hash(const struct child *v, size_t n)
{
	uint64_t h = REGFS_FNV1A64_INIT;
	for (size_t i = 0; i < n; i++) {
		h = regfs_fnv1a64_add(h, v[i].name, strlen(v[i].name));
		h = (h ^ (0x100u + (unsigned)v[i].kind)) * REGFS_FNV1A64_PRIME;
	}
	return h | 1; /* never 0 */
}

/* A realtime stamp later than every one issued before: two versions of one
 * directory must never share an mtime. Caller holds vmu. */
static struct timespec next_stamp(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec < last_issued.tv_sec ||
	    (ts.tv_sec == last_issued.tv_sec && ts.tv_nsec <= last_issued.tv_nsec)) {
		ts = last_issued;
		if (++ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec = 0;
		}
	}
	last_issued = ts;
	return ts;
}

/* Caller holds vmu (or is alone with n). */
static struct dir_version *version_of(struct node *n)
{
	if (!n->priv)
		n->priv = calloc(1, sizeof(struct dir_version));
	return n->priv;
}

struct dir_version *dir_version_of(struct node *n)
{
	pthread_mutex_lock(&vmu);
	struct dir_version *v = version_of(n);
	pthread_mutex_unlock(&vmu);
	return v;
}

void dir_version_outage(struct node *n)
{
	pthread_mutex_lock(&vmu);
	struct dir_version *v = version_of(n);
	if (v) {
		v->mtime = next_stamp();
		v->hash = 0;
		v->known = true;
		v->valid = 0;
	}
	pthread_mutex_unlock(&vmu);
}

int dir_version_refresh(struct mnt *m, struct node *n)
{
	const struct kind_ops *k = kind_ops[n->kind];
	if (!(k->flags & KIND_TTL_DIR))
		return 0;
	pthread_mutex_lock(&vmu);
	struct dir_version *v = n->priv;
	bool fresh = v && v->known && now_mono() < v->valid;
	pthread_mutex_unlock(&vmu);
	if (fresh)
		return 0;
	struct child *c;
	size_t cnt;
	int rc = k->list(m, n, &c, &cnt);
	if (rc)
		return rc;
	uint64_t h = names_hash(c, cnt);
	for (size_t i = 0; i < cnt; i++)
		child_clear(&c[i]);
	free(c);
	double at = k->listed_at ? k->listed_at(m, n) : now_mono();
	pthread_mutex_lock(&vmu);
	if ((v = version_of(n))) {
		if (!v->known || v->hash != h) {
			v->mtime = next_stamp();
			v->hash = h;
			v->known = true;
		}
		v->valid = at + m->o.ttl;
	}
	pthread_mutex_unlock(&vmu);
	return v ? 0 : -ENOMEM;
}

void dir_version_expire(struct node *n)
{
	pthread_mutex_lock(&vmu);
	struct dir_version *v = n->priv;
	if (v)
		v->valid = 0;
	pthread_mutex_unlock(&vmu);
}

void dir_version_attr(struct node *n, struct stat *st, double *timeout)
{
	pthread_mutex_lock(&vmu);
	struct dir_version *v = n->priv;
	if (v && v->known) {
		st->st_mtim = st->st_ctim = v->mtime;
		double left = v->valid - now_mono();
		*timeout = left > 0 ? left : 0;
	} else {
		*timeout = 0;
	}
	pthread_mutex_unlock(&vmu);
}

int attr_ttl_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	dir_version_attr(n, st, timeout);
	return attr_dir(m, n, st, timeout);
}

int attr_writable_dir(struct mnt *m, struct node *n, struct stat *st, double *timeout)
{
	attr_ttl_dir(m, n, st, timeout);
	if (!m->o.ro)
		st->st_mode = S_IFDIR | 0755; /* rm/ln/mv, rmdir work here */
	return 0;
}
