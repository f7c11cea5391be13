/* strvec.c — the vector of owned strings of strvec.h. */
#include <regfs/strvec.h>

#include <regfs/cmp.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STRVEC_FIRST_ALLOC 16

void strvec_init(struct strvec *sv)
{
	sv->v = NULL;
	sv->n = 0;
	sv->alloc = 0;
}

/* Room for one more string and the NULL after it. */
static int grow(struct strvec *sv)
{
	if (sv->n + 2 <= sv->alloc)
		return 0;
	size_t a = sv->alloc ? sv->alloc : STRVEC_FIRST_ALLOC;
	while (a < sv->n + 2) {
		if (a > SIZE_MAX / 2 / sizeof *sv->v)
			return -ENOMEM;
		a *= 2;
	}
	char **v = realloc(sv->v, a * sizeof *v);
	if (!v)
		return -ENOMEM;
	sv->v = v;
	sv->alloc = a;
	return 0;
}

int strvec_push_take(struct strvec *sv, char *s)
{
	if (!s)
		return -ENOMEM;
	if (grow(sv)) {
		free(s);
		return -ENOMEM;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return 0;
}

int strvec_push(struct strvec *sv, const char *s)
{
	return strvec_push_take(sv, strdup(s));
}

void strvec_sort(struct strvec *sv)
{
	regfs_qsort(sv->v, sv->n, sizeof *sv->v, regfs_cmp_str);
}

void strvec_uniq(struct strvec *sv)
{
	size_t u = 0;
	for (size_t i = 0; i < sv->n; i++) {
		if (u && strcmp(sv->v[u - 1], sv->v[i]) == 0)
			free(sv->v[i]);
		else
			sv->v[u++] = sv->v[i];
	}
	sv->n = u;
	if (sv->v)
		sv->v[u] = NULL;
}

void strvec_clear(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	strvec_init(sv);
}

char **strvec_take(struct strvec *sv, size_t *n)
{
	char **v = sv->v;
	if (n)
		*n = sv->n;
	strvec_init(sv);
	return v;
}
