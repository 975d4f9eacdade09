/* SPDX-License-Identifier: Apache-2.0 */
/* test_frame.c — the client->broker frame decoder: every valid frame at
 * every split, headers validated before the payload arrives, and no read
 * past the input (inputs end against a PROT_NONE guard page). */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/internal.h"

static uint8_t *guard_base;
static size_t page;

/* Copies len bytes so that they end right before the guard page. */
static const uint8_t *at_guard(const uint8_t *src, size_t len)
{
	uint8_t *dst = guard_base + page - len;
	memcpy(dst, src, len);
	return dst;
}

static int setup(void **state)
{
	(void)state;
	page = (size_t)sysconf(_SC_PAGESIZE);
	guard_base = mmap(NULL, page * 2, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(guard_base != MAP_FAILED);
	assert_int_equal(mprotect(guard_base + page, page, PROT_NONE), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	munmap(guard_base, page * 2);
	return 0;
}

static size_t mk(uint8_t *b, uint32_t id, uint8_t flags, const char *p,
                 size_t len)
{
	memcpy(b, &id, 4);
	b[4] = flags;
	uint32_t l = (uint32_t)len;
	memcpy(b + 5, &l, 4);
	memcpy(b + 9, p, len);
	return 9 + len;
}

static void test_every_prefix_needs_more_then_ok(void **state)
{
	(void)state;
	static const struct {
		uint8_t flags;
		const char *payload;
		size_t len;
	} frames[] = {
	    {0x01, "t\0data", 6},      {0x41, "t/x\0", 4},
	    {0x02, "a/#\0b", 5},       {0x03, "a", 1},
	    {0x04, "x/+", 3},          {0x05, "x", 1},
	    {0xC6, "t\0r\0d", 5},      {0x12, "target\0hi", 9},
	    {0x93, "c.*\0x", 5},       {0x00, "", 0},
	};
	for (size_t f = 0; f < sizeof(frames) / sizeof(frames[0]); f++) {
		uint8_t buf[64];
		size_t n = mk(buf, 7, frames[f].flags, frames[f].payload,
		              frames[f].len);
		for (size_t cut = 0; cut < n; cut++) {
			struct bus_frame fr;
			const char *why = NULL;
			assert_int_equal(bus__frame_decode(at_guard(buf, cut), cut,
			                                   1024, &fr, &why),
			                 BUS_DECODE_NEED_MORE);
		}
		struct bus_frame fr;
		const char *why = NULL;
		assert_int_equal(
		    bus__frame_decode(at_guard(buf, n), n, 1024, &fr, &why),
		    BUS_DECODE_OK);
		assert_int_equal(fr.consumed, n);
		assert_int_equal(fr.op_id, 7);
		assert_int_equal(fr.len, frames[f].len);
		assert_int_equal(fr.qos, frames[f].flags >> 6);
	}
}

static void test_header_errors_without_payload(void **state)
{
	(void)state;
	uint8_t b[9];
	struct bus_frame fr;
	const char *why;
	mk(b, 1, 0x3F, "", 0); /* unknown op */
	assert_int_equal(bus__frame_decode(at_guard(b, 9), 9, 100, &fr, &why),
	                 BUS_DECODE_ERROR);
	mk(b, 1, 0x00, "", 0);
	b[5] = 1; /* ping with a payload */
	assert_int_equal(bus__frame_decode(at_guard(b, 9), 9, 100, &fr, &why),
	                 BUS_DECODE_ERROR);
	mk(b, 1, 0x01, "", 0);
	memset(b + 5, 0xFF, 4); /* 4 GiB */
	assert_int_equal(bus__frame_decode(at_guard(b, 9), 9, 100, &fr, &why),
	                 BUS_DECODE_ERROR);
	uint32_t l = 101; /* one past the limit */
	memcpy(b + 5, &l, 4);
	assert_int_equal(bus__frame_decode(at_guard(b, 9), 9, 100, &fr, &why),
	                 BUS_DECODE_ERROR);
	l = 100; /* at the limit: waits for it */
	memcpy(b + 5, &l, 4);
	assert_int_equal(bus__frame_decode(at_guard(b, 9), 9, 100, &fr, &why),
	                 BUS_DECODE_NEED_MORE);
	mk(b, 1, 0x40, "", 0); /* op 0 with QoS: not a ping */
	assert_int_equal(bus__frame_decode(at_guard(b, 9), 9, 100, &fr, &why),
	                 BUS_DECODE_ERROR);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(bus__utf8_valid((const uint8_t *)"h\xc3\xa9llo", 6));
	assert_true(bus__utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
	assert_false(bus__utf8_valid((const uint8_t *)"\xc0\xaf", 2));
	assert_false(bus__utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));
	assert_false(bus__utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
	assert_false(bus__utf8_valid(at_guard((const uint8_t *)"\xe2\x82", 2), 2));
	assert_false(bus__utf8_valid((const uint8_t *)"\xff", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_prefix_needs_more_then_ok),
	    cmocka_unit_test(test_header_errors_without_payload),
	    cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests_name("frame", tests, setup, teardown);
}
