/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.c — the sans-I/O BUS/RT client core (client.h).
 *
 * One connection at a time, driven by its host: connect → greeting echo →
 * name → READY, then frames. Outgoing frames go into one buffer (`out`);
 * a flush hands it to the host as one write and builds the next frames in
 * a second buffer while that write is in flight. ACKs come back in the
 * order the broker processed the frames, so pending ACKs are a ring in
 * op_id order whose deadlines (send time + op timeout) also increase. RPC
 * calls complete in any order: they live in a slot table (call_id names the
 * slot and a generation) and their deadlines in an indexed heap.
 *
 * Time comes from ops->now, randomness (reconnect jitter) from ops->random:
 * with a virtual clock and a seeded generator the client is deterministic.
 */
#include "bus/client.h"
#include "../core/internal.h"

#include <stdio.h>
#include <string.h>

#define CALL_SLOTS_MAX 65535u
#define RESUB_CHUNK_BYTES (60u << 10)

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct pend_ack {
	uint32_t op_id;
	bus_done_fn done;
	void *arg;
	uint64_t deadline;
};

/* Masks in insertion order, indexed by a map (value: index + 1). */
struct maskset {
	char **items;
	uint32_t count, cap;
	struct bus_strmap idx;
};

struct call {
	struct bus_heap_item hi;
	uint32_t slot, call_id;
	bool sent; /* an attempt is out; else waiting to (re)send */
	uint32_t attempts;
	uint64_t backoff_ns, overall_deadline;
	uint64_t started_ns; /* bus_client_rpc_call: the latency's start */
	struct bus_rpc_policy pol;
	bus_rpc_fn done;
	void *arg;
	char *target;
	uint8_t *req; /* method \0 params */
	size_t req_len;
};

/* An in-flight SUBSCRIBE/EXCLUDE: the masks it added, to forget them if
 * the broker refuses the frame. */
struct subrec {
	bus_done_fn done;
	void *arg;
	bool excl;
	uint32_t n;
	char *masks[];
};

enum hs_step { HS_GREETING, HS_OK1, HS_OK2 };

struct bus_client {
	size_t out_slack;      /* while a reply is framed: its headroom */
	struct bus_client_config cfg;
	struct bus_allocator a;
	struct bus_client_ops ops;
	void *host;
	struct bus_client_handlers h;
	char *name;
	size_t name_len;
	enum bus_client_state st;
	enum hs_step hs;
	bool started;
	bool closing;         /* bus_client_close: no reconnect */
	bool close_requested; /* ops->close called; waiting for on_close */
	bool inflight;        /* a write is out */
	bool flush_now;       /* realtime frame waiting for the write */
	bool eagain;          /* an operation answered BUS_EAGAIN */
	bool freeing;
	int fail_reason;      /* why we ended the connection (conn_fail) */
	struct buf out, wbuf, rx;
	/* frames (and their bytes) in out and in wbuf: counted as sent when
	 * their write completes, not when queued — a connection that dies
	 * with them unwritten did not send them */
	uint64_t out_frames, out_fbytes, w_frames, w_fbytes;
	uint32_t next_op_id;
	struct pend_ack *acks;
	uint32_t acks_cap, acks_head, acks_count;
	/* the newest acks_unsent pending ACKs are for frames still in out,
	 * the acks_inflight before them for frames of the write out: an
	 * ACK's deadline runs from its frame's write completion, so frames
	 * a paused broker has not read yet (backpressure) do not time out */
	uint32_t acks_unsent, acks_inflight;
	struct maskset subs, excl;
	struct call **slots;
	uint16_t *gens;
	uint32_t slots_cap, calls_count;
	struct bus_heap calls;
	uint64_t hs_deadline, reconnect_at, backoff_ns;
	uint64_t clock_ns; /* the last now() read: time never goes back */
	uint64_t last_tx, last_rx;
	struct bus_client_stats stx;
	struct bus_rpc_metrics rpcm;
};

/* ---- small helpers ------------------------------------------------------ */
/* The host's clock; it never goes backwards (checked at every read). */
static uint64_t now(const struct bus_client *c)
{
	uint64_t t = c->ops.now(c->host);
	BUS_ASSERT(t >= c->clock_ns);
	((struct bus_client *)c)->clock_ns = t;
	return t;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool ready(const struct bus_client *c)
{
	return c->st == BUS_CLIENT_READY && !c->close_requested && !c->closing;
}

static void put_u16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static int buf_reserve(const struct bus_allocator *a, struct buf *b,
                       size_t more)
{
	if (more > SIZE_MAX / 2 - b->len)
		return BUS_ENOMEM;
	size_t need = b->len + more;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *p = bus__realloc(a, b->p, cap);
	if (!p)
		return BUS_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void buf_free(const struct bus_allocator *a, struct buf *b)
{
	bus__free(a, b->p);
	*b = (struct buf){0};
}

const char *bus_client_state_name(enum bus_client_state st)
{
	switch (st) {
	case BUS_CLIENT_DISCONNECTED:
		return "disconnected";
	case BUS_CLIENT_CONNECTING:
		return "connecting";
	case BUS_CLIENT_HANDSHAKE:
		return "handshake";
	case BUS_CLIENT_READY:
		return "ready";
	case BUS_CLIENT_CLOSED:
		return "closed";
	}
	return "?";
}

int bus_result_errno(uint8_t result)
{
	switch (result) {
	case BUS_RES_OK:
		return 0;
	case BUS_RES_NOT_REGISTERED:
		return BUS_ENOTREG;
	case BUS_RES_DATA:
		return BUS_EDATA;
	case BUS_RES_IO:
		return BUS_EIO;
	case BUS_RES_NOT_SUPPORTED:
		return BUS_ENOTSUP;
	case BUS_RES_BUSY:
		return BUS_EBUSY;
	case BUS_RES_NOT_DELIVERED:
		return BUS_ENOTDELIV;
	case BUS_RES_TIMEOUT:
		return BUS_ETIMEDOUT;
	case BUS_RES_ACCESS:
		return BUS_EACCESS;
	default:
		return BUS_EOTHER;
	}
}

/* The RPC code a transport failure is reported with. */
static int transport_code(int err)
{
	switch (err) {
	case BUS_ENOTREG:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_NOT_REGISTERED);
	case BUS_EDATA:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_DATA);
	case BUS_ENOTDELIV:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_NOT_DELIVERED);
	case BUS_ETIMEDOUT:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_TIMEOUT);
	case BUS_EACCESS:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_ACCESS);
	case BUS_ECLOSED:
	case BUS_EIO:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_IO);
	default:
		return BUS_RPC_ERR_TRANSPORT(BUS_RES_OTHER);
	}
}

/* ---- configuration ------------------------------------------------------ */
void bus_client_config_defaults(struct bus_client_config *cfg)
{
	*cfg = (struct bus_client_config){
		.op_timeout_ns = 5000000000ull,
		.ping_interval_ns = 1000000000ull,
		.idle_timeout_ns = 10000000000ull,
		.reconnect = true,
		.reconnect_min_ns = 100000000ull,
		.reconnect_max_ns = 5000000000ull,
		.reconnect_jitter_pct = 20,
		.broker_uid = -1,
		.flush_bytes = 64u << 10,
		.out_bytes_max = 16u << 20,
		.payload_bytes_max = 64u << 20,
		.calls_max = CALL_SLOTS_MAX,
		.rpc_metrics_max = 64,
		.rpc = {.timeout_ns = 5000000000ull},
	};
}

static bool name_valid(const char *s, size_t len)
{
	return len > 0 && len <= UINT16_MAX && s[0] != '.' &&
	       bus__utf8_valid((const uint8_t *)s, len);
}

/* ---- maskset ------------------------------------------------------------ */
static bool maskset_has(const struct maskset *m, const char *s, size_t len)
{
	return bus__strmap_get(&m->idx, s, len) != NULL;
}

static int maskset_add(const struct bus_allocator *a, struct maskset *m,
                       const char *s, size_t len)
{
	if (m->count == m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 8;
		void *p = bus__realloc(a, m->items, sizeof(*m->items) * cap);
		if (!p)
			return BUS_ENOMEM;
		m->items = p;
		m->cap = cap;
	}
	char *copy = bus__strndup(a, s, len);
	if (!copy)
		return BUS_ENOMEM;
	int rc = bus__strmap_put(a, &m->idx, s, len,
	                         (void *)(uintptr_t)(m->count + 1));
	if (rc) {
		bus__free(a, copy);
		return rc;
	}
	m->items[m->count++] = copy;
	return 0;
}

static void maskset_del(const struct bus_allocator *a, struct maskset *m,
                        const char *s, size_t len)
{
	void **v = bus__strmap_get(&m->idx, s, len);
	if (!v)
		return;
	uint32_t i = (uint32_t)(uintptr_t)*v - 1;
	bus__strmap_del(a, &m->idx, s, len);
	bus__free(a, m->items[i]);
	if (i != m->count - 1) {
		char *last = m->items[m->count - 1];
		m->items[i] = last;
		void **lv = bus__strmap_get(&m->idx, last, strlen(last));
		BUS_ASSERT(lv);
		*lv = (void *)(uintptr_t)(i + 1);
	}
	m->count--;
}

static void maskset_free(const struct bus_allocator *a, struct maskset *m)
{
	for (uint32_t i = 0; i < m->count; i++)
		bus__free(a, m->items[i]);
	bus__free(a, m->items);
	bus__strmap_free(a, &m->idx);
	*m = (struct maskset){0};
}

/* ---- output ------------------------------------------------------------- */
#define FAIL_IF(cond, ...)                                                   \
	do {                                                                 \
		if (cond) {                                                  \
			snprintf(why, len, __VA_ARGS__);                     \
			return BUS_EPROTO;                                   \
		}                                                            \
	} while (0)

int bus_client_check_invariants(const struct bus_client *c, char *why,
                                size_t len)
{
	const char *n = c->name ? c->name : "?";
	const struct buf *bufs[3] = {&c->out, &c->wbuf, &c->rx};
	for (int i = 0; i < 3; i++)
		FAIL_IF(bufs[i]->len > bufs[i]->cap, "%s: a buffer holds %zu of "
		        "%zu", n, bufs[i]->len, bufs[i]->cap);
	FAIL_IF((c->out.len == 0) != (c->out_frames == 0), "%s: output %zu "
	        "bytes, %llu frames", n, c->out.len,
	        (unsigned long long)c->out_frames);
	FAIL_IF(c->out_fbytes > c->out.len, "%s: output frames of %llu bytes "
	        "in %zu", n, (unsigned long long)c->out_fbytes, c->out.len);
	FAIL_IF(!c->inflight && (c->w_frames || c->acks_inflight),
	        "%s: no write out, yet %llu frames and %u ACKs counted in one",
	        n, (unsigned long long)c->w_frames, c->acks_inflight);
	FAIL_IF(c->acks_count > c->acks_cap ||
	        (c->acks_cap && c->acks_head >= c->acks_cap),
	        "%s: ACK ring %u at %u of %u", n, c->acks_count, c->acks_head,
	        c->acks_cap);
	FAIL_IF(c->acks_unsent + c->acks_inflight > c->acks_count,
	        "%s: %u unsent and %u in the write of %u pending ACKs", n,
	        c->acks_unsent, c->acks_inflight, c->acks_count);
	FAIL_IF(c->calls_count > c->slots_cap || c->calls_count > c->cfg.calls_max,
	        "%s: %u calls in %u slots (max %u)", n, c->calls_count,
	        c->slots_cap, c->cfg.calls_max);
	FAIL_IF(c->subs.count > c->subs.cap || c->excl.count > c->excl.cap,
	        "%s: mask sets over their room", n);
	bool open = c->st == BUS_CLIENT_HANDSHAKE || c->st == BUS_CLIENT_READY;
	FAIL_IF(!open && (c->inflight || c->acks_count || c->out.len),
	        "%s: %s, yet a write out (%d), %u ACKs pending, %zu bytes of "
	        "output", n, bus_client_state_name(c->st), c->inflight,
	        c->acks_count, c->out.len);
	FAIL_IF(c->st == BUS_CLIENT_CLOSED && c->calls_count,
	        "%s: closed with %u calls", n, c->calls_count);
	return 0;
}

size_t bus_client_out_pending(const struct bus_client *c)
{
	return c->out.len + (c->inflight ? c->wbuf.len : 0);
}

bool bus_client_has_pending_writes(const struct bus_client *c)
{
	return c->out.len > 0 || c->inflight;
}

static void maybe_close_now(struct bus_client *c)
{
	if (c->closing && !c->close_requested && !c->inflight &&
	    c->out.len == 0 && c->st >= BUS_CLIENT_CONNECTING &&
	    c->st != BUS_CLIENT_CLOSED) {
		c->close_requested = true;
		c->ops.close(c->host);
	}
}

void bus_client_flush(struct bus_client *c)
{
	if (c->inflight || c->out.len == 0 || c->close_requested ||
	    c->st < BUS_CLIENT_HANDSHAKE || c->st == BUS_CLIENT_CLOSED) {
		maybe_close_now(c);
		return;
	}
	struct buf t = c->wbuf;
	c->wbuf = c->out;
	c->out = t;
	c->out.len = 0;
	c->w_frames = c->out_frames;
	c->w_fbytes = c->out_fbytes;
	c->out_frames = c->out_fbytes = 0;
	c->acks_inflight = c->acks_unsent;
	c->acks_unsent = 0;
	c->inflight = true;
	c->flush_now = false;
	c->last_tx = now(c);
	c->stx.writes++;
	struct bus_iov iov = {c->wbuf.p, c->wbuf.len};
	c->ops.write(c->host, &iov, 1);
}

/* Room for one frame of n bytes; BUS_EAGAIN past out_bytes_max (a reply:
 * past it and BUS_CLIENT_REPLY_SLACK). */
static int out_room(struct bus_client *c, size_t n)
{
	size_t max = c->cfg.out_bytes_max + c->out_slack;
	if (n > max)
		return BUS_ELIMIT;
	size_t pending = bus_client_out_pending(c);
	/* the simulator's fault site: as if at the limit, when something is
	 * pending (its completion is what says "writable" again) */
	if (pending + n > max ||
	    (pending && !c->out_slack &&
	     BUS_BUGGIFY(c->cfg.sim, BUS_SITE_CLIENT_OUT_FULL))) {
		c->eagain = true;
		return BUS_EAGAIN;
	}
	return buf_reserve(&c->a, &c->out, n);
}

static int ack_push(struct bus_client *c, uint32_t op_id, bus_done_fn done,
                    void *arg)
{
	if (c->acks_count == c->acks_cap) {
		uint32_t cap = c->acks_cap ? c->acks_cap * 2 : 64;
		struct pend_ack *p = bus__alloc(&c->a, sizeof(*p) * cap);
		if (!p)
			return BUS_ENOMEM;
		for (uint32_t i = 0; i < c->acks_count; i++)
			p[i] = c->acks[(c->acks_head + i) & (c->acks_cap - 1)];
		bus__free(&c->a, c->acks);
		c->acks = p;
		c->acks_cap = cap;
		c->acks_head = 0;
	}
	/* a ring indexed by masks: its capacity is a power of two */
	BUS_ASSERT(c->acks_cap && (c->acks_cap & (c->acks_cap - 1)) == 0);
	uint32_t i = (c->acks_head + c->acks_count) & (c->acks_cap - 1);
	c->acks[i] = (struct pend_ack){op_id, done, arg, UINT64_MAX};
	c->acks_count++;
	c->acks_unsent++;
	BUS_ASSERT(c->acks_unsent + c->acks_inflight <= c->acks_count);
	return 0;
}

static struct pend_ack ack_pop(struct bus_client *c)
{
	BUS_ASSERT(c->acks_count > 0);
	struct pend_ack p = c->acks[c->acks_head];
	c->acks_head = (c->acks_head + 1) & (c->acks_cap - 1);
	c->acks_count--;
	/* an answer before its write completed: no longer in flight */
	if (c->acks_inflight + c->acks_unsent > c->acks_count)
		c->acks_inflight = c->acks_count - c->acks_unsent;
	return p;
}

/*
 * Starts one client frame of plen payload bytes: room, op_id, the pending
 * ACK (with BUS_QOS_PROCESSED: done/arg get the broker's answer) and the
 * header. Returns where the payload goes, or NULL with *rc set. The caller
 * writes exactly plen bytes, then calls frame_end.
 */
static uint8_t *frame_begin(struct bus_client *c, uint8_t op, int qos,
                            uint64_t plen, bus_done_fn done, void *arg,
                            int *rc)
{
	if (qos < 0 || qos > 3 || (!(qos & BUS_QOS_PROCESSED) && done)) {
		*rc = BUS_EINVAL;
		return NULL;
	}
	if (!ready(c)) {
		*rc = BUS_ECLOSED;
		return NULL;
	}
	if (plen > UINT32_MAX) {
		*rc = BUS_ELIMIT;
		return NULL;
	}
	if ((*rc = out_room(c, BUS_CLIENT_HDR_BYTES + (size_t)plen)))
		return NULL;
	uint32_t op_id = c->next_op_id;
	if ((qos & BUS_QOS_PROCESSED) && (*rc = ack_push(c, op_id, done, arg)))
		return NULL;
	c->next_op_id = op_id + 1 ? op_id + 1 : 1;
	uint8_t *w = c->out.p + c->out.len;
	bus__put_u32le(w, op_id);
	w[4] = (uint8_t)(op | (qos << 6));
	bus__put_u32le(w + 5, (uint32_t)plen);
	c->out.len += BUS_CLIENT_HDR_BYTES + (size_t)plen;
	c->out_frames++;
	c->out_fbytes += BUS_CLIENT_HDR_BYTES + plen;
	if (qos & BUS_QOS_REALTIME)
		c->flush_now = true;
	return w + BUS_CLIENT_HDR_BYTES;
}

/* After the payload is written: flush if realtime or full. */
static void frame_end(struct bus_client *c)
{
	if (c->flush_now || c->out.len >= c->cfg.flush_bytes)
		bus_client_flush(c);
}

static uint8_t *put_text(uint8_t *w, const char *s, size_t len)
{
	memcpy(w, s, len);
	w[len] = 0;
	return w + len + 1;
}

/* A frame of up to two \0-terminated text parts and data. */
static int frame_out(struct bus_client *c, uint8_t op, int qos,
                     const char *p1, const char *p2, const void *data,
                     size_t dlen, bus_done_fn done, void *arg)
{
	size_t l1 = p1 ? strlen(p1) : 0, l2 = p2 ? strlen(p2) : 0;
	uint64_t plen = (uint64_t)dlen + (p1 ? l1 + 1 : 0) + (p2 ? l2 + 1 : 0);
	int rc;
	uint8_t *w = frame_begin(c, op, qos, plen, done, arg, &rc);
	if (!w)
		return rc;
	if (p1)
		w = put_text(w, p1, l1);
	if (p2)
		w = put_text(w, p2, l2);
	if (dlen)
		memcpy(w, data, dlen);
	frame_end(c);
	return 0;
}

/* Handshake bytes (no header). */
static int raw_out(struct bus_client *c, const void *p, size_t n)
{
	int rc = buf_reserve(&c->a, &c->out, n);
	if (rc)
		return rc;
	memcpy(c->out.p + c->out.len, p, n);
	c->out.len += n;
	return 0;
}

static bool text_ok(const char *s)
{
	return s && bus__utf8_valid((const uint8_t *)s, strlen(s));
}

/* ---- connection lifecycle ----------------------------------------------- */
static void set_state(struct bus_client *c, enum bus_client_state st,
                      int reason)
{
	c->st = st;
	if (c->h.on_state)
		c->h.on_state(c, st, reason, c->h.arg);
}

/* Ends the connection from our side; the rest happens in on_close. */
static void conn_fail(struct bus_client *c, int reason)
{
	if (c->close_requested)
		return;
	c->fail_reason = reason;
	c->close_requested = true;
	c->ops.close(c->host);
}

static void call_attempt_failed(struct bus_client *c, struct call *k,
                                int err);
static int resubscribe(struct bus_client *c);

void bus_client_start(struct bus_client *c)
{
	if (c->started || c->st != BUS_CLIENT_DISCONNECTED || c->closing)
		return;
	c->started = true;
	c->reconnect_at = now(c); /* connect on the next tick */
}

static void begin_connect(struct bus_client *c)
{
	c->stx.connects++;
	c->hs_deadline = add_sat(now(c), c->cfg.op_timeout_ns);
	c->close_requested = false;
	c->fail_reason = 0;
	c->st = BUS_CLIENT_CONNECTING;
	c->ops.connect(c->host);
	set_state(c, BUS_CLIENT_CONNECTING, 0);
}

void bus_client_on_connected(struct bus_client *c)
{
	if (c->st != BUS_CLIENT_CONNECTING)
		return;
	c->hs = HS_GREETING;
	c->rx.len = c->out.len = 0;
	c->out_frames = c->out_fbytes = 0;
	c->last_rx = c->last_tx = now(c);
	c->hs_deadline = add_sat(now(c), c->cfg.op_timeout_ns);
	set_state(c, BUS_CLIENT_HANDSHAKE, 0);
}

static void fail_acks(struct bus_client *c, int err)
{
	c->acks_unsent = c->acks_inflight = 0;
	while (c->acks_count) {
		struct pend_ack p = ack_pop(c);
		if (p.done)
			p.done(c, err, p.arg);
	}
}

/* Every call with an attempt out loses it (slot order: deterministic). */
static void fail_sent_calls(struct bus_client *c, int err)
{
	for (uint32_t i = 0; i < c->slots_cap; i++) {
		struct call *k = c->slots[i];
		if (k && k->sent)
			call_attempt_failed(c, k, err);
	}
}

static void call_finish(struct bus_client *c, struct call *k, int status,
                        int code, const uint8_t *data, size_t len);

/* Every call ends with BUS_ECLOSED (slot order): nothing will be sent. */
static void fail_all_calls(struct bus_client *c)
{
	for (uint32_t i = 0; i < c->slots_cap; i++)
		if (c->slots[i])
			call_finish(c, c->slots[i], BUS_ECLOSED,
			            transport_code(BUS_ECLOSED), NULL, 0);
}

void bus_client_on_close(struct bus_client *c, int status)
{
	if (c->st == BUS_CLIENT_CLOSED || c->st == BUS_CLIENT_DISCONNECTED)
		return;
	if (c->st != BUS_CLIENT_READY)
		c->stx.handshake_failures++;
	c->stx.disconnects++;
	c->rx.len = c->out.len = c->wbuf.len = 0;
	c->out_frames = c->out_fbytes = c->w_frames = c->w_fbytes = 0;
	c->inflight = c->flush_now = false;
	c->close_requested = false;
	int reason = c->fail_reason ? c->fail_reason
	             : status < 0   ? status
	                            : BUS_ECLOSED;
	c->fail_reason = 0;
	bool final = c->closing || !c->cfg.reconnect;
	c->st = final ? BUS_CLIENT_CLOSED : BUS_CLIENT_DISCONNECTED;
	if (!final) {
		uint64_t b = c->backoff_ns, j = 0;
		if (c->cfg.reconnect_jitter_pct && b)
			j = b / 100 * c->cfg.reconnect_jitter_pct;
		uint64_t delay = b - j;
		if (j)
			delay += c->ops.random(c->host) % (2 * j + 1);
		c->reconnect_at = add_sat(now(c), delay);
		c->backoff_ns = c->backoff_ns * 2 > c->cfg.reconnect_max_ns
		                        ? c->cfg.reconnect_max_ns
		                        : c->backoff_ns * 2;
	}
	fail_acks(c, BUS_ECLOSED);
	fail_sent_calls(c, BUS_ECLOSED);
	if (final) /* nothing will ever be sent again */
		fail_all_calls(c);
	set_state(c, c->st, reason);
}

void bus_client_on_written(struct bus_client *c, int status)
{
	if (!c->inflight)
		return;
	c->inflight = false;
	c->wbuf.len = 0;
	if (status < 0) {
		conn_fail(c, BUS_EIO);
		return;
	}
	c->stx.frames_out += c->w_frames;
	c->stx.bytes_out += c->w_fbytes;
	c->w_frames = c->w_fbytes = 0;
	/* their frames are out: the broker's answers are due */
	uint64_t due = add_sat(now(c), c->cfg.op_timeout_ns);
	uint32_t first = c->acks_count - c->acks_unsent - c->acks_inflight;
	for (uint32_t k = first; k < c->acks_count - c->acks_unsent; k++)
		c->acks[(c->acks_head + k) & (c->acks_cap - 1)].deadline = due;
	c->acks_inflight = 0;
	if (c->flush_now || c->out.len >= c->cfg.flush_bytes || c->closing)
		bus_client_flush(c);
	if (c->eagain && bus_client_out_pending(c) <= c->cfg.out_bytes_max / 2) {
		c->eagain = false;
		if (c->h.on_drain)
			c->h.on_drain(c, c->h.arg);
	}
}

/* ---- input -------------------------------------------------------------- */
static void handle_ack(struct bus_client *c, uint32_t op_id, uint8_t result)
{
	c->stx.acks++;
	/* ACKs arrive in op order; older entries that timed out are gone, so
	 * anything that is not the head is a late ACK and is dropped */
	if (!c->acks_count || c->acks[c->acks_head].op_id != op_id)
		return;
	struct pend_ack p = ack_pop(c);
	if (p.done)
		p.done(c, bus_result_errno(result), p.arg);
}

static struct call *call_by_id(struct bus_client *c, uint32_t call_id)
{
	uint32_t slot = (call_id & 0xFFFFu);
	if (slot == 0 || slot > c->slots_cap)
		return NULL;
	struct call *k = c->slots[slot - 1];
	return k && k->call_id == call_id ? k : NULL;
}

static void handle_rpc(struct bus_client *c, const struct bus_delivery *d)
{
	const uint8_t *p = d->data;
	size_t n = d->len;
	if ((p[0] == BUS_RPC_REPLY && n >= 5) ||
	    (p[0] == BUS_RPC_ERROR && n >= 7)) {
		struct call *k = call_by_id(c, bus__get_u32le(p + 1));
		if (!k || !k->sent || strcmp(k->target, d->sender) != 0)
			return; /* late or stray reply */
		if (p[0] == BUS_RPC_REPLY) {
			call_finish(c, k, 0, 0, p + 5, n - 5);
		} else {
			int16_t code = (int16_t)(p[5] | (p[6] << 8));
			call_finish(c, k, BUS_ERPC, code, p + 7, n - 7);
		}
		return;
	}
	if (!c->h.on_rpc) {
		if (c->h.on_delivery)
			c->h.on_delivery(c, d, c->h.arg);
		return;
	}
	struct bus_rpc_request r = {.sender = d->sender,
	                            .realtime = d->realtime};
	if (p[0] == BUS_RPC_NOTIFICATION) {
		r.params = p + 1;
		r.params_len = n - 1;
	} else if (p[0] == BUS_RPC_REQUEST && n >= 6) {
		const uint8_t *m = p + 5;
		const uint8_t *z = memchr(m, 0, n - 5);
		if (!z)
			return; /* no method terminator: not a request */
		r.call_id = bus__get_u32le(p + 1);
		r.method = (const char *)m;
		r.params = z + 1;
		r.params_len = (size_t)(p + n - (z + 1));
		c->stx.rpc_requests_in++;
	} else {
		if (c->h.on_delivery)
			c->h.on_delivery(c, d, c->h.arg);
		return;
	}
	c->h.on_rpc(c, &r, c->h.arg);
}

int bus_delivery_decode(const uint8_t *p, size_t n, struct bus_delivery *d)
{
	if (n < BUS_SERVER_HDR_BYTES ||
	    bus__get_u32le(p + 1) != n - BUS_SERVER_HDR_BYTES)
		return BUS_EPROTO;
	uint8_t kind = p[0];
	if (kind != BUS_OP_PUBLISH && kind != BUS_OP_MESSAGE &&
	    kind != BUS_OP_BROADCAST)
		return BUS_EPROTO;
	const uint8_t *b = p + BUS_SERVER_HDR_BYTES, *e = p + n;
	*d = (struct bus_delivery){.kind = kind, .realtime = p[5] != 0};
	const uint8_t *z = memchr(b, 0, (size_t)(e - b));
	if (!z)
		return BUS_EPROTO;
	d->sender = (const char *)b;
	b = z + 1;
	if (kind == BUS_OP_PUBLISH) {
		z = memchr(b, 0, (size_t)(e - b));
		if (!z)
			return BUS_EPROTO;
		d->topic = (const char *)b;
		b = z + 1;
	}
	d->data = b;
	d->len = (size_t)(e - b);
	return 0;
}

/* One broker->client frame at p (n bytes available). Returns the bytes it
 * used, 0 if the frame is not whole yet, or -1 on a protocol error. */
static ptrdiff_t parse_frame(struct bus_client *c, const uint8_t *p, size_t n)
{
	if (n < BUS_SERVER_HDR_BYTES)
		return 0;
	if (p[0] == BUS_OP_ACK) {
		handle_ack(c, bus__get_u32le(p + 1), p[5]);
		return BUS_ACK_BYTES;
	}
	uint32_t len = bus__get_u32le(p + 1);
	if (len > c->cfg.payload_bytes_max)
		return -1;
	uint8_t kind = p[0];
	if (kind != BUS_OP_NOP && kind != BUS_OP_PUBLISH &&
	    kind != BUS_OP_MESSAGE && kind != BUS_OP_BROADCAST)
		return -1;
	if (kind == BUS_OP_NOP && len != 0)
		return -1;
	if (n - BUS_SERVER_HDR_BYTES < len)
		return 0;
	size_t used = BUS_SERVER_HDR_BYTES + (size_t)len;
	if (kind == BUS_OP_NOP) {
		c->stx.frames_in++;
		c->stx.nops_in++;
		return (ptrdiff_t)used;
	}
	struct bus_delivery d;
	if (bus_delivery_decode(p, used, &d))
		return -1;
	c->stx.frames_in++; /* taken: its bytes count in stream_in too */
	if (kind == BUS_OP_MESSAGE && d.len > 0)
		handle_rpc(c, &d);
	else if (c->h.on_delivery)
		c->h.on_delivery(c, &d, c->h.arg);
	return (ptrdiff_t)used;
}

/* Handshake bytes at p; returns bytes used, 0 for more, -1 on failure
 * (reason in *err). */
static ptrdiff_t parse_handshake(struct bus_client *c, const uint8_t *p,
                                 size_t n, int *err)
{
	if (c->hs == HS_GREETING) {
		if (n < 3)
			return 0;
		if (p[0] != BUS_GREETING ||
		    (p[1] | (p[2] << 8)) != BUS_PROTOCOL_VERSION) {
			*err = BUS_ENOTSUP;
			return -1;
		}
		if ((*err = raw_out(c, p, 3)))
			return -1;
		c->hs = HS_OK1;
		bus_client_flush(c);
		return 3;
	}
	if (n < 1)
		return 0;
	if (p[0] != BUS_RES_OK) {
		*err = bus_result_errno(p[0]);
		return -1;
	}
	if (c->hs == HS_OK1) {
		uint8_t l[2];
		put_u16le(l, (uint16_t)c->name_len);
		if ((*err = raw_out(c, l, 2)) ||
		    (*err = raw_out(c, c->name, c->name_len)))
			return -1;
		c->hs = HS_OK2;
		bus_client_flush(c);
		return 1;
	}
	/* registered */
	c->backoff_ns = c->cfg.reconnect_min_ns;
	c->st = BUS_CLIENT_READY;
	if ((*err = resubscribe(c)))
		return -1;
	set_state(c, BUS_CLIENT_READY, 0);
	return 1;
}

/* Parses whole frames from p; returns the bytes used or -1 (connection
 * failed). Stops when the connection stops being live. */
static ptrdiff_t parse_all(struct bus_client *c, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n && !c->close_requested && !c->freeing &&
	       (c->st == BUS_CLIENT_HANDSHAKE || c->st == BUS_CLIENT_READY)) {
		ptrdiff_t r;
		if (c->st == BUS_CLIENT_HANDSHAKE) {
			int err = 0;
			r = parse_handshake(c, p + off, n - off, &err);
			if (r < 0) {
				conn_fail(c, err);
				return -1;
			}
		} else {
			r = parse_frame(c, p + off, n - off);
			if (r < 0) {
				conn_fail(c, BUS_EPROTO);
				return -1;
			}
		}
		if (r == 0)
			break;
		off += (size_t)r;
		c->stx.stream_in += (size_t)r;
	}
	BUS_ASSERT(off <= n);
	return (ptrdiff_t)off;
}

void bus_client_on_bytes(struct bus_client *c, const void *data, size_t len)
{
	if (len == 0 || c->close_requested ||
	    (c->st != BUS_CLIENT_HANDSHAKE && c->st != BUS_CLIENT_READY))
		return;
	c->last_rx = now(c);
	c->stx.bytes_in += len;
	const uint8_t *p = data;
	if (c->rx.len == 0) { /* fast path: parse the read in place */
		ptrdiff_t used = parse_all(c, p, len);
		if (used < 0 || c->close_requested)
			return;
		p += used;
		len -= (size_t)used;
		if (len == 0)
			return;
		if (buf_reserve(&c->a, &c->rx, len)) {
			conn_fail(c, BUS_ENOMEM);
			return;
		}
		memcpy(c->rx.p, p, len);
		c->rx.len = len;
		return;
	}
	if (buf_reserve(&c->a, &c->rx, len)) {
		conn_fail(c, BUS_ENOMEM);
		return;
	}
	memcpy(c->rx.p + c->rx.len, p, len);
	c->rx.len += len;
	/* callbacks cannot touch rx (no bytes are fed from inside them) */
	ptrdiff_t used = parse_all(c, c->rx.p, c->rx.len);
	if (used < 0 || c->close_requested) {
		c->rx.len = 0;
		return;
	}
	memmove(c->rx.p, c->rx.p + used, c->rx.len - (size_t)used);
	c->rx.len -= (size_t)used;
}

/* ---- time --------------------------------------------------------------- */
static void call_send(struct bus_client *c, struct call *k);

void bus_client_on_tick(struct bus_client *c)
{
	uint64_t t = now(c);
	if (c->st == BUS_CLIENT_DISCONNECTED && c->closing) {
		c->st = BUS_CLIENT_CLOSED;
		fail_all_calls(c);
		set_state(c, BUS_CLIENT_CLOSED, BUS_ECLOSED);
		return;
	}
	if (c->st == BUS_CLIENT_DISCONNECTED && c->started &&
	    t >= c->reconnect_at)
		begin_connect(c);
	if ((c->st == BUS_CLIENT_CONNECTING || c->st == BUS_CLIENT_HANDSHAKE) &&
	    t >= c->hs_deadline)
		conn_fail(c, BUS_ETIMEDOUT);
	if (c->st == BUS_CLIENT_READY && !c->close_requested) {
		while (c->acks_count && c->acks[c->acks_head].deadline <= t) {
			struct pend_ack p = ack_pop(c);
			c->stx.ack_timeouts++;
			if (p.done)
				p.done(c, BUS_ETIMEDOUT, p.arg);
		}
		if (c->cfg.idle_timeout_ns &&
		    t - c->last_rx >= c->cfg.idle_timeout_ns) {
			conn_fail(c, BUS_ETIMEDOUT);
		} else if (c->cfg.ping_interval_ns &&
		           t - c->last_tx >= c->cfg.ping_interval_ns &&
		           !c->closing) {
			static const uint8_t ping[BUS_CLIENT_HDR_BYTES];
			if (raw_out(c, ping, sizeof(ping)) == 0) {
				c->stx.pings++;
				c->last_tx = t; /* also when a write is in flight */
				bus_client_flush(c);
			}
		}
	}
	struct bus_heap_item *top;
	while ((top = bus__heap_top(&c->calls)) && top->key <= t) {
		struct call *k = (struct call *)top;
		bus__heap_remove(&c->calls, top);
		if (k->sent) {
			c->stx.rpc_timeouts++;
			call_attempt_failed(c, k, BUS_ETIMEDOUT);
		} else {
			call_send(c, k);
		}
	}
}

uint64_t bus_client_next_deadline(const struct bus_client *c)
{
	uint64_t d = UINT64_MAX;
#define MIN_(x) d = (x) < d ? (x) : d
	switch (c->st) {
	case BUS_CLIENT_DISCONNECTED:
		if (c->closing)
			return 0;
		if (c->started)
			MIN_(c->reconnect_at);
		break;
	case BUS_CLIENT_CONNECTING:
	case BUS_CLIENT_HANDSHAKE:
		MIN_(c->hs_deadline);
		break;
	case BUS_CLIENT_READY:
		if (c->close_requested)
			break;
		if (c->acks_count)
			MIN_(c->acks[c->acks_head].deadline);
		if (c->cfg.idle_timeout_ns)
			MIN_(add_sat(c->last_rx, c->cfg.idle_timeout_ns));
		if (c->cfg.ping_interval_ns && !c->closing)
			MIN_(add_sat(c->last_tx, c->cfg.ping_interval_ns));
		break;
	case BUS_CLIENT_CLOSED:
		return UINT64_MAX;
	}
	const struct bus_heap_item *top = bus__heap_top(&c->calls);
	if (top)
		MIN_(top->key);
#undef MIN_
	return d;
}

/* ---- subscriptions ------------------------------------------------------ */
static void sub_acked(struct bus_client *c, int status, void *arg)
{
	struct subrec *r = arg;
	if (status == BUS_EDATA && !c->freeing) /* refused: forget them */
		for (uint32_t i = 0; i < r->n; i++)
			maskset_del(&c->a, r->excl ? &c->excl : &c->subs,
			            r->masks[i], strlen(r->masks[i]));
	if (r->done)
		r->done(c, status, r->arg);
	for (uint32_t i = 0; i < r->n; i++)
		bus__free(&c->a, r->masks[i]);
	bus__free(&c->a, r);
}

/* One frame with masks joined by \0, no trailing \0. */
static int masks_frame(struct bus_client *c, uint8_t op,
                       const char *const *masks, size_t n, bus_done_fn done,
                       void *arg)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += strlen(masks[i]) + (i ? 1 : 0);
	int rc;
	uint8_t *w = frame_begin(c, op, BUS_QOS_PROCESSED, total, done, arg,
	                         &rc);
	if (!w)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*w++ = 0;
		size_t l = strlen(masks[i]);
		memcpy(w, masks[i], l);
		w += l;
	}
	frame_end(c);
	return 0;
}

/* After registration: the recorded subscriptions and exclusions again. */
static int resubscribe(struct bus_client *c)
{
	if (BUS_PLANTED(c->cfg.sim, BUS_PLANT_NO_RESUBSCRIBE) &&
	    c->stx.connects > 1 && (c->subs.count || c->excl.count) &&
	    BUS_PLANT_HIT(c->cfg.sim))
		return 0; /* planted: the masks stay recorded, unsent */
	struct maskset *sets[2] = {&c->subs, &c->excl};
	uint8_t ops[2] = {BUS_OP_SUBSCRIBE, BUS_OP_EXCLUDE};
	for (int s = 0; s < 2; s++) {
		uint32_t i = 0;
		while (i < sets[s]->count) {
			uint32_t j = i;
			size_t bytes = 0;
			while (j < sets[s]->count &&
			       (j == i || bytes + strlen(sets[s]->items[j]) + 1 <=
			                          RESUB_CHUNK_BYTES))
				bytes += strlen(sets[s]->items[j++]) + 1;
			int rc = masks_frame(c, ops[s],
			                     (const char *const *)sets[s]->items + i,
			                     j - i, NULL, NULL);
			if (rc)
				return rc;
			i = j;
		}
	}
	return 0;
}

static int masks_op(struct bus_client *c, uint8_t op, bool excl, bool add,
                    const char *const *masks, size_t n, bus_done_fn done,
                    void *arg)
{
	if (c->st == BUS_CLIENT_CLOSED || c->closing)
		return BUS_ECLOSED;
	if (!masks || n == 0)
		return BUS_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!text_ok(masks[i]))
			return BUS_EINVAL;
	struct maskset *set = excl ? &c->excl : &c->subs;
	struct subrec *r = NULL;
	if (add) {
		r = bus__calloc(&c->a, sizeof(*r) + sizeof(char *) * n);
		if (!r)
			return BUS_ENOMEM;
		r->done = done;
		r->arg = arg;
		r->excl = excl;
	}
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		size_t l = strlen(masks[i]);
		if (!add) {
			maskset_del(&c->a, set, masks[i], l);
			continue;
		}
		if (maskset_has(set, masks[i], l))
			continue;
		if ((rc = maskset_add(&c->a, set, masks[i], l)))
			break;
		if (!(r->masks[r->n] = bus__strndup(&c->a, masks[i], l))) {
			maskset_del(&c->a, set, masks[i], l);
			rc = BUS_ENOMEM;
			break;
		}
		r->n++;
	}
	if (!rc && !ready(c))
		rc = BUS_ECLOSED; /* recorded; goes out on (re)connect */
	if (!rc)
		rc = add ? masks_frame(c, op, masks, n, sub_acked, r)
		         : masks_frame(c, op, masks, n, done, arg);
	if (rc && r) {
		/* not sent: keep the record (desired state) unless it failed
		 * for a reason that is not the connection */
		if (rc != BUS_ECLOSED)
			for (uint32_t i = 0; i < r->n; i++)
				maskset_del(&c->a, set, r->masks[i],
				            strlen(r->masks[i]));
		for (uint32_t i = 0; i < r->n; i++)
			bus__free(&c->a, r->masks[i]);
		bus__free(&c->a, r);
	}
	return rc;
}

int bus_client_subscribe(struct bus_client *c, const char *const *masks,
                         size_t n, bus_done_fn done, void *arg)
{
	return masks_op(c, BUS_OP_SUBSCRIBE, false, true, masks, n, done, arg);
}

int bus_client_unsubscribe(struct bus_client *c, const char *const *masks,
                           size_t n, bus_done_fn done, void *arg)
{
	return masks_op(c, BUS_OP_UNSUBSCRIBE, false, false, masks, n, done,
	                arg);
}

int bus_client_exclude(struct bus_client *c, const char *const *masks,
                       size_t n, bus_done_fn done, void *arg)
{
	return masks_op(c, BUS_OP_EXCLUDE, true, true, masks, n, done, arg);
}

int bus_client_unexclude(struct bus_client *c, const char *const *masks,
                         size_t n, bus_done_fn done, void *arg)
{
	return masks_op(c, BUS_OP_UNEXCLUDE, true, false, masks, n, done, arg);
}

/* ---- publishing and messages ------------------------------------------- */
int bus_client_publish(struct bus_client *c, const char *topic,
                       const void *data, size_t len, int qos, bus_done_fn done,
                       void *arg)
{
	if (!text_ok(topic) || (len && !data))
		return BUS_EINVAL;
	return frame_out(c, BUS_OP_PUBLISH, qos, topic, NULL, data, len, done,
	                 arg);
}

int bus_client_publish_for(struct bus_client *c, const char *topic,
                           const char *receiver, const void *data, size_t len,
                           int qos, bus_done_fn done, void *arg)
{
	if (!text_ok(topic) || !text_ok(receiver) || (len && !data))
		return BUS_EINVAL;
	return frame_out(c, BUS_OP_PUBLISH_FOR, qos, topic, receiver, data, len,
	                 done, arg);
}

int bus_client_send(struct bus_client *c, const char *target,
                    const void *data, size_t len, int qos, bus_done_fn done,
                    void *arg)
{
	if (!text_ok(target) || !*target || (len && !data))
		return BUS_EINVAL;
	return frame_out(c, BUS_OP_MESSAGE, qos, target, NULL, data, len, done,
	                 arg);
}

int bus_client_broadcast(struct bus_client *c, const char *mask,
                         const void *data, size_t len, int qos,
                         bus_done_fn done, void *arg)
{
	if (!text_ok(mask) || (len && !data))
		return BUS_EINVAL;
	return frame_out(c, BUS_OP_BROADCAST, qos, mask, NULL, data, len, done,
	                 arg);
}

/* ---- RPC ---------------------------------------------------------------- */
/* A MESSAGE whose data is hdr (hlen bytes) followed by body. */
static int rpc_message(struct bus_client *c, const char *target,
                       const uint8_t *hdr, size_t hlen, const void *body,
                       size_t blen, int qos, bus_done_fn done, void *arg)
{
	if (!text_ok(target) || !*target || (blen && !body))
		return BUS_EINVAL;
	size_t tl = strlen(target);
	int rc;
	uint8_t *w = frame_begin(c, BUS_OP_MESSAGE, qos,
	                         (uint64_t)tl + 1 + hlen + blen, done, arg, &rc);
	if (!w)
		return rc;
	w = put_text(w, target, tl);
	memcpy(w, hdr, hlen);
	if (blen)
		memcpy(w + hlen, body, blen);
	frame_end(c);
	return 0;
}

static void call_free(struct bus_client *c, struct call *k)
{
	bus__heap_remove(&c->calls, &k->hi);
	c->slots[k->slot] = NULL;
	c->calls_count--;
	bus__free(&c->a, k->target);
	bus__free(&c->a, k->req);
	bus__free(&c->a, k);
}

static void call_finish(struct bus_client *c, struct call *k, int status,
                        int code, const uint8_t *data, size_t len)
{
	struct bus_rpc_result r = {code, data, len, k->attempts};
	bus__rpcm_record(&c->a, &c->rpcm, k->target, (const char *)k->req,
	                 status, code, k->attempts, now(c) - k->started_ns);
	bus_rpc_fn done = k->done;
	void *arg = k->arg;
	call_free(c, k);
	if (done)
		done(c, status, &r, arg);
}

static void call_acked(struct bus_client *c, int status, void *arg)
{
	if (status == 0 || c->freeing)
		return; /* routed: the reply will come */
	struct call *k = call_by_id(c, (uint32_t)(uintptr_t)arg);
	if (k && k->sent)
		call_attempt_failed(c, k, status);
}

/* Sends one attempt under a fresh call_id and arms its timeout. Returns
 * 0 or why it could not be sent (then nothing changed but the id). */
static int call_attempt(struct bus_client *c, struct call *k)
{
	uint16_t gen = ++c->gens[k->slot];
	k->call_id = ((uint32_t)gen << 16) | (k->slot + 1);
	uint8_t hdr[5] = {BUS_RPC_REQUEST};
	bus__put_u32le(hdr + 1, k->call_id);
	uint64_t d = add_sat(now(c), k->pol.timeout_ns);
	if (k->overall_deadline < d)
		d = k->overall_deadline;
	int rc = bus__heap_push(&c->a, &c->calls, &k->hi, d);
	if (rc)
		return rc;
	rc = k->pol.no_ack
	         ? rpc_message(c, k->target, hdr, 5, k->req, k->req_len, 0,
	                       NULL, NULL)
	         : rpc_message(c, k->target, hdr, 5, k->req, k->req_len,
	                       BUS_QOS_PROCESSED, call_acked,
	                       (void *)(uintptr_t)k->call_id);
	if (rc) {
		bus__heap_remove(&c->calls, &k->hi);
		return rc;
	}
	k->attempts++;
	k->sent = true;
	c->stx.rpc_attempts++;
	if (k->attempts > 1)
		c->stx.rpc_retries++;
	return 0;
}

/* From a tick or a retry: a failure to send counts as a failed attempt. */
static void call_send(struct bus_client *c, struct call *k)
{
	int rc = call_attempt(c, k);
	if (rc) {
		k->attempts++;
		call_attempt_failed(c, k, rc);
	}
}

static void call_attempt_failed(struct bus_client *c, struct call *k, int err)
{
	bus__heap_remove(&c->calls, &k->hi);
	k->sent = false;
	uint64_t t = now(c);
	uint64_t wait = k->attempts == 1 ? k->pol.backoff_ns : k->backoff_ns * 2;
	if (wait > k->pol.backoff_max_ns && k->pol.backoff_max_ns)
		wait = k->pol.backoff_max_ns;
	k->backoff_ns = wait;
	bool more = k->attempts <= k->pol.retries &&
	            add_sat(t, wait) < k->overall_deadline;
	if (t >= k->overall_deadline && k->pol.total_ns)
		err = BUS_ETIMEDOUT;
	if (!more || c->freeing || c->closing) {
		call_finish(c, k, err, transport_code(err), NULL, 0);
		return;
	}
	if (wait == 0) {
		call_send(c, k);
		return;
	}
	if (bus__heap_push(&c->a, &c->calls, &k->hi, t + wait))
		call_finish(c, k, BUS_ENOMEM, BUS_RPC_ERR_INTERNAL, NULL, 0);
}

int bus_client_rpc_call(struct bus_client *c, const char *target,
                        const char *method, const void *params, size_t len,
                        const struct bus_rpc_policy *policy, bus_rpc_fn done,
                        void *arg)
{
	if (!text_ok(target) || !*target || !text_ok(method) || !*method ||
	    (len && !params))
		return BUS_EINVAL;
	if (c->st == BUS_CLIENT_CLOSED || c->closing)
		return BUS_ECLOSED;
	if (c->calls_count >= c->cfg.calls_max)
		return BUS_ELIMIT;
	if (c->slots_cap == c->calls_count) {
		uint32_t cap = c->slots_cap ? c->slots_cap * 2 : 16;
		if (cap > CALL_SLOTS_MAX)
			cap = CALL_SLOTS_MAX;
		struct call **s = bus__realloc(&c->a, c->slots, sizeof(*s) * cap);
		if (!s)
			return BUS_ENOMEM;
		c->slots = s;
		uint16_t *g = bus__realloc(&c->a, c->gens, sizeof(*g) * cap);
		if (!g)
			return BUS_ENOMEM;
		c->gens = g;
		for (uint32_t i = c->slots_cap; i < cap; i++) {
			c->slots[i] = NULL;
			c->gens[i] = 0;
		}
		c->slots_cap = cap;
	}
	uint32_t slot = 0;
	while (c->slots[slot])
		slot++;
	struct call *k = bus__calloc(&c->a, sizeof(*k));
	size_t ml = strlen(method);
	if (k) {
		k->target = bus__strndup(&c->a, target, strlen(target));
		k->req = bus__alloc(&c->a, ml + 1 + len);
	}
	if (!k || !k->target || !k->req) {
		if (k) {
			bus__free(&c->a, k->target);
			bus__free(&c->a, k->req);
		}
		bus__free(&c->a, k);
		return BUS_ENOMEM;
	}
	memcpy(k->req, method, ml + 1);
	if (len)
		memcpy(k->req + ml + 1, params, len);
	k->req_len = ml + 1 + len;
	k->hi.idx = UINT32_MAX;
	k->slot = slot;
	k->pol = policy ? *policy : c->cfg.rpc;
	k->started_ns = now(c);
	k->overall_deadline =
	        k->pol.total_ns ? add_sat(k->started_ns, k->pol.total_ns)
	                        : UINT64_MAX;
	k->done = done;
	k->arg = arg;
	c->slots[slot] = k;
	c->calls_count++;
	c->stx.rpc_calls++;
	if (!ready(c)) { /* first attempt on the next tick, like a retry */
		if (bus__heap_push(&c->a, &c->calls, &k->hi, now(c))) {
			call_free(c, k);
			return BUS_ENOMEM;
		}
		return 0;
	}
	/* first attempt now; a failure to send is returned, not called back */
	int rc = call_attempt(c, k);
	if (rc)
		call_free(c, k);
	return rc;
}

int bus_client_rpc_notify(struct bus_client *c, const char *target,
                          const void *data, size_t len, int qos,
                          bus_done_fn done, void *arg)
{
	static const uint8_t hdr[1] = {BUS_RPC_NOTIFICATION};
	if (!(qos & BUS_QOS_PROCESSED) != !done)
		return BUS_EINVAL; /* an ACK needs a callback, and only an ACK */
	return rpc_message(c, target, hdr, 1, data, len, qos, done, arg);
}

int bus_client_rpc_call0(struct bus_client *c, const char *target,
                         const char *method, const void *params, size_t len,
                         int qos, bus_done_fn done, void *arg)
{
	uint8_t hdr[5] = {BUS_RPC_REQUEST}; /* call id 0: no reply wanted */
	if (!method || !*method || !text_ok(method) || (len && !params) ||
	    !(qos & BUS_QOS_PROCESSED) != !done)
		return BUS_EINVAL;
	size_t ml = strlen(method);
	uint8_t *body = bus__alloc(&c->a, ml + 1 + len);
	if (!body)
		return BUS_ENOMEM;
	memcpy(body, method, ml + 1);
	if (len)
		memcpy(body + ml + 1, params, len);
	int rc = rpc_message(c, target, hdr, 5, body, ml + 1 + len, qos, done,
	                     arg);
	bus__free(&c->a, body);
	return rc;
}

int bus_client_rpc_reply(struct bus_client *c, const char *target,
                         uint32_t call_id, const void *data, size_t len)
{
	if (call_id == 0)
		return BUS_EINVAL;
	uint8_t hdr[5] = {BUS_RPC_REPLY};
	bus__put_u32le(hdr + 1, call_id);
	c->out_slack = BUS_CLIENT_REPLY_SLACK;
	int rc = rpc_message(c, target, hdr, 5, data, len, 0, NULL, NULL);
	c->out_slack = 0;
	return rc;
}

int bus_client_rpc_error(struct bus_client *c, const char *target,
                         uint32_t call_id, int code, const void *msg,
                         size_t len)
{
	if (call_id == 0 || code < INT16_MIN || code > INT16_MAX)
		return BUS_EINVAL;
	uint8_t hdr[7] = {BUS_RPC_ERROR};
	bus__put_u32le(hdr + 1, call_id);
	put_u16le(hdr + 5, (uint16_t)(int16_t)code);
	c->out_slack = BUS_CLIENT_REPLY_SLACK;
	int rc = rpc_message(c, target, hdr, 7, msg, len, 0, NULL, NULL);
	c->out_slack = 0;
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */
struct bus_client *bus_client_new(const struct bus_client_config *cfg,
                                  const struct bus_client_ops *ops, void *host,
                                  const struct bus_client_handlers *h)
{
	if (!cfg || !ops || !ops->now || !ops->random || !ops->connect ||
	    !ops->write || !ops->close || !cfg->name ||
	    !name_valid(cfg->name, strlen(cfg->name)) || cfg->flush_bytes == 0 ||
	    cfg->out_bytes_max < cfg->flush_bytes || cfg->op_timeout_ns == 0 ||
	    cfg->calls_max == 0 || cfg->calls_max > CALL_SLOTS_MAX ||
	    cfg->reconnect_jitter_pct > 100 ||
	    cfg->reconnect_min_ns > cfg->reconnect_max_ns)
		return NULL;
	struct bus_allocator a = cfg->allocator;
	struct bus_client *c = bus__calloc(&a, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->rpcm.max = cfg->rpc_metrics_max;
	c->a = a;
	c->ops = *ops;
	c->host = host;
	if (h)
		c->h = *h;
	c->name_len = strlen(cfg->name);
	c->name = bus__strndup(&a, cfg->name, c->name_len);
	if (!c->name) {
		bus__free(&a, c);
		return NULL;
	}
	c->cfg.name = c->name;
	c->next_op_id = 1;
	c->backoff_ns = cfg->reconnect_min_ns;
	c->st = BUS_CLIENT_DISCONNECTED;
	return c;
}

void bus_client_close(struct bus_client *c)
{
	if (c->closing || c->st == BUS_CLIENT_CLOSED)
		return;
	c->closing = true;
	if (c->st == BUS_CLIENT_CONNECTING || c->st == BUS_CLIENT_HANDSHAKE)
		conn_fail(c, BUS_ECLOSED);
	else if (c->st == BUS_CLIENT_READY)
		maybe_close_now(c); /* else after the write in flight */
	/* DISCONNECTED: CLOSED on the next tick (deadline 0) */
}

void bus_client_free(struct bus_client *c)
{
	if (!c)
		return;
	c->freeing = true;
	c->st = BUS_CLIENT_CLOSED;
	fail_acks(c, BUS_ECLOSED);
	fail_all_calls(c);
	const struct bus_allocator a = c->a;
	buf_free(&a, &c->out);
	buf_free(&a, &c->wbuf);
	buf_free(&a, &c->rx);
	bus__free(&a, c->acks);
	maskset_free(&a, &c->subs);
	maskset_free(&a, &c->excl);
	bus__free(&a, c->slots);
	bus__free(&a, c->gens);
	bus__heap_free(&a, &c->calls);
	bus__rpcm_free(&a, &c->rpcm);
	bus__free(&a, c->name);
	bus__free(&a, c);
}

const struct bus_rpc_metrics *bus_client_rpc_metrics(const struct bus_client *c)
{
	return &c->rpcm;
}

enum bus_client_state bus_client_state(const struct bus_client *c)
{
	return c->st;
}

const char *bus_client_name(const struct bus_client *c) { return c->name; }

void *bus_client_host(const struct bus_client *c) { return c->host; }

void bus_client_stats(const struct bus_client *c, struct bus_client_stats *out)
{
	*out = c->stx;
}
