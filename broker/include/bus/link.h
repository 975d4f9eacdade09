/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link.h — one client core joined to a broker core in memory, sans I/O.
 *
 * The embedded broker's internal clients (net/host.c), the in-memory test
 * host (tests/memnet.c) and the simulator's embedded agent (sim/) move
 * their bytes with this one module, so what the tests and the simulator
 * prove of a link is what the shipped program runs.
 *
 * A link holds at most one write in flight each way, by reference (the
 * cores keep their buffers until the write completes), like a socket with
 * no buffer of its own:
 *   - the client's bytes reach the broker while it reads them (set_reading
 *     parks them: backpressure), at most the core's
 *     limits.read_bytes_per_turn_max in a turn (bus_link_turn starts one),
 *     like reads from a socket; the write completes when the broker has
 *     all of it;
 *   - the broker's bytes reach the client whole, unless a shape says
 *     otherwise; the write completes when the client has them;
 *   - a client's close reaches the broker after the bytes it wrote before
 *     it (a socket's EOF), even while the broker is not reading it; a
 *     broker's close is at once, like a reset: what was in flight is lost.
 * A shape (tests, the simulator) may chunk, stall, lose or refuse.
 *
 * The host's ops call the bus_link_c_* (client side) and bus_link_b_*
 * (broker side) functions; bus_link_pump moves a set of links until
 * nothing moves or a turn's rounds are spent. Deterministic: time is the
 * host's clock, nothing is random.
 */
#ifndef BUS_LINK_H
#define BUS_LINK_H

#include "bus/bus.h"
#include "bus/client.h"

enum { BUS_LINK_C2B = 0, BUS_LINK_B2C = 1 };

struct bus_link;

/* A hand on the link (any member may be NULL). */
struct bus_link_shape {
	/* how many of want bytes may cross in direction dir now: 0 keeps
	 * them for a later step; *lose set: the bytes cross and vanish */
	size_t (*allow)(void *arg, int dir, size_t want, bool *lose);
	/* a connect is refused (the client sees BUS_EIO) */
	bool (*refuse)(void *arg);
	/* the link is about to break (bus_link_drop, or a close it moved):
	 * its state is still there to read, the connection still open */
	void (*dropping)(void *arg, const struct bus_link *l);
	void *arg;
};

struct bus_link {
	struct bus_core *core;  /* NULL: connects are refused */
	struct bus_client *cl;
	void *ctx;              /* the core's ctx for the connection */
	enum bus_conn_kind kind;
	bool has_ident;
	struct bus_ident ident; /* set on the connection when it opens */
	const struct bus_link_shape *shape;
	struct bus_link *next;  /* the host's list, for bus_link_pump */
	/* the host's clock: read at each core call (a client's handler may
	 * reach the core in between, with a later time) */
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	/* state: read, never written, by hosts */
	struct bus_conn *conn;
	bool connect_req, client_close, broker_close;
	bool reading;           /* the broker reads it */
	bool c_write;           /* a client write in flight */
	struct bus_iov c_iov;
	size_t c_off;           /* of c_iov, the broker has */
	bool b_write;           /* a broker write in flight */
	struct bus_iov *b_iov;
	size_t b_n, b_cap, b_i, b_off;
	size_t turn_bytes;      /* client bytes read this turn */
	uint64_t bytes;         /* crossed, both ways */
};

/* An idle link of client cl to core (either may be set later, before the
 * client asks to connect); its time is clock(clock_arg)'s. */
void bus_link_init(struct bus_link *l, struct bus_core *core,
                   struct bus_client *cl, void *ctx, enum bus_conn_kind kind,
                   uint64_t (*clock)(void *arg), void *clock_arg);
void bus_link_free(struct bus_link *l);

/* The client's host ops. */
void bus_link_c_connect(struct bus_link *l);
void bus_link_c_write(struct bus_link *l, const struct bus_iov *iov, size_t n);
void bus_link_c_close(struct bus_link *l);
/* The broker's host ops for the link's connection. */
void bus_link_b_write(struct bus_link *l, const struct bus_iov *iov, size_t n);
void bus_link_b_set_reading(struct bus_link *l, bool reading);
void bus_link_b_close(struct bus_link *l);

/* A new turn: the per-turn read budget starts again. */
void bus_link_turn(struct bus_link *l);
/* Moves what the link has: a close, a connect, the client's bytes, the
 * broker's. True if anything moved. */
bool bus_link_step(struct bus_link *l);
/* Work the link has, for this turn or a later one (a spent budget, a
 * write a shape holds back). */
bool bus_link_busy(const struct bus_link *l);
/* When the link next has work: its clock's now if busy, else UINT64_MAX. */
uint64_t bus_link_next_deadline(const struct bus_link *l);
/* Breaks the link now: the core closes the connection, the client sees
 * BUS_ECLOSED, what was in flight is gone. */
void bus_link_drop(struct bus_link *l);

/* One turn of a list of links (first, linked by next; one clock) and
 * their core: up to rounds rounds of steps and flushes (core and
 * clients), until nothing moves. True if work is left for a later turn. */
bool bus_link_pump(struct bus_link *first, struct bus_core *core, int rounds);

#endif
