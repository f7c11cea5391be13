/* s3_xml.c — reading and writing the few XML shapes of the S3 API.
 *
 * Hand-written on purpose: S3 answers (ListObjectsV2, ListMultipartUploads,
 * ListParts, InitiateMultipartUpload, CopyObject, Error) are flat documents
 * of known element names without attributes we need, so a scanner for
 * <Name>…</Name> with entity decoding is enough and avoids a libxml2
 * dependency. Element names are matched exactly, so <Prefix> never matches
 * inside <CommonPrefixes> unless asked for within that element's content. */
#include "s3_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *find(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle));
}

bool s3_xml_elem(const char *s, size_t len, const char *tag, size_t *pos, const char **inner,
		 size_t *inner_len)
{
	char open[96], close[96];
	size_t tl = strlen(tag);
	if (tl + 4 > sizeof open || !s)
		return false;
	memcpy(open, "<", 1);
	memcpy(open + 1, tag, tl);
	open[tl + 1] = '\0';
	memcpy(close, "</", 2);
	memcpy(close + 2, tag, tl);
	close[tl + 2] = '>';
	close[tl + 3] = '\0';
	size_t at = *pos;
	while (at < len) {
		const char *o = find(s + at, len - at, open);
		if (!o)
			return false;
		const char *after = o + tl + 1;
		if (after >= s + len)
			return false;
		if (*after == '/' && after + 1 < s + len && after[1] == '>') { /* <Tag/> */
			*inner = after;
			*inner_len = 0;
			*pos = (size_t)(after + 2 - s);
			return true;
		}
		if (*after != '>' && *after != ' ') { /* <TagSomethingElse> */
			at = (size_t)(after - s);
			continue;
		}
		const char *gt = memchr(after, '>', (size_t)(s + len - after));
		if (!gt)
			return false;
		const char *c = find(gt + 1, (size_t)(s + len - gt - 1), close);
		if (!c)
			return false;
		*inner = gt + 1;
		*inner_len = (size_t)(c - gt - 1);
		*pos = (size_t)(c + tl + 3 - s);
		return true;
	}
	return false;
}

static char *unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	for (size_t i = 0; i < n;) {
		if (s[i] == '&') {
			bool done = false;
			for (size_t e = 0; e < sizeof ents / sizeof ents[0]; e++) {
				size_t el = strlen(ents[e].ent);
				if (i + el <= n && memcmp(s + i, ents[e].ent, el) == 0) {
					*o++ = ents[e].c;
					i += el;
					done = true;
					break;
				}
			}
			if (!done && i + 3 < n && s[i + 1] == '#') { /* &#NN; / &#xNN; (ASCII only) */
				const char *semi = memchr(s + i, ';', n - i);
				if (semi) {
					long v = s[i + 2] == 'x' ? strtol(s + i + 3, NULL, 16)
								 : strtol(s + i + 2, NULL, 10);
					if (v > 0 && v < 128) {
						*o++ = (char)v;
						i = (size_t)(semi - s) + 1;
						done = true;
					}
				}
			}
			if (done)
				continue;
		}
		*o++ = s[i++];
	}
	*o = '\0';
	return out;
}

char *s3_xml_text(const char *s, size_t len, const char *tag)
{
	size_t pos = 0;
	const char *in;
	size_t n;
	if (!s3_xml_elem(s, len, tag, &pos, &in, &n))
		return NULL;
	return unescape(in, n);
}

char *s3_xml_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += (*p == '&' || *p == '<' || *p == '>' || *p == '"' || *p == '\'') ? 6 : 1;
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = s; *p; p++) {
		const char *r = NULL;
		switch (*p) {
		case '&': r = "&amp;"; break;
		case '<': r = "&lt;"; break;
		case '>': r = "&gt;"; break;
		case '"': r = "&quot;"; break;
		case '\'': r = "&apos;"; break;
		default: *o++ = *p; continue;
		}
		size_t rl = strlen(r);
		memcpy(o, r, rl);
		o += rl;
	}
	*o = '\0';
	return out;
}

int64_t s3_iso8601(const char *s)
{
	struct tm tm = {0};
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}
