/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memnet.h — test-only wiring of client cores to a broker core in memory:
 * no sockets, a hand-driven clock, a seeded generator for jitter. Each link
 * is the shipped bus_link (bus/link.h), shaped: it can deliver in small
 * pieces, drop its connection once a given number of bytes has crossed
 * it, refuse connects, stall its client or lose what the client sends.
 * mn_run pumps every link until nothing moves.
 */
#ifndef BUS_TESTS_MEMNET_H
#define BUS_TESTS_MEMNET_H

#include "bus/bus.h"
#include "bus/client.h"
#include "bus/link.h"

#define MN_LINKS_MAX 16
#define MN_LOG_MAX 256

struct mn_link {
	struct memnet *net;
	int idx;
	struct bus_client *cl;
	struct bus_link link;   /* the shipped link (bus/link.h) */
	struct bus_link_shape shape;
	uint64_t drop_at; /* drop the connection when link.bytes reaches it */
	size_t chunk;     /* deliver at most this many bytes at a time */
	int refuse;       /* connects to fail */
	bool stalled;     /* client stops reading */
	bool blackhole;   /* client bytes vanish: the broker never sees them */
	/* what the client saw */
	char log[MN_LOG_MAX][160];
	int log_n;
	int states[64];
	int reasons[64];
	int states_n;
	int drains;
	int rpc_answer; /* 0 echo, else answer with this error code, or
	                   1 to ignore requests */
	/* set: requests go here instead (services tests) */
	void (*rpc_hook)(struct bus_client *c, const struct bus_rpc_request *r,
	                 void *arg);
	void *rpc_hook_arg;
};

struct memnet {
	struct bus_core *core;
	uint64_t now;
	uint64_t rng;
	struct mn_link l[MN_LINKS_MAX];
	int n;
};

void mn_init(struct memnet *n, struct bus_core_config *cfg);
void mn_free(struct memnet *n);
/* A client named name (cfg NULL: defaults), started. */
int mn_client(struct memnet *n, const char *name,
              const struct bus_client_config *cfg);
struct bus_client *mn_cl(struct memnet *n, int i);
void mn_run(struct memnet *n);
/* Moves the clock by ns in steps that stop at every deadline, running. */
void mn_advance(struct memnet *n, uint64_t ns);
/* Breaks link i now (both sides see the close). */
void mn_drop(struct memnet *n, int i);
void mn_log(struct mn_link *l, const char *fmt, ...);

#endif
