/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c — JSON string output (json.h): our policy for bytes that are
 * not UTF-8, then jansson's encoder.
 */
#include "bus/json.h"
#include "../core/internal.h" /* bus__utf8_seq */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

json_t *bus_json_string(const char *s, size_t n)
{
	/* our policy first: a byte that is not part of UTF-8 becomes the
	 * text \xNN, so the output stays valid UTF-8 whatever a peer sent;
	 * the quoting and escaping are jansson's */
	const unsigned char *p = (const unsigned char *)s;
	if (!n)
		return json_string("");
	char small[512], *buf = small;
	size_t cap = n * 4 + 1;
	if (cap > sizeof(small) && !(buf = malloc(cap)))
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char ch = p[i];
		size_t k = ch < 0x80 ? 1 : bus__utf8_seq(p + i, n - i);
		if (k == 0) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
			i++;
			continue;
		}
		memcpy(buf + o, p + i, k);
		o += k;
		i += k;
	}
	json_t *j = json_stringn(buf, o);
	if (buf != small)
		free(buf);
	return j;
}

void bus_json_str(FILE *f, const char *s, size_t n)
{
	json_t *j = bus_json_string(s, n);
	if (j)
		json_dumpf(j, f, JSON_ENCODE_ANY);
	else
		fputs("\"\"", f); /* out of memory */
	json_decref(j);
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
