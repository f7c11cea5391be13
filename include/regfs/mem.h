/* mem.h — freeing helpers for the structs that own many strings, and for
 * secrets (passwords, tokens, keys) that must not linger in freed memory.
 *
 * regfs_free_strs frees each pointed-to string and sets the pointer to NULL,
 * so a struct's destructor is one statement that names its fields:
 *     REGFS_FREE_STRS(&c->url, &c->host, &c->user);
 * NULL strings are fine. None of these can fail. */
#ifndef REGFS_MEM_H
#define REGFS_MEM_H

#include <stddef.h>

/* free(*p[i]); *p[i] = NULL; for i in [0, n). */
void regfs_free_strs(char **const p[], size_t n);

#define REGFS_FREE_STRS(...)                                                                 \
	regfs_free_strs((char **const[]){__VA_ARGS__},                                       \
			sizeof((char **const[]){__VA_ARGS__}) / sizeof(char **))

/* Overwrite the string with zeros (in a way the compiler may not drop), then
 * free it. NULL is fine. */
void regfs_free_secret(char *s);

#endif
