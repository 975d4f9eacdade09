/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fzclient.h — a minimal in-harness host for the client core: a virtual
 * clock, writes that complete when the harness says, a log of what the
 * client reported (hashed, so two runs can be compared).
 */
#ifndef BUS_FZCLIENT_H
#define BUS_FZCLIENT_H

#include "fuzz.h"
#include "bus/client.h"

#include <string.h>

struct fzc {
	struct bus_client *c;
	uint64_t now, rng;
	bool write_pending, close_req, connect_req;
	uint64_t written;  /* bytes the client wrote */
	uint64_t whash;    /* of the bytes written, as one stream */
	uint64_t hash;     /* of everything reported, in order */
	int rpc_results;
};

static inline uint64_t fzc_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static inline void fzc_mix(struct fzc *z, const void *p, size_t n)
{
	z->hash = fzc_fnv(z->hash, p, n);
}

static uint64_t fzc_now(void *h) { return ((struct fzc *)h)->now; }
static uint64_t fzc_random(void *h) { return bus_splitmix64(&((struct fzc *)h)->rng); }
static void fzc_connect(void *h) { ((struct fzc *)h)->connect_req = true; }
static void fzc_close(void *h) { ((struct fzc *)h)->close_req = true; }
static void fzc_write(void *h, const struct bus_iov *iov, size_t n)
{
	struct fzc *z = h;
	FUZZ_CHECK(!z->write_pending && n == 1, "two writes in flight");
	z->write_pending = true;
	z->written += iov[0].len;
	z->whash = fzc_fnv(z->whash, iov[0].base, iov[0].len);
}

static void fzc_delivery(struct bus_client *c, const struct bus_delivery *d,
                         void *arg)
{
	(void)c;
	struct fzc *z = arg;
	FUZZ_CHECK(d->sender && (d->kind != BUS_OP_PUBLISH || d->topic),
	           "delivery without its names");
	fzc_mix(z, &d->kind, 1);
	fzc_mix(z, d->sender, strlen(d->sender));
	if (d->topic)
		fzc_mix(z, d->topic, strlen(d->topic));
	fzc_mix(z, d->data, d->len);
}

static void fzc_rpc(struct bus_client *c, const struct bus_rpc_request *r,
                    void *arg)
{
	struct fzc *z = arg;
	fzc_mix(z, "rpc", 3);
	if (r->method)
		fzc_mix(z, r->method, strlen(r->method));
	fzc_mix(z, r->params, r->params_len);
	if (r->call_id)
		bus_client_rpc_reply(c, r->sender, r->call_id, r->params,
		                     r->params_len);
}

static void fzc_state(struct bus_client *c, enum bus_client_state st,
                      int reason, void *arg)
{
	(void)c;
	struct fzc *z = arg;
	fzc_mix(z, &st, sizeof(st));
	fzc_mix(z, &reason, sizeof(reason));
}

static void fzc_rpc_done(struct bus_client *c, int status,
                         const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct fzc *z = arg;
	z->rpc_results++;
	fzc_mix(z, &status, sizeof(status));
	fzc_mix(z, &r->code, sizeof(r->code));
	fzc_mix(z, r->data, r->len);
}

static const struct bus_client_ops fzc_ops = {fzc_now, fzc_random,
                                              fzc_connect, fzc_write,
                                              fzc_close};

/* A client connected (handshake not done) with or without an RPC handler. */
static inline void fzc_start(struct fzc *z, bool rpc)
{
	memset(z, 0, sizeof(*z));
	z->now = 1000000000ull;
	z->rng = 1;
	z->hash = z->whash = 0xcbf29ce484222325ull;
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = "fz";
	cfg.payload_bytes_max = 1 << 16;
	struct bus_client_handlers h = {fzc_delivery, rpc ? fzc_rpc : NULL,
	                                fzc_state, NULL, z};
	z->c = bus_client_new(&cfg, &fzc_ops, z, &h);
	FUZZ_CHECK(z->c, "client");
	bus_client_start(z->c);
	bus_client_on_tick(z->c);
	FUZZ_CHECK(z->connect_req, "no connect");
	bus_client_on_connected(z->c);
}

/* Feeds bytes; completes the client's writes as a host would. */
static inline void fzc_feed(struct fzc *z, const uint8_t *p, size_t n)
{
	if (!z->close_req)
		bus_client_on_bytes(z->c, p, n);
	bus_client_flush(z->c);
	while (z->write_pending && !z->close_req) {
		z->write_pending = false;
		bus_client_on_written(z->c, 0);
		bus_client_flush(z->c);
	}
}

static inline void fzc_end(struct fzc *z)
{
	bus_client_free(z->c); /* fails what is pending: callbacks run */
}

#endif
