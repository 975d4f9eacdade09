/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pb.c — bounded protobuf-c decoding (pb.h).
 */
#include "bus/pb.h"
#include "../core/internal.h" /* bus__utf8_valid */

#include <stdlib.h>
#include <string.h>

struct budget {
	size_t used, max;
};

static void *b_alloc(void *data, size_t size)
{
	struct budget *b = data;
	if (size > b->max - b->used)
		return NULL; /* protobuf-c fails the unpack cleanly */
	b->used += size;
	return malloc(size);
}

static void b_free(void *data, void *p)
{
	(void)data;
	free(p);
}

/* What protobuf-c 1.4 lets through and should not: strings that are not
 * UTF-8 (proto3 requires it) and unknown fields numbered 0. */
static bool strings_valid(const ProtobufCMessage *m, unsigned depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > 32)
		return false;
	/* protobuf-c keeps an unknown field numbered 0 when its tag is
	 * spelled overlong, then refuses its own packing of it: refuse it
	 * here (field numbers start at 1) */
	for (size_t i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return false;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		size_t count = 1;
		const void *const *items = (const void *const *)(base + f->offset);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)(base + f->quantifier_offset);
			items = *(const void *const *const *)(base + f->offset);
		}
		for (size_t k = 0; k < count; k++) {
			const void *v = items[k];
			if (!v)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING
			            ? !bus__utf8_valid(v, strlen(v))
			            : !strings_valid(v, depth + 1))
				return false;
		}
	}
	return true;
}

ProtobufCMessage *bus_pb_unpack(const ProtobufCMessageDescriptor *d,
                                const uint8_t *p, size_t n, size_t budget)
{
	struct budget b = {0, budget};
	ProtobufCAllocator a = {b_alloc, b_free, &b};
	/* the allocator lives on this stack frame only while unpacking:
	 * freeing later goes through plain free() (bus_pb_free), which is
	 * what b_free does too */
	ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, n, p);
	if (m && !strings_valid(m, 0)) {
		bus_pb_free(m);
		return NULL;
	}
	return m;
}

void bus_pb_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL); /* system allocator */
}

uint8_t *bus_pb_pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf)
		protobuf_c_message_pack(m, buf);
	return buf;
}
