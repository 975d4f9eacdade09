/*
 * run.c — one simulated run: the virtual clock and event queue, the
 * simulated network, the broker core's life (and crashes), the actors
 * (collectors running procmond's collector code on the scenario's tables,
 * the agent running the supervision code, monitors) and the faults.
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
#include "bus/config.h" /* the ACL: bus_config_parse, bus_acl_defaults */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SOCKBUF (256u << 10)
#define REALTIME_BASE 1700000000000000000ull

enum {
	EV_CONNECT, EV_PUMP_C2B, EV_PUMP_B2C, EV_CDONE, EV_BDONE, EV_CLOSE_C,
	EV_CLOSE_B, EV_POLL, EV_SPAWN, EV_EXIT, EV_FAULT, EV_FAULT_END,
	EV_OPERATOR,
};

/* ---- randomness and the trace ------------------------------------------------- */
static uint64_t tape_read(struct sim_tape *t, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++, t->pos++)
		if (t->pos < t->n)
			v |= (uint64_t)t->p[t->pos] << (8 * i);
	return v;
}

uint64_t sim_rand(struct sim_rng *r)
{
	return r->tape ? tape_read(r->tape, 8) : bus_splitmix64(&r->state);
}

uint64_t sim_below(struct sim_rng *r, uint64_t n)
{
	if (!n)
		return 0;
	if (!r->tape)
		return sim_rand(r) % n;
	unsigned k = n <= 256 ? 1 : n <= 65536 ? 2 : n <= (1ull << 32) ? 4 : 8;
	return tape_read(r->tape, k) % n;
}

/* The 128-bit product of a and b, its halves folded. */
static inline uint64_t mul_fold(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A 64-bit hash of bytes (never 0): of payloads, to know deliveries by
 * their bytes, and of trace lines. Sixteen bytes per multiply, in two
 * independent lanes so that the multiplies overlap: the multiply chain of
 * eight bytes at a time was a tenth of a run. */
static uint64_t bytes_hash(const uint8_t *p, size_t n)
{
	const uint64_t k0 = 0xff51afd7ed558ccdull, k1 = 0xc4ceb9fe1a85ec53ull;
	uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = a ^ k1, w[4];
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		memcpy(w, p + i, 32);
		a = mul_fold(w[0] ^ k0, w[1] ^ a);
		b = mul_fold(w[2] ^ k1, w[3] ^ b);
	}
	memset(w, 0, sizeof(w));
	memcpy(w, p + i, n - i); /* the last 0..31 bytes, zero-padded */
	a = mul_fold(w[0] ^ k0, w[1] ^ a);
	b = mul_fold(w[2] ^ k1, w[3] ^ b);
	uint64_t h = mul_fold(a ^ k1, b ^ k0 ^ n);
	return h ? h : 1;
}

/* As snprintf(dst, n, "%s", src), without the formatting machinery. */
static void copy_str(char *dst, size_t n, const char *src)
{
	size_t k = strnlen(src, n - 1);
	memcpy(dst, src, k);
	dst[k] = 0;
}

/* A trace line under construction. The hot lines (every publish, every
 * delivery) are put together by hand, byte for byte what printf would
 * write: formatting was a fifth of a run. */
struct tline {
	char b[512];
	size_t n;
};

static void put_str(struct tline *l, const char *p)
{
	size_t k = strlen(p);
	if (k > sizeof(l->b) - 1 - l->n)
		k = sizeof(l->b) - 1 - l->n;
	memcpy(l->b + l->n, p, k);
	l->n += k;
}

static void put_u64(struct tline *l, uint64_t v, int width)
{
	if (l->n + 24 < sizeof(l->b))
		l->n = (size_t)(bus_put_u64(l->b + l->n, v, width) - l->b);
}

static void line_start(struct sim *s, struct tline *l)
{
	if (s->ts_at != s->now || !s->ts_n) { /* many lines share an instant */
		l->n = 0;
		put_u64(l, s->now / SIM_MS, 1);
		l->b[l->n++] = '.';
		put_u64(l, s->now % SIM_MS, 6);
		l->b[l->n++] = ' ';
		memcpy(s->ts, l->b, l->n);
		s->ts_n = l->n;
		s->ts_at = s->now;
		return;
	}
	memcpy(l->b, s->ts, s->ts_n);
	l->n = s->ts_n;
}

static void line_end(struct sim *s, const struct tline *l);

void sim_trace(struct sim *s, const char *fmt, ...)
{
	struct tline l;
	line_start(s, &l);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(l.b + l.n, sizeof(l.b) - l.n, fmt, ap);
	va_end(ap);
	l.n += m > 0 ? (size_t)m : 0;
	if (l.n >= sizeof(l.b))
		l.n = sizeof(l.b) - 1;
	line_end(s, &l);
}

/* Hashes the line into the trace's rolling hash, and writes it out. */
static void line_end(struct sim *s, const struct tline *l)
{
	const char *line = l->b;
	size_t n = l->n;
	/* rolling: each line's hash mixed into all that came before */
	s->hash = (s->hash ^ bytes_hash((const uint8_t *)line, n)) *
	          0x9e3779b97f4a7c15ull;
	s->hash ^= s->hash >> 31;
	s->r->events++;
	if (s->o->trace)
		fprintf(s->o->trace, "%.*s\n", (int)n, line);
}

/* ---- the event queue ------------------------------------------------------------ */
static bool ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct sim *s, uint64_t t, int type, int link, uint64_t arg)
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

static struct sim_ev pop(struct sim *s)
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

static void window(struct sim *s, uint64_t from, uint64_t to)
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
#define LOSSY_SITES (1u << BUS_SITE_CORE_ALLOC | 1u << BUS_SITE_CLIENT_ALLOC)

static bool site_fires(struct sim *s, enum bus_site site)
{
	if (s->quiet || s->finishing)
		return false;
	s->r->reached[site]++;
	if (!(s->r->buggify & 1u << site) || s->now >= s->end ||
	    sim_below(&s->rng[SIM_RNG_BUGGIFY], site_rate[site]))
		return false;
	s->r->fired[site]++;
	sim_trace(s, "buggify %s", sim_site_names[site]);
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
static bool site_hook(void *arg, enum bus_site site)
{
	return site_fires(arg, site);
}

/* The allocators of the broker core and the client cores: ctx says whose
 * and which site (core.alloc or client.alloc). */
static void *site_alloc(void *ctx, size_t n)
{
	const struct sim_alloc_site *a = ctx;
	if (site_fires(a->s, a->site))
		return NULL;
	return malloc(n);
}

static void *site_realloc(void *ctx, void *p, size_t n)
{
	const struct sim_alloc_site *a = ctx;
	if (site_fires(a->s, a->site))
		return NULL;
	return realloc(p, n);
}

static void site_free(void *ctx, void *p)
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

static void pipe_clear(struct pipe *p)
{
	for (struct seg *g = p->head, *n; g; g = n) {
		n = g->next;
		free(g);
	}
	memset(p, 0, sizeof(*p));
}

static void arm(struct sim *s, struct link *l, int dir)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	if (p->pump_armed || !p->head || (dir && l->stalled) ||
	    (!dir && l->b_paused))
		return;
	p->pump_armed = true;
	uint64_t t = p->head->ready > s->now ? p->head->ready : s->now;
	push(s, t, dir ? EV_PUMP_B2C : EV_PUMP_C2B, l->idx, 0);
}

static void pipe_push(struct sim *s, struct link *l, int dir,
                      const struct bus_iov *iov, size_t n)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += iov[i].len;
	if (!len)
		return;
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
static void deliver_all(struct sim *s, struct link *l, int dir);
static void raw_rx(struct sim *s, struct link *l, const uint8_t *p, size_t n);
static void sub_check(struct sim *s, struct link *l);

/* How a connection ends: which side closed decides what in-flight bytes
 * still arrive. The side that closed wrote before closing, so what it
 * wrote reaches the other side; what the other side had sent towards it
 * is lost (the socket is gone). A reset or a crash loses both ways. */
enum end { END_RESET, END_CLIENT_CLOSED, END_BROKER_CLOSED };

static void teardown(struct sim *s, struct link *l, enum end how,
                     const char *why)
{
	if (how == END_CLIENT_CLOSED && l->conn)
		deliver_all(s, l, 0);
	if (how == END_BROKER_CLOSED && l->conn &&
	    (l->cl || l->kind == LK_IMPOSTOR)) /* its refusal, then the close */
		deliver_all(s, l, 1);
	struct bus_conn *conn = l->internal ? l->il.conn : l->conn;
	bool had = conn != NULL || l->cl != NULL;
	if (l->counted && l->cl) { /* what this connection carried */
		struct bus_client_stats st;
		bus_client_stats(l->cl, &st);
		s->acc_out += st.frames_out - l->base_out;
		s->acc_in += st.frames_in - st.nops_in + st.acks - l->base_in;
		if (l->c2b.bytes || l->b2c.bytes || l->il.c_write ||
		    l->il.b_write)
			s->acc_lossy = true;
	} else if (l->counted) {
		s->acc_lossy = true; /* its client is gone: counts unknown */
	} else if (l->kind == LK_INTRUDER && (l->c2b.bytes || l->b2c.bytes)) {
		s->acc_lossy = true; /* its tries or their answers in flight */
	}
	/* frames the broker had read but not handled (a sender waiting for
	 * a full receiver) die with the connection */
	if (conn && s->core && bus_conn_input_pending(conn))
		s->acc_lossy = true;
	l->conn = NULL;
	l->counted = false;
	l->b_closing = l->c_closing = false;
	l->epoch++;
	l->b_write_blocked = l->c_write_blocked = l->b_paused = false;
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
		bus_core_on_bytes(s->core, l->conn, data, k, s->now);
		/* the broker closed it on a frame in this chunk: what followed
		 * that frame was read and never processed (as from a socket) */
		if (l->b_closing)
			s->acc_lossy = true;
		l->c2b_read += k;
		sub_check(s, l);
	}
	else if (dir == 1 && l->cl) {
		bus_client_on_bytes(l->cl, data, k);
		/* the client gave up on a frame in this chunk (out of memory,
		 * a protocol error): the rest was read and never processed */
		if (l->c_closing)
			s->acc_lossy = true;
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

static void deliver_all(struct sim *s, struct link *l, int dir)
{
	struct pipe *p = dir ? &l->b2c : &l->c2b;
	uint32_t epoch = l->epoch;
	while (p->head && l->epoch == epoch) {
		if (dir == 0 && l->b_closing) {
			s->acc_lossy = true; /* the broker reads no more of it */
			return;
		}
		p->head->ready = s->now;
		deliver(s, l, dir, SIZE_MAX);
	}
}

static void pump(struct sim *s, struct link *l, int dir)
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
	if (l->internal) {
		bus_link_b_write(&l->il, iov, n);
		return;
	}
	pipe_push(s, l, 1, iov, n);
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
                                          NULL};

static void broker_start(struct sim *s)
{
	s->quiet = true; /* a broker that cannot start is not the point */
	s->core = bus_core_new(&s->core_cfg, &b_ops, s, s->now,
	                       REALTIME_BASE + s->now);
	s->quiet = false;
	if (!s->core)
		abort();
	s->broker_up = true;
	s->acc_out = s->acc_in = 0;
	s->acc_lossy = false;
	sim_trace(s, "broker up");
}

static void broker_crash(struct sim *s)
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
static uint64_t c_now(void *host)
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

static void c_write(void *host, const struct bus_iov *iov, size_t n)
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

static const struct bus_client_ops c_ops = {c_now, c_random, c_connect,
                                            c_write, c_close};

static uint64_t sim_clock(void *arg) { return ((struct sim *)arg)->now; }

/* The internal client's ops: the shipped link (bus/link.h), pumped by
 * flush_all as the libuv host pumps it, outside every core call. */
static void ic_connect(void *host)
{
	struct link *l = host;
	struct sim *s = l->s;
	l->il.core = s->broker_up ? s->core : NULL;
	l->c2b_written = l->c2b_read = l->c_inflight = 0;
	struct bus_client_stats st;
	bus_client_stats(l->cl, &st);
	l->base_out = st.frames_out;
	l->base_in = st.frames_in - st.nops_in + st.acks;
	l->counted = s->broker_up;
	sim_trace(s, "connect %s (internal)", l->name);
	bus_link_c_connect(&l->il);
}

static void ic_write(void *host, const struct bus_iov *iov, size_t n)
{
	struct link *l = host;
	l->c2b_written += iov[0].len;
	bus_link_c_write(&l->il, iov, n);
}

static void ic_close(void *host)
{
	bus_link_c_close(&((struct link *)host)->il);
}

static const struct bus_client_ops ic_ops = {c_now, c_random, ic_connect,
                                             ic_write, ic_close};

/* The link's shape: it changes nothing (an in-process link has no
 * latency and no short reads); it watches the bytes the broker reads, for
 * when a receiver's subscriptions are in effect. */
static size_t ilink_allow(void *arg, int dir, size_t want, bool *lose)
{
	struct link *l = arg;
	(void)lose;
	if (dir == BUS_LINK_C2B)
		l->c2b_read += want;
	return want;
}

/* The link breaks (the broker closed it, or the client): what the
 * connection carried goes to the accounting, as teardown does for a
 * socket's; a write half read, or frames read and not handled, die with
 * it. A crash's teardown has done this already (counted is false). */
static void ilink_dropping(void *arg, const struct bus_link *il)
{
	struct link *l = arg;
	struct sim *s = l->s;
	if (!l->counted || !l->cl)
		return;
	struct bus_client_stats st;
	bus_client_stats(l->cl, &st);
	s->acc_out += st.frames_out - l->base_out;
	s->acc_in += st.frames_in - st.nops_in + st.acks - l->base_in;
	if ((il->c_write && il->c_off) || (il->b_write && (il->b_i || il->b_off)))
		s->acc_lossy = true;
	if (il->conn && s->core && bus_conn_input_pending(il->conn))
		s->acc_lossy = true;
	l->counted = false;
	sim_trace(s, "close %s (%s)", l->name,
	          il->broker_close ? "broker closed" : "client closed");
}

/* One turn of the internal link: until nothing moves, or the turn's
 * rounds are spent (then it is busy: next_deadline says now). */
static void ilink_pump(struct sim *s)
{
	if (s->agent_link < 0 || !s->links[s->agent_link].internal ||
	    !s->links[s->agent_link].cl)
		return;
	struct link *l = &s->links[s->agent_link];
	bus_link_pump(&l->il, s->core, 64);
	sub_check(s, l);
}

/* A raw connection's handshake: greeting, then its name. */
static void raw_handshake(struct sim *s, struct link *l)
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
 * refuses (not counted as read), some decode and are refused by their
 * handler (counted: the accounting expects them). */
static void rogue_frame(struct sim *s, struct link *l)
{
	static const struct {
		uint8_t op;
		const char *data;
		uint32_t len;
		bool counted;
	} bad[] = {
		{0x2A, "x", 1, false},                    /* no such operation */
		{0, "ping", 4, false},                    /* a ping with a payload */
		{BUS_OP_PUBLISH, "no-separator", 12, true},
		{BUS_OP_PUBLISH, "\xff\xfe\0data", 7, true}, /* topic not UTF-8 */
		{BUS_OP_SUBSCRIBE, "ev/\xc3", 4, true},   /* mask not UTF-8 */
		{BUS_OP_MESSAGE, "no-target", 9, true},
		{BUS_OP_PUBLISH, "", 0xfffffff0u, false}, /* over every limit */
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
	if (bad[k].counted)
		s->acc_out++; /* the broker reads it, then refuses it */
	sim_trace(s, "rogue %s sends a malformed frame (%zu)", l->name, k);
}

/* ---- the intruder and the impostor ---------------------------------------------
 * Another uid in every run: the intruder registers as a monitor (its
 * group is the monitor group) and tries, at each connection, everything a
 * monitor may not do; the impostor tries to take the first collector's
 * name (or the agent's). Every try must be answered 0x79 (the access
 * check), and nothing either sends may reach anyone. */
#define SIM_NOBODY 65534u
#define INTRUDER_NAME "monitor.intruder"

static void acl_build(struct sim *s, const struct sim_scenario *sc);

static void access_fault(struct sim *s, const char *what, const char *who)
{
	if (s->access_fault[0])
		return;
	snprintf(s->access_fault, sizeof(s->access_fault), "%s%s", what, who);
	s->access_fault_at = s->now;
}

static void frame_out(struct sim *s, struct link *l, uint32_t id, uint8_t op,
                      const char *a, size_t al, const char *b, size_t bl)
{
	uint8_t f[9 + 160];
	size_t len = al + (b ? 1 + bl : 0);
	memcpy(f, &id, 4);
	f[4] = (uint8_t)(op | BUS_QOS_PROCESSED << 6);
	for (int k = 0; k < 4; k++)
		f[5 + k] = (uint8_t)(len >> (8 * k));
	memcpy(f + 9, a, al);
	if (b) {
		f[9 + al] = 0;
		memcpy(f + 10 + al, b, bl);
	}
	struct bus_iov v = {f, 9 + len};
	pipe_push(s, l, 0, &v, 1);
	s->acc_out++; /* the broker reads it, then refuses it */
}

static void intrude(struct sim *s, struct link *l)
{
	/* (a monitor may call a collector's health.*: a collector's own
	 * services decide what it serves to whom) */
	static const char rpc_stop[] = "\x01\x01\0\0\0lifecycle.stop";
	frame_out(s, l, 1, BUS_OP_PUBLISH, "events/process/lifecycle", 24,
	          "forged", 6);
	frame_out(s, l, 2, BUS_OP_PUBLISH, "control/collector/stop", 22, "x", 1);
	frame_out(s, l, 3, BUS_OP_SUBSCRIBE, "events/#", 8, NULL, 0);
	frame_out(s, l, 4, BUS_OP_MESSAGE, DE_AGENT_NAME, strlen(DE_AGENT_NAME),
	          rpc_stop, sizeof(rpc_stop));
	static const char pub_for[] = "events/process/lifecycle\0" DE_AGENT_NAME;
	frame_out(s, l, 5, BUS_OP_PUBLISH_FOR, pub_for, sizeof(pub_for) - 1,
	          "forged", 6);
	frame_out(s, l, 6, BUS_OP_BROADCAST, "*", 1, "hi", 2);
	sim_trace(s, "intruder %s tries 6 forbidden frames", l->name);
}

/* The ACL lets a monitor send to collectors (their health.*): at each
 * collector's registration the intruder, when it is in, calls its
 * lifecycle.stop, which the collector's service must refuse itself
 * (-32003, on_rpc). */
static void intrude_collector(struct sim *s, const struct link *co)
{
	static const char rpc_stop[] = "\x01\x07\0\0\0lifecycle.stop";
	struct link *l = &s->links[s->intruder];
	if (!l->conn || l->raw_rx < 5)
		return;
	frame_out(s, l, 7, BUS_OP_MESSAGE, co->name, strlen(co->name),
	          rpc_stop, sizeof(rpc_stop));
	sim_trace(s, "intruder %s calls %s lifecycle.stop", l->name, co->name);
}

/* What the broker sends the intruder after its registration: ACKs (each
 * must be 0x79) and deliveries (announcements, keepalives). */
static void intruder_rx(struct sim *s, struct link *l, uint8_t byte)
{
	if (l->rx_skip) {
		l->rx_skip--;
		return;
	}
	l->rx_hdr[l->rx_hdr_n++] = byte;
	if (l->rx_hdr[0] == BUS_OP_ACK && l->rx_hdr_n == 6) {
		l->rx_hdr_n = 0;
		s->acc_in++;
		if (l->rx_hdr[5] == BUS_RES_ACCESS) {
			s->access_denied++;
			return;
		}
		/* frame 7 goes through, to a collector (on_rpc: refused
		 * there), or to nobody while it is down, or not at all when
		 * the collector's queue is full */
		if (l->rx_hdr[1] == 7 &&
		    (l->rx_hdr[5] == BUS_RES_OK ||
		     l->rx_hdr[5] == BUS_RES_NOT_REGISTERED ||
		     l->rx_hdr[5] == BUS_RES_NOT_DELIVERED))
			return;
		char what[64];
		snprintf(what, sizeof(what), "frame %u answered 0x%02x, not 0x79: ",
		         l->rx_hdr[1], l->rx_hdr[5]);
		access_fault(s, what, l->name);
	} else if (l->rx_hdr[0] != BUS_OP_ACK && l->rx_hdr_n == 6) {
		/* a delivered frame: kind, u32 length of the rest, reserved */
		l->rx_hdr_n = 0;
		l->rx_skip = (uint32_t)l->rx_hdr[1] | (uint32_t)l->rx_hdr[2] << 8 |
		             (uint32_t)l->rx_hdr[3] << 16 |
		             (uint32_t)l->rx_hdr[4] << 24;
		s->acc_in += l->rx_hdr[0] != BUS_OP_NOP;
	}
}

/* Bytes the broker sent a raw connection: the rogue waits for its
 * registration (greeting 3 bytes, then OK, then OK) before its frame;
 * the intruder before its tries; the impostor's registration must be
 * refused. */
static void raw_rx(struct sim *s, struct link *l, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (l->raw_rx >= 5 && l->kind == LK_INTRUDER) {
			intruder_rx(s, l, p[i]);
			continue;
		}
		if (++l->raw_rx != 5)
			continue;
		if (l->kind == LK_ROGUE && p[i] == BUS_RES_OK)
			rogue_frame(s, l);
		if (l->kind == LK_INTRUDER && p[i] == BUS_RES_OK)
			intrude(s, l);
		else if (l->kind == LK_INTRUDER)
			access_fault(s, "refused its monitor's registration: ",
			             l->name);
		if (l->kind == LK_IMPOSTOR && p[i] == BUS_RES_ACCESS)
			s->access_denied++;
		else if (l->kind == LK_IMPOSTOR)
			access_fault(s, "another uid registered as ", l->name);
	}
}

static void on_connect(struct sim *s, struct link *l)
{
	if (!l->cl && l->kind != LK_ROGUE && l->kind != LK_HOG &&
	    l->kind != LK_INTRUDER && l->kind != LK_IMPOSTOR)
		return;
	if (l->conn)
		return; /* still connected (a connect queued before) */
	if (!s->broker_up) {
		sim_trace(s, "refused %s", l->name);
		if (l->cl)
			bus_client_on_close(l->cl, BUS_EIO);
		return;
	}
	l->conn = bus_core_on_connect(s->core, (void *)(intptr_t)l->idx,
	                              BUS_KIND_LOCAL_IPC, "", "", s->now);
	if (!l->conn) {
		if (l->cl)
			bus_client_on_close(l->cl, BUS_EIO);
		return;
	}
	bool other = l->kind == LK_INTRUDER || l->kind == LK_IMPOSTOR;
	struct bus_ident id = {.cred = true, .uid = other ? SIM_NOBODY : 0,
	                       .gid = other ? SIM_NOBODY : 0,
	                       .pid = 1 + (uint32_t)l->idx};
	bus_core_set_ident(s->core, l->conn, &id);
	sim_trace(s, "connect %s", l->name);
	l->raw_rx = l->rx_hdr_n = l->rx_skip = 0;
	l->c2b_written = l->c2b_read = l->c_inflight = 0;
	if (l->kind == LK_HOG || other) {
		raw_handshake(s, l);
		return;
	}
	if (l->kind == LK_ROGUE && sim_below(&s->rng[SIM_RNG_FAULTS], 2)) {
		raw_handshake(s, l); /* then a bad frame: raw_rx */
		return;
	}
	if (l->kind == LK_ROGUE) { /* bytes no client would send */
		uint8_t junk[64];
		size_t n = 1 + sim_below(&s->rng[SIM_RNG_FAULTS], sizeof(junk));
		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)sim_rand(&s->rng[SIM_RNG_FAULTS]);
		struct bus_iov v = {junk, n};
		pipe_push(s, l, 0, &v, 1);
		return;
	}
	struct bus_client_stats st;
	bus_client_stats(l->cl, &st);
	l->base_out = st.frames_out;
	l->base_in = st.frames_in - st.nops_in + st.acks;
	l->counted = true;
	bus_client_on_connected(l->cl);
}

static int new_link(struct sim *s, enum link_kind kind, int actor,
                    const char *name)
{
	if (s->n_links == s->cap_links)
		abort(); /* setup sized it: a bug */
	struct link *l = &s->links[s->n_links];
	memset(l, 0, sizeof(*l));
	l->s = s;
	l->idx = s->n_links;
	l->kind = kind;
	l->actor = actor;
	snprintf(l->name, sizeof(l->name), "%s", name);
	return s->n_links++;
}

/* ---- payloads sent, by content ------------------------------------------------------------ */
static void map_put(struct sim *s, uint64_t key, uint64_t val)
{
	if (2 * (s->by_hash_n + 1) > s->by_hash_cap) {
		size_t cap = s->by_hash_cap ? s->by_hash_cap * 2 : 4096;
		uint64_t *k = calloc(cap, sizeof(*k)), *v = calloc(cap, sizeof(*v));
		if (!k || !v)
			abort();
		for (size_t i = 0; i < s->by_hash_cap; i++) {
			if (!s->by_hash_key[i])
				continue;
			size_t j = s->by_hash_key[i] & (cap - 1);
			while (k[j])
				j = (j + 1) & (cap - 1);
			k[j] = s->by_hash_key[i];
			v[j] = s->by_hash_val[i];
		}
		free(s->by_hash_key);
		free(s->by_hash_val);
		s->by_hash_key = k;
		s->by_hash_val = v;
		s->by_hash_cap = cap;
	}
	size_t j = key & (s->by_hash_cap - 1);
	while (s->by_hash_key[j])
		j = (j + 1) & (s->by_hash_cap - 1);
	s->by_hash_key[j] = key;
	s->by_hash_val[j] = val;
	s->by_hash_n++;
}

/* The event made with exactly these bytes, or NULL (none was); its
 * incarnation and sequence. */
static struct made *map_get(struct sim *s, const uint8_t *p, size_t n,
                            int *pubinc, uint64_t *seq)
{
	uint64_t key = bytes_hash(p, n);
	for (size_t j = s->by_hash_cap ? key & (s->by_hash_cap - 1) : 0;
	     s->by_hash_cap && s->by_hash_key[j];
	     j = (j + 1) & (s->by_hash_cap - 1)) {
		if (s->by_hash_key[j] != key)
			continue;
		uint64_t v = s->by_hash_val[j] - 1;
		struct made *e = &s->pubs[v >> 32].ev[v & 0xffffffffu];
		if (e->len == n) {
			*pubinc = (int)(v >> 32);
			*seq = (v & 0xffffffffu) + 1;
			return e;
		}
	}
	return NULL;
}

/* ---- receivers (monitors and the agent) ------------------------------------------------- */
static struct receiver *recv_of(struct sim *s, struct link *l)
{
	return &s->recv[l->kind == LK_AGENT ? s->n_recv - 1 : l->actor];
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	(void)c;
	struct link *l = arg;
	struct sim *s = l->s;
	if (!strcmp(d->sender, INTRUDER_NAME))
		access_fault(s, "the intruder's frame reached ", l->name);
	if (d->kind != BUS_OP_PUBLISH || l->kind == LK_COLLECTOR)
		return;
	struct receiver *r = recv_of(s, l);
	struct got g = {.t = s->now, .pubinc = -1,
	                .len = d->len > UINT32_MAX ? UINT32_MAX : (uint32_t)d->len};
	/* identified by its exact bytes: a delivery that differs from every
	 * event sent by even one bit is "unexpected" */
	const struct made *e = map_get(s, d->data, d->len, &g.pubinc, &g.seq);
	if (e) {
		g.type = e->resync ? -1 : e->type; /* a restatement */
		g.pid = e->pid;
		g.ppid = e->ppid;
		g.start_ms = e->start_ms;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v)
			abort();
	}
	r->v[r->n++] = g;
	s->r->delivered++;
	struct tline ln; /* "got %s %s %d %llu" */
	line_start(s, &ln);
	put_str(&ln, "got ");
	put_str(&ln, r->name);
	put_str(&ln, " ");
	put_str(&ln, d->sender);
	put_str(&ln, g.pubinc < 0 ? " -" : " ");
	put_u64(&ln, g.pubinc < 0 ? (uint64_t)-(int64_t)g.pubinc
	                          : (uint64_t)g.pubinc, 1);
	put_str(&ln, " ");
	put_u64(&ln, g.seq, 1);
	line_end(s, &ln);
	/* the agent's intake: in sequence, de-duplicated, gaps resynced */
	if (l->kind == LK_AGENT && !s->agent_down &&
	    !strncmp(d->topic, "events/", 7))
		de_intake_event(&s->intake, d->sender, d->data, d->len, s->now);
}

/* A receiver that became READY is up once the broker has read what it
 * had written and queued by then: its subscriptions are in effect. */
static void sub_check(struct sim *s, struct link *l)
{
	/* not when the broker closes it on these very bytes (a cut) */
	if (!l->sub_pending || l->c2b_read < l->sub_target || l->b_closing)
		return;
	l->sub_pending = false;
	struct receiver *r = recv_of(s, l);
	r->up_since = s->now;
	if (r->n_cuts && r->cuts[r->n_cuts - 1] == UINT64_MAX)
		r->cuts[r->n_cuts - 1] = s->now; /* a policy cut's span ends */
}

static void push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = realloc(*v, *cap * sizeof(**v));
		if (!*v)
			abort();
	}
	(*v)[(*n)++] = x;
}

/* The broker's slow-consumer policy acted on a connection (core hook,
 * the simulator's build): a receiver's lost publish, or its cut. */
static void policy_hook(void *arg, void *ctx, const uint8_t *f, size_t n)
{
	struct sim *s = arg;
	struct link *l = &s->links[(intptr_t)ctx];
	if (l->kind != LK_AGENT && l->kind != LK_MONITOR)
		return; /* only receivers' losses are checked */
	struct receiver *r = recv_of(s, l);
	if (!f) {
		if (!r->n_cuts || r->cuts[r->n_cuts - 1] != UINT64_MAX) {
			push_u64(&r->cuts, &r->n_cuts, &r->cap_cuts,
			         s->now > SIM_S ? s->now - SIM_S : 0);
			push_u64(&r->cuts, &r->n_cuts, &r->cap_cuts, UINT64_MAX);
		}
		sim_trace(s, "policy cut %s", l->name);
		return;
	}
	struct bus_delivery d;
	int pi;
	uint64_t seq;
	const struct made *e = NULL;
	if (!bus_delivery_decode(f, n, &d) && d.kind == BUS_OP_PUBLISH)
		e = map_get(s, d.data, d.len, &pi, &seq);
	if (!e)
		return; /* not an event sent (acks, RPC, announcements) */
	push_u64(&r->excused, &r->n_excused, &r->cap_excused,
	         (uint64_t)pi << 32 | seq);
	push_u64(&r->excused, &r->n_excused, &r->cap_excused, s->now);
	sim_trace(s, "policy drop %s %d %llu", l->name, pi,
	          (unsigned long long)seq);
}

static void recv_state(struct sim *s, struct link *l, enum bus_client_state st)
{
	struct receiver *r = recv_of(s, l);
	if (st == BUS_CLIENT_READY) {
		l->sub_pending = true;
		uint64_t inflight = !l->internal ? l->c_inflight
		                    : l->il.c_write ? l->il.c_iov.len : 0;
		l->sub_target = l->c2b_written + bus_client_out_pending(l->cl) -
		                inflight;
		sub_check(s, l);
		return;
	}
	l->sub_pending = false;
	if (r->up_since != UINT64_MAX) {
		r->up_since = UINT64_MAX;
		push_u64(&r->downs, &r->n_downs, &r->cap_downs, s->now);
	}
}

/* ---- collectors ------------------------------------------------------------------------ */
/* The wall clock every actor reads: the virtual clock from a fixed epoch. */
static int64_t wall_ms(const struct sim *s)
{
	return (int64_t)((REALTIME_BASE + s->now) / SIM_MS);
}

static int64_t col_wall(void *host)
{
	return wall_ms(((struct link *)host)->s);
}

static void acked(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct link *l = bus_client_host(c);
	struct sim *s = l->s;
	uint64_t k = (uint64_t)(uintptr_t)arg;
	if (s->finishing)
		return;
	struct sent *e = &s->pubs[k >> 32].v[k & 0xffffffffu];
	e->ack = status ? -1 : 1;
	e->t_ack = s->now;
}

/* The topic's index in s->topics, added if new: the checks match each
 * receiver's masks once per topic, not once per event. */
static int topic_id(struct sim *s, const char *topic)
{
	for (int i = 0; i < s->n_topics; i++)
		if (!strcmp(s->topics[i], topic))
			return i;
	if (s->n_topics == s->cap_topics) {
		s->cap_topics = s->cap_topics ? s->cap_topics * 2 : 8;
		s->topics = realloc(s->topics, (size_t)s->cap_topics *
		                                       sizeof(*s->topics));
		if (!s->topics)
			abort();
	}
	if (!(s->topics[s->n_topics] = strdup(topic)))
		abort();
	return s->n_topics++;
}

/* The collector made an event (de_collector_ops.made): what it says. */
static void col_made(void *host, uint64_t seq, enum de_event_type type,
                     const char *topic, const struct de_proc *p,
                     const uint8_t *data, size_t len)
{
	struct link *l = host;
	struct sim *s = l->s;
	struct collector *co = &s->cols[l->actor];
	struct pubinc *pi = &s->pubs[co->pubinc];
	if (seq > pi->n_ev + 1 || seq == 0)
		abort(); /* the collector numbers its events without gaps */
	if (pi->n_ev == pi->cap_ev) {
		pi->cap_ev = pi->cap_ev ? pi->cap_ev * 2 : 256;
		pi->ev = realloc(pi->ev, pi->cap_ev * sizeof(*pi->ev));
		if (!pi->ev)
			abort();
	}
	/* seq made already: a gap marker takes the place of an event the
	 * bus would never take */
	struct made *e = seq <= pi->n_ev ? &pi->ev[seq - 1] : &pi->ev[pi->n_ev++];
	memset(e, 0, sizeof(*e));
	e->t = s->now;
	e->len = len;
	e->topic = topic_id(s, topic);
	e->gap = p == NULL;
	e->resync = co->col.src.resync != 0;
	if (p) {
		e->type = type;
		e->pid = p->pid;
		e->ppid = p->ppid;
		e->start_ms = p->start_time_ms;
	}
	map_put(s, bytes_hash(data, len),
	        ((uint64_t)co->pubinc << 32 | (seq - 1)) + 1);
	struct sim_log *lg = s->o->log;
	if (lg) {
		if (lg->n == lg->cap) {
			lg->cap = lg->cap ? lg->cap * 2 : 1024;
			lg->v = realloc(lg->v, lg->cap * sizeof(*lg->v));
			if (!lg->v)
				abort();
		}
		struct sim_log_ev *x = &lg->v[lg->n++];
		copy_str(x->topic, sizeof(x->topic), topic);
		x->data = malloc(len ? len : 1);
		if (!x->data)
			abort();
		memcpy(x->data, data, len);
		x->len = len;
	}
}

/* The collector hands an event to its client (its outbox's pump): one
 * entry of the send log, which feeds the oracle. */
static int col_publish(void *host, const char *topic, const uint8_t *data,
                       size_t len)
{
	struct link *l = host;
	struct sim *s = l->s;
	struct collector *co = &s->cols[l->actor];
	struct pubinc *pi = &s->pubs[co->pubinc];
	int pin;
	uint64_t seq;
	struct made *m = map_get(s, data, len, &pin, &seq);
	if (!m || pin != co->pubinc)
		abort(); /* the outbox hands over only what the collector made */
	if (pi->n == pi->cap) {
		pi->cap = pi->cap ? pi->cap * 2 : 256;
		pi->v = realloc(pi->v, pi->cap * sizeof(*pi->v));
		if (!pi->v)
			abort();
	}
	uint64_t key = (uint64_t)co->pubinc << 32 | pi->n;
	int qos = co->spec->qos;
	bool ack = qos & BUS_QOS_PROCESSED; /* else nothing answers it */
	int rc = bus_client_publish(l->cl, topic, data, len, qos,
	                            ack ? acked : NULL,
	                            ack ? (void *)(uintptr_t)key : NULL);
	if (rc)
		return rc; /* not handed over: not in the send log */
	struct sent *e = &pi->v[pi->n++];
	*e = (struct sent){.t = s->now, .seq = seq, .topic = m->topic};
	if (m->sends++)
		s->r->resent++;
	else
		s->r->published++;
	struct tline ln; /* "pub %s %llu %s" */
	line_start(s, &ln);
	put_str(&ln, m->sends > 1 ? "resend " : "pub ");
	put_str(&ln, l->name);
	put_str(&ln, " ");
	put_u64(&ln, seq, 1);
	put_str(&ln, " ");
	put_str(&ln, topic);
	line_end(s, &ln);
	return 0;
}

static void col_stop(void *host)
{
	(void)host; /* lifecycle.stop from the bus: not in the workload yet */
}

static void on_rpc(struct bus_client *c, const struct bus_rpc_request *q,
                   void *arg)
{
	struct link *l = arg;
	struct sim *s = l->s;
	bool intruder = !strcmp(q->sender, INTRUDER_NAME);
	if (intruder && l->kind != LK_COLLECTOR)
		access_fault(s, "the intruder's call reached ", l->name);
	if (l->kind == LK_AGENT && !s->agent_down) { /* the shipped handlers */
		struct de_served sv;
		de_agent_serve(&s->da, c, q, &s->agent_access, &sv);
		if (sv.answered)
			sim_trace(s, "agent served %s to %s: %d", sv.method,
			          q->sender, sv.code);
		return;
	}
	if (l->kind != LK_COLLECTOR || !s->cols[l->actor].col_init)
		return;
	struct de_served sv;
	de_collector_serve(&s->cols[l->actor].col, c, q, &sv);
	if (intruder && sv.denied)
		s->access_denied++;
	else if (intruder && strncmp(sv.method, "health.", 7))
		access_fault(s, "a collector served the intruder's ", sv.method);
}

static void col_cycle(struct sim *s, int i);

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	(void)c;
	struct link *l = arg;
	struct sim *s = l->s;
	sim_trace(s, "state %s %s %d", l->name, bus_client_state_name(st),
	          reason);
	if (l->kind == LK_MONITOR || l->kind == LK_AGENT)
		recv_state(s, l, st);
	struct collector *co = l->kind == LK_COLLECTOR ? &s->cols[l->actor]
	                                               : NULL;
	/* what the agent has not acknowledged goes again, in order */
	if (co && st == BUS_CLIENT_READY)
		intrude_collector(s, l);
	if (co && co->col_init && st == BUS_CLIENT_READY && !s->finishing &&
	    de_collector_on_ready(&co->col))
		col_cycle(s, l->actor); /* one that was delayed, now */
}

/* A collector's client takes more: its outbox goes on. */
static void on_drain(struct bus_client *c, void *arg)
{
	(void)c;
	struct link *l = arg;
	struct sim *s = l->s;
	struct collector *co = l->kind == LK_COLLECTOR ? &s->cols[l->actor]
	                                               : NULL;
	if (co && co->col_init && !s->finishing &&
	    de_collector_pump(&co->col))
		col_cycle(s, l->actor);
}

static struct bus_client *make_client(struct sim *s, struct link *l)
{
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = l->name;
	cfg.rpc = s->sc->policies.health;
	cfg.allocator = (struct bus_allocator){site_alloc, site_realloc,
	                                       site_free, &s->alloc_client};
	cfg.sim = &s->hooks;
	if (l->kind == LK_COLLECTOR) /* as procmond: the outbox holds more */
		cfg.out_bytes_max = s->cols[l->actor].spec->out_bytes_max;
	struct bus_client_handlers h = {on_delivery, on_rpc, on_state, on_drain,
	                                l};
	s->quiet = true;
	struct bus_client *c = bus_client_new(&cfg, l->internal ? &ic_ops : &c_ops,
	                                      l, &h);
	s->quiet = false;
	if (!c)
		abort();
	if (l->internal) {
		l->il.cl = c; /* the link is idle: the last client dropped it */
	}
	return c;
}

long sim_table_at(const struct sim_collector_spec *cs, uint64_t t)
{
	size_t lo = 0, hi = cs->n_polls;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cs->polls[mid].at_ns <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

/* One cycle of collector i over the table in force now. The same table
 * as the last cycle gives no events (procmond's diff of a table with
 * itself; the services fuzz target holds it to that): the copy and the
 * diff are skipped. */
static void col_cycle(struct sim *s, int i)
{
	struct collector *co = &s->cols[i];
	long idx = sim_table_at(co->spec, s->now);
	if (idx == co->last_table && co->col.stats.cycles)
		return;
	struct de_snapshot snap;
	de_snapshot_init(&snap);
	snap.taken_ns = s->now;
	sim_table_snapshot(&co->table, idx, &snap);
	de_collector_cycle(&co->col, &snap);
	co->last_table = idx;
}

/* A poll: a cycle if it is due — connected or not (the events wait in
 * the outbox), but not while the last cycle's still wait for the bus
 * (then it runs when they are out: on_drain, or at READY). */
static void col_poll(struct sim *s, int i)
{
	struct collector *co = &s->cols[i];
	if (!co->alive)
		return;
	if (de_collector_cycle_due(&co->col))
		col_cycle(s, i);
	if (s->now + co->spec->poll_ns < s->poll_until)
		push(s, s->now + co->spec->poll_ns, EV_POLL, -1,
		     (uint64_t)i << 32 | (uint32_t)co->pubinc);
}

static void col_spawn(struct sim *s, int i)
{
	struct collector *co = &s->cols[i];
	struct link *l = &s->links[co->link];
	if (co->alive)
		return;
	if (s->n_pubs == s->cap_pubs) {
		s->cap_pubs = s->cap_pubs ? s->cap_pubs * 2 : 16;
		s->pubs = realloc(s->pubs, (size_t)s->cap_pubs * sizeof(*s->pubs));
		if (!s->pubs)
			abort();
	}
	co->pubinc = s->n_pubs++;
	struct pubinc *pi = &s->pubs[co->pubinc];
	memset(pi, 0, sizeof(*pi));
	pi->collector = i;
	pi->incarnation = s->now; /* virtual start time, ns */
	pi->started = s->now;
	pi->ended = UINT64_MAX;
	struct de_collector_ops ops = {.now = c_now, .wall_ms = col_wall,
	                               .publish = col_publish,
	                               .made = col_made, .stop = col_stop};
	if (de_collector_init(&co->col, co->spec->id, pi->incarnation,
	                      co->spec->ticks_per_s, &ops, l))
		abort();
	de_collector_set_sim(&co->col, &s->hooks);
	co->col_init = true;
	if (co->spawned_once)
		s->r->collector_restarts++;
	co->spawned_once = true;
	co->col.scan_interval_ms = (uint32_t)(co->spec->poll_ns / SIM_MS);
	co->col.outbox.bytes_max = co->spec->retain_bytes_max;
	co->last_table = -2; /* no cycle yet */
	co->alive = true;
	l->epoch++;
	l->cl = make_client(s, l);
	sim_trace(s, "spawn %s incarnation %llu", l->name,
	          (unsigned long long)pi->incarnation);
	static const char *masks[] = {"control/collector/#"};
	s->quiet = true; /* an actor that cannot start exits: not the point */
	bus_client_subscribe(l->cl, masks, 1, NULL, NULL);
	bus_client_start(l->cl);
	s->quiet = false;
	bus_client_on_tick(l->cl);
	if (s->now + co->spec->poll_ns < s->poll_until)
		push(s, s->now + co->spec->poll_ns, EV_POLL, -1,
		     (uint64_t)i << 32 | (uint32_t)co->pubinc);
}

/* The collector process dies (SIGKILL, crash): its socket closes with what
 * it had written; the agent hears of it by SIGCHLD a moment later. */
static void col_kill(struct sim *s, int i, const char *why)
{
	struct collector *co = &s->cols[i];
	struct link *l = &s->links[co->link];
	if (!co->alive)
		return;
	co->alive = false;
	s->pubs[co->pubinc].ended = s->now;
	sim_trace(s, "kill %s (%s)", l->name, why);
	if (l->conn)
		deliver_all(s, l, 0); /* what it wrote before dying arrives */
	teardown(s, l, END_RESET, why);
	struct bus_client *c = l->cl;
	l->cl = NULL;
	bus_client_free(c); /* pending ACKs fail: "not acknowledged" */
	de_collector_free(&co->col);
	co->col_init = false;
	push(s, s->now + SIM_MS, EV_EXIT, -1, (uint64_t)i << 32 | co->pid);
}

/* ---- the agent ----------------------------------------------------------------------------- */
static int sup_spawn(void *host, size_t idx, uint32_t *pid)
{
	struct sim *s = host;
	*pid = s->cols[idx].pid = s->next_pid++;
	de_agent_spawned(&s->da, idx);
	push(s, s->now + 5 * SIM_MS, EV_SPAWN, -1,
	     (uint64_t)s->agent_gen << 32 | idx);
	return 0;
}

static void sup_kill(void *host, size_t idx, uint32_t pid, bool hard)
{
	struct sim *s = host;
	if (s->cols[idx].pid == pid)
		col_kill(s, (int)idx, hard ? "SIGKILL" : "SIGTERM");
}

/* A collector answered the agent now: its last answer, and its first
 * after the last fault healed (what liveness checks). */
static void answered(struct sim *s, uint64_t *last, uint64_t *healed)
{
	*last = s->now;
	if (s->now >= s->last_fault_end && !*healed)
		*healed = s->now;
}

/* The agent's calls are the shipped agent's (de_agent); what the
 * simulator adds is its trace and liveness's record of answers. */
static void sup_heartbeat(void *host, size_t idx, uint64_t seq)
{
	de_agent_heartbeat(&((struct sim *)host)->da, idx, seq);
}

static void sup_health_check(void *host, size_t idx, uint64_t seq)
{
	de_agent_health_check(&((struct sim *)host)->da, idx, seq);
}

static void exchanged(void *host, size_t idx, const char *method,
                      uint64_t seq, bool ok, int health, int code,
                      const char *detail)
{
	(void)code;
	struct sim *s = host;
	if (s->finishing || s->agent_down)
		return; /* the agent that asked is gone */
	struct collector *co = &s->cols[idx];
	if (!strcmp(method, "health.heartbeat")) {
		if (ok)
			answered(s, &co->last_hb_ok, &co->healed_hb_ok);
		sim_trace(s, "heartbeat %s %llu %s", s->sup.c[idx].bus_name,
		          (unsigned long long)seq, ok ? "ok" : detail);
	} else {
		if (ok)
			answered(s, &co->last_hc_ok, &co->healed_hc_ok);
		sim_trace(s, "health %s %llu %d", s->sup.c[idx].bus_name,
		          (unsigned long long)seq, health);
	}
}

static uint64_t agent_now(void *host) { return ((struct sim *)host)->now; }

static int64_t agent_wall_ms(void *host) { return wall_ms(host); }

/* A resync call's (collector, id), as its callback's arg. */
static void *call_arg(size_t idx, uint64_t seq)
{
	return (void *)(uintptr_t)((uint64_t)idx << 32 | (seq & 0xffffffffu));
}

static size_t call_idx(void *arg, uint64_t *seq)
{
	uint64_t k = (uint64_t)(uintptr_t)arg;
	*seq = k & 0xffffffffu;
	return (size_t)(k >> 32);
}

static void sup_event(void *host, size_t idx, const char *what,
                      const char *detail)
{
	struct sim *s = host;
	sim_trace(s, "agent %s %s (%s)", s->sup.c[idx].id, what, detail);
}

/* ---- the agent's intake: the real end-to-end code ----------------------------------- */
/* A resync call's (stream, id): the stream's index in the intake. */
static void resync_done(struct bus_client *c, int status,
                        const struct bus_rpc_result *r, void *arg)
{
	struct link *l = bus_client_host(c);
	struct sim *s = l->s;
	uint64_t id;
	size_t k = call_idx(arg, &id);
	if (s->finishing || s->agent_down || k >= s->intake.n)
		return; /* the agent that asked is gone */
	Daemoneye__ResyncResponse *resp = NULL;
	if (status == 0)
		resp = (void *)de_reply_unpack("collector.resync", r);
	sim_trace(s, "resync %s %llu %s", s->intake.s[k].name,
	          (unsigned long long)id,
	          !resp ? bus_strerror(status ? status : BUS_EPROTO)
	          : resp->replayed ? "re-sent" : "full");
	s->r->resyncs += resp != NULL;
	de_intake_resync_done(&s->intake, s->intake.s[k].name, id, resp, s->now);
	bus_pb_free(resp ? &resp->base : NULL);
}

static void intake_resync(void *host, const struct de_stream *st,
                          const Daemoneye__ResyncRequest *q)
{
	struct sim *s = host;
	struct link *l = &s->links[s->agent_link];
	size_t k = (size_t)(st - s->intake.s);
	sim_trace(s, "agent asks %s %llu %s from %llu", st->name,
	          (unsigned long long)q->resync_id, q->full ? "full" : "resend",
	          (unsigned long long)q->from_sequence);
	int rc = l->cl ? de_call(l->cl, st->name, "collector.resync", &q->base,
	                         &s->sup.policies, resync_done,
	                         call_arg(k, q->resync_id))
	               : BUS_ECLOSED;
	if (rc)
		de_intake_resync_done(&s->intake, st->name, q->resync_id, NULL,
		                      s->now);
}

/* What the agent processed, in sequence: the stream check's input. */
static void intake_processed(void *host, const struct de_stream *st,
                             const Daemoneye__BusrtEvent *ev,
                             const uint8_t *data, size_t len)
{
	(void)st, (void)ev;
	struct sim *s = host;
	int pi;
	uint64_t seq;
	if (!map_get(s, data, len, &pi, &seq))
		return; /* bytes no collector made: the delivery check's */
	push_u64(&s->pubs[pi].done, &s->pubs[pi].n_done, &s->pubs[pi].cap_done,
	         seq);
	s->r->processed++;
}

static void intake_note(void *host, const struct de_stream *st,
                        const char *what, const char *detail)
{
	struct sim *s = host;
	if (!strcmp(what, "gap")) /* lost for good (the stream check fails) */
		s->r->gaps++;
	/* an event that did not come: the stream check asks why */
	for (int i = 0; !strcmp(what, "missing") && i < s->n_pubs; i++) {
		struct pubinc *p = &s->pubs[i];
		if (p->incarnation == st->incarnation &&
		    !strcmp(s->links[s->cols[p->collector].link].name, st->name))
			push_u64(&p->missed, &p->n_missed, &p->cap_missed,
			         st->next_seq);
	}
	sim_trace(s, "intake %s %s (%s)", st->name, what, detail);
}

/* The agent starts (at the beginning, and after a crash): its client
 * subscribes to events/#, and its supervision starts every collector. */
static void agent_boot(struct sim *s)
{
	const struct sim_scenario *sc = s->sc;
	struct link *l = &s->links[s->agent_link];
	s->agent_down = false;
	l->cl = make_client(s, l);
	const char *mask = s->recv[s->n_recv - 1].masks[0];
	s->quiet = true;
	bus_client_subscribe(l->cl, &mask, 1, NULL, NULL);
	bus_client_start(l->cl);
	s->quiet = false;
	bus_client_on_tick(l->cl);
	struct de_sup_ops ops = {.spawn = sup_spawn, .kill = sup_kill,
	                         .heartbeat = sup_heartbeat,
	                         .health_check = sup_health_check,
	                         .event = sup_event};
	de_sup_init(&s->sup, &sc->policies, &ops, s);
	s->sup.sim = &s->hooks;
	struct de_intake_ops iops = {.resync = intake_resync,
	                             .processed = intake_processed,
	                             .note = intake_note};
	de_intake_free(&s->intake); /* a crashed agent's view is gone */
	de_intake_init(&s->intake, &iops, s, sc->policies.resync_retry_ns);
	struct de_agent_ops dops = {.now = agent_now, .wall_ms = agent_wall_ms,
	                            .exchanged = exchanged};
	de_agent_init(&s->da, &s->sup, &s->intake, l->cl, DE_AGENT_NAME, &dops,
	              s);
	for (int i = 0; i < s->n_cols; i++) {
		de_sup_add(&s->sup, sc->collectors[i].id, "process");
		de_sup_start(&s->sup, (size_t)i, s->now);
	}
}

/* The agent dies: its connection with it, its supervision state, and its
 * collectors, which the kernel sends SIGTERM (PR_SET_PDEATHSIG). In the
 * standalone topology the broker lives on; embedded, fault() crashes the
 * broker with it. */
static void agent_crash(struct sim *s)
{
	if (s->agent_down)
		return;
	struct link *l = &s->links[s->agent_link];
	sim_trace(s, "agent crash");
	s->agent_down = true;
	s->da.closed = true;
	s->agent_gen++;
	if (l->conn)
		deliver_all(s, l, 0); /* what it wrote before dying arrives */
	teardown(s, l, END_RESET, "agent crashed");
	struct bus_client *c = l->cl;
	l->cl = NULL;
	bus_client_free(c);
	for (int i = 0; i < s->n_cols; i++)
		col_kill(s, i, "its agent died");
}

/* ---- the operator ---------------------------------------------------------------------------
 * An administrator (admin.operator, root: the default ACL's admin rule)
 * asks the agent to restart a collector, then for its status: the agent's
 * shipped lifecycle.* handlers answer. A call lost to a fault is the
 * operator's to repeat (it does, once a second, until answered); an
 * answer that is an error or says something else than was asked is an
 * access failure: an admin must be served. */
#define OPERATOR_NAME "admin.operator"

static void operator_call(struct sim *s, const char *method, int col);

static void operator_done(struct bus_client *c, int status,
                          const struct bus_rpc_result *r, void *arg)
{
	struct sim *s = ((struct link *)bus_client_host(c))->s;
	if (s->finishing)
		return;
	int col = (int)((uintptr_t)arg >> 1);
	bool restart = !((uintptr_t)arg & 1);
	const char *method = restart ? "lifecycle.restart" : "lifecycle.status";
	const char *id = s->cols[col].spec->id;
	if (status == BUS_ERPC) { /* the agent answered: it must not refuse */
		char what[96];
		snprintf(what, sizeof(what), "the agent answered %s %d to %s's ",
		         method, r->code, OPERATOR_NAME);
		access_fault(s, what, id);
		return;
	}
	if (status != 0) { /* lost to a fault: asked again */
		sim_trace(s, "operator %s %s: %s", method, id, bus_strerror(status));
		push(s, s->now + SIM_S, EV_OPERATOR, -1,
		     (uint64_t)col << 1 | !restart);
		return;
	}
	ProtobufCMessage *m = de_reply_unpack(method, r);
	bool good = false;
	if (m && restart) {
		const Daemoneye__RestartCollectorResponse *x = (const void *)m;
		good = x->success && x->status &&
		       !strcmp(x->status->collector_id, id);
	} else if (m) {
		const Daemoneye__CollectorStatusResponse *x = (const void *)m;
		good = x->n_collectors == 1 &&
		       !strcmp(x->collectors[0]->collector_id, id);
	}
	bus_pb_free(m);
	if (!good) {
		access_fault(s, "the agent's answer to the operator's lifecycle "
		             "call says something else: ", id);
		return;
	}
	s->operator_served++;
	sim_trace(s, "operator %s %s answered", method, id);
	if (restart)
		operator_call(s, "lifecycle.status", col);
}

static void operator_call(struct sim *s, const char *method, int col)
{
	struct link *l = &s->links[s->admin];
	const char *id = s->cols[col].spec->id;
	bool restart = !strcmp(method, "lifecycle.restart");
	Daemoneye__RestartCollectorRequest rq =
		DAEMONEYE__RESTART_COLLECTOR_REQUEST__INIT;
	Daemoneye__CollectorStatusRequest sq =
		DAEMONEYE__COLLECTOR_STATUS_REQUEST__INIT;
	rq.collector_id = sq.collector_id = (char *)id;
	sim_trace(s, "operator calls %s %s", method, id);
	int rc = de_call(l->cl, DE_AGENT_NAME, method,
	                 restart ? &rq.base : &sq.base, &s->sc->policies,
	                 operator_done,
	                 (void *)(uintptr_t)((uintptr_t)col << 1 | !restart));
	if (rc) /* its output is full, or it is not up yet: again later */
		push(s, s->now + SIM_S, EV_OPERATOR, -1,
		     (uint64_t)col << 1 | !restart);
}

/* ---- faults ------------------------------------------------------------------------------------ */
static int link_named(struct sim *s, const char *name, int kind_pref)
{
	for (int i = 0; i < s->n_links; i++)
		if (!strcmp(s->links[i].name, name))
			return i;
	for (int i = 0; i < s->n_cols && kind_pref == LK_COLLECTOR; i++)
		if (!strcmp(s->cols[i].spec->id, name))
			return s->cols[i].link;
	return -1;
}


static void fault(struct sim *s, size_t i, bool begin)
{
	const struct sim_fault *f = &s->plan->v[i];
	uint64_t dur = f->for_ns ? f->for_ns : 500 * SIM_MS;
	int t;
	bool embedded = s->sc->topology == SIM_EMBEDDED;
	bool process = f->kind == SIM_F_BROKER_CRASH ||
	               f->kind == SIM_F_AGENT_CRASH;
	if (!begin && embedded && process) {
		/* the agent's process is the broker's: both come back at the
		 * end of the last of overlapping crashes of either */
		sim_trace(s, "fault end %s", sim_fault_names[f->kind]);
		if (!s->broker_up && s->now >= s->broker_down_until &&
		    s->now >= s->agent_down_until) {
			broker_start(s);
			push(s, s->now + SIM_MS, EV_CONNECT, s->intruder, 0);
			push(s, s->now + SIM_MS, EV_CONNECT, s->impostor, 0);
			sim_trace(s, "agent up");
			agent_boot(s);
		}
		return;
	}
	if (!begin) {
		sim_trace(s, "fault end %s", sim_fault_names[f->kind]);
		if (f->kind == SIM_F_BROKER_CRASH && !s->broker_up &&
		    s->now >= s->broker_down_until)
		{
			broker_start(s); /* the last of overlapping crashes */
			push(s, s->now + SIM_MS, EV_CONNECT, s->intruder, 0);
			push(s, s->now + SIM_MS, EV_CONNECT, s->impostor, 0);
		}
		if (f->kind == SIM_F_AGENT_CRASH && s->agent_down &&
		    s->now >= s->agent_down_until) {
			sim_trace(s, "agent up");
			agent_boot(s);
		}
		for (int k = 0; f->kind == SIM_F_CONN_LIMIT && k < s->n_links; k++)
			if (s->links[k].kind == LK_HOG && s->links[k].actor == (int)i &&
			    s->links[k].conn)
				teardown(s, &s->links[k], END_CLIENT_CLOSED, "hog left");
		if (f->kind == SIM_F_SLOW_CONSUMER &&
		    (t = link_named(s, f->target, LK_MONITOR)) >= 0) {
			s->links[t].stalled = false;
			arm(s, &s->links[t], 1);
		}
		return;
	}
	s->r->faults[f->kind]++;
	sim_trace(s, "fault %s %s", sim_fault_names[f->kind], f->target);
	/* losses are allowed from the fault until reconnects settle: the
	 * client's backoff tops out at 5 s */
	uint64_t settle = 6 * SIM_S + dur;
	window(s, s->now, s->now + settle);
	if (s->now + dur > s->last_fault_end)
		s->last_fault_end = s->now + dur;
	if (embedded && process) { /* one process: broker and agent */
		broker_crash(s);
		agent_crash(s);
		uint64_t *until = f->kind == SIM_F_BROKER_CRASH
		                          ? &s->broker_down_until
		                          : &s->agent_down_until;
		if (s->now + dur > *until)
			*until = s->now + dur;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		return;
	}
	switch (f->kind) {
	case SIM_F_BROKER_CRASH:
		broker_crash(s);
		if (s->now + dur > s->broker_down_until)
			s->broker_down_until = s->now + dur;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	case SIM_F_AGENT_CRASH:
		agent_crash(s);
		if (s->now + dur > s->agent_down_until)
			s->agent_down_until = s->now + dur;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	case SIM_F_COLLECTOR_CRASH:
		t = link_named(s, f->target, LK_COLLECTOR);
		if (t >= 0 && s->links[t].kind == LK_COLLECTOR)
			col_kill(s, s->links[t].actor, "crashed");
		break;
	case SIM_F_RESET:
		t = link_named(s, f->target, LK_MONITOR);
		if (t >= 0 && s->links[t].conn)
			teardown(s, &s->links[t], END_RESET, "reset");
		break;
	case SIM_F_DELAY:
		s->delay_until = s->now + dur;
		s->delay_ns = (f->ms ? f->ms : 20) * SIM_MS;
		break;
	case SIM_F_SHORT_IO:
		s->short_until = s->now + dur;
		break;
	case SIM_F_SLOW_CONSUMER:
		t = link_named(s, f->target, LK_MONITOR);
		if (t >= 0)
			s->links[t].stalled = true;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	case SIM_F_CONN_LIMIT: {
		/* hogs fill every free place of connections_max; the target,
		 * if any, is reset and must come back into a full broker */
		for (int k = 0; k < (int)s->core_cfg.limits.connections_max; k++) {
			char name[40];
			snprintf(name, sizeof(name), "hog.%zu.%d", i, k);
			int h = new_link(s, LK_HOG, (int)i, name);
			push(s, s->now, EV_CONNECT, h, 0);
		}
		t = link_named(s, f->target, LK_COLLECTOR);
		if (t >= 0 && s->links[t].conn)
			teardown(s, &s->links[t], END_RESET, "reset");
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	}
	case SIM_F_OPERATOR:
		t = link_named(s, f->target, LK_COLLECTOR);
		if (t >= 0 && s->links[t].kind == LK_COLLECTOR)
			operator_call(s, "lifecycle.restart", s->links[t].actor);
		break;
	case SIM_F_MALFORMED: {
		char name[32];
		snprintf(name, sizeof(name), "rogue.%zu", i);
		int k = new_link(s, LK_ROGUE, -1, name);
		push(s, s->now, EV_CONNECT, k, 0);
		break;
	}
	case SIM_F_KINDS:
		break;
	}
}

void sim_plan_draw(const struct sim_scenario *sc, uint64_t seed,
                   struct sim_plan *p)
{
	struct sim_rng r = {seed ^ 0x5eedf00dull, NULL};
	sim_plan_draw_from(sc, &r, p);
}

void sim_plan_draw_from(const struct sim_scenario *sc, struct sim_rng *rng,
                        struct sim_plan *p)
{
	struct sim_rng r = *rng;
	memset(p, 0, sizeof(*p));
	bool on[SIM_F_KINDS];
	bool any = false;
	for (int k = 0; k < SIM_F_KINDS; k++)
		any |= on[k] = sim_below(&r, 2);
	if (!any) {
		*rng = r;
		return; /* some seeds run fault-free: the exact-equality case */
	}
	size_t n = 1 + sim_below(&r, 6);
	p->v = calloc(n, sizeof(*p->v));
	if (!p->v) {
		*rng = r;
		return;
	}
	uint64_t span = sc->duration_ns > SIM_S ? sc->duration_ns - SIM_S : 1;
	int kinds = 0;
	for (int k = 0; k < SIM_F_KINDS; k++)
		kinds += on[k];
	for (size_t i = 0; i < n; i++) {
		/* the j-th enabled kind: no rejection loop, which a tape of
		 * zeros (the sim fuzz target's) would never leave */
		int j = (int)sim_below(&r, (uint64_t)kinds), k = 0;
		for (;; k++)
			if (on[k] && j-- == 0)
				break;
		struct sim_fault *f = &p->v[p->n++];
		f->kind = (enum sim_fault_kind)k;
		f->at_ns = SIM_S / 2 + sim_below(&r, span) / SIM_MS * SIM_MS;
		f->for_ns = (50 + sim_below(&r, 1500)) * SIM_MS;
		f->ms = 1 + sim_below(&r, 40);
		if (k == SIM_F_COLLECTOR_CRASH || k == SIM_F_OPERATOR)
			snprintf(f->target, sizeof(f->target), "%s",
			         sc->collectors[sim_below(&r, sc->n_collectors)].id);
		else if ((k == SIM_F_RESET || k == SIM_F_SLOW_CONSUMER) &&
		         sc->n_monitors)
			snprintf(f->target, sizeof(f->target), "%s",
			         sc->monitors[sim_below(&r, sc->n_monitors)].name);
		else if (k == SIM_F_CONN_LIMIT) { /* who must come back in */
			size_t w = sim_below(&r, sc->n_monitors + sc->n_collectors);
			snprintf(f->target, sizeof(f->target), "%s",
			         w < sc->n_monitors
			                 ? sc->monitors[w].name
			                 : sc->collectors[w - sc->n_monitors].id);
		}
	}
	/* in time order, for people reading the plan */
	for (size_t i = 1; i < p->n; i++)
		for (size_t j = i; j > 0 && p->v[j].at_ns < p->v[j - 1].at_ns; j--) {
			struct sim_fault t = p->v[j];
			p->v[j] = p->v[j - 1];
			p->v[j - 1] = t;
		}
	*rng = r;
}

/* ---- the loop ------------------------------------------------------------------------------------ */
static void handle(struct sim *s, const struct sim_ev *e)
{
	struct link *l = e->link >= 0 ? &s->links[e->link] : NULL;
	if (l && e->epoch != l->epoch)
		return; /* for a connection that is gone */
	switch (e->type) {
	case EV_CONNECT:
		on_connect(s, l);
		break;
	case EV_PUMP_C2B:
		pump(s, l, 0);
		break;
	case EV_PUMP_B2C:
		pump(s, l, 1);
		break;
	case EV_CDONE:
		l->c_inflight = 0;
		if (l->cl)
			bus_client_on_written(l->cl, 0);
		break;
	case EV_BDONE:
		if (l->conn && s->core)
			bus_core_on_written(s->core, l->conn, 0, s->now);
		break;
	case EV_CLOSE_C:
	case EV_CLOSE_B:
		if (e->type == EV_CLOSE_C)
			teardown(s, l, END_CLIENT_CLOSED, "client closed");
		else
			teardown(s, l, END_BROKER_CLOSED, "broker closed");
		break;
	case EV_POLL: {
		int i = (int)(e->arg >> 32);
		if ((int)(uint32_t)e->arg == s->cols[i].pubinc)
			col_poll(s, i); /* of this incarnation, not a dead one */
		break;
	}
	case EV_SPAWN:
		if (!s->agent_down && (uint32_t)(e->arg >> 32) == s->agent_gen)
			col_spawn(s, (int)(uint32_t)e->arg);
		break;
	case EV_EXIT: {
		size_t idx = (size_t)(e->arg >> 32);
		if (!s->agent_down && s->sup.c[idx].pid == (uint32_t)e->arg)
			de_sup_on_exit(&s->sup, idx, "killed", s->now);
		break;
	}
	case EV_FAULT:
	case EV_FAULT_END:
		fault(s, (size_t)e->arg, e->type == EV_FAULT);
		break;
	case EV_OPERATOR:
		operator_call(s, e->arg & 1 ? "lifecycle.status"
		                            : "lifecycle.restart",
		              (int)(e->arg >> 1));
		break;
	}
}

static uint64_t next_deadline(struct sim *s)
{
	uint64_t t = s->n_ev ? s->ev[0].t : UINT64_MAX;
	if (s->core) {
		uint64_t d = bus_core_next_deadline(s->core);
		t = d < t ? d : t;
	}
	for (int i = 0; i < s->n_links; i++)
		if (s->links[i].cl) {
			uint64_t d = bus_client_next_deadline(s->links[i].cl);
			t = d < t ? d : t;
		}
	if (s->agent_link >= 0 && s->links[s->agent_link].cl) {
		uint64_t d = bus_link_next_deadline(&s->links[s->agent_link].il);
		t = d < t ? d : t;
		d = de_sup_next_deadline(&s->sup);
		t = d < t ? d : t;
		d = de_intake_next_deadline(&s->intake);
		t = d < t ? d : t;
	}
	return t;
}

static void flush_all(struct sim *s)
{
	if (s->core)
		bus_core_flush(s->core, s->now);
	for (int i = 0; i < s->n_links; i++)
		if (s->links[i].cl)
			bus_client_flush(s->links[i].cl);
	ilink_pump(s);
}

/* After a step of the loop: the broker core's invariants, every
 * check_every-th step (the first broken one is the verdict). */
static void step_check(struct sim *s)
{
	if (++s->steps % s->check_every || !s->core || s->inv_fault[0])
		return;
	s->inv_checks++;
	char why[256];
	if (bus_core_check_invariants(s->core, why, sizeof(why)) != 0) {
		snprintf(s->inv_fault, sizeof(s->inv_fault), "%s", why);
		s->inv_fault_at = s->now;
	}
}

static int loop(struct sim *s)
{
	uint64_t same = 0, last = UINT64_MAX;
	for (;;) {
		flush_all(s);
		uint64_t t = next_deadline(s);
		if (t == UINT64_MAX || (t > s->stop && t > s->now))
			return 0;
		if (t > s->now)
			s->now = t;
		same = s->now == last ? same + 1 : 0;
		last = s->now;
		if (same > 10000000)
			return -1; /* stuck: something re-arms at the same instant */
		while (s->n_ev && s->ev[0].t <= s->now) {
			struct sim_ev e = pop(s);
			handle(s, &e);
			flush_all(s);
			step_check(s);
		}
		if (s->core && bus_core_next_deadline(s->core) <= s->now) {
			bus_core_on_tick(s->core, s->now);
			step_check(s);
		}
		for (int i = 0; i < s->n_links; i++)
			if (s->links[i].cl &&
			    bus_client_next_deadline(s->links[i].cl) <= s->now)
				bus_client_on_tick(s->links[i].cl);
		if (s->agent_link >= 0 && s->links[s->agent_link].cl &&
		    de_sup_next_deadline(&s->sup) <= s->now)
			de_sup_tick(&s->sup, s->now);
		if (s->agent_link >= 0 && s->links[s->agent_link].cl &&
		    de_intake_next_deadline(&s->intake) <= s->now)
			de_intake_tick(&s->intake, s->now);
	}
}

/* End of the run: time stands still while everything in flight arrives
 * and what it causes is written, so the counters can be compared. */
static void quiesce(struct sim *s)
{
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		flush_all(s);
		while (s->n_ev && s->ev[0].t <= s->now) {
			struct sim_ev e = pop(s);
			handle(s, &e);
			flush_all(s);
			step_check(s);
			moved = true;
		}
		for (int i = 0; i < s->n_links; i++) {
			struct link *l = &s->links[i];
			if (l->stalled)
				continue;
			if (l->c2b.head || l->b2c.head ||
			    (l->cl && bus_link_busy(&l->il)))
				moved = true;
			deliver_all(s, l, 0);
			deliver_all(s, l, 1);
		}
		if (!moved)
			return;
	}
}

static void setup(struct sim *s)
{
	const struct sim_scenario *sc = s->sc;
	for (int k = 0; k < SIM_RNG_N; k++) { /* one sub-seed per subsystem */
		uint64_t x = s->o->seed + 0x1000 * (uint64_t)(k + 1);
		s->rng[k].state = bus_splitmix64(&x);
	}
	/* swarm: each seed arms its own sites, drawn apart from the stream
	 * that decides firings, so a saved failure that names its sites
	 * replays the same firings */
	s->r->buggify = s->o->buggify;
	struct sim_rng arm = {s->o->seed ^ 0xb0661f7ull,
	                      s->o->tape ? &s->tape : NULL};
	for (int k = 0; k < BUS_SITE_N && s->o->buggify_drawn; k++)
		if (sim_below(&arm, 2))
			s->r->buggify |= 1u << k;
	bus_core_config_defaults(&s->core_cfg, true);
	s->core_cfg.allocator = (struct bus_allocator){site_alloc, site_realloc,
	                                               site_free, &s->alloc_core};
	s->core_cfg.sim = &s->hooks;
	s->core_cfg.slow_policy = sc->slow_policy;
	s->core_cfg.limits.queue_frames_max = sc->queue_frames_max;
	acl_build(s, sc);
	s->core_cfg.acl = &s->acl;
	s->core_cfg.timeout_ns = 2 * SIM_S;
	s->next_pid = 1000;
	s->agent_link = -1;
	s->n_recv = (int)sc->n_monitors + 1;
	s->recv = calloc((size_t)s->n_recv, sizeof(*s->recv));
	s->n_cols = (int)sc->n_collectors;
	s->cols = calloc((size_t)s->n_cols, sizeof(*s->cols));
	/* room for every actor and two more, so a conn_limit fault is what
	 * fills the broker: the ACL's reserved places (the agent's and the
	 * collectors', which only they take), and the shared rest for the
	 * monitors, the intruder and two more */
	uint32_t reserved = 0;
	for (uint32_t i = 0; i < s->acl.n_rules; i++)
		reserved += s->acl.rules[i].reserved;
	static const struct bus_ident root = {.cred = true};
	const struct bus_acl_rule *cr =
	    bus_acl_find(&s->acl, &root, "collector.x", 11); /* theirs */
	uint32_t col_res = cr ? cr->reserved : 0;
	s->core_cfg.limits.connections_max =
	    reserved + (uint32_t)sc->n_monitors + 3 +
	    ((uint32_t)s->n_cols > col_res ? (uint32_t)s->n_cols - col_res : 0);
	broker_start(s);
	s->cap_links = s->n_cols + s->n_recv + 3; /* + intruder, impostor,
	                                             the operator */
	for (size_t i = 0; s->plan && i < s->plan->n; i++)
		s->cap_links += s->plan->v[i].kind == SIM_F_CONN_LIMIT
		                        ? (int)s->core_cfg.limits.connections_max
		                        : 1;
	s->links = calloc((size_t)s->cap_links, sizeof(*s->links));
	if (!s->recv || !s->cols || !s->links)
		abort();
	/* links first (the array moves while growing), then clients */
	for (int i = 0; i < s->n_cols; i++) {
		char name[DE_BUS_NAME_BYTES_MAX];
		snprintf(name, sizeof(name), "collector.process.%s",
		         sc->collectors[i].id);
		s->cols[i].spec = &sc->collectors[i];
		sim_replay_init(&s->cols[i].table, s->cols[i].spec);
		sim_replay_init(&s->cols[i].truth, s->cols[i].spec);
		s->cols[i].link = new_link(s, LK_COLLECTOR, i, name);
	}
	for (int i = 0; i < (int)sc->n_monitors; i++) {
		struct receiver *r = &s->recv[i];
		snprintf(r->name, sizeof(r->name), "%s", sc->monitors[i].name);
		memcpy(r->masks, sc->monitors[i].masks, sizeof(r->masks));
		r->n_masks = sc->monitors[i].n_masks;
		r->link = new_link(s, LK_MONITOR, i, r->name);
		r->up_since = UINT64_MAX;
	}
	struct receiver *ag = &s->recv[s->n_recv - 1];
	snprintf(ag->name, sizeof(ag->name), "%s", DE_AGENT_NAME);
	snprintf(ag->masks[0], sizeof(ag->masks[0]), "%s", SIM_AGENT_MASK);
	ag->n_masks = 1;
	ag->up_since = UINT64_MAX;
	s->agent_link = ag->link = new_link(s, LK_AGENT, 0, DE_AGENT_NAME);
	if (sc->topology == SIM_EMBEDDED) { /* the agent hosts the broker */
		struct link *l = &s->links[s->agent_link];
		l->internal = true;
		bus_link_init(&l->il, NULL, NULL, (void *)(intptr_t)l->idx,
		              BUS_KIND_INTERNAL, sim_clock, s);
		l->il.has_ident = true; /* the broker's own process */
		l->il.ident = (struct bus_ident){.cred = true, .uid = 0, .gid = 0,
		                                 .pid = 1 + (uint32_t)l->idx};
		l->ish = (struct bus_link_shape){ilink_allow, NULL, ilink_dropping,
		                                 l};
		l->il.shape = &l->ish;
	}
	/* the monitors' clients; then the agent, whose supervision spawns
	 * the collectors */
	for (int i = 0; i < s->n_recv - 1; i++) {
		struct link *l = &s->links[s->recv[i].link];
		l->cl = make_client(s, l);
		const char *m[8];
		for (int k = 0; k < s->recv[i].n_masks; k++)
			m[k] = s->recv[i].masks[k];
		s->quiet = true;
		bus_client_subscribe(l->cl, m, (size_t)s->recv[i].n_masks, NULL,
		                     NULL);
		bus_client_start(l->cl);
		s->quiet = false;
		bus_client_on_tick(l->cl);
	}
	agent_boot(s);
	static const char *const admins[] = {"admin.*", NULL};
	s->agent_access.callers[DE_SVC_LIFECYCLE] = admins;
	s->agent_access.sim = &s->hooks;
	s->admin = new_link(s, LK_ADMIN, -1, OPERATOR_NAME);
	struct link *op = &s->links[s->admin];
	op->cl = make_client(s, op);
	s->quiet = true;
	bus_client_start(op->cl);
	s->quiet = false;
	bus_client_on_tick(op->cl);
	s->intruder = new_link(s, LK_INTRUDER, -1, INTRUDER_NAME);
	s->impostor = new_link(s, LK_IMPOSTOR, -1,
	                       s->n_cols ? s->links[s->cols[0].link].name
	                                 : DE_AGENT_NAME);
	push(s, SIM_MS, EV_CONNECT, s->intruder, 0);
	push(s, SIM_MS, EV_CONNECT, s->impostor, 0);
	for (size_t i = 0; s->plan && i < s->plan->n; i++)
		push(s, s->plan->v[i].at_ns, EV_FAULT, -1, i);
}

/* The broker's ACL: the default rules (the broker and every actor root,
 * the intruder and impostor uid and group 65534, the monitor group),
 * after one rule for the scenario's own monitors, which hold any masks a
 * scenario gives them. */
static void acl_build(struct sim *s, const struct sim_scenario *sc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		abort();
	fputs("broker:\n  acl:\n    - who: {uid: 0}\n      subscribe: ['#']\n"
	      "      send: ['*']\n      names: [", f);
	for (size_t i = 0; i < sc->n_monitors; i++) {
		fputs(i ? ", " : "", f);
		sim_yq(f, sc->monitors[i].name, strlen(sc->monitors[i].name));
	}
	fputs("]\n", f);
	fclose(f);
	struct bus_file_config fc;
	char err[256];
	bus_config_defaults(&fc, true);
	uint32_t nobody = SIM_NOBODY;
	if (sc->n_monitors == 0) {
		memset(&s->acl, 0, sizeof(s->acl));
	} else if (bus_config_parse(text, len, "sim acl", &fc, err,
	                            sizeof(err)) != 0) {
		fprintf(stderr, "busrt-sim: %s\n", err);
		abort(); /* the names were validated: a bug */
	} else {
		s->acl = fc.acl;
	}
	free(text);
	if (bus_acl_defaults(&s->acl, 0, NULL, &nobody))
		abort();
}

static void teardown_all(struct sim *s)
{
	s->finishing = true;
	s->da.closed = true;
	for (int i = 0; i < s->n_links; i++) {
		struct link *l = &s->links[i];
		pipe_clear(&l->c2b);
		pipe_clear(&l->b2c);
		bus_link_free(&l->il);
		if (l->cl)
			bus_client_free(l->cl);
		l->cl = NULL;
	}
	for (int i = 0; i < s->n_cols; i++) {
		if (s->cols[i].col_init)
			de_collector_free(&s->cols[i].col);
		sim_replay_free(&s->cols[i].table);
		sim_replay_free(&s->cols[i].truth);
	}
	if (s->core)
		bus_core_free(s->core);
	bus_acl_free(&s->acl);
	for (int i = 0; i < s->n_recv; i++) {
		free(s->recv[i].v);
		free(s->recv[i].downs);
		free(s->recv[i].excused);
		free(s->recv[i].cuts);
	}
	for (int i = 0; i < s->n_pubs; i++) {
		free(s->pubs[i].v);
		free(s->pubs[i].ev);
		free(s->pubs[i].done);
		free(s->pubs[i].missed);
	}
	free(s->pubs);
	de_intake_free(&s->intake);
	for (int i = 0; i < s->n_topics; i++)
		free(s->topics[i]);
	free(s->topics);
	free(s->recv);
	free(s->cols);
	free(s->links);
	free(s->ev);
	free(s->windows);
	free(s->by_hash_key);
	free(s->by_hash_val);
	sim_plan_free(&s->tape_plan);
}

void sim_log_free(struct sim_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].data);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int sim_run(const struct sim_scenario *sc, const struct sim_options *o,
            struct sim_report *r)
{
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	memset(r, 0, sizeof(*r));
	r->seed = o->seed;
	s->sc = sc;
	s->o = o;
	s->r = r;
	s->hash = 0xcbf29ce484222325ull;
	s->end = sc->duration_ns;
	s->plan = o->plan;
	s->check_every = o->check_every ? o->check_every : 1;
	if (o->tape) { /* every stream reads the one tape */
		s->tape = (struct sim_tape){o->tape, o->tape_len, 0};
		for (int k = 0; k < SIM_RNG_N; k++)
			s->rng[k].tape = &s->tape;
		if (!o->plan && o->tape_plan) {
			sim_plan_draw_from(sc, &s->rng[SIM_RNG_FAULTS], &s->tape_plan);
			s->plan = &s->tape_plan;
		}
	}
	for (size_t i = 0; s->plan && i < s->plan->n; i++) {
		const struct sim_fault *f = &s->plan->v[i];
		uint64_t e = f->at_ns + (f->for_ns ? f->for_ns : 500 * SIM_MS);
		if (e > s->last_fault_end)
			s->last_fault_end = e;
	}
	s->stop = s->end > s->last_fault_end + sc->liveness_ns
	                  ? s->end
	                  : s->last_fault_end + sc->liveness_ns;
	s->stop += 2 * SIM_S; /* drain: the last events reach everyone */
	s->poll_until = s->stop - SIM_S;
	/* the cores' own sites and reports (the simulator's build; other
	 * builds have only the simulator's sites: allocators, network) */
	s->hooks = (struct bus_sim_hooks){.plant = o->plant, .buggify = site_hook,
	                                  .policy = policy_hook, .arg = s};
	s->alloc_core = (struct sim_alloc_site){s, BUS_SITE_CORE_ALLOC};
	s->alloc_client = (struct sim_alloc_site){s, BUS_SITE_CLIENT_ALLOC};
	setup(s);
	if (r->buggify & LOSSY_SITES) { /* they fire until the workload ends */
		uint64_t last = s->end > s->last_fault_end ? s->end : s->last_fault_end;
		if (last + sc->liveness_ns + 2 * SIM_S > s->stop)
			s->stop = last + sc->liveness_ns + 2 * SIM_S;
	}
	int rc = loop(s);
	r->virtual_ns = s->now;
	if (rc == 0) {
		quiesce(s);
		sim_check_all(s, r);
	}
	r->trace_hash = s->hash;
	r->plant_fired = s->hooks.plant_fired;
	teardown_all(s);
	free(s);
	return rc;
}
