/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame.c — the BUS/RT v1 frame codec (PROTOCOL.md §2, §3).
 *
 * Client -> broker: 9-byte header (u32 op_id, u8 flags = op | qos << 6,
 * u32 length) and length bytes of payload; nine zero bytes are a ping.
 * Broker -> client: ACK (0xFE, u32 op_id, u8 result) or a delivered frame
 * (u8 kind, u32 length of the rest, u8 realtime, sender \0 [topic \0] data).
 *
 * The decoder is "fill, then parse": it looks only at the bytes it is given,
 * never reads past them, and answers OK (with the bytes consumed),
 * NEED_MORE or ERROR. It validates the header before waiting for the
 * payload, so a hostile length costs nothing.
 */
#include "internal.h"

#include <string.h>

void bus__put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

uint32_t bus__get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

bool bus__op_valid(uint8_t op)
{
	switch (op) {
	case BUS_OP_PUBLISH:
	case BUS_OP_SUBSCRIBE:
	case BUS_OP_UNSUBSCRIBE:
	case BUS_OP_EXCLUDE:
	case BUS_OP_UNEXCLUDE:
	case BUS_OP_PUBLISH_FOR:
	case BUS_OP_MESSAGE:
	case BUS_OP_BROADCAST:
		return true;
	default:
		return false;
	}
}

enum bus_decode bus__frame_decode(const uint8_t *buf, size_t len,
                                  uint32_t payload_bytes_max,
                                  struct bus_frame *out, const char **reason)
{
	if (len < BUS_CLIENT_HDR_BYTES)
		return BUS_DECODE_NEED_MORE;
	uint8_t flags = buf[4];
	out->op_id = bus__get_u32le(buf);
	out->op = flags & 0x3F;
	out->qos = flags >> 6;
	out->len = bus__get_u32le(buf + 5);
	if (flags == 0) {
		if (out->len != 0) {
			*reason = "ping with a payload";
			return BUS_DECODE_ERROR;
		}
		out->op = BUS_OP_NOP;
		out->payload = buf + BUS_CLIENT_HDR_BYTES;
		out->consumed = BUS_CLIENT_HDR_BYTES;
		return BUS_DECODE_OK;
	}
	if (!bus__op_valid(out->op)) {
		*reason = "unknown operation";
		return BUS_DECODE_ERROR;
	}
	if (out->len > payload_bytes_max) {
		*reason = "payload over the size limit";
		return BUS_DECODE_ERROR;
	}
	if (len - BUS_CLIENT_HDR_BYTES < out->len)
		return BUS_DECODE_NEED_MORE;
	out->payload = buf + BUS_CLIENT_HDR_BYTES;
	out->consumed = BUS_CLIENT_HDR_BYTES + (size_t)out->len;
	BUS_ASSERT(out->consumed <= len);
	return BUS_DECODE_OK;
}

struct bus_msg *bus__msg_new(const struct bus_allocator *a, size_t len)
{
	if (len > UINT32_MAX)
		return NULL;
	struct bus_msg *m = bus__alloc(a, sizeof(*m) + len);
	if (!m)
		return NULL;
	m->refs = 1;
	m->len = (uint32_t)len;
	m->queues = 0;
	m->mark = 0;
	return m;
}

void bus__msg_unref(const struct bus_allocator *a, struct bus_msg *m)
{
	BUS_ASSERT(m->refs > 0);
	if (--m->refs == 0)
		bus__free(a, m);
}

struct bus_msg *bus__msg_delivery(const struct bus_allocator *a, uint8_t kind,
                                  bool realtime, const char *sender,
                                  size_t sender_len, const char *topic,
                                  size_t topic_len, const void *data,
                                  size_t data_len)
{
	size_t rest = sender_len + 1 + data_len + (topic ? topic_len + 1 : 0);
	if (rest > UINT32_MAX - BUS_SERVER_HDR_BYTES)
		return NULL;
	struct bus_msg *m = bus__msg_new(a, BUS_SERVER_HDR_BYTES + rest);
	if (!m)
		return NULL;
	uint8_t *p = m->data;
	p[0] = kind;
	bus__put_u32le(p + 1, (uint32_t)rest);
	p[5] = realtime ? 1 : 0;
	p += BUS_SERVER_HDR_BYTES;
	memcpy(p, sender, sender_len);
	p += sender_len;
	*p++ = 0;
	if (topic) {
		memcpy(p, topic, topic_len);
		p += topic_len;
		*p++ = 0;
	}
	if (data_len)
		memcpy(p, data, data_len);
	BUS_ASSERT(p + data_len == m->data + m->len);
	return m;
}

struct bus_msg *bus__msg_ack(const struct bus_allocator *a, uint32_t op_id,
                             uint8_t result)
{
	struct bus_msg *m = bus__msg_new(a, BUS_ACK_BYTES);
	if (!m)
		return NULL;
	m->data[0] = BUS_OP_ACK;
	bus__put_u32le(m->data + 1, op_id);
	m->data[5] = result;
	return m;
}
