/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_util.c — the core's small shared helpers: the indexed heap (against
 * a naive reference under random pushes and removals) and splitmix64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "../core/internal.h"
#include "bus/json.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>

#define N 512

static void test_heap_matches_reference(void **state)
{
	(void)state;
	struct bus_allocator a = {0};
	struct bus_heap h = {0};
	static struct bus_heap_item it[N];
	bool in[N] = {0};
	uint64_t rng = 7;
	for (int i = 0; i < N; i++)
		it[i].idx = UINT32_MAX;
	/* room reserved: no push below it reallocates */
	assert_int_equal(bus__heap_reserve(&a, &h, N), 0);
	assert_true(h.cap >= N);
	struct bus_heap_item **items = h.items;
	for (int step = 0; step < 20000; step++) {
		int i = (int)(bus_splitmix64(&rng) % N);
		uint64_t op = bus_splitmix64(&rng) % 4;
		if (in[i] && op == 3) {
			/* a new key, up or down: its sequence stays */
			uint64_t seq = it[i].seq;
			bus__heap_update(&h, &it[i], bus_splitmix64(&rng) % 16);
			assert_int_equal(it[i].seq, seq);
		} else if (!in[i] && op < 2) {
			/* few distinct keys: ties must break by insertion */
			assert_int_equal(bus__heap_push(&a, &h, &it[i],
			                                bus_splitmix64(&rng) % 16),
			                 0);
			in[i] = true;
		} else if (in[i]) {
			bus__heap_remove(&h, &it[i]);
			assert_int_equal(it[i].idx, UINT32_MAX);
			in[i] = false;
		}
		/* the top is the least (key, seq) of the reference set */
		const struct bus_heap_item *best = NULL;
		uint32_t count = 0;
		for (int j = 0; j < N; j++) {
			if (!in[j])
				continue;
			count++;
			if (!best || it[j].key < best->key ||
			    (it[j].key == best->key && it[j].seq < best->seq))
				best = &it[j];
		}
		assert_int_equal(h.count, count);
		assert_ptr_equal(bus__heap_top(&h), best);
	}
	assert_ptr_equal(h.items, items);
	/* popping yields non-decreasing (key, seq) */
	uint64_t lk = 0, ls = 0;
	bool first = true;
	struct bus_heap_item *t;
	while ((t = bus__heap_top(&h))) {
		assert_true(first || t->key > lk || (t->key == lk && t->seq > ls));
		lk = t->key, ls = t->seq, first = false;
		bus__heap_remove(&h, t);
	}
	bus__heap_free(&a, &h);
}

static void test_splitmix64_is_seeded_and_stable(void **state)
{
	(void)state;
	uint64_t s1 = 1234, s2 = 1234, s3 = 1235;
	for (int i = 0; i < 100; i++) {
		uint64_t x = bus_splitmix64(&s1);
		assert_int_equal(x, bus_splitmix64(&s2));
		assert_int_not_equal(x, bus_splitmix64(&s3));
	}
	uint64_t z = 0; /* the published first output for seed 0 */
	assert_int_equal(bus_splitmix64(&z), 0xE220A8397B1DCDAFull);
}

/* bus_put_u64 writes what printf's %0*llu would, for every width. */
static void test_put_u64_matches_printf(void **state)
{
	(void)state;
	static const uint64_t v[] = {0, 1, 9, 10, 99, 100, 123456, 999999,
	                             1000000, 4294967296ull, UINT64_MAX};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (int w = 0; w <= 22; w++) {
			char got[32], want[32];
			*bus_put_u64(got, v[i], w) = 0;
			snprintf(want, sizeof(want), "%0*llu", w,
			         (unsigned long long)v[i]);
			assert_string_equal(got, want);
		}
	/* every power of ten and its neighbours, and a walk through the
	 * two-digit steps */
	for (uint64_t p = 1, i = 0; i < 20; i++, p *= 10)
		for (uint64_t v2 = p - 1; v2 <= p + 1; v2++) {
			char got[32], want[32];
			*bus_put_u64(got, v2, 0) = 0;
			snprintf(want, sizeof(want), "%llu", (unsigned long long)v2);
			assert_string_equal(got, want);
		}
	for (uint64_t v2 = 0; v2 < 20000; v2 += 7) {
		char got[32], want[32];
		*bus_put_u64(got, v2 * 1000003, 3) = 0;
		snprintf(want, sizeof(want), "%03llu",
		         (unsigned long long)(v2 * 1000003));
		assert_string_equal(got, want);
	}
}

static void test_msgpack_check(void **state)
{
	(void)state;
	/* {"filter": "^a"} */
	static const uint8_t ok[] = {0x81, 0xa6, 'f', 'i', 'l', 't', 'e', 'r',
	                             0xa2, '^', 'a'};
	assert_int_equal(bus__msgpack_check(ok, sizeof(ok), 4), sizeof(ok));
	assert_int_equal(bus__msgpack_check(ok, sizeof(ok) - 1, 4), 0);
	/* a map32 of 4 G entries in 5 bytes, an array32 of 16 M: refused
	 * before msgpack-c would allocate for them */
	static const uint8_t bomb1[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t bomb2[] = {0xdd, 0x01, 0x00, 0x00, 0x00, 0xc0};
	/* nesting: at most 64 levels, whatever the caller asks */
	uint8_t d65[66];
	memset(d65, 0x91, 65); /* fixarray of one, 65 deep */
	d65[65] = 0xc0;
	assert_int_equal(bus__msgpack_check(d65, sizeof(d65), 1000), 0);
	assert_int_equal(bus__msgpack_check(d65 + 1, sizeof(d65) - 1, 1000),
	                 sizeof(d65) - 1);
	assert_int_equal(bus__msgpack_check(d65 + 1, sizeof(d65) - 1, 63), 0);
	assert_int_equal(bus__msgpack_check(bomb1, sizeof(bomb1), 4), 0);
	assert_int_equal(bus__msgpack_check(bomb2, sizeof(bomb2), 4), 0);
	/* str32 claiming more than is there */
	static const uint8_t lie[] = {0xdb, 0x00, 0x00, 0x10, 0x00, 'x'};
	assert_int_equal(bus__msgpack_check(lie, sizeof(lie), 4), 0);
	/* nesting: [[[[nil]]]] is depth 4 */
	static const uint8_t deep[] = {0x91, 0x91, 0x91, 0x91, 0xc0};
	assert_int_equal(bus__msgpack_check(deep, sizeof(deep), 4), 5);
	assert_int_equal(bus__msgpack_check(deep, sizeof(deep), 3), 0);
	/* one of each kind, one after another in an array of 15 */
	static const uint8_t all[] = {0x9f, 0x01, 0xff, 0xc0, 0xc3, 0xcc, 1,
	                              0xcd, 0, 1, 0xca, 0, 0, 0, 0, 0xd4, 1,
	                              2, 0xc4, 1, 9, 0xc7, 1, 5, 7, 0xd9, 1,
	                              'x', 0x80, 0x90, 0xa0, 0xd0, 0xfe};
	assert_int_equal(bus__msgpack_check(all, sizeof(all), 4), sizeof(all));
	static const uint8_t never[] = {0xc1};
	assert_int_equal(bus__msgpack_check(never, 1, 4), 0);
	/* map16 and map32 hold 2 items an entry, array16 and array32 one:
	 * the object ends exactly where its last item does */
	uint8_t m[5 + 2 * 17];
	for (int wide = 0; wide < 2; wide++) {
		size_t h = wide ? 5 : 3;
		m[0] = wide ? 0xdf : 0xde;
		memset(m + 1, 0, h - 1);
		m[h - 1] = 17;
		for (size_t i = 0; i < 34; i++)
			m[h + i] = (uint8_t)i; /* positive fixints */
		assert_int_equal(bus__msgpack_check(m, h + 34, 4), h + 34);
		assert_int_equal(bus__msgpack_check(m, h + 33, 4), 0);
		m[0] = wide ? 0xdd : 0xdc; /* the same count as an array */
		assert_int_equal(bus__msgpack_check(m, h + 34, 4), h + 17);
	}
}

/* A peer's string for a terminal: no control character survives, UTF-8
 * text does, and a short buffer ends in "..." */
/* JSON strings of a peer's bytes are valid UTF-8 (audit lines). */
static void test_json_str_is_valid_utf8(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	static const char in[] = "a\xff\xc3\xa9\"\n\x01\xe2\x82";
	json_t *j = bus_json_string(in, sizeof(in) - 1);
	assert_int_equal(bus_json_dump(f, j), 0);
	json_decref(j);
	fclose(f);
	assert_string_equal(out, "\"a\\\\xff\xc3\xa9\\\"\\n\\u0001"
	                         "\\\\xe2\\\\x82\"");
	free(out);
}

/* What JSON cannot say directly: past int64, NaN, raw bytes; and the one
 * dump format. */
static char *dumped(json_t *j)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	assert_int_equal(bus_json_line(f, j), 0);
	fclose(f);
	return out;
}

static void test_json_values(void **state)
{
	(void)state;
	char *s = dumped(json_pack("{sososososososo}", "max",
	                           bus_json_u64(INT64_MAX), "past",
	                           bus_json_u64(UINT64_MAX), "nan",
	                           bus_json_real(NAN), "inf",
	                           bus_json_real(-INFINITY), "third",
	                           bus_json_real(1.0 / 3), "hex",
	                           bus_json_hex("\x00\xff\x10", 3), "none",
	                           bus_json_hex("", 0)));
	assert_string_equal(s, "{\"max\": 9223372036854775807, \"past\": "
	                       "\"18446744073709551615\", \"nan\": \"NaN\", "
	                       "\"inf\": \"-Infinity\", \"third\": "
	                       "0.33333333333333331, \"hex\": \"00ff10\", "
	                       "\"none\": \"\"}\n");
	free(s);
	/* a long hex string goes past the stack buffer */
	uint8_t big[300];
	memset(big, 0xab, sizeof(big));
	json_t *h = bus_json_hex(big, sizeof(big));
	assert_int_equal(json_string_length(h), 600);
	assert_int_equal(json_string_value(h)[599], 'b');
	json_decref(h);
	/* nothing built (out of memory): an error, nothing written */
	assert_int_equal(bus_json_line(stdout, NULL), -1);
}

static void test_text_escape(void **state)
{
	(void)state;
	char out[64];
	static const char evil[] = "a\x1b[2J\nb\\c\x7f\xc2\x85\xc3\xa9\xff\xe2\x82";
	bus_text_escape(out, sizeof(out), evil, sizeof(evil) - 1);
	assert_string_equal(out, "a\\x1b[2J\\x0ab\\\\c\\x7f\\xc2\\x85\xc3\xa9"
	                         "\\xff\\xe2\\x82");
	/* overlong and surrogate forms are not text */
	bus_text_escape(out, sizeof(out), "\xc0\xaf\xed\xa0\x80", 5);
	assert_string_equal(out, "\\xc0\\xaf\\xed\\xa0\\x80");
	char small[8];
	bus_text_escape(small, sizeof(small), "abcdefghij", 10);
	assert_string_equal(small, "abcd...");
	bus_text_escape(small, sizeof(small), "abc", 3);
	assert_string_equal(small, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heap_matches_reference),
		cmocka_unit_test(test_splitmix64_is_seeded_and_stable),
		cmocka_unit_test(test_msgpack_check),
		cmocka_unit_test(test_put_u64_matches_printf),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_json_str_is_valid_utf8),
		cmocka_unit_test(test_json_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
