/* SPDX-License-Identifier: Apache-2.0 */
/* test_core.c — the broker core through the in-memory host: any split of
 * the byte stream, limits at and one past, slow-consumer policies with
 * exact counters, backpressure (block) at its marks, keepalives, and the shape checks
 * (allocations per publish independent of the receiver count; trie visits
 * bounded by topic depth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <msgpack.h>
#include <string.h>

#include "../core/internal.h"
#include "memhost.h"

#define LOCAL BUS_KIND_LOCAL_IPC
#define SEC 1000000000ull

static struct memhost *new_host(struct bus_core_config *cfg)
{
	struct memhost *mh = calloc(1, sizeof(*mh));
	mh_init(mh, cfg);
	return mh;
}

static void end_host(struct memhost *mh)
{
	mh_free(mh);
	free(mh);
}

static uint32_t sub(struct memhost *mh, int i, const char *mask)
{
	return mh_frame(mh, i, BUS_OP_SUBSCRIBE, 1, mask, strlen(mask));
}

static uint32_t pub(struct memhost *mh, int i, const char *topic,
                    const char *data, uint8_t qos)
{
	uint8_t buf[4096];
	size_t n = mh_join(buf, topic, data, NULL);
	return mh_frame(mh, i, BUS_OP_PUBLISH, qos, buf, n);
}

static struct bus_stats stats(struct memhost *mh)
{
	struct bus_stats st;
	bus_core_stats(mh->core, &st);
	return st;
}

static void test_handshake_and_publish_at_every_split(void **state)
{
	(void)state;
	static const uint8_t hs[] = {0xEB, 1, 0, 3, 0, 'p', 'u', 'b'};
	uint8_t fr[64];
	size_t plen = mh_join(fr + 9, "t/x", "payload", NULL);
	uint32_t id = 42, l = (uint32_t)plen;
	memcpy(fr, &id, 4);
	fr[4] = BUS_OP_PUBLISH | 1 << 6;
	memcpy(fr + 5, &l, 4);
	uint8_t stream[128];
	memcpy(stream, hs, sizeof(hs));
	memcpy(stream + sizeof(hs), fr, 9 + plen);
	size_t total = sizeof(hs) + 9 + plen;
	for (size_t cut = 1; cut < total; cut++) {
		struct bus_core_config cfg;
		bus_core_config_defaults(&cfg, true);
		struct memhost *mh = new_host(&cfg);
		int s = mh_client(mh, "sub", LOCAL);
		assert_int_equal(mh_ack(mh, s, sub(mh, s, "t/+")), BUS_RES_OK);
		int p = mh_connect(mh, LOCAL);
		mh_send(mh, p, stream, cut);
		mh_send(mh, p, stream + cut, total - cut);
		uint8_t g[3 + 1 + 1];
		mh_take(mh, p, 5, g);
		assert_int_equal(g[3], BUS_RES_OK);
		assert_int_equal(g[4], BUS_RES_OK);
		assert_int_equal(mh_ack(mh, p, 42), BUS_RES_OK);
		struct mh_msg m;
		assert_true(mh_next(mh, s, &m));
		assert_string_equal(m.sender, "pub");
		assert_string_equal(m.topic, "t/x");
		assert_memory_equal(m.data, "payload", 7);
		end_host(mh);
	}
}

static void test_one_byte_at_a_time(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "#")), BUS_RES_OK);
	int p = mh_client(mh, "p", LOCAL);
	struct mh_msg m;
	assert_true(mh_next(mh, s, &m)); /* .broker/info: p registered */
	assert_string_equal(m.topic, ".broker/info");
	uint8_t buf[64];
	size_t n = mh_join(buf + 9, "a", "b", NULL);
	uint32_t id = 7, l = (uint32_t)n;
	memcpy(buf, &id, 4);
	buf[4] = BUS_OP_PUBLISH;
	memcpy(buf + 5, &l, 4);
	for (int rep = 0; rep < 3; rep++)
		for (size_t k = 0; k < 9 + n; k++)
			mh_send(mh, p, buf + k, 1);
	for (int rep = 0; rep < 3; rep++) {
		assert_true(mh_next(mh, s, &m));
		assert_string_equal(m.topic, "a");
	}
	assert_false(mh_next(mh, s, &m));
	end_host(mh);
}

static void test_name_limit_at_and_past(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.name_bytes_max = 8;
	struct memhost *mh = new_host(&cfg);
	int a = mh_connect(mh, LOCAL);
	assert_int_equal(mh_handshake(mh, a, "12345678", 8), BUS_RES_OK);
	int b = mh_connect(mh, LOCAL);
	uint8_t g[3];
	mh_take(mh, b, 3, g);
	mh_send(mh, b, g, 3);
	mh_take(mh, b, 1, g);
	mh_send(mh, b, "\x09\x00", 2); /* refused on the length alone */
	mh_take(mh, b, 1, g);
	assert_int_equal(g[0], BUS_RES_DATA);
	assert_true(mh->c[b].closed);
	end_host(mh);
}

/* A secondary names its primary before "%%": one that names none (the
 * marker first) is no plain name either. The documented defaults of the
 * broker-wide caps. */
static void test_secondary_of_nobody_and_defaults(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	assert_int_equal(cfg.limits.subscriptions_bytes_total_max, 64u << 20);
	struct memhost *mh = new_host(&cfg);
	int a = mh_connect(mh, LOCAL);
	assert_int_equal(mh_handshake(mh, a, "%%x", 3), BUS_RES_NOT_REGISTERED);
	int b = mh_connect(mh, LOCAL);
	assert_int_equal(mh_handshake(mh, b, "x%%y", 4), BUS_RES_NOT_REGISTERED);
	end_host(mh);
	bus_core_config_defaults(&cfg, false);
	assert_int_equal(cfg.limits.subscriptions_bytes_total_max, 256u << 20);
}

static void test_connections_limit(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.connections_max = 2;
	struct memhost *mh = new_host(&cfg);
	/* the embedding process's internal clients take no socket's place */
	mh_client(mh, "agent.1", BUS_KIND_INTERNAL);
	mh_client(mh, "agent.2", BUS_KIND_INTERNAL);
	mh_client(mh, "a", LOCAL);
	mh_client(mh, "b", LOCAL);
	mh_client(mh, "agent.3", BUS_KIND_INTERNAL);
	int c = mh_connect(mh, LOCAL);
	assert_int_equal(mh_handshake(mh, c, "c", 1), BUS_RES_BUSY);
	assert_true(mh->c[c].closed);
	assert_int_equal(stats(mh).rejects_connections, 1);
	end_host(mh);
}

static void test_subscription_limit_at_and_past(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.subscriptions_max = 2;
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "a")), BUS_RES_OK);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "b")), BUS_RES_OK);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "c")), BUS_RES_DATA);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "a")), BUS_RES_OK);
	assert_int_equal(stats(mh).rejects_limit, 1);
	end_host(mh);
}

static void test_topic_levels_at_and_past(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.topic_levels_max = 3;
	cfg.limits.topic_bytes_max = 6;
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "a/b/c")), BUS_RES_OK);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "a/b/cd")), BUS_RES_OK);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "a/b/c/d")), BUS_RES_DATA);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "a/b/cde")), BUS_RES_DATA);
	assert_int_equal(mh_ack(mh, s, pub(mh, s, "a/b/c/", "x", 1)),
	                 BUS_RES_DATA);
	end_host(mh);
}

static void test_payload_limit_closes_only_offender(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.payload_bytes_max = 16;
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, "t")), BUS_RES_OK);
	int p = mh_client(mh, "p", LOCAL);
	/* payload "t\0" + 14 bytes = 16: at the limit */
	assert_int_equal(mh_ack(mh, p, pub(mh, p, "t", "xxxxxxxxxxxxxx", 1)),
	                 BUS_RES_OK);
	pub(mh, p, "t", "xxxxxxxxxxxxxxx", 1); /* 17: closed */
	assert_true(mh->c[p].closed);
	assert_false(mh->c[s].closed);
	assert_int_equal(stats(mh).disconnects_proto, 1);
	end_host(mh);
}

/* A stalled reader with a queue of 4 frames; a bystander gets everything. */
static void run_slow(enum bus_slow_policy pol, uint64_t *drops, bool *cut)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.queue_frames_max = 4;
	cfg.slow_policy = pol;
	struct memhost *mh = new_host(&cfg);
	int slow = mh_client(mh, "slow", LOCAL);
	int ok = mh_client(mh, "ok", LOCAL);
	int p = mh_client(mh, "p", LOCAL);
	sub(mh, slow, "t");
	sub(mh, ok, "t");
	struct mh_msg m;
	while (mh_next(mh, slow, &m))
		;
	while (mh_next(mh, ok, &m))
		;
	mh->c[slow].stalled = true;
	for (int i = 0; i < 10; i++)
		pub(mh, p, "t", "d", 0);
	int got = 0;
	while (mh_next(mh, ok, &m))
		got++;
	assert_int_equal(got, 10);
	struct bus_stats st = stats(mh);
	*drops = st.drops_slow;
	*cut = mh->c[slow].close_requested;
	if (*cut)
		assert_int_equal(st.disconnects_slow, 1);
	end_host(mh);
}

static void test_slow_consumer_policies(void **state)
{
	(void)state;
	uint64_t drops;
	bool cut;
	/* first frame goes in flight and stays (stalled): 1 in flight + 3
	 * queued = 4 frames; the other 6 are dropped */
	run_slow(BUS_SLOW_DROP_NEWEST, &drops, &cut);
	assert_int_equal(drops, 6);
	assert_false(cut);
	run_slow(BUS_SLOW_DISCONNECT, &drops, &cut);
	assert_int_equal(drops, 0);
	assert_true(cut);
}

/* A failed allocation never turns into a silent loss: for each of the
 * allocations a publish to two receivers makes, failing that one leaves
 * the publisher with an ACK that is not OK, or a receiver without the
 * frame cut (it reconnects and knows), or the frame delivered. */
static void test_alloc_failure_in_publish_is_never_silent(void **state)
{
	(void)state;
	int refused_rows = 0;
	for (uint64_t k = 1; k <= 8; k++) {
		struct bus_core_config cfg;
		bus_core_config_defaults(&cfg, true);
		struct memhost *mh = new_host(&cfg);
		int r[2] = {mh_client(mh, "r0", LOCAL), mh_client(mh, "r1", LOCAL)};
		for (int i = 0; i < 2; i++)
			assert_int_equal(mh_ack(mh, r[i], sub(mh, r[i], "ev/#")),
			                 BUS_RES_OK);
		int p = mh_client(mh, "p", LOCAL);
		/* a delivery of the 256-byte class, whose free list is still
		 * empty: its frame is allocated (frame.c) */
		char data[151];
		memset(data, 'd', 150);
		data[150] = 0;
		mh->fail_once = mh->allocs + k;
		uint32_t id = pub(mh, p, "ev/x", data, 1);
		bool failed_here = mh->allocs >= mh->fail_once;
		mh->fail_once = 0;
		struct mh_msg m;
		int ack = -1;
		while (!mh->c[p].close_requested && mh_next(mh, p, &m))
			if (m.kind == BUS_OP_ACK && m.op_id == id)
				ack = m.result;
		int got_n = 0;
		for (int i = 0; i < 2; i++) {
			bool got = false;
			while (mh_next(mh, r[i], &m))
				got |= m.kind == BUS_OP_PUBLISH;
			if (ack == BUS_RES_OK)
				assert_true(got || mh->c[r[i]].close_requested);
			got_n += got;
		}
		if (!failed_here) /* fewer allocations than k: all delivered */
			assert_int_equal(ack, BUS_RES_OK);
		/* no memory for the delivery frame (not OK, nobody got it):
		 * the topic's row says it went to nobody, a drop for each
		 * receiver */
		const struct bus_tstats *t = &mh->core->ts;
		for (uint32_t i = 0; ack != BUS_RES_OK && !got_n && i < t->n; i++)
			if (t->rows[i].key && !strcmp(t->rows[i].key, "ev/x")) {
				assert_int_equal(t->rows[i].frames_in, 1);
				assert_int_equal(t->rows[i].frames_out, 0);
				assert_int_equal(t->rows[i].bytes_out, 0);
				assert_int_equal(t->rows[i].drops, 2);
				refused_rows++;
			}
		end_host(mh);
	}
	assert_true(refused_rows > 0); /* that path was taken */
}

/* An ACK the broker has no memory for is never silently missing: the
 * sender is cut (it reconnects and sends again), or it gets the ACK. */
static void test_alloc_failure_of_an_ack_cuts(void **state)
{
	(void)state;
	bool cut_seen = false;
	for (uint64_t k = 1; k <= 4; k++) {
		struct bus_core_config cfg;
		bus_core_config_defaults(&cfg, true);
		struct memhost *mh = new_host(&cfg);
		int p = mh_client(mh, "p", LOCAL);
		mh->fail_once = mh->allocs + k;
		uint32_t id = pub(mh, p, "nobody/listens", "data", 1);
		mh->fail_once = 0;
		struct mh_msg m;
		bool acked = false;
		while (mh_next(mh, p, &m))
			acked |= m.kind == BUS_OP_ACK && m.op_id == id;
		assert_true(acked || mh->c[p].close_requested);
		cut_seen |= !acked;
		end_host(mh);
	}
	assert_true(cut_seen);
}

/* A broadcast mask reaches the names it matches, found through the
 * literal prefix before its first wildcard level. */
static void test_broadcast_masks(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	const char *names[] = {"grp.one", "grp.two.deep", "grpx.one", "other.one",
	                       "grp"};
	int c[5];
	for (int i = 0; i < 5; i++)
		c[i] = mh_client(mh, names[i], LOCAL);
	int s = mh_client(mh, "sender", LOCAL);
	static const struct {
		const char *mask;
		bool got[5];
	} cases[] = {
	    {"grp.*", {true, true, false, false, false}},
	    {"grp.?", {true, false, false, false, false}},
	    {"?.one", {true, false, true, true, false}},
	    {"grp", {false, false, false, false, true}},
	    {"grp.two.*", {false, true, false, false, false}},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint8_t buf[64];
		size_t n = mh_join(buf, cases[k].mask, "hi", NULL);
		assert_int_equal(mh_ack(mh, s, mh_frame(mh, s, BUS_OP_BROADCAST, 1,
		                                        buf, n)),
		                 BUS_RES_OK);
		for (int i = 0; i < 5; i++) {
			struct mh_msg m;
			bool got = false;
			while (mh_next(mh, c[i], &m))
				got |= m.kind == BUS_OP_BROADCAST;
			if (got != cases[k].got[i])
				fail_msg("%s to %s: %s", cases[k].mask, names[i],
				         got ? "delivered" : "not delivered");
		}
	}
	end_host(mh);
}

/* A .broker call from c (frame: ".broker\0" and the RPC request): it is
 * acknowledged, answered with a reply, and the reply is one whole
 * MessagePack object, unpacked into u. */
static void broker_reply(struct memhost *mh, int c, const uint8_t *frame,
                         size_t len, msgpack_unpacked *u)
{
	assert_int_equal(mh_ack(mh, c, mh_frame(mh, c, BUS_OP_MESSAGE, 1, frame,
	                                        len)),
	                 BUS_RES_OK);
	struct mh_msg m;
	assert_true(mh_next(mh, c, &m));
	assert_int_equal(m.data[0], 0x11);
	assert_true(m.data_len <= sizeof(m.data));
	msgpack_unpacked_init(u);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(u, (const char *)m.data + 5,
	                                     m.data_len - 5, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, m.data_len - 5); /* all of it, nothing after */
}

/* The stats reply is one well-formed MessagePack map, every key with its
 * value (a wrong count would make a client read past it or stop short). */
static void test_broker_stats_is_one_map(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int c = mh_client(mh, "c", LOCAL);
	static const uint8_t buf[] = ".broker\0\x01\x02\0\0\0stats";
	msgpack_unpacked u;
	broker_reply(mh, c, buf, sizeof(buf), &u);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	struct bus_stats st;
	bus_core_stats(mh->core, &st);
	/* every counter, and the uptime and version beside them */
	assert_int_equal(u.data.via.map.size, sizeof(st) / sizeof(uint64_t) + 2);
	msgpack_unpacked_destroy(&u);
	end_host(mh);
}

/* client.list names every registered client, once. */
static void test_broker_client_list(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int c = mh_client(mh, "lister", LOCAL);
	mh_client(mh, "alpha", LOCAL);
	mh_client(mh, "beta", LOCAL);
	static const uint8_t buf[] = ".broker\0\x01\x03\0\0\0client.list";
	msgpack_unpacked u;
	broker_reply(mh, c, buf, sizeof(buf), &u);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	const msgpack_object *list = NULL;
	for (uint32_t i = 0; i < u.data.via.map.size; i++)
		if (u.data.via.map.ptr[i].key.type == MSGPACK_OBJECT_STR &&
		    u.data.via.map.ptr[i].key.via.str.size == 7 &&
		    !memcmp(u.data.via.map.ptr[i].key.via.str.ptr, "clients", 7))
			list = &u.data.via.map.ptr[i].val;
	assert_non_null(list);
	assert_int_equal(list->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(list->via.array.size, 3);
	msgpack_unpacked_destroy(&u);
	end_host(mh);
}

/* A .broker call is answered whatever its call id's bytes (the id's
 * first byte is not the request type). */
static void test_broker_rpc_any_call_id(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int c = mh_client(mh, "c", LOCAL);
	static const uint8_t buf[] = ".broker\0\x01\x78\x56\x34\x12test";
	size_t n = sizeof(buf); /* the method's NUL: the final one */
	assert_int_equal(mh_ack(mh, c, mh_frame(mh, c, BUS_OP_MESSAGE, 1, buf, n)),
	                 BUS_RES_OK);
	struct mh_msg m;
	assert_true(mh_next(mh, c, &m));
	assert_int_equal(m.kind, BUS_OP_MESSAGE);
	assert_string_equal(m.sender, ".broker");
	assert_int_equal(m.data[0], 0x11); /* a reply */
	assert_memory_equal(m.data + 1, "\x78\x56\x34\x12", 4);
	end_host(mh);
}

/* Out of memory while applying SUBSCRIBE: the connection is cut (its
 * resubscribe on reconnect restores the set) rather than answered as a
 * bad request with some masks applied. */
static void test_alloc_failure_in_subscribe_cuts(void **state)
{
	(void)state;
	bool cut_seen = false;
	for (uint64_t k = 1; k <= 6; k++) {
		struct bus_core_config cfg;
		bus_core_config_defaults(&cfg, true);
		struct memhost *mh = new_host(&cfg);
		int c = mh_client(mh, "c", LOCAL);
		static const char masks[] = "a/#\0b/+/c\0d";
		mh->fail_once = mh->allocs + k;
		uint32_t id = mh_frame(mh, c, BUS_OP_SUBSCRIBE, 1, masks,
		                       sizeof(masks) - 1);
		mh->fail_once = 0;
		if (mh->c[c].close_requested) {
			cut_seen = true;
			assert_int_equal(stats(mh).rejects_limit, 0);
		} else {
			assert_int_equal(mh_ack(mh, c, id), BUS_RES_OK);
		}
		end_host(mh);
	}
	assert_true(cut_seen);
}

/* ---- backpressure (block, the default) ------------------------------------ */
/* Completes connection i's write by hand (a reader that takes one write),
 * then lets the core start its next one. */
static void complete_one_write(struct memhost *mh, int i)
{
	struct mh_conn *c = &mh->c[i];
	assert_true(c->write_pending);
	c->write_pending = false;
	bus_core_on_written(mh->core, c->conn, 0, mh->now);
	bus_core_flush(mh->core, mh->now);
}

static int drain_count(struct memhost *mh, int i, uint8_t kind)
{
	struct mh_msg m;
	int n = 0;
	while (mh_next(mh, i, &m))
		n += m.kind == kind;
	return n;
}

/* r reads nothing; ok reads everything; p publishes on t. */
struct bp {
	struct memhost *mh;
	int r, ok, p;
};

static struct bp bp_open(uint32_t frames_max, uint32_t low_pct)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.queue_frames_max = frames_max;
	cfg.low_water_percent = low_pct;
	struct bp b = {new_host(&cfg), 0, 0, 0};
	b.r = mh_client(b.mh, "r", LOCAL);
	b.ok = mh_client(b.mh, "ok", LOCAL);
	b.p = mh_client(b.mh, "p", LOCAL);
	sub(b.mh, b.r, "t");
	sub(b.mh, b.ok, "t");
	drain_count(b.mh, b.r, 0);
	drain_count(b.mh, b.ok, 0);
	b.mh->c[b.r].stalled = true;
	return b;
}

static const msgpack_object *map_get_key(const msgpack_object *o,
                                         const char *key)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    !memcmp(k->via.str.ptr, key, kl))
			return &o->via.map.ptr[i].val;
	}
	return NULL;
}

/* diagnostics names a publisher that waits for a full receiver among the
 * paused, with the receiver it waits for (its input is not paused for
 * the budget: it waits). */
static void test_diagnostics_lists_a_waiting_publisher(void **state)
{
	(void)state;
	struct bp b = bp_open(4, 50);
	for (int i = 0; i < 5; i++)
		pub(b.mh, b.p, "t", "d", 0);
	assert_false(b.mh->c[b.p].reading); /* the fifth waits */
	static const uint8_t buf[] = ".broker\0\x01\x03\0\0\0diagnostics";
	int d = mh_client(b.mh, "d", LOCAL); /* the asker: nothing queued */
	msgpack_unpacked u;
	broker_reply(b.mh, d, buf, sizeof(buf), &u);
	const msgpack_object *paused = map_get_key(&u.data, "paused");
	assert_non_null(paused);
	assert_int_equal(paused->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(paused->via.array.size, 1);
	const msgpack_object *w = map_get_key(&paused->via.array.ptr[0],
	                                      "waits_for");
	assert_non_null(w);
	assert_int_equal(w->type, MSGPACK_OBJECT_STR);
	assert_int_equal(w->via.str.size, 1);
	assert_memory_equal(w->via.str.ptr, "r", 1);
	assert_non_null(map_get_key(&u.data, "denials"));
	msgpack_unpacked_destroy(&u);
	end_host(b.mh);
}

/* A subscribe past the client's subscription bytes is refused (DATA) and
 * holds none of its masks; one within is taken. A mask is charged per
 * level (bus__mask_charge): twelve levels are past 4096 bytes. */
static void test_subscription_bytes_limit(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.subscriptions_bytes_max = 4096;
	struct memhost *mh = new_host(&cfg);
	int c = mh_client(mh, "s", LOCAL);
	assert_int_equal(mh_ack(mh, c, sub(mh, c, "a/b")), BUS_RES_OK);
	const char *big = "a/b/c/d/e/f/g/h/i/j/k/l";
	assert_true(bus__mask_charge(strlen(big), 12) > 4096);
	assert_int_equal(mh_ack(mh, c, sub(mh, c, big)), BUS_RES_DATA);
	assert_false(bus_conn_subscribed(mh->c[c].conn, big));
	assert_true(bus_conn_subscribed(mh->c[c].conn, "a/b"));
	assert_false(bus_conn_subscribed(mh->c[c].conn, "a/c"));
	assert_int_equal(stats(mh).rejects_limit, 1);
	end_host(mh);
}

/* A write that fails on a client that stops hearing unregisters it, and
 * the unregistration is announced within that same call, not at the next
 * one: a subscriber of .broker/info has it written at the flush. */
static void test_announced_within_the_failing_write(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	assert_int_equal(mh_ack(mh, s, sub(mh, s, ".broker/info")), BUS_RES_OK);
	int p = mh_client(mh, "p", LOCAL);
	struct mh_msg m;
	while (mh_next(mh, s, &m)) /* p's registration */
		;
	mh->c[p].stalled = true;
	pub(mh, p, "x", "d", 1); /* its ACK: a write to p, pending */
	assert_true(mh->c[p].write_pending);
	assert_false(mh->c[s].write_pending);
	mh->c[p].write_pending = false;
	bus_core_on_written(mh->core, mh->c[p].conn, -32 /* EPIPE */, mh->now);
	bus_core_flush(mh->core, mh->now);
	assert_true(mh->c[s].write_pending);
	bool unreg = false;
	for (size_t k = 0; k < mh->c[s].iov_n; k++) {
		const uint8_t *b = mh->c[s].iov[k].base;
		for (size_t j = 0; j + 5 <= mh->c[s].iov[k].len; j++)
			unreg |= !memcmp(b + j, "unreg", 5);
	}
	assert_true(unreg);
	end_host(mh);
}

/* A publisher whose frames wait for a slow receiver, and whose peer then
 * stops hearing (a write to it fails: EPIPE after it closed): what it
 * sent is still delivered, every frame of it. Before, the failed write
 * cut it, and the frames waiting in its input were lost (busrt-bench's
 * floods lost ~0.1% when a keepalive hit a closed publisher). */
static void test_a_sender_that_cannot_hear_still_gets_its_frames_delivered(
    void **state)
{
	(void)state;
	struct bp b = bp_open(4, 50);
	struct memhost *mh = b.mh;
	mh->c[b.p].stalled = true; /* its writes stay pending */
	uint8_t buf[64];
	size_t n = mh_join(buf, "t", "0", NULL);
	mh_frame(mh, b.p, BUS_OP_PUBLISH, 1, buf, n); /* an ACK to p: a write */
	for (int i = 1; i <= 20; i++) {
		char d[16];
		snprintf(d, sizeof(d), "%d", i);
		n = mh_join(buf, "t", d, NULL);
		mh_frame(mh, b.p, BUS_OP_PUBLISH, 0, buf, n);
	}
	assert_true(mh->c[b.p].write_pending);
	assert_true(bus_conn_input_pending(mh->c[b.p].conn) > 0); /* waiting */
	mh->c[b.p].write_pending = false;
	bus_core_on_written(mh->core, mh->c[b.p].conn, -32 /* EPIPE */,
	                    mh->now);
	mh_run(mh);
	assert_false(mh->c[b.p].close_requested);
	mh->c[b.r].stalled = false;
	mh_run(mh);
	assert_true(mh->c[b.p].reading); /* so that its EOF is read */
	assert_int_equal(drain_count(mh, b.r, BUS_OP_PUBLISH), 21);
	assert_int_equal(drain_count(mh, b.ok, BUS_OP_PUBLISH), 21);
	assert_int_equal(bus_conn_input_pending(mh->c[b.p].conn), 0);
	/* then its EOF closes it, as any */
	mh_drop(mh, b.p);
	mh_run(mh);
	struct bus_stats st;
	bus_core_stats(mh->core, &st);
	assert_int_equal(st.drops_slow, 0);
	end_host(mh);
}

/* A publisher that does not read its own ACKs waits for itself (the
 * broker stops reading it); when a write to it then fails, its queue goes
 * and nothing is left to wait for: the broker reads it again, so what it
 * still sends is delivered and its EOF is seen. */
static void test_a_sender_waiting_for_itself_is_read_again_when_deaf(
    void **state)
{
	(void)state;
	struct bp b = bp_open(4, 50);
	struct memhost *mh = b.mh;
	mh->c[b.r].stalled = false; /* receivers take everything */
	drain_count(mh, b.r, 0);
	mh->c[b.p].stalled = true;  /* p reads nothing: its ACKs pile up */
	uint8_t buf[64];
	for (int i = 1; i <= 40 && mh->c[b.p].reading; i++) {
		char d[16];
		snprintf(d, sizeof(d), "%d", i);
		size_t n = mh_join(buf, "t", d, NULL);
		mh_frame(mh, b.p, BUS_OP_PUBLISH, 1, buf, n);
		mh_run(mh);
	}
	assert_false(mh->c[b.p].reading); /* waiting for itself */
	assert_false(mh->c[b.p].close_requested);
	mh->c[b.p].write_pending = false;
	bus_core_on_written(mh->core, mh->c[b.p].conn, -32 /* EPIPE */,
	                    mh->now);
	mh_run(mh);
	assert_true(mh->c[b.p].reading); /* so that its EOF is read */
	size_t n = mh_join(buf, "t", "after", NULL);
	mh_frame(mh, b.p, BUS_OP_PUBLISH, 0, buf, n);
	mh_run(mh);
	assert_true(drain_count(mh, b.ok, BUS_OP_PUBLISH) > 0);
	mh_drop(mh, b.p);
	mh_run(mh);
	end_host(mh);
}

static void test_block_is_the_default_for_every_client(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	for (int embedded = 0; embedded < 2; embedded++) {
		bus_core_config_defaults(&cfg, embedded);
		assert_int_equal(cfg.slow_policy, BUS_SLOW_BLOCK);
		assert_int_equal(cfg.internal_slow_policy, BUS_SLOW_BLOCK);
		const char *what = NULL;
		assert_int_equal(bus_core_config_check(&cfg, &what), 0);
	}
	cfg.low_water_percent = 100;
	const char *what = NULL;
	assert_int_equal(bus_core_config_check(&cfg, &what), BUS_ECONFIG);
	assert_string_equal(what, "low_water_percent");
}

/* At the high-water mark the next frame waits in the publisher's input:
 * delivered to nobody yet (not even the bystander), nothing dropped, the
 * publisher's reading paused. */
static void test_block_high_water_at_and_past(void **state)
{
	(void)state;
	struct bp b = bp_open(4, 50);
	for (int i = 0; i < 4; i++) /* 1 in flight + 3 queued: at the mark */
		pub(b.mh, b.p, "t", "d", 0);
	assert_true(b.mh->c[b.p].reading);
	assert_int_equal(stats(b.mh).backpressure_waits, 0);
	pub(b.mh, b.p, "t", "5", 0); /* past it: waits */
	assert_false(b.mh->c[b.p].reading);
	assert_int_equal(stats(b.mh).backpressure_waits, 1);
	assert_int_equal(drain_count(b.mh, b.ok, BUS_OP_PUBLISH), 4);
	struct bus_stats st = stats(b.mh);
	assert_int_equal(st.drops_slow + st.disconnects_slow, 0);
	assert_int_equal(bus_conn_input_pending(b.mh->c[b.p].conn) > 0, 1);
	b.mh->c[b.r].stalled = false;
	mh_run(b.mh);
	assert_true(b.mh->c[b.p].reading);
	assert_int_equal(drain_count(b.mh, b.ok, BUS_OP_PUBLISH), 1);
	assert_int_equal(drain_count(b.mh, b.r, BUS_OP_PUBLISH), 5);
	end_host(b.mh);
}

/* Waiters go on when the receiver is at or below its low-water mark
 * after a write completes, not one frame above it. */
static void test_block_low_water_at_and_above(void **state)
{
	(void)state;
	for (uint32_t pct = 74; pct <= 75; pct++) {
		/* 4 frames max: 75 % is 3 frames, 74 % is 2 */
		struct bp b = bp_open(4, pct);
		for (int i = 0; i < 5; i++)
			pub(b.mh, b.p, "t", "d", 0);
		assert_false(b.mh->c[b.p].reading);
		complete_one_write(b.mh, b.r); /* 1 frame out: 3 left */
		mh_run(b.mh);
		if (pct == 75)
			assert_true(b.mh->c[b.p].reading);
		else
			assert_false(b.mh->c[b.p].reading);
		end_host(b.mh);
	}
}

/* A receiver that someone waits for and that completes no write for the
 * deadline is cut; the publisher goes on; a paused publisher is never
 * cut for silence, however long it waits. */
static void test_block_stalled_receiver_cut_at_deadline(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.queue_frames_max = 4;
	cfg.block_deadline_ns = 20 * SEC; /* past the idle cut (6.25 s) */
	struct memhost *mh = new_host(&cfg);
	int r = mh_client(mh, "r", LOCAL), ok = mh_client(mh, "ok", LOCAL);
	int p = mh_client(mh, "p", LOCAL);
	sub(mh, r, "t");
	sub(mh, ok, "t");
	drain_count(mh, r, 0);
	mh->c[r].stalled = true;
	for (int i = 0; i < 5; i++)
		pub(mh, p, "t", "d", 0);
	assert_false(mh->c[p].reading);
	/* ok and r keep pinging; p cannot be read at all */
	for (int k = 0; k < 19; k++) {
		uint8_t ping[9] = {0};
		mh_send(mh, ok, ping, 9);
		mh_send(mh, r, ping, 9);
		mh_advance(mh, SEC);
	}
	mh_advance(mh, SEC - 1); /* 1 ns before the deadline */
	assert_false(mh->c[r].close_requested);
	assert_false(mh->c[p].close_requested);
	mh_advance(mh, 1);
	assert_true(mh->c[r].close_requested);
	assert_false(mh->c[p].close_requested);
	assert_true(mh->c[p].reading);
	struct bus_stats st = stats(mh);
	assert_int_equal(st.disconnects_stalled, 1);
	assert_int_equal(st.disconnects_idle, 0);
	assert_int_equal(drain_count(mh, ok, BUS_OP_PUBLISH), 5);
	/* the silence the broker imposed does not count once it reads p
	 * again: p has its whole idle time (6.25 s) to speak */
	for (int k = 0; k < 6; k++) {
		uint8_t ping[9] = {0};
		mh_send(mh, ok, ping, 9);
		mh_advance(mh, SEC);
	}
	assert_false(mh->c[p].close_requested);
	mh_advance(mh, SEC / 4);
	assert_true(mh->c[p].close_requested);
	assert_int_equal(stats(mh).disconnects_idle, 1);
	end_host(mh);
}

/* Two publishers waiting for one receiver: when it drains, the first to
 * wait does not always take the room first. */
static void test_block_waiters_take_turns(void **state)
{
	(void)state;
	struct bp b = bp_open(4, 75);
	int p2 = mh_client(b.mh, "p2", LOCAL);
	drain_count(b.mh, b.r, 0);
	uint8_t frames[16 * 32];
	size_t n = 0;
	for (int i = 0; i < 16; i++) { /* 16 frames in one read */
		uint8_t f[32];
		size_t k = mh_join(f + 9, "t", "x", NULL);
		uint32_t id = 1000 + (uint32_t)i, l = (uint32_t)k;
		memcpy(f, &id, 4);
		f[4] = BUS_OP_PUBLISH;
		memcpy(f + 5, &l, 4);
		memcpy(frames + n, f, 9 + k);
		n += 9 + k;
	}
	mh_send(b.mh, b.p, frames, n);  /* 4 fit; p waits first */
	mh_send(b.mh, p2, frames, n);   /* p2 waits second */
	assert_false(b.mh->c[b.p].reading);
	assert_false(b.mh->c[p2].reading);
	complete_one_write(b.mh, b.r);  /* 3 left: at low water */
	/* the turn starts with p2: its frame takes the free place */
	struct mh_msg m;
	b.mh->c[b.r].stalled = false;
	mh_run(b.mh);
	int seen_p = 0, p2_before_p5 = 0;
	while (mh_next(b.mh, b.r, &m)) {
		if (m.kind != BUS_OP_PUBLISH)
			continue;
		if (!strcmp(m.sender, "p"))
			seen_p++;
		else if (seen_p < 5)
			p2_before_p5 = 1;
	}
	assert_true(p2_before_p5);
	assert_int_equal(drain_count(b.mh, b.ok, BUS_OP_PUBLISH), 32);
	end_host(b.mh);
}

/* A publisher that reads none of its ACKs waits for its own queue: ACKs
 * are never dropped, and all arrive in order once it reads. */
static void test_block_sender_waits_for_its_own_acks(void **state)
{
	(void)state;
	struct bp b = bp_open(4, 50);
	b.mh->c[b.r].stalled = false;
	b.mh->c[b.p].stalled = true;
	uint32_t ids[8];
	for (int i = 0; i < 8; i++)
		ids[i] = pub(b.mh, b.p, "t", "d", 1);
	assert_false(b.mh->c[b.p].reading); /* its own queue is full */
	b.mh->c[b.p].stalled = false;
	mh_run(b.mh);
	for (int i = 0; i < 8; i++)
		assert_int_equal(mh_ack(b.mh, b.p, ids[i]), BUS_RES_OK);
	assert_int_equal(drain_count(b.mh, b.r, BUS_OP_PUBLISH), 8);
	end_host(b.mh);
}

/* n clients r0.. subscribed to mask that read nothing more. */
static void stalled_subscribers(struct memhost *mh, int *r, int n,
                                const char *mask)
{
	for (int i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "r%d", i);
		r[i] = mh_client(mh, name, LOCAL);
		sub(mh, r[i], mask);
		drain_count(mh, r[i], 0);
		mh->c[r[i]].stalled = true;
	}
}

/* One frame shared by many receivers is one allocation: it counts once
 * in the broker-wide total. */
static void test_shared_frame_counts_once_broker_wide(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int r[10];
	stalled_subscribers(mh, r, 10, "t");
	int p = mh_client(mh, "p", LOCAL);
	uint64_t before = stats(mh).queued_bytes;
	pub(mh, p, "t", "0123456789", 0);
	uint64_t frame = BUS_SERVER_HDR_BYTES + 2 + 2 + 10; /* p\0 t\0 data */
	assert_int_equal(stats(mh).queued_bytes - before, frame);
	end_host(mh);
}

/* The broker-wide total under disconnect: one 16 MiB publish to 40
 * receivers that do not read is one allocation, and cuts none of them
 * (it cut 9 when every receiver's share counted). */
static void test_total_cap_does_not_cut_receivers_of_one_frame(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	cfg.slow_policy = BUS_SLOW_DISCONNECT;
	struct memhost *mh = new_host(&cfg);
	mh->skip_checks = true;
	int r[40];
	stalled_subscribers(mh, r, 40, "t");
	int p = mh_client(mh, "p", LOCAL);
	size_t n = (16u << 20) - 16;
	uint8_t *big = calloc(1, n);
	memcpy(big, "t", 2);
	uint32_t id = mh_frame(mh, p, BUS_OP_PUBLISH, 1, big, n);
	free(big);
	assert_int_equal(mh_ack(mh, p, id), BUS_RES_OK);
	struct bus_stats st = stats(mh);
	assert_int_equal(st.disconnects_slow, 0);
	assert_int_equal(st.clients, 41);
	for (int i = 0; i < 40; i++)
		assert_false(mh->c[r[i]].close_requested);
	end_host(mh);
}

/* A hog with a full queue of its own frames, a small receiver: a frame
 * for the small one that does not fit the broker-wide total makes the
 * policy act on the hog (cut, or its newest frames shed), never on the
 * small one. */
static void run_total_cap(enum bus_slow_policy pol, struct bus_stats *st,
                          bool *hog_cut, int *small_got)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.slow_policy = pol;
	cfg.limits.queue_bytes_max = 4096;
	cfg.limits.queued_bytes_total_max = 6000;
	struct memhost *mh = new_host(&cfg);
	int hog = mh_client(mh, "hog", LOCAL);
	int small = mh_client(mh, "small", LOCAL);
	int p = mh_client(mh, "p", LOCAL);
	drain_count(mh, hog, 0);
	drain_count(mh, small, 0);
	mh->c[hog].stalled = true;
	mh->c[small].stalled = true;
	static uint8_t buf[2000];
	char data[1600];
	memset(data, 'x', sizeof(data));
	data[900] = 0;
	size_t n = mh_join(buf, "hog", data, NULL);
	for (int i = 0; i < 4; i++) /* one in flight, three queued */
		assert_int_equal(mh_ack(mh, p, mh_frame(mh, p, BUS_OP_MESSAGE,
		                                        1, buf, n)),
		                 BUS_RES_OK);
	n = mh_join(buf, "small", data, NULL);
	assert_int_equal(mh_ack(mh, p, mh_frame(mh, p, BUS_OP_MESSAGE, 1,
	                                        buf, n)),
	                 BUS_RES_OK);
	data[900] = 'x';
	data[1500] = 0; /* 5 * ~925 + ~1525 > 6000 */
	n = mh_join(buf, "small", data, NULL);
	assert_int_equal(mh_ack(mh, p, mh_frame(mh, p, BUS_OP_MESSAGE, 1,
	                                        buf, n)),
	                 BUS_RES_OK);
	*st = stats(mh);
	*hog_cut = mh->c[hog].close_requested;
	assert_false(mh->c[small].close_requested);
	mh->c[small].stalled = false;
	mh_run(mh);
	*small_got = drain_count(mh, small, BUS_OP_MESSAGE);
	end_host(mh);
}

static void test_total_cap_acts_on_the_largest_holder(void **state)
{
	(void)state;
	struct bus_stats st;
	bool cut;
	int got;
	run_total_cap(BUS_SLOW_DISCONNECT, &st, &cut, &got);
	assert_true(cut);
	assert_int_equal(st.disconnects_slow, 1);
	assert_int_equal(got, 2);
	/* drop_newest: the hog's newest frame goes, nothing else */
	run_total_cap(BUS_SLOW_DROP_NEWEST, &st, &cut, &got);
	assert_false(cut);
	assert_int_equal(st.drops_slow, 1);
	assert_int_equal(st.disconnects_slow, 0);
	assert_int_equal(got, 2);
}

/* Three publishers each half-way through a 60 KB frame with a 64 KiB
 * input budget: the first fits, the second goes past it and owns the
 * budget, the third pauses. Nothing is cut, the broker goes on, every
 * frame arrives; with the owner silent, it is cut at the block deadline
 * and the paused one goes on. */
struct inb {
	struct memhost *mh;
	int s, p[3];
	uint8_t *fr;
	size_t len;
};

static struct inb inb_open(void)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.payload_bytes_max = 64u << 10;
	cfg.limits.input_bytes_total_max = 64u << 10;
	struct inb b = {new_host(&cfg), 0, {0, 0, 0}, NULL, 0};
	b.s = mh_client(b.mh, "s", LOCAL);
	sub(b.mh, b.s, "t");
	drain_count(b.mh, b.s, 0);
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		b.p[i] = mh_client(b.mh, name, LOCAL);
	}
	size_t plen = 2 + 60000;
	b.len = 9 + plen;
	b.fr = calloc(1, b.len);
	uint32_t l = (uint32_t)plen;
	b.fr[4] = BUS_OP_PUBLISH; /* QoS 0 */
	memcpy(b.fr + 5, &l, 4);
	memcpy(b.fr + 9, "t", 2);
	for (int i = 0; i < 3; i++)
		mh_send(b.mh, b.p[i], b.fr, 40000);
	return b;
}

static void test_input_budget_pauses_a_reader_not_the_broker(void **state)
{
	(void)state;
	struct inb b = inb_open();
	struct bus_stats st = stats(b.mh);
	assert_int_equal(st.input_pauses, 1);
	assert_false(b.mh->c[b.p[2]].reading);
	assert_true(b.mh->c[b.p[1]].reading); /* the owner goes on */
	assert_true(st.input_bytes > (64u << 10));
	/* the paused one's rest waits in its socket */
	mh_send(b.mh, b.p[2], b.fr + 40000, b.len - 40000);
	mh_send(b.mh, b.p[0], b.fr + 40000, b.len - 40000);
	assert_false(b.mh->c[b.p[2]].reading);
	mh_send(b.mh, b.p[1], b.fr + 40000, b.len - 40000);
	/* the owner's frame done: the budget frees, the paused goes on */
	assert_true(b.mh->c[b.p[2]].reading);
	assert_int_equal(drain_count(b.mh, b.s, BUS_OP_PUBLISH), 3);
	st = stats(b.mh);
	assert_int_equal(st.disconnects_input, 0);
	assert_true(st.input_bytes > 0); /* small buffers stay a while */
	mh_advance(b.mh, 3 * SEC);       /* a tick: idle ones go back */
	st = stats(b.mh);
	assert_int_equal(st.input_bytes, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bus_conn_input_pending(b.mh->c[b.p[i]].conn), 0);
	free(b.fr);
	end_host(b.mh);
}

/* Bytes that complete no frame are no progress: an owner that trickles
 * its large frame a byte a second is cut at the deadline all the same
 * (a slowloris holding the budget would starve everyone paused). */
static void test_input_budget_owner_that_trickles_is_cut(void **state)
{
	(void)state;
	struct inb b = inb_open();
	mh_send(b.mh, b.p[2], b.fr + 40000, b.len - 40000);
	mh_send(b.mh, b.p[0], b.fr + 40000, b.len - 40000);
	for (size_t i = 0; i < 7 && !b.mh->c[b.p[1]].close_requested; i++) {
		mh_advance(b.mh, 1 * SEC);
		mh_send(b.mh, b.p[1], b.fr + 40000 + i, 1);
	}
	assert_true(b.mh->c[b.p[1]].close_requested);
	struct bus_stats st = stats(b.mh);
	assert_int_equal(st.disconnects_input, 1);
	free(b.fr);
	end_host(b.mh);
}

static void test_input_budget_owner_that_stalls_is_cut(void **state)
{
	(void)state;
	struct inb b = inb_open();
	mh_send(b.mh, b.p[2], b.fr + 40000, b.len - 40000);
	mh_send(b.mh, b.p[0], b.fr + 40000, b.len - 40000);
	/* p1 owns the budget and sends nothing more */
	mh_advance(b.mh, 4 * SEC);
	assert_false(b.mh->c[b.p[1]].close_requested);
	mh_advance(b.mh, 2 * SEC);
	assert_true(b.mh->c[b.p[1]].close_requested);
	struct bus_stats st = stats(b.mh);
	assert_int_equal(st.disconnects_input, 1);
	assert_int_equal(st.disconnects_idle, 0);
	assert_int_equal(drain_count(b.mh, b.s, BUS_OP_PUBLISH), 2);
	free(b.fr);
	end_host(b.mh);
}

/* A reader paused for the budget was silent because the broker did not
 * read it: once admitted again it has its whole idle time (6.25 s). */
static void test_input_budget_paused_reader_keeps_its_idle_time(void **state)
{
	(void)state;
	struct inb b = inb_open();
	mh_send(b.mh, b.p[0], b.fr + 40000, b.len - 40000);
	assert_false(b.mh->c[b.p[2]].reading);
	mh_advance(b.mh, 5 * SEC); /* p1, the silent owner, is cut */
	assert_true(b.mh->c[b.p[1]].close_requested);
	assert_true(b.mh->c[b.p[2]].reading);
	mh_advance(b.mh, 3 * SEC / 2); /* silent 6.5 s, paused for 5 of them */
	assert_false(b.mh->c[b.p[2]].close_requested);
	mh_advance(b.mh, 5 * SEC);
	assert_true(b.mh->c[b.p[2]].close_requested);
	free(b.fr);
	end_host(b.mh);
}

static void test_allocations_per_publish_do_not_grow_with_receivers(void **state)
{
	(void)state;
	uint64_t per[2];
	int counts[2] = {1, 50};
	for (int k = 0; k < 2; k++) {
		struct bus_core_config cfg;
		bus_core_config_defaults(&cfg, true);
		struct memhost *mh = new_host(&cfg);
		int r[50];
		for (int i = 0; i < counts[k]; i++) {
			char name[16];
			snprintf(name, sizeof(name), "r%d", i);
			r[i] = mh_client(mh, name, LOCAL);
			sub(mh, r[i], i % 2 ? "ev/#" : "ev/+/x");
		}
		int p = mh_client(mh, "p", LOCAL);
		for (int w = 0; w < 64; w++) /* warm up rings and scratch */
			pub(mh, p, "ev/a/x", "payload", 0);
		uint64_t before = mh->allocs;
		for (int w = 0; w < 100; w++)
			pub(mh, p, "ev/a/x", "payload", 0);
		per[k] = mh->allocs - before;
		for (int i = 0; i < counts[k]; i++) {
			struct mh_msg m;
			int got = 0;
			while (mh_next(mh, r[i], &m))
				got += m.kind == BUS_OP_PUBLISH;
			assert_int_equal(got, 164);
		}
		end_host(mh);
	}
	/* one shared frame per publish, and once warm it comes from the
	 * core's free list: no allocation at all, whatever the receivers */
	assert_int_equal(per[0], 0);
	assert_int_equal(per[1], per[0]);
}

static void test_trie_visits_bounded_by_depth(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.subscriptions_max = 200000;
	cfg.limits.subscriptions_bytes_max = 1u << 30;
	cfg.limits.subscriptions_bytes_total_max = 1u << 30;
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	char mask[64];
	mh->skip_checks = true; /* the walk is O(subscriptions) per run */
	for (int i = 0; i < 100000; i++) {
		snprintf(mask, sizeof(mask), "%s/%d/+", i % 2 ? "x" : "a", i);
		sub(mh, s, mask);
	}
	mh->skip_checks = false;
	sub(mh, s, "a/b/c");
	struct mh_msg m;
	while (mh_next(mh, s, &m))
		;
	int p = mh_client(mh, "p", LOCAL);
	uint64_t before = bus_core_trie_visits(mh->core);
	pub(mh, p, "a/b/c", "x", 0);
	uint64_t visits = bus_core_trie_visits(mh->core) - before;
	assert_true(visits <= 4); /* root, a, a/b, a/b/c */
	assert_true(mh_next(mh, s, &m));
	assert_string_equal(m.topic, "a/b/c");
	end_host(mh);
}

/* The adversarial set: every mask of 10 levels over {a, +}, then "z"
 * (bits: a 1 is "+"). In a plain trie a publish on a/a/.../a/y, which
 * matches none, entered each of its 2,047 nodes. A client is sent a frame
 * once however many of its masks match, and +/+/.../+/z covers every
 * other mask of the set: only it is in the trie, and a walk enters the
 * root and its 10 levels, for one client as for 20. The subscription
 * budgets bound the set (here the count limit, 1,024, comes first). */
static void adversarial_mask(unsigned bits, char *mask)
{
	size_t n = 0;
	for (int lv = 0; lv < 10; lv++) {
		mask[n++] = bits >> lv & 1 ? '+' : 'a';
		mask[n++] = '/';
	}
	mask[n++] = 'z';
	mask[n] = 0;
}

/* Lets the books' comparisons finish (a slice at each tick, 10 ms
 * apart): within 10 s here. */
static void books_settle(struct memhost *mh)
{
	for (int ticks = 0; mh->core->book_first && ticks < 1000; ticks++)
		mh_advance(mh, 10000000);
	assert_null(mh->core->book_first);
}

static uint64_t walk_visits(struct memhost *mh, int p, const char *topic)
{
	uint64_t before = bus_core_trie_visits(mh->core);
	pub(mh, p, topic, "x", 0);
	return bus_core_trie_visits(mh->core) - before;
}

#define ADV_MISS "a/a/a/a/a/a/a/a/a/a/y"
#define ADV_HIT "a/a/a/a/a/a/a/a/a/a/z"

static struct memhost *adversarial_host(int clients, bool one_frame,
                                        uint64_t *accepted, int *s)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.limits.subscriptions_bytes_total_max = 1u << 30;
	struct memhost *mh = new_host(&cfg);
	mh->skip_checks = true; /* checked at the end of each phase */
	*accepted = 0;
	static char all[1024 * 22];
	for (int k = 0; k < clients; k++) {
		char name[16];
		snprintf(name, sizeof(name), "s%d", k);
		s[k] = mh_client(mh, name, LOCAL);
		size_t n = 0;
		for (unsigned bits = 0; bits < 1024; bits++) {
			char mask[32];
			adversarial_mask(bits, mask);
			if (!one_frame) {
				*accepted += mh_ack(mh, s[k], sub(mh, s[k], mask)) ==
				             BUS_RES_OK;
				continue;
			}
			memcpy(all + n, mask, strlen(mask) + 1);
			n += strlen(mask) + 1;
		}
		if (one_frame)
			*accepted += mh_ack(mh, s[k], mh_frame(mh, s[k],
			                                       BUS_OP_SUBSCRIBE, 1,
			                                       all, n - 1)) ==
			                     BUS_RES_OK
			                 ? 1024
			                 : 0;
		drain_count(mh, s[k], 0);
	}
	books_settle(mh);
	char why[256];
	if (bus_core_check_invariants(mh->core, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	return mh;
}

static void test_trie_visits_bounded_on_adversarial_masks(void **state)
{
	(void)state;
	for (int one_frame = 0; one_frame < 2; one_frame++)
		for (int clients = 1; clients <= 20; clients += 19) {
			uint64_t accepted;
			int s[20];
			struct memhost *mh =
			    adversarial_host(clients, one_frame, &accepted, s);
			/* a client's budget (4 MiB) or the count limit */
			uint64_t cost = bus__mask_charge(21, 11);
			assert_true((4u << 20) / cost >= 1024);
			assert_int_equal(accepted, 1024 * (uint64_t)clients);
			int p = mh_client(mh, "p", LOCAL);
			assert_true(walk_visits(mh, p, ADV_MISS) <= 11);
			assert_true(walk_visits(mh, p, ADV_HIT) <= 12);
			for (int k = 0; k < clients; k++) /* once, not 1,024 times */
				assert_int_equal(drain_count(mh, s[k], BUS_OP_PUBLISH),
				                 1);
			mh->skip_checks = false;
			mh_run(mh);
			end_host(mh);
		}
}

/* What a covering mask held back comes back when it goes: without
 * +/.../+/z the set's covers are the 10 masks with one "a" and walks stay
 * within (levels + 1) x those; every frame still arrives once; the masks
 * go in any order and leave an empty trie. */
static void test_covered_masks_return_when_their_cover_goes(void **state)
{
	(void)state;
	uint64_t accepted;
	int s[1];
	struct memhost *mh = adversarial_host(1, false, &accepted, s);
	int p = mh_client(mh, "p", LOCAL);
	char mask[32];
	adversarial_mask(1023, mask);
	assert_int_equal(mh_ack(mh, s[0], mh_frame(mh, s[0],
	                                           BUS_OP_UNSUBSCRIBE, 1, mask,
	                                           strlen(mask))),
	                 BUS_RES_OK);
	books_settle(mh);
	assert_true(walk_visits(mh, p, ADV_MISS) <= 11 * 10);
	assert_true(walk_visits(mh, p, ADV_HIT) <= 12 * 10);
	assert_int_equal(drain_count(mh, s[0], BUS_OP_PUBLISH), 1);
	/* 1,023 masks none of which covers another, in one frame: their
	 * comparisons (half a million) do not fit the frame's slice and go
	 * on at the ticks, every mask delivering meanwhile */
	static char all[1023 * 26];
	size_t n = 0;
	for (int i = 0; i < 1023 - 10; i++)
		n += (size_t)sprintf(all + n, "a/a/a/a/a/a/a/a/a/a/z%d", i) + 1;
	int q = mh_client(mh, "q", LOCAL);
	assert_int_equal(mh_ack(mh, q, mh_frame(mh, q, BUS_OP_SUBSCRIBE, 1, all,
	                                        n - 1)),
	                 BUS_RES_OK);
	assert_non_null(mh->core->book_first);
	pub(mh, p, "a/a/a/a/a/a/a/a/a/a/z7", "x", 0);
	assert_int_equal(drain_count(mh, q, BUS_OP_PUBLISH), 1);
	books_settle(mh);
	assert_int_equal(mh_ack(mh, q, mh_frame(mh, q, BUS_OP_UNSUBSCRIBE, 1, all,
	                                        n - 1)),
	                 BUS_RES_OK);
	pub(mh, p, "+/+/+/+/+/+/+/+/+/+/z", "x", 0); /* a literal level "+" */
	assert_int_equal(drain_count(mh, s[0], BUS_OP_PUBLISH), 0);
	mh->skip_checks = false;
	mh_run(mh);
	/* the rest in a scrambled order, checked after each step */
	for (unsigned i = 0; i < 1023; i++) {
		unsigned bits = (i * 389u) % 1023u;
		if (i % 64 == 0)
			mh->skip_checks = false;
		adversarial_mask(bits, mask);
		assert_int_equal(mh_ack(mh, s[0],
		                        mh_frame(mh, s[0], BUS_OP_UNSUBSCRIBE, 1,
		                                 mask, strlen(mask))),
		                 BUS_RES_OK);
		mh->skip_checks = true;
	}
	mh->skip_checks = false;
	mh_run(mh);
	assert_int_equal(mh->core->trie.nodes, 0);
	pub(mh, p, ADV_HIT, "x", 0);
	assert_int_equal(drain_count(mh, s[0], BUS_OP_PUBLISH), 0);
	end_host(mh);
}

/* Topic statistics: one row per prefix of the configured depth, the
 * "other" row past the table; control/broker is the broker's alone. */
static void test_topic_stats_and_control_broker(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.topic_stats_rows = 3; /* .broker/info (registrations) and two */
	struct memhost *mh = new_host(&cfg);
	int p = mh_client(mh, "p", LOCAL), s = mh_client(mh, "s", LOCAL);
	sub(mh, s, "events/#");
	pub(mh, p, "events/process/lifecycle/1", "abc", 1);
	pub(mh, p, "events/process/lifecycle/2", "de", 1);
	pub(mh, p, "events/network/flow", "x", 1);
	pub(mh, p, "other/a", "y", 1);   /* no subscriber; table full */
	const struct bus_tstats *t = &mh->core->ts;
	assert_int_equal(t->n, 3);
	assert_string_equal(t->rows[0].key, ".broker/info");
	assert_string_equal(t->rows[1].key, "events/process/lifecycle");
	assert_int_equal(t->rows[1].frames_in, 2);
	assert_int_equal(t->rows[1].bytes_in, 5);
	assert_int_equal(t->rows[1].frames_out, 2);
	assert_int_equal(t->rows[1].subscribers, 1);
	assert_int_equal(t->rows[1].drops, 0);
	assert_string_equal(t->rows[2].key, "events/network/flow");
	assert_int_equal(t->other.frames_in, 1);
	assert_int_equal(t->other.frames_out, 0);
	uint64_t before = stats(mh).rejects_access;
	pub(mh, p, BUS_STATS_TOPIC, "forged", 1);
	pub(mh, p, "control/brokers", "fine", 1);
	assert_int_equal(stats(mh).rejects_access, before + 1);
	end_host(mh);
}

/* The checker that runs after every memhost/memnet step can fail. */
static void test_invariant_checker_catches_breakage(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int s = mh_client(mh, "s", LOCAL);
	sub(mh, s, "a/#");
	char why[256];
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 0);
	mh->core->queued_bytes += 1;
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 BUS_EPROTO);
	assert_non_null(strstr(why, "queued_bytes"));
	mh->core->queued_bytes -= 1;
	struct bus_conn *c = mh->c[s].conn;
	/* a subscription the trie does not hold */
	bus__trie_remove(&mh->core->a, &mh->core->trie, "a/#", 3, c);
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 BUS_EPROTO);
	assert_non_null(strstr(why, "trie holds"));
	assert_int_equal(bus__trie_add(&mh->core->a, &mh->core->trie, "a/#", 3,
	                               c),
	                 0);
	/* a subscription of a connection not on the list (gone) */
	struct bus_conn ghost = *c;
	ghost.check_live = 0;
	assert_int_equal(bus__trie_add(&mh->core->a, &mh->core->trie, "a/b", 3,
	                               &ghost),
	                 0);
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 BUS_EPROTO);
	assert_non_null(strstr(why, "dead or unregistered"));
	bus__trie_remove(&mh->core->a, &mh->core->trie, "a/b", 3, &ghost);
	/* in the input FIFO without being paused for it, and a gone one */
	mh->core->in_first = mh->core->in_last = c;
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 BUS_EPROTO);
	assert_non_null(strstr(why, "in the FIFO 1"));
	ghost.in_next = NULL;
	mh->core->in_first = mh->core->in_last = &ghost;
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 BUS_EPROTO);
	assert_non_null(strstr(why, "input FIFO: a dead connection"));
	mh->core->in_first = mh->core->in_last = NULL;
	assert_int_equal(bus_core_check_invariants(mh->core, why, sizeof(why)),
	                 0);
	end_host(mh);
}

static void test_keepalive_nops_and_idle_drop(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	cfg.timeout_ns = 4 * SEC;
	struct memhost *mh = new_host(&cfg);
	int a = mh_client(mh, "a", LOCAL);
	int b = mh_client(mh, "b", LOCAL);
	static const uint8_t ping[9] = {0};
	for (int t = 0; t < 6; t++) { /* b pings every second, a is silent */
		mh_advance(mh, SEC);
		mh_send(mh, b, ping, sizeof(ping));
	}
	assert_true(mh->c[a].closed); /* silent for 5 s = 1.25 x 4 s */
	assert_false(mh->c[b].closed);
	assert_int_equal(mh->c[b].out_len % 6, 0);
	assert_true(mh->c[b].out_len >= 2 * 6); /* NOPs every 2 s */
	assert_memory_equal(mh->c[b].out, "\0\0\0\0\0\0", 6);
	assert_int_equal(stats(mh).disconnects_idle, 1);
	end_host(mh);
}

/* 250 connections a millisecond apart, every other one left in its
 * handshake: each of those is cut at its own deadline, to the nanosecond,
 * and no other (the timer's heap: broker/core/timer.c). */
static void test_deadlines_of_many_connections(void **state)
{
	(void)state;
	enum { N = 250 };
	const uint64_t ms = SEC / 1000;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false); /* room for 1,000 */
	struct memhost *mh = new_host(&cfg);
	int id[N];
	for (int i = 0; i < N; i++) {
		if (i)
			mh_advance(mh, ms);
		id[i] = mh_connect(mh, LOCAL);
		if (i % 2 == 0) {
			char name[16];
			int len = snprintf(name, sizeof(name), "c%d", i);
			mh_handshake(mh, id[i], name, (size_t)len);
		}
	}
	mh_advance(mh, 5 * SEC - (N - 1) * ms - 1); /* 1 ns before the first */
	for (int k = 0; k <= N; k++) {
		for (int j = 0; j < N; j++)
			assert_int_equal(mh->c[id[j]].closed, j % 2 == 1 && j < k);
		assert_int_equal(stats(mh).rejects_handshake, k / 2);
		mh_advance(mh, ms);
	}
	assert_int_equal(stats(mh).disconnects_idle, 0);
	end_host(mh);
}

static void test_handshake_step_timeout(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int a = mh_connect(mh, LOCAL);
	mh_advance(mh, 5 * SEC - 1);
	assert_false(mh->c[a].closed);
	mh_advance(mh, 1);
	assert_true(mh->c[a].closed);
	end_host(mh);
}

static void test_secondary_teardown_and_info(void **state)
{
	(void)state;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, true);
	struct memhost *mh = new_host(&cfg);
	int w = mh_client(mh, "watch", LOCAL);
	sub(mh, w, ".broker/info");
	struct mh_msg m;
	while (mh_next(mh, w, &m))
		;
	int p = mh_client(mh, "agent", LOCAL);
	int s = mh_client(mh, "agent%%w", LOCAL);
	assert_true(mh_next(mh, w, &m)); /* reg agent, not the secondary */
	assert_string_equal(m.topic, ".broker/info");
	assert_false(mh_next(mh, w, &m));
	mh->c[p].close_requested = true; /* peer hangs up */
	mh_run(mh);
	assert_true(mh->c[s].closed);
	assert_true(mh_next(mh, w, &m)); /* unreg agent */
	assert_false(mh_next(mh, w, &m));
	end_host(mh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_and_publish_at_every_split),
	    cmocka_unit_test(test_one_byte_at_a_time),
	    cmocka_unit_test(test_name_limit_at_and_past),
	    cmocka_unit_test(test_connections_limit),
	    cmocka_unit_test(test_subscription_limit_at_and_past),
	    cmocka_unit_test(test_topic_levels_at_and_past),
	    cmocka_unit_test(test_payload_limit_closes_only_offender),
	    cmocka_unit_test(test_slow_consumer_policies),
	    cmocka_unit_test(test_block_is_the_default_for_every_client),
	    cmocka_unit_test(
	        test_a_sender_that_cannot_hear_still_gets_its_frames_delivered),
	    cmocka_unit_test(test_block_high_water_at_and_past),
	    cmocka_unit_test(test_block_low_water_at_and_above),
	    cmocka_unit_test(test_block_stalled_receiver_cut_at_deadline),
	    cmocka_unit_test(test_block_waiters_take_turns),
	    cmocka_unit_test(test_block_sender_waits_for_its_own_acks),
	    cmocka_unit_test(test_shared_frame_counts_once_broker_wide),
	    cmocka_unit_test(test_total_cap_does_not_cut_receivers_of_one_frame),
	    cmocka_unit_test(test_total_cap_acts_on_the_largest_holder),
	    cmocka_unit_test(test_input_budget_pauses_a_reader_not_the_broker),
	    cmocka_unit_test(test_input_budget_owner_that_stalls_is_cut),
	    cmocka_unit_test(test_input_budget_paused_reader_keeps_its_idle_time),
	    cmocka_unit_test(test_input_budget_owner_that_trickles_is_cut),
	    cmocka_unit_test(test_secondary_of_nobody_and_defaults),
	    cmocka_unit_test(test_allocations_per_publish_do_not_grow_with_receivers),
	    cmocka_unit_test(test_alloc_failure_in_publish_is_never_silent),
	    cmocka_unit_test(
	        test_a_sender_waiting_for_itself_is_read_again_when_deaf),
	    cmocka_unit_test(test_alloc_failure_in_subscribe_cuts),
	    cmocka_unit_test(test_alloc_failure_of_an_ack_cuts),
	    cmocka_unit_test(test_broker_rpc_any_call_id),
	    cmocka_unit_test(test_broadcast_masks),
	    cmocka_unit_test(test_broker_stats_is_one_map),
	    cmocka_unit_test(test_broker_client_list),
	    cmocka_unit_test(test_diagnostics_lists_a_waiting_publisher),
	    cmocka_unit_test(test_subscription_bytes_limit),
	    cmocka_unit_test(test_announced_within_the_failing_write),
	    cmocka_unit_test(test_trie_visits_bounded_by_depth),
	    cmocka_unit_test(test_trie_visits_bounded_on_adversarial_masks),
	    cmocka_unit_test(test_covered_masks_return_when_their_cover_goes),
	    cmocka_unit_test(test_invariant_checker_catches_breakage),
	    cmocka_unit_test(test_topic_stats_and_control_broker),
	    cmocka_unit_test(test_keepalive_nops_and_idle_drop),
	    cmocka_unit_test(test_deadlines_of_many_connections),
	    cmocka_unit_test(test_handshake_step_timeout),
	    cmocka_unit_test(test_secondary_teardown_and_info),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
