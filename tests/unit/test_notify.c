/* test_notify.c — registry/notify.c against a listener on 127.0.0.1 (a thread
 * here that answers every POST with 200 and records its path, headers and
 * body): events reach their endpoint with the envelope's content type and
 * the configured headers, ignore.actions holds, and a reload while other
 * threads emit loses none of the events of an endpoint that stays. */
#include "notify.h"
#include "registry.h"
#include "request.h"

#include <regfs/config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* ---- the listener ---- */

struct listener {
	int fd, port;
	pthread_t th;
	pthread_mutex_t lock;
	char *log;          /* every request, headers and body, concatenated */
	size_t len;
	int delay_ms;       /* before each answer: lets events pile up in the queues */
};

/* Reads one request (headers, then Content-Length bytes) into a malloc'd
 * string; NULL when the peer closed first. */
static char *read_request(int c)
{
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	long want = -1;
	while (b && n < cap) {
		ssize_t k = read(c, b + n, cap - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		b[n] = '\0';
		char *end = strstr(b, "\r\n\r\n");
		char *cl = strcasestr(b, "Content-Length:");
		if (end && want < 0)
			want = cl ? strtol(cl + 15, NULL, 10) : 0;
		if (end && (long)(n - (size_t)(end + 4 - b)) >= want)
			return b;
	}
	free(b);
	return NULL;
}

static void *serve(void *arg)
{
	struct listener *l = arg;
	for (;;) {
		int c = accept(l->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char *req = read_request(c);
		if (req && l->delay_ms)
			usleep((useconds_t)l->delay_ms * 1000);
		if (req) {
			pthread_mutex_lock(&l->lock);
			size_t k = strlen(req);
			char *nl = realloc(l->log, l->len + k + 1);
			if (nl) {
				memcpy(nl + l->len, req, k + 1);
				l->log = nl;
				l->len += k;
			}
			pthread_mutex_unlock(&l->lock);
			static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
			(void)!write(c, ok, sizeof ok - 1);
		}
		free(req);
		close(c);
	}
}

static void listener_start(struct listener *l)
{
	memset(l, 0, sizeof *l);
	pthread_mutex_init(&l->lock, NULL);
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(l->fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(l->fd, 64), 0);
	assert_int_equal(getsockname(l->fd, (struct sockaddr *)&a, &al), 0);
	l->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&l->th, NULL, serve, l), 0);
}

static void listener_stop(struct listener *l)
{
	shutdown(l->fd, SHUT_RDWR);
	close(l->fd);
	pthread_join(l->th, NULL);
	free(l->log);
	pthread_mutex_destroy(&l->lock);
}

/* Occurrences of `needle` in the requests whose request line names `path`. */
static int count(struct listener *l, const char *path, const char *needle)
{
	char line[64];
	snprintf(line, sizeof line, "POST %s HTTP/1.1", path);
	int n = 0;
	pthread_mutex_lock(&l->lock);
	for (const char *r = l->log ? strstr(l->log, "POST ") : NULL; r; ) {
		const char *next = strstr(r + 5, "POST ");
		if (strncmp(r, line, strlen(line)) == 0)
			for (const char *p = strstr(r, needle); p && (!next || p < next); p = strstr(p + 1, needle))
				n++;
		r = next;
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* Appends to ids (up to cap, *n so far) the event ids of the requests to
 * `path`: an event is `{"id":"<36>","timestamp"` (a request's id is not
 * followed by a timestamp). */
static void event_ids(struct listener *l, const char *path, char (*ids)[37], int *n, int cap)
{
	char line[64];
	snprintf(line, sizeof line, "POST %s HTTP/1.1", path);
	static const char pre[] = "{\"id\":\"", post[] = "\",\"timestamp\"";
	pthread_mutex_lock(&l->lock);
	for (const char *r = l->log ? strstr(l->log, "POST ") : NULL; r; ) {
		const char *next = strstr(r + 5, "POST ");
		if (strncmp(r, line, strlen(line)) == 0)
			for (const char *p = strstr(r, pre); p && (!next || p < next) && *n < cap;
			     p = strstr(p + 1, pre)) {
				const char *v = p + sizeof pre - 1;
				if (strlen(v) >= 36 + sizeof post - 1 &&
				    strncmp(v + 36, post, sizeof post - 1) == 0) {
					memcpy(ids[*n], v, 36);
					ids[(*n)++][36] = '\0';
				}
			}
		r = next;
	}
	pthread_mutex_unlock(&l->lock);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Distinct event ids received at /one and /two together. Delivery is at
 * least once: a POST whose answer came after the client's timeout is sent
 * again (the listener has it twice), so duplicates are not counted. */
static int distinct_events(struct listener *l)
{
	enum { CAP = 4096 };
	char (*ids)[37] = calloc(CAP, sizeof *ids);
	assert_non_null(ids);
	int n = 0;
	event_ids(l, "/one", ids, &n, CAP);
	event_ids(l, "/two", ids, &n, CAP);
	qsort(ids, (size_t)n, sizeof *ids, cmp_id);
	int d = 0;
	for (int i = 0; i < n; i++)
		d += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
	free(ids);
	return d;
}

/* Waits (at most 20 s) until `path` got `want` occurrences of `needle`. */
static int wait_count(struct listener *l, const char *path, const char *needle, int want)
{
	int n = 0;
	for (int i = 0; i < 400 && (n = count(l, path, needle)) < want; i++)
		usleep(50 * 1000);
	return n;
}

/* ---- helpers ---- */

/* Parses "notifications: endpoints:" + `endpoints`, each "PORT" in it
 * replaced by the listener's port. */
static void config(struct regfs_config *cfg, struct listener *l, const char *endpoints)
{
	char y[2048];
	size_t j = (size_t)snprintf(y, sizeof y, "notifications:\n  endpoints:\n");
	for (const char *p = endpoints; *p && j + 8 < sizeof y; ) {
		if (strncmp(p, "PORT", 4) == 0) {
			j += (size_t)snprintf(y + j, sizeof y - j, "%d", l->port);
			p += 4;
		} else {
			y[j++] = *p++;
		}
	}
	y[j] = '\0';
	regfs_config_defaults(cfg, "/tmp/unused");
	struct regfs_err e = {0};
	assert_int_equal(regfs_config_parse(y, j, cfg, &e), 0);
}

static void emit(struct registry *r, const char *action, const char *tag)
{
	struct request q = {0};
	q.method = "PUT";
	snprintf(q.rt.name, sizeof q.rt.name, "t/app");
	notify_emit(r, &q, &(struct notify_target){action, "application/vnd.oci.image.manifest.v1+json",
		    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 42,
		    tag, false});
}

/* ---- tests ---- */

static void test_delivery(void **state)
{
	(void)state;
	struct listener l;
	listener_start(&l);
	struct regfs_config cfg;
	config(&cfg, &l,
	       "    - name: a\n      url: http://127.0.0.1:PORT/a\n"
	       "      headers:\n        X-Token: [s3cr3t]\n"
	       "    - name: b\n      url: http://127.0.0.1:PORT/b\n"
	       "      ignore:\n        actions: [pull]\n");
	struct registry r = {.cfg = &cfg};
	struct regfs_err e = {0};
	assert_int_equal(notify_open(&r, &e), 0);
	emit(&r, "push", "v1");
	emit(&r, "pull", "v1");
	emit(&r, "delete", NULL);
	assert_int_equal(wait_count(&l, "/a", "\"timestamp\":", 3), 3);
	assert_int_equal(wait_count(&l, "/b", "\"timestamp\":", 2), 2);
	assert_int_equal(count(&l, "/b", "\"action\":\"pull\""), 0);
	assert_int_equal(count(&l, "/a", "\"action\":\"pull\""), 1);
	assert_int_equal(count(&l, "/a", "\"tag\":\"v1\""), 2);
	assert_int_equal(count(&l, "/a", "\"repository\":\"t/app\""), 3);
	assert_true(count(&l, "/a", "Content-Type: application/vnd.docker.distribution.events.v2+json") >= 1);
	assert_true(count(&l, "/a", "X-Token: s3cr3t") >= 1);
	assert_int_equal(count(&l, "/b", "X-Token"), 0);
	/* a is acknowledged after the listener recorded it: wait for the count */
	struct notify_stats st = {0};
	for (int i = 0; i < 400 && (notify_get_stats(&r, &st), st.sent < 5); i++)
		usleep(50 * 1000);
	assert_int_equal(st.sent, 5); /* 3 to a, 2 to b (the pull ignored) */
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.queued, 0);
	notify_close(&r);
	assert_null(r.nt);
	regfs_config_free(&cfg);
	listener_stop(&l);
}

struct emitter {
	struct registry *r;
	int n;
};

static void *emit_many(void *arg)
{
	struct emitter *em = arg;
	for (int i = 0; i < em->n; i++) {
		emit(em->r, "push", NULL);
		if (i % 16 == 0)
			usleep(1000);
	}
	return NULL;
}

static void test_reload_keeps_events(void **state)
{
	(void)state;
	struct listener l;
	listener_start(&l);
	l.delay_ms = 20; /* so that events are still queued at each reload */
	struct regfs_config c1, c2;
	config(&c1, &l, "    - name: keep\n      url: http://127.0.0.1:PORT/one\n"
			"    - name: gone\n      url: http://127.0.0.1:PORT/gone\n");
	config(&c2, &l, "    - name: keep\n      url: http://127.0.0.1:PORT/two\n"
			"    - name: new\n      url: http://127.0.0.1:PORT/new\n");
	struct registry r = {.cfg = &c1};
	struct regfs_err e = {0};
	assert_int_equal(notify_open(&r, &e), 0);
	/* two threads emit 2 × 300 events (below the queue's 1024) while the
	 * endpoints are swapped back and forth */
	struct emitter em = {&r, 300};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, emit_many, &em), 0);
	for (int i = 0; i < 6; i++) {
		usleep(20 * 1000);
		assert_int_equal(notify_reload(&r, i % 2 ? &c1 : &c2, &e), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* "keep" exists throughout: all 600 arrive, at /one or /two (a
	 * retried POST may bring some twice) */
	for (int i = 0; i < 400 && distinct_events(&l) < 600; i++)
		usleep(50 * 1000);
	assert_int_equal(distinct_events(&l), 600);
	notify_close(&r);
	regfs_config_free(&c1);
	regfs_config_free(&c2);
	listener_stop(&l);
}

static void test_no_endpoints(void **state)
{
	(void)state;
	struct regfs_config cfg;
	regfs_config_defaults(&cfg, "/tmp/unused");
	struct registry r = {.cfg = &cfg};
	struct regfs_err e = {0};
	assert_int_equal(notify_open(&r, &e), 0);
	assert_null(r.nt); /* no thread, no curl */
	struct notify_stats st;
	notify_get_stats(&r, &st);
	assert_int_equal(st.sent + st.dropped + st.queued + st.failed_posts, 0);
	emit(&r, "push", NULL); /* a no-op */
	notify_close(&r);
	regfs_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delivery),
		cmocka_unit_test(test_reload_keeps_events),
		cmocka_unit_test(test_no_endpoints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
