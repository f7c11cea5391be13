/* lists.h — paging shared by the list endpoints (tags list, catalog, bulk
 * tags, bulk manifests): n/last from the query, and the slice of a sorted
 * list they select. */
#ifndef REGFS_LISTS_H
#define REGFS_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

#include <regfs/err.h>

struct registry;
struct strvec;
struct request;
struct jbuf;

/* n (-1 when absent) and last (NULL when absent) from the query. -EINVAL
 * for a malformed n. */
int page_params(struct MHD_Connection *c, int *n, const char **last);
/* The entries of sorted `l` after `last`, at most n (n < 0: all): [*from, *to). */
void page_slice(const struct strvec *l, int n, const char *last, size_t *from, size_t *to);
/* Every repository (sorted) and the page [*from, *to) of it that n/last ask
 * for. On error (storage) *repos is empty and err says why. */
int repos_page(struct registry *r, int n, const char *last, struct strvec *repos,
	       size_t *from, size_t *to, struct regfs_err *err);

/* n and last from q's query; false after answering 400 for a bad n. */
bool page_or_400(struct registry *r, struct request *q, int *n, const char **last,
		 enum MHD_Result *ret);

/* Appends {"name":…,"tags":[{"tag","digest","pushed"}…] of a repository
 * (the object left open for the caller to add to and close). */
void json_repo_tags(struct registry *r, struct jbuf *b, const char *name);

/* Answers 200 with the JSON body built in `b` (taken over, and released
 * whatever happens; a failed build closes the connection), with
 * Content-Type `ctype` (NULL: JSON), a Link to the page after `to` of list
 * `l` under `link_base` when `l` is given, and a header `extra_name` when
 * given. */
enum MHD_Result json_answer(struct registry *r, struct request *q, struct jbuf *b,
			    const char *link_base, const struct strvec *l, size_t to,
			    int n, const char *ctype, const char *extra_name,
			    const char *extra_value);

/* A paged list of repositories, {"repositories":[…]}: the catalog and the
 * bulk extensions. `put` appends one repository's entry. */
struct repos_listing {
	int default_n;                /* page size when n is absent (-1: all) */
	int max_n;                    /* largest n honoured (0: PAGE_MAX) */
	const char *link_base;        /* the endpoint's path, for Link */
	void (*put)(struct registry *r, struct jbuf *b, const char *name);
	size_t page_bytes;            /* a page ends after the repository that passes it (0: no) */
	uint64_t page_us;             /* … or that takes it past this time (0: no) */
	const char *oom_msg;          /* out of memory: 503 with this message (NULL: close) */
};
enum MHD_Result answer_repos(struct registry *r, struct request *q,
			     const struct repos_listing *l);

#endif
