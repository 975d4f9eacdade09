/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core — the whole sans-I/O broker core on the in-memory host, driven by a
 * small command language so the fuzzer reaches deep states quickly:
 * connections of each kind, handshakes, raw bytes, well-formed subscribe /
 * publish / message / broadcast frames, write completions, time passing,
 * peers vanishing and readers stalling. After every step the host checks
 * the core's invariants (bus_core_check_invariants: subscriptions owned by
 * live clients, queue and broker-wide byte accounting within the caps,
 * sorted names, consistent counters); a broken one aborts.
 *
 * Input: 4 bytes of configuration (queue frames, policies, limits), then
 * commands (see step()).
 */
#include "fuzz.h"
#include "../broker/core/internal.h"
#include "../broker/tests/memhost.h"

#include <string.h>

#define CONNS_MAX 12

static struct memhost mh;

static int pick(struct fz *f)
{
	if (mh.n == 0)
		return -1;
	return fz_u8(f) % mh.n;
}

static void frame(int i, uint8_t op, uint8_t qos, const uint8_t *a, size_t al,
                  const uint8_t *b, size_t bl, bool sep)
{
	static uint8_t buf[1200];
	size_t len = al + (sep ? 1 : 0) + bl;
	if (len + 9 > sizeof(buf) || mh.c[i].closed || !mh.c[i].reading)
		return;
	static uint32_t op_id = 1;
	bus__put_u32le(buf, op_id++);
	buf[4] = (uint8_t)(op | (qos & 3) << 6);
	bus__put_u32le(buf + 5, (uint32_t)len);
	if (al)
		memcpy(buf + 9, a, al);
	if (sep)
		buf[9 + al] = 0;
	if (bl)
		memcpy(buf + 9 + al + (sep ? 1 : 0), b, bl);
	mh_send(&mh, i, buf, 9 + len);
}

static void step(struct fz *f)
{
	uint8_t op = fz_u8(f) % 12;
	const uint8_t *a, *b;
	size_t al, bl;
	int i;
	switch (op) {
	case 0: /* connect */
		if (mh.n < CONNS_MAX)
			mh_connect(&mh, (enum bus_conn_kind)(fz_u8(f) % 3));
		break;
	case 1: /* a valid greeting and a name of the fuzzer's choice */
		if ((i = pick(f)) < 0 || mh.c[i].closed)
			break;
		al = fz_bytes(f, fz_u8(f) % 24, &a);
		{
			uint8_t g[5] = {0xEB, 1, 0, (uint8_t)al, 0};
			mh_send(&mh, i, g, 5);
			mh_send(&mh, i, a, al);
		}
		break;
	case 2: /* raw bytes */
		if ((i = pick(f)) < 0 || !mh.c[i].reading)
			break;
		al = fz_bytes(f, fz_u16(f) % 512, &a);
		mh_send(&mh, i, a, al);
		break;
	case 3: /* subscribe / unsubscribe / exclude / unexclude */
		if ((i = pick(f)) < 0)
			break;
		{
			uint8_t which = BUS_OP_SUBSCRIBE + fz_u8(f) % 4;
			uint8_t qos = fz_u8(f);
			al = fz_bytes(f, fz_u8(f) % 64, &a);
			frame(i, which, qos, a, al, NULL, 0, false);
		}
		break;
	case 4: /* publish: topic \0 data */
	case 5: /* message: target \0 data */
	case 6: /* broadcast: mask \0 data */
		if ((i = pick(f)) < 0)
			break;
		{
			uint8_t qos = fz_u8(f);
			al = fz_bytes(f, fz_u8(f) % 48, &a);
			bl = fz_bytes(f, fz_u8(f) % 200, &b);
			uint8_t k = op == 4 ? BUS_OP_PUBLISH
			            : op == 5 ? BUS_OP_MESSAGE : BUS_OP_BROADCAST;
			frame(i, k, qos, a, al, b, bl, true);
		}
		break;
	case 7: /* publish_for: topic \0 receiver \0 data */
		if ((i = pick(f)) < 0)
			break;
		al = fz_bytes(f, fz_u8(f) % 48, &a);
		{
			static uint8_t tb[120];
			size_t tl = al;
			if (tl)
				memcpy(tb, a, tl);
			tb[tl++] = 0;
			bl = fz_bytes(f, fz_u8(f) % 24, &b);
			if (bl)
				memcpy(tb + tl, b, bl);
			tl += bl;
			frame(i, BUS_OP_PUBLISH_FOR, fz_u8(f), tb, tl,
			      (const uint8_t *)"d", 1, true);
		}
		break;
	case 8: /* time passes */
		mh_advance(&mh, (uint64_t)fz_u16(f) * 1000000ull);
		break;
	case 9: /* the peer goes away */
		if ((i = pick(f)) >= 0)
			mh_drop(&mh, i);
		break;
	case 10: /* a reader stops or resumes */
		if ((i = pick(f)) >= 0)
			mh.c[i].stalled = !mh.c[i].stalled;
		mh_run(&mh);
		break;
	case 11: /* the test takes what was written (a reader reads) */
		if ((i = pick(f)) >= 0)
			mh_take(&mh, i, mh.c[i].out_len, NULL);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4 || size > 16 * 1024)
		return 0;
	struct fz f = {data, size};
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, fz_u8(&f) & 1);
	uint8_t q = fz_u8(&f), p = fz_u8(&f), l = fz_u8(&f);
	cfg.limits.queue_frames_max = 2 + q % 64;
	cfg.limits.queue_bytes_max = 64 + (uint64_t)(q >> 2) * 64;
	cfg.limits.queued_bytes_total_max = 256 + (uint64_t)l * 64;
	cfg.limits.connections_max = 1 + l % 8;
	cfg.limits.subscriptions_max = 1 + (l >> 3) % 8;
	cfg.limits.exclusions_max = 1 + (l >> 3) % 8;
	cfg.limits.topic_bytes_max = 8 + l % 40;
	cfg.limits.topic_levels_max = 1 + l % 6;
	cfg.limits.payload_bytes_max = 256 + (uint32_t)p * 4;
	cfg.limits.name_bytes_max = 4 + p % 20;
	cfg.slow_policy = (enum bus_slow_policy)(p % 2);
	cfg.internal_slow_policy = (enum bus_slow_policy)((p >> 1) % 3);
	cfg.block_deadline_ns = 1000000ull * (1 + p % 50);
	cfg.star_is_plus = p & 0x40;
	cfg.force_register = p & 0x80;
	const char *what;
	if (bus_core_config_check(&cfg, &what))
		return 0;
	mh_init(&mh, &cfg);
	for (int steps = 0; fz_more(&f) && steps < 400; steps++)
		step(&f);
	mh_advance(&mh, 20ull * 1000000000ull); /* every deadline passes */
	mh_free(&mh);
	return 0;
}
