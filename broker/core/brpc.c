/*
 * brpc.c — the broker's own RPC endpoint ".broker" (PROTOCOL.md §6, §7) and
 * its announcements on .broker/info and .broker/warn.
 *
 * RPC frames ride in MESSAGE data: 0x00 notification | 0x01 request
 * (u32 call_id, method \0 params) | 0x11 reply (u32 call_id, result) |
 * 0x12 error (u32 call_id, i16 code, message). call_id 0 wants no reply.
 * Params and results are MessagePack maps with named fields (msgpack-c).
 * msgpack-c's buffers use libc malloc, not the core's allocator hook: this
 * path is not the hot path and its output is bounded by the client count.
 */
#include "internal.h"

#include <msgpack.h>
#include <regex.h>
#include <string.h>

#define RPC_NOTIFICATION 0x00
#define RPC_REQUEST 0x01
#define RPC_REPLY 0x11
#define RPC_ERROR 0x12

enum {
	RPC_ERR_INVALID_REQUEST = -32600,
	RPC_ERR_METHOD = -32601,
	RPC_ERR_PARAMS = -32602,
	RPC_ERR_INTERNAL = -32603,
};

#define BROKER_AUTHOR "DaemonEye busrt-c"

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	pack_str(pk, k);
	if (v && *v)
		pack_str(pk, v);
	else
		msgpack_pack_nil(pk);
}

/* Sends a MESSAGE from .broker to c carrying sbuf's bytes. */
static void send_from_broker(struct bus_core *core, struct bus_conn *c,
                             const msgpack_sbuffer *sb)
{
	struct bus_msg *m = bus__msg_delivery(
	    &core->a, BUS_OP_MESSAGE, false, BUS_BROKER_NAME,
	    sizeof(BUS_BROKER_NAME) - 1, NULL, 0, sb->data, sb->size);
	if (!m)
		return;
	bus__deliver_broker(core, c, m);
	bus__msg_unref(&core->a, m);
}

static void rpc_header(msgpack_sbuffer *sb, uint8_t kind, uint32_t call_id)
{
	uint8_t h[5];
	h[0] = kind;
	bus__put_u32le(h + 1, call_id);
	msgpack_sbuffer_write(sb, (const char *)h, sizeof(h));
}

static void rpc_error(struct bus_core *core, struct bus_conn *c,
                      uint32_t call_id, int16_t code, const char *text)
{
	if (call_id == 0)
		return;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	rpc_header(&sb, RPC_ERROR, call_id);
	uint8_t cb[2] = {(uint8_t)((uint16_t)code & 0xFF),
	                 (uint8_t)((uint16_t)code >> 8)};
	msgpack_sbuffer_write(&sb, (const char *)cb, 2);
	msgpack_sbuffer_write(&sb, text, strlen(text));
	send_from_broker(core, c, &sb);
	msgpack_sbuffer_destroy(&sb);
}

#define COUNT_ONE(...) +1
static void pack_stats(struct bus_core *core, msgpack_packer *pk)
{
	struct bus_stats st;
	bus_core_stats(core, &st);
	const struct bus_limits *l = &core->cfg.limits;
	/* uptime, every counter, the limits */
	msgpack_pack_map(pk, 2 BUS_STATS_MAP(COUNT_ONE));
	pack_kv_u64(pk, "uptime", (core->now_ns - core->start_ns) / 1000000000u);
#define PACK_STAT(name, what) pack_kv_u64(pk, #name, st.name);
	BUS_STATS_MAP(PACK_STAT)
#undef PACK_STAT
	pack_str(pk, "limits");
	msgpack_pack_map(pk, 0 BUS_LIMITS_MAP(COUNT_ONE));
#define PACK_LIMIT(type, name, what) pack_kv_u64(pk, #name, l->name);
	BUS_LIMITS_MAP(PACK_LIMIT)
#undef PACK_LIMIT
}
#undef COUNT_ONE

static const char *kind_name(enum bus_conn_kind k)
{
	switch (k) {
	case BUS_KIND_TCP:
		return "tcp";
	case BUS_KIND_INTERNAL:
		return "internal";
	default:
		return "local_ipc";
	}
}

#define FILTER_BYTES_MAX 256

/* Parses optional {"filter": str|nil}. Returns 0, or -1 for bad params. */
static int parse_filter(const uint8_t *params, size_t len, char **filter)
{
	*filter = NULL;
	if (len == 0)
		return 0;
	if (bus__msgpack_check(params, len, 16) != len)
		return -1; /* malformed, too deep, or sizes that lie */
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	int rc = -1;
	if (msgpack_unpack_next(&u, (const char *)params, len, &off) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    off != len || u.data.type != MSGPACK_OBJECT_MAP)
		goto out;
	rc = 0;
	for (uint32_t i = 0; i < u.data.via.map.size && rc == 0; i++) {
		msgpack_object_kv *kv = &u.data.via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->key.via.str.size != 6 ||
		    memcmp(kv->key.via.str.ptr, "filter", 6) != 0)
			continue; /* unknown keys are ignored, as serde does */
		if (kv->val.type == MSGPACK_OBJECT_NIL)
			continue;
		/* a pattern is a name filter: long ones only cost broker CPU
		 * (regex matching time is not bounded otherwise) */
		if (kv->val.type != MSGPACK_OBJECT_STR ||
		    kv->val.via.str.size > FILTER_BYTES_MAX ||
		    memchr(kv->val.via.str.ptr, 0, kv->val.via.str.size)) {
			rc = -1;
			break;
		}
		free(*filter);
		*filter = strndup(kv->val.via.str.ptr, kv->val.via.str.size);
		if (!*filter)
			rc = -1;
	}
out:
	msgpack_unpacked_destroy(&u);
	if (rc) {
		free(*filter);
		*filter = NULL;
	}
	return rc;
}

static int pack_client_list(struct bus_core *core, msgpack_packer *pk,
                            const uint8_t *params, size_t len)
{
	char *filter;
	if (parse_filter(params, len, &filter) != 0)
		return RPC_ERR_PARAMS;
	regex_t re;
	if (filter && regcomp(&re, filter, REG_EXTENDED | REG_NOSUB) != 0) {
		free(filter);
		return RPC_ERR_PARAMS;
	}
	uint32_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			msgpack_pack_map(pk, 1);
			pack_str(pk, "clients");
			msgpack_pack_array(pk, n);
		}
		for (uint32_t i = 0; i < core->names_count; i++) {
			struct bus_conn *c = core->names[i];
			if (c->primary ||
			    (filter && regexec(&re, c->name, 0, NULL, 0) != 0))
				continue;
			if (pass == 0) {
				n++;
				continue;
			}
			msgpack_pack_map(pk, 10);
			pack_kv_str(pk, "name", c->name);
			pack_kv_str(pk, "kind", kind_name(c->kind));
			pack_kv_str(pk, "source", c->source);
			pack_kv_str(pk, "port", c->port);
			pack_kv_u64(pk, "r_frames", c->r_frames);
			pack_kv_u64(pk, "r_bytes", c->r_bytes);
			pack_kv_u64(pk, "w_frames", c->w_frames);
			pack_kv_u64(pk, "w_bytes", c->w_bytes);
			pack_kv_u64(pk, "queue", c->q_count);
			pack_kv_u64(pk, "instances", c->secondaries + 1u);
		}
	}
	if (filter)
		regfree(&re);
	free(filter);
	return 0;
}

static bool method_is(const char *m, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(m, name, len) == 0;
}

void bus__brpc_handle(struct bus_core *core, struct bus_conn *c,
                      const uint8_t *data, size_t len)
{
	if (len == 0 || data[0] == RPC_NOTIFICATION)
		return;
	if (data[0] != RPC_REQUEST || len < 5)
		return; /* replies and errors to .broker are ignored */
	uint32_t call_id = bus__get_u32le(data + 1);
	const uint8_t *p = data + 5, *z = memchr(p, 0, len - 5);
	if (!z) {
		rpc_error(core, c, call_id, RPC_ERR_INVALID_REQUEST,
		          "no method separator");
		return;
	}
	const char *method = (const char *)p;
	size_t mlen = (size_t)(z - p);
	const uint8_t *params = z + 1;
	size_t plen = len - 5 - mlen - 1;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	rpc_header(&sb, RPC_REPLY, call_id);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int err = 0;
	bool no_params = method_is(method, mlen, "test") ||
	                 method_is(method, mlen, "info") ||
	                 method_is(method, mlen, "stats");
	if (no_params && plen != 0) {
		err = RPC_ERR_PARAMS;
	} else if (method_is(method, mlen, "benchmark.test")) {
		msgpack_sbuffer_write(&sb, (const char *)params, plen);
	} else if (method_is(method, mlen, "test")) {
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "ok");
		msgpack_pack_true(&pk);
	} else if (method_is(method, mlen, "info")) {
		msgpack_pack_map(&pk, 2);
		pack_kv_str(&pk, "author", BROKER_AUTHOR);
		pack_kv_str(&pk, "version", BUS_VERSION);
	} else if (method_is(method, mlen, "stats")) {
		pack_stats(core, &pk);
	} else if (method_is(method, mlen, "client.list")) {
		err = pack_client_list(core, &pk, params, plen);
	} else {
		err = RPC_ERR_METHOD;
	}
	if (err)
		rpc_error(core, c, call_id, (int16_t)err,
		          err == RPC_ERR_METHOD ? "method not found"
		                                : "invalid params");
	else if (call_id != 0)
		send_from_broker(core, c, &sb);
	msgpack_sbuffer_destroy(&sb);
}

void bus__announce(struct bus_core *core, const char *topic,
                   const char *subject, const char *name)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, name ? 3 : 2);
	pack_kv_str(&pk, "s", subject);
	if (name)
		pack_kv_str(&pk, "d", name);
	pack_kv_u64(&pk, "t", bus__unix_ns(core));
	bus__route_publish_from_broker(core, topic, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}
