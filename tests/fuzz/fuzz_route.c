/* fuzz_route.c — libFuzzer target: the request-path router (registry/route.c)
 * and the grammars it leans on (lib/names.c, lib/digest.c) on arbitrary
 * paths, as MHD hands them over after percent-decoding (so any byte but
 * NUL). Checks what the handlers rely on: a name marked valid is valid and
 * fits, references are NUL-terminated and fit, a parsed digest is its
 * algorithm's lowercase hex of the right length, and a reference is a tag
 * or a digest, never both. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regfs/digest.h"
#include "regfs/log.h"
#include "regfs/names.h"
#include "route.h"

static void check_digest(const char *s)
{
	enum regfs_digest_alg alg;
	const char *hex = NULL;
	if (regfs_digest_parse(s, &alg, &hex, NULL) != 0)
		return;
	const char *name = regfs_digest_alg_name(alg);
	size_t k = strlen(name);
	if (strncmp(s, name, k) || s[k] != ':' || hex != s + k + 1)
		abort();
	size_t n = strlen(hex);
	if (n != (alg == REGFS_SHA256 ? 64u : 128u))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			abort();
}

static void check_route(const char *path)
{
	struct route rt;
	route_parse(path, &rt);
	if ((unsigned)rt.kind >= R__COUNT || route_entry_of(rt.kind)->kind != rt.kind)
		abort();
	if (memchr(rt.name, '\0', sizeof rt.name) == NULL || memchr(rt.ref, '\0', sizeof rt.ref) == NULL)
		abort();
	if (rt.name_ok && (!regfs_name_valid(rt.name) || strlen(rt.name) > REGFS_NAME_MAX))
		abort();
	if (rt.name_ok && !strstr(path, rt.name))
		abort();
	check_digest(rt.ref);
	int kind = regfs_reference_kind(rt.ref, NULL);
	if ((kind == 0) != regfs_tag_valid(rt.ref) || (kind == 1 && !regfs_digest_valid(rt.ref)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		regfs_log_set_level(REGFS_LOG_ERROR);
	char *s = malloc(size + 5);
	if (!s)
		return 0;
	/* half the inputs are paths under /v2/ (where the router has work to do) */
	size_t off = 0;
	if (size && (data[0] & 1)) {
		memcpy(s, "/v2/", 4);
		off = 4;
	}
	memcpy(s + off, data, size);
	s[off + size] = '\0';
	check_route(s);
	(void)http_method_parse(s);
	/* the grammars on the whole input as well */
	(void)regfs_name_valid(s + off);
	(void)regfs_tag_valid(s + off);
	check_digest(s + off);
	free(s);
	return 0;
}
