/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpc — the RPC layer (PROTOCOL.md §6) on both sides.
 *
 * Input: a mode byte, then a payload.
 *  - broker side (mode bit 0 clear): a registered client sends a MESSAGE
 *    to .broker. With mode bit 1 the payload is "method index, params" and
 *    the harness builds a well-formed request (so the MessagePack params
 *    of test/info/stats/client.list/benchmark.test get explored); else the
 *    payload is the whole RPC frame. Whatever the broker answers must be
 *    well-formed: ACKs and MESSAGEs from .broker whose RPC reply or error
 *    echoes the request's call_id.
 *  - client side (mode bit 0 set): a client with a pending call to "srv"
 *    and an RPC handler receives a MESSAGE from "srv" (or, with mode bit
 *    2, from "other") carrying the payload, with the pending call's id
 *    patched in when bit 1 is set. The call completes at most once.
 */
#include "fzclient.h"
#include "../broker/core/internal.h"
#include "../broker/tests/memhost.h"

static const char *methods[] = {"test", "info", "stats", "client.list",
                                "benchmark.test", "nope", ""};

static void broker_side(uint8_t mode, const uint8_t *p, size_t n)
{
	static struct memhost mh;
	static uint8_t req[70000];
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	mh_init(&mh, &cfg);
	int c = mh_client(&mh, "fz", BUS_KIND_LOCAL_IPC);
	mh_client(&mh, "other.client", BUS_KIND_TCP);
	mh_take(&mh, c, mh.c[c].out_len, NULL);
	size_t len = 0;
	memcpy(req, ".broker", 8);
	len = 8;
	uint32_t call_id = 0x01020304;
	if (mode & 2) {
		const char *m = methods[(n ? p[0] : 0) % 7];
		req[len++] = BUS_RPC_REQUEST;
		bus__put_u32le(req + len, call_id);
		len += 4;
		memcpy(req + len, m, strlen(m) + 1);
		len += strlen(m) + 1;
		if (n) {
			p++;
			n--;
		}
	} else if (n >= 5 && p[0] == BUS_RPC_REQUEST) {
		call_id = bus__get_u32le(p + 1);
	}
	if (n > sizeof(req) - len)
		n = sizeof(req) - len;
	memcpy(req + len, p, n);
	len += n;
	uint8_t hdr[9] = {9, 0, 0, 0, BUS_OP_MESSAGE | (1 << 6)};
	bus__put_u32le(hdr + 5, (uint32_t)len);
	mh_send(&mh, c, hdr, 9);
	mh_send(&mh, c, req, len);
	mh_run(&mh);
	/* everything the broker wrote back parses */
	const uint8_t *o = mh.c[c].out;
	size_t on = mh.c[c].out_len, off = 0;
	while (off < on) {
		FUZZ_CHECK(on - off >= 6, "a partial frame");
		if (o[off] == BUS_OP_ACK) {
			FUZZ_CHECK(bus__get_u32le(o + off + 1) == 9, "ACK id");
			off += 6;
			continue;
		}
		uint32_t flen = bus__get_u32le(o + off + 1);
		FUZZ_CHECK(flen <= on - off - 6, "frame past the output");
		const uint8_t *b = o + off + 6;
		if (o[off] == BUS_OP_MESSAGE) {
			FUZZ_CHECK(flen > 8 && !memcmp(b, ".broker", 8),
			           "a message not from .broker");
			const uint8_t *r = b + 8;
			size_t rl = flen - 8;
			FUZZ_CHECK(rl >= 5 && (r[0] == BUS_RPC_REPLY ||
			                       r[0] == BUS_RPC_ERROR),
			           "not an RPC reply");
			FUZZ_CHECK(bus__get_u32le(r + 1) == call_id,
			           "reply to another call");
			FUZZ_CHECK(r[0] == BUS_RPC_REPLY || rl >= 7,
			           "short error");
		}
		off += 6 + flen;
	}
	mh_free(&mh);
}

static void client_side(uint8_t mode, const uint8_t *p, size_t n)
{
	struct fzc z;
	fzc_start(&z, true);
	static const uint8_t hs[] = {0xEB, 1, 0, 1, 1};
	fzc_feed(&z, hs, sizeof(hs));
	FUZZ_CHECK(bus_client_state(z.c) == BUS_CLIENT_READY, "handshake");
	struct bus_rpc_policy pol = {.timeout_ns = 1000000000ull, .retries = 1};
	FUZZ_CHECK(bus_client_rpc_call(z.c, "srv", "m", NULL, 0, &pol,
	                               fzc_rpc_done, &z) == 0,
	           "call");
	fzc_feed(&z, NULL, 0);
	static uint8_t f[70000];
	if (n > sizeof(f) - 16)
		n = sizeof(f) - 16;
	const char *from = mode & 4 ? "other" : "srv";
	size_t fl = strlen(from) + 1;
	f[0] = BUS_OP_MESSAGE;
	bus__put_u32le(f + 1, (uint32_t)(fl + n));
	f[5] = 0;
	memcpy(f + 6, from, fl);
	memcpy(f + 6 + fl, p, n);
	if ((mode & 2) && n >= 5)
		bus__put_u32le(f + 6 + fl + 1, 0x00010001); /* the call's id */
	fzc_feed(&z, f, 6 + fl + n);
	fzc_feed(&z, f, 6 + fl + n); /* a duplicate answer changes nothing */
	z.now += 2000000000ull;
	bus_client_on_tick(z.c); /* the retry, then the timeout */
	z.now += 2000000000ull;
	bus_client_on_tick(z.c);
	FUZZ_CHECK(z.rpc_results == 1, "the call completed %d times",
	           z.rpc_results);
	fzc_end(&z);
	FUZZ_CHECK(z.rpc_results == 1, "completed again at free");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	if (data[0] & 1)
		client_side(data[0], data + 1, size - 1);
	else
		broker_side(data[0], data + 1, size - 1);
	return 0;
}
