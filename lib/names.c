/* names.c — the Distribution spec's grammar of repository names, tags and
 * references. See include/regfs/names.h. */
#include <regfs/names.h>
#include <regfs/digest.h>

#include <errno.h>
#include <string.h>

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* ; returns its length or 0. */
static size_t component_len(const char *s)
{
	size_t i = 0;
	if (!is_lower_alnum(s[i]))
		return 0;
	while (is_lower_alnum(s[i]))
		i++;
	for (;;) {
		size_t j = i;
		if (s[j] == '.') {
			j++;
		} else if (s[j] == '_') {
			j++;
			if (s[j] == '_')
				j++;
		} else if (s[j] == '-') {
			while (s[j] == '-')
				j++;
		} else {
			return i;
		}
		if (!is_lower_alnum(s[j]))
			return 0; /* a separator must be followed by alnum */
		while (is_lower_alnum(s[j]))
			j++;
		i = j;
	}
}

bool regfs_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > REGFS_NAME_MAX)
		return false;
	const char *p = name;
	for (;;) {
		size_t n = component_len(p);
		if (n == 0)
			return false;
		p += n;
		if (*p == '\0')
			return true;
		if (*p != '/')
			return false;
		p++;
	}
}

bool regfs_tag_valid(const char *tag)
{
	if (!tag)
		return false;
	size_t n = strlen(tag);
	if (n == 0 || n > REGFS_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = tag[i];
		bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		if (i == 0 ? !word : !(word || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int regfs_reference_kind(const char *ref, struct regfs_err *err)
{
	if (ref && strchr(ref, ':'))
		return regfs_digest_parse(ref, NULL, NULL, err) == 0 ? 1 : -EINVAL;
	if (regfs_tag_valid(ref))
		return 0;
	return regfs_errf(err, -EINVAL, "invalid reference \"%.140s\": expected a tag "
			  "([A-Za-z0-9_][A-Za-z0-9._-]{0,127}) or a digest (sha256:<hex>)", ref ? ref : "");
}
