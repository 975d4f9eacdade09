/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link.c — a client core and the broker core joined in memory (link.h).
 */
#include "bus/link.h"
#include "internal.h" /* BUS_ASSERT */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void bus_link_init(struct bus_link *l, struct bus_core *core,
                   struct bus_client *cl, void *ctx, enum bus_conn_kind kind,
                   uint64_t (*clock)(void *arg), void *clock_arg)
{
	memset(l, 0, sizeof(*l));
	l->core = core;
	l->cl = cl;
	l->ctx = ctx;
	l->kind = kind;
	l->clock = clock;
	l->clock_arg = clock_arg;
}

static uint64_t now(const struct bus_link *l) { return l->clock(l->clock_arg); }

void bus_link_free(struct bus_link *l)
{
	free(l->b_iov);
	l->b_iov = NULL;
	l->b_cap = 0;
}

void bus_link_c_connect(struct bus_link *l) { l->connect_req = true; }

void bus_link_c_write(struct bus_link *l, const struct bus_iov *iov, size_t n)
{
	BUS_ASSERT(!l->c_write && n == 1); /* the client core writes one buffer */
	(void)n;
	l->c_iov = iov[0];
	l->c_off = 0;
	l->c_write = true;
}

void bus_link_c_close(struct bus_link *l) { l->client_close = true; }

void bus_link_b_write(struct bus_link *l, const struct bus_iov *iov, size_t n)
{
	BUS_ASSERT(!l->b_write);
	if (l->b_cap < n) {
		struct bus_iov *p = realloc(l->b_iov, sizeof(*p) * n);
		if (!p) { /* cannot hold the write: the link fails */
			l->broker_close = true;
			return;
		}
		l->b_iov = p;
		l->b_cap = n;
	}
	memcpy(l->b_iov, iov, sizeof(*iov) * n);
	l->b_n = n;
	l->b_i = l->b_off = 0;
	l->b_write = true;
}

void bus_link_b_set_reading(struct bus_link *l, bool reading)
{
	l->reading = reading;
}

void bus_link_b_close(struct bus_link *l) { l->broker_close = true; }

void bus_link_turn(struct bus_link *l) { l->turn_bytes = 0; }

void bus_link_drop(struct bus_link *l)
{
	if (l->shape && l->shape->dropping)
		l->shape->dropping(l->shape->arg, l);
	l->connect_req = l->client_close = l->broker_close = false;
	l->c_write = l->b_write = false;
	l->reading = false;
	if (l->conn) {
		struct bus_conn *c = l->conn;
		l->conn = NULL;
		bus_core_on_close(l->core, c, now(l));
	}
	bus_client_on_close(l->cl, BUS_ECLOSED); /* no-op when not open */
}

/* Of want bytes in direction dir, how many cross now; *lose: they vanish. */
static size_t allowance(const struct bus_link *l, int dir, size_t want,
                        bool *lose)
{
	*lose = false;
	if (!l->shape || !l->shape->allow || !want)
		return want;
	size_t k = l->shape->allow(l->shape->arg, dir, want, lose);
	return k < want ? k : want;
}

/* A client's close, held (like a socket's EOF) until the bytes it wrote
 * before it are through and the broker reads again. */
static bool close_due(const struct bus_link *l)
{
	return l->broker_close ||
	       (l->client_close && !l->c_write && (l->reading || !l->conn));
}

static void open_conn(struct bus_link *l)
{
	l->connect_req = false;
	if (l->shape && l->shape->refuse && l->shape->refuse(l->shape->arg)) {
		bus_client_on_close(l->cl, BUS_EIO);
		return;
	}
	l->conn = l->core ? bus_core_on_connect(l->core, l->ctx, l->kind, "",
	                                        "", now(l))
	                  : NULL;
	if (!l->conn) {
		bus_client_on_close(l->cl, BUS_ECLOSED);
		return;
	}
	l->reading = true;
	if (l->has_ident)
		bus_core_set_ident(l->core, l->conn, &l->ident);
	bus_client_on_connected(l->cl);
}

static bool move_c2b(struct bus_link *l)
{
	size_t budget = bus_core_config_get(l->core)->limits.read_bytes_per_turn_max;
	if (l->turn_bytes >= budget)
		return false;
	size_t k = l->c_iov.len - l->c_off;
	if (k > budget - l->turn_bytes)
		k = budget - l->turn_bytes;
	bool lose;
	k = allowance(l, BUS_LINK_C2B, k, &lose);
	bool moved = false;
	if (k) {
		const uint8_t *p = (const uint8_t *)l->c_iov.base + l->c_off;
		l->c_off += k;
		l->turn_bytes += k;
		l->bytes += k;
		if (!lose)
			bus_core_on_bytes(l->core, l->conn, p, k, now(l));
		moved = true;
	}
	/* the bytes may have closed the link (the broker refused a frame):
	 * then the write dies with the link, half read */
	BUS_ASSERT(l->c_off <= l->c_iov.len);
	if (l->c_write && l->c_off == l->c_iov.len && !l->broker_close) {
		l->c_write = false;
		bus_client_on_written(l->cl, 0);
		moved = true;
	}
	return moved;
}

static bool move_b2c(struct bus_link *l)
{
	bool moved = false;
	/* the client may close or be closed by its callbacks: stop feeding
	 * it as soon as the link is to close */
	while (l->b_i < l->b_n && !l->client_close && !l->broker_close) {
		const struct bus_iov *v = &l->b_iov[l->b_i];
		size_t want = v->len - l->b_off;
		if (want) {
			bool lose;
			size_t k = allowance(l, BUS_LINK_B2C, want, &lose);
			if (!k)
				break;
			l->b_off += k;
			l->bytes += k;
			moved = true;
			if (!lose)
				bus_client_on_bytes(l->cl,
				                    (const uint8_t *)v->base +
				                            l->b_off - k,
				                    k);
			if (k < want)
				break; /* the rest in a later step */
		}
		l->b_i++;
		l->b_off = 0;
	}
	BUS_ASSERT(l->b_i <= l->b_n);
	if (l->b_i == l->b_n || l->client_close || l->broker_close) {
		/* done, or the rest dies with the link */
		l->b_write = false;
		if (l->conn)
			bus_core_on_written(l->core, l->conn, 0, now(l));
		moved = true;
	}
	return moved;
}

bool bus_link_step(struct bus_link *l)
{
	if (close_due(l)) {
		bus_link_drop(l);
		return true;
	}
	bool moved = false;
	if (l->connect_req) {
		open_conn(l);
		if (!l->conn)
			return true; /* refused */
		moved = true;
	}
	if (l->c_write && l->conn && l->reading)
		moved |= move_c2b(l);
	if (l->b_write && l->conn)
		moved |= move_b2c(l);
	return moved;
}

/* A spent turn's budget is work for the next turn; bytes a shape holds
 * back wait for whoever holds them (a test), not for a turn. */
bool bus_link_busy(const struct bus_link *l)
{
	bool lose;
	return l->connect_req || close_due(l) ||
	       (l->c_write && l->conn && l->reading &&
	        allowance(l, BUS_LINK_C2B, 1, &lose)) ||
	       (l->b_write && l->conn &&
	        (l->b_i == l->b_n || allowance(l, BUS_LINK_B2C, 1, &lose)));
}

uint64_t bus_link_next_deadline(const struct bus_link *l)
{
	return bus_link_busy(l) ? now(l) : UINT64_MAX;
}

bool bus_link_pump(struct bus_link *first, struct bus_core *core, int rounds)
{
	for (struct bus_link *l = first; l; l = l->next)
		bus_link_turn(l);
	bool busy = false;
	for (int round = 0; round < rounds; round++) {
		bool moved = false;
		for (struct bus_link *l = first; l; l = l->next) {
			bus_client_flush(l->cl);
			moved |= bus_link_step(l);
		}
		if (core && first)
			bus_core_flush(core, now(first));
		busy = false;
		for (struct bus_link *l = first; l; l = l->next) {
			bus_client_flush(l->cl);
			busy |= bus_link_busy(l);
		}
		if (!moved && !busy)
			break;
	}
	return busy;
}
