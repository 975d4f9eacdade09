/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.c — the broker core's outgoing queues: bounded rings of shared
 * frames per connection, batched writes, the slow-consumer policies and
 * backpressure (bus.h enum bus_slow_policy).
 *
 * Backpressure (block), the rules:
 *   - A receiver's queue limits (queue_frames_max, queue_bytes_max) are its
 *     high-water mark. Before a frame from a sender has any effect, the
 *     core asks queue__blocker for a receiver of it past that mark (or the
 *     sender itself, when the frame wants an answer and its own queue is
 *     full; or, when the broker-wide total is full, the receiver holding
 *     the most; the sender's own queue counts under every policy). If
 *     there is one, the frame stays unread in the sender's
 *     input, the sender waits for that receiver (a FIFO of waiters per
 *     receiver) and its reading pauses. Nothing is dropped.
 *   - A receiver below its low-water mark (low_water_percent of its
 *     limits) after a write completes, or one that closes, lets its
 *     waiters go on: in FIFO order, rotated by one each time, so that one
 *     publisher does not always take the room first.
 *   - A receiver that someone waits for and that completes no write for
 *     block_deadline_ns is stalled: it is cut (disconnects_stalled), so one
 *     stuck consumer cannot freeze the bus.
 *   - Broker frames (ACKs, RPC replies, announcements) have no sender to
 *     pause: they are queued up to twice the limits (a receiver past that
 *     is not reading, and is cut); keepalive NOPs are skipped when the
 *     queue is full (it has bytes to read anyway).
 *
 * Must never: do I/O, read a clock, or depend on addresses for order.
 */
#include "internal.h"

#include <string.h>

/* A write carries at most this much, so that "no write completed for
 * block_deadline" means a receiver reading slower than this per deadline. */
#define WRITE_BATCH_BYTES (1u << 20)

/* ---- the flush list ------------------------------------------------------ */
void queue__mark_dirty(struct bus_core *core, struct bus_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = NULL;
	if (core->dirty_last)
		core->dirty_last->dirty_next = c;
	else
		core->dirty_first = c;
	core->dirty_last = c;
}

void queue__unmark_dirty(struct bus_core *core, struct bus_conn *c)
{
	if (!c->dirty)
		return;
	struct bus_conn **pp = &core->dirty_first, *prev = NULL;
	while (*pp != c) {
		prev = *pp;
		pp = &(*pp)->dirty_next;
	}
	*pp = c->dirty_next;
	if (core->dirty_last == c)
		core->dirty_last = prev;
	c->dirty = false;
}

/* ---- limits ---------------------------------------------------------------- */
static uint64_t share(uint64_t v, uint32_t pct)
{
	return v / 100 * pct + v % 100 * pct / 100;
}

/* Room in c's queue for one more frame of len bytes, within limits times
 * k (an empty queue takes a frame of any size). */
static bool room_k(const struct bus_core *core, const struct bus_conn *c,
                   size_t len, uint64_t k)
{
	const struct bus_limits *l = &core->cfg.limits;
	return c->q_count < k * l->queue_frames_max &&
	       (c->q_bytes == 0 || c->q_bytes + len <= k * l->queue_bytes_max);
}

/* queue__room is room_k(1), inline in internal.h for the hot loops */

/* Room in the broker-wide total for a frame not queued anywhere yet. */
static bool total_room(const struct bus_core *core, size_t len)
{
	return core->queued_bytes == 0 ||
	       core->queued_bytes + len <=
	               core->cfg.limits.queued_bytes_total_max;
}

static bool below_low_water(const struct bus_core *core,
                            const struct bus_conn *c)
{
	const struct bus_limits *l = &core->cfg.limits;
	uint32_t p = core->cfg.low_water_percent;
	return c->q_count <= share(l->queue_frames_max, p) &&
	       c->q_bytes <= share(l->queue_bytes_max, p);
}

uint64_t queue__block_deadline_ns(const struct bus_core *core)
{
	return core->cfg.block_deadline_ns ? core->cfg.block_deadline_ns
	                                   : core->cfg.timeout_ns;
}

/* ---- the ring ---------------------------------------------------------------- */
static int q_push(struct bus_core *core, struct bus_conn *c, struct bus_msg *m)
{
	if (c->q_count == c->q_cap) {
		uint32_t ncap = c->q_cap ? c->q_cap * 2 : 16;
		if (ncap < c->q_cap)
			return BUS_ENOMEM;
		struct bus_msg **n = bus__alloc(&core->a, sizeof(*n) * ncap);
		if (!n)
			return BUS_ENOMEM;
		for (uint32_t i = 0; i < c->q_count; i++)
			n[i] = c->q[(c->q_head + i) % c->q_cap];
		bus__free(&core->a, c->q);
		c->q = n;
		c->q_cap = ncap;
		c->q_head = 0;
	}
	bus__msg_ref(m);
	c->q[(c->q_head + c->q_count) % c->q_cap] = m;
	c->q_count++;
	BUS_ASSERT(c->q_count <= c->q_cap);
	c->q_bytes += m->len;
	if (m->queues++ == 0) /* one allocation: counted once broker-wide */
		core->queued_bytes += m->len;
	return 0;
}

/* A frame leaves c's queue (written, or dropped with it). */
static inline void q_release(struct bus_core *core, struct bus_conn *c,
                      struct bus_msg *m)
{
	BUS_ASSERT(m->queues > 0);
	BUS_ASSERT(c->q_bytes >= m->len);
	c->q_bytes -= m->len - (BUS_PLANTED(core->cfg.sim, BUS_PLANT_QBYTES) &&
	                        m->len > 1 && BUS_PLANT_HIT(core->cfg.sim));
	if (--m->queues == 0)
		core->queued_bytes -= m->len;
	bus__msg_unref(core, m);
}

void queue__truncate(struct bus_core *core, struct bus_conn *c, uint32_t from)
{
	BUS_ASSERT(from >= c->q_inflight); /* a write's frames stay its own */
	while (c->q_count > from) {
		uint32_t i = (c->q_head + c->q_count - 1) % c->q_cap;
		c->q_count--;
		q_release(core, c, c->q[i]);
	}
}

void queue__complete(struct bus_core *core, struct bus_conn *c, bool ok)
{
	BUS_ASSERT(c->q_inflight > 0);
	BUS_ASSERT(c->q_inflight <= c->q_count);
	for (uint32_t i = 0; i < c->q_inflight; i++) {
		struct bus_msg *m = c->q[(c->q_head + i) % c->q_cap];
		/* frames count as written when the write completes (queued
		 * ones dropped with their connection never were); not the
		 * handshake's bytes, not keepalive NOPs */
		if (ok && m->len > 1 && m != core->m_nop &&
		    m != core->m_greeting) {
			c->w_frames++;
			c->w_bytes += m->len;
			core->st.w_frames++;
			core->st.w_bytes += m->len;
		}
		q_release(core, c, m);
	}
	c->q_head = (c->q_head + c->q_inflight) % c->q_cap;
	c->q_count -= c->q_inflight;
	c->q_inflight = 0;
	c->q_inflight_bytes = 0;
}

void queue__write(struct bus_core *core, struct bus_conn *c)
{
	if (c->q_inflight || c->q_count == 0 || c->close == BUS_CLOSE_REQUESTED ||
	    c->out_dead)
		return;
	uint32_t n = 0;
	uint64_t bytes = 0;
	uint32_t max = BUS_BUGGIFY(core->cfg.sim, BUS_SITE_CORE_WRITE_ONE)
	                       ? 1
	                       : core->iov_cap;
	while (n < c->q_count && n < max &&
	       (n == 0 || bytes < WRITE_BATCH_BYTES)) {
		struct bus_msg *m = c->q[(c->q_head + n) % c->q_cap];
		core->iov[n] = (struct bus_iov){m->data, m->len};
		bytes += m->len;
		n++;
	}
	BUS_ASSERT(n >= 1 && n <= c->q_count && n <= core->iov_cap);
	c->q_inflight = n;
	c->q_inflight_bytes = bytes;
	core->ops.write(core->host, c->ctx, core->iov, n);
}

/* ---- backpressure ---------------------------------------------------------- */
/* The largest queue under block (block: the one a sender waits for when
 * the broker-wide total is full; its senders bound it), or under another
 * policy with frames not being written (the one that policy acts on), or
 * NULL. First in connection order among equals: deterministic. */
static struct bus_conn *largest_queue(struct bus_core *core, bool block)
{
	struct bus_conn *best = NULL;
	for (struct bus_conn *c = core->first; c; c = c->next)
		if (c->close == BUS_CLOSE_NONE &&
		    c->q_bytes > (block ? 0 : c->q_inflight_bytes) &&
		    (queue__policy(core, c) == BUS_SLOW_BLOCK) == block &&
		    (!best || c->q_bytes > best->q_bytes))
			best = c;
	return best;
}

struct bus_conn *queue__blocker(struct bus_core *core, struct bus_conn *sender,
                                size_t len, bool answer)
{
	bool any = false;
	for (uint32_t i = 0; i < core->rcv_count; i++) {
		struct bus_conn *t = core->rcv[i];
		if (t->close != BUS_CLOSE_NONE ||
		    queue__policy(core, t) != BUS_SLOW_BLOCK)
			continue;
		any = true;
		/* the fault site takes a queue as full only while a write is
		 * out: its completion is what lets the waiter go on */
		if (!queue__room(core, t, len) ||
		    (t->q_inflight &&
		     BUS_BUGGIFY(core->cfg.sim, BUS_SITE_CORE_QUEUE_FULL)))
			return t;
	}
	/* under every policy: a client that does not read its own answers
	 * waits for itself, rather than be cut (or have them dropped) for
	 * what it asked for */
	if (answer && !queue__room(core, sender, BUS_ACK_BYTES))
		return sender;
	if (any && !total_room(core, len))
		return largest_queue(core, true);
	return NULL;
}

void queue__wait(struct bus_core *core, struct bus_conn *s, struct bus_conn *r)
{
	BUS_ASSERT(!s->wait_on);
	BUS_ASSERT(r->close == BUS_CLOSE_NONE);
	s->wait_on = r;
	s->wait_next = NULL;
	s->wait_prev = r->waiters_last;
	if (r->waiters_last) {
		r->waiters_last->wait_next = s;
	} else {
		r->waiters_first = s;
		r->progress_ns = core->now_ns; /* the stall clock starts */
		timer__changed(core, r);
	}
	r->waiters_last = s;
	core->st.backpressure_waits++;
	bus__conn_reading(core, s);
}

/* s stops waiting (it closes). */
static void wait_cancel(struct bus_conn *s)
{
	struct bus_conn *r = s->wait_on;
	if (!r)
		return;
	if (s->wait_prev)
		s->wait_prev->wait_next = s->wait_next;
	else
		r->waiters_first = s->wait_next;
	if (s->wait_next)
		s->wait_next->wait_prev = s->wait_prev;
	else
		r->waiters_last = s->wait_prev;
	s->wait_on = s->wait_prev = s->wait_next = NULL;
}

/* A waiter goes on with what it has read: its frames are processed again
 * (they may make it wait again), then it reads again. */
static void resume(struct bus_core *core, struct bus_conn *s)
{
	if (s->close != BUS_CLOSE_NONE || s->wait_on)
		return;
	s->last_rx_ns = core->now_ns; /* paused by us: not silent */
	bus__rx_drain(core, s);
	bus__conn_reading(core, s);
}

/* r's waiters go on, the first of them last. The chain is detached first:
 * a waiter that resumes may wait for r again (a new chain), and one that
 * is cut meanwhile has wait_on NULL already. */
static void wake(struct bus_core *core, struct bus_conn *r)
{
	struct bus_conn *first = r->waiters_first;
	if (!first)
		return;
	r->waiters_first = r->waiters_last = NULL;
	for (struct bus_conn *s = first; s; s = s->wait_next)
		s->wait_on = NULL;
	struct bus_conn *s = first->wait_next;
	while (s) {
		struct bus_conn *next = s->wait_next;
		s->wait_prev = s->wait_next = NULL;
		resume(core, s);
		s = next;
	}
	first->wait_prev = first->wait_next = NULL;
	resume(core, first);
}

void queue__wait_end(struct bus_core *core, struct bus_conn *c)
{
	wait_cancel(c);
	wake(core, c);
}

void queue__progress(struct bus_core *core, struct bus_conn *c)
{
	c->progress_ns = core->now_ns;
	if (c->waiters_first && below_low_water(core, c))
		wake(core, c);
}

/* What a cut discards, for the simulator's build (bus.h BUS_SIM_POLICY):
 * the queue past what is being written, then m if any, then the cut. */
static void report_cut(struct bus_core *core, struct bus_conn *c,
                       const struct bus_msg *m)
{
#ifdef BUS_SIM
	for (uint32_t i = c->q_inflight; i < c->q_count; i++) {
		const struct bus_msg *q = c->q[(c->q_head + i) % c->q_cap];
		BUS_SIM_POLICY(core->cfg.sim, c->ctx, q->data, q->len);
	}
	if (m)
		BUS_SIM_POLICY(core->cfg.sim, c->ctx, m->data, m->len);
	BUS_SIM_POLICY(core->cfg.sim, c->ctx, NULL, 0);
#else
	(void)core, (void)c, (void)m;
#endif
}

void queue__stall_check(struct bus_core *core, struct bus_conn *c)
{
	if (!c->waiters_first || c->close != BUS_CLOSE_NONE ||
	    core->now_ns - c->progress_ns < queue__block_deadline_ns(core))
		return;
	core->st.disconnects_stalled++;
	report_cut(core, c, NULL);
	bus__conn_abort(core, c); /* its waiters go on */
}

uint64_t queue__stall_deadline(const struct bus_core *core,
                               const struct bus_conn *c)
{
	if (!c->waiters_first || c->close != BUS_CLOSE_NONE)
		return UINT64_MAX;
	return c->progress_ns + queue__block_deadline_ns(core);
}

/* ---- delivery ------------------------------------------------------------- */
#ifdef BUS_SIM
static bool is_publish(const struct bus_msg *m)
{
	return m->len > BUS_SERVER_HDR_BYTES && m->data[0] == BUS_OP_PUBLISH;
}

/* A publish of an event (its topic under events/): what the planted bugs
 * act on, not the control messages beside them. */
static bool is_event(const struct bus_msg *m)
{
	if (!is_publish(m))
		return false;
	const uint8_t *p = m->data + BUS_SERVER_HDR_BYTES,
	              *end = m->data + m->len;
	const uint8_t *z = memchr(p, 0, (size_t)(end - p));
	return z && end - (z + 1) >= 7 && !memcmp(z + 1, "events/", 7);
}

/* Two deliveries of one sender (the name after the header). */
static bool same_sender(const struct bus_msg *a, const struct bus_msg *b)
{
	const uint8_t *x = a->data + BUS_SERVER_HDR_BYTES;
	const uint8_t *y = b->data + BUS_SERVER_HDR_BYTES;
	size_t n = a->len - BUS_SERVER_HDR_BYTES, k = b->len - BUS_SERVER_HDR_BYTES;
	for (size_t i = 0; i < n && i < k; i++) {
		if (x[i] != y[i])
			return false;
		if (!x[i])
			return true;
	}
	return false;
}
#endif

/* The simulator build's planted queue bugs (bus.h): m was just queued.
 * Each acts on the first chance it gets, then at every 29th (17th): a
 * publish queued twice; the last two publishes of one sender waiting in
 * a queue swapped. */
static void plant_queue(struct bus_core *core, struct bus_conn *c,
                        struct bus_msg *m)
{
#ifdef BUS_SIM
	struct bus_sim_hooks *h = core->cfg.sim;
	if (BUS_PLANTED(h, BUS_PLANT_DUP) && is_event(m) &&
	    ++core->plant_n % 29 == 1 && BUS_PLANT_HIT(h))
		q_push(core, c, m); /* written and counted twice */
	uint32_t last = c->q_count - 1;
	if (BUS_PLANTED(h, BUS_PLANT_SWAP) && c->q_count >= c->q_inflight + 2) {
		struct bus_msg **a = &c->q[(c->q_head + last) % c->q_cap];
		struct bus_msg **b = &c->q[(c->q_head + last - 1) % c->q_cap];
		/* one pair in 17, eight times at most: each swap costs the
		 * agent a re-send of all after it, which may swap again */
		if (is_event(*a) && is_event(*b) && same_sender(*a, *b) &&
		    ++core->plant_n % 17 == 1 && core->plant_n < 17 * 8 &&
		    BUS_PLANT_HIT(h)) {
			struct bus_msg *t = *a;
			*a = *b;
			*b = t;
		}
	}
#else
	(void)core, (void)c, (void)m;
#endif
}

/* A frame of the protocol itself (a handshake answer, an ACK): dropping
 * one would wedge the client (its ACKs are matched in order), so
 * drop_newest never drops it; it may take twice the limits, like any
 * broker frame under block, and past that the receiver is cut. */
static bool essential(const struct bus_core *core, const struct bus_msg *m)
{
	return m->len == 1 || m == core->m_greeting ||
	       (m->len == BUS_ACK_BYTES && m->data[0] == BUS_OP_ACK);
}

/* Would m overflow c's queue? Under block, a sender's frame was checked
 * by queue__blocker before (it has room); a broker frame may take up to
 * twice the limits. (The broker-wide total is total_make_room's.) */
static bool overflows(const struct bus_core *core, const struct bus_conn *c,
                      const struct bus_msg *m, bool twice)
{
	if (twice)
		return !room_k(core, c, m->len, 2);
	return BUS_BUGGIFY(core->cfg.sim, BUS_SITE_CORE_QUEUE_FULL) ||
	       !queue__room(core, c, m->len);
}

/* drop_newest on c for the broker-wide total: c's newest frames that are
 * not being written and not the protocol's own go, newest first, until a
 * frame of len fits (or nothing of c's can go). Each one is counted and
 * reported as a drop_newest drop is. */
static void shed_newest(struct bus_core *core, struct bus_conn *c, size_t len)
{
	uint32_t kept = c->q_count;
	for (uint32_t i = c->q_count; i > c->q_inflight; i--) {
		if (total_room(core, len))
			break;
		struct bus_msg **slot = &c->q[(c->q_head + i - 1) % c->q_cap];
		if (essential(core, *slot))
			continue;
		core->st.drops_slow++;
		BUS_SIM_POLICY(core->cfg.sim, c->ctx, (*slot)->data, (*slot)->len);
		q_release(core, c, *slot);
		*slot = NULL;
		kept--;
	}
	uint32_t j = c->q_inflight;
	for (uint32_t i = c->q_inflight; i < c->q_count; i++) {
		struct bus_msg *m = c->q[(c->q_head + i) % c->q_cap];
		if (m)
			c->q[(c->q_head + j++) % c->q_cap] = m;
	}
	BUS_ASSERT(j == kept);
	c->q_count = kept;
}

/* A new frame of len for c does not fit the broker-wide total: the
 * slow-consumer policy acts on the receivers holding the most, never on
 * one smaller than c would be with the frame (a 16 MiB frame to 40
 * receivers is one allocation; the total does not cut the 40). True
 * when the frame now fits; false: the policy is c's. */
static bool total_make_room(struct bus_core *core, struct bus_conn *c,
                            size_t len)
{
	while (!total_room(core, len)) {
		struct bus_conn *big = largest_queue(core, false);
		if (!big || big == c || big->q_bytes < c->q_bytes + len)
			return false;
		if (queue__policy(core, big) == BUS_SLOW_DROP_NEWEST) {
			uint64_t before = big->q_bytes;
			shed_newest(core, big, len);
			if (big->q_bytes == before)
				return false; /* nothing of it could go */
		} else {
			core->st.disconnects_slow++;
			report_cut(core, big, NULL);
			bus__conn_abort(core, big);
		}
	}
	return true;
}

uint32_t queue__fan_out(struct bus_core *core, struct bus_msg *m,
                        bool realtime, bool checked)
{
	uint32_t queued = 0;
	for (uint32_t i = 0; i < core->rcv_count; i++) {
		struct bus_conn *c = core->rcv[i];
		/* the fast path: block, with room (queue__blocker said so) */
		if (checked && !BUS_PLANTED(core->cfg.sim, ~0u) &&
		    c->close == BUS_CLOSE_NONE &&
		    queue__policy(core, c) == BUS_SLOW_BLOCK &&
		    q_push(core, c, m) == 0) {
			if (realtime)
				queue__write(core, c);
			else
				queue__mark_dirty(core, c);
			queued++;
			continue;
		}
		queued += queue__deliver(core, c, m, realtime) == QUEUE_OK;
	}
	return queued;
}

enum queue_res queue__deliver(struct bus_core *core, struct bus_conn *c,
                              struct bus_msg *m, bool realtime)
{
	if (c->close != BUS_CLOSE_NONE || c->out_dead)
		return QUEUE_DROPPED;
	/* planted: each receiver's first publish lost without
	 * a trace; or the first publish routed changed in its last byte (the
	 * one copy every receiver of it shares) */
	struct bus_sim_hooks *h = core->cfg.sim;
	bool planted_pub = false;
#ifdef BUS_SIM
	planted_pub = BUS_PLANTED(h, ~0u) && is_event(m);
#endif
	uint32_t k = planted_pub ? ++c->plant_pubs : 0;
	if (k == 1 && BUS_PLANTED(h, BUS_PLANT_DROP_ACKED) &&
	    BUS_PLANT_HIT(h))
		return QUEUE_OK; /* planted: lost without a trace */
	if (planted_pub && BUS_PLANTED(h, BUS_PLANT_CORRUPT) &&
	    core->plant_n++ == 0 && BUS_PLANT_HIT(h))
		m->data[m->len - 1] ^= 0x20; /* planted: the last byte changed */
	enum bus_slow_policy policy = queue__policy(core, c);
	bool block = policy == BUS_SLOW_BLOCK;
	if (block && m == core->m_nop && !queue__room(core, c, m->len))
		return QUEUE_DROPPED; /* a keepalive for a busy queue: needless */
	/* a full queue, or no memory to grow it: the policy decides (a frame
	 * silently dropped under disconnect would be lost to a receiver that
	 * believes it got everything) */
	bool twice = block || (policy == BUS_SLOW_DROP_NEWEST &&
	                       essential(core, m));
	bool fits = twice || m->queues > 0 || total_make_room(core, c, m->len);
	if (fits && !overflows(core, c, m, twice) && q_push(core, c, m) == 0) {
		if (planted_pub)
			plant_queue(core, c, m);
		if (realtime)
			queue__write(core, c);
		else
			queue__mark_dirty(core, c);
		return QUEUE_OK;
	}
	if (policy == BUS_SLOW_DROP_NEWEST && !essential(core, m)) {
		core->st.drops_slow++;
		BUS_SIM_POLICY(core->cfg.sim, c->ctx, m->data, m->len);
		return QUEUE_DROPPED;
	}
	/* disconnect; or block or drop_newest, and c is not reading at all */
	core->st.disconnects_slow++;
	report_cut(core, c, m);
	bus__conn_abort(core, c);
	return QUEUE_CUT;
}
