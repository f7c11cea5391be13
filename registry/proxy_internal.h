/* proxy_internal.h — what the cache's modules share beyond the contract of
 * proxy.h: the pure routing helpers (unit-tested on their own), the tag
 * check state of proxy_manifest.c, and the upstream tags list for lists.c.
 * Not for other modules. */
#ifndef REGFS_PROXY_INTERNAL_H
#define REGFS_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <regfs/strvec.h>

#include "proxy.h"

/* The upstream a containerd `?ns=<host>` value names (its remoteurl's
 * host, one of its `ns` hosts, or any Docker Hub name for a Docker Hub
 * upstream: docker.io, registry-1.docker.io, index.docker.io), or NULL. */
const struct proxy *proxy_for_ns(const struct registry *r, const char *host);

/* With `proxy:` (one upstream owning every name): that upstream when a
 * ?ns= host names another registry (the request is refused rather than
 * answered with the wrong registry's image); NULL otherwise. */
const struct proxy *proxy_ns_foreign(const struct registry *r, const char *host);

/* Is the upstream Docker Hub (its official images live under library/)? */
bool proxy_is_dockerhub(const struct proxy *p);

/* The name to ask the upstream for, from our name past the prefix
 * (proxy_of's *upstream_name): "alpine" becomes "library/alpine" on Docker
 * Hub, anything else is unchanged. 0 or -ENAMETOOLONG. */
int proxy_upstream_name(const struct proxy *p, const char *upstream_name, char *out,
			size_t cap);

/* Our name for `name` sent with ?ns= naming p: "<prefix>/<name>" (name
 * itself for the empty prefix). 0, -ENAMETOOLONG (over cap), -EINVAL (not
 * a repository name). */
int proxy_ns_rewrite(const struct proxy *p, const char *name, char *out, size_t cap);

/* proxy_manifest.c: the per-upstream state of tag checks and manifest
 * fetches in flight. NULL on ENOMEM; free is NULL-safe. */
struct proxy_tags *proxy_tags_new(void);
void proxy_tags_free(struct proxy_tags *t);

/* The tags of cached repository q->rt.name at its upstream (every page),
 * sorted, into out (the caller clears it). 0, or a negative errno when the
 * upstream could not be asked (logged; the caller lists the stored tags). */
int proxy_list_tags(struct registry *r, struct request *q, struct strvec *out);

#endif
