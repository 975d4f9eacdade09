/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pb.c — the DaemonEye protobuf schemas through bounded decoding:
 * round trips, a newer schema's unknown field, and bad encodings.
 */
#define _DEFAULT_SOURCE /* open_memstream */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "bus/bus.h"
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

/* bus_pb_json / bus_pb_set: descriptor-driven text for busrt-cli --proto */
static char *json_of(const ProtobufCMessage *m)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	bus_pb_json(f, m);
	fclose(f);
	return buf;
}

static void test_text(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = sample_event(&len);
	ProtobufCMessage *m = bus_pb_unpack(&daemoneye__busrt_event__descriptor,
	                                    b, len, BUS_PB_BUDGET_DEFAULT);
	free(b);
	char *j = json_of(m);
	assert_non_null(strstr(j, "\"event_type\": \"TERMINATION\""));
	assert_non_null(strstr(j, "\"command_line\": [\"sleep\", \"5\"]"));
	assert_non_null(strstr(j, "\"pid\": 4242"));
	assert_null(strstr(j, "network_event")); /* oneof: only the set one */
	free(j);
	bus_pb_free(m);

	char err[200];
	m = bus_pb_new(&daemoneye__update_config_request__descriptor);
	assert_int_equal(bus_pb_set(m, "collector_id", "p\"1", err, sizeof(err)), 0);
	assert_int_equal(bus_pb_set(m, "new_config.scan_interval_ms", "50", err,
	                            sizeof(err)),
	                 0);
	assert_int_equal(bus_pb_set(m, "validate_only", "true", err, sizeof(err)),
	                 0);
	assert_int_equal(bus_pb_set(m, "validate_only", "yes", err, sizeof(err)),
	                 BUS_EINVAL);
	assert_non_null(strstr(err, "true or false"));
	assert_int_equal(bus_pb_set(m, "new_config.scan_interval_ms", "-1", err,
	                            sizeof(err)),
	                 BUS_EINVAL);
	assert_int_equal(bus_pb_set(m, "nope", "1", err, sizeof(err)), BUS_EINVAL);
	assert_non_null(strstr(err, "no field 'nope'"));
	{ /* 64-bit fields: the whole range, and nothing past it */
		ProtobufCMessage *rq = bus_pb_new(&daemoneye__resync_request__descriptor);
		assert_int_equal(bus_pb_set(rq, "incarnation", "18446744073709551615",
		                            err, sizeof(err)),
		                 0);
		assert_int_equal(bus_pb_set(rq, "from_sequence", "7", err, sizeof(err)),
		                 0);
		assert_int_equal(bus_pb_set(rq, "resync_id", "18446744073709551616",
		                            err, sizeof(err)),
		                 BUS_EINVAL);
		assert_int_equal(bus_pb_set(rq, "resync_id", "-3", err, sizeof(err)),
		                 BUS_EINVAL);
		const Daemoneye__ResyncRequest *r = (const void *)rq;
		assert_true(r->incarnation == UINT64_MAX && r->from_sequence == 7);
		bus_pb_free(rq);
	}
	assert_int_equal(bus_pb_set(m, "new_config", "1", err, sizeof(err)),
	                 BUS_EINVAL);
	assert_int_equal(bus_pb_set(m, "collector_id.x", "1", err, sizeof(err)),
	                 BUS_EINVAL);
	assert_int_equal(bus_pb_set(m, "new_config.settings", "1", err,
	                            sizeof(err)),
	                 BUS_EINVAL); /* a map: --raw only */
	j = json_of(m);
	assert_string_equal(j, "{\"collector_id\": \"p\\\"1\", \"new_config\": "
	                       "{\"collector_type\": \"\", \"scan_interval_ms\": 50, "
	                       "\"compute_hashes\": false, \"max_processes\": 0, "
	                       "\"settings\": {}}, \"validate_only\": true}");
	free(j);
	/* it packs and reads back */
	b = bus_pb_pack(m, &len);
	bus_pb_free(m);
	Daemoneye__UpdateConfigRequest *u = (void *)bus_pb_unpack(
		&daemoneye__update_config_request__descriptor, b, len,
		BUS_PB_BUDGET_DEFAULT);
	free(b);
	assert_int_equal(u->new_config->scan_interval_ms, 50);
	bus_pb_free(&u->base);
	/* enums by name, repeated strings grow, maps print as objects */
	m = bus_pb_new(&daemoneye__process_record__descriptor);
	bus_pb_set(m, "command_line", "a", err, sizeof(err));
	bus_pb_set(m, "command_line", "b", err, sizeof(err));
	j = json_of(m);
	assert_non_null(strstr(j, "\"command_line\": [\"a\", \"b\"]"));
	free(j);
	bus_pb_free(m);
	m = bus_pb_new(&daemoneye__process_event__descriptor);
	assert_int_equal(bus_pb_set(m, "event_type", "ANOMALY", err, sizeof(err)),
	                 0);
	assert_int_equal(bus_pb_set(m, "event_type", "BAD", err, sizeof(err)),
	                 BUS_EINVAL);
	j = json_of(m);
	assert_non_null(strstr(j, "\"event_type\": \"ANOMALY\""));
	free(j);
	bus_pb_free(m);
	/* a map's key given twice keeps the last value (protobuf's rule);
	 * a double prints exactly, NaN as proto3's JSON writes it */
	Daemoneye__HealthCheckResponse__MetricsEntry e[3] = {
		DAEMONEYE__HEALTH_CHECK_RESPONSE__METRICS_ENTRY__INIT,
		DAEMONEYE__HEALTH_CHECK_RESPONSE__METRICS_ENTRY__INIT,
		DAEMONEYE__HEALTH_CHECK_RESPONSE__METRICS_ENTRY__INIT};
	Daemoneye__HealthCheckResponse__MetricsEntry *ep[3] = {&e[0], &e[1],
	                                                       &e[2]};
	e[0].key = "cycles";
	e[0].value = 2;
	e[1].key = "load";
	e[1].value = NAN;
	e[2].key = "cycles";
	e[2].value = 3;
	Daemoneye__HealthCheckResponse h = DAEMONEYE__HEALTH_CHECK_RESPONSE__INIT;
	h.n_metrics = 3;
	h.metrics = ep;
	j = json_of(&h.base);
	assert_non_null(
		strstr(j, "\"metrics\": {\"cycles\": 3.0, \"load\": \"NaN\"}"));
	free(j);
	/* 64-bit: all of uint64, as a string past INT64_MAX */
	Daemoneye__ResyncRequest rq = DAEMONEYE__RESYNC_REQUEST__INIT;
	rq.incarnation = UINT64_MAX;
	rq.from_sequence = (uint64_t)INT64_MAX;
	j = json_of(&rq.base);
	assert_non_null(strstr(j, "\"incarnation\": \"18446744073709551615\""));
	assert_non_null(strstr(j, "\"from_sequence\": 9223372036854775807"));
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unknown_field_from_a_newer_schema),
		cmocka_unit_test(test_bad_encodings_and_budget),
		cmocka_unit_test(test_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
