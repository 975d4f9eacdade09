/*
 * json.h — the one JSON string writer of the tools (busrt-cli --json, the
 * agent's audit log): bytes as a quoted JSON string, control characters
 * escaped.
 */
#ifndef BUS_JSON_H
#define BUS_JSON_H

#include <stddef.h>
#include <stdio.h>

void bus_json_str(FILE *f, const char *s, size_t n);

#endif
