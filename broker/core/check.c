/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.c — the core's structural invariants, checked on demand by the
 * fuzz harnesses, the unit tests and the simulator after every
 * step. Read-only but for its scratch (stamps on connections, marks on
 * frames); O(connections + queued frames + masks + trie) — a checking
 * tool, not a hot path.
 */
#include "internal.h"

#include <string.h>

#define FAIL(...)                                                            \
	do {                                                                 \
		snprintf(why, len, __VA_ARGS__);                             \
		return BUS_EPROTO;                                           \
	} while (0)

/* x is on the connection list: stamped by this check's first pass (a
 * pointer to a freed connection holds an older number, or none). */
static bool live(const struct bus_core *core, const struct bus_conn *x)
{
	return x->check_live == core->check_gen;
}

/* Counts subscription entries below n; every one must be a live,
 * registered connection (owner NULL), or owner (a client's own trie).
 * Returns -1 on another. */
static long trie_entries(const struct bus_core *core, const struct bus_tnode *n,
                         const struct bus_conn *owner)
{
	long total = 0;
	const struct bus_subset *sets[2] = {&n->end, &n->hash};
	for (int s = 0; s < 2; s++)
		for (uint32_t i = 0; i < sets[s]->count; i++) {
			const struct bus_conn *c = sets[s]->items[i];
			if (owner ? c != owner : !live(core, c) || !c->registered)
				return -1;
			total++;
		}
	for (uint32_t i = 0; i < n->children.cap; i++) {
		if (!bus__strmap_live(&n->children, i))
			continue;
		long k = trie_entries(core, n->children.slots[i].value, owner);
		if (k < 0)
			return -1;
		total += k;
	}
	if (n->plus) {
		long k = trie_entries(core, n->plus, owner);
		if (k < 0)
			return -1;
		total += k;
	}
	return total;
}

/* What a client's set of masks is charged (bus__mask_charge). */
static uint64_t set_charge(const struct bus_strmap *m)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < m->cap; i++)
		if (bus__strmap_live(m, i))
			sum += bus__mask_charge(m->slots[i].key_len,
			                        bus__levels(m->slots[i].key,
			                                    m->slots[i].key_len));
	return sum;
}

int bus_core_check_invariants(const struct bus_core *core, char *why,
                              size_t len)
{
	const struct bus_limits *lim = &core->cfg.limits;
	uint32_t conns = 0, registered = 0, internal = 0;
	uint64_t queued = 0, prev_serial = 0;
	long subs = 0;
	uint64_t masks = 0, rx = 0;
	const struct bus_conn *prev = NULL;
	/* the check writes only its scratch: the stamps live() and the
	 * FIFO test read, and the frames' marks below */
	uint64_t gen = ++((struct bus_core *)core)->check_gen;
	for (struct bus_conn *c = core->first; c; c = c->next)
		c->check_live = gen;
	for (struct bus_conn *q = core->in_first; q; q = q->in_next) {
		if (q->check_live != gen || q->check_fifo == gen)
			FAIL("input FIFO: a dead connection, or a cycle");
		q->check_fifo = gen;
	}
	for (const struct bus_conn *c = core->first; c; c = c->next) {
		if (c->prev != prev)
			FAIL("connection list: broken back link");
		if (prev && c->serial <= prev_serial)
			FAIL("connection list: serials not increasing");
		prev = c;
		prev_serial = c->serial;
		conns++;
		if (c->registered) {
			registered++;
			internal += c->kind == BUS_KIND_INTERNAL;
			if (!c->name || strlen(c->name) != c->name_len)
				FAIL("registered connection without its name");
			if (bus__find_name((struct bus_core *)core, c->name,
			                   c->name_len) != c)
				FAIL("%s: not found by name", c->name);
			if (c->primary && (!live(core, c->primary) ||
			                   !c->primary->registered))
				FAIL("%s: secondary of a dead primary", c->name);
		} else if (c->subs.set.count || c->excl.set.count) {
			FAIL("unregistered connection with subscriptions");
		}
		if (!timer__check(core, c))
			FAIL("%s: timer: out of its heap's order, or its wake-up "
			     "after its deadline", c->name ? c->name : "?");
		if (c->q_count > c->q_cap || c->q_inflight > c->q_count)
			FAIL("%s: queue ring counts", c->name ? c->name : "?");
		uint64_t qb = 0, ib = 0;
		for (uint32_t i = 0; i < c->q_count; i++) {
			uint32_t fl = c->q[(c->q_head + i) % c->q_cap]->len;
			qb += fl;
			ib += i < c->q_inflight ? fl : 0;
		}
		if (ib != c->q_inflight_bytes) /* the write in flight, exactly */
			FAIL("%s: q_inflight_bytes %llu, the write holds %llu",
			     c->name ? c->name : "?",
			     (unsigned long long)c->q_inflight_bytes,
			     (unsigned long long)ib);
		if (qb != c->q_bytes)
			FAIL("%s: q_bytes %llu, frames hold %llu",
			     c->name ? c->name : "?",
			     (unsigned long long)c->q_bytes,
			     (unsigned long long)qb);
		/* block lets broker frames take up to twice the limits, and
		 * drop_newest the protocol's own frames (ACKs); a frame of any
		 * size fits an empty queue */
		uint64_t k = queue__policy(core, c) == BUS_SLOW_DISCONNECT ? 1 : 2;
		uint64_t first = c->q_count ? c->q[c->q_head]->len : 0;
		if (c->q_count > k * lim->queue_frames_max ||
		    (c->q_bytes > k * lim->queue_bytes_max &&
		     c->q_bytes != first))
			FAIL("%s: queue over its limits", c->name ? c->name : "?");
		if (c->wait_on) {
			if (!live(core, c->wait_on))
				FAIL("%s waits for a dead connection", c->name);
			const struct bus_conn *w = c->wait_on->waiters_first;
			while (w && w != c)
				w = w->wait_next;
			if (!w)
				FAIL("%s: not among its receiver's waiters", c->name);
			if (!c->reading_paused)
				FAIL("%s waits and still reads", c->name);
		}
		for (const struct bus_conn *w = c->waiters_first; w;
		     w = w->wait_next) {
			if (w->wait_on != c)
				FAIL("a waiter of %s waits for another",
				     c->name ? c->name : "?");
			if (!w->wait_next && w != c->waiters_last)
				FAIL("waiters of %s: wrong tail",
				     c->name ? c->name : "?");
		}
		if (c->subs.set.count > lim->subscriptions_max ||
		    c->excl.set.count > lim->exclusions_max)
			FAIL("%s: over the subscription limits", c->name);
		subs += c->subs.in_trie;
		uint64_t charge = set_charge(&c->subs.set) + set_charge(&c->excl.set);
		if (c->mask_bytes != charge)
			FAIL("%s: mask_bytes %llu, its masks cost %llu",
			     c->name ? c->name : "?",
			     (unsigned long long)c->mask_bytes,
			     (unsigned long long)charge);
		const char *bf = bus__book_fault(&c->subs);
		if (!bf)
			bf = bus__book_fault(&c->excl);
		bool work = c->subs.work_first || c->excl.work_first;
		if (!bf && work && !c->book_listed &&
		    c->subs.in_trie <= BUS_BOOK_COMPARE_MAX &&
		    c->excl.in_trie <= BUS_BOOK_COMPARE_MAX)
			bf = "comparisons left and not on the book list";
		if (bf)
			FAIL("%s: %s", c->name ? c->name : "?", bf);
		masks += c->mask_bytes;
		rx += c->rx_cap;
		if (c->rx_len > c->rx_cap)
			FAIL("%s: rx holds more than its capacity",
			     c->name ? c->name : "?");
		if (c->close == BUS_CLOSE_NONE &&
		    c->reading_paused != (c->wait_on || c->input_paused))
			FAIL("%s: reading %s, waiting %d, input paused %d",
			     c->name ? c->name : "?",
			     c->reading_paused ? "paused" : "on", !!c->wait_on,
			     c->input_paused);
		bool in_fifo = c->check_fifo == gen;
		if (in_fifo != c->input_paused)
			FAIL("%s: input paused %d, in the FIFO %d",
			     c->name ? c->name : "?", c->input_paused, in_fifo);
		if (trie_entries(core, &c->excl_trie.root, c) != c->excl.in_trie)
			FAIL("%s: exclusion trie and set disagree", c->name);
	}
	if (rx != core->rx_bytes)
		FAIL("rx_bytes %llu, connections hold %llu",
		     (unsigned long long)core->rx_bytes,
		     (unsigned long long)rx);
	if (core->in_owner && !live(core, core->in_owner))
		FAIL("the input budget's owner is dead");
	if (masks != core->mask_bytes)
		FAIL("mask_bytes %llu, clients hold %llu",
		     (unsigned long long)core->mask_bytes,
		     (unsigned long long)masks);
	/* a frame shared by several queues counts once broker-wide */
	for (const struct bus_conn *c = core->first; c; c = c->next)
		for (uint32_t i = 0; i < c->q_count; i++)
			c->q[(c->q_head + i) % c->q_cap]->mark = 0;
	for (const struct bus_conn *c = core->first; c; c = c->next)
		for (uint32_t i = 0; i < c->q_count; i++) {
			struct bus_msg *m = c->q[(c->q_head + i) % c->q_cap];
			queued += m->mark ? 0 : m->len;
			m->mark++;
		}
	for (const struct bus_conn *c = core->first; c; c = c->next)
		for (uint32_t i = 0; i < c->q_count; i++) {
			const struct bus_msg *m = c->q[(c->q_head + i) % c->q_cap];
			if (m->mark != m->queues)
				FAIL("a frame in %u queue slots counts %u",
				     m->mark, m->queues);
		}
	if (conns != core->conn_count)
		FAIL("conn_count %u, list holds %u", core->conn_count, conns);
	if (core->timers.count != conns || core->visits.count || core->tick_phase)
		FAIL("timer: %u wake-ups for %u connections, or a pass open",
		     core->timers.count, conns);
	if (registered != core->names_count || internal != core->internal_names)
		FAIL("names_count %u (internal %u), registered %u (internal %u)",
		     core->names_count, core->internal_names, registered,
		     internal);
	for (uint32_t i = 1; i < core->names_count; i++) {
		const struct bus_conn *a = core->names[i - 1], *b = core->names[i];
		size_t m = a->name_len < b->name_len ? a->name_len : b->name_len;
		int cmp = memcmp(a->name, b->name, m);
		if (cmp > 0 || (cmp == 0 && a->name_len >= b->name_len))
			FAIL("names not sorted at %u", i);
	}
	if (queued != core->queued_bytes)
		FAIL("queued_bytes %llu, queues hold %llu",
		     (unsigned long long)core->queued_bytes,
		     (unsigned long long)queued);
	/* the cap holds for what senders queue; broker frames may pass it
	 * under block, so the check is on per-queue limits above */
	long entries = trie_entries(core, &core->trie.root, NULL);
	if (entries < 0)
		FAIL("a subscription owned by a dead or unregistered client");
	if (entries != subs)
		FAIL("trie holds %ld subscriptions, clients %ld", entries, subs);
	/* broker-wide counters include closed connections' */
	uint64_t rf = 0, rb = 0, wf = 0, wb = 0;
	for (const struct bus_conn *c = core->first; c; c = c->next)
		rf += c->r_frames, rb += c->r_bytes, wf += c->w_frames,
		    wb += c->w_bytes;
	if (rf > core->st.r_frames || rb > core->st.r_bytes ||
	    wf > core->st.w_frames || wb > core->st.w_bytes)
		FAIL("per-client counters exceed the broker's");
	return 0;
}
