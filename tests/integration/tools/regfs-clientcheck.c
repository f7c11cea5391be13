/* regfs-clientcheck — drives every call of the registry client (client.h)
 * from the command line, so integration tests can compare its answers with
 * what skopeo, curl and sha256sum say about the same registry.
 *
 *   regfs-clientcheck [--user U] [--pass P] [--docker-config F] [--timeout S]
 *                     [--parallel N] [--stats] URL COMMAND ARGS…
 *
 * Commands (output on stdout, one item per line):
 *   ping
 *   catalog                         repositories
 *   tags REPO                       tags
 *   manifest REPO REF [OUT]         "digest content-type last-modified"; bytes to OUT
 *   manifests REPO:REF…             batch: "REPO:REF rc digest" per item
 *   tags-many REPO…                 batch: "REPO rc tag,tag,…" per item
 *   blob-read REPO DIGEST OFF LEN   the bytes, raw
 *   blob-chunks REPO DIGEST CHUNK   the whole blob through Range reads of CHUNK bytes
 *   blob-fetch REPO DIGEST OUT      whole blob into OUT (verified)
 *   blob-size REPO DIGEST           size
 *   delete REPO REF
 *   put REPO REF FILE MEDIATYPE     digest
 *   mount-blob REPO FROM DIGEST
 *   has-ext NAME                    yes/no
 *   bulk-tags                       "repo tag digest pushed" per tag
 *   repo-manifests REPO             "digest pushed tags" per manifest
 *   threads N REPO:REF…             N threads fetch every manifest 20 times
 *                                   each; prints "ok" when all agree
 * On failure: "E<ERRNO-NAME>: message" on stderr, exit 1 (2 for usage).
 * --stats prints the client's counters as one JSON line on stderr at exit. */
#include <regfs/client.h>
#include <regfs/log.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: regfs-clientcheck [--user U] [--pass P] [--docker-config F] "
			"[--timeout S] [--parallel N] [--stats] [--debug] URL COMMAND ARGS…\n");
	return 2;
}

static int fail(int rc, const struct regfs_err *e)
{
	const char *name = strerrorname_np(-rc);
	fprintf(stderr, "%s: %s\n", name ? name : "E?", regfs_err_str(e));
	return 1;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* "repo:ref" split at the last ':' that is not part of "sha256:" */
static void split_ref(char *s, const char **repo, const char **ref)
{
	char *at = strstr(s, "@");
	if (at) {
		*at = '\0';
		*repo = s;
		*ref = at + 1;
		return;
	}
	char *colon = strrchr(s, ':');
	if (colon) {
		*colon = '\0';
		*ref = colon + 1;
	} else {
		*ref = "latest";
	}
	*repo = s;
}

struct thr {
	struct regfs_client *c;
	struct regfs_manifest_req *want;
	size_t n;
	int bad;
	char why[600];
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	for (int round = 0; round < 20 && !t->bad; round++) {
		for (size_t i = 0; i < t->n && !t->bad; i++) {
			struct regfs_manifest_resp r;
			struct regfs_err e = {0};
			int rc = regfs_client_manifest(t->c, t->want[i].repo, t->want[i].ref, &r, &e);
			if (rc) {
				t->bad = 1;
				snprintf(t->why, sizeof t->why, "%s", regfs_err_str(&e));
			} else if (strcmp(r.digest, t->want[i].resp.digest) != 0) {
				t->bad = 1;
				snprintf(t->why, sizeof t->why, "%s:%s gave %s, first %s", t->want[i].repo,
					 t->want[i].ref, r.digest, t->want[i].resp.digest);
			}
			regfs_manifest_resp_free(&r);
		}
	}
	return NULL;
}

/* Each command: argv[0] is its name, argv[1..argc) its arguments (at least
 * the table's `args`); 0 or a negative errno with e set. */
typedef int cmd_fn(struct regfs_client *c, int argc, char **argv, struct regfs_err *e);

static int cmd_ping(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	(void)argv;
	int rc = regfs_client_ping(c, e);
	if (!rc)
		puts("ok");
	return rc;
}

/* catalog, tags REPO */
static int cmd_list(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	struct regfs_strv v;
	int rc = strcmp(argv[0], "tags") == 0 ? regfs_client_tags(c, argv[1], &v, e)
					      : regfs_client_catalog(c, &v, e);
	for (size_t i = 0; !rc && i < v.n; i++)
		puts(v.v[i]);
	if (!rc)
		regfs_strv_free(&v);
	return rc;
}

static int cmd_manifest(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	struct regfs_manifest_resp r;
	int rc = regfs_client_manifest(c, argv[1], argv[2], &r, e);
	if (rc)
		return rc;
	printf("%s %s %" PRId64 "\n", r.digest, r.content_type, r.last_modified);
	if (argc > 3) {
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write_all(fd, r.data, r.len) || close(fd))
			rc = regfs_errf(e, -errno, "cannot write %s", argv[3]);
	}
	regfs_manifest_resp_free(&r);
	return rc;
}

/* "0", or the errno's name, for a batch item's result. */
static const char *rc_name(int rc)
{
	return rc ? strerrorname_np(-rc) : "0";
}

/* REPO:REF… arguments as manifest requests (calloc'd, at least one slot). */
static struct regfs_manifest_req *manifest_reqs(char **args, size_t n)
{
	struct regfs_manifest_req *q = calloc(n ? n : 1, sizeof *q);
	for (size_t i = 0; q && i < n; i++)
		split_ref(args[i], &q[i].repo, &q[i].ref);
	return q;
}

static int cmd_manifests(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)e;
	size_t n = (size_t)argc - 1;
	struct regfs_manifest_req *q = manifest_reqs(argv + 1, n);
	int rc = regfs_client_manifests(c, q, n);
	for (size_t i = 0; i < n; i++) {
		printf("%s:%s %s %s\n", q[i].repo, q[i].ref, rc_name(q[i].rc),
		       q[i].rc ? regfs_err_str(&q[i].err) : q[i].resp.digest);
		regfs_manifest_resp_free(&q[i].resp);
	}
	free(q);
	return rc;
}

static int cmd_tags_many(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)e;
	size_t n = (size_t)argc - 1;
	struct regfs_tags_req *q = calloc(n ? n : 1, sizeof *q);
	for (size_t i = 0; i < n; i++)
		q[i].repo = argv[i + 1];
	int rc = regfs_client_tags_many(c, q, n);
	for (size_t i = 0; i < n; i++) {
		printf("%s %s ", q[i].repo, rc_name(q[i].rc));
		for (size_t k = 0; !q[i].rc && k < q[i].tags.n; k++)
			printf("%s%s", k ? "," : "", q[i].tags.v[k]);
		printf("\n");
		regfs_strv_free(&q[i].tags);
	}
	free(q);
	return rc;
}

/* The blob argv[2] of argv[1] to stdout from `off`: one read of `chunk` bytes
 * (once), or reads of `chunk` bytes until a short one. */
static int read_out(struct regfs_client *c, char **argv, uint64_t off, size_t chunk, bool once,
		    struct regfs_err *e)
{
	char *buf = malloc(chunk ? chunk : 1);
	size_t got = 0;
	int rc;
	do {
		rc = regfs_client_blob_read(c, argv[1], argv[2], off, chunk, buf, &got, e);
		if (!rc)
			rc = write_all(1, buf, got);
		off += got;
	} while (!once && !rc && got == chunk && chunk);
	free(buf);
	return rc;
}

static int cmd_blob_read(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	return read_out(c, argv, strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10), true, e);
}

static int cmd_blob_chunks(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	return read_out(c, argv, 0, strtoull(argv[3], NULL, 10), false, e);
}

static int cmd_blob_fetch(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	int rc = regfs_client_blob_fetch(c, argv[1], argv[2], fd, e);
	close(fd);
	return rc;
}

static int cmd_blob_size(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	uint64_t sz = 0;
	int rc = regfs_client_blob_size(c, argv[1], argv[2], &sz, e);
	if (!rc)
		printf("%" PRIu64 "\n", sz);
	return rc;
}

static int cmd_delete(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	return regfs_client_delete_manifest(c, argv[1], argv[2], e);
}

static int cmd_put(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	FILE *f = fopen(argv[3], "rb");
	if (!f)
		return -errno;
	char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	char d[REGFS_DIGEST_MAX];
	int rc = regfs_client_put_manifest(c, argv[1], argv[2], buf, n, argv[4], d, e);
	if (!rc)
		puts(d);
	return rc;
}

static int cmd_mount_blob(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	return regfs_client_mount_blob(c, argv[1], argv[2], argv[3], e);
}

static int cmd_has_ext(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	(void)e;
	puts(regfs_client_has_ext(c, argv[1]) ? "yes" : "no");
	return 0;
}

static int cmd_bulk_tags(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	(void)argc;
	(void)argv;
	struct regfs_repo_tags *r;
	size_t n;
	int rc = regfs_client_bulk_tags(c, &r, &n, e);
	for (size_t i = 0; !rc && i < n; i++)
		for (size_t k = 0; k < r[i].n_tags; k++)
			printf("%s %s %s %" PRId64 "\n", r[i].name, r[i].tags[k].tag,
			       r[i].tags[k].digest, r[i].tags[k].pushed);
	if (!rc)
		regfs_repo_tags_free(r, n);
	return rc;
}

static int cmd_repo_manifests(struct regfs_client *c, int argc, char **argv,
			      struct regfs_err *e)
{
	(void)argc;
	struct regfs_tag_info *t;
	size_t n;
	int rc = regfs_client_repo_manifests(c, argv[1], &t, &n, e);
	for (size_t i = 0; !rc && i < n; i++)
		printf("%s %" PRId64 " %s\n", t[i].digest, t[i].pushed, t[i].tag ? t[i].tag : "-");
	if (!rc)
		regfs_tag_info_free(t, n);
	return rc;
}

/* nt threads fetch every manifest of q[0..n) 20 times against the answers
 * already in q[i].resp. */
static int threads_agree(struct regfs_client *c, int nt, struct regfs_manifest_req *q, size_t n,
			 struct regfs_err *e)
{
	pthread_t *th = calloc((size_t)nt, sizeof *th);
	struct thr *ts = calloc((size_t)nt, sizeof *ts);
	int rc = 0;
	for (int i = 0; i < nt; i++) {
		ts[i] = (struct thr){.c = c, .want = q, .n = n};
		pthread_create(&th[i], NULL, thr_main, &ts[i]);
	}
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		if (ts[i].bad && !rc)
			rc = regfs_errf(e, -EIO, "thread %d: %s", i, ts[i].why);
	}
	if (!rc)
		puts("ok");
	free(th);
	free(ts);
	return rc;
}

static int cmd_threads(struct regfs_client *c, int argc, char **argv, struct regfs_err *e)
{
	int nt = atoi(argv[1]);
	size_t n = (size_t)argc - 2;
	struct regfs_manifest_req *q = manifest_reqs(argv + 2, n);
	int rc = 0;
	/* Reference answers, fetched one by one. */
	for (size_t i = 0; !rc && i < n; i++)
		rc = regfs_client_manifest(c, q[i].repo, q[i].ref, &q[i].resp, e);
	if (!rc)
		rc = threads_agree(c, nt, q, n, e);
	for (size_t i = 0; i < n; i++)
		regfs_manifest_resp_free(&q[i].resp);
	free(q);
	return rc;
}

static const struct {
	const char *name;
	int args; /* at least this many arguments */
	cmd_fn *fn;
} commands[] = {
	{"ping", 0, cmd_ping},
	{"catalog", 0, cmd_list},
	{"tags", 1, cmd_list},
	{"manifest", 2, cmd_manifest},
	{"manifests", 0, cmd_manifests},
	{"tags-many", 0, cmd_tags_many},
	{"blob-read", 4, cmd_blob_read},
	{"blob-chunks", 3, cmd_blob_chunks},
	{"blob-fetch", 3, cmd_blob_fetch},
	{"blob-size", 2, cmd_blob_size},
	{"delete", 2, cmd_delete},
	{"put", 4, cmd_put},
	{"mount-blob", 3, cmd_mount_blob},
	{"has-ext", 1, cmd_has_ext},
	{"bulk-tags", 0, cmd_bulk_tags},
	{"repo-manifests", 1, cmd_repo_manifests},
	{"threads", 2, cmd_threads},
};

static int run(struct regfs_client *c, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if (argc < commands[i].args + 1)
			return usage();
		struct regfs_err e = {0};
		int rc = commands[i].fn(c, argc, argv, &e);
		return rc ? fail(rc, &e) : 0;
	}
	return usage();
}

int main(int argc, char **argv)
{
	struct regfs_client_opts o = {0};
	bool stats = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--stats")) {
			stats = true;
			continue;
		}
		if (!strcmp(a, "--debug")) {
			regfs_log_set_level(REGFS_LOG_DEBUG);
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (!strcmp(a, "--user"))
			o.user = v;
		else if (!strcmp(a, "--pass"))
			o.pass = v;
		else if (!strcmp(a, "--docker-config"))
			o.docker_config = v;
		else if (!strcmp(a, "--timeout"))
			o.timeout_s = atoi(v);
		else if (!strcmp(a, "--parallel"))
			o.max_parallel = atoi(v);
		else
			return usage();
	}
	if (argc - i < 2)
		return usage();
	o.url = argv[i];
	struct regfs_client *c;
	struct regfs_err e = {0};
	int rc = regfs_client_new(&o, &c, &e);
	if (rc)
		return fail(rc, &e);
	int ret = run(c, argc - i - 1, argv + i + 1);
	if (stats) {
		struct regfs_client_stats s;
		regfs_client_get_stats(c, &s);
		fprintf(stderr,
			"{\"requests\":%" PRIu64 ",\"manifest_gets\":%" PRIu64 ",\"tag_lists\":%" PRIu64
			",\"catalog_pages\":%" PRIu64 ",\"blob_reads\":%" PRIu64 ",\"writes\":%" PRIu64
			",\"bytes_fetched\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"errors\":%" PRIu64
			",\"token_fetches\":%" PRIu64 "}\n",
			s.requests, s.manifest_gets, s.tag_lists, s.catalog_pages, s.blob_reads,
			s.writes, s.bytes_fetched, s.retries, s.errors, s.token_fetches);
	}
	regfs_client_free(c);
	return ret;
}
