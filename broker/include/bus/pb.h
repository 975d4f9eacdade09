/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pb.h — protobuf-c decoding for the DaemonEye schemas (proto/), bounded:
 * every unpack goes through an allocator with a byte budget, so a small
 * hostile message cannot make the decoder allocate without limit.
 */
#ifndef BUS_PB_H
#define BUS_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemoneye.pb-c.h" /* generated into the build tree */

#define BUS_PB_BUDGET_DEFAULT (1u << 20)

/* Unpacks n bytes as a message of descriptor d. NULL when the bytes are not
 * a valid encoding (truncated varint, wrong wire type, bad length, invalid
 * UTF-8 in a string) or when decoding would allocate more than budget
 * bytes. Unknown fields are kept and skipped (a newer schema's). */
ProtobufCMessage *bus_pb_unpack(const ProtobufCMessageDescriptor *d,
                                const uint8_t *p, size_t n, size_t budget);
void bus_pb_free(ProtobufCMessage *m);

/* Packs m into a new malloc'd buffer; NULL on out of memory. */
uint8_t *bus_pb_pack(const ProtobufCMessage *m, size_t *len);

/* ---- for people (pbtext.c): descriptor-driven, any message ---------------- */
/* m as JSON (built with jansson): every field by its .proto name (oneofs:
 * the set one), enums by name, maps as objects, bytes as hex, 64-bit
 * integers as numbers (a uint64 above INT64_MAX as its decimal string),
 * NaN and the infinities as strings; json.h's rules for text. A new
 * reference, NULL out of memory. */
struct json_t;
struct json_t *bus_pb_json_value(const ProtobufCMessage *m);
/* The same, written to f on one line (bus_json_dump's format). 0, or -1
 * out of memory or when the write failed. */
int bus_pb_json(FILE *f, const ProtobufCMessage *m);
/* A new empty message of d (free with bus_pb_free); NULL on ENOMEM. */
ProtobufCMessage *bus_pb_new(const ProtobufCMessageDescriptor *d);
/* Sets field key ("a" or "sub.a") from text: numbers, true/false, enum
 * value names, strings; a repeated string field grows by one. 0, or
 * BUS_EINVAL with err saying which field and why. */
int bus_pb_set(ProtobufCMessage *m, const char *key, const char *value,
               char *err, size_t errlen);

#endif
