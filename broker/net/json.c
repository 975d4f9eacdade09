/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c — JSON string output (json.h).
 */
#include "bus/json.h"
#include "../core/internal.h" /* bus__utf8_seq */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void bus_json_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char ch = p[i];
		size_t k = ch < 0x80 ? 1 : bus__utf8_seq(p + i, n - i);
		if (k == 0) { /* not UTF-8: the byte as text, so the line stays
		                 valid UTF-8 whatever a peer sent */
			fprintf(f, "\\\\x%02x", ch);
			i++;
			continue;
		}
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fwrite(p + i, 1, k, f);
		i += k;
	}
	fputc('"', f);
}

char *bus_text_escape(char *out, size_t cap, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	if (cap == 0)
		return out;
	for (size_t i = 0; i < n;) {
		size_t k = bus__utf8_seq(p + i, n - i);
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

char *bus_utc_now(char *out, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char t[32];
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%06ldZ", t, ts.tv_nsec / 1000);
	return out;
}
