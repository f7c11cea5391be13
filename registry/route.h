/* route.h — the route table of regfs-registry: for every endpoint its path
 * shape, the methods it answers, the access each method needs, and the
 * handler; and the parser that maps a request path to a row.
 *
 * A new endpoint is one row in route.c's table plus its handler. The access
 * column states what a client must be allowed to do for each method (pull,
 * push, delete, list the catalog); tests/unit/test_route.c pins every
 * (route, method) pair. */
#ifndef REGFS_ROUTE_H
#define REGFS_ROUTE_H

#include <stdbool.h>
#include <microhttpd.h>

struct registry;
struct request;

enum route_kind {
	R_NOT_FOUND = 0,
	R_BASE,            /* /v2/ */
	R_CATALOG,         /* /v2/_catalog */
	R_BULK_TAGS,       /* /v2/_regfs/tags */
	R_TAGS,            /* /v2/<name>/tags/list */
	R_MANIFEST,        /* /v2/<name>/manifests/<ref> */
	R_BLOB,            /* /v2/<name>/blobs/<digest> */
	R_UPLOAD_START,    /* /v2/<name>/blobs/uploads/ */
	R_UPLOAD,          /* /v2/<name>/blobs/uploads/<uuid> */
	R_REFERRERS,       /* /v2/<name>/referrers/<digest> */
	R_REPO_MANIFESTS,  /* /v2/<name>/_regfs/manifests */
	R_BULK_MANIFESTS,  /* /v2/_regfs/manifests */
	R_LAYER_INDEX,     /* /v2/<name>/_regfs/layerindex/<digest> */
	R_USAGE,           /* /v2/_regfs/usage */
	R__COUNT
};

/* The methods the registry tells apart; anything else is HTTP_OTHER. */
enum http_method {
	HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_POST, HTTP_PATCH, HTTP_DELETE, HTTP_OTHER,
	HTTP__COUNT
};

/* What a client needs to be allowed to do for a (route, method). */
enum access {
	ACCESS_NONE,       /* anyone (the API version check) */
	ACCESS_PULL,       /* read a repository */
	ACCESS_PUSH,       /* write a repository */
	ACCESS_DELETE,     /* delete from a repository */
	ACCESS_CATALOG,    /* list every repository */
};

/* A request handler. Called on each libmicrohttpd callback of its request:
 * first with q->started false (headers only; a handler that reads a body
 * sets started), then once per body chunk (*q->size > 0, which it must
 * consume), then with *q->size == 0 to answer. Requests without a body get
 * one call (started false, *q->size 0) and must answer at once. */
typedef enum MHD_Result route_handler_fn(struct registry *r, struct request *q);
typedef route_handler_fn *route_handler;

struct route_entry {
	enum route_kind kind;
	const char *shape;            /* the path, for people: "/v2/<name>/tags/list" */
	const char *noun;             /* "method X not allowed on <noun>"; NULL: the URL */
	bool named;                   /* the path holds a repository name, checked first */
	unsigned methods;             /* bit (1u << enum http_method) per allowed method */
	enum access access[HTTP__COUNT];
	route_handler handler;
};

#define ROUTE_NAME_MAX 256
#define ROUTE_REF_MAX 160

/* A parsed request path. */
struct route {
	enum route_kind kind;
	bool name_ok;                 /* name matches the repository-name grammar */
	char name[ROUTE_NAME_MAX];
	char ref[ROUTE_REF_MAX];      /* tag, digest or uuid; "" when absent */
	bool ref_truncated;           /* the reference did not fit (hence invalid) */
};

/* Parses a request path (already percent-decoded by MHD). Never fails:
 * unknown paths give R_NOT_FOUND. Names are checked with regfs_name_valid
 * (name_ok); references are copied verbatim for the handler to validate. */
void route_parse(const char *path, struct route *rt);

/* The table row of a route kind (R_NOT_FOUND has one too). */
const struct route_entry *route_entry_of(enum route_kind kind);

/* true when the row answers `m`. */
bool route_allows(const struct route_entry *e, enum http_method m);

/* The method of a request line ("GET" -> HTTP_GET; unknown: HTTP_OTHER). */
enum http_method http_method_parse(const char *method);

#endif
