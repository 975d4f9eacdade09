/*
 * test_pb.c — the DaemonEye protobuf schemas through bounded decoding:
 * round trips, a newer schema's unknown field, and bad encodings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pb.h"

static uint8_t *sample_event(size_t *len)
{
	Daemoneye__ProcessRecord rec = DAEMONEYE__PROCESS_RECORD__INIT;
	rec.pid = 4242;
	rec.ppid = 1;
	rec.name = "sleep";
	rec.executable_path = "/usr/bin/sleep";
	char *argv[] = {"sleep", "5"};
	rec.n_command_line = 2;
	rec.command_line = argv;
	rec.accessible = true;
	rec.file_exists = true;
	Daemoneye__ProcessEvent pe = DAEMONEYE__PROCESS_EVENT__INIT;
	pe.process = &rec;
	pe.event_type = DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__TERMINATION;
	pe.collection_cycle_id = "cycle-7";
	Daemoneye__BusrtEvent ev = DAEMONEYE__BUSRT_EVENT__INIT;
	ev.event_id = "e-1";
	ev.source_collector = "collector.process.p1";
	ev.topic = "events/process/lifecycle";
	ev.timestamp_ms = 1700000000123;
	ev.payload_case = DAEMONEYE__BUSRT_EVENT__PAYLOAD_PROCESS_EVENT;
	ev.process_event = &pe;
	ev.schema_version = 1;
	ev.incarnation = 123456789;
	ev.sequence = 42;
	return bus_pb_pack(&ev.base, len);
}

static void test_round_trip(void **state)
{
	(void)state;
	size_t n;
	uint8_t *buf = sample_event(&n);
	ProtobufCMessage *m = bus_pb_unpack(&daemoneye__busrt_event__descriptor,
	                                    buf, n, BUS_PB_BUDGET_DEFAULT);
	assert_non_null(m);
	Daemoneye__BusrtEvent *ev = (Daemoneye__BusrtEvent *)m;
	assert_string_equal(ev->source_collector, "collector.process.p1");
	assert_int_equal(ev->sequence, 42);
	assert_int_equal(ev->incarnation, 123456789);
	assert_int_equal(ev->payload_case,
	                 DAEMONEYE__BUSRT_EVENT__PAYLOAD_PROCESS_EVENT);
	assert_int_equal(ev->process_event->process->pid, 4242);
	assert_string_equal(ev->process_event->process->command_line[1], "5");
	assert_int_equal(ev->process_event->event_type,
	                 DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__TERMINATION);
	size_t n2;
	uint8_t *again = bus_pb_pack(m, &n2);
	assert_int_equal(n, n2);
	assert_memory_equal(buf, again, n);
	free(again);
	bus_pb_free(m);
	free(buf);
}

static void test_unknown_field_from_a_newer_schema(void **state)
{
	(void)state;
	size_t n;
	uint8_t *buf = sample_event(&n);
	/* field 99, varint 7, and field 100, length-delimited "hi" */
	uint8_t *ext = malloc(n + 8);
	memcpy(ext, buf, n);
	static const uint8_t extra[] = {0x98, 0x06, 0x07, 0xa2, 0x06, 2, 'h', 'i'};
	memcpy(ext + n, extra, sizeof(extra));
	ProtobufCMessage *m = bus_pb_unpack(&daemoneye__busrt_event__descriptor,
	                                    ext, n + sizeof(extra),
	                                    BUS_PB_BUDGET_DEFAULT);
	assert_non_null(m);
	assert_int_equal(((Daemoneye__BusrtEvent *)m)->sequence, 42);
	bus_pb_free(m);
	free(ext);
	free(buf);
}

static void test_bad_encodings_and_budget(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *d = &daemoneye__busrt_event__descriptor;
	/* truncated varint (sequence, field 32) */
	static const uint8_t trunc[] = {0x80, 0x02, 0xff, 0xff};
	assert_null(bus_pb_unpack(d, trunc, sizeof(trunc), 1 << 20));
	/* wrong wire type: event_id (1) as a varint */
	static const uint8_t wire[] = {0x08, 0x01};
	assert_null(bus_pb_unpack(d, wire, sizeof(wire), 1 << 20));
	/* a length past the end */
	static const uint8_t len[] = {0x0a, 0x7f, 'a'};
	assert_null(bus_pb_unpack(d, len, sizeof(len), 1 << 20));
	/* invalid UTF-8 in a string */
	static const uint8_t utf[] = {0x0a, 0x02, 0xc0, 0xaf};
	assert_null(bus_pb_unpack(d, utf, sizeof(utf), 1 << 20));
	/* a valid event under too small a budget */
	size_t n;
	uint8_t *buf = sample_event(&n);
	assert_null(bus_pb_unpack(d, buf, n, 64));
	assert_non_null(buf);
	ProtobufCMessage *m = bus_pb_unpack(d, buf, n, 4096);
	assert_non_null(m);
	bus_pb_free(m);
	free(buf);
	/* empty input: every field at its default */
	m = bus_pb_unpack(d, (const uint8_t *)"", 0, 4096);
	assert_non_null(m);
	bus_pb_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unknown_field_from_a_newer_schema),
		cmocka_unit_test(test_bad_encodings_and_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
