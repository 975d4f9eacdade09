/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_client.c — the sans-I/O client core against the broker core, wired
 * in memory (memnet): every operation, ACK and RPC timeouts, retries,
 * reconnection with re-subscription after a drop at every byte of the
 * handshake, pings, coalescing and back-pressure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "memnet.h"

#define MS 1000000ull
#define S 1000000000ull

struct rec {
	int n;
	int status[64];
	int code[64];
	char data[64][64];
	uint32_t attempts[64];
};

static void done_cb(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct rec *r = arg;
	r->status[r->n++] = status;
}

static void rpc_cb(struct bus_client *c, int status,
                   const struct bus_rpc_result *res, void *arg)
{
	(void)c;
	struct rec *r = arg;
	r->status[r->n] = status;
	r->code[r->n] = res->code;
	r->attempts[r->n] = res->attempts;
	snprintf(r->data[r->n], sizeof(r->data[0]), "%.*s", (int)res->len,
	         (const char *)res->data);
	r->n++;
}

static struct bus_core_config core_cfg(void)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	return cfg;
}

static bool logged(struct mn_link *l, const char *line)
{
	for (int i = 0; i < l->log_n; i++)
		if (strcmp(l->log[i], line) == 0)
			return true;
	return false;
}

static void test_every_op(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int a = mn_client(&n, "alpha", NULL), b = mn_client(&n, "beta", NULL);
	struct bus_client *A = mn_cl(&n, a), *B = mn_cl(&n, b);
	assert_int_equal(bus_client_state(A), BUS_CLIENT_READY);
	struct rec r = {0};
	const char *m1[] = {"ev/#", "x/+/z"};
	assert_int_equal(bus_client_subscribe(B, m1, 2, done_cb, &r), 0);
	const char *ex[] = {"ev/secret"};
	assert_int_equal(bus_client_exclude(B, ex, 1, done_cb, &r), 0);
	mn_run(&n);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.status[0], 0);
	for (int qos = 0; qos < 4; qos++) {
		char d[16];
		snprintf(d, sizeof(d), "q%d", qos);
		assert_int_equal(bus_client_publish(A, "ev/1", d, strlen(d), qos,
		                                    qos & 1 ? done_cb : NULL,
		                                    &r),
		                 0);
	}
	assert_int_equal(bus_client_publish(A, "ev/1", "x", 1, 0, done_cb, &r),
	                 BUS_EINVAL); /* a callback needs QoS processed */
	assert_int_equal(bus_client_publish(A, "ev/secret", "s", 1, 0, NULL,
	                                    NULL),
	                 0);
	assert_int_equal(bus_client_publish(A, "x/y/z", "xyz", 3, 1, done_cb,
	                                    &r),
	                 0);
	assert_int_equal(bus_client_publish_for(A, "ev/for", "beta", "pf", 2,
	                                        1, done_cb, &r),
	                 0);
	assert_int_equal(bus_client_publish_for(A, "ev/for", "alpha", "no", 2,
	                                        0, NULL, NULL),
	                 0);
	assert_int_equal(bus_client_send(A, "beta", "hi", 2, 1, done_cb, &r),
	                 0);
	assert_int_equal(bus_client_send(A, "nobody", "hi", 2, 1, done_cb, &r),
	                 0);
	assert_int_equal(bus_client_broadcast(A, "be*", "all", 3, 1, done_cb,
	                                      &r),
	                 0);
	assert_int_equal(bus_client_broadcast(A, "*", "star", 4, 0, NULL, NULL),
	                 0);
	mn_run(&n);
	struct mn_link *L = &n.l[b];
	assert_true(logged(L, "P alpha ev/1 q0"));
	assert_true(logged(L, "P alpha ev/1 q3"));
	assert_false(logged(L, "P alpha ev/secret s"));
	assert_true(logged(L, "P alpha x/y/z xyz"));
	assert_true(logged(L, "P alpha ev/for pf"));
	assert_false(logged(L, "P alpha ev/for no"));
	assert_true(logged(L, "M alpha hi"));
	assert_true(logged(L, "B alpha star"));
	assert_false(logged(L, "B alpha all")); /* "be*" is one literal level */
	/* in order: q0..q3 */
	int q = 0;
	for (int i = 0; i < L->log_n; i++)
		if (strncmp(L->log[i], "P alpha ev/1 q", 14) == 0)
			assert_int_equal(L->log[i][14] - '0', q++);
	assert_int_equal(q, 4);
	/* acks: sub, excl, q1, q3, xyz, pf, hi, nobody, bcast */
	assert_int_equal(r.n, 9);
	assert_int_equal(r.status[6], 0);
	assert_int_equal(r.status[7], BUS_ENOTREG);
	/* unsubscribe, unexclude */
	const char *u[] = {"ev/#"};
	assert_int_equal(bus_client_unsubscribe(B, u, 1, done_cb, &r), 0);
	assert_int_equal(bus_client_unexclude(B, ex, 1, NULL, NULL),
	                 0);
	mn_run(&n);
	int before = L->log_n;
	bus_client_publish(A, "ev/2", "gone", 4, 0, NULL, NULL);
	bus_client_publish(A, "x/q/z", "kept", 4, 0, NULL, NULL);
	mn_run(&n);
	assert_int_equal(L->log_n, before + 1);
	assert_true(logged(L, "P alpha x/q/z kept"));
	/* bad arguments never reach the wire */
	assert_int_equal(bus_client_publish(A, "\xff", "x", 1, 0, NULL, NULL),
	                 BUS_EINVAL);
	assert_int_equal(bus_client_send(A, "", "x", 1, 0, NULL, NULL),
	                 BUS_EINVAL);
	assert_int_equal(bus_client_publish(A, "a", "x", 1, 4, NULL, NULL),
	                 BUS_EINVAL);
	mn_free(&n);
}

static void test_subscribe_limit_forgets(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	cfg.limits.subscriptions_max = 2;
	mn_init(&n, &cfg);
	int b = mn_client(&n, "beta", NULL);
	struct bus_client *B = mn_cl(&n, b);
	struct rec r = {0};
	const char *m[] = {"a", "b", "c"};
	assert_int_equal(bus_client_subscribe(B, m, 3, done_cb, &r), 0);
	mn_run(&n);
	assert_int_equal(r.status[0], BUS_EDATA);
	/* forgotten: a reconnect sends nothing that the broker refuses */
	assert_int_equal(bus_client_subscribe(B, m, 2, done_cb, &r), 0);
	mn_run(&n);
	assert_int_equal(r.status[1], 0);
	mn_drop(&n, b);
	mn_advance(&n, 1 * S);
	assert_int_equal(bus_client_state(B), BUS_CLIENT_READY);
	struct bus_stats st;
	bus_core_stats(n.core, &st);
	assert_int_equal(st.rejects_limit, 1);
	mn_free(&n);
}

static void test_ack_timeout(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.op_timeout_ns = 200 * MS;
	cc.idle_timeout_ns = 0;
	int a = mn_client(&n, "alpha", &cc);
	struct bus_client *A = mn_cl(&n, a);
	n.l[a].blackhole = true;
	struct rec r = {0};
	assert_int_equal(bus_client_publish(A, "t", "1", 1, 1, done_cb, &r), 0);
	mn_advance(&n, 100 * MS);
	assert_int_equal(bus_client_publish(A, "t", "2", 1, 1, done_cb, &r), 0);
	mn_advance(&n, 150 * MS);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.status[0], BUS_ETIMEDOUT);
	mn_advance(&n, 100 * MS);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.status[1], BUS_ETIMEDOUT);
	n.l[a].blackhole = false;
	assert_int_equal(bus_client_publish(A, "t", "3", 1, 1, done_cb, &r), 0);
	mn_run(&n);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.status[2], 0);
	struct bus_client_stats cs;
	bus_client_stats(A, &cs);
	assert_int_equal(cs.ack_timeouts, 2);
	mn_free(&n);
}

static void test_rpc(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int a = mn_client(&n, "caller", NULL), s = mn_client(&n, "server", NULL);
	struct bus_client *A = mn_cl(&n, a);
	struct rec r = {0};
	assert_int_equal(bus_client_rpc_call(A, "server", "echo", "p1", 2, NULL,
	                                     rpc_cb, &r),
	                 0);
	mn_run(&n);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.status[0], 0);
	assert_string_equal(r.data[0], "p1");
	assert_true(logged(&n.l[s], "R caller echo p1"));
	/* the server answers with an error */
	n.l[s].rpc_answer = -32601;
	bus_client_rpc_call(A, "server", "nope", NULL, 0, NULL, rpc_cb, &r);
	mn_run(&n);
	assert_int_equal(r.status[1], BUS_ERPC);
	assert_int_equal(r.code[1], -32601);
	assert_string_equal(r.data[1], "no");
	/* .broker answers too */
	bus_client_rpc_call(A, ".broker", "test", NULL, 0, NULL, rpc_cb, &r);
	mn_run(&n);
	assert_int_equal(r.status[2], 0);
	assert_memory_equal(r.data[2], "\x81\xa2ok\xc3", 5);
	/* notification */
	assert_int_equal(bus_client_rpc_notify(A, "server", "note", 4, 0, NULL, NULL), 0);
	mn_run(&n);
	assert_true(logged(&n.l[s], "N caller note"));
	/* acknowledged notification and call0 (BUS/RT's: call id 0, handled,
	 * never answered); an ACK needs its callback and only an ACK */
	struct rec ack = {0};
	assert_int_equal(bus_client_rpc_notify(A, "server", "n2", 2,
	                                       BUS_QOS_PROCESSED, NULL, NULL),
	                 BUS_EINVAL);
	assert_int_equal(bus_client_rpc_notify(A, "server", "n2", 2,
	                                       BUS_QOS_PROCESSED, done_cb, &ack),
	                 0);
	assert_int_equal(bus_client_rpc_call0(A, "server", "fire", "p0", 2,
	                                      BUS_QOS_PROCESSED, done_cb, &ack),
	                 0);
	assert_int_equal(bus_client_rpc_call0(A, "server", "", NULL, 0, 0, NULL,
	                                      NULL),
	                 BUS_EINVAL);
	assert_int_equal(bus_client_rpc_call0(A, "nobody", "fire", NULL, 0,
	                                      BUS_QOS_PROCESSED, done_cb, &ack),
	                 0);
	int calls_before = r.n;
	mn_run(&n);
	assert_int_equal(ack.n, 3);
	assert_int_equal(ack.status[0], 0);
	assert_int_equal(ack.status[1], 0);
	assert_int_equal(ack.status[2], BUS_ENOTREG);
	assert_true(logged(&n.l[s], "N caller n2"));
	assert_true(logged(&n.l[s], "R caller fire p0"));
	assert_int_equal(r.n, calls_before); /* nothing came back */
	/* timeout and retry: the server ignores requests */
	n.l[s].rpc_answer = 1;
	struct bus_rpc_policy pol = {.timeout_ns = 100 * MS, .retries = 2};
	bus_client_rpc_call(A, "server", "slow", "x", 1, &pol, rpc_cb, &r);
	mn_advance(&n, 250 * MS);
	assert_int_equal(r.n, 3);
	mn_advance(&n, 60 * MS);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.status[3], BUS_ETIMEDOUT);
	assert_int_equal(r.code[3], BUS_RPC_ERR_TRANSPORT(0x78));
	assert_int_equal(r.attempts[3], 3);
	int reqs = 0;
	for (int i = 0; i < n.l[s].log_n; i++)
		reqs += strcmp(n.l[s].log[i], "R caller slow x") == 0;
	assert_int_equal(reqs, 3);
	/* unknown target: retried with backoff, then the transport code */
	struct bus_rpc_policy p2 = {.timeout_ns = 1 * S, .retries = 3,
	                            .backoff_ns = 10 * MS,
	                            .backoff_max_ns = 20 * MS};
	bus_client_rpc_call(A, "ghost", "m", NULL, 0, &p2, rpc_cb, &r);
	mn_run(&n);
	assert_int_equal(r.n, 4);
	mn_advance(&n, 10 * MS); /* 2nd */
	mn_advance(&n, 20 * MS); /* 3rd */
	assert_int_equal(r.n, 4);
	mn_advance(&n, 20 * MS); /* 4th, final */
	assert_int_equal(r.n, 5);
	assert_int_equal(r.status[4], BUS_ENOTREG);
	assert_int_equal(r.code[4], -32113);
	assert_int_equal(r.attempts[4], 4);
	/* an overall bound ends retries early */
	struct bus_rpc_policy p3 = {.timeout_ns = 1 * S, .retries = 100,
	                            .backoff_ns = 500 * MS,
	                            .backoff_max_ns = 4 * S,
	                            .total_ns = 2 * S};
	bus_client_rpc_call(A, "ghost", "m", NULL, 0, &p3, rpc_cb, &r);
	mn_advance(&n, 3 * S);
	assert_int_equal(r.n, 6);
	assert_int_equal(r.status[5], BUS_ENOTREG);

	assert_int_equal(r.attempts[5], 3); /* t=0, 0.5, 1.5; 3.5 > 2 */
	/* a late reply after a timeout is dropped, not misrouted */
	n.l[s].rpc_answer = 0;
	struct bus_client_stats cs;
	bus_client_stats(A, &cs);
	assert_int_equal(cs.rpc_calls, 6);
	mn_free(&n);
}

/* A call with QoS none: the reply comes all the same; the broker
 * acknowledges nothing, so a missing target is known at the timeout. */
static void test_rpc_without_ack(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int a = mn_client(&n, "caller", NULL), s = mn_client(&n, "server", NULL);
	struct bus_client *A = mn_cl(&n, a);
	struct bus_client_stats cs0, cs;
	bus_client_stats(A, &cs0);
	struct rec r = {0};
	struct bus_rpc_policy pol = {.timeout_ns = 100 * MS, .no_ack = true};
	assert_int_equal(bus_client_rpc_call(A, "server", "echo", "p1", 2, &pol,
	                                     rpc_cb, &r),
	                 0);
	mn_run(&n);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.status[0], 0);
	assert_string_equal(r.data[0], "p1");
	assert_true(logged(&n.l[s], "R caller echo p1"));
	bus_client_rpc_call(A, "ghost", "m", NULL, 0, &pol, rpc_cb, &r);
	mn_run(&n);
	assert_int_equal(r.n, 1); /* no ACK says it is missing */
	mn_advance(&n, 100 * MS);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.status[1], BUS_ETIMEDOUT);
	bus_client_stats(A, &cs);
	assert_int_equal(cs.acks, cs0.acks); /* the broker acknowledged none */
	mn_free(&n);
}

static const struct bus_rpc_metric *metric(struct bus_client *c,
                                            const char *target,
                                            const char *method)
{
	const struct bus_rpc_metrics *t = bus_client_rpc_metrics(c);
	for (uint32_t i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].target, target) &&
		    !strcmp(t->rows[i].method, method))
			return &t->rows[i];
	return NULL;
}

struct flat {
	int n;
	char name[64][96];
	double v[64];
};

static bool flat_cb(void *arg, const char *name, double v)
{
	struct flat *f = arg;
	if (f->n == 64)
		return false;
	snprintf(f->name[f->n], sizeof(f->name[0]), "%s", name);
	f->v[f->n++] = v;
	return true;
}

static double flat_get(const struct flat *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (!strcmp(f->name[i], name))
			return f->v[i];
	return -1;
}

/* The RPC metrics: per (target, method) outcomes, retries, latency from
 * the virtual clock; the "other" row past rpc_metrics_max. */
static void test_rpc_metrics(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.rpc_metrics_max = 3;
	int a = mn_client(&n, "caller", &cc), s = mn_client(&n, "server", NULL);
	struct bus_client *A = mn_cl(&n, a);
	struct rec r = {0};
	for (int i = 0; i < 4; i++)
		bus_client_rpc_call(A, "server", "echo", "p", 1, NULL, rpc_cb, &r);
	mn_run(&n);
	n.l[s].rpc_answer = -32601;
	bus_client_rpc_call(A, "server", "nope", NULL, 0, NULL, rpc_cb, &r);
	bus_client_rpc_call(A, "server", "nope", NULL, 0, NULL, rpc_cb, &r);
	mn_run(&n);
	n.l[s].rpc_answer = 1; /* ignored: 3 attempts of 100 ms */
	struct bus_rpc_policy pol = {.timeout_ns = 100 * MS, .retries = 2};
	bus_client_rpc_call(A, "server", "slow", "x", 1, &pol, rpc_cb, &r);
	mn_advance(&n, 350 * MS);
	/* a fourth pair: the table holds 3, so it goes to "other" */
	bus_client_rpc_call(A, "ghost", "m", NULL, 0, NULL, rpc_cb, &r);
	mn_run(&n);
	assert_int_equal(r.n, 8);

	const struct bus_rpc_metric *m = metric(A, "server", "echo");
	assert_non_null(m);
	assert_int_equal(m->calls, 4);
	assert_int_equal(m->ok, 4);
	assert_int_equal(m->errors + m->timeouts + m->retries, 0);
	/* answered within the same virtual instant: the first bucket */
	assert_int_equal(m->hist[0], 4);
	assert_int_equal(bus_rpc_metric_quantile_ns(m, 0.99), 1000);
	m = metric(A, "server", "nope");
	assert_int_equal(m->calls, 2);
	assert_int_equal(m->errors, 2);
	assert_int_equal(m->codes[0].code, -32601);
	assert_int_equal(m->codes[0].n, 2);
	m = metric(A, "server", "slow");
	assert_int_equal(m->timeouts, 1);
	assert_int_equal(m->retries, 2);
	assert_int_equal(m->latency_ns_sum, 300 * MS);
	/* 300 ms is in [288, 320) ms (8 buckets per power of two): p50 is
	 * that bucket's upper bound, within 12.5 % above */
	uint64_t p50 = bus_rpc_metric_quantile_ns(m, 0.5);
	assert_true(p50 > 300 * MS && p50 <= 300 * MS + 300 * MS / 8);
	const struct bus_rpc_metrics *t = bus_client_rpc_metrics(A);
	assert_int_equal(t->n, 3);
	assert_int_equal(t->other.calls, 1);
	assert_int_equal(t->other.errors, 1);
	assert_int_equal(t->other.codes[0].code, -32113);

	struct flat f = {0};
	bus_rpc_metrics_each(t, flat_cb, &f);
	assert_true(flat_get(&f, "rpc.server.echo.calls") == 4);
	assert_true(flat_get(&f, "rpc.server.nope.error.-32601") == 2);
	assert_true(flat_get(&f, "rpc.server.slow.timeouts") == 1);
	assert_true(flat_get(&f, "rpc.server.slow.mean_ms") == 300);
	assert_true(flat_get(&f, "rpc.other.error.-32113") == 1);
	mn_free(&n);
}

/* The histogram's buckets: bounds increase, every value lands in the
 * first bucket whose bound is above it, and a bucket is at most 1/8 of
 * its lower edge wide past 8 us. */
static void test_rpc_histogram_bounds(void **state)
{
	(void)state;
	uint64_t prev = 0;
	for (uint32_t i = 0; i < BUS_RPC_HIST_BUCKETS; i++) {
		uint64_t b = bus_rpc_hist_bound_ns(i);
		assert_true(b > prev);
		if (i >= BUS_RPC_HIST_SUB)
			assert_true((b - prev) * 8 <= prev);
		prev = b;
	}
	assert_true(prev >= 268 * S);
	struct bus_rpc_metric m;
	static const uint64_t vals[] = {0, 999, 1000, 7999, 8000, 9000, 15999,
	                                16000, 123456789, 300 * MS, 10 * S};
	for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
		memset(&m, 0, sizeof(m));
		m.calls = 1;
		uint32_t i;
		/* the bucket a quantile names must hold the value */
		for (i = 0; bus_rpc_hist_bound_ns(i) <= vals[v]; i++)
			;
		m.hist[i] = 1;
		uint64_t q = bus_rpc_metric_quantile_ns(&m, 1.0);
		assert_true(q > vals[v]);
		assert_true(i == 0 || bus_rpc_hist_bound_ns(i - 1) <= vals[v]);
	}
}

static void test_rpc_survives_reconnect(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int a = mn_client(&n, "caller", NULL), s = mn_client(&n, "server", NULL);
	(void)s;
	struct bus_client *A = mn_cl(&n, a);
	n.l[a].blackhole = true; /* the request is lost with the connection */
	struct rec r = {0};
	struct bus_rpc_policy pol = {.timeout_ns = 1 * S, .retries = 3,
	                             .backoff_ns = 300 * MS,
	                             .backoff_max_ns = 1 * S};
	bus_client_rpc_call(A, "server", "echo", "v", 1, &pol, rpc_cb, &r);
	mn_run(&n);
	n.l[a].blackhole = false;
	mn_drop(&n, a);
	assert_int_equal(r.n, 0);
	mn_advance(&n, 1 * S);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.status[0], 0);
	assert_int_equal(r.attempts[0], 2);
	mn_free(&n);
}

/* The broker side drops the connection after k bytes of the handshake,
 * for every k; the client reconnects, re-subscribes and receives. */
static void test_reconnect_every_handshake_byte(void **state)
{
	(void)state;
	const size_t hs = 3 + 3 + 1 + 2 + strlen("sub") + 1;
	for (size_t k = 0; k <= hs; k++) {
		struct memnet n;
		struct bus_core_config cfg = core_cfg();
		mn_init(&n, &cfg);
		n.rng = 1000 + k;
		int p = mn_client(&n, "pub", NULL);
		int s = mn_client(&n, "sub", NULL);
		struct bus_client *P = mn_cl(&n, p), *Sb = mn_cl(&n, s);
		const char *m[] = {"a/#"};
		const char *ex[] = {"a/hidden"};
		assert_int_equal(bus_client_subscribe(Sb, m, 1, NULL, NULL), 0);
		assert_int_equal(bus_client_exclude(Sb, ex, 1, NULL, NULL), 0);
		mn_run(&n);
		mn_drop(&n, s);
		assert_int_equal(bus_client_state(Sb),
		                 BUS_CLIENT_DISCONNECTED);
		n.l[s].drop_at = n.l[s].link.bytes + k;
		mn_advance(&n, 10 * S);
		assert_int_equal(bus_client_state(Sb), BUS_CLIENT_READY);
		struct bus_client_stats cs;
		bus_client_stats(Sb, &cs);
		assert_int_equal(cs.connects, 3);
		bus_client_publish(P, "a/b", "after", 5, 0, NULL, NULL);
		bus_client_publish(P, "a/hidden", "no", 2, 0, NULL, NULL);
		mn_run(&n);
		assert_true(logged(&n.l[s], "P pub a/b after"));
		assert_false(logged(&n.l[s], "P pub a/hidden no"));
		mn_free(&n);
	}
}

static void test_backoff_and_refused(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int s = mn_client(&n, "sub", NULL);
	struct bus_client *Sb = mn_cl(&n, s);
	n.l[s].refuse = 3;
	uint64_t t0 = n.now;
	mn_drop(&n, s);
	/* 100, 200, 400 ms (each +-20 %), then 800 ms: ready in (1.2, 1.8) s */
	mn_advance(&n, 1200 * MS);
	assert_int_not_equal(bus_client_state(Sb), BUS_CLIENT_READY);
	mn_advance(&n, 600 * MS);
	assert_int_equal(bus_client_state(Sb), BUS_CLIENT_READY);
	(void)t0;
	struct bus_client_stats cs;
	bus_client_stats(Sb, &cs);
	assert_int_equal(cs.connects, 5);
	assert_int_equal(cs.handshake_failures, 3);
	/* a new success resets the backoff */
	mn_drop(&n, s);
	mn_advance(&n, 130 * MS);
	assert_int_equal(bus_client_state(Sb), BUS_CLIENT_READY);
	mn_free(&n);
}

static void test_busy_name_and_no_reconnect(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	mn_client(&n, "same", NULL);
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.reconnect = false;
	int b = mn_client(&n, "same", &cc);
	assert_int_equal(bus_client_state(mn_cl(&n, b)), BUS_CLIENT_CLOSED);
	struct bus_client_stats cs;
	bus_client_stats(mn_cl(&n, b), &cs);
	assert_int_equal(cs.handshake_failures, 1);
	struct mn_link *L = &n.l[b];
	assert_int_equal(L->states[L->states_n - 1], BUS_CLIENT_CLOSED);
	assert_int_equal(L->reasons[L->states_n - 1], BUS_EBUSY);
	mn_free(&n);
}

static void test_pings_keep_alive(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg(); /* broker timeout 5 s */
	mn_init(&n, &cfg);
	int a = mn_client(&n, "quiet", NULL);
	mn_advance(&n, 60 * S);
	assert_int_equal(bus_client_state(mn_cl(&n, a)), BUS_CLIENT_READY);
	struct bus_client_stats cs;
	bus_client_stats(mn_cl(&n, a), &cs);
	assert_in_range(cs.pings, 55, 61);
	assert_int_equal(cs.connects, 1);
	/* a broker that goes silent: the client gives up after 10 s */
	n.l[a].stalled = true;
	mn_advance(&n, 11 * S);
	bus_client_stats(mn_cl(&n, a), &cs);
	assert_true(cs.disconnects >= 1);
	n.l[a].stalled = false;
	mn_advance(&n, 20 * S);
	assert_int_equal(bus_client_state(mn_cl(&n, a)), BUS_CLIENT_READY);
	mn_free(&n);
}

static void test_split_streams(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int p = mn_client(&n, "pub", NULL);
	n.l[0].chunk = 1;
	int s = mn_client(&n, "sub", NULL);
	n.l[s].chunk = 3;
	const char *m[] = {"#"};
	bus_client_subscribe(mn_cl(&n, s), m, 1, NULL, NULL);
	mn_run(&n);
	for (int i = 0; i < 100; i++) {
		char d[16];
		snprintf(d, sizeof(d), "%03d", i);
		assert_int_equal(bus_client_publish(mn_cl(&n, p), "t", d, 3, 0,
		                                    NULL, NULL),
		                 0);
	}
	mn_run(&n);
	int k = 0;
	for (int i = 0; i < n.l[s].log_n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "P pub t %03d", k);
		if (strcmp(n.l[s].log[i], want) == 0)
			k++;
	}
	assert_int_equal(k, 100);
	mn_free(&n);
}

static void test_coalescing_and_backpressure(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.flush_bytes = 16 << 10;
	cc.out_bytes_max = 64 << 10;
	int p = mn_client(&n, "pub", &cc);
	struct bus_client *P = mn_cl(&n, p);
	struct bus_client_stats a0, a1;
	bus_client_stats(P, &a0);
	char data[100] = {0};
	for (int i = 0; i < 100; i++)
		assert_int_equal(bus_client_publish(P, "t", data, 100, 0, NULL,
		                                    NULL),
		                 0);
	bus_client_stats(P, &a1);
	assert_int_equal(a1.writes, a0.writes); /* nothing written yet */
	assert_int_equal(a1.frames_out, a0.frames_out); /* sent when written */
	mn_run(&n);
	bus_client_stats(P, &a1);
	assert_int_equal(a1.writes, a0.writes + 1); /* one write, 100 frames */
	assert_int_equal(a1.frames_out, a0.frames_out + 100);
	/* realtime flushes at once */
	assert_int_equal(bus_client_publish(P, "t", data, 10, BUS_QOS_REALTIME,
	                                    NULL, NULL),
	                 0);
	bus_client_stats(P, &a0);
	assert_int_equal(a0.writes, a1.writes + 1);
	mn_run(&n);
	/* fill past out_bytes_max without letting writes complete */
	int rc = 0, sent = 0;
	while ((rc = bus_client_publish(P, "t", data, 100, 0, NULL, NULL)) == 0)
		sent++;
	assert_int_equal(rc, BUS_EAGAIN);
	assert_in_range(sent, 500, 700);
	assert_int_equal(n.l[p].drains, 0);
	mn_run(&n);
	assert_int_equal(n.l[p].drains, 1);
	assert_int_equal(bus_client_out_pending(P), 0);
	/* frames queued when the connection drops were never sent */
	bus_client_stats(P, &a0);
	assert_int_equal(bus_client_publish(P, "t", data, 100, 0, NULL, NULL), 0);
	mn_drop(&n, p);
	mn_run(&n);
	bus_client_stats(P, &a1);
	assert_int_equal(a1.frames_out, a0.frames_out);
	mn_free(&n);
}

static void test_close(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int a = mn_client(&n, "a", NULL);
	int b = mn_client(&n, "b", NULL);
	const char *m[] = {"t"};
	bus_client_subscribe(mn_cl(&n, b), m, 1, NULL, NULL);
	mn_run(&n);
	struct rec r = {0};
	bus_client_publish(mn_cl(&n, a), "t", "last", 4, 1, done_cb, &r);
	bus_client_close(mn_cl(&n, a));
	assert_int_equal(bus_client_publish(mn_cl(&n, a), "t", "x", 1, 0, NULL,
	                                    NULL),
	                 BUS_ECLOSED);
	mn_run(&n);
	assert_int_equal(bus_client_state(mn_cl(&n, a)), BUS_CLIENT_CLOSED);
	assert_true(logged(&n.l[b], "P a t last")); /* buffered frames went */
	assert_int_equal(r.n, 1); /* the ACK was pending: closed */
	mn_advance(&n, 5 * S);
	struct bus_stats st;
	bus_core_stats(n.core, &st);
	assert_int_equal(st.clients, 1);
	/* close while disconnected: CLOSED on the next tick */
	mn_drop(&n, b);
	bus_client_close(mn_cl(&n, b));
	mn_advance(&n, 1 * MS);
	assert_int_equal(bus_client_state(mn_cl(&n, b)), BUS_CLIENT_CLOSED);
	mn_free(&n);
}

/* calls_max bounds the calls in flight, not the calls ever made: each
 * finished call gives its place back. */
static void test_calls_max_counts_calls_in_flight(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.calls_max = 2;
	int a = mn_client(&n, "alpha", &cc);
	struct bus_client *A = mn_cl(&n, a);
	struct rec r = {0};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(bus_client_rpc_call(A, ".broker", "test", NULL, 0,
		                                     NULL, rpc_cb, &r),
		                 0);
		mn_run(&n);
		assert_int_equal(r.n, i + 1);
		assert_int_equal(r.status[i], 0);
	}
	/* two in flight: the third is refused until one finishes */
	assert_int_equal(bus_client_rpc_call(A, ".broker", "test", NULL, 0, NULL,
	                                     rpc_cb, &r),
	                 0);
	assert_int_equal(bus_client_rpc_call(A, ".broker", "test", NULL, 0, NULL,
	                                     rpc_cb, &r),
	                 0);
	assert_int_not_equal(bus_client_rpc_call(A, ".broker", "test", NULL, 0,
	                                         NULL, rpc_cb, &r),
	                     0);
	mn_run(&n);
	assert_int_equal(r.n, 8);
	mn_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_op),
		cmocka_unit_test(test_subscribe_limit_forgets),
		cmocka_unit_test(test_ack_timeout),
		cmocka_unit_test(test_rpc),
		cmocka_unit_test(test_rpc_without_ack),
		cmocka_unit_test(test_calls_max_counts_calls_in_flight),
		cmocka_unit_test(test_rpc_survives_reconnect),
		cmocka_unit_test(test_reconnect_every_handshake_byte),
		cmocka_unit_test(test_backoff_and_refused),
		cmocka_unit_test(test_busy_name_and_no_reconnect),
		cmocka_unit_test(test_pings_keep_alive),
		cmocka_unit_test(test_split_streams),
		cmocka_unit_test(test_coalescing_and_backpressure),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_rpc_metrics),
		cmocka_unit_test(test_rpc_histogram_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
