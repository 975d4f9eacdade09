/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c — JSON string output (json.h): our policy for bytes that are
 * not UTF-8, then jansson's encoder.
 */
#include "bus/json.h"
#include "../core/internal.h" /* bus__utf8_seq */

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
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

json_t *bus_json_u64(uint64_t v)
{
	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	char t[24];
	snprintf(t, sizeof(t), "%" PRIu64, v);
	return json_string(t);
}

json_t *bus_json_real(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	return json_real(v);
}

json_t *bus_json_hex(const void *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *b = p;
	char small[256], *t = small;
	if (!n)
		return json_string("");
	if (n > sizeof(small) / 2 && !(t = malloc(n * 2)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		t[2 * i] = d[b[i] >> 4];
		t[2 * i + 1] = d[b[i] & 15];
	}
	json_t *j = json_stringn(t, n * 2);
	if (t != small)
		free(t);
	return j;
}

int bus_json_set_any(json_t *o, json_t *key, json_t *v)
{
	int rc = -1;
	if (key && json_is_string(key)) { /* its length: a NUL inside kept */
		rc = json_object_setn_new(o, json_string_value(key),
		                          json_string_length(key), v);
	} else if (key) {
		char *kt = json_dumps(key, JSON_ENCODE_ANY);
		rc = kt ? json_object_set_new(o, kt, v) : -1;
		if (!kt)
			json_decref(v);
		free(kt);
	} else {
		json_decref(v);
	}
	json_decref(key);
	return rc;
}

int bus_json_dump(FILE *f, const json_t *j)
{
	if (!j)
		return -1;
	return json_dumpf(j, f, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

int bus_json_line(FILE *f, json_t *j)
{
	int rc = bus_json_dump(f, j);
	if (!rc && fputc('\n', f) == EOF)
		rc = -1;
	json_decref(j);
	return rc;
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
