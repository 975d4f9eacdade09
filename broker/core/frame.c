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

/* ---- shared frames: small ones come from per-size free lists ----------
 * A delivery is one allocation per published frame; on the 1->1 path the
 * allocator's malloc and free were a sixth of the broker's instructions.
 * A frame block of up to MSG_POOL_BYTES (header included), rounded up to
 * 16 bytes as malloc rounds it, is kept when released on the core's list
 * for its size, up to MSG_POOL_BLOCKS in all (at most 512 KiB), and
 * taken again by the next frame of that size; bus_core_free returns them.
 * Under ASan a kept block is poisoned, so a use after its release is
 * still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define MSG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSG_ASAN 1
#endif
#endif
#ifdef MSG_ASAN
#include <sanitizer/asan_interface.h>
#define MSG_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define MSG_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define MSG_POISON(p, n) ((void)(p), (void)(n))
#define MSG_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#define MSG_POOL_BYTES (16u * BUS_MSG_CLASSES)
#define MSG_POOL_BLOCKS 1024u

/* The class of a block of size bytes (BUS_MSG_CLASSES: not kept), and
 * the bytes a block of class k has. */
static unsigned msg_class(size_t size)
{
	return size <= MSG_POOL_BYTES ? (unsigned)((size - 1) / 16)
	                              : BUS_MSG_CLASSES;
}

static size_t class_bytes(unsigned k) { return 16 * ((size_t)k + 1); }

struct bus_msg *bus__msg_new(struct bus_core *core, size_t len)
{
	if (len > UINT32_MAX - sizeof(struct bus_msg))
		return NULL;
	size_t size = sizeof(struct bus_msg) + len;
	unsigned k = msg_class(size);
	struct bus_msg *m;
	if (k < BUS_MSG_CLASSES && core->msg_pool[k]) {
		m = core->msg_pool[k];
		MSG_UNPOISON(m, class_bytes(k));
		memcpy(&core->msg_pool[k], m->data, sizeof(m));
		core->msg_pooled--;
	} else {
		m = bus__alloc(&core->a,
		               k < BUS_MSG_CLASSES ? class_bytes(k) : size);
		if (!m)
			return NULL;
	}
	m->refs = 1;
	m->len = (uint32_t)len;
	m->queues = 0;
	m->mark = 0;
	return m;
}

void bus__msg_unref(struct bus_core *core, struct bus_msg *m)
{
	BUS_ASSERT(m->refs > 0);
	if (--m->refs)
		return;
	unsigned k = msg_class(sizeof(*m) + m->len);
	if (k == BUS_MSG_CLASSES || core->msg_pooled == MSG_POOL_BLOCKS) {
		bus__free(&core->a, m);
		return;
	}
	memcpy(m->data, &core->msg_pool[k], sizeof(m));
	core->msg_pool[k] = m;
	core->msg_pooled++;
	MSG_POISON(m, class_bytes(k));
}

void bus__msg_pool_free(struct bus_core *core)
{
	for (unsigned k = 0; k < BUS_MSG_CLASSES; k++)
		while (core->msg_pool[k]) {
			struct bus_msg *m = core->msg_pool[k];
			MSG_UNPOISON(m, class_bytes(k));
			memcpy(&core->msg_pool[k], m->data, sizeof(m));
			bus__free(&core->a, m);
		}
	core->msg_pooled = 0;
}

struct bus_msg *bus__msg_delivery(struct bus_core *core, uint8_t kind,
                                  bool realtime, const char *sender,
                                  size_t sender_len, const char *topic,
                                  size_t topic_len, const void *data,
                                  size_t data_len)
{
	size_t rest = sender_len + 1 + data_len + (topic ? topic_len + 1 : 0);
	if (rest > UINT32_MAX - BUS_SERVER_HDR_BYTES)
		return NULL;
	struct bus_msg *m = bus__msg_new(core, BUS_SERVER_HDR_BYTES + rest);
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

struct bus_msg *bus__msg_ack(struct bus_core *core, uint32_t op_id,
                             uint8_t result)
{
	struct bus_msg *m = bus__msg_new(core, BUS_ACK_BYTES);
	if (!m)
		return NULL;
	m->data[0] = BUS_OP_ACK;
	bus__put_u32le(m->data + 1, op_id);
	m->data[5] = result;
	return m;
}
