/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agent.c — the agent on the bus (de_agent, services/agent.c), over
 * the in-memory bus: its heartbeats and health checks served by a real
 * collector (de_collector), each answer judged and reported; a heartbeat
 * whose sequence is wrong; answers arriving after the agent closed; and
 * lifecycle.* served to an administrator, refused to anyone else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "bus/daemoneye.h"
#include "memnet.h"

struct world {
	struct memnet n;
	int ag, co, op;
	struct de_sup sup;
	struct de_intake in;
	struct de_agent da;
	struct de_collector col;
	struct de_policies pol;
	/* what the agent's hooks saw */
	int exchanges, last_ok, last_health, last_code, changes, configured;
	char last_method[32], last_detail[160];
	uint32_t cfg_interval;
	/* the collector's side */
	int hb_bad_seq;         /* answer heartbeats with the sequence + this */
	bool saw_metrics_asked;
};

static uint64_t w_now(void *h) { return ((struct world *)h)->n.now; }

static int64_t w_wall(void *h)
{
	return (int64_t)(((struct world *)h)->n.now / 1000000u);
}

static int w_spawn(void *h, size_t idx, uint32_t *pid, char *why, size_t whylen)
{
	(void)why, (void)whylen;
	struct world *w = h;
	*pid = 4242;
	de_agent_spawned(&w->da, idx);
	return 0;
}

static void w_kill(void *h, size_t idx, uint32_t pid, bool hard)
{
	(void)h, (void)idx, (void)pid, (void)hard;
}

static void w_hb(void *h, size_t idx, uint64_t seq)
{
	de_agent_heartbeat(&((struct world *)h)->da, idx, seq);
}

static void w_hc(void *h, size_t idx, uint64_t seq)
{
	de_agent_health_check(&((struct world *)h)->da, idx, seq);
}

static void w_exchanged(void *h, size_t idx, const char *method, uint64_t seq,
                        bool ok, int health, int code, const char *detail)
{
	(void)idx, (void)seq;
	struct world *w = h;
	w->exchanges++;
	w->last_ok = ok;
	w->last_health = health;
	w->last_code = code;
	snprintf(w->last_method, sizeof(w->last_method), "%s", method);
	snprintf(w->last_detail, sizeof(w->last_detail), "%s", detail);
}

static void w_configure(void *h, size_t idx,
                        const Daemoneye__CollectorConfig *cfg)
{
	(void)idx;
	struct world *w = h;
	w->configured++;
	w->cfg_interval = cfg->scan_interval_ms;
}

static void w_changed(void *h) { ((struct world *)h)->changes++; }

static int c_publish(void *h, const char *topic, const uint8_t *data,
                     size_t len)
{
	struct world *w = h;
	return bus_client_publish(mn_cl(&w->n, w->co), topic, data, len, 0,
	                          NULL, NULL);
}

/* The collector's requests: the real service, or a heartbeat answered
 * with a wrong sequence. */
static void co_rpc(struct bus_client *c, const struct bus_rpc_request *r,
                   void *arg)
{
	struct world *w = arg;
	if (r->method && !strcmp(r->method, "health.check")) {
		Daemoneye__HealthCheckRequest *q = (void *)bus_pb_unpack(
		        &daemoneye__health_check_request__descriptor, r->params,
		        r->params_len, BUS_PB_BUDGET_DEFAULT);
		w->saw_metrics_asked = q && q->include_metrics;
		bus_pb_free(q ? &q->base : NULL);
	}
	if (w->hb_bad_seq && r->method &&
	    !strcmp(r->method, "health.heartbeat")) {
		Daemoneye__HeartbeatRequest *q = (void *)bus_pb_unpack(
		        &daemoneye__heartbeat_request__descriptor, r->params,
		        r->params_len, BUS_PB_BUDGET_DEFAULT);
		assert_non_null(q);
		Daemoneye__HeartbeatResponse a =
		        DAEMONEYE__HEARTBEAT_RESPONSE__INIT;
		a.sequence = q->sequence + (uint64_t)w->hb_bad_seq;
		bus_pb_free(&q->base);
		uint8_t buf[64];
		size_t n = protobuf_c_message_pack(&a.base, buf);
		assert_int_equal(bus_client_rpc_reply(c, r->sender, r->call_id,
		                                      buf, n), 0);
		return;
	}
	struct de_served sv;
	de_collector_serve(&w->col, c, r, &sv);
}

static const char *const admins[] = {"admin.*", NULL};
static const struct de_access agent_access = {
	.callers = {[DE_SVC_LIFECYCLE] = admins}};

static void ag_rpc(struct bus_client *c, const struct bus_rpc_request *r,
                   void *arg)
{
	struct world *w = arg;
	struct de_served sv;
	de_agent_serve(&w->da, c, r, &agent_access, &sv);
}

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	mn_init(&w->n, &cfg);
	w->ag = mn_client(&w->n, DE_AGENT_NAME, NULL);
	w->co = mn_client(&w->n, "collector.process.p1", NULL);
	w->op = mn_client(&w->n, "admin.op", NULL);
	w->n.l[w->ag].rpc_hook = ag_rpc;
	w->n.l[w->ag].rpc_hook_arg = w;
	w->n.l[w->co].rpc_hook = co_rpc;
	w->n.l[w->co].rpc_hook_arg = w;
	de_policies_defaults(&w->pol);
	struct de_collector_ops cops = {.now = w_now, .wall_ms = w_wall,
	                                .publish = c_publish};
	assert_int_equal(de_collector_init(&w->col, "p1", 77, 100, &cops, w), 0);
	struct de_sup_ops sops = {.spawn = w_spawn, .kill = w_kill,
	                          .heartbeat = w_hb, .health_check = w_hc};
	de_sup_init(&w->sup, &w->pol, &sops, w);
	assert_int_equal(de_sup_add(&w->sup, "p1", "process"), 0);
	struct de_intake_ops iops = {0};
	de_intake_init(&w->in, &iops, w, 1000000000u);
	struct de_agent_ops aops = {.now = w_now, .wall_ms = w_wall,
	                            .exchanged = w_exchanged,
	                            .configure = w_configure,
	                            .changed = w_changed};
	de_agent_init(&w->da, &w->sup, &w->in, mn_cl(&w->n, w->ag),
	              DE_AGENT_NAME, &aops, w);
	assert_int_equal(de_sup_start(&w->sup, 0, w->n.now), 0);
	assert_int_equal(w->sup.c[0].pid, 4242);
	assert_int_equal(w->da.incarnation[0], 0);
	assert_int_equal(w->da.started_ms[0], w_wall(w));
}

static void world_free(struct world *w)
{
	mn_free(&w->n);
	de_collector_free(&w->col);
	de_intake_free(&w->in);
}

/* Supervision's clock moves to its next deadline and ticks: whatever it
 * asks (a heartbeat, a health check) goes out and is answered. */
static void tick(struct world *w)
{
	uint64_t d = de_sup_next_deadline(&w->sup);
	assert_true(d != UINT64_MAX);
	if (d > w->n.now)
		w->n.now = d;
	de_sup_tick(&w->sup, w->n.now);
	mn_run(&w->n);
}

static void test_heartbeat_and_health_check(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	assert_int_equal(w.sup.c[0].state, DE_SUP_STARTING);
	tick(&w);
	assert_int_equal(w.exchanges, 1);
	assert_string_equal(w.last_method, "health.heartbeat");
	assert_true(w.last_ok);
	assert_int_equal(w.last_code, 0);
	assert_int_equal(w.da.incarnation[0], 77); /* the collector's */
	assert_int_equal(w.sup.c[0].state, DE_SUP_RUNNING);
	assert_int_equal(w.changes, 1);

	tick(&w); /* running: the first health check at once */
	assert_int_equal(w.exchanges, 2);
	assert_string_equal(w.last_method, "health.check");
	assert_true(w.last_ok);
	assert_true(w.last_health >= 0);
	assert_int_equal(w.sup.c[0].health, w.last_health);
	assert_true(w.saw_metrics_asked);
	assert_memory_equal(w.last_detail, "status ", 7);

	/* a wrong sequence is no answer: supervision counts a failure */
	w.hb_bad_seq = 1;
	int n = w.exchanges;
	while (w.exchanges == n || strcmp(w.last_method, "health.heartbeat"))
		tick(&w);
	assert_false(w.last_ok);
	assert_string_equal(w.last_detail, "bad reply");
	assert_int_equal(w.sup.c[0].hb_failures, 1);
	w.hb_bad_seq = 0;

	/* a call the bus cannot take: reported at once, as a failure */
	w.da.bc = NULL;
	n = w.exchanges;
	while (w.exchanges == n || strcmp(w.last_method, "health.heartbeat"))
		tick(&w);
	assert_false(w.last_ok);
	assert_int_equal(w.last_code, BUS_ECLOSED);
	assert_int_equal(w.sup.c[0].hb_failures, 2);
	assert_false(w.sup.c[0].hb_inflight);
	w.da.bc = mn_cl(&w.n, w.ag);

	/* closed: a late answer is reported, and changes nothing */
	w.da.closed = true;
	n = w.exchanges;
	int changes = w.changes;
	while (w.exchanges == n || strcmp(w.last_method, "health.heartbeat"))
		tick(&w);
	assert_true(w.last_ok);
	assert_int_equal(w.sup.c[0].hb_failures, 2);
	assert_true(w.sup.c[0].hb_inflight); /* supervision never heard */
	assert_int_equal(w.changes, changes);
	world_free(&w);
}

struct got {
	const char *method;
	int n, status, code;
	size_t listed; /* lifecycle.status: collectors in the reply */
	char first_id[32];
};

static void got_cb(struct bus_client *c, int status,
                   const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct got *g = arg;
	g->n++;
	g->status = status;
	g->code = r ? r->code : 0;
	if (status || strcmp(g->method, "lifecycle.status"))
		return;
	Daemoneye__CollectorStatusResponse *m =
	        (void *)de_reply_unpack(g->method, r);
	assert_non_null(m);
	g->listed = m->n_collectors;
	if (m->n_collectors)
		snprintf(g->first_id, sizeof(g->first_id), "%s",
		         m->collectors[0]->collector_id);
	bus_pb_free(&m->base);
}

static struct got call(struct world *w, int from, const char *method,
                       const ProtobufCMessage *q)
{
	struct got g = {.method = method};
	assert_int_equal(de_call(mn_cl(&w->n, from), DE_AGENT_NAME, method, q,
	                         &w->pol, got_cb, &g), 0);
	mn_run(&w->n);
	assert_int_equal(g.n, 1);
	return g;
}

static void test_lifecycle_served(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	tick(&w); /* answered: running */

	Daemoneye__CollectorStatusRequest sq =
	        DAEMONEYE__COLLECTOR_STATUS_REQUEST__INIT;
	struct got g = call(&w, w.op, "lifecycle.status", &sq.base);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.listed, 1);
	assert_string_equal(g.first_id, "p1");
	Daemoneye__CollectorStatus st;
	de_agent_status(&w.da, 0, &st);
	assert_string_equal(st.collector_id, "p1");
	assert_int_equal(st.state, DAEMONEYE__COLLECTOR_STATUS__STATE__RUNNING);
	assert_int_equal(st.pid, 4242);
	assert_int_equal(st.incarnation, 77);
	assert_int_equal(st.started_at_ms, w.da.started_ms[0]);

	/* one collector by id; an unknown one */
	sq.collector_id = "p1";
	g = call(&w, w.op, "lifecycle.status", &sq.base);
	assert_int_equal(g.listed, 1);
	sq.collector_id = "nope";
	g = call(&w, w.op, "lifecycle.status", &sq.base);
	assert_int_equal(g.status, BUS_ERPC);
	assert_int_equal(g.code, BUS_RPC_ERR_NOT_FOUND);

	/* start: the wrong type, a bad configuration, a good one */
	Daemoneye__StartCollectorRequest st_q =
	        DAEMONEYE__START_COLLECTOR_REQUEST__INIT;
	st_q.collector_id = "p1";
	st_q.collector_type = "network";
	g = call(&w, w.op, "lifecycle.start", &st_q.base);
	assert_int_equal(g.code, BUS_RPC_ERR_INVALID_PARAMS);
	st_q.collector_type = "process";
	Daemoneye__CollectorConfig cc = DAEMONEYE__COLLECTOR_CONFIG__INIT;
	cc.scan_interval_ms = 0; /* out of range */
	st_q.config = &cc;
	g = call(&w, w.op, "lifecycle.start", &st_q.base);
	assert_int_equal(g.code, BUS_RPC_ERR_INVALID_PARAMS);
	assert_int_equal(w.configured, 0);
	cc.scan_interval_ms = 500;
	cc.max_processes = 100;
	g = call(&w, w.op, "lifecycle.start", &st_q.base);
	assert_int_equal(g.status, 0);
	assert_int_equal(w.configured, 1);
	assert_int_equal(w.cfg_interval, 500);

	/* restart and stop act on supervision */
	Daemoneye__RestartCollectorRequest rq =
	        DAEMONEYE__RESTART_COLLECTOR_REQUEST__INIT;
	rq.collector_id = "p1";
	int changes = w.changes;
	g = call(&w, w.op, "lifecycle.restart", &rq.base);
	assert_int_equal(g.status, 0);
	assert_true(w.changes > changes);
	Daemoneye__StopCollectorRequest pq = DAEMONEYE__STOP_COLLECTOR_REQUEST__INIT;
	pq.collector_id = "p1";
	g = call(&w, w.op, "lifecycle.stop", &pq.base);
	assert_int_equal(g.status, 0);
	assert_int_equal(w.sup.c[0].state, DE_SUP_STOPPING);
	assert_false(w.sup.c[0].want_running);

	/* anyone but an admin is refused */
	g = call(&w, w.co, "lifecycle.status", &sq.base);
	assert_int_equal(g.code, BUS_RPC_ERR_ACCESS);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heartbeat_and_health_check),
		cmocka_unit_test(test_lifecycle_served),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
