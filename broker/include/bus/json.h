/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h — the one JSON string writer of the tools (busrt-cli --json, the
 * protobuf printer): bytes as a quoted JSON string, written by jansson
 * after our rule for bytes that are not UTF-8. (The audit log and the
 * simulator's reports are whole jansson objects.)
 */
#ifndef BUS_JSON_H
#define BUS_JSON_H

#include <stddef.h>
#include <stdio.h>

/* s as a JSON string: quotes, backslashes and control characters
 * escaped, and each byte that is not part of valid UTF-8 written as the
 * text \xNN, so the output is valid UTF-8 whatever s holds. */
void bus_json_str(FILE *f, const char *s, size_t n);
/* The same string as a jansson value (a new reference; NULL out of
 * memory), for whole objects built with jansson. */
struct json_t;
struct json_t *bus_json_string(const char *s, size_t n);

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
