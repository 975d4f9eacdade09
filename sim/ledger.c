/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ledger.c — where the frames of one direction of a connection end.
 *
 * The accounting check holds the broker's frame counters to what the
 * connections carried. Bytes die in flight — a reset or a crash, a close
 * with a write half read, frames read and never handled, the rest of a
 * read after the frame a side closed on — so "what the client sent" is
 * not what the broker must have read. The ledger reads each stream as it
 * is written, with the wire's framing (the protocol's, not the cores'
 * code), and keeps where every counted frame ends. Given the offset a side
 * has reached — the writer's completed writes, the bytes the reader has
 * taken — it says exactly how many frames that side must have counted:
 * the accounting compares every run, in flight or not.
 *
 * What counts, on both sides: every frame but a keepalive NOP (an ACK
 * counts); the handshake is no frame. Client to broker: the greeting's
 * echo (3 bytes), a u16 name length and the name, then frames of a 9-byte
 * header (op_id u32, op | qos << 6, length u32) and the payload. Broker to
 * client: the greeting (3) and two result bytes, then ACKs (6 bytes) and
 * frames of a 6-byte header (kind, length u32, reserved) and the payload.
 */
#include "simint.h"

#include <stdlib.h>
#include <string.h>

enum { LG_HELLO, LG_NAMELEN, LG_FRAMES };
enum { C2B_HDR = 9, B2C_HDR = 6 };

void ledger_reset(struct ledger *g, int dir)
{
	free(g->ends);
	memset(g, 0, sizeof(*g));
	g->dir = (uint8_t)dir;
	g->phase = LG_HELLO;
	g->skip = dir == BUS_LINK_C2B ? 3 : 5;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void record(struct ledger *g)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->ends = realloc(g->ends, g->cap * sizeof(*g->ends));
		if (!g->ends)
			abort();
	}
	g->ends[g->n++] = g->pushed;
}

/* A header is whole: what follows it, and whether it is a counted frame. */
static void header(struct ledger *g)
{
	const uint8_t *h = g->hdr;
	g->hn = 0;
	if (g->phase == LG_NAMELEN) {
		g->skip = (uint32_t)h[0] | (uint32_t)h[1] << 8;
		g->phase = LG_FRAMES;
		return;
	}
	if (g->dir == BUS_LINK_C2B) {
		g->skip = le32(h + 5);
		g->pend = (h[4] & 0x3F) != BUS_OP_NOP;
	} else if (h[0] == BUS_OP_ACK) {
		g->skip = 0;
		g->pend = true;
	} else {
		g->skip = le32(h + 1);
		g->pend = h[0] != BUS_OP_NOP;
	}
	if (!g->skip && g->pend) {
		record(g);
		g->pend = false;
	}
}

void ledger_feed(struct ledger *g, const uint8_t *p, size_t n)
{
	while (n) {
		if (g->skip) {
			size_t k = g->skip < n ? (size_t)g->skip : n;
			g->skip -= k;
			g->pushed += k;
			p += k;
			n -= k;
			if (g->skip)
				continue;
			if (g->phase == LG_HELLO)
				g->phase = g->dir == BUS_LINK_C2B ? LG_NAMELEN
				                                  : LG_FRAMES;
			else if (g->pend) {
				record(g);
				g->pend = false;
			}
			continue;
		}
		g->hdr[g->hn++] = *p++;
		g->pushed++;
		n--;
		size_t need = g->phase == LG_NAMELEN   ? 2
		              : g->dir == BUS_LINK_C2B ? C2B_HDR
		                                       : B2C_HDR; /* an ACK's too */
		if (g->hn == need)
			header(g);
	}
}

/* ends[0 .. return) are <= off (ends ascend) */
static size_t below(const struct ledger *g, uint64_t off)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->ends[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t ledger_count(const struct ledger *g, uint64_t off)
{
	if (off > g->pushed)
		abort(); /* a side took bytes that were never written */
	return g->dropped + below(g, off);
}

void ledger_forget(struct ledger *g, uint64_t low)
{
	size_t k = below(g, low);
	if (!k)
		return;
	memmove(g->ends, g->ends + k, (g->n - k) * sizeof(*g->ends));
	g->n -= k;
	g->dropped += k;
}
