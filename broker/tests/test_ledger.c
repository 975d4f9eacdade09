/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ledger.c — the simulator's accounting ledger (sim/ledger.c): the
 * frames of a stream found from its bytes whatever the cuts, keepalives
 * and the handshake counted nowhere, an ACK counted, counts asked at any
 * offset, and ends forgotten below both sides' offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../sim/simint.h"

static size_t put(uint8_t *p, const void *b, size_t n)
{
	memcpy(p, b, n);
	return n;
}

/* client to broker: greeting echo, name, a publish (ends at e1), a ping
 * (a NOP: no frame), a subscribe with an empty payload (e2), a publish
 * (e3, the stream's end) */
static size_t c2b_stream(uint8_t *s, uint64_t e[3])
{
	size_t n = 0;
	n += put(s + n, "\xEB\x01\x00", 3);
	n += put(s + n, "\x03\x00" "abc", 5);
	n += put(s + n, "\x01\0\0\0\x01\x05\0\0\0" "t\0xyz", 14);
	e[0] = n;
	n += put(s + n, "\0\0\0\0\0\0\0\0\0", 9);
	n += put(s + n, "\x02\0\0\0\x02\0\0\0\0", 9);
	e[1] = n;
	n += put(s + n, "\x03\0\0\0\x41\x02\0\0\0" "t\0", 11);
	e[2] = n;
	return n;
}

static void expect_counts(const struct ledger *g, const uint64_t *e,
                          size_t ne, uint64_t len)
{
	for (uint64_t off = 0; off <= len; off++) {
		uint64_t want = 0;
		for (size_t i = 0; i < ne; i++)
			want += e[i] <= off;
		assert_int_equal(ledger_count(g, off), want);
	}
}

static void test_c2b_any_cut(void **state)
{
	(void)state;
	uint8_t s[64];
	uint64_t e[3];
	size_t len = c2b_stream(s, e);
	for (size_t step = 1; step <= len; step++) { /* every chunk size */
		struct ledger g = {0};
		ledger_reset(&g, BUS_LINK_C2B);
		for (size_t off = 0; off < len; off += step)
			ledger_feed(&g, s + off, off + step <= len ? step : len - off);
		assert_int_equal(g.pushed, len);
		expect_counts(&g, e, 3, len);
		ledger_reset(&g, BUS_LINK_C2B); /* frees */
		free(g.ends);
	}
}

static void test_b2c_ack_counts_nop_does_not(void **state)
{
	(void)state;
	uint8_t s[64];
	size_t n = 0;
	uint64_t e[2];
	n += put(s + n, "\xEB\x01\x00\x01\x01", 5);      /* greeting, OK, OK */
	n += put(s + n, "\xFE\x01\0\0\0\x01", 6);         /* ACK */
	e[0] = n;
	n += put(s + n, "\0\0\0\0\0\0", 6);               /* keepalive */
	n += put(s + n, "\x01\x04\0\0\0\0" "a\0b\0", 10); /* a publish */
	e[1] = n;
	struct ledger g = {0};
	ledger_reset(&g, BUS_LINK_B2C);
	for (size_t i = 0; i < n; i++)
		ledger_feed(&g, s + i, 1);
	expect_counts(&g, e, 2, n);
	/* what follows a half frame is not counted until it is whole */
	ledger_feed(&g, (const uint8_t *)"\x01\x02\0\0\0\0" "x", 7);
	assert_int_equal(ledger_count(&g, g.pushed), 2);
	ledger_feed(&g, (const uint8_t *)"y", 1);
	assert_int_equal(ledger_count(&g, g.pushed), 3);
	free(g.ends);
}

/* Forgetting keeps every count at or above the offset forgotten to. */
static void test_forget(void **state)
{
	(void)state;
	struct ledger g = {0};
	ledger_reset(&g, BUS_LINK_B2C);
	ledger_feed(&g, (const uint8_t *)"\xEB\x01\x00\x01\x01", 5);
	uint8_t ack[6] = {0xFE, 0, 0, 0, 0, 1};
	for (int i = 0; i < 1000; i++)
		ledger_feed(&g, ack, sizeof(ack));
	assert_int_equal(ledger_count(&g, g.pushed), 1000);
	ledger_forget(&g, 5 + 6 * 600 + 3); /* mid frame 601 */
	assert_int_equal(g.dropped, 600);
	assert_int_equal(ledger_count(&g, 5 + 6 * 600 + 3), 600);
	assert_int_equal(ledger_count(&g, 5 + 6 * 601), 601);
	assert_int_equal(ledger_count(&g, g.pushed), 1000);
	free(g.ends);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_c2b_any_cut),
		cmocka_unit_test(test_b2c_ack_counts_nop_does_not),
		cmocka_unit_test(test_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
