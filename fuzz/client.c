/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client — the client core reading whatever a broker (or anything posing
 * as one) sends: greeting, handshake answers, ACKs, deliveries, RPC.
 *
 * Input: a byte seeding the cut into reads, a flags byte (bit 0: an RPC
 * handler is set, bit 1: an RPC call to "srv" is pending, bit 2: a QoS-1
 * publish is pending), then the broker's bytes from the greeting on.
 * Property: fed whole or cut at the seeded points, the client reports the
 * same things in the same order and, while the connection lives, writes
 * the same bytes.
 */
#include "fzclient.h"

static void nop_done(struct bus_client *c, int status, void *arg)
{
	(void)c;
	fzc_mix(arg, &status, sizeof(status));
}

static uint64_t run(const uint8_t *d, size_t n, uint8_t seed, uint8_t flags,
                    bool split, uint64_t *written)
{
	struct fzc z;
	fzc_start(&z, flags & 1);
	uint64_t r = seed;
	size_t off = 0;
	bool armed = false;
	while (off < n) {
		size_t k = n - off;
		if (split)
			k = 1 + (size_t)(bus_splitmix64(&r) % (k < 32 ? k : 32));
		fzc_feed(&z, d + off, k);
		off += k;
		/* once registered, start what the flags ask for (at the same
		 * byte offset in both runs: after the read that made it ready) */
		if (!armed && bus_client_state(z.c) == BUS_CLIENT_READY) {
			armed = true;
			if (flags & 2)
				bus_client_rpc_call(z.c, "srv", "m", "p", 1, NULL,
				                    fzc_rpc_done, &z);
			if (flags & 4)
				bus_client_publish(z.c, "t", "x", 1, 1, nop_done,
				                   &z);
			fzc_feed(&z, NULL, 0);
		}
		z.now += 1000;
		bus_client_on_tick(z.c);
	}
	/* bytes still buffered when the connection fails are never written,
	 * and how many that is depends on the cut: compare live runs only */
	*written = z.close_req ? 0 : z.whash ^ z.written;
	uint64_t h = z.hash;
	fzc_end(&z);
	FUZZ_CHECK(z.rpc_results <= 1, "an RPC call answered %d times",
	           z.rpc_results);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 64 * 1024)
		return 0;
	uint64_t w1, w2;
	/* "ready" must be reached at the same offset in both runs for the
	 * comparison to hold: the whole run arms after its one read, so only
	 * inputs that register in their first read are compared whole */
	uint64_t h1 = run(data + 2, size - 2, data[0], data[1], true, &w1);
	uint64_t h2 = run(data + 2, size - 2, data[0], data[1], true, &w2);
	FUZZ_CHECK(h1 == h2 && w1 == w2, "the same input behaved differently");
	if (!(data[1] & 6)) { /* nothing armed: whole == cut */
		uint64_t h3 = run(data + 2, size - 2, data[0], data[1], false,
		                  &w2);
		FUZZ_CHECK(h1 == h3 && w1 == w2,
		           "output depends on how reads were cut");
	}
	return 0;
}
