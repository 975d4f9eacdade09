/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timer.c — when the broker core must next be ticked, and which
 * connections a tick visits, without walking every connection.
 *
 * Each connection has a wake-up in a min-heap (core->timers): never after
 * the earliest of its own deadlines (handshake or close-after-flush
 * deadline, keepalive NOP, idle cut, stall cut; timer__wake). A deadline
 * that moves later leaves the key as it is (a lower bound, settled when it
 * reaches the top); whatever can make one earlier calls timer__changed,
 * which lowers the key. So bus_core_next_deadline settles the top and
 * reads it: O(log n) per connection whose deadline moved, not O(n) per
 * loop turn.
 *
 * A tick visits, in two passes as the walks of the list it replaces did
 * (the timers, then the stall cuts), exactly the connections that may
 * act: those due now and, in the first pass, those holding a large input
 * buffer (core->big_first). They are visited in serial order (the list's
 * order); a connection that a visit changes and that comes later in that
 * order joins the pass, as it would have been met by the walk. So a tick
 * does what the walk did, in the same order: traces stay byte-identical.
 *
 * Must never: do I/O, read a clock, or depend on addresses for order.
 */
#include "internal.h"

#include <stddef.h>

static struct bus_conn *of_timer(struct bus_heap_item *it)
{
	return (struct bus_conn *)((char *)it - offsetof(struct bus_conn,
	                                                 t_item));
}

static struct bus_conn *of_visit(struct bus_heap_item *it)
{
	return (struct bus_conn *)((char *)it - offsetof(struct bus_conn,
	                                                 v_item));
}

uint64_t timer__wake(const struct bus_core *core, const struct bus_conn *c)
{
	if (c->close == BUS_CLOSE_AFTER_FLUSH ||
	    (c->close == BUS_CLOSE_NONE && c->state != BUS_CS_READY))
		return c->deadline_ns;
	if (c->close != BUS_CLOSE_NONE)
		return UINT64_MAX;
	uint64_t d = c->next_nop_ns;
	if (!c->reading_paused) {
		uint64_t idle = c->last_rx_ns + core->cfg.timeout_ns / 4 * 5;
		if (idle < d)
			d = idle;
	}
	uint64_t stall = queue__stall_deadline(core, c);
	return stall < d ? stall : d;
}

int timer__reserve(struct bus_core *core, uint32_t conns)
{
	if (bus__heap_reserve(&core->a, &core->timers, conns) ||
	    bus__heap_reserve(&core->a, &core->visits, conns))
		return BUS_ENOMEM;
	return 0;
}

void timer__add(struct bus_core *core, struct bus_conn *c)
{
	c->v_item.idx = UINT32_MAX;
	int rc = bus__heap_push(&core->a, &core->timers, &c->t_item,
	                        timer__wake(core, c));
	BUS_ASSERT(rc == 0); /* reserved (timer__reserve) */
	(void)rc;
}

static void visit_add(struct bus_core *core, struct bus_conn *c)
{
	if (c->v_item.idx != UINT32_MAX)
		return;
	int rc = bus__heap_push(&core->a, &core->visits, &c->v_item, c->serial);
	BUS_ASSERT(rc == 0); /* reserved: a connection is in it once */
	(void)rc;
}

static void big_list(struct bus_core *core, struct bus_conn *c, bool big)
{
	if (big == c->big_rx)
		return;
	c->big_rx = big;
	if (big) {
		c->big_prev = NULL;
		c->big_next = core->big_first;
		if (core->big_first)
			core->big_first->big_prev = c;
		core->big_first = c;
		return;
	}
	if (c->big_prev)
		c->big_prev->big_next = c->big_next;
	else
		core->big_first = c->big_next;
	if (c->big_next)
		c->big_next->big_prev = c->big_prev;
	c->big_prev = c->big_next = NULL;
}

void timer__remove(struct bus_core *core, struct bus_conn *c)
{
	bus__heap_remove(&core->timers, &c->t_item);
	bus__heap_remove(&core->visits, &c->v_item);
	big_list(core, c, false);
}

void timer__changed(struct bus_core *core, struct bus_conn *c)
{
	if (c->t_item.idx == UINT32_MAX)
		return; /* not yet (or no longer) a connection of the timer */
	big_list(core, c, c->rx_cap > RX_KEEP_BYTES);
	uint64_t w = timer__wake(core, c);
	if (w < c->t_item.key)
		bus__heap_update(&core->timers, &c->t_item, w);
	/* a walk of the list would still meet it: the pass does */
	if (core->tick_phase && c->serial > core->tick_at)
		visit_add(core, c);
}

uint64_t timer__next(struct bus_core *core)
{
	BUS_ASSERT(core->tick_phase == 0);
	struct bus_heap_item *top;
	while ((top = bus__heap_top(&core->timers))) {
		uint64_t w = timer__wake(core, of_timer(top));
		BUS_ASSERT(w >= top->key); /* a lower bound, or a missed change */
		if (w == top->key)
			return w;
		bus__heap_update(&core->timers, top, w);
	}
	return UINT64_MAX;
}

void timer__pass_begin(struct bus_core *core, unsigned phase)
{
	BUS_ASSERT(core->tick_phase == 0 && core->visits.count == 0);
	struct bus_heap_item *top;
	while ((top = bus__heap_top(&core->timers)) &&
	       top->key <= core->now_ns) {
		struct bus_conn *c = of_timer(top);
		uint64_t w = timer__wake(core, c);
		/* due: out of the way until its visit sets its wake-up */
		bus__heap_update(&core->timers, top,
		                 w > core->now_ns ? w : UINT64_MAX);
		if (w <= core->now_ns)
			visit_add(core, c);
	}
	if (phase == 1)
		for (struct bus_conn *c = core->big_first; c; c = c->big_next)
			visit_add(core, c);
	core->tick_phase = phase;
	core->tick_at = 0;
}

static void rewake(struct bus_core *core, struct bus_conn *c)
{
	bus__heap_update(&core->timers, &c->t_item, timer__wake(core, c));
}

struct bus_conn *timer__pass_next(struct bus_core *core,
                                  struct bus_conn *prev)
{
	BUS_ASSERT(core->tick_phase != 0);
	if (prev)
		rewake(core, prev);
	struct bus_heap_item *top = bus__heap_top(&core->visits);
	if (!top) {
		core->tick_phase = 0;
		return NULL;
	}
	struct bus_conn *c = of_visit(top);
	bus__heap_remove(&core->visits, top);
	BUS_ASSERT(c->serial > core->tick_at); /* the list's order */
	core->tick_at = c->serial;
	return c;
}

bool timer__check(const struct bus_core *core, const struct bus_conn *c)
{
	const struct bus_heap *h = &core->timers;
	uint32_t i = c->t_item.idx;
	if (i >= h->count || h->items[i] != &c->t_item ||
	    c->v_item.idx != UINT32_MAX)
		return false;
	if (i > 0 && h->items[(i - 1) / 2]->key > c->t_item.key)
		return false; /* the heap's order */
	if (c->t_item.key > timer__wake(core, c))
		return false; /* a deadline became earlier unseen */
	return c->big_rx == (c->rx_cap > RX_KEEP_BYTES);
}
