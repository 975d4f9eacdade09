/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace.c — the simulator's randomness (seeded streams, or a tape) and
 * its trace: every line hashed, optionally written.
 */
#include "simint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- randomness and the trace ------------------------------------------------- */
static uint64_t tape_read(struct sim_tape *t, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++, t->pos++)
		if (t->pos < t->n)
			v |= (uint64_t)t->p[t->pos] << (8 * i);
	return v;
}

uint64_t sim_rand(struct sim_rng *r)
{
	return r->tape ? tape_read(r->tape, 8) : bus_splitmix64(&r->state);
}

uint64_t sim_below(struct sim_rng *r, uint64_t n)
{
	if (!n)
		return 0;
	if (!r->tape)
		return sim_rand(r) % n;
	unsigned k = n <= 256 ? 1 : n <= 65536 ? 2 : n <= (1ull << 32) ? 4 : 8;
	return tape_read(r->tape, k) % n;
}

/* The 128-bit product of a and b, its halves folded. */
static inline uint64_t mul_fold(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A 64-bit hash of bytes (never 0): of payloads, to know deliveries by
 * their bytes, and of trace lines. Sixteen bytes per multiply, in two
 * independent lanes so that the multiplies overlap: the multiply chain of
 * eight bytes at a time was a tenth of a run. */
uint64_t bytes_hash(const uint8_t *p, size_t n)
{
	const uint64_t k0 = 0xff51afd7ed558ccdull, k1 = 0xc4ceb9fe1a85ec53ull;
	uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = a ^ k1, w[4];
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		memcpy(w, p + i, 32);
		a = mul_fold(w[0] ^ k0, w[1] ^ a);
		b = mul_fold(w[2] ^ k1, w[3] ^ b);
	}
	memset(w, 0, sizeof(w));
	memcpy(w, p + i, n - i); /* the last 0..31 bytes, zero-padded */
	a = mul_fold(w[0] ^ k0, w[1] ^ a);
	b = mul_fold(w[2] ^ k1, w[3] ^ b);
	uint64_t h = mul_fold(a ^ k1, b ^ k0 ^ n);
	return h ? h : 1;
}

/* As snprintf(dst, n, "%s", src), without the formatting machinery. */
void copy_str(char *dst, size_t n, const char *src)
{
	size_t k = strnlen(src, n - 1);
	memcpy(dst, src, k);
	dst[k] = 0;
}

/* A trace line under construction. The hot lines (every publish, every
 * delivery) are put together by hand, byte for byte what printf would
 * write: formatting was a fifth of a run. */

void put_str(struct tline *l, const char *p)
{
	size_t k = strlen(p);
	if (k > sizeof(l->b) - 1 - l->n)
		k = sizeof(l->b) - 1 - l->n;
	memcpy(l->b + l->n, p, k);
	l->n += k;
}

void put_u64(struct tline *l, uint64_t v, int width)
{
	if (l->n + 24 < sizeof(l->b))
		l->n = (size_t)(bus_put_u64(l->b + l->n, v, width) - l->b);
}

void line_start(struct sim *s, struct tline *l)
{
	if (s->ts_at != s->now || !s->ts_n) { /* many lines share an instant */
		l->n = 0;
		put_u64(l, s->now / SIM_MS, 1);
		l->b[l->n++] = '.';
		put_u64(l, s->now % SIM_MS, 6);
		l->b[l->n++] = ' ';
		memcpy(s->ts, l->b, l->n);
		s->ts_n = l->n;
		s->ts_at = s->now;
		return;
	}
	memcpy(l->b, s->ts, s->ts_n);
	l->n = s->ts_n;
}


void sim_trace(struct sim *s, const char *fmt, ...)
{
	struct tline l;
	line_start(s, &l);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(l.b + l.n, sizeof(l.b) - l.n, fmt, ap);
	va_end(ap);
	l.n += m > 0 ? (size_t)m : 0;
	if (l.n >= sizeof(l.b))
		l.n = sizeof(l.b) - 1;
	line_end(s, &l);
}

/* Hashes the line into the trace's rolling hash, and writes it out. */
void line_end(struct sim *s, const struct tline *l)
{
	const char *line = l->b;
	size_t n = l->n;
	/* rolling: each line's hash mixed into all that came before */
	s->hash = (s->hash ^ bytes_hash((const uint8_t *)line, n)) *
	          0x9e3779b97f4a7c15ull;
	s->hash ^= s->hash >> 31;
	s->r->events++;
	if (s->o->trace)
		fprintf(s->o->trace, "%.*s\n", (int)n, line);
}
