/* base64.c — see regfs/base64.h. */
#include <regfs/base64.h>

#include <errno.h>

static int sextet(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

ssize_t regfs_base64_decode(const char *s, size_t n, bool url, unsigned char *out, size_t cap)
{
	if (!url)
		while (n && s[n - 1] == '=')
			n--;
	if (n % 4 == 1) /* one character holds 6 bits: never a whole byte */
		return -EINVAL;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = sextet((unsigned char)s[i], url);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -ENOSPC;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (ssize_t)o;
}
