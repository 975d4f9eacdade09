/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core.c — the sans-I/O BUS/RT broker: its configuration, input (frames
 * decoded under the input budget), and the entry points of its life
 * (new, connect, bytes, written, close, tick, flush, shutdown, free).
 * conn.c holds a connection's life (registration, the ACL, the
 * handshake), route.c what its frames do, queue.c the outgoing queues and
 * slow-consumer policies, brpc.c the .broker RPC.
 *
 * Contract with the host (bus.h): the host reports bytes, write completions,
 * closes and time; the core asks it to write, to pause/resume reading and to
 * close. The core never calls back into itself: work that would nest (the
 * .broker/info announcement of a client that leaves while a frame is being
 * routed) is queued and done at the end of the current entry point.
 *
 * Must never: do I/O, read a clock, draw randomness, iterate in an order that
 * depends on addresses. Connections are kept in serial (connect) order,
 * registered clients in name order.
 */
#include "internal.h"

#include <string.h>

/* ---- configuration ----------------------------------------------------- */
void bus_core_config_defaults(struct bus_core_config *cfg, bool embedded)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->limits = (struct bus_limits){
	    .payload_bytes_max = 16u << 20,
	    .name_bytes_max = 256,
	    .topic_bytes_max = 1024,
	    .topic_levels_max = 128,
	    .subscriptions_max = 1024,
	    .exclusions_max = 1024,
	    .subscriptions_bytes_max = 4u << 20,
	    .subscriptions_bytes_total_max = embedded ? 64u << 20 : 256u << 20,
	    .connections_max = embedded ? 64 : 1000,
	    .connections_per_peer_max = embedded ? 32 : 256,
	    .queue_frames_max = 10000,
	    .queue_bytes_max = 32u << 20,
	    .queued_bytes_total_max = 512u << 20,
	    .read_bytes_per_turn_max = 256u << 10,
	    .rpc_params_bytes_max = 64u << 10,
	    .input_bytes_total_max = embedded ? 64u << 20 : 256u << 20,
	};
	cfg->timeout_ns = 5000000000ull;
	cfg->slow_policy = BUS_SLOW_BLOCK;
	cfg->internal_slow_policy = BUS_SLOW_BLOCK;
	cfg->block_deadline_ns = 0; /* the timeout */
	cfg->low_water_percent = 50;
	cfg->star_is_plus = true;
	cfg->force_register = false;
	cfg->stats_interval_ns = 10000000000ull;
	cfg->topic_stats_depth = 3;
	cfg->topic_stats_rows = 256;
}

int bus_core_config_check(const struct bus_core_config *cfg, const char **what)
{
	const struct bus_limits *l = &cfg->limits;
#define CHECK(cond, key)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			*what = (key);                                       \
			return BUS_ECONFIG;                                  \
		}                                                            \
	} while (0)
	CHECK(l->payload_bytes_max > 0, "payload_bytes_max");
	CHECK(l->name_bytes_max > 0 && l->name_bytes_max <= 65535,
	      "name_bytes_max");
	CHECK(l->topic_bytes_max > 0, "topic_bytes_max");
	CHECK(l->topic_levels_max > 0 && l->topic_levels_max <= 4096,
	      "topic_levels_max");
	CHECK(l->connections_max > 0, "connections_max");
	CHECK(l->subscriptions_bytes_max >= 4096, "subscriptions_bytes_max");
	CHECK(l->subscriptions_bytes_total_max >= l->subscriptions_bytes_max,
	      "subscriptions_bytes_total_max");
	CHECK(l->queue_frames_max >= 2, "queue_frames_max");
	CHECK(l->queue_bytes_max >= 64, "queue_bytes_max");
	CHECK(l->queued_bytes_total_max >= l->queue_bytes_max,
	      "queued_bytes_total_max");
	CHECK(l->read_bytes_per_turn_max >= 1, "read_bytes_per_turn_max");
	CHECK(l->rpc_params_bytes_max >= 64, "rpc_params_bytes_max");
	CHECK(l->input_bytes_total_max >= l->payload_bytes_max,
	      "input_bytes_total_max");
	CHECK(cfg->timeout_ns >= 1000000ull, "timeout");
	CHECK(cfg->slow_policy <= BUS_SLOW_BLOCK, "queue_policy");
	CHECK(cfg->internal_slow_policy <= BUS_SLOW_BLOCK,
	      "internal_queue_policy");
	CHECK(cfg->low_water_percent < 100, "low_water_percent");
	CHECK(cfg->stats_interval_ns == 0 ||
	      cfg->stats_interval_ns >= 100000000ull, "stats_interval_ms");
	CHECK(cfg->topic_stats_depth <= l->topic_levels_max,
	      "topic_stats.depth");
	CHECK(cfg->topic_stats_rows <= 65536, "topic_stats.rows");
#undef CHECK
	return 0;
}

/* ---- small helpers ----------------------------------------------------- */
uint64_t bus__unix_ns(const struct bus_core *core)
{
	return core->realtime_base_ns + (core->now_ns - core->mono_base_ns);
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);
	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* Index of the first registered name >= (name, len). */
uint32_t bus__names_lower(const struct bus_core *core, const char *name,
			  size_t len)
{
	uint32_t lo = 0, hi = core->names_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct bus_conn *c = core->names[mid];
		if (name_cmp(c->name, c->name_len, name, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct bus_conn *bus__find_name(struct bus_core *core, const char *name,
                                size_t len)
{
	uint32_t i = bus__names_lower(core, name, len);
	if (i < core->names_count &&
	    name_cmp(core->names[i]->name, core->names[i]->name_len, name,
	             len) == 0)
		return core->names[i];
	return NULL;
}

int bus__names_insert(struct bus_core *core, struct bus_conn *c)
{
	if (core->names_count == core->names_cap) {
		uint32_t ncap = core->names_cap ? core->names_cap * 2 : 16;
		void *n = bus__realloc(&core->a, core->names,
		                       sizeof(*core->names) * ncap);
		if (!n)
			return BUS_ENOMEM;
		core->names = n;
		core->names_cap = ncap;
	}
	uint32_t i = bus__names_lower(core, c->name, c->name_len);
	memmove(core->names + i + 1, core->names + i,
	        sizeof(*core->names) * (core->names_count - i));
	core->names[i] = c;
	core->names_count++;
	/* names are unique and sorted: the neighbours are strictly around */
	BUS_ASSERT(i == 0 || name_cmp(core->names[i - 1]->name,
	                              core->names[i - 1]->name_len, c->name,
	                              c->name_len) < 0);
	BUS_ASSERT(i + 1 == core->names_count ||
	           name_cmp(c->name, c->name_len, core->names[i + 1]->name,
	                    core->names[i + 1]->name_len) < 0);
	core->internal_names += c->kind == BUS_KIND_INTERNAL;
	return 0;
}

void bus__names_remove(struct bus_core *core, struct bus_conn *c)
{
	uint32_t i = bus__names_lower(core, c->name, c->name_len);
	BUS_ASSERT(i < core->names_count && core->names[i] == c);
	memmove(core->names + i, core->names + i + 1,
	        sizeof(*core->names) * (core->names_count - i - 1));
	core->names_count--;
	core->internal_names -= c->kind == BUS_KIND_INTERNAL;
}

void bus__announce_later(struct bus_core *core, const char *topic,
			 const char *subject, const char *name)
{
	size_t nl = name ? strlen(name) : 0;
	struct bus_pending_ann *p = bus__alloc(&core->a, sizeof(*p) + nl + 1);
	if (!p)
		return; /* an announcement is best effort, like BUS/RT's */
	p->next = NULL;
	p->topic = topic;
	p->subject = subject;
	if (name)
		memcpy(p->name, name, nl + 1);
	else
		p->name[0] = '\0';
	if (core->ann_last)
		core->ann_last->next = p;
	else
		core->ann_first = p;
	core->ann_last = p;
}


/* ---- input ------------------------------------------------------------- */
/* Consumes what it can of buf; stops at a partial frame, a close, or when
 * the connection waits for a receiver (block policy). */
static size_t conn_process(struct bus_core *core, struct bus_conn *c,
                           const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	while (c->close == BUS_CLOSE_NONE && !c->wait_on && pos < len) {
		const uint8_t *p = buf + pos;
		size_t avail = len - pos;
		if (c->state == BUS_CS_GREETING) {
			if (avail < 3)
				break;
			pos += 3;
			if (p[0] != BUS_GREETING ||
			    (p[1] | p[2] << 8) != BUS_PROTOCOL_VERSION) {
				bus__handshake_refuse(core, c, BUS_RES_NOT_SUPPORTED, false);
				break;
			}
			bus__send_byte(core, c, BUS_RES_OK);
			c->state = BUS_CS_NAME_LEN;
			c->deadline_ns = core->now_ns + core->cfg.timeout_ns;
		} else if (c->state == BUS_CS_NAME_LEN) {
			if (avail < 2)
				break;
			pos += 2;
			c->name_expect = (uint16_t)(p[0] | p[1] << 8);
			if (c->name_expect == 0 ||
			    c->name_expect > core->cfg.limits.name_bytes_max) {
				bus__handshake_refuse(core, c, BUS_RES_DATA, false);
				break;
			}
			c->state = BUS_CS_NAME;
			c->deadline_ns = core->now_ns + core->cfg.timeout_ns;
		} else if (c->state == BUS_CS_NAME) {
			if (avail < c->name_expect)
				break;
			pos += c->name_expect;
			bus__conn_register(core, c, p, c->name_expect);
		} else {
			struct bus_frame f;
			const char *why = NULL;
			enum bus_decode d = bus__frame_decode(
			    p, avail, core->cfg.limits.payload_bytes_max, &f,
			    &why);
			if (d == BUS_DECODE_NEED_MORE)
				break;
			if (d == BUS_DECODE_ERROR) {
				bus__proto_error(core, c);
				break;
			}
			if (bus__on_frame(core, c, &f))
				pos += f.consumed;
		}
	}
	BUS_ASSERT(pos <= len);
	c->rx_used += pos;
	return pos;
}

/* ---- the input budget --------------------------------------------------
 * Every connection's rx counts (its capacity: what it holds in memory).
 * Past input_bytes_total_max a connection that needs more pauses, in a
 * FIFO, except one, the owner, which goes on so that its frame completes
 * and the budget frees; the total stays within twice the budget plus a
 * frame. The owner that completes no frame for the block deadline while
 * others wait is cut (disconnects_input): a slow sender cannot hold the
 * others. */
#define RX_FREE_NOW_BYTES (1u << 20) /* larger: shrunk at once after use;
                                        smaller: freed empty at a tick
                                        (no churn on the hot path) */

void bus__conn_reading(struct bus_core *core, struct bus_conn *c)
{
	bool want = c->close == BUS_CLOSE_NONE && !c->wait_on &&
	            !c->input_paused;
	if (want != c->reading_paused)
		return; /* the host already does what we want */
	c->reading_paused = !want;
	core->ops.set_reading(core->host, c->ctx, want);
	if (want)
		timer__changed(core, c); /* its idle time counts again */
}

static void rx_set_cap(struct bus_core *core, struct bus_conn *c, size_t cap)
{
	core->rx_bytes = core->rx_bytes - c->rx_cap + cap;
	c->rx_cap = cap;
	timer__changed(core, c);
}

static void input_admit(struct bus_core *core)
{
	uint64_t max = core->cfg.limits.input_bytes_total_max;
	while (core->in_first && (!core->in_owner || core->rx_bytes < max)) {
		struct bus_conn *c = core->in_first;
		core->in_first = c->in_next;
		if (!core->in_first)
			core->in_last = NULL;
		c->in_next = NULL;
		c->input_paused = false;
		c->last_rx_ns = core->now_ns; /* paused by us: not silent */
		if (core->rx_bytes >= max) {
			core->in_owner = c;
			core->in_owner_since_ns = core->now_ns;
		}
		bus__conn_reading(core, c);
	}
}

/* c handled input or holds less now: the owner's turn ends when its
 * large frame is done; the paused may go on. */
static void input_released(struct bus_core *core, struct bus_conn *c)
{
	if (core->in_owner == c && c->rx_len <= RX_KEEP_BYTES)
		core->in_owner = NULL;
	input_admit(core);
}

/* c's rx grew: past the budget, it pauses unless it is (or becomes) the
 * owner. */
static void input_grew(struct bus_core *core, struct bus_conn *c)
{
	if (core->rx_bytes <= core->cfg.limits.input_bytes_total_max ||
	    c->input_paused || core->in_owner == c)
		return;
	if (!core->in_owner) {
		core->in_owner = c;
		core->in_owner_since_ns = core->now_ns;
		return;
	}
	c->input_paused = true;
	c->in_next = NULL;
	if (core->in_last)
		core->in_last->in_next = c;
	else
		core->in_first = c;
	core->in_last = c;
	core->st.input_pauses++;
	bus__conn_reading(core, c);
}

static void input_forget(struct bus_core *core, struct bus_conn *c)
{
	if (c->input_paused) {
		struct bus_conn **pp = &core->in_first, *prev = NULL;
		while (*pp != c) {
			prev = *pp;
			pp = &(*pp)->in_next;
		}
		*pp = c->in_next;
		if (core->in_last == c)
			core->in_last = prev;
		c->input_paused = false;
	}
	bus__free(&core->a, c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	rx_set_cap(core, c, 0);
	if (core->in_owner == c)
		core->in_owner = NULL;
	input_admit(core);
}

static uint64_t input_deadline(const struct bus_core *core)
{
	if (!core->in_owner || !core->in_first)
		return UINT64_MAX;
	return core->in_owner_since_ns + queue__block_deadline_ns(core);
}

static void input_stall_check(struct bus_core *core)
{
	struct bus_conn *o = core->in_owner;
	if (o && core->now_ns >= input_deadline(core) &&
	    o->close == BUS_CLOSE_NONE) {
		core->st.disconnects_input++;
		bus__conn_abort(core, o); /* its input goes at its close */
		core->in_owner = NULL;
		input_admit(core);
	}
}

static void rx_keep(struct bus_core *core, struct bus_conn *c,
                    const uint8_t *rest, size_t len)
{
	if (c->rx_len + len > c->rx_cap) {
		size_t ncap = c->rx_cap ? c->rx_cap : 256;
		while (ncap < c->rx_len + len)
			ncap *= 2;
		uint8_t *n = bus__realloc(&core->a, c->rx, ncap);
		if (!n) {
			bus__conn_abort(core, c);
			return;
		}
		c->rx = n;
		rx_set_cap(core, c, ncap);
		input_grew(core, c);
	}
	memcpy(c->rx + c->rx_len, rest, len);
	c->rx_len += len;
	BUS_ASSERT(c->rx_len <= c->rx_cap);
}

/* After a large frame the buffer goes back: an idle connection does not
 * keep 16 MiB. Past RX_FREE_NOW_BYTES: freed when empty, shrunk when a
 * quarter used; smaller ones empty at a tick (idle) are freed. */
static void rx_shrink(struct bus_core *core, struct bus_conn *c, bool idle)
{
	if (c->rx_cap <= (idle ? RX_KEEP_BYTES : RX_FREE_NOW_BYTES))
		return;
	if (c->rx_len == 0) {
		bus__free(&core->a, c->rx);
		c->rx = NULL;
		rx_set_cap(core, c, 0);
	} else if (!idle && c->rx_len <= c->rx_cap / 4) {
		size_t ncap = c->rx_cap / 2;
		while (ncap / 2 >= c->rx_len * 2 && ncap / 2 >= RX_KEEP_BYTES)
			ncap /= 2;
		uint8_t *n = bus__realloc(&core->a, c->rx, ncap);
		if (!n)
			return; /* keeps the larger one: harmless */
		c->rx = n;
		rx_set_cap(core, c, ncap);
	}
}

/* Processes the buffered input of c and keeps only what is left. */
void bus__rx_drain(struct bus_core *core, struct bus_conn *c)
{
	if (c->rx_len == 0)
		return; /* nothing buffered (rx may not even exist) */
	size_t used = conn_process(core, c, c->rx, c->rx_len);
	BUS_ASSERT(used <= c->rx_len);
	if (c->close != BUS_CLOSE_NONE)
		return;
	memmove(c->rx, c->rx + used, c->rx_len - used);
	c->rx_len -= used;
	if (used && core->in_owner == c)
		core->in_owner_since_ns = core->now_ns; /* a frame done */
	rx_shrink(core, c, false);
	if (used && (core->in_owner == c || core->in_first))
		input_released(core, c);
}

/* ---- lifecycle --------------------------------------------------------- */
/* End of every entry point: emit queued announcements. */
void bus__core_end(struct bus_core *core)
{
	while (core->ann_first) {
		struct bus_pending_ann *p = core->ann_first;
		core->ann_first = p->next;
		if (!core->ann_first)
			core->ann_last = NULL;
		bus__announce(core, p->topic, p->subject,
		              p->name[0] ? p->name : NULL);
		bus__free(&core->a, p);
	}
}

struct bus_core *bus_core_new(const struct bus_core_config *cfg,
                              const struct bus_core_ops *ops, void *host,
                              uint64_t now_ns, uint64_t realtime_ns)
{
	const char *what;
	if (bus_core_config_check(cfg, &what) != 0)
		return NULL;
	struct bus_core *core = bus__calloc(&cfg->allocator, sizeof(*core));
	if (!core)
		return NULL;
	core->cfg = *cfg;
	core->a = cfg->allocator;
	core->ops = *ops;
	core->host = host;
	core->start_ns = core->mono_base_ns = core->now_ns = now_ns;
	core->realtime_base_ns = realtime_ns;
	core->iov_cap = BUS_IOV_BATCH;
	core->iov = bus__alloc(&core->a, sizeof(*core->iov) * BUS_IOV_BATCH);
	core->m_nop = bus__msg_new(core, BUS_SERVER_HDR_BYTES);
	core->m_greeting = bus__msg_new(core, 3);
	core->next_stats_ns = cfg->stats_interval_ns
	                          ? now_ns + cfg->stats_interval_ns
	                          : UINT64_MAX;
	if (!core->iov || !core->m_nop || !core->m_greeting ||
	    bus__tstats_init(core) != 0) {
		bus_core_free(core);
		return NULL;
	}
	memset(core->m_nop->data, 0, BUS_SERVER_HDR_BYTES);
	core->m_greeting->data[0] = BUS_GREETING;
	core->m_greeting->data[1] = BUS_PROTOCOL_VERSION & 0xFF;
	core->m_greeting->data[2] = BUS_PROTOCOL_VERSION >> 8;
	return core;
}

static void conn_free(struct bus_core *core, struct bus_conn *c)
{
	c->q_inflight = 0;
	queue__truncate(core, c, 0);
	bus__free(&core->a, c->q);
	input_forget(core, c);
	bus__free(&core->a, c->name);
	bus__books_unlist(core, c);
	bus__book_free(&core->a, &c->subs, c);
	bus__book_free(&core->a, &c->excl, c);
	bus__trie_free(&core->a, &c->excl_trie);
	timer__remove(core, c);
	bus__free(&core->a, c);
}

void bus_core_free(struct bus_core *core)
{
	if (!core)
		return;
	core->in_first = core->in_last = core->in_owner = NULL;
	/* at the end nobody is admitted, and nobody goes on: a sender
	 * waiting for a receiver freed first must not be resumed (it would
	 * route its frames, and wait again, on connections being freed) */
	for (struct bus_conn *c = core->first; c; c = c->next) {
		c->input_paused = false;
		c->close = BUS_CLOSE_REQUESTED;
		c->wait_on = c->wait_prev = c->wait_next = NULL;
		c->waiters_first = c->waiters_last = NULL;
	}
	while (core->first) {
		struct bus_conn *c = core->first;
		core->first = c->next;
		bus__conn_unregister(core, c);
		queue__unmark_dirty(core, c);
		conn_free(core, c);
	}
	while (core->ann_first) {
		struct bus_pending_ann *p = core->ann_first;
		core->ann_first = p->next;
		bus__free(&core->a, p);
	}
	bus__trie_free(&core->a, &core->trie);
	for (int i = 0; i < 256; i++)
		if (core->m_byte[i])
			bus__msg_unref(core, core->m_byte[i]);
	if (core->m_nop)
		bus__msg_unref(core, core->m_nop);
	if (core->m_greeting)
		bus__msg_unref(core, core->m_greeting);
	bus__tstats_free(core);
	bus__msg_pool_free(core); /* after the last frame is released */
	bus__free(&core->a, core->names);
	bus__free(&core->a, core->rcv);
	bus__heap_free(&core->a, &core->timers);
	bus__heap_free(&core->a, &core->visits);
	bus__free(&core->a, core->iov);
	struct bus_allocator a = core->a;
	bus__free(&a, core);
}

/* Every entry point's clock: time never goes backwards (a host that
 * passes a wall clock, or mixes clocks, is caught at once). */
static void clock_at(struct bus_core *core, uint64_t now_ns)
{
	BUS_ASSERT(now_ns >= core->now_ns);
	core->now_ns = now_ns;
}

struct bus_conn *bus_core_on_connect(struct bus_core *core, void *conn_ctx,
                                     enum bus_conn_kind kind,
                                     const char *source, const char *port,
                                     uint64_t now_ns)
{
	clock_at(core, now_ns);
	if (bus__rcv_reserve(core, core->conn_count + 1) ||
	    timer__reserve(core, core->conn_count + 1))
		return NULL;
	struct bus_conn *c = bus__calloc(&core->a, sizeof(*c));
	if (!c)
		return NULL;
	c->core = core;
	c->ctx = conn_ctx;
	c->serial = ++core->next_serial;
	c->kind = kind;
	c->state = BUS_CS_GREETING;
	c->subs.trie = &core->trie;
	c->excl.trie = &c->excl_trie;
	c->acl_pub_len = UINT32_MAX;
	c->last_rx_ns = now_ns;
	c->deadline_ns = now_ns + core->cfg.timeout_ns;
	snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
	snprintf(c->port, sizeof(c->port), "%s", port ? port : "");
	c->prev = core->last;
	if (core->last)
		core->last->next = c;
	else
		core->first = c;
	core->last = c;
	core->conn_count++;
	timer__add(core, c);
	if (core->shutting_down) {
		bus__conn_request_close(core, c);
		return c;
	}
	queue__deliver(core, c, core->m_greeting, true);
	return c;
}

void bus_core_on_bytes(struct bus_core *core, struct bus_conn *c,
                       const void *data, size_t len, uint64_t now_ns)
{
	clock_at(core, now_ns);
	BUS_ASSERT(c->core == core && (data || !len));
	if (c->close != BUS_CLOSE_NONE || len == 0)
		return;
	c->last_rx_ns = now_ns;
	if (c->rx_len == 0 && !c->wait_on) {
		size_t used = conn_process(core, c, data, len);
		if (c->close == BUS_CLOSE_NONE && used < len)
			rx_keep(core, c, (const uint8_t *)data + used,
			        len - used);
	} else {
		rx_keep(core, c, data, len);
		if (c->close == BUS_CLOSE_NONE && !c->wait_on)
			bus__rx_drain(core, c);
	}
	bus__core_end(core);
}

void bus_core_on_written(struct bus_core *core, struct bus_conn *c,
                         int status, uint64_t now_ns)
{
	clock_at(core, now_ns);
	BUS_ASSERT(c->core == core);
	queue__complete(core, c, status >= 0);
	BUS_ASSERT(c->q_inflight == 0);
	if (status < 0 && c->state == BUS_CS_READY &&
	    c->close == BUS_CLOSE_NONE && !c->out_dead) {
		/* the peer cannot hear (it closed after its last frames, say:
		 * EPIPE on a keepalive): it is a receiver no more, but what it
		 * sent stands, and is handled before its EOF closes it. Before,
		 * the frames it had sent that waited for a slow receiver were
		 * dropped here (test_backpressure caught ~0.1%) */
		c->out_dead = true;
		queue__truncate(core, c, 0);
		queue__unmark_dirty(core, c);
		bus__conn_unregister(core, c);
		bus__rx_drain(core, c);
		bus__conn_reading(core, c);
	} else if (status < 0) {
		bus__conn_abort(core, c);
	} else if (c->close == BUS_CLOSE_AFTER_FLUSH && c->q_count == 0) {
		bus__conn_request_close(core, c);
	} else {
		if (c->q_count)
			queue__mark_dirty(core, c);
		queue__progress(core, c);
	}
	bus__core_end(core);
}

void bus_core_on_close(struct bus_core *core, struct bus_conn *c,
                       uint64_t now_ns)
{
	clock_at(core, now_ns);
	BUS_ASSERT(c->core == core && core->conn_count > 0);
	/* gone: before its waiters go on (they may route a frame to it
	 * again), nobody may queue for it or wait for it */
	c->close = BUS_CLOSE_REQUESTED;
	bus__conn_unregister(core, c);
	queue__unmark_dirty(core, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		core->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		core->last = c->prev;
	core->conn_count--;
	conn_free(core, c);
	bus__core_end(core);
}

void bus_core_flush(struct bus_core *core, uint64_t now_ns)
{
	clock_at(core, now_ns);
	while (core->dirty_first) {
		struct bus_conn *c = core->dirty_first;
		core->dirty_first = c->dirty_next;
		if (!core->dirty_first)
			core->dirty_last = NULL;
		c->dirty = false;
		queue__write(core, c);
	}
}

void bus_core_on_tick(struct bus_core *core, uint64_t now_ns)
{
	clock_at(core, now_ns);
	uint64_t idle_ns = core->cfg.timeout_ns / 4 * 5;
	/* the connections due, and the large input buffers (timer.c) */
	timer__pass_begin(core, 1);
	for (struct bus_conn *c = timer__pass_next(core, NULL); c;
	     c = timer__pass_next(core, c)) {
		if (c->close == BUS_CLOSE_AFTER_FLUSH) {
			if (now_ns >= c->deadline_ns)
				bus__conn_request_close(core, c);
			continue;
		}
		if (c->close != BUS_CLOSE_NONE)
			continue;
		if (c->rx_len == 0 && c->rx_cap > RX_KEEP_BYTES) {
			rx_shrink(core, c, true);
			input_released(core, c);
		}
		if (c->state != BUS_CS_READY) {
			if (now_ns >= c->deadline_ns) {
				core->st.rejects_handshake++;
				bus__conn_abort(core, c);
			}
			continue;
		}
		if (!c->reading_paused && now_ns - c->last_rx_ns >= idle_ns) {
			core->st.disconnects_idle++;
			bus__conn_abort(core, c);
			continue;
		}
		if (now_ns >= c->next_nop_ns) {
			c->next_nop_ns = now_ns + core->cfg.timeout_ns / 2;
			queue__deliver(core, c, core->m_nop, false);
		}
	}
	/* the receivers waited for that made no progress */
	timer__pass_begin(core, 2);
	for (struct bus_conn *c = timer__pass_next(core, NULL); c;
	     c = timer__pass_next(core, c))
		queue__stall_check(core, c);
	input_stall_check(core);
	bus__books_tick(core);
	if (now_ns >= core->next_stats_ns) {
		/* on schedule, not drifting: the next one an interval after
		 * this one was due (or after now, when ticks came late) */
		uint64_t next = core->next_stats_ns + core->cfg.stats_interval_ns;
		core->next_stats_ns = next > now_ns
		                          ? next
		                          : now_ns + core->cfg.stats_interval_ns;
		bus__brpc_publish_stats(core);
	}
	bus__core_end(core);
}

/* Logically const: settling the timer's lower bounds changes no answer. */
uint64_t bus_core_next_deadline(const struct bus_core *core)
{
	uint64_t d = timer__next((struct bus_core *)core);
#define MIN_INTO(v)                                                          \
	do {                                                                 \
		uint64_t v_ = (v);                                           \
		if (v_ < d)                                                  \
			d = v_;                                              \
	} while (0)
	MIN_INTO(input_deadline(core));
	MIN_INTO(core->next_stats_ns);
	if (core->book_first)
		MIN_INTO(core->now_ns + BUS_BOOK_TICK_NS);
#undef MIN_INTO
	return d;
}

void bus_core_shutdown(struct bus_core *core, uint64_t now_ns)
{
	clock_at(core, now_ns);
	if (core->shutting_down)
		return;
	core->shutting_down = true;
	bus__announce(core, BROKER_WARN_TOPIC, "shutdown", NULL);
	for (struct bus_conn *c = core->first; c; c = c->next)
		bus__conn_close_after_flush(core, c);
	bus__core_end(core);
}

bool bus_core_has_pending_writes(const struct bus_core *core)
{
	for (const struct bus_conn *c = core->first; c; c = c->next)
		if (c->q_count && c->close != BUS_CLOSE_REQUESTED)
			return true;
	return false;
}

void bus_core_count_refused(struct bus_core *core)
{
	core->st.rejects_accept++;
}

void bus_core_count_tls(struct bus_core *core, int outcome)
{
	if (outcome == 0)
		core->st.tls_handshakes++;
	else if (outcome == 2)
		core->st.tls_plaintext++;
	else
		core->st.tls_failures++;
}

void bus_core_stats(const struct bus_core *core, struct bus_stats *out)
{
	*out = core->st;
	out->connections = core->conn_count;
	out->clients = core->names_count;
	out->queued_bytes = core->queued_bytes;
	out->subscriptions_bytes = core->mask_bytes;
	out->input_bytes = core->rx_bytes;
	uint64_t frames = 0;
	for (const struct bus_conn *c = core->first; c; c = c->next)
		frames += c->q_count;
	out->queued_frames = frames;
}

const struct bus_core_config *bus_core_config_get(const struct bus_core *core)
{
	return &core->cfg;
}

uint64_t bus_core_trie_visits(const struct bus_core *core)
{
	return core->trie.visits;
}

const char *bus_conn_name(const struct bus_conn *conn)
{
	return conn->name ? conn->name : "";
}

void *bus_conn_ctx(const struct bus_conn *conn) { return conn->ctx; }

uint64_t bus_conn_dbg_frames(const struct bus_conn *conn);
uint64_t bus_conn_dbg_frames(const struct bus_conn *conn) { return conn->r_frames; }
uint64_t bus_conn_dbg_bytes(const struct bus_conn *conn);
uint64_t bus_conn_dbg_bytes(const struct bus_conn *conn) { return conn->r_bytes; }

size_t bus_conn_input_pending(const struct bus_conn *conn)
{
	return conn->rx_len;
}

uint64_t bus_conn_rx_used(const struct bus_conn *conn)
{
	return conn->rx_used;
}

bool bus_conn_subscribed(const struct bus_conn *conn, const char *mask)
{
	/* not the core's allocator: a query is no part of the broker's work
	 * (nor of its fault sites) */
	size_t ml = strlen(mask);
	char buf[256], *norm = ml < sizeof(buf) ? buf : malloc(ml + 1);
	if (!norm)
		return false;
	size_t nl = bus__mask_normalize(mask, ml, conn->core->cfg.star_is_plus,
	                                norm);
	bool has = bus__book_has(&conn->subs, norm, nl);
	if (norm != buf)
		free(norm);
	return has;
}
