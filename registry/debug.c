/* debug.c — see debug.h. One libmicrohttpd daemon with a single internal
 * thread: scrapes and health probes are rare and small. */
#include "debug.h"

#include "jsonbuf.h"
#include "maint.h"
#include "metrics.h"
#include "registry.h"
#include "server.h"

#include <regfs/log.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
			      char *body, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result simple(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *b = strdup(msg);
	return b ? answer(c, status, "text/plain; charset=utf-8", b, strlen(b)) : MHD_NO;
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c)
{
	struct dynbuf b;
	dynbuf_init(&b, 64u << 20);
	if (metrics_render(&b)) {
		dynbuf_free(&b);
		log_error("debug listener: out of memory rendering the metrics");
		return simple(c, 500, "out of memory rendering the metrics\n");
	}
	size_t len;
	char *s = dynbuf_take(&b, &len);
	dynbuf_free(&b);
	if (!s)
		return simple(c, 200, "");
	return answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", s, len);
}

static enum MHD_Result serve_health(struct registry *r, struct MHD_Connection *c)
{
	struct jbuf b;
	jb_init(&b, JB_NO_CAP);
	int failing = maint_health_json(r, &b);
	if (jb_error(&b)) {
		jb_free(&b);
		return simple(c, 500, "out of memory\n");
	}
	size_t len;
	char *s = jb_take(&b, &len);
	jb_free(&b);
	return answer(c, failing ? 503 : 200, "application/json; charset=utf-8", s, len);
}

static enum MHD_Result on_debug(void *cls, struct MHD_Connection *c, const char *url,
				const char *method, const char *version, const char *data,
				size_t *size, void **con_cls)
{
	(void)version; (void)data;
	struct registry *r = cls;
	static int first;
	if (!*con_cls) { /* headers only: answer on the next call */
		*con_cls = &first;
		return MHD_YES;
	}
	if (*size) {
		*size = 0; /* a body is not expected: ignored */
		return MHD_YES;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return simple(c, 405, "only GET and HEAD\n");
	const struct regfs_config *cfg = r->cfg;
	if (cfg->prometheus_enabled && !strcmp(url, cfg->prometheus_path))
		return serve_metrics(c);
	if (!strcmp(url, "/debug/health"))
		return serve_health(r, c);
	return simple(c, 404, "not found (the debug listener serves /debug/health and, "
		      "when enabled, the Prometheus metrics)\n");
}

int debug_start(struct registry *r, struct MHD_Daemon **out, struct regfs_err *err)
{
	*out = NULL;
	const char *addr = r->cfg->debug_addr;
	if (!addr || !*addr) {
		if (r->cfg->prometheus_enabled)
			log_warn("http.debug.prometheus.enabled is set but http.debug.addr is not: "
				 "no metrics are served");
		return 0;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	bool any;
	int rc = server_parse_addr(addr, &ss, &sl, &any, err);
	if (rc) {
		regfs_err_prefix(err, "http.debug.addr: ");
		return rc;
	}
	*out = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
				(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_debug, r, MHD_OPTION_SOCK_ADDR, &ss,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!*out)
		return regfs_errf(err, -EADDRINUSE, "http.debug.addr: cannot listen on %s (in use, "
				  "or not an address of this host)", addr);
	log_info("debug listener on %s: /debug/health%s%s", addr,
		 r->cfg->prometheus_enabled ? ", " : "",
		 r->cfg->prometheus_enabled ? r->cfg->prometheus_path : "");
	return 0;
}

void debug_stop(struct MHD_Daemon *d)
{
	if (d)
		MHD_stop_daemon(d);
}
