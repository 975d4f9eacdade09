/*
 * json.c — JSON string output (json.h).
 */
#include "bus/json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

void bus_json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is not one, nor a
 * character worth printing (overlong forms, surrogates, past U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
	                   : (c >> 3) == 30 ? 4 : 0;
	if (!k || k > n)
		return 0;
	uint32_t cp = k == 1 ? c : c & (0x7Fu >> k);
	for (size_t j = 1; j < k; j++) {
		if ((p[j] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[j] & 0x3F);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return k;
}

char *bus_text_escape(char *out, size_t cap, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	if (cap == 0)
		return out;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		bool control = k == 1 ? p[i] < 0x20 || p[i] == 0x7f
		                      : k == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0;
		char esc[16];
		size_t w;
		if (k == 1 && p[i] == '\\') {
			memcpy(esc, "\\\\", 2);
			w = 2;
		} else if (!k || control) {
			w = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			k = 1; /* C1: its lead byte escaped, the next one too */
		} else {
			memcpy(esc, p + i, k);
			w = k;
		}
		if (o + w + 4 > cap) { /* keep room for "..." and the NUL */
			if (o + 4 <= cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, esc, w);
		o += w;
		i += k;
	}
	out[o < cap ? o : cap - 1] = '\0';
	return out;
}
