/* mem.c — the freeing helpers of mem.h. */
#include <regfs/mem.h>

#include <stdlib.h>
#include <string.h>

void regfs_free_strs(char **const p[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(*p[i]);
		*p[i] = NULL;
	}
}

void regfs_free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
