/* fuzz_authorization — the parsers of client and file input to
 * authentication (registry/auth_parse.c): the Authorization header (as sent,
 * and behind "Basic " so the base64 decoder sees every input) and the
 * htpasswd line. Checks what the callers rely on: on success the user and
 * password fit their buffers, hold no control character, and a parsed
 * htpasswd line's user and hash lie inside the line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "htpasswd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

static void basic(const char *hdr, size_t passcap)
{
	char user[AUTH_USER_MAX], pass[512];
	memset(user, 'U', sizeof user);
	memset(pass, 'P', sizeof pass);
	if (auth_basic_parse(hdr, user, sizeof user, pass, passcap) == 0) {
		if (strnlen(user, sizeof user) >= sizeof user || strnlen(pass, passcap) >= passcap)
			abort();
		no_ctl(user);
		no_ctl(pass);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *s = malloc(size + 7);
	if (!s)
		return 0;
	/* as sent */
	memcpy(s, data, size);
	s[size] = '\0';
	basic(s, 512);
	basic(s, 1 + (size ? data[0] % 16 : 0)); /* small password buffers */
	/* behind "Basic " */
	memcpy(s, "Basic ", 6);
	memcpy(s + 6, data, size);
	s[size + 6] = '\0';
	basic(s, 512);
	/* an htpasswd line (first line of the input) */
	memcpy(s, data, size);
	s[size] = '\0';
	s[strcspn(s, "\n")] = '\0';
	size_t len = strlen(s);
	char *user = NULL, *hash = NULL;
	enum htpasswd_line k = htpasswd_parse_line(s, &user, &hash);
	if (k == HTPASSWD_BCRYPT || k == HTPASSWD_OTHER) {
		if (user != s || hash <= user || hash > s + len || !*user || !*hash)
			abort();
		no_ctl(user);
		no_ctl(hash);
	}
	free(s);
	return 0;
}
