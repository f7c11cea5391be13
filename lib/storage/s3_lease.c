/* s3_lease.c — the session lock of an S3 writer: a small object
 * "<key>.lock" next to the data, holding "<token> <expiry>".
 *
 * S3 has no locks, but PutObject with If-None-Match: * creates an object only
 * if it is absent (AWS, Ceph RGW, MinIO), and If-Match: <etag> replaces it
 * only if it is unchanged: a compare-and-swap. So
 *   - take: create the lease if absent; if present and expired, replace it
 *     on its ETag (of two instances taking over, one wins);
 *   - renew, once a quarter of its life has passed (while writing, and
 *     before completing the upload's object): replace it on our ETag (412:
 *     it was taken over, we must stop writing). A lease younger than that
 *     cannot have been taken over, unless the instances' clocks differ by
 *     more than three quarters of its life;
 *   - drop: delete it; if it is older than half its life, only after a GET
 *     shows it still holds our token (S3 has no conditional DELETE
 *     everywhere).
 * So an uncontended request costs two requests: the create and the delete.
 * A holder that dies leaves its lease until it expires (LEASE_S); a live
 * holder renews it while writing and before every completion, so it never
 * writes once another holder could have taken it, unless one request of its
 * own takes longer than LEASE_S / 4 + the connection timeout.
 *
 * Ceph RGW 16 compares If-Match with the unquoted ETag; AWS with either form:
 * the unquoted one is sent first, then the quoted one. */
#include "s3_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <regfs/fmt.h>
#include <regfs/log.h>

#define LEASE_S 900 /* longer than the registry's 300 s connection timeout */

static void new_token(char out[40])
{
	unsigned char b[16] = {0};
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(b, &ts, sizeof ts < sizeof b ? sizeof ts : sizeof b);
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void unquote(const char *in, char out[128])
{
	size_t n = strlen(in);
	if (n >= 2 && in[0] == '"' && in[n - 1] == '"')
		snprintf(out, 128, "%.*s", (int)(n - 2), in + 1);
	else
		snprintf(out, 128, "%s", in);
}

/* PUT of our lease body under a condition (hdr: If-None-Match or If-Match).
 * 1 written (l->etag updated), 0 refused (412), <0 error. */
static int lease_put(struct s3_client *c, struct s3_lease *l, const char *hdr, const char *val,
		     struct regfs_err *err)
{
	char body[96];
	int64_t now = (int64_t)time(NULL);
	int n = snprintf(body, sizeof body, "%s %lld\n", l->token, (long long)(now + LEASE_S));
	struct s3_hdr h = {hdr, val};
	struct s3_req rq = {.method = "PUT", .key = l->key, .body = body, .body_len = (size_t)n,
			    .has_body = true, .hdrs = &h, .n_hdrs = 1};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status == 200) {
		snprintf(l->etag, sizeof l->etag, "%s", rs.etag);
		l->renewed = now;
		ret = 1;
	} else if (ret == 0 && rs.status != 412) {
		ret = s3_fail(c, &rs, "writing an upload's lock", l->key, err);
	}
	s3_resp_free(&rs);
	return ret;
}

/* Replaces the lease object if it still has ETag `etag` (both spellings). */
static int lease_cas(struct s3_client *c, struct s3_lease *l, const char *etag,
		     struct regfs_err *err)
{
	char uq[128];
	unquote(etag, uq);
	int ret = lease_put(c, l, "If-Match", uq, err);
	if (ret == 0 && strcmp(uq, etag) != 0)
		ret = lease_put(c, l, "If-Match", etag, err);
	return ret;
}

/* Reads the current lease: its holder's token, expiry and ETag. -ENOENT if none. */
static int lease_get(struct s3_client *c, const char *key, char token[40], int64_t *expires,
		     char etag[128], struct regfs_err *err)
{
	struct s3_req rq = {.method = "GET", .key = key};
	struct s3_resp rs;
	int ret = s3_request(c, &rq, &rs, err);
	if (ret == 0 && rs.status == 404)
		ret = -ENOENT;
	else if (ret == 0 && rs.status != 200)
		ret = s3_fail(c, &rs, "reading an upload's lock", key, err);
	if (ret == 0) {
		long long e = 0;
		char t[40] = "";
		if (!rs.body || sscanf(rs.body, "%39s %lld", t, &e) != 2)
			e = 0; /* unreadable: treat as expired */
		snprintf(token, 40, "%s", t);
		*expires = e;
		snprintf(etag, 128, "%s", rs.etag);
	}
	s3_resp_free(&rs);
	return ret;
}

int s3_lease_take(struct s3_client *c, const char *key, struct s3_lease *l, struct regfs_err *err)
{
	memset(l, 0, sizeof *l);
	if (!(l->key = xasprintf("%s.lock", key)))
		return s3_nomem(err);
	new_token(l->token);
	int ret = lease_put(c, l, "If-None-Match", "*", err);
	if (ret == 0) {
		char holder[40], etag[128];
		int64_t expires = 0;
		ret = lease_get(c, l->key, holder, &expires, etag, err);
		if (ret == -ENOENT) /* dropped meanwhile: try once more */
			ret = lease_put(c, l, "If-None-Match", "*", err);
		else if (ret == 0 && expires < (int64_t)time(NULL)) {
			log_warn("s3: taking over the expired lock %s (its holder stopped renewing it)",
				 l->key);
			ret = lease_cas(c, l, etag, err);
		}
	}
	if (ret == 0)
		ret = regfs_errf(err, -EBUSY, "S3 upload \"%s\" is being written by another request", key);
	if (ret < 0) {
		free(l->key);
		l->key = NULL;
		return ret;
	}
	return 0;
}

int s3_lease_renew(struct s3_client *c, struct s3_lease *l, struct regfs_err *err)
{
	if (!l->key || (int64_t)time(NULL) - l->renewed < LEASE_S / 4)
		return 0;
	char etag[128];
	snprintf(etag, sizeof etag, "%s", l->etag);
	int ret = lease_cas(c, l, etag, err);
	if (ret == 0)
		return regfs_errf(err, -EBUSY, "lost the lock %s (it expired and another request took "
				  "it over): this request stops writing", l->key);
	return ret < 0 ? ret : 0;
}

void s3_lease_drop(struct s3_client *c, struct s3_lease *l)
{
	if (!l->key)
		return;
	/* A lease renewed less than half its life ago cannot have been taken
	 * over: delete it at once. An older one may be someone else's now. */
	bool mine = (int64_t)time(NULL) - l->renewed < LEASE_S / 2;
	char holder[40], etag[128];
	int64_t expires;
	if (!mine && lease_get(c, l->key, holder, &expires, etag, NULL) == 0)
		mine = strcmp(holder, l->token) == 0;
	if (mine)
		s3_delete_key(c, l->key, NULL);
	free(l->key);
	l->key = NULL;
}
