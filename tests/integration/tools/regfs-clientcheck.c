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

static int run(struct regfs_client *c, int argc, char **argv)
{
	struct regfs_err e = {0};
	const char *cmd = argv[0];
	int rc = 0;
#define NEED(k) do { if (argc < (k) + 1) return usage(); } while (0)
	if (!strcmp(cmd, "ping")) {
		rc = regfs_client_ping(c, &e);
		if (!rc)
			puts("ok");
	} else if (!strcmp(cmd, "catalog") || !strcmp(cmd, "tags")) {
		struct regfs_strv v;
		if (!strcmp(cmd, "tags")) {
			NEED(1);
			rc = regfs_client_tags(c, argv[1], &v, &e);
		} else {
			rc = regfs_client_catalog(c, &v, &e);
		}
		for (size_t i = 0; !rc && i < v.n; i++)
			puts(v.v[i]);
		if (!rc)
			regfs_strv_free(&v);
	} else if (!strcmp(cmd, "manifest")) {
		NEED(2);
		struct regfs_manifest_resp r;
		rc = regfs_client_manifest(c, argv[1], argv[2], &r, &e);
		if (!rc) {
			printf("%s %s %" PRId64 "\n", r.digest, r.content_type, r.last_modified);
			if (argc > 3) {
				int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
				if (fd < 0 || write_all(fd, r.data, r.len) || close(fd))
					rc = regfs_errf(&e, -errno, "cannot write %s", argv[3]);
			}
			regfs_manifest_resp_free(&r);
		}
	} else if (!strcmp(cmd, "manifests")) {
		size_t n = (size_t)argc - 1;
		struct regfs_manifest_req *q = calloc(n ? n : 1, sizeof *q);
		for (size_t i = 0; i < n; i++)
			split_ref(argv[i + 1], &q[i].repo, &q[i].ref);
		rc = regfs_client_manifests(c, q, n);
		for (size_t i = 0; i < n; i++) {
			printf("%s:%s %s %s\n", q[i].repo, q[i].ref,
			       q[i].rc ? strerrorname_np(-q[i].rc) : "0",
			       q[i].rc ? regfs_err_str(&q[i].err) : q[i].resp.digest);
			regfs_manifest_resp_free(&q[i].resp);
		}
		free(q);
	} else if (!strcmp(cmd, "tags-many")) {
		size_t n = (size_t)argc - 1;
		struct regfs_tags_req *q = calloc(n ? n : 1, sizeof *q);
		for (size_t i = 0; i < n; i++)
			q[i].repo = argv[i + 1];
		rc = regfs_client_tags_many(c, q, n);
		for (size_t i = 0; i < n; i++) {
			printf("%s %s ", q[i].repo, q[i].rc ? strerrorname_np(-q[i].rc) : "0");
			for (size_t k = 0; !q[i].rc && k < q[i].tags.n; k++)
				printf("%s%s", k ? "," : "", q[i].tags.v[k]);
			printf("\n");
			regfs_strv_free(&q[i].tags);
		}
		free(q);
	} else if (!strcmp(cmd, "blob-read")) {
		NEED(4);
		size_t len = strtoull(argv[4], NULL, 10), got = 0;
		char *buf = malloc(len ? len : 1);
		rc = regfs_client_blob_read(c, argv[1], argv[2], strtoull(argv[3], NULL, 10), len,
					    buf, &got, &e);
		if (!rc)
			rc = write_all(1, buf, got);
		free(buf);
	} else if (!strcmp(cmd, "blob-chunks")) {
		NEED(3);
		size_t chunk = strtoull(argv[3], NULL, 10), got = 0;
		char *buf = malloc(chunk ? chunk : 1);
		uint64_t off = 0;
		do {
			rc = regfs_client_blob_read(c, argv[1], argv[2], off, chunk, buf, &got, &e);
			if (!rc)
				rc = write_all(1, buf, got);
			off += got;
		} while (!rc && got == chunk && chunk);
		free(buf);
	} else if (!strcmp(cmd, "blob-fetch")) {
		NEED(3);
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return fail(-errno, &e);
		rc = regfs_client_blob_fetch(c, argv[1], argv[2], fd, &e);
		close(fd);
	} else if (!strcmp(cmd, "blob-size")) {
		NEED(2);
		uint64_t sz = 0;
		rc = regfs_client_blob_size(c, argv[1], argv[2], &sz, &e);
		if (!rc)
			printf("%" PRIu64 "\n", sz);
	} else if (!strcmp(cmd, "delete")) {
		NEED(2);
		rc = regfs_client_delete_manifest(c, argv[1], argv[2], &e);
	} else if (!strcmp(cmd, "put")) {
		NEED(4);
		FILE *f = fopen(argv[3], "rb");
		if (!f)
			return fail(-errno, &e);
		char buf[1 << 16];
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		char d[REGFS_DIGEST_MAX];
		rc = regfs_client_put_manifest(c, argv[1], argv[2], buf, n, argv[4], d, &e);
		if (!rc)
			puts(d);
	} else if (!strcmp(cmd, "mount-blob")) {
		NEED(3);
		rc = regfs_client_mount_blob(c, argv[1], argv[2], argv[3], &e);
	} else if (!strcmp(cmd, "has-ext")) {
		NEED(1);
		puts(regfs_client_has_ext(c, argv[1]) ? "yes" : "no");
	} else if (!strcmp(cmd, "bulk-tags")) {
		struct regfs_repo_tags *r;
		size_t n;
		rc = regfs_client_bulk_tags(c, &r, &n, &e);
		for (size_t i = 0; !rc && i < n; i++)
			for (size_t k = 0; k < r[i].n_tags; k++)
				printf("%s %s %s %" PRId64 "\n", r[i].name, r[i].tags[k].tag,
				       r[i].tags[k].digest, r[i].tags[k].pushed);
		if (!rc)
			regfs_repo_tags_free(r, n);
	} else if (!strcmp(cmd, "repo-manifests")) {
		NEED(1);
		struct regfs_tag_info *t;
		size_t n;
		rc = regfs_client_repo_manifests(c, argv[1], &t, &n, &e);
		for (size_t i = 0; !rc && i < n; i++)
			printf("%s %" PRId64 " %s\n", t[i].digest, t[i].pushed,
			       t[i].tag ? t[i].tag : "-");
		if (!rc)
			regfs_tag_info_free(t, n);
	} else if (!strcmp(cmd, "threads")) {
		NEED(2);
		int nt = atoi(argv[1]);
		size_t n = (size_t)argc - 2;
		struct regfs_manifest_req *q = calloc(n, sizeof *q);
		for (size_t i = 0; i < n; i++)
			split_ref(argv[i + 2], &q[i].repo, &q[i].ref);
		/* Reference answers, fetched one by one. */
		for (size_t i = 0; !rc && i < n; i++)
			rc = regfs_client_manifest(c, q[i].repo, q[i].ref, &q[i].resp, &e);
		if (!rc) {
			pthread_t *th = calloc((size_t)nt, sizeof *th);
			struct thr *ts = calloc((size_t)nt, sizeof *ts);
			for (int i = 0; i < nt; i++) {
				ts[i] = (struct thr){.c = c, .want = q, .n = n};
				pthread_create(&th[i], NULL, thr_main, &ts[i]);
			}
			for (int i = 0; i < nt; i++) {
				pthread_join(th[i], NULL);
				if (ts[i].bad && !rc)
					rc = regfs_errf(&e, -EIO, "thread %d: %s", i, ts[i].why);
			}
			if (!rc)
				puts("ok");
			free(th);
			free(ts);
		}
		for (size_t i = 0; i < n; i++)
			regfs_manifest_resp_free(&q[i].resp);
		free(q);
	} else {
		return usage();
	}
	return rc ? fail(rc, &e) : 0;
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
