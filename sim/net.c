/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net.c — the simulated network and the broker's life: the event queue,
 * the fault sites, the pipes of byte segments (latency, jitter, short
 * reads, backpressure), connections and how they end, the broker's and
 * the clients' host ops, and the embedded agent's in-memory link (the
 * shipped broker/core/link.c).
 *
 * The network: each connection is two pipes of byte segments; a segment
 * becomes readable after a latency (50 us plus up to 50 us of jitter, more
 * in a delay fault) and never before the one ahead of it (FIFO, like TCP).
 * Reads take what is ready, or 1..16 bytes during a short-I/O fault. A
 * write completes at once while the reader's pipe holds under SOCKBUF
 * bytes, later otherwise — so a consumer that stops reading pushes back on
 * the broker, whose queue policy then acts. Nothing here calls back into a
 * core from inside one of its calls: core and client effects become events.
 */
#include "simint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the event queue ------------------------------------------------------------ */
static bool ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void push(struct sim *s, uint64_t t, int type, int link, uint64_t arg)
{
	if (s->n_ev == s->cap_ev) {
		s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 1024;
		s->ev = realloc(s->ev, s->cap_ev * sizeof(*s->ev));
		if (!s->ev)
			abort();
	}
	struct sim_ev e = {t, s->ev_seq++, type, link,
	                   link >= 0 ? s->links[link].epoch : 0, arg};
	size_t i = s->n_ev++;
	while (i > 0 && ev_less(&e, &s->ev[(i - 1) / 2])) {
		s->ev[i] = s->ev[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->ev[i] = e;
}

struct sim_ev pop(struct sim *s)
{
	struct sim_ev top = s->ev[0], last = s->ev[--s->n_ev];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_ev)
			break;
		if (c + 1 < s->n_ev && ev_less(&s->ev[c + 1], &s->ev[c]))
			c++;
		if (!ev_less(&s->ev[c], &last))
			break;
		s->ev[i] = s->ev[c];
		i = c;
	}
	if (s->n_ev)
		s->ev[i] = last;
	return top;
}

void window(struct sim *s, uint64_t from, uint64_t to)
{
	s->windows = realloc(s->windows, (s->n_windows + 1) * 2 * sizeof(uint64_t));
	if (!s->windows)
		abort();
	s->windows[2 * s->n_windows] = from;
	s->windows[2 * s->n_windows + 1] = to;
	s->n_windows++;
}

/* ---- fault sites (BUGGIFY, bus.h) ---------------------------------------------------------
 * An armed site fires on one in rate[site] of the times it is reached,
 * while the workload runs. Sites that can lose events (a failed
 * allocation) open a fault window like a fault's; the others only change
 * how bytes are cut or when they go: a queue taken as full makes the
 * sender wait (block) or is the policy's own act, reported event by event
 * (disconnect, drop_newest); output taken as full keeps the event in the
 * collector's outbox. */
static const uint32_t site_rate[BUS_SITE_N] = {
	[BUS_SITE_CORE_ALLOC] = 400,       [BUS_SITE_CORE_QUEUE_FULL] = 1000,
	[BUS_SITE_CORE_WRITE_ONE] = 8,     [BUS_SITE_CLIENT_ALLOC] = 400,
	[BUS_SITE_CLIENT_OUT_FULL] = 100,  [BUS_SITE_NET_ONE_BYTE] = 8,
};

static bool site_fires(struct sim *s, enum bus_site site)
{
	if (s->quiet || s->finishing)
		return false;
	s->r->reached[site]++;
	if (!(s->r->buggify & 1u << site) || s->now >= s->end ||
	    sim_below(&s->rng[SIM_RNG_BUGGIFY], site_rate[site]))
		return false;
	s->r->fired[site]++;
	struct tline l; /* by hand: short-I/O runs hold thousands */
	line_start(s, &l);
	put_str(&l, "buggify ");
	put_str(&l, sim_site_names[site]);
	line_end(s, &l);
	if (LOSSY_SITES & 1u << site) {
		/* a fault that heals at once: liveness counts from the last */
		if (s->now > s->last_fault_end)
			s->last_fault_end = s->now;
		for (int i = 0; i < s->n_cols; i++)
			s->cols[i].healed_hb_ok = s->cols[i].healed_hc_ok = 0;
		/* from a second before (what was in flight or queued when it
		 * fired), merged with the last window when they meet */
		uint64_t from = s->now > SIM_S ? s->now - SIM_S : 0;
		uint64_t to = s->now + 6 * SIM_S;
		if (s->n_windows && s->windows[2 * s->n_windows - 2] <= from &&
		    s->windows[2 * s->n_windows - 1] >= from)
			s->windows[2 * s->n_windows - 1] = to;
		else
			window(s, from, to);
	}
	return true;
}

/* The cores' sites (bus_sim_hooks.buggify): arg is the run. */
bool site_hook(void *arg, enum bus_site site)
{
	return site_fires(arg, site);
}

/* The allocators of the broker core and the client cores: ctx says whose
 * and which site (core.alloc or client.alloc). */
void *site_alloc(void *ctx, size_t n)
{
	const struct sim_alloc_site *a = ctx;
	if (site_fires(a->s, a->site))
		return NULL;
	return malloc(n);
}

void *site_realloc(void *ctx, void *p, size_t n)
{
	const struct sim_alloc_site *a = ctx;
	if (site_fires(a->s, a->site))
		return NULL;
	return realloc(p, n);
}

void site_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* ---- pipes ------------------------------------------------------------------------ */
static uint64_t latency(struct sim *s)
{
	struct sim_rng *r = &s->rng[SIM_RNG_NET];
	uint64_t d = 50000 + sim_below(r, 50000);
	if (s->now < s->delay_until)
		d += s->delay_ns + sim_below(r, s->delay_ns + 1);
	return d;
}

void pipe_clear(struct pipe *p)
{
	for (struct seg *g = p->head, *n; g; g = n) {
		n = g->next;
		free(g);
	}
	memset(p, 0, sizeof(*p));
}

void arm(struct sim *s, struct link *l, int dir)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	if (p->pump_armed || !p->head || (dir && l->stalled) ||
	    (!dir && l->b_paused))
		return;
	p->pump_armed = true;
	uint64_t t = p->head->ready > s->now ? p->head->ready : s->now;
	push(s, t, dir ? EV_PUMP_B2C : EV_PUMP_C2B, l->idx, 0);
}

/* ---- the accounting's offsets (ledger.c) -------------------------------------- */
typedef unsigned long long ull;
/* Where the writer of dir has counted to: its completed writes (the one in
 * flight, on a socket or on the internal link, is not counted yet). */
static uint64_t written(const struct link *l, int dir)
{
	const struct ledger *g = &l->led[dir];
	uint64_t inflight = dir == BUS_LINK_C2B ? l->c_inflight : l->b_inflight;
	if (l->internal && !(dir == BUS_LINK_C2B ? l->il.c_write : l->il.b_write))
		inflight = 0; /* the link completed it */
	return g->pushed - inflight;
}

/* Where the reader of dir has counted to: the bytes the broker's core
 * took, or the client's (a raw connection's reader counts nothing). */
static uint64_t handled(const struct sim *s, const struct link *l, int dir,
                        const struct bus_conn *conn)
{
	if (dir == BUS_LINK_C2B)
		return conn && s->core ? bus_conn_rx_used(conn) : written(l, 0);
	if (!l->cl || !l->counted)
		return written(l, 1);
	struct bus_client_stats st;
	bus_client_stats(l->cl, &st);
	return st.stream_in - l->base_stream;
}

struct bus_conn *conn_of(const struct link *l)
{
	return l->internal ? l->il.conn : l->conn;
}

/* Bytes a side wrote into l's direction dir: the ledger reads them. Ends
 * below both sides' offsets are forgotten now and then (a long
 * connection's ledger stays small). */
static void carried(struct sim *s, struct link *l, int dir,
                    const struct bus_iov *iov, size_t n)
{
	struct ledger *g = &l->led[dir];
	if (!l->acct_open)
		return;
	for (size_t i = 0; i < n; i++)
		ledger_feed(g, iov[i].base, iov[i].len);
	if (g->n >= 256) {
		uint64_t w = written(l, dir), h = handled(s, l, dir, conn_of(l));
		ledger_forget(g, w < h ? w : h);
	}
}

/* A connection to the current broker opens: its ledgers start. */
static void acct_start(struct link *l)
{
	ledger_reset(&l->led[BUS_LINK_C2B], BUS_LINK_C2B);
	ledger_reset(&l->led[BUS_LINK_B2C], BUS_LINK_B2C);
	l->b_inflight = 0;
	l->acct_open = true;
}

static void acct_fault(struct sim *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void acct_fault(struct sim *s, const char *fmt, ...)
{
	if (s->acct_fault[0])
		return; /* the first is the one reported */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->acct_fault, sizeof(s->acct_fault), fmt, ap);
	va_end(ap);
	s->acct_fault_at = s->now;
}

void conn_accounted(struct sim *s, struct link *l, struct bus_conn *conn,
                    bool ended)
{
	if (!l->acct_open)
		return;
	const struct ledger *c2b = &l->led[BUS_LINK_C2B];
	const struct ledger *b2c = &l->led[BUS_LINK_B2C];
	uint64_t sent = ledger_count(c2b, written(l, BUS_LINK_C2B));
	uint64_t wrote = ledger_count(b2c, written(l, BUS_LINK_B2C));
	uint64_t got = ledger_count(b2c, handled(s, l, BUS_LINK_B2C, conn));
	if (conn && s->core) { /* this broker's: what it must have counted */
		uint64_t read = ledger_count(c2b, handled(s, l, BUS_LINK_C2B,
		                                          conn));
		s->acc_out += read;
		s->acc_in += wrote;
		if (ended) {
			s->flight_c2b += sent > read ? sent - read : 0;
			s->flight_b2c += wrote > got ? wrote - got : 0;
		} else if (l->cl && l->counted && (sent != read || wrote != got)) {
			/* the end drains what is in flight: nothing may stay */
			acct_fault(s, "%s at the end: %llu frames written, %llu "
			           "read by the broker; %llu written by the broker, "
			           "%llu read", l->name, (ull)sent, (ull)read,
			           (ull)wrote, (ull)got);
		}
	}
	if (l->cl && l->counted) { /* the client's own counters */
		struct bus_client_stats st;
		bus_client_stats(l->cl, &st);
		uint64_t out = st.frames_out - l->base_out;
		uint64_t in = st.frames_in - st.nops_in + st.acks - l->base_in;
		if (out != sent || in != got)
			acct_fault(s, "%s counted %llu frames written and %llu "
			           "read; its bytes hold %llu and %llu", l->name,
			           (ull)out, (ull)in, (ull)sent, (ull)got);
	}
	if (ended) {
		l->acct_open = false;
		ledger_reset(&l->led[BUS_LINK_C2B], BUS_LINK_C2B);
		ledger_reset(&l->led[BUS_LINK_B2C], BUS_LINK_B2C);
	}
}

void pipe_push(struct sim *s, struct link *l, int dir,
	       const struct bus_iov *iov, size_t n)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += iov[i].len;
	if (!len)
		return;
	carried(s, l, dir, iov, n);
	struct seg *g = malloc(sizeof(*g) + len);
	if (!g)
		abort();
	g->off = 0;
	g->next = NULL;
	for (size_t i = 0, off = 0; i < n; off += iov[i].len, i++)
		memcpy(g->data + off, iov[i].base, iov[i].len);
	g->len = len;
	uint64_t ready = s->now + latency(s);
	g->ready = ready > p->last_ready ? ready : p->last_ready;
	p->last_ready = g->ready;
	if (p->tail)
		p->tail->next = g;
	else
		p->head = g;
	p->tail = g;
	p->bytes += len;
	arm(s, l, dir);
}

/* ---- connections ------------------------------------------------------------------ */

/* How a connection ends: which side closed decides what in-flight bytes
 * still arrive. The side that closed wrote before closing, so what it
 * wrote reaches the other side; what the other side had sent towards it
 * is lost (the socket is gone). A reset or a crash loses both ways. */

void teardown(struct sim *s, struct link *l, enum end how,
	      const char *why)
{
	if (how == END_CLIENT_CLOSED && l->conn)
		deliver_all(s, l, 0);
	if (how == END_BROKER_CLOSED && l->conn &&
	    (l->cl || l->kind == LK_IMPOSTOR)) /* its refusal, then the close */
		deliver_all(s, l, 1);
	struct bus_conn *conn = conn_of(l);
	bool had = conn != NULL || l->cl != NULL;
	/* what it carried, to the byte: what is in the pipes, what the
	 * broker read and did not handle, dies here, and is accounted */
	conn_accounted(s, l, conn, true);
	l->conn = NULL;
	l->counted = false;
	l->b_closing = l->c_closing = false;
	l->epoch++;
	l->b_write_blocked = l->c_write_blocked = l->b_paused = false;
	l->c_inflight = l->b_inflight = 0;
	pipe_clear(&l->c2b);
	pipe_clear(&l->b2c);
	if (l->internal) { /* the link tells both sides */
		if (!s->core)
			l->il.conn = NULL; /* the core went whole */
		if (had)
			sim_trace(s, "close %s (%s)", l->name, why);
		if (l->cl)
			bus_link_drop(&l->il);
		return;
	}
	if (conn && s->core)
		bus_core_on_close(s->core, conn, s->now);
	if (had)
		sim_trace(s, "close %s (%s)", l->name, why);
	if (l->cl)
		bus_client_on_close(l->cl, BUS_ECLOSED);
}

static void deliver(struct sim *s, struct link *l, int dir, size_t max)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	struct seg *g = p->head;
	if (!g || g->ready > s->now || (dir == 0 && l->b_closing))
		return;
	size_t k = g->len - g->off;
	if (k > max)
		k = max;
	const uint8_t *data = g->data + g->off;
	g->off += k;
	p->bytes -= k;
	uint32_t epoch = l->epoch;
	if (dir == 0 && l->conn && s->core) {
		/* (if the broker closes it on a frame in this chunk, what
		 * followed that frame is read and never handled, as from a
		 * socket: the accounting finds it past bus_conn_rx_used) */
		bus_core_on_bytes(s->core, l->conn, data, k, s->now);
		l->c2b_read += k;
		sub_check(s, l);
	}
	else if (dir == 1 && l->cl) {
		bus_client_on_bytes(l->cl, data, k);
	}
	else if (dir == 1)
		raw_rx(s, l, data, k);
	if (l->epoch != epoch)
		return; /* the bytes closed the connection (pipes are gone) */
	if (g->off == g->len) {
		p->head = g->next;
		if (!p->head)
			p->tail = NULL;
		free(g);
	}
	if (dir == 1 && l->b_write_blocked && p->bytes <= SOCKBUF) {
		l->b_write_blocked = false;
		push(s, s->now, EV_BDONE, l->idx, 0);
	}
	if (dir == 0 && l->c_write_blocked && p->bytes <= SOCKBUF) {
		l->c_write_blocked = false;
		push(s, s->now, EV_CDONE, l->idx, 0);
	}
}

void deliver_all(struct sim *s, struct link *l, int dir)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	uint32_t epoch = l->epoch;
	while (p->head && l->epoch == epoch) {
		if (dir == 0 && l->b_closing)
			return; /* the broker reads no more of it */
		p->head->ready = s->now;
		deliver(s, l, dir, SIZE_MAX);
	}
}

void pump(struct sim *s, struct link *l, int dir)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	p->pump_armed = false;
	if ((dir && l->stalled) || (!dir && l->b_paused))
		return;
	size_t max = s->now < s->short_until
	                     ? 1 + (size_t)sim_below(&s->rng[SIM_RNG_NET], 16)
	                     : SIZE_MAX;
	if (site_fires(s, BUS_SITE_NET_ONE_BYTE))
		max = 1;
	uint32_t epoch = l->epoch;
	deliver(s, l, dir, max);
	if (l->epoch == epoch)
		arm(s, l, dir);
}

/* ---- the broker's host ops ---------------------------------------------------------- */
static void b_write(void *host, void *ctx, const struct bus_iov *iov, size_t n)
{
	struct sim *s = host;
	struct link *l = &s->links[(intptr_t)ctx];
	uint64_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += iov[i].len;
	if (l->internal) {
		carried(s, l, 1, iov, n);
		l->b_inflight = len;
		bus_link_b_write(&l->il, iov, n);
		return;
	}
	pipe_push(s, l, 1, iov, n);
	l->b_inflight = len; /* counted by the broker when it completes */
	if (l->b2c.bytes <= SOCKBUF)
		push(s, s->now, EV_BDONE, l->idx, 0);
	else
		l->b_write_blocked = true;
}

/* The broker pauses reading a sender that waits for a full receiver
 * (backpressure): its bytes stay in the pipe, and its writes stop
 * completing once the pipe holds a socket buffer's worth. */
static void b_set_reading(void *host, void *ctx, bool reading)
{
	struct sim *s = host;
	struct link *l = &s->links[(intptr_t)ctx];
	if (l->internal) {
		bus_link_b_set_reading(&l->il, reading);
		return;
	}
	l->b_paused = !reading;
	if (reading)
		arm(s, l, 0);
}

static void b_close(void *host, void *ctx)
{
	struct sim *s = host;
	if (s->links[(intptr_t)ctx].internal) {
		bus_link_b_close(&s->links[(intptr_t)ctx].il);
		return;
	}
	s->links[(intptr_t)ctx].b_closing = true; /* reads no more */
	push(s, s->now, EV_CLOSE_B, (int)(intptr_t)ctx, 0);
}

static const struct bus_core_ops b_ops = {b_write, b_set_reading, b_close,
                                          NULL, NULL};

void broker_start(struct sim *s)
{
	s->quiet = true; /* a broker that cannot start is not the point */
	s->core = bus_core_new(&s->core_cfg, &b_ops, s, s->now,
	                       REALTIME_BASE + s->now);
	s->quiet = false;
	if (!s->core)
		abort();
	s->broker_up = true;
	s->acc_out = s->acc_in = 0;
	sim_trace(s, "broker up");
}

void broker_crash(struct sim *s)
{
	if (!s->broker_up)
		return;
	sim_trace(s, "broker crash");
	struct bus_core *core = s->core;
	s->core = NULL; /* the core goes whole: no per-connection close */
	for (int i = 0; i < s->n_links; i++) {
		struct link *l = &s->links[i];
		if (!l->conn && !(l->internal && l->il.conn))
			continue;
		l->conn = NULL;
		teardown(s, l, END_RESET, "broker crashed");
	}
	bus_core_free(core);
	s->broker_up = false;
	s->r->broker_restarts++;
}

/* ---- the clients' host ops ------------------------------------------------------------ */
uint64_t c_now(void *host)
{
	return ((struct link *)host)->s->now;
}

static uint64_t c_random(void *host)
{
	return sim_rand(&((struct link *)host)->s->rng[SIM_RNG_CLIENT]);
}

static void c_connect(void *host)
{
	struct link *l = host;
	push(l->s, l->s->now + latency(l->s), EV_CONNECT, l->idx, 0);
}

void c_write(void *host, const struct bus_iov *iov, size_t n)
{
	struct link *l = host;
	l->c_inflight = 0;
	for (size_t i = 0; i < n; i++)
		l->c_inflight += iov[i].len;
	l->c2b_written += l->c_inflight;
	pipe_push(l->s, l, 0, iov, n);
	if (l->c2b.bytes <= SOCKBUF)
		push(l->s, l->s->now, EV_CDONE, l->idx, 0);
	else
		l->c_write_blocked = true;
}

static void c_close(void *host)
{
	struct link *l = host;
	l->c_closing = true;
	push(l->s, l->s->now, EV_CLOSE_C, l->idx, 0);
}

const struct bus_client_ops c_ops = {c_now, c_random, c_connect,
                                            c_write, c_close};

uint64_t sim_clock(void *arg) { return ((struct sim *)arg)->now; }

/* A connection of l's to the current broker starts: its ledgers, and
 * its client's counters from now (what a client counts that the broker
 * counts too: the frames it wrote, and those it read, keepalives aside,
 * ACKs in). */
void count_from_now(struct sim *s, struct link *l)
{
	if (l->cl) {
		struct bus_client_stats st;
		bus_client_stats(l->cl, &st);
		l->base_out = st.frames_out;
		l->base_in = st.frames_in - st.nops_in + st.acks;
		l->base_stream = st.stream_in;
	}
	l->counted = s->broker_up && l->cl;
	if (s->broker_up)
		acct_start(l);
}

/* The internal client's ops: the shipped link (bus/link.h), pumped by
* flush_all as the libuv host pumps it, outside every core call. */
static void ic_connect(void *host)
{
	struct link *l = host;
	struct sim *s = l->s;
	l->il.core = s->broker_up ? s->core : NULL;
	l->c2b_written = l->c2b_read = l->c_inflight = 0;
	count_from_now(s, l);
	sim_trace(s, "connect %s (internal)", l->name);
	bus_link_c_connect(&l->il);
}

static void ic_write(void *host, const struct bus_iov *iov, size_t n)
{
	struct link *l = host;
	l->c2b_written += iov[0].len;
	carried(l->s, l, 0, iov, n);
	l->c_inflight = iov[0].len; /* while the link has it (il.c_write) */
	bus_link_c_write(&l->il, iov, n);
}

static void ic_close(void *host)
{
	bus_link_c_close(&((struct link *)host)->il);
}

const struct bus_client_ops ic_ops = {c_now, c_random, ic_connect,
                                             ic_write, ic_close};

/* The link breaks (the broker closed it, or the client): what the
 * connection carried goes to the accounting, as teardown does for a
 * socket's; a write half read, or frames read and not handled, die with
 * it. A crash's teardown has done this already (counted is false). */
void ilink_dropping(void *arg, const struct bus_link *il)
{
	struct link *l = arg;
	struct sim *s = l->s;
	bool tell = l->counted && l->cl;
	conn_accounted(s, l, il->conn, true);
	if (!tell)
		return;
	l->counted = false;
	sim_trace(s, "close %s (%s)", l->name,
	          il->broker_close ? "broker closed" : "client closed");
}

/* One turn of the internal link: until nothing moves, or the turn's
 * rounds are spent (then it is busy: next_deadline says now). What the
 * broker has read of the client's bytes is what was written less the
 * unread rest of the write in flight (for when a receiver's
 * subscriptions are in effect). */
void ilink_pump(struct sim *s)
{
	if (s->agent_link < 0 || !s->links[s->agent_link].internal ||
	    !s->links[s->agent_link].cl)
		return;
	struct link *l = &s->links[s->agent_link];
	if (!bus_link_busy(&l->il))
		return; /* flush_all flushed both sides: nothing to move */
	bus_link_pump(&l->il, s->core, 64);
	l->c2b_read = l->c2b_written -
	              (l->il.c_write ? l->il.c_iov.len - l->il.c_off : 0);
	sub_check(s, l);
}

/* A raw connection's handshake: greeting, then its name. */
void raw_handshake(struct sim *s, struct link *l)
{
	uint8_t hs[3 + 2 + sizeof(l->name)];
	size_t n = strlen(l->name);
	hs[0] = BUS_GREETING;
	hs[1] = BUS_PROTOCOL_VERSION & 0xff;
	hs[2] = BUS_PROTOCOL_VERSION >> 8;
	hs[3] = (uint8_t)n;
	hs[4] = (uint8_t)(n >> 8);
	memcpy(hs + 5, l->name, n);
	struct bus_iov v = {hs, 5 + n};
	pipe_push(s, l, 0, &v, 1);
}

/* The rogue, registered, sends one malformed frame: some the decoder
 * refuses (not read: the broker's rx_used stops before them), some decode
 * and are refused by their handler (read: it passes them); the ledger
 * knows which from the broker's offset. */
void rogue_frame(struct sim *s, struct link *l)
{
	static const struct {
		uint8_t op;
		const char *data;
		uint32_t len;
	} bad[] = {
		{0x2A, "x", 1},                    /* no such operation */
		{0, "ping", 4},                    /* a ping with a payload */
		{BUS_OP_PUBLISH, "no-separator", 12},
		{BUS_OP_PUBLISH, "\xff\xfe\0data", 7}, /* topic not UTF-8 */
		{BUS_OP_SUBSCRIBE, "ev/\xc3", 4},   /* mask not UTF-8 */
		{BUS_OP_MESSAGE, "no-target", 9},
		{BUS_OP_PUBLISH, "", 0xfffffff0u}, /* over every limit */
	};
	struct sim_rng *r = &s->rng[SIM_RNG_FAULTS];
	size_t k = sim_below(r, sizeof(bad) / sizeof(bad[0]));
	uint8_t f[9 + 16];
	uint32_t id = (uint32_t)sim_rand(r), len = bad[k].len;
	memcpy(f, &id, 4);
	f[4] = (uint8_t)(bad[k].op | (bad[k].op ? sim_below(r, 4) << 6 : 0));
	for (int b = 0; b < 4; b++)
		f[5 + b] = (uint8_t)(len >> (8 * b));
	size_t n = 9;
	if (len <= 16) {
		memcpy(f + 9, bad[k].data, len);
		n += len;
	}
	struct bus_iov v = {f, n};
	pipe_push(s, l, 0, &v, 1);
	sim_trace(s, "rogue %s sends a malformed frame (%zu)", l->name, k);
}
