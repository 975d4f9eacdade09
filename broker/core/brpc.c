/* SPDX-License-Identifier: Apache-2.0 */
/*
 * brpc.c — the broker's own RPC endpoint ".broker" (PROTOCOL.md §6, §7) and
 * its announcements on .broker/info and .broker/warn.
 *
 * Its periodic statistics go out on control/broker/stats, diagnostics on
 * control/broker/diagnostics when asked for.
 *
 * RPC frames ride in MESSAGE data: 0x00 notification | 0x01 request
 * (u32 call_id, method \0 params) | 0x11 reply (u32 call_id, result) |
 * 0x12 error (u32 call_id, i16 code, message). call_id 0 wants no reply.
 * Params and results are MessagePack maps with named fields (msgpack-c).
 * msgpack-c's buffers use libc malloc, not the core's allocator hook: this
 * path is not the hot path and its output is bounded by the client count.
 * client.list's filter is a PCRE2 pattern compiled and matched under
 * budgets (memory, match steps, backtracking depth), never glibc's regcomp,
 * whose cost a 26-byte pattern can drive past a gigabyte.
 */
#include "internal.h"

#include <msgpack.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
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
	struct bus_msg *m = bus__msg_delivery(core, BUS_OP_MESSAGE, false, BUS_BROKER_NAME,
	    sizeof(BUS_BROKER_NAME) - 1, NULL, 0, sb->data, sb->size);
	if (!m)
		return;
	bus__deliver_broker(core, c, m);
	bus__msg_unref(core, m);
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

/* ---- topic statistics -------------------------------------------------- */
static void pack_row(msgpack_packer *pk, const struct bus_tstat_row *r)
{
	msgpack_pack_map(pk, 6 + !!r->key);
	if (r->key)
		pack_kv_str(pk, "topic", r->key);
	pack_kv_u64(pk, "frames_in", r->frames_in);
	pack_kv_u64(pk, "bytes_in", r->bytes_in);
	pack_kv_u64(pk, "frames_out", r->frames_out);
	pack_kv_u64(pk, "bytes_out", r->bytes_out);
	pack_kv_u64(pk, "drops", r->drops);
	pack_kv_u64(pk, "subscribers", r->subscribers);
}

/* {depth, rows_max, topics: [row...] (first publish first), other: row} */
static void pack_topic_stats(struct bus_core *core, msgpack_packer *pk)
{
	const struct bus_tstats *t = &core->ts;
	msgpack_pack_map(pk, 4);
	pack_kv_u64(pk, "depth", core->cfg.topic_stats_depth);
	pack_kv_u64(pk, "rows_max", t->max);
	pack_str(pk, "topics");
	msgpack_pack_array(pk, t->n);
	for (uint32_t i = 0; i < t->n; i++)
		pack_row(pk, &t->rows[i]);
	pack_str(pk, "other");
	pack_row(pk, &t->other);
}

#define COUNT_ONE(...) +1
/* The stats map (.broker stats); with_topics: and the topic statistics
 * (control/broker/stats). */
static void pack_stats(struct bus_core *core, msgpack_packer *pk,
                       bool with_topics)
{
	struct bus_stats st;
	bus_core_stats(core, &st);
	const struct bus_limits *l = &core->cfg.limits;
	bool mem = core->ops.memory != NULL;
	/* uptime, every counter, the limits; the heap in use when the
	 * host knows it */
	msgpack_pack_map(pk, 2 + mem + with_topics BUS_STATS_MAP(COUNT_ONE));
	pack_kv_u64(pk, "uptime", (core->now_ns - core->start_ns) / 1000000000u);
	if (mem)
		pack_kv_u64(pk, "memory_bytes", core->ops.memory(core->host));
	if (with_topics) {
		pack_str(pk, "topic_stats");
		pack_topic_stats(core, pk);
	}
#define PACK_STAT(name, kind, what) pack_kv_u64(pk, #name, st.name);
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

/* ---- a bounded regex for client.list's filter ---------------------------
 * Everything PCRE2 allocates for one call (the compiled pattern, the match
 * data, the backtracking frames) comes from a budget; a pattern or a match
 * past a budget is the caller's error (-32602), and the loop goes on. */
#define FILTER_MEM_BYTES_MAX (256u << 10)
#define FILTER_MATCH_STEPS_MAX 100000u /* per name: a 256-byte name needs
                                          a few hundred with a sane pattern */
#define FILTER_DEPTH_MAX 1000u
#define FILTER_PARENS_MAX 32u

struct filter_mem {
	size_t used;
};

static void *filter_malloc(size_t n, void *data)
{
	struct filter_mem *fm = data;
	if (n > FILTER_MEM_BYTES_MAX - fm->used)
		return NULL;
	size_t *p = malloc(sizeof(size_t) + n);
	if (!p)
		return NULL;
	*p = n;
	fm->used += n;
	return p + 1;
}

static void filter_free(void *ptr, void *data)
{
	if (!ptr)
		return;
	struct filter_mem *fm = data;
	size_t *p = (size_t *)ptr - 1;
	fm->used -= *p;
	free(p);
}

struct filter {
	struct filter_mem mem;
	pcre2_general_context *gc;
	pcre2_compile_context *cc;
	pcre2_match_context *mc;
	pcre2_code *code;
	pcre2_match_data *md;
};

static void filter_end(struct filter *f)
{
	pcre2_match_data_free(f->md);
	pcre2_code_free(f->code);
	pcre2_match_context_free(f->mc);
	pcre2_compile_context_free(f->cc);
	pcre2_general_context_free(f->gc);
}

/* 0, or -1: the pattern does not compile within the budgets. */
static int filter_compile(struct filter *f, const char *pattern)
{
	memset(f, 0, sizeof(*f));
	f->gc = pcre2_general_context_create(filter_malloc, filter_free,
	                                     &f->mem);
	f->cc = f->gc ? pcre2_compile_context_create(f->gc) : NULL;
	f->mc = f->gc ? pcre2_match_context_create(f->gc) : NULL;
	if (!f->cc || !f->mc)
		return -1;
	pcre2_set_parens_nest_limit(f->cc, FILTER_PARENS_MAX);
	pcre2_set_max_pattern_length(f->cc, FILTER_BYTES_MAX);
	pcre2_set_match_limit(f->mc, FILTER_MATCH_STEPS_MAX);
	pcre2_set_depth_limit(f->mc, FILTER_DEPTH_MAX);
	pcre2_set_heap_limit(f->mc, FILTER_MEM_BYTES_MAX / 1024);
	int err;
	PCRE2_SIZE off;
	/* names are valid UTF-8 (the handshake checks): the pattern is UTF */
	f->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	                        PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &err,
	                        &off, f->cc);
	f->md = f->code ? pcre2_match_data_create_from_pattern(f->code, f->gc)
	                : NULL;
	return f->md ? 0 : -1;
}

/* 1 match, 0 no match, -1 past a budget. */
static int filter_match(struct filter *f, const char *name, size_t len)
{
	int rc = pcre2_match(f->code, (PCRE2_SPTR)name, len, 0,
	                     PCRE2_NO_UTF_CHECK, f->md, f->mc);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

static int pack_client_list(struct bus_core *core, msgpack_packer *pk,
                            const uint8_t *params, size_t len)
{
	char *pattern;
	if (parse_filter(params, len, &pattern) != 0)
		return RPC_ERR_PARAMS;
	struct filter f;
	bool filtered = pattern != NULL;
	int rc = filtered ? filter_compile(&f, pattern) : 0;
	free(pattern);
	/* matched once, before anything is packed: a pattern past its
	 * budget on any name is refused as a whole */
	uint32_t n = 0;
	for (uint32_t i = 0; i < core->names_count && rc == 0; i++) {
		struct bus_conn *c = core->names[i];
		c->listed = false;
		if (c->primary)
			continue;
		int m = filtered ? filter_match(&f, c->name, c->name_len) : 1;
		if (m < 0)
			rc = -1;
		c->listed = m == 1;
		n += m == 1;
	}
	if (filtered)
		filter_end(&f);
	if (rc != 0)
		return RPC_ERR_PARAMS;
	msgpack_pack_map(pk, 1);
	pack_str(pk, "clients");
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < core->names_count; i++) {
		struct bus_conn *c = core->names[i];
		if (!c->listed)
			continue;
		bool cred = c->ident.cred;
		msgpack_pack_map(pk, 10 + (cred ? 3 : 0) + !!c->ident.cn[0] +
		                         !!c->rule);
		pack_kv_str(pk, "name", c->name);
		if (cred) {
			pack_kv_u64(pk, "uid", c->ident.uid);
			pack_kv_u64(pk, "gid", c->ident.gid);
			pack_kv_u64(pk, "pid", c->ident.pid);
		}
		if (c->ident.cn[0])
			pack_kv_str(pk, "cn", c->ident.cn);
		if (c->rule)
			pack_kv_str(pk, "rule", c->rule->label);
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
	return 0;
}

/* ---- diagnostics ------------------------------------------------------- */
#define DIAG_TOP 5

/* How long c's queue has waited for a write to complete (0: empty). */
static uint64_t stalled_ns(const struct bus_core *core,
                           const struct bus_conn *c)
{
	return c->q_count && core->now_ns > c->progress_ns
	           ? core->now_ns - c->progress_ns
	           : 0;
}

/* Keeps the DIAG_TOP connections of the largest key, ties by serial. */
static void top_insert(struct bus_conn **top, uint64_t *keys, uint32_t *n,
                       struct bus_conn *c, uint64_t key)
{
	if (!key)
		return;
	uint32_t i = *n < DIAG_TOP ? (*n)++ : DIAG_TOP;
	while (i > 0 && keys[i - 1] < key) {
		if (i < DIAG_TOP) {
			top[i] = top[i - 1];
			keys[i] = keys[i - 1];
		}
		i--;
	}
	if (i < DIAG_TOP) {
		top[i] = c;
		keys[i] = key;
	}
}

static void pack_queue_row(const struct bus_core *core, msgpack_packer *pk,
                           const struct bus_conn *c)
{
	msgpack_pack_map(pk, 4);
	pack_kv_str(pk, "name", c->name);
	pack_kv_u64(pk, "queued_frames", c->q_count);
	pack_kv_u64(pk, "queued_bytes", c->q_bytes);
	pack_kv_u64(pk, "stalled_ms", stalled_ns(core, c) / 1000000u);
}

/* {slowest: the receivers whose queues have waited longest, largest: the
 * largest queues (DIAG_TOP each), paused: publishers not read (waiting
 * for a receiver, or for the input budget), denials: the last
 * BUS_DENIALS, oldest first} */
static void pack_diagnostics(struct bus_core *core, msgpack_packer *pk)
{
	struct bus_conn *slow[DIAG_TOP], *large[DIAG_TOP];
	uint64_t ks[DIAG_TOP], kl[DIAG_TOP];
	uint32_t ns = 0, nl = 0, np = 0;
	for (struct bus_conn *c = core->first; c; c = c->next) {
		top_insert(slow, ks, &ns, c, stalled_ns(core, c));
		top_insert(large, kl, &nl, c, c->q_bytes);
		np += c->wait_on || c->input_paused;
	}
	msgpack_pack_map(pk, 4);
	pack_str(pk, "slowest");
	msgpack_pack_array(pk, ns);
	for (uint32_t i = 0; i < ns; i++)
		pack_queue_row(core, pk, slow[i]);
	pack_str(pk, "largest");
	msgpack_pack_array(pk, nl);
	for (uint32_t i = 0; i < nl; i++)
		pack_queue_row(core, pk, large[i]);
	pack_str(pk, "paused");
	msgpack_pack_array(pk, np);
	for (struct bus_conn *c = core->first; c; c = c->next) {
		if (!c->wait_on && !c->input_paused)
			continue;
		msgpack_pack_map(pk, 3);
		pack_kv_str(pk, "name", c->name);
		pack_kv_str(pk, "waits_for", c->wait_on ? c->wait_on->name : NULL);
		pack_str(pk, "input_paused");
		if (c->input_paused)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
	}
	uint32_t nd = core->denials_n < BUS_DENIALS ? core->denials_n
	                                             : BUS_DENIALS;
	pack_str(pk, "denials");
	msgpack_pack_array(pk, nd);
	for (uint32_t i = core->denials_n - nd; i < core->denials_n; i++) {
		const struct bus_denial *d = &core->denials[i % BUS_DENIALS];
		msgpack_pack_map(pk, 4);
		pack_kv_u64(pk, "t", d->t_ns);
		pack_kv_str(pk, "what", d->what);
		pack_kv_str(pk, "who", d->who);
		pack_kv_str(pk, "object", d->obj);
	}
}

void bus__brpc_publish_stats(struct bus_core *core)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_stats(core, &pk, true);
	bus__route_publish_from_broker(core, BUS_STATS_TOPIC, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

int bus_core_stats_pack(struct bus_core *core, bool with_topics,
                        uint8_t **data, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_stats(core, &pk, with_topics);
	if (!sb.data) {
		msgpack_sbuffer_destroy(&sb);
		return BUS_ENOMEM;
	}
	*len = sb.size;
	*data = (uint8_t *)msgpack_sbuffer_release(&sb);
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
	/* the budget comes before any unpacking: msgpack-c allocates about
	 * 24 bytes per item, so 16 MiB of one-byte items would cost 400 MiB */
	bool too_big = plen > core->cfg.limits.rpc_params_bytes_max;
	bool no_params = method_is(method, mlen, "test") ||
	                 method_is(method, mlen, "info") ||
	                 method_is(method, mlen, "stats") ||
	                 method_is(method, mlen, "topic.stats") ||
	                 method_is(method, mlen, "diagnostics");
	if ((no_params && plen != 0) || too_big) {
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
		pack_stats(core, &pk, false);
	} else if (method_is(method, mlen, "topic.stats")) {
		pack_topic_stats(core, &pk);
	} else if (method_is(method, mlen, "diagnostics")) {
		/* answered, and published for whoever watches (the map
		 * after the reply's five-byte header) */
		pack_diagnostics(core, &pk);
		bus__route_publish_from_broker(core, BUS_DIAGNOSTICS_TOPIC,
		                               sb.data + 5, sb.size - 5);
	} else if (method_is(method, mlen, "client.list")) {
		err = pack_client_list(core, &pk, params, plen);
	} else {
		err = RPC_ERR_METHOD;
	}
	if (err) {
		core->st.rejects_rpc++;
		rpc_error(core, c, call_id, (int16_t)err,
		          err == RPC_ERR_METHOD ? "method not found"
		          : too_big             ? "params too large"
		                                : "invalid params");
	}
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
