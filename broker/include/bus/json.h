/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h — JSON as the tools write it (busrt-cli --json, the protobuf
 * printer, the bridge's --dump, procmond's counters): whole jansson
 * objects, with our rules for what JSON cannot say directly — bytes that
 * are not UTF-8, integers past jansson's int64, NaN and the infinities —
 * and one dump format. (The audit log and the simulator's reports are
 * jansson objects too.)
 */
#ifndef BUS_JSON_H
#define BUS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* s as a JSON string (a new jansson reference; NULL out of memory):
 * jansson escapes quotes, backslashes and control characters, and each
 * byte that is not part of valid UTF-8 becomes the text \xNN first, so
 * the output is valid UTF-8 whatever s holds. */
struct json_t;
struct json_t *bus_json_string(const char *s, size_t n);
/* v as a JSON integer; above INT64_MAX (past jansson's json_int_t) its
 * exact decimal text as a string, which every JSON reader can hold. */
struct json_t *bus_json_u64(uint64_t v);
/* v as a JSON number; NaN and the infinities, which JSON has not, as the
 * strings "NaN", "Infinity" and "-Infinity" (proto3's JSON mapping). */
struct json_t *bus_json_real(double v);
/* n bytes as one string of lowercase hex digits. */
struct json_t *bus_json_hex(const void *p, size_t n);
/* o[key] = v for a map whose keys may be of any type (MessagePack, a
 * protobuf map): a string key as itself, another as its JSON text; a key
 * given twice keeps the last value. Takes both references, whatever
 * happens; 0, or -1 (key or v NULL, out of memory). */
int bus_json_set_any(struct json_t *o, struct json_t *key, struct json_t *v);
/* j written to f in the tools' one format: one line, ", " and ": " between
 * members, insertion order, reals to 17 digits (exact). 0, or -1 when j is
 * NULL (out of memory while building it) or the write failed. */
int bus_json_dump(FILE *f, const struct json_t *j);
/* bus_json_dump, a newline, and j released. */
int bus_json_line(FILE *f, struct json_t *j);

/* A peer's string (a client name, a topic) made safe for a terminal or a
 * log line: control characters (C0, DEL, C1), backslashes and bytes that
 * are not UTF-8 become \xNN (\\ for a backslash), so no ESC sequence or
 * newline reaches the output. Writes at most cap bytes with the NUL (cut
 * short with "..."); returns out. */
char *bus_text_escape(char *out, size_t cap, const char *s, size_t n);

/* Now, UTC to the microsecond, as the tools print it:
 * "2026-12-02T05:25:48.364872Z" (cap >= 32). Returns out. */
char *bus_utc_now(char *out, size_t cap);

#endif
