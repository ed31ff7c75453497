/*
 * UTF-8 validation, shared by the safetensors reader (names must be valid
 * UTF-8 JSON) and the SVG writer (labels must be valid XML text), and the
 * escaping of strings read from files before they go into a message.
 */
#include "graph/internal.h"

#include <string.h>

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if malformed. */
size_t nb__utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool nb__utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = nb__utf8_seq(u + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* C0 controls, DEL and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F):
 * what a terminal may take as the start of an escape sequence */
static bool is_control(const unsigned char *s, size_t len)
{
	return s[0] < 0x20 || s[0] == 0x7f || (len == 2 && s[0] == 0xc2 && s[1] < 0xa0);
}

const char *nb__shown(const char *s, char *buf, size_t n)
{
	if (!n)
		return "";
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, k = 0;
	while (i < len) {
		size_t q = nb__utf8_seq(u + i, len - i);
		bool bad = !q || is_control(u + i, q);
		size_t w = bad ? 1 : q;
		if (k + w >= n)
			break;
		if (bad)
			buf[k++] = '?';
		else
			memcpy(buf + k, u + i, q), k += q;
		i += q ? q : 1;
	}
	buf[k] = 0;
	if (i < len && n > 4) {
		size_t cut = k < n - 4 ? k : n - 4;
		while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80)
			cut--; /* not inside a sequence */
		memcpy(buf + cut, "...", 4);
	}
	return buf;
}

void nb__markup_text(FILE *fp, const char *s, size_t n, const char *bad, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	const bool keep = flags & NB_MARKUP_KEEP_SPACE;
	for (size_t i = 0; i < n;) {
		size_t k = nb__utf8_seq(u + i, n - i);
		unsigned c = u[i];
		if (k == 0 || (c < 0x20 && !(keep && (c == '\t' || c == '\n' || c == '\r'))))
			fputs(bad, fp);
		else if (c == '&')
			fputs("&amp;", fp);
		else if (c == '<')
			fputs("&lt;", fp);
		else if (c == '>')
			fputs("&gt;", fp);
		else if (c == '"')
			fputs("&quot;", fp);
		else if (c == '\'' && (flags & NB_MARKUP_APOS))
			fputs("&apos;", fp);
		else
			fwrite(u + i, 1, k, fp);
		i += k ? k : 1;
	}
}
