/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_bridge.c — busrt-bridge's decisions (services/bridge.c): subjects
 * from topics, message ids from event ids (stable) or per-sender counts,
 * and the window: a frame leaves it only once JetStream stored it, a
 * failed, timed-out or disconnected publish goes out again with the same
 * id, answers out of order free only the stored prefix, and the
 * high/low-water marks pause and resume reading.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bridge.h"
#include "bus/pb.h"

static void check(const struct bus_bridge *b)
{
	char why[256];
	if (bus_br_check(b, why, sizeof(why)))
		fail_msg("bus_br_check: %s", why);
}

static void setup(struct bus_bridge *b, size_t frames)
{
	struct bus_br_config cfg;
	bus_br_config_defaults(&cfg);
	snprintf(cfg.host, sizeof(cfg.host), "h1");
	cfg.incarnation = 77;
	cfg.window_frames = frames;
	cfg.ack_timeout_ns = 1000;
	assert_int_equal(bus_br_init(b, &cfg), 0);
}

/* A BusrtEvent with event_id id, packed (free it). */
static uint8_t *event(const char *id, size_t *len)
{
	Daemoneye__BusrtEvent ev = DAEMONEYE__BUSRT_EVENT__INIT;
	ev.event_id = (char *)id;
	ev.sequence = 1;
	uint8_t *p = bus_pb_pack(&ev.base, len);
	assert_non_null(p);
	return p;
}

/* The defaults the configuration's are built from (config.h's bridge:
 * section repeats them): nothing set but the documented values. */
static void test_defaults(void **state)
{
	(void)state;
	struct bus_br_config c;
	memset(&c, 0x5a, sizeof(c));
	bus_br_config_defaults(&c);
	assert_string_equal(c.host, ""); /* the caller's to set */
	assert_string_equal(c.prefix, "daemoneye");
	assert_int_equal(c.incarnation, 0);
	assert_int_equal(c.window_frames, 65536);
	assert_int_equal(c.window_bytes, 64u << 20);
	assert_int_equal(c.ack_timeout_ns, 10000000000ull);
	struct bus_bridge b;
	assert_int_equal(bus_br_init(&b, &c), BUS_EINVAL); /* no host yet */
}

static void test_subjects(void **state)
{
	(void)state;
	char s[128];
	assert_int_equal(bus_br_subject("daemoneye", "h1",
	                            "events/process/lifecycle", s, sizeof(s)),
	                 0);
	assert_string_equal(s, "daemoneye.h1.events.process.lifecycle");
	/* NATS's own characters and empty tokens never reach a subject */
	assert_int_equal(bus_br_subject("p", "h", "a.b/*/>/ x//", s, sizeof(s)), 0);
	assert_string_equal(s, "p.h.a_b._._._x._._");
	assert_int_equal(bus_br_subject("p", "h", "", s, sizeof(s)), 0);
	assert_string_equal(s, "p.h._");
	assert_int_equal(bus_br_subject("p", "h", "abcdef", s, 8), BUS_EDATA);
	char h[16];
	bus_br_host_token("web.01 x", h, sizeof(h));
	assert_string_equal(h, "web_01_x");
	bus_br_host_token("", h, sizeof(h));
	assert_string_equal(h, "_");

	struct bus_bridge b;
	struct bus_br_config cfg;
	bus_br_config_defaults(&cfg);
	assert_int_equal(bus_br_init(&b, &cfg), BUS_EINVAL); /* no host */
	snprintf(cfg.host, sizeof(cfg.host), "a.b");
	assert_int_equal(bus_br_init(&b, &cfg), BUS_EINVAL);
	snprintf(cfg.host, sizeof(cfg.host), "ok");
	snprintf(cfg.prefix, sizeof(cfg.prefix), "fleet..x");
	assert_int_equal(bus_br_init(&b, &cfg), BUS_EINVAL);
	snprintf(cfg.prefix, sizeof(cfg.prefix), "fleet.eu");
	assert_int_equal(bus_br_init(&b, &cfg), 0);
	bus_br_free(&b);
}

static void test_msgids(void **state)
{
	(void)state;
	struct bus_bridge b;
	setup(&b, 100);
	size_t len;
	uint8_t *ev = event("collector.process.p1/5/9", &len);
	assert_int_equal(bus_br_take(&b, "collector.process.p1",
	                         "events/process/lifecycle", ev, len), 0);
	assert_int_equal(bus_br_take(&b, "tool", "x/y", (const uint8_t *)"ab", 2),
	                 0);
	assert_int_equal(bus_br_take(&b, "tool", "x/y", (const uint8_t *)"", 0), 0);
	assert_int_equal(bus_br_take(&b, "other", "x", (const uint8_t *)"a", 1), 0);
	/* the same event again (a collector's re-send): the same id */
	assert_int_equal(bus_br_take(&b, "collector.process.p1",
	                         "events/process/lifecycle", ev, len), 0);
	free(ev);
	check(&b);
	const char *want[] = {"h1/collector.process.p1/5/9", "h1/tool/77/1",
	                      "h1/tool/77/2", "h1/other/77/1",
	                      "h1/collector.process.p1/5/9"};
	for (size_t i = 0; i < 5; i++) {
		struct bus_br_entry *e = bus_br_next(&b);
		assert_non_null(e);
		assert_string_equal(e->msgid, want[i]);
		bus_br_sent(&b, e, 0);
	}
	assert_null(bus_br_next(&b));
	assert_int_equal(b.st.taken, 5);
	assert_int_equal(b.st.events, 2);
	/* both copies of the event are answered under one id */
	assert_false(bus_br_answer(&b, want[0], true, false));
	assert_false(bus_br_answer(&b, want[4], true, true));
	assert_int_equal(b.st.duplicates, 1);
	assert_int_equal(bus_br_pending(&b), 3);
	check(&b);
	bus_br_free(&b);
}

static void test_window(void **state)
{
	(void)state;
	struct bus_bridge b;
	setup(&b, 8);
	char id[64];
	for (int i = 1; i <= 8; i++)
		assert_int_equal(bus_br_take(&b, "s", "t", (const uint8_t *)"x", 1),
		                 0);
	assert_true(bus_br_paused(&b)); /* 8 frames: the high-water mark */
	assert_int_equal(b.st.paused, 1);
	for (int i = 0; i < 8; i++)
		bus_br_sent(&b, bus_br_next(&b), 10);
	check(&b);

	/* out of order: 3 stored first frees nothing */
	assert_false(bus_br_answer(&b, "h1/s/77/3", true, false));
	assert_int_equal(b.n, 8);
	/* 2 failed: it goes out again, first in line */
	assert_false(bus_br_answer(&b, "h1/s/77/2", false, false));
	struct bus_br_entry *e = bus_br_next(&b);
	assert_non_null(e);
	assert_string_equal(e->msgid, "h1/s/77/2");
	bus_br_sent(&b, e, 20);
	assert_int_equal(e->sends, 2);
	assert_int_equal(b.st.resent, 1);
	assert_null(bus_br_next(&b));
	check(&b);

	/* 1 stored: 1 freed, 2 still outstanding blocks 3 */
	assert_false(bus_br_answer(&b, "h1/s/77/1", true, false));
	assert_int_equal(b.n, 7);
	assert_true(bus_br_paused(&b));
	/* 2 and 4 stored: 1..4 gone, 4 frames left: the low-water mark */
	assert_false(bus_br_answer(&b, "h1/s/77/2", true, false));
	assert_true(bus_br_answer(&b, "h1/s/77/4", true, false));
	assert_int_equal(b.n, 4);
	assert_false(bus_br_paused(&b));
	/* an answer for a frame gone: counted, nothing else */
	assert_false(bus_br_answer(&b, "h1/s/77/1", true, false));
	assert_int_equal(b.st.late_acks, 1);
	check(&b);

	/* the connection drops: 5..8 go out again, in order */
	bus_br_reset(&b);
	for (int i = 5; i <= 8; i++) {
		e = bus_br_next(&b);
		snprintf(id, sizeof(id), "h1/s/77/%d", i);
		assert_string_equal(e->msgid, id);
		bus_br_sent(&b, e, 100);
	}
	assert_null(bus_br_next(&b));
	/* no answer: past ack_timeout_ns each is re-sent */
	assert_int_equal(bus_br_expire(&b, 1099), 0);
	assert_int_equal(bus_br_expire(&b, 1100), 4);
	e = bus_br_next(&b);
	assert_string_equal(e->msgid, "h1/s/77/5");
	/* a late error for an entry already UNSENT changes nothing */
	assert_false(bus_br_answer(&b, "h1/s/77/6", false, false));
	check(&b);
	for (; (e = bus_br_next(&b));)
		bus_br_sent(&b, e, 2000);
	for (int i = 5; i <= 8; i++) {
		snprintf(id, sizeof(id), "h1/s/77/%d", i);
		bus_br_answer(&b, id, true, i == 5);
	}
	assert_int_equal(b.n, 0);
	assert_int_equal(bus_br_held_bytes(&b), 0);
	assert_int_equal(b.st.taken, 8);
	assert_int_equal(b.st.stored, 8);
	check(&b);
	bus_br_free(&b);
}

/* Embedded in the agent: a collector is told only what JetStream
 * stored, whatever order the PubAcks come in. */
static void test_stored_through(void **state)
{
	(void)state;
	struct bus_bridge b;
	setup(&b, 100);
	char id[64];
	for (int i = 1; i <= 5; i++) {
		Daemoneye__BusrtEvent ev = DAEMONEYE__BUSRT_EVENT__INIT;
		snprintf(id, sizeof(id), "c1/9/%d", i);
		ev.event_id = id;
		ev.incarnation = 9;
		ev.sequence = (uint64_t)i;
		size_t len;
		uint8_t *p = bus_pb_pack(&ev.base, &len);
		assert_int_equal(bus_br_take(&b, "c1", "events/x", p, len), 0);
		free(p);
	}
	/* another sender's frame in between changes nothing for c1 */
	assert_int_equal(bus_br_take(&b, "c2", "events/x", (const uint8_t *)"z",
	                             1), 0);
	struct bus_br_entry *e;
	while ((e = bus_br_next(&b)))
		bus_br_sent(&b, e, 0);
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 5), 0);
	bus_br_answer(&b, "h1/c1/9/2", true, false); /* out of order */
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 5), 0);
	bus_br_answer(&b, "h1/c1/9/1", true, false);
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 5), 2);
	/* the agent processed only up to 1: never more than that */
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 1), 1);
	bus_br_answer(&b, "h1/c1/9/4", true, false);
	bus_br_answer(&b, "h1/c1/9/3", false, false); /* failed: held */
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 5), 2);
	e = bus_br_next(&b);
	bus_br_sent(&b, e, 1);
	bus_br_answer(&b, "h1/c1/9/3", true, false);
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 5), 4);
	/* another incarnation is not held back by this one */
	assert_int_equal(bus_br_stored_through(&b, "c1", 10, 7), 7);
	bus_br_answer(&b, "h1/c1/9/5", true, false);
	assert_int_equal(bus_br_stored_through(&b, "c1", 9, 5), 5);
	check(&b);
	bus_br_free(&b);
}

/* Many frames through a small ring: it grows and wraps, every frame is
 * stored exactly once whatever the answers' order and failures. */
static void test_wrap(void **state)
{
	(void)state;
	struct bus_bridge b;
	setup(&b, 1u << 20);
	uint64_t rng = 12345;
	char id[64];
	int taken = 0, next_ans = 1;
	while (next_ans <= 5000) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		if (taken < 5000 && (rng >> 60) < 9) {
			char t[16];
			snprintf(t, sizeof(t), "t/%d", taken % 7);
			assert_int_equal(bus_br_take(&b, "s", t, (const uint8_t *)t,
			                         strlen(t)), 0);
			taken++;
		}
		struct bus_br_entry *e;
		while ((e = bus_br_next(&b)))
			bus_br_sent(&b, e, 0);
		/* answer the oldest outstanding: fail one in 8 */
		if (b.n) {
			snprintf(id, sizeof(id), "%s", b.q[b.head]->msgid);
			bool ok = (rng >> 33) % 8 != 0;
			bus_br_answer(&b, id, ok, false);
			if (ok)
				next_ans++;
		}
		check(&b);
	}
	assert_int_equal(b.st.stored, 5000);
	assert_int_equal(b.n, 0);
	assert_true(b.st.errors > 0);
	assert_int_equal(b.st.published, 5000 + b.st.resent);
	bus_br_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_subjects),
		cmocka_unit_test(test_msgids),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_stored_through),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
