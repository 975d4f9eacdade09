/* SPDX-License-Identifier: Apache-2.0 */
/* test_e2e.c — end to end, without a bus: the collector's outbox (kept
 * until acknowledged, bounded, never losing what is unsent), the
 * collector around it (EAGAIN keeps events and delays the next cycle, a
 * reconnect re-sends, the heartbeat forgets what the agent processed,
 * resyncs re-send or restate), and the agent's intake (in sequence,
 * duplicates dropped, gaps resynced, the view of the table). The two are
 * wired by hand: what the collector publishes is what the intake gets,
 * unless the test loses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/daemoneye.h"

#define MS 1000000ull
#define S (1000 * MS)

/* ---- the outbox ------------------------------------------------------------ */
static uint8_t *blob(size_t n)
{
	uint8_t *p = malloc(n);
	memset(p, 'e', n);
	return p;
}

struct pub_log {
	uint64_t n;
	int refuse_after; /* -1: never */
};

static int log_publish(void *host, const char *topic, const uint8_t *data,
                       size_t len)
{
	(void)topic, (void)data, (void)len;
	struct pub_log *l = host;
	if (l->refuse_after >= 0 && l->n >= (uint64_t)l->refuse_after)
		return BUS_EAGAIN;
	l->n++;
	return 0;
}

static void test_outbox_keeps_until_acknowledged(void **state)
{
	(void)state;
	struct de_outbox o;
	de_outbox_init(&o, 1000);
	for (uint64_t s = 1; s <= 5; s++)
		assert_int_equal(de_outbox_add(&o, s, DE_TOPIC_LIFECYCLE, blob(100),
		                               100, false), 0);
	struct pub_log l = {0, 3};
	assert_int_equal(de_outbox_pump(&o, log_publish, &l), BUS_EAGAIN);
	assert_int_equal(o.sent, 3);
	assert_int_equal(de_outbox_unsent(&o), 2);
	assert_int_equal(de_outbox_last_sent(&o, 5), 3);
	de_outbox_ack(&o, 2); /* the agent processed 1, 2 */
	assert_int_equal(o.n, 3);
	assert_int_equal(o.sent, 1);
	/* a rewind to what is kept works; to what was forgotten does not */
	assert_false(de_outbox_rewind(&o, 2));
	assert_true(de_outbox_rewind(&o, 3));
	assert_int_equal(o.sent, 0);
	assert_false(de_outbox_rewind(&o, 7));
	l.refuse_after = -1;
	assert_int_equal(de_outbox_pump(&o, log_publish, &l), 0);
	assert_int_equal(de_outbox_last_sent(&o, 5), 5);
	/* out of order: refused, nothing kept */
	assert_int_equal(de_outbox_add(&o, 9, DE_TOPIC_LIFECYCLE, blob(1), 1,
	                               false), BUS_EINVAL);
	de_outbox_free(&o);
}

/* At the bound: sent events are forgotten, oldest first; unsent ones
 * never — the add is refused instead (the collector declares a gap). */
static void test_outbox_bound_forgets_sent_never_unsent(void **state)
{
	(void)state;
	struct de_outbox o;
	de_outbox_init(&o, 300);
	for (uint64_t s = 1; s <= 3; s++)
		assert_int_equal(de_outbox_add(&o, s, DE_TOPIC_LIFECYCLE, blob(100),
		                               100, false), 0);
	struct pub_log l = {0, 2};
	de_outbox_pump(&o, log_publish, &l); /* 1, 2 sent; 3 waits */
	assert_int_equal(de_outbox_add(&o, 4, DE_TOPIC_LIFECYCLE, blob(100),
	                               100, false), 0);
	assert_int_equal(o.forgotten, 1); /* seq 1 made room */
	assert_int_equal(de_outbox_add(&o, 5, DE_TOPIC_LIFECYCLE, blob(100),
	                               100, false), 0);
	assert_int_equal(o.forgotten, 2);
	/* only unsent left (3, 4, 5): no more room */
	assert_int_equal(de_outbox_add(&o, 6, DE_TOPIC_LIFECYCLE, blob(100),
	                               100, false), BUS_ELIMIT);
	assert_int_equal(o.n, 3);
	/* a gap marker goes past the bound */
	assert_int_equal(de_outbox_add(&o, 6, DE_TOPIC_LIFECYCLE, blob(10), 10,
	                               true), 0);
	de_outbox_free(&o);
}

/* ---- a collector and an intake, wired by hand --------------------------------- */
/* Like a bus, the wire hands things over after the current call returns
 * (no callback inside a call): events and resync requests queue, and
 * settle() delivers them until nothing moves. */
#define WIRE_MAX 4096
struct wire {
	struct de_collector col;
	struct de_intake in;
	uint64_t now;
	int refuse;            /* BUS_EAGAIN / BUS_ECLOSED, or 0 */
	int lose_next;         /* events to lose on the way */
	uint8_t *q[WIRE_MAX];  /* events on the way */
	size_t qlen[WIRE_MAX], nq;
	bool resync_pending;   /* a request on the way */
	Daemoneye__ResyncRequest last_q;
	uint64_t resyncs_asked;
	bool answer_resyncs;   /* serve them (else they are never answered) */
	char notes[1024];      /* the intake's notes: "what: detail; ..." */
	/* what went out, in order: E an event, C capabilities, S the
	 * shutdown answer (with .control set) */
	char order[512];
	size_t n_order;
	int refuse_control;
	int stops;
	uint8_t ctl[1024];     /* the last control message */
	size_t ctl_len;
};

static uint64_t w_now(void *h) { return ((struct wire *)h)->now; }
static int64_t w_wall(void *h) { return (int64_t)(((struct wire *)h)->now / MS); }

static int w_publish(void *h, const char *topic, const uint8_t *data,
                     size_t len)
{
	(void)topic;
	struct wire *w = h;
	if (w->refuse)
		return w->refuse;
	if (w->lose_next > 0) {
		w->lose_next--;
		return 0; /* handed over, lost on the way */
	}
	assert_true(w->nq < WIRE_MAX);
	if (w->n_order < sizeof(w->order) - 1)
		w->order[w->n_order++] = 'E';
	w->q[w->nq] = malloc(len);
	memcpy(w->q[w->nq], data, len);
	w->qlen[w->nq++] = len;
	return 0;
}

static int w_control(void *h, const char *topic, const uint8_t *data,
                     size_t len)
{
	struct wire *w = h;
	if (w->refuse_control)
		return w->refuse_control;
	assert_true(len <= sizeof(w->ctl));
	memcpy(w->ctl, data, len);
	w->ctl_len = len;
	if (w->n_order < sizeof(w->order) - 1)
		w->order[w->n_order++] =
		        !strcmp(topic, DE_TOPIC_CAPABILITIES) ? 'C' : 'S';
	return 0;
}

static void w_stop(void *h)
{
	((struct wire *)h)->stops++;
}

static void w_note(void *h, const struct de_stream *st, const char *what,
                   const char *detail)
{
	(void)st;
	struct wire *w = h;
	size_t n = strlen(w->notes);
	snprintf(w->notes + n, sizeof(w->notes) - n, "%s: %s; ", what, detail);
}

static void w_resync(void *h, const struct de_stream *st,
                     const Daemoneye__ResyncRequest *q)
{
	(void)st;
	struct wire *w = h;
	w->resyncs_asked++;
	w->last_q = *q;
	w->last_q.collector_id = NULL; /* not kept: the stream's name */
	w->resync_pending = true;
}

/* The agent's request served by the collector's real handler. */
static void serve_resync(struct wire *w)
{
	w->resync_pending = false;
	if (!w->answer_resyncs)
		return;
	struct de_answer a = {0};
	Daemoneye__ResyncRequest q = w->last_q;
	q.collector_id = "p1";
	de_collector_call(&w->col, "collector.resync", DE_AGENT_NAME, &q.base,
	                  &a);
	Daemoneye__ResyncResponse *r = (Daemoneye__ResyncResponse *)bus_pb_unpack(
	        &daemoneye__resync_response__descriptor, a.buf, a.len,
	        BUS_PB_BUDGET_DEFAULT);
	free(a.buf);
	de_intake_resync_done(&w->in, w->col.bus_name, q.resync_id, r, w->now);
	bus_pb_free(r ? &r->base : NULL);
}

static void settle(struct wire *w)
{
	for (int guard = 0; guard < 100; guard++) {
		size_t n = w->nq;
		w->nq = 0;
		uint8_t *q[WIRE_MAX];
		size_t ql[WIRE_MAX];
		memcpy(q, w->q, n * sizeof(*q));
		memcpy(ql, w->qlen, n * sizeof(*ql));
		for (size_t i = 0; i < n; i++) {
			de_intake_event(&w->in, w->col.bus_name, q[i], ql[i], w->now);
			free(q[i]);
		}
		bool asked = w->resync_pending;
		if (asked)
			serve_resync(w);
		if (!n && !asked)
			return;
	}
	fail_msg("the wire did not settle");
}

static void wire_init(struct wire *w)
{
	memset(w, 0, sizeof(*w));
	w->now = 1 * S;
	struct de_collector_ops ops = {.now = w_now, .wall_ms = w_wall,
	                               .publish = w_publish};
	assert_int_equal(de_collector_init(&w->col, "p1", 77, 100, &ops, w), 0);
	struct de_intake_ops iops = {.resync = w_resync, .note = w_note};
	de_intake_init(&w->in, &iops, w, S);
	w->answer_resyncs = true;
}

static void wire_free(struct wire *w)
{
	for (size_t i = 0; i < w->nq; i++)
		free(w->q[i]);
	de_collector_free(&w->col);
	de_intake_free(&w->in);
}

/* A table of n processes, pids from base, running cmd (NUL-separated
 * arguments, len bytes). */
static void cycle_cmd(struct wire *w, uint32_t base, size_t n, char *cmd,
                      size_t len)
{
	struct de_snapshot s;
	de_snapshot_init(&s);
	s.taken_ns = w->now;
	for (size_t i = 0; i < n; i++) {
		struct de_proc p = {.pid = base + (uint32_t)i, .ppid = 1,
		                    .start_ticks = 5, .start_time_ms = 5000,
		                    .accessible = true, .file_exists = true,
		                    .name = "worker", .exe = "/usr/bin/worker",
		                    .cmdline = cmd, .cmdline_len = len};
		assert_int_equal(de_snapshot_add(&s, &p), 0);
	}
	de_collector_cycle(&w->col, &s);
	settle(w);
}

static void cycle(struct wire *w, uint32_t base, size_t n)
{
	char cmd[] = "worker\0--job";
	cycle_cmd(w, base, n, cmd, sizeof(cmd));
}

/* The agent's heartbeat: what it processed goes to the collector, and
 * the collector's last sequence comes back. */
static void heartbeat(struct wire *w)
{
	Daemoneye__HeartbeatRequest q;
	de_heartbeat_request(&w->in, w->col.bus_name, 1, 0, &q);
	struct de_answer a = {0};
	de_collector_call(&w->col, "health.heartbeat", DE_AGENT_NAME, &q.base,
	                  &a);
	Daemoneye__HeartbeatResponse *r =
	        (Daemoneye__HeartbeatResponse *)bus_pb_unpack(
	                &daemoneye__heartbeat_response__descriptor, a.buf, a.len,
	                BUS_PB_BUDGET_DEFAULT);
	free(a.buf);
	assert_non_null(r);
	settle(w); /* what the collector sent before its reply comes first */
	de_intake_heartbeat(&w->in, w->col.bus_name, r->incarnation,
	                    r->last_sequence, w->now);
	bus_pb_free(&r->base);
	settle(w);
}

static const struct de_stream *stream(struct wire *w)
{
	return de_intake_find(&w->in, w->col.bus_name);
}

/* EAGAIN keeps what the bus refused; the next cycle waits for it; the
 * drain sends it in order and the delayed cycle runs then. */
static void test_eagain_keeps_events_and_delays_the_cycle(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	w.refuse = BUS_EAGAIN;
	cycle(&w, 100, 10);
	assert_int_equal(de_outbox_unsent(&w.col.outbox), 10);
	assert_false(de_collector_cycle_due(&w.col));
	assert_false(de_collector_cycle_due(&w.col)); /* counted once */
	assert_int_equal(w.col.stats.cycles_delayed, 1);
	w.refuse = 0;
	assert_true(de_collector_pump(&w.col)); /* drained: the cycle is due */
	settle(&w);
	assert_int_equal(stream(&w)->next_seq, 11);
	assert_int_equal(stream(&w)->view.n, 10);
	assert_int_equal(w.col.stats.events_lost, 0);
	wire_free(&w);
}

/* A reconnect re-sends what the agent has not acknowledged; the agent
 * drops what it had; a heartbeat makes the collector forget it. */
static void test_reconnect_resends_and_heartbeat_forgets(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	cycle(&w, 100, 5);
	assert_int_equal(w.col.outbox.n, 5);
	de_collector_on_ready(&w.col); /* a reconnect */
	settle(&w);
	assert_int_equal(stream(&w)->st.duplicates, 5);
	assert_int_equal(stream(&w)->st.events, 5);
	heartbeat(&w);
	assert_int_equal(w.col.outbox.n, 0);
	assert_int_equal(w.col.acked, 5);
	wire_free(&w);
}

/* Events lost on the way: the next one is ahead, the agent asks a
 * re-send from the first missing one, and gets everything in order. */
static void test_gap_is_filled_by_a_resend(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	cycle(&w, 100, 3);
	w.lose_next = 2;
	cycle(&w, 200, 3); /* 3 TERMINATIONs + 3 DISCOVERYs: 2 lost */
	const struct de_stream *st = stream(&w);
	assert_int_equal(w.resyncs_asked, 1);
	assert_false(w.last_q.full);
	assert_int_equal(w.last_q.from_sequence, 4);
	assert_int_equal(st->next_seq, 10); /* all 9 processed */
	assert_int_equal(st->st.gaps, 0);   /* nothing was lost for good */
	assert_int_equal(st->view.n, 3);
	const struct de_view_proc *v = de_view_find(&st->view, 200, 5000);
	assert_non_null(v);
	assert_string_equal(v->name, "worker");
	assert_string_equal(v->exe, "/usr/bin/worker");
	assert_string_equal(v->cmdline, "worker --job");
	assert_null(de_view_find(&st->view, 100, 5000));
	/* an exec: the same process, another command line, in the view */
	char other[] = "worker\0--other";
	cycle_cmd(&w, 200, 1, other, sizeof(other));
	v = de_view_find(&st->view, 200, 5000);
	assert_non_null(v);
	assert_string_equal(v->cmdline, "worker --other");
	wire_free(&w);
}

/* The tail lost (nothing after it to show the gap): the heartbeat's
 * reply does. */
static void test_lost_tail_shows_in_the_heartbeat(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	w.answer_resyncs = false;
	cycle(&w, 100, 2);
	w.lose_next = 1;
	cycle(&w, 100, 3); /* one DISCOVERY: lost */
	assert_int_equal(w.resyncs_asked, 0);
	heartbeat(&w);
	assert_int_equal(w.resyncs_asked, 1);
	assert_int_equal(w.last_q.from_sequence, 3);
	/* and the agent's log says what is missing, in numbers */
	assert_non_null(strstr(w.notes, "missing: the collector sent up to 3, "
	                                "processed up to 2; "));
	w.answer_resyncs = true;
	serve_resync(&w); /* answered late: the re-send fills it */
	settle(&w);
	assert_int_equal(stream(&w)->next_seq, 4);
	wire_free(&w);
}

/* Forgotten before the agent had them (the bound): the re-send cannot
 * be, so a full resync restates the table; the jump is counted. */
static void test_forgotten_events_get_a_full_resync(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	cycle(&w, 100, 4);
	w.lose_next = 4;
	cycle(&w, 200, 2); /* 4 TERMINATIONs lost, 2 DISCOVERYs arrive... */
	/* ...and were re-sent (the outbox kept them): no gap */
	assert_int_equal(stream(&w)->st.gaps, 0);
	/* now a tail lost (2 TERMINATIONs, a DISCOVERY), and forgotten
	 * before the agent asks */
	w.lose_next = 3;
	cycle(&w, 300, 1);
	de_outbox_ack(&w.col.outbox, w.col.src.sequence); /* forgotten */
	heartbeat(&w); /* tail gap: asks; the collector restates */
	const struct de_stream *st = stream(&w);
	assert_int_equal(w.col.stats.resyncs_full, 1);
	assert_int_equal(st->st.missing, 2); /* a loss in each part */
	assert_int_equal(st->st.gaps, 1);    /* the jump */
	assert_int_equal(st->view.n, 1);
	assert_non_null(de_view_find(&st->view, 300, 5000));
	assert_int_equal(st->next_seq, w.col.src.sequence + 1);
	wire_free(&w);
}

/* A cycle whose events do not fit the outbox: the rest is lost and said
 * so (a gap marker); the agent asks for a full resync and converges. */
static void test_overflow_declares_a_gap_and_converges(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	w.col.outbox.bytes_max = 2000; /* a few events */
	w.refuse = BUS_EAGAIN;
	cycle(&w, 100, 50);
	assert_true(w.col.stats.events_lost > 0);
	assert_int_equal(w.col.stats.gaps_declared, 1);
	w.refuse = 0;
	w.col.outbox.bytes_max = 1 << 20;
	de_collector_pump(&w.col); /* the marker reaches the agent */
	settle(&w);
	const struct de_stream *st = stream(&w);
	assert_int_equal(w.col.stats.resyncs_full, 1);
	assert_int_equal(st->view.n, 50);
	wire_free(&w);
}

/* A new incarnation starts the stream again; the old one's late events
 * are stale. */
static void test_new_incarnation_and_stale_events(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	cycle(&w, 100, 2);
	struct de_event_source old = {w.col.bus_name, 77, 0, 0};
	struct de_proc p = {.pid = 9, .start_time_ms = 1, .name = "x",
	                    .exe = "/x", .cmdline = "", .cmdline_len = 0};
	struct de_event_source newer = {w.col.bus_name, 99, 0, 0};
	size_t len;
	uint8_t *b = de_event_pack(&newer, DE_TOPIC_ENUMERATION, DE_DISCOVERY,
	                           &p, 1, 0, &len);
	assert_int_equal(de_intake_event(&w.in, w.col.bus_name, b, len, w.now),
	                 1);
	free(b);
	assert_int_equal(stream(&w)->incarnation, 99);
	assert_int_equal(stream(&w)->view.n, 1);
	old.sequence = 2;
	b = de_event_pack(&old, DE_TOPIC_LIFECYCLE, DE_TERMINATION, &p, 2, 0,
	                  &len);
	assert_int_equal(de_intake_event(&w.in, w.col.bus_name, b, len, w.now),
	                 0);
	free(b);
	assert_int_equal(stream(&w)->st.stale, 1);
	assert_int_equal(de_intake_event(&w.in, w.col.bus_name,
	                                 (const uint8_t *)"junk", 4, w.now),
	                 BUS_EPROTO);
	wire_free(&w);
}

/* A collector serves its lifecycle, config and resync only to the agent,
 * health.* also to monitors; anyone else is answered -32003 and its
 * request is not acted on. */
static void test_collector_serves_by_caller(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	struct de_answer a = {0};
	Daemoneye__StopCollectorRequest sq = DAEMONEYE__STOP_COLLECTOR_REQUEST__INIT;
	assert_int_equal(de_collector_call(&w.col, "lifecycle.stop", "admin.x",
	                                   &sq.base, &a),
	                 BUS_RPC_ERR_ACCESS);
	assert_false(w.col.stopping);
	Daemoneye__UpdateConfigRequest uq = DAEMONEYE__UPDATE_CONFIG_REQUEST__INIT;
	assert_int_equal(de_collector_call(&w.col, "config.update",
	                                   "monitor.m", &uq.base, &a),
	                 BUS_RPC_ERR_ACCESS);
	Daemoneye__ResyncRequest rq = DAEMONEYE__RESYNC_REQUEST__INIT;
	assert_int_equal(de_collector_call(&w.col, "collector.resync",
	                                   "collector.process.other", &rq.base,
	                                   &a),
	                 BUS_RPC_ERR_ACCESS);
	Daemoneye__HealthCheckRequest hq = DAEMONEYE__HEALTH_CHECK_REQUEST__INIT;
	assert_int_equal(de_collector_call(&w.col, "health.check", "monitor.m",
	                                   &hq.base, &a),
	                 0);
	assert_int_equal(de_collector_call(&w.col, "health.check", "tool",
	                                   &hq.base, &a),
	                 BUS_RPC_ERR_ACCESS);
	/* another agent name: the old one is nobody now */
	assert_int_equal(de_collector_set_agent(&w.col, "agent-2"), 0);
	assert_int_equal(de_collector_call(&w.col, "lifecycle.status",
	                                   DE_AGENT_NAME, &hq.base, &a),
	                 BUS_RPC_ERR_ACCESS);
	Daemoneye__CollectorStatusRequest cq =
		DAEMONEYE__COLLECTOR_STATUS_REQUEST__INIT;
	assert_int_equal(de_collector_call(&w.col, "lifecycle.status",
	                                   "agent-2", &cq.base, &a),
	                 0);
	assert_int_equal(de_collector_call(&w.col, "lifecycle.stop", "agent-2",
	                                   &sq.base, &a),
	                 0);
	assert_true(w.col.stopping);
	free(a.buf);
	wire_free(&w);
}

/* health.metrics reports the collector's own counters, by name. */
static void test_metrics_are_the_counters(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	cycle(&w, 100, 3);
	Daemoneye__MetricsRequest q = DAEMONEYE__METRICS_REQUEST__INIT;
	struct de_answer a = {0};
	assert_int_equal(de_collector_call(&w.col, "health.metrics",
	                                   DE_AGENT_NAME, &q.base, &a),
	                 0);
	Daemoneye__MetricsResponse *r =
	    (Daemoneye__MetricsResponse *)bus_pb_unpack(
	        &daemoneye__metrics_response__descriptor, a.buf, a.len,
	        BUS_PB_BUDGET_DEFAULT);
	free(a.buf);
	assert_non_null(r);
	double events = -1, cycles = -1, interval = -1;
	for (size_t i = 0; i < r->n_metrics; i++) {
		if (!strcmp(r->metrics[i]->key, "events"))
			events = r->metrics[i]->value;
		if (!strcmp(r->metrics[i]->key, "cycles"))
			cycles = r->metrics[i]->value;
		if (!strcmp(r->metrics[i]->key, "scan_interval_ms"))
			interval = r->metrics[i]->value;
	}
	assert_true(w.col.stats.events >= 3);
	assert_true(events == (double)w.col.stats.events);
	assert_true(cycles == (double)w.col.stats.cycles);
	assert_true(interval == (double)w.col.scan_interval_ms);
	bus_pb_free(&r->base);
	wire_free(&w);
}

/* Capabilities go before any event of a connection (held while the bus
 * refuses them), again after config.update; a shutdown from the agent
 * flushes what is held, then answers after the last event, then stops. */
static void test_capabilities_first_and_shutdown_flushes(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	w.col.ops.control = w_control;
	w.col.ops.stop = w_stop;
	w.refuse_control = BUS_EAGAIN;
	de_collector_on_ready(&w.col);
	cycle(&w, 100, 3);
	assert_int_equal(w.n_order, 0); /* events wait behind them */
	assert_int_equal(de_outbox_unsent(&w.col.outbox), 3);
	w.refuse_control = 0;
	de_collector_pump(&w.col);
	settle(&w);
	assert_string_equal(w.order, "CEEE");
	Daemoneye__CollectorCapabilities *c =
	        (Daemoneye__CollectorCapabilities *)bus_pb_unpack(
	                &daemoneye__collector_capabilities__descriptor, w.ctl,
	                w.ctl_len, BUS_PB_BUDGET_DEFAULT);
	assert_non_null(c);
	assert_string_equal(c->collector_id, "p1");
	assert_string_equal(c->bus_name, "collector.process.p1");
	assert_int_equal(c->incarnation, 77);
	assert_int_equal(c->n_event_topics, 4);
	assert_true(c->n_rpc_methods >= 9);
	bus_pb_free(&c->base);
	/* a configuration change: advertised again */
	Daemoneye__CollectorConfig nc = DAEMONEYE__COLLECTOR_CONFIG__INIT;
	nc.scan_interval_ms = 500;
	Daemoneye__UpdateConfigRequest q = DAEMONEYE__UPDATE_CONFIG_REQUEST__INIT;
	q.collector_id = "p1";
	q.new_config = &nc;
	struct de_answer a = {0};
	de_collector_call(&w.col, "config.update", DE_AGENT_NAME, &q.base, &a);
	free(a.buf);
	assert_string_equal(w.order, "CEEEC");
	/* the shutdown: only from the agent, only well formed */
	Daemoneye__AgentShutdown m = DAEMONEYE__AGENT_SHUTDOWN__INIT;
	m.agent = DE_AGENT_NAME;
	m.shutdown_id = 9;
	size_t n;
	uint8_t *p = bus_pb_pack(&m.base, &n);
	assert_int_equal(de_collector_shutdown(&w.col, "monitor.x", p, n),
	                 BUS_EACCESS);
	assert_int_equal(de_collector_shutdown(&w.col, DE_AGENT_NAME,
	                                       (const uint8_t *)"\xff", 1),
	                 BUS_EPROTO);
	assert_int_equal(w.col.shutdown_id, 0);
	w.refuse = BUS_EAGAIN;
	cycle(&w, 200, 2); /* 3 TERMINATIONs + 2 DISCOVERYs, held */
	assert_int_equal(de_collector_shutdown(&w.col, DE_AGENT_NAME, p, n), 0);
	free(p);
	assert_false(de_collector_cycle_due(&w.col)); /* no more cycles */
	assert_int_equal(w.stops, 0); /* not before what it holds is out */
	w.refuse = 0;
	de_collector_pump(&w.col);
	settle(&w);
	assert_string_equal(w.order, "CEEECEEEEES");
	assert_int_equal(w.stops, 1);
	Daemoneye__CollectorShutdown *d =
	        (Daemoneye__CollectorShutdown *)bus_pb_unpack(
	                &daemoneye__collector_shutdown__descriptor, w.ctl,
	                w.ctl_len, BUS_PB_BUDGET_DEFAULT);
	assert_non_null(d);
	assert_int_equal(d->shutdown_id, 9);
	assert_int_equal(d->last_sequence, 8);
	assert_int_equal(stream(&w)->next_seq, 9); /* the agent has them all */
	bus_pb_free(&d->base);
	de_collector_pump(&w.col);
	assert_int_equal(w.stops, 1); /* answered once */
	wire_free(&w);
}

/* config.update from the agent takes every field it validated, and
 * config.get reports what the collector runs with. */
static void test_config_update_then_get(void **state)
{
	(void)state;
	struct wire w;
	wire_init(&w);
	Daemoneye__CollectorConfig nc = DAEMONEYE__COLLECTOR_CONFIG__INIT;
	nc.scan_interval_ms = 750;
	nc.compute_hashes = !w.col.compute_hashes;
	nc.max_processes = 1234;
	Daemoneye__UpdateConfigRequest q = DAEMONEYE__UPDATE_CONFIG_REQUEST__INIT;
	q.collector_id = "p1";
	q.new_config = &nc;
	struct de_answer a = {0};
	assert_int_equal(de_collector_call(&w.col, "config.update", DE_AGENT_NAME,
	                                   &q.base, &a),
	                 0);
	free(a.buf);
	assert_int_equal(w.col.scan_interval_ms, 750);
	assert_int_equal(w.col.compute_hashes, nc.compute_hashes);
	assert_int_equal(w.col.max_processes, 1234);
	Daemoneye__GetConfigRequest gq = DAEMONEYE__GET_CONFIG_REQUEST__INIT;
	gq.collector_id = "p1";
	struct de_answer g = {0};
	assert_int_equal(de_collector_call(&w.col, "config.get", DE_AGENT_NAME,
	                                   &gq.base, &g),
	                 0);
	Daemoneye__GetConfigResponse *r =
	    (Daemoneye__GetConfigResponse *)bus_pb_unpack(
	        &daemoneye__get_config_response__descriptor, g.buf, g.len,
	        BUS_PB_BUDGET_DEFAULT);
	free(g.buf);
	assert_non_null(r);
	assert_non_null(r->config);
	assert_int_equal(r->config->scan_interval_ms, 750);
	assert_int_equal(r->config->compute_hashes, nc.compute_hashes);
	assert_int_equal(r->config->max_processes, 1234);
	assert_string_equal(r->config->collector_type, "process");
	bus_pb_free(&r->base);
	wire_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collector_serves_by_caller),
		cmocka_unit_test(test_metrics_are_the_counters),
		cmocka_unit_test(test_outbox_keeps_until_acknowledged),
		cmocka_unit_test(test_outbox_bound_forgets_sent_never_unsent),
		cmocka_unit_test(test_eagain_keeps_events_and_delays_the_cycle),
		cmocka_unit_test(test_reconnect_resends_and_heartbeat_forgets),
		cmocka_unit_test(test_gap_is_filled_by_a_resend),
		cmocka_unit_test(test_lost_tail_shows_in_the_heartbeat),
		cmocka_unit_test(test_forgotten_events_get_a_full_resync),
		cmocka_unit_test(test_overflow_declares_a_gap_and_converges),
		cmocka_unit_test(test_new_incarnation_and_stale_events),
		cmocka_unit_test(test_capabilities_first_and_shutdown_flushes),
		cmocka_unit_test(test_config_update_then_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
