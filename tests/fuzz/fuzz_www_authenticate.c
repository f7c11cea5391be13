/* fuzz_www_authenticate.c — the client's WWW-Authenticate challenge parser
 * (lib/client/auth.c) on arbitrary header values: every parameter the
 * Bearer flow reads, and what it returns must be a string no longer than the
 * header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/client/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"realm", "service", "scope", "error", "Realm", ""};
	if (size > 16384)
		return 0;
	char *h = malloc(size + 1);
	if (!h)
		return 0;
	memcpy(h, data, size);
	h[size] = '\0';
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char *v = challenge_param(h, keys[i]);
		if (v && strlen(v) > size)
			abort();
		free(v);
	}
	free(h);
	return 0;
}
