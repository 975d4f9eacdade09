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
	struct mn_link *l = ctx;
	CHECK(!l->b_write);
	if (l->b_cap < n) {
		l->b_iov = realloc(l->b_iov, sizeof(*iov) * n);
		CHECK(l->b_iov);
		l->b_cap = n;
	}
	memcpy(l->b_iov, iov, sizeof(*iov) * n);
	l->b_n = n;
	l->b_i = l->b_off = 0;
	l->b_write = true;
}

static void b_set_reading(void *host, void *ctx, bool reading)
{
	(void)host;
	struct mn_link *l = ctx;
	l->paused = !reading; /* backpressure: the client's bytes wait */
}

static void b_close(void *host, void *ctx)
{
	(void)host;
	struct mn_link *l = ctx;
	l->broker_close = true;
}

static const struct bus_core_ops b_ops = {b_write, b_set_reading, b_close,
                                          NULL};

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
	struct mn_link *l = host;
	l->connect_req = true;
}

static void c_write(void *host, const struct bus_iov *iov, size_t n)
{
	struct mn_link *l = host;
	CHECK(!l->c_write && n == 1);
	l->c_iov = iov[0];
	l->c_off = 0;
	l->c_write = true;
}

static void c_close(void *host)
{
	struct mn_link *l = host;
	l->client_close = true;
}

static const struct bus_client_ops c_ops = {c_now, c_random, c_connect,
                                            c_write, c_close};

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
		free(n->l[i].b_iov);
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
	bus_client_start(l->cl);
	bus_client_on_tick(l->cl);
	mn_run(n);
	return i;
}

struct bus_client *mn_cl(struct memnet *n, int i) { return n->l[i].cl; }

static void close_link(struct memnet *n, struct mn_link *l)
{
	bool had = l->conn != NULL || l->c_write || l->b_write ||
	           bus_client_state(l->cl) == BUS_CLIENT_CONNECTING ||
	           bus_client_state(l->cl) == BUS_CLIENT_HANDSHAKE ||
	           bus_client_state(l->cl) == BUS_CLIENT_READY;
	l->connect_req = l->client_close = l->broker_close = false;
	l->c_write = l->b_write = false;
	l->paused = false;
	if (l->conn) {
		struct bus_conn *c = l->conn;
		l->conn = NULL;
		bus_core_on_close(n->core, c, n->now);
	}
	if (had)
		bus_client_on_close(l->cl, BUS_ECLOSED);
}

void mn_drop(struct memnet *n, int i)
{
	close_link(n, &n->l[i]);
	mn_run(n);
}

/* How many of want bytes may cross now (chunking, drop point). */
static size_t allowance(struct mn_link *l, size_t want)
{
	if (l->chunk && want > l->chunk)
		want = l->chunk;
	if (l->drop_at != UINT64_MAX && l->bytes + want > l->drop_at)
		want = (size_t)(l->drop_at - l->bytes);
	return want;
}

/* Returns true if anything moved. */
static bool step_link(struct memnet *n, struct mn_link *l)
{
	bool moved = false;
	if (l->client_close || l->broker_close) {
		close_link(n, l);
		return true;
	}
	if (l->connect_req) {
		l->connect_req = false;
		if (l->refuse > 0) {
			l->refuse--;
			bus_client_on_close(l->cl, BUS_EIO);
			return true;
		}
		l->conn = bus_core_on_connect(n->core, l, BUS_KIND_LOCAL_IPC,
		                              "", "", n->now);
		CHECK(l->conn);
		bus_client_on_connected(l->cl);
		moved = true;
	}
	if (l->c_write && l->conn && !l->paused) {
		size_t k = allowance(l, l->c_iov.len - l->c_off);
		if (k) {
			const uint8_t *p = l->c_iov.base;
			l->c_off += k;
			l->bytes += k;
			if (!l->blackhole)
				bus_core_on_bytes(n->core, l->conn,
				                  p + l->c_off - k, k, n->now);
			moved = true;
		}
		if (l->bytes == l->drop_at) {
			l->drop_at = UINT64_MAX;
			close_link(n, l);
			return true;
		}
		if (l->c_write && l->c_off == l->c_iov.len) {
			l->c_write = false;
			bus_client_on_written(l->cl, 0);
			moved = true;
		}
	}
	if (l->b_write && l->conn && !l->stalled) {
		while (l->b_i < l->b_n &&
		       l->b_off == l->b_iov[l->b_i].len) {
			l->b_i++;
			l->b_off = 0;
		}
		if (l->b_i < l->b_n) {
			const struct bus_iov *v = &l->b_iov[l->b_i];
			size_t k = allowance(l, v->len - l->b_off);
			if (k) {
				l->b_off += k;
				l->bytes += k;
				bus_client_on_bytes(l->cl,
				                    (const uint8_t *)v->base +
				                            l->b_off - k,
				                    k);
				moved = true;
			}
		}
		if (l->bytes == l->drop_at) {
			l->drop_at = UINT64_MAX;
			close_link(n, l);
			return true;
		}
		while (l->b_i < l->b_n && l->b_off == l->b_iov[l->b_i].len) {
			l->b_i++;
			l->b_off = 0;
		}
		if (l->b_write && l->b_i == l->b_n && l->conn) {
			l->b_write = false;
			bus_core_on_written(n->core, l->conn, 0, n->now);
			moved = true;
		}
	}
	return moved;
}

void mn_run(struct memnet *n)
{
	for (int guard = 0;; guard++) {
		CHECK(guard < 10000000);
		bool moved = false;
		for (int i = 0; i < n->n; i++)
			moved |= step_link(n, &n->l[i]);
		bus_core_flush(n->core, n->now);
		for (int i = 0; i < n->n; i++) {
			struct mn_link *l = &n->l[i];
			bus_client_flush(l->cl);
			moved |= l->connect_req || l->client_close ||
			         l->broker_close ||
			         (l->c_write && l->conn && !l->paused) ||
			         (l->b_write && l->conn && !l->stalled);
		}
		if (!moved) {
			char why[256];
			if (bus_core_check_invariants(n->core, why, sizeof(why))) {
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
