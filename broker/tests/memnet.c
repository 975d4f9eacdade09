/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memnet.c — client cores and a broker core wired together in memory (see
 * memnet.h). Deterministic: no clock but n->now, no randomness but the
 * seeded splitmix64 in n->rng.
 */
#include "memnet.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                             \
	do {                                                                 \
		if (!(x)) {                                                  \
			fprintf(stderr, "memnet: %s failed at %s:%d\n", #x,  \
			        __FILE__, __LINE__);                         \
			abort();                                             \
		}                                                            \
	} while (0)

void mn_log(struct mn_link *l, const char *fmt, ...)
{
	CHECK(l->log_n < MN_LOG_MAX);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->log[l->log_n++], sizeof(l->log[0]), fmt, ap);
	va_end(ap);
}

/* ---- broker side ------------------------------------------------------- */
static void b_write(void *host, void *ctx, const struct bus_iov *iov, size_t n)
{
	(void)host;
	bus_link_b_write(&((struct mn_link *)ctx)->link, iov, n);
}

static void b_set_reading(void *host, void *ctx, bool reading)
{
	(void)host;
	bus_link_b_set_reading(&((struct mn_link *)ctx)->link, reading);
}

static void b_close(void *host, void *ctx)
{
	(void)host;
	bus_link_b_close(&((struct mn_link *)ctx)->link);
}

static const struct bus_core_ops b_ops = {b_write, b_set_reading, b_close,
                                          NULL, NULL};

/* ---- client side ------------------------------------------------------- */
static uint64_t c_now(void *host)
{
	struct mn_link *l = host;
	return l->net->now;
}

static uint64_t c_random(void *host)
{
	struct mn_link *l = host;
	return bus_splitmix64(&l->net->rng);
}

static void c_connect(void *host)
{
	bus_link_c_connect(&((struct mn_link *)host)->link);
}

static void c_write(void *host, const struct bus_iov *iov, size_t n)
{
	bus_link_c_write(&((struct mn_link *)host)->link, iov, n);
}

static void c_close(void *host)
{
	bus_link_c_close(&((struct mn_link *)host)->link);
}

static const struct bus_client_ops c_ops = {c_now, c_random, c_connect,
                                            c_write, c_close};

static uint64_t net_clock(void *arg) { return ((struct memnet *)arg)->now; }

/* ---- the link's shape ---------------------------------------------------- */
static size_t shape_allow(void *arg, int dir, size_t want, bool *lose)
{
	struct mn_link *l = arg;
	if (dir == BUS_LINK_B2C && l->stalled)
		return 0;
	if (l->chunk && want > l->chunk)
		want = l->chunk;
	if (l->drop_at != UINT64_MAX && l->link.bytes + want > l->drop_at)
		want = (size_t)(l->drop_at - l->link.bytes);
	*lose = dir == BUS_LINK_C2B && l->blackhole;
	return want;
}

static bool shape_refuse(void *arg)
{
	struct mn_link *l = arg;
	if (l->refuse <= 0)
		return false;
	l->refuse--;
	return true;
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	(void)c;
	struct mn_link *l = arg;
	char k = d->kind == BUS_OP_PUBLISH ? 'P'
	         : d->kind == BUS_OP_MESSAGE ? 'M' : 'B';
	if (d->topic)
		mn_log(l, "%c %s %s %.*s", k, d->sender, d->topic, (int)d->len,
		       (const char *)d->data);
	else
		mn_log(l, "%c %s %.*s", k, d->sender, (int)d->len,
		       (const char *)d->data);
}

static void on_rpc(struct bus_client *c, const struct bus_rpc_request *r,
                   void *arg)
{
	struct mn_link *l = arg;
	if (l->rpc_hook) {
		l->rpc_hook(c, r, l->rpc_hook_arg);
		return;
	}
	if (!r->method) {
		mn_log(l, "N %s %.*s", r->sender, (int)r->params_len,
		       (const char *)r->params);
		return;
	}
	mn_log(l, "R %s %s %.*s", r->sender, r->method, (int)r->params_len,
	       (const char *)r->params);
	if (l->rpc_answer == 1 || r->call_id == 0)
		return;
	if (l->rpc_answer == 0)
		CHECK(bus_client_rpc_reply(c, r->sender, r->call_id, r->params,
		                           r->params_len) == 0);
	else
		CHECK(bus_client_rpc_error(c, r->sender, r->call_id,
		                           l->rpc_answer, "no", 2) == 0);
}

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	(void)c;
	struct mn_link *l = arg;
	if (l->states_n < 64) {
		l->reasons[l->states_n] = reason;
		l->states[l->states_n++] = st;
	}
}

static void on_drain(struct bus_client *c, void *arg)
{
	(void)c;
	struct mn_link *l = arg;
	l->drains++;
}

/* ---- the net ------------------------------------------------------------ */
void mn_init(struct memnet *n, struct bus_core_config *cfg)
{
	memset(n, 0, sizeof(*n));
	n->now = 1000000000ull;
	n->rng = 42;
	n->core = bus_core_new(cfg, &b_ops, n, n->now, 1700000000000000000ull);
	CHECK(n->core);
}

void mn_free(struct memnet *n)
{
	for (int i = 0; i < n->n; i++) {
		bus_client_free(n->l[i].cl);
		bus_link_free(&n->l[i].link);
	}
	bus_core_free(n->core);
}

int mn_client(struct memnet *n, const char *name,
              const struct bus_client_config *cfg)
{
	CHECK(n->n < MN_LINKS_MAX);
	int i = n->n++;
	struct mn_link *l = &n->l[i];
	l->net = n;
	l->idx = i;
	l->drop_at = UINT64_MAX;
	struct bus_client_config dc;
	if (!cfg) {
		bus_client_config_defaults(&dc);
		cfg = &dc;
	}
	struct bus_client_config cc = *cfg;
	cc.name = name;
	struct bus_client_handlers h = {on_delivery, on_rpc, on_state, on_drain,
	                                l};
	l->cl = bus_client_new(&cc, &c_ops, l, &h);
	CHECK(l->cl);
	bus_link_init(&l->link, n->core, l->cl, l, BUS_KIND_LOCAL_IPC,
	              net_clock, n);
	l->shape = (struct bus_link_shape){shape_allow, shape_refuse, NULL, l};
	l->link.shape = &l->shape;
	if (i > 0)
		n->l[i - 1].link.next = &l->link;
	bus_client_start(l->cl);
	bus_client_on_tick(l->cl);
	mn_run(n);
	return i;
}

struct bus_client *mn_cl(struct memnet *n, int i) { return n->l[i].cl; }

void mn_drop(struct memnet *n, int i)
{
	bus_link_drop(&n->l[i].link);
	mn_run(n);
}

void mn_run(struct memnet *n)
{
	for (int guard = 0;; guard++) {
		CHECK(guard < 100000);
		bool busy = n->n && bus_link_pump(&n->l[0].link, n->core, 1000);
		bool dropped = false;
		for (int i = 0; i < n->n; i++) {
			struct mn_link *l = &n->l[i];
			if (l->link.conn && l->link.bytes == l->drop_at) {
				l->drop_at = UINT64_MAX;
				bus_link_drop(&l->link);
				dropped = true;
			}
		}
		if (!busy && !dropped) {
			char why[256];
			int rc = bus_core_check_invariants(n->core, why,
			                                   sizeof(why));
			for (int i = 0; !rc && i < n->n; i++)
				rc = bus_client_check_invariants(n->l[i].cl, why,
				                                 sizeof(why));
			if (rc) {
				fprintf(stderr, "memnet: invariant: %s\n", why);
				abort();
			}
			return;
		}
	}
}

static uint64_t next_deadline(struct memnet *n)
{
	uint64_t d = bus_core_next_deadline(n->core);
	for (int i = 0; i < n->n; i++) {
		uint64_t x = bus_client_next_deadline(n->l[i].cl);
		if (x < d)
			d = x;
	}
	return d;
}

void mn_advance(struct memnet *n, uint64_t ns)
{
	uint64_t target = n->now + ns;
	mn_run(n); /* what is pending happens now, not at the next deadline */
	for (int guard = 0;; guard++) {
		CHECK(guard < 1000000);
		uint64_t d = next_deadline(n);
		if (d > target)
			n->now = target;
		else if (d > n->now)
			n->now = d;
		bus_core_on_tick(n->core, n->now);
		for (int i = 0; i < n->n; i++)
			bus_client_on_tick(n->l[i].cl);
		mn_run(n);
		if (n->now >= target && next_deadline(n) > n->now)
			return;
	}
}
