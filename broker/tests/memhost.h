/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memhost.h — the test-only in-memory host of the broker core: connections
 * are plain buffers, the clock is a number the test moves. Writes complete
 * only when the test runs the host (never inside a core call), unless the
 * connection is stalled (a reader that stopped reading). Bytes sent to a
 * connection the core stopped reading (backpressure) wait in the host, as
 * in a socket, until it reads again.
 */
#ifndef BUS_TESTS_MEMHOST_H
#define BUS_TESTS_MEMHOST_H

#include "bus/bus.h"
#include <stddef.h>

#define MH_CONNS_MAX 256

struct mh_conn {
	struct bus_conn *conn;
	uint8_t *out; /* bytes the broker wrote, not yet taken by the test */
	size_t out_len, out_cap;
	uint8_t *in;  /* bytes sent while the core was not reading */
	size_t in_len, in_cap;
	const struct bus_iov *iov_copy;
	struct bus_iov *iov;
	size_t iov_n;
	bool write_pending, stalled, reading, close_requested, closed;
	uint64_t writes;
};

struct memhost {
	struct bus_core *core;
	uint64_t now;
	struct mh_conn c[MH_CONNS_MAX];
	int n;
	uint64_t allocs; /* through the allocator hook */
	uint64_t fail_after; /* 0: never fail */
	int64_t live;        /* blocks the core holds (0 after bus_core_free) */
	uint64_t fail_once;  /* fail only the allocation of this number
	                        (allocs + 1 at the call); 0: none */
	bool skip_checks;    /* no invariant walk after each run (bulk setup) */
	uint32_t audits;     /* refusals the core reported */
	char last_audit[160]; /* "what name object" of the last */
};

void mh_init(struct memhost *mh, struct bus_core_config *cfg);
void mh_free(struct memhost *mh);
int mh_connect(struct memhost *mh, enum bus_conn_kind kind);
void mh_send(struct memhost *mh, int i, const void *data, size_t len);
/* Completes writes and closes until nothing changes; flushes each turn. */
void mh_run(struct memhost *mh);
void mh_advance(struct memhost *mh, uint64_t ns);
/* The peer went away (EOF): the core hears of it now. */
void mh_drop(struct memhost *mh, int i);
/* Connects and registers name; returns the index (asserts success). */
int mh_client(struct memhost *mh, const char *name, enum bus_conn_kind kind);
/* Handshake returning the broker's answer byte at step 5. */
int mh_handshake(struct memhost *mh, int i, const char *name, size_t len);
void mh_take(struct memhost *mh, int i, size_t n, uint8_t *dst);
/* Sends one client frame; returns op_id. */
uint32_t mh_frame(struct memhost *mh, int i, uint8_t op, uint8_t qos,
                  const void *payload, size_t len);
/* Builds "a\0b" style payloads: fields joined by \0 (last has none). */
size_t mh_join(uint8_t *out, const char *a, const char *b, const char *c);

struct mh_msg {
	uint8_t kind;
	uint32_t op_id;  /* ack */
	uint8_t result;  /* ack */
	char sender[300], topic[2048];
	uint8_t data[4096]; /* the first 4 KiB of data_len */
	size_t data_len;
	uint8_t realtime;
};
/* Parses the next frame the broker wrote to i; false if none is whole.
 * NOPs are skipped. */
bool mh_next(struct memhost *mh, int i, struct mh_msg *m);
/* Next ACK's result for op_id (asserts it is the next frame). */
int mh_ack(struct memhost *mh, int i, uint32_t op_id);

#endif
