/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame — the client->broker frame decoder.
 *
 * Input: one byte that seeds how the stream is cut into reads, then the
 * bytes a registered client sends. Properties:
 *  - bus__frame_decode walked over the stream: a decoded frame lies inside
 *    the buffer, has a known op (or is a ping without payload), and every
 *    strict prefix of it decodes as "need more";
 *  - the broker core fed the stream whole and fed it cut into reads at the
 *    seeded points writes byte-identical output to the sender and to a
 *    subscriber of "#", and closes the sender in both or neither.
 */
#include "fuzz.h"
#include "../broker/core/internal.h"
#include "../broker/tests/memhost.h"

#include <string.h>

#define INPUT_MAX (64u << 10) /* < queue_frames_max frames of 9+ bytes */

static void check_decoder(const uint8_t *d, size_t n, uint32_t limit)
{
	size_t off = 0;
	while (off < n) {
		struct bus_frame f;
		const char *why = NULL;
		enum bus_decode r =
		        bus__frame_decode(d + off, n - off, limit, &f, &why);
		if (r == BUS_DECODE_ERROR) {
			FUZZ_CHECK(why != NULL, "an error without a reason");
			return;
		}
		if (r == BUS_DECODE_NEED_MORE)
			return;
		FUZZ_CHECK(f.consumed >= BUS_CLIENT_HDR_BYTES &&
		                   f.consumed <= n - off,
		           "consumed %zu of %zu", f.consumed, n - off);
		FUZZ_CHECK(f.len == f.consumed - BUS_CLIENT_HDR_BYTES &&
		                   f.payload == d + off + BUS_CLIENT_HDR_BYTES,
		           "payload outside its frame");
		FUZZ_CHECK(f.len <= limit, "over the payload limit");
		FUZZ_CHECK(f.op == BUS_OP_NOP ? f.len == 0 : bus__op_valid(f.op),
		           "op %#x", f.op);
		size_t cuts[] = {0, 1, BUS_CLIENT_HDR_BYTES - 1,
		                 BUS_CLIENT_HDR_BYTES, f.consumed - 1};
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			struct bus_frame g;
			if (cuts[i] >= f.consumed)
				continue;
			FUZZ_CHECK(bus__frame_decode(d + off, cuts[i], limit, &g,
			                             &why) == BUS_DECODE_NEED_MORE,
			           "prefix %zu of a %zu-byte frame", cuts[i],
			           f.consumed);
		}
		off += f.consumed;
	}
}

struct outcome {
	uint8_t *sender, *sub;
	size_t sender_len, sub_len;
	bool closed;
};

static void run_core(const uint8_t *d, size_t n, uint8_t seed, bool split,
                     struct outcome *o)
{
	static struct memhost mh;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	cfg.limits.payload_bytes_max = 4096; /* reachable by the fuzzer */
	cfg.limits.topic_bytes_max = 64;
	cfg.limits.topic_levels_max = 8;
	cfg.limits.subscriptions_max = 16;
	mh_init(&mh, &cfg);
	int s = mh_client(&mh, "sub", BUS_KIND_LOCAL_IPC);
	static const uint8_t sub_all[] = {1, 0, 0, 0, 0x02, 1, 0, 0, 0, '#'};
	mh_send(&mh, s, sub_all, sizeof(sub_all));
	mh_take(&mh, s, mh.c[s].out_len, NULL);
	int c = mh_client(&mh, "fz", BUS_KIND_LOCAL_IPC);
	mh_take(&mh, c, mh.c[c].out_len, NULL);
	uint64_t r = seed;
	size_t off = 0;
	while (off < n) {
		size_t k = n - off;
		if (split)
			k = 1 + (size_t)(bus_splitmix64(&r) % (k < 64 ? k : 64));
		mh_send(&mh, c, d + off, k);
		off += k;
	}
	mh_run(&mh);
	o->sender_len = mh.c[c].out_len;
	o->sender = malloc(o->sender_len + 1);
	memcpy(o->sender, mh.c[c].out, o->sender_len);
	o->sub_len = mh.c[s].out_len;
	o->sub = malloc(o->sub_len + 1);
	memcpy(o->sub, mh.c[s].out, o->sub_len);
	o->closed = mh.c[c].closed || mh.c[c].close_requested;
	mh_free(&mh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > INPUT_MAX)
		return 0;
	uint8_t seed = data[0];
	const uint8_t *d = data + 1;
	size_t n = size - 1;
	check_decoder(d, n, 4096);
	check_decoder(d, n, UINT32_MAX);
	struct outcome whole, cut;
	run_core(d, n, seed, false, &whole);
	run_core(d, n, seed, true, &cut);
	FUZZ_CHECK(whole.closed == cut.closed, "closed %d vs %d", whole.closed,
	           cut.closed);
	FUZZ_CHECK(whole.sender_len == cut.sender_len &&
	                   !memcmp(whole.sender, cut.sender, whole.sender_len),
	           "sender output differs (%zu vs %zu bytes)", whole.sender_len,
	           cut.sender_len);
	FUZZ_CHECK(whole.sub_len == cut.sub_len &&
	                   !memcmp(whole.sub, cut.sub, whole.sub_len),
	           "subscriber output differs (%zu vs %zu bytes)", whole.sub_len,
	           cut.sub_len);
	free(whole.sender);
	free(whole.sub);
	free(cut.sender);
	free(cut.sub);
	return 0;
}
