/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actors.c — who runs in a simulated run: the intruder and the impostor,
 * the receivers (monitors and the agent), the collectors (procmond's
 * code on the scenario's tables), the agent (the shipped supervision and
 * intake) and the operator.
 */
#include "simint.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the intruder and the impostor ---------------------------------------------
 * Another uid in every run: the intruder registers as a monitor (its
 * group is the monitor group) and tries, at each connection, everything a
 * monitor may not do; the impostor tries to take the first collector's
 * name (or the agent's). Every try must be answered 0x79 (the access
 * check), and nothing either sends may reach anyone. */


static void control_fault(struct sim *s, const char *what, const char *who)
{
	if (s->control_fault[0])
		return;
	snprintf(s->control_fault, sizeof(s->control_fault), "%s%s", what, who);
	s->control_fault_at = s->now;
}

/* control/broker/stats at the agent: from the broker, published at a
 * whole number of intervals since that broker started (its schedule does
 * not drift), and its frames-read counter consistent with the accounting:
 * never past what the broker has read by now, never back within one
 * broker's life. */
static void stats_check(struct sim *s, const struct bus_delivery *d)
{
	if (strcmp(d->sender, ".broker")) {
		control_fault(s, "control/broker/stats forged by ", d->sender);
		return;
	}
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	uint64_t uptime = UINT64_MAX, rf = UINT64_MAX;
	if (msgpack_unpack_next(&u, (const char *)d->data, d->len, NULL) ==
	            MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		const msgpack_object_map *m = &u.data.via.map;
		for (uint32_t i = 0; i < m->size; i++) {
			const msgpack_object *k = &m->ptr[i].key;
			const msgpack_object *v = &m->ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR ||
			    v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				continue;
			if (k->via.str.size == 6 &&
			    !memcmp(k->via.str.ptr, "uptime", 6))
				uptime = v->via.u64;
			if (k->via.str.size == 8 &&
			    !memcmp(k->via.str.ptr, "r_frames", 8))
				rf = v->via.u64;
		}
	}
	msgpack_unpacked_destroy(&u);
	uint64_t every_s = s->core_cfg.stats_interval_ns / SIM_S;
	struct bus_stats now;
	if (s->core)
		bus_core_stats(s->core, &now);
	bool same_broker = s->stats_got && s->stats_last_gen ==
	                                           s->r->broker_restarts;
	if (uptime == UINT64_MAX || rf == UINT64_MAX)
		control_fault(s, "control/broker/stats without uptime or "
		              "r_frames", "");
	else if (!uptime || (every_s && uptime % every_s))
		control_fault(s, "control/broker/stats off its schedule", "");
	else if ((s->core && rf > now.r_frames) ||
	         (same_broker && rf < s->stats_last_r))
		control_fault(s, "control/broker/stats frames read disagree "
		              "with the accounting", "");
	s->stats_got++;
	s->stats_last_r = rf;
	s->stats_last_gen = s->r->broker_restarts;
	sim_trace(s, "agent got control/broker/stats uptime %llu r_frames %llu",
	          (unsigned long long)uptime, (unsigned long long)rf);
}

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
	}
}

/* Bytes the broker sent a raw connection: the rogue waits for its
 * registration (greeting 3 bytes, then OK, then OK) before its frame;
 * the intruder before its tries; the impostor's registration must be
 * refused. */
void raw_rx(struct sim *s, struct link *l, const uint8_t *p, size_t n)
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

void on_connect(struct sim *s, struct link *l)
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
	l->c2b_written = l->c2b_read = l->c_inflight = 0;
	count_from_now(s, l); /* before the core's greeting is written */
	l->conn = bus_core_on_connect(s->core, (void *)(intptr_t)l->idx,
	                              BUS_KIND_LOCAL_IPC, "", "", s->now);
	if (!l->conn) {
		l->acct_open = l->counted = false;
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
	bus_client_on_connected(l->cl);
}

int new_link(struct sim *s, enum link_kind kind, int actor,
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
	if (d->kind == BUS_OP_PUBLISH && l->kind == LK_COLLECTOR &&
	    !strcmp(d->topic, DE_TOPIC_AGENT_SHUTDOWN)) {
		struct collector *co = &s->cols[l->actor];
		bool deaf = co->shut_fault == SHUT_DEAF;
		int rc = !co->col_init || deaf
		                 ? 0
		                 : de_collector_shutdown(&co->col, d->sender,
		                                         d->data, d->len);
		if (rc)
			control_fault(s, "a collector refused the agent's "
			              "shutdown: ", l->name);
		sim_trace(s, "shutdown %s %s %d", l->name,
		          deaf ? "ignored" : "heard", rc);
		return;
	}
	if (d->kind != BUS_OP_PUBLISH || l->kind == LK_COLLECTOR)
		return;
	if (!strncmp(d->topic, "control/", 8)) { /* not an event */
		size_t idx;
		if (l->kind != LK_AGENT || s->agent_down)
			return;
		if (!strcmp(d->topic, "control/broker/stats")) {
			stats_check(s, d);
			return;
		}
		int rc = de_agent_control(&s->da, d->sender, d->topic, d->data,
		                          d->len, &idx);
		if (rc)
			control_fault(s, "the agent refused a collector's ",
			              d->topic);
		else if (!strcmp(d->topic, DE_TOPIC_CAPABILITIES))
			s->caps_received++;
		sim_trace(s, "agent got %s from %s: %d", d->topic, d->sender, rc);
		return;
	}
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
/* What every collector subscribes (col_spawn). */
static const char *const col_masks[] = {"control/collector/#",
                                        DE_TOPIC_AGENT_SHUTDOWN};

/* Its subscriptions are due: the broker must hold every mask it
 * subscribed (a reconnect's resubscribe among the bytes read). */
static void held_masks(struct sim *s, struct link *l, const char *const *m,
                       int n)
{
	struct bus_conn *conn = conn_of(l);
	for (int k = 0; conn && s->core && k < n; k++)
		if (!bus_conn_subscribed(conn, m[k]) && !s->sub_fault[0]) {
			snprintf(s->sub_fault, sizeof(s->sub_fault), "%s is "
			         "connected and its subscriptions due, yet the "
			         "broker does not hold %s", l->name, m[k]);
			s->sub_fault_at = s->now;
		}
}

void sub_check(struct sim *s, struct link *l)
{
	/* not when the broker closes it on these very bytes (a cut) */
	if (!l->sub_pending || l->c2b_read < l->sub_target || l->b_closing)
		return;
	l->sub_pending = false;
	if (l->kind == LK_COLLECTOR) {
		if (s->cols[l->actor].subscribed) /* (no memory: it holds none) */
			held_masks(s, l, col_masks, 2);
		return;
	}
	struct receiver *r = recv_of(s, l);
	r->up_since = s->now;
	const char *m[8];
	for (int k = 0; k < r->n_masks; k++)
		m[k] = r->masks[k];
	held_masks(s, l, m, r->n_masks);
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
void policy_hook(void *arg, void *ctx, const uint8_t *f, size_t n)
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

/* READY: its subscriptions are due once the broker has read every byte
 * the client had written or queued by now (its resubscribe among them). */
static void sub_due(struct sim *s, struct link *l)
{
	l->sub_pending = true;
	uint64_t inflight = !l->internal ? l->c_inflight
	                    : l->il.c_write ? l->il.c_iov.len : 0;
	l->sub_target = l->c2b_written + bus_client_out_pending(l->cl) -
	                inflight;
	sub_check(s, l);
}

static void recv_state(struct sim *s, struct link *l, enum bus_client_state st)
{
	struct receiver *r = recv_of(s, l);
	if (st == BUS_CLIENT_READY) {
		sub_due(s, l);
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
	if (co->caps_gen != co->ready_gen)
		control_fault(s, "an event before the capabilities on a "
		              "connection of ", l->name);
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

/* Capabilities (and the shutdown answer): QoS 1, not events. */
static int col_control(void *host, const char *topic, const uint8_t *data,
                       size_t len)
{
	struct link *l = host;
	struct sim *s = l->s;
	struct collector *co = &s->cols[l->actor];
	int rc = bus_client_publish(l->cl, topic, data, len, BUS_QOS_PROCESSED,
	                            NULL, NULL);
	if (rc == 0 && !strcmp(topic, DE_TOPIC_CAPABILITIES)) {
		co->caps_gen = co->ready_gen;
		co->caps_sent++;
	}
	sim_trace(s, "ctl %s %s %d", l->name, topic, rc);
	return rc;
}

/* The collector answered a stop (the agent's shutdown; lifecycle.stop
 * is not in the workload): as procmond, it closes its connection once
 * what is buffered is written, and exits. */
static void col_stop(void *host)
{
	struct link *l = host;
	struct sim *s = l->s;
	struct collector *co = &s->cols[l->actor];
	sim_trace(s, "stop %s", l->name);
	push(s, s->now + 5 * SIM_MS, EV_SHUT_EXIT, -1,
	     (uint64_t)l->actor << 32 | (uint32_t)co->pubinc);
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
	if (co && st == BUS_CLIENT_READY)
		sub_due(s, l); /* its control topics too (held_masks) */
	else if (co)
		l->sub_pending = false;
	/* what the agent has not acknowledged goes again, in order */
	if (co && st == BUS_CLIENT_READY) {
		co->ready_gen++; /* a new connection: capabilities first */
		intrude_collector(s, l);
	}
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

struct bus_client *make_client(struct sim *s, struct link *l)
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
void col_poll(struct sim *s, int i)
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

/* The longest a collector may stay dead once its agent heard it exit,
 * by the documented policy: restart delays double per exit in a row from
 * restart_delay up to restart_delay_max, an answered heartbeat ends the
 * streak. The model allows one exit more than it counted (an answer and
 * an exit crossing), and the exec's moment (sup_spawn). */
#define RESTART_SLACK_NS (50 * SIM_MS)

static uint64_t restart_bound(const struct sim *s, uint32_t exits)
{
	const struct de_policies *p = &s->sc->policies;
	uint64_t d = p->restart_delay_ns;
	for (uint32_t k = 0; k < exits && d < p->restart_delay_max_ns; k++)
		d *= 2;
	return (d < p->restart_delay_max_ns ? d : p->restart_delay_max_ns) +
	       RESTART_SLACK_NS;
}

void restart_check(struct sim *s, int i, bool over)
{
	struct collector *co = &s->cols[i];
	if (co->dead_since == UINT64_MAX)
		return;
	uint64_t bound = restart_bound(s, co->exits_in_row);
	if (s->now - co->dead_since > bound && !s->restart_fault[0]) {
		snprintf(s->restart_fault, sizeof(s->restart_fault),
		         "%s exited at %llu ms (%u in a row) and its agent had "
		         "not started it again %llu ms later (its restart "
		         "policy: within %llu ms)", s->links[co->link].name,
		         (unsigned long long)(co->dead_since / SIM_MS),
		         co->exits_in_row,
		         (unsigned long long)((s->now - co->dead_since) / SIM_MS),
		         (unsigned long long)(bound / SIM_MS));
		s->restart_fault_at = s->now;
	}
	if (over)
		co->dead_since = UINT64_MAX;
}

void col_spawn(struct sim *s, int i)
{
	struct collector *co = &s->cols[i];
	struct link *l = &s->links[co->link];
	if (co->alive)
		return;
	restart_check(s, i, true);
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
	                               .made = col_made, .stop = col_stop,
	                               .control = col_control};
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
	s->quiet = true; /* an actor that cannot start exits: not the point */
	int rc = bus_client_subscribe(l->cl, col_masks, 2, NULL, NULL);
	co->subscribed = rc == 0 || rc == BUS_ECLOSED; /* recorded: not yet
	                                                  connected */
	bus_client_start(l->cl);
	s->quiet = false;
	bus_client_on_tick(l->cl);
	if (s->now + co->spec->poll_ns < s->poll_until)
		push(s, s->now + co->spec->poll_ns, EV_POLL, -1,
		     (uint64_t)i << 32 | (uint32_t)co->pubinc);
}

/* At the source, whatever the broker's policy: collector i handed every
 * event it made to the bus at least once, or holds it still (its outbox
 * keeps what the agent has not acknowledged, from its first entry on) —
 * checked when it dies and at the end. One made and neither is gone
 * without a trace: no policy or fault excuses it (what a dead collector
 * still held is the stream check's). */
void source_check(struct sim *s, int i)
{
	const struct collector *co = &s->cols[i];
	if (!co->col_init || s->source_fault[0])
		return;
	const struct pubinc *pi = &s->pubs[co->pubinc];
	const struct de_outbox *o = &co->col.outbox;
	uint64_t held = o->n ? o->v[o->head].seq : UINT64_MAX;
	bool *sent = calloc(pi->n_ev + 1, sizeof(*sent));
	if (!sent)
		abort();
	for (size_t k = 0; k < pi->n; k++)
		if (pi->v[k].seq >= 1 && pi->v[k].seq <= pi->n_ev)
			sent[pi->v[k].seq] = true;
	for (uint64_t q = 1; q <= pi->n_ev; q++)
		if (!sent[q] && q < held) {
			snprintf(s->source_fault, sizeof(s->source_fault),
			         "%s made event %llu and neither handed it to the "
			         "bus nor held it", s->links[co->link].name,
			         (unsigned long long)q);
			s->source_fault_at = s->now;
			break;
		}
	free(sent);
}

/* The collector process dies (SIGKILL, crash): its socket closes with what
 * it had written; the agent hears of it by SIGCHLD a moment later. */
void col_kill(struct sim *s, int i, const char *why)
{
	struct collector *co = &s->cols[i];
	struct link *l = &s->links[co->link];
	if (!co->alive)
		return;
	source_check(s, i);
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
static int sup_spawn(void *host, size_t idx, uint32_t *pid, char *why, size_t whylen)
{
	(void)why, (void)whylen;
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
		if (ok) {
			answered(s, &co->last_hb_ok, &co->healed_hb_ok);
			/* its streak ends (restart_bound), as the agent counts
			 * it: an answer of the running process to the request
			 * in flight (one that comes after the process died, or
			 * for an earlier request, ends nothing) */
			const struct de_sup_collector *sc = &s->sup.c[idx];
			if (co->alive && co->dead_since == UINT64_MAX &&
			    sc->hb_inflight && sc->hb_seq == seq)
				co->exits_in_row = 0;
		}
		sim_trace(s, "heartbeat %s %llu %s", s->sup.c[idx].bus_name,
		          (unsigned long long)seq, ok ? "ok" : detail);
	} else {
		if (ok)
			answered(s, &co->last_hc_ok, &co->healed_hc_ok);
		sim_trace(s, "health %s %llu %d", s->sup.c[idx].bus_name,
		          (unsigned long long)seq, health);
	}
}


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
void agent_boot(struct sim *s)
{
	const struct sim_scenario *sc = s->sc;
	struct link *l = &s->links[s->agent_link];
	s->agent_down = false;
	l->cl = make_client(s, l);
	const char *masks[] = {s->recv[s->n_recv - 1].masks[0],
	                       DE_TOPIC_CAPABILITIES,
	                       DE_TOPIC_COLLECTOR_SHUTDOWN,
	                       "control/broker/stats"};
	s->quiet = true;
	bus_client_subscribe(l->cl, masks, 4, NULL, NULL);
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
	struct de_agent_ops dops = {.now = sim_clock, .wall_ms = agent_wall_ms,
	                            .exchanged = exchanged};
	de_agent_free(&s->da); /* a crashed agent's capabilities are gone */
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
void agent_crash(struct sim *s)
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
	for (int i = 0; i < s->n_cols; i++) {
		restart_check(s, i, true); /* the next agent starts them all */
		s->cols[i].exits_in_row = 0;
		col_kill(s, i, "its agent died");
	}
}

/* ---- the operator ---------------------------------------------------------------------------
 * An administrator (admin.operator, root: the default ACL's admin rule)
 * asks the agent to restart a collector, then for its status: the agent's
 * shipped lifecycle.* handlers answer. A call lost to a fault is the
 * operator's to repeat (it does, once a second, until answered); an
 * answer that is an error or says something else than was asked is an
 * access failure: an admin must be served. A call is an op:
 * OPERATOR_RESTART(col) or OPERATOR_STATUS(col). */
static void operator_done(struct bus_client *c, int status,
                          const struct bus_rpc_result *r, void *arg)
{
	struct sim *s = ((struct link *)bus_client_host(c))->s;
	if (s->finishing)
		return;
	uint64_t op = (uintptr_t)arg;
	int col = (int)(op >> 1);
	bool restart = !(op & 1);
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
		push(s, s->now + SIM_S, EV_OPERATOR, -1, op);
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
		operator_call(s, OPERATOR_STATUS(col));
}

void operator_call(struct sim *s, uint64_t op)
{
	struct link *l = &s->links[s->admin];
	const char *id = s->cols[op >> 1].spec->id;
	bool restart = !(op & 1);
	const char *method = restart ? "lifecycle.restart" : "lifecycle.status";
	Daemoneye__RestartCollectorRequest rq =
		DAEMONEYE__RESTART_COLLECTOR_REQUEST__INIT;
	Daemoneye__CollectorStatusRequest sq =
		DAEMONEYE__COLLECTOR_STATUS_REQUEST__INIT;
	rq.collector_id = sq.collector_id = (char *)id;
	sim_trace(s, "operator calls %s %s", method, id);
	int rc = de_call(l->cl, DE_AGENT_NAME, method,
	                 restart ? &rq.base : &sq.base, &s->sc->policies,
	                 operator_done, (void *)(uintptr_t)op);
	if (rc) /* its output is full, or it is not up yet: again later */
		push(s, s->now + SIM_S, EV_OPERATOR, -1, op);
}

/* After the run: the agent stops as daemoneye-agent does at SIGTERM, on
 * the bus (control/agent/shutdown, de_sup_shutdown), while the fault
 * stream picks for each collector whether it obeys, crashes before it
 * can answer, or never hears it (then SIGTERM, then SIGKILL). */
void agent_shutdown(struct sim *s)
{
	struct link *l = &s->links[s->agent_link];
	for (int i = 0; i < s->n_cols; i++)
		if (!s->cols[i].alive ||
		    s->sup.c[i].state != DE_SUP_RUNNING)
			s->shut_skipped = true;
	if (s->agent_down || !l->cl ||
	    bus_client_state(l->cl) != BUS_CLIENT_READY)
		s->shut_skipped = true;
	if (s->shut_skipped) {
		sim_trace(s, "shutdown not exercised");
		return;
	}
	s->shutting = true;
	s->shut_t0 = s->now;
	struct sim_rng *g = &s->rng[SIM_RNG_FAULTS];
	for (int i = 0; i < s->n_cols; i++) {
		struct collector *co = &s->cols[i];
		uint64_t k = sim_below(g, 4);
		co->shut_fault = k == 0 ? SHUT_CRASHES : k == 1 ? SHUT_DEAF
		                                                : SHUT_OBEYS;
		if (co->shut_fault == SHUT_CRASHES)
			/* around the time it answers (a few ms): before,
			 * while, or after */
			push(s, s->now + sim_below(g, 2 * SIM_MS), EV_SHUT_CRASH,
			     -1, (uint64_t)i << 32 | (uint32_t)co->pubinc);
		sim_trace(s, "shutdown plan %s %d", s->links[co->link].name,
		          co->shut_fault);
	}
	s->quiet = true;
	int rc = de_agent_shutdown(&s->da, s->now | 1, "the run ended", s->now);
	s->quiet = false;
	sim_trace(s, "agent shutdown published %d", rc);
}
